"""The rules of Deribit's per-call 2FA ("security keys"), as pure functions.

An account may enroll one security key: a TOTP secret in the person's authenticator app. While
it has one, a guarded call goes in two rounds: a challenge bound to the owner, the call and its
parameters (:func:`call_digest`), then the call repeated with a code. The rules:

* :func:`check_not_locked`: ``Policy.max_consecutive_failures`` wrong codes in a row lock the
  key until it is enrolled again;
* :func:`recorded`: a right code is accepted once (its TOTP step must be later than the last
  accepted one) and clears the failures; a wrong one is counted. The caller writes the result
  with a compare-and-swap, so two workers cannot both accept one code.

Pure: the challenge's MAC and the TOTP match are computed by the caller and passed in.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import attrs

from keyturn.core.errors import InvalidInput, SecurityKeyLocked, SecurityKeyRefused

if TYPE_CHECKING:
    from collections.abc import Mapping

    from keyturn.core.policy import Policy
    from keyturn.core.records import SecurityKey


def call_digest(call: str, params: Mapping[str, Any]) -> str:
    """A digest of one exact call: a challenge answers this call and no other."""
    try:
        text = json.dumps([call, params], sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        raise InvalidInput("params", "must be JSON-like, with string keys") from None
    return hashlib.sha256(text.encode()).hexdigest()


def check_not_locked(key: SecurityKey, policy: Policy, call: str) -> None:
    """Refuse every code once the key has too many wrong codes in a row."""
    if key.failures >= policy.max_consecutive_failures:
        raise SecurityKeyLocked(call=call, failures=key.failures)


def recorded(key: SecurityKey, step: int | None, call: str) -> SecurityKey:
    """The key after a code of TOTP ``step`` (``None``: no match) came back for ``call``.

    A code of the last accepted step or an earlier one is refused as used, and changes
    nothing. The result is one version above ``key``.
    """
    if step is not None and step <= key.last_step:
        raise SecurityKeyRefused("used_tfa_code", "this code was used before", call=call)
    if step is None:
        return attrs.evolve(key, failures=key.failures + 1, version=key.version + 1)
    return attrs.evolve(key, last_step=step, failures=0, version=key.version + 1)


def refused(call: str) -> SecurityKeyRefused:
    """The refusal of a code that is not the authenticator's."""
    return SecurityKeyRefused(
        "tfa_code_not_matched", "the code is not the authenticator's", call=call
    )
