"""The key service: the lifecycle, reading, authentication and security keys, joined.

Each part of the service lives in its own module, over one set of ports (:mod:`.base`); this
class joins them. Portal backends, the API and the command line call it. Async source of a
generated twin.
"""

from __future__ import annotations

import attrs

from keyturn.service._async.credentials import AsyncCredentials
from keyturn.service._async.reading import AsyncReading
from keyturn.service._async.secrets import AsyncSecrets


@attrs.define(kw_only=True)
class AsyncKeyService(AsyncSecrets, AsyncCredentials, AsyncReading):
    """The key lifecycle, over a store, a code verifier, a notifier and a clock.

    ``owner`` on every method is the account acting on its own keys; a key of another owner is
    reported exactly like a missing one. ``actor`` (default: the owner) is recorded in history.
    With a ``secret_box`` every new secret is also kept sealed, so the key can sign requests.
    ``code_seal`` seals the codes waiting in the outbox; every service and relay sharing a store
    must use the same one (``wiring`` derives it from the server key).
    """
