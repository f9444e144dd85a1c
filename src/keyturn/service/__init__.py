"""The imperative shell: the services that load, ask the ports, call the core, commit, deliver.

* :class:`AsyncKeyService` is written by hand, one part a module, in ``keyturn.service._async``;
* :class:`KeyService`, the same methods blocking, is generated from it by
  ``scripts/unasync.py`` into ``keyturn.service._sync`` (a test fails if it is stale).

No business rule is written here: every decision is the core's (:mod:`keyturn.core`).
"""

from keyturn.core.changes import UNSET
from keyturn.service._async.base import WRITE_ATTEMPTS
from keyturn.service._async.keys import AsyncKeyService
from keyturn.service._async.relay import AsyncOutboxRelay, RelayReport
from keyturn.service._sync.keys import KeyService
from keyturn.service._sync.relay import OutboxRelay

__all__ = [
    "UNSET",
    "WRITE_ATTEMPTS",
    "AsyncKeyService",
    "AsyncOutboxRelay",
    "KeyService",
    "OutboxRelay",
    "RelayReport",
]
