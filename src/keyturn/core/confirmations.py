"""Confirming a request by code: which requests need it, and the rules a confirmation obeys.

When the policy lists an action in ``Policy.confirm``, its first call issues a *challenge*
bound to the exact request (:func:`request_digest`: action, key and parameters) and sends a
code; the repeated call with ``Confirmation(challenge_id, code)`` consumes it, once, in the same
store write as the action. :func:`check_challenge` refuses what cannot succeed whatever the
code (another request, another owner, used, expired, out of tries); :func:`challenge_checked`
is the challenge after its code was checked. Pure.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import attrs

from keyturn.core import time_rules
from keyturn.core.errors import ChallengeInvalid, CodeAttemptsExhausted, CodeExpired

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from keyturn.core.lifecycle import Action
    from keyturn.core.policy import Policy
    from keyturn.core.records import Challenge


def request_digest(action: Action, key_id: int | None, params: Mapping[str, str]) -> str:
    """A digest of one exact request: the code confirms this request and no other."""
    canonical = json.dumps(
        {"action": action.value, "key_id": key_id, "params": dict(sorted(params.items()))},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_challenge(
    challenge: Challenge | None,
    *,
    owner: str,
    action: Action,
    key_id: int | None,
    digest: str,
    now: datetime,
    policy: Policy,
) -> Challenge:
    """Refuse a confirmation that cannot succeed whatever the code; return the challenge."""
    reason = None
    if challenge is None or challenge.owner != owner:
        reason = "no such challenge"
    elif challenge.used:
        reason = "the challenge was already used"
    elif challenge.action is not action or challenge.key_id != key_id:
        reason = "the challenge was issued for another request"
    elif challenge.request_digest != digest:
        reason = "the request differs from the one the code was sent for"
    if reason is not None or challenge is None:
        raise ChallengeInvalid(reason or "no such challenge", action=action.value, key_id=key_id)
    if challenge.code.attempts >= policy.max_attempts:
        raise CodeAttemptsExhausted(key_id=key_id, state=None, action=action.value)
    if time_rules.is_expired(challenge.code, now):
        raise CodeExpired(
            key_id=key_id, state=None, action=action.value, expired_at=challenge.code.expires_at
        )
    return challenge


def challenge_checked(challenge: Challenge, *, matched: bool) -> Challenge:
    """The challenge after a code was checked: used on a match, one attempt more otherwise."""
    if matched:
        return attrs.evolve(challenge, used=True, version=challenge.version + 1)
    code = attrs.evolve(challenge.code, attempts=challenge.code.attempts + 1)
    return attrs.evolve(challenge, code=code, version=challenge.version + 1)
