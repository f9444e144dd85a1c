"""Confirming a request by code: which requests need it, and the rules a confirmation obeys.

When the policy lists an action in ``Policy.confirm``, its first call issues a *challenge*
bound to the exact request (:func:`request_digest`: action, key and parameters) and sends a
code; the repeated call with ``Confirmation(challenge_id, code)`` consumes it, once, in the same
store write as the action. :func:`check_challenge` refuses what cannot succeed whatever the
code (another request, another owner, used, expired, out of tries); :func:`challenge_checked`
is the challenge after its code was checked. Codes sent to confirm obey the activation code's
time rules (:func:`live_challenge`): the same request asked again before "resend" opens gets
its live challenge back, not a new code; another request for the same action and key waits for
"resend"; and at most ``max_sends`` codes go out per ``send_window`` for one action and key.
Pure.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import attrs

from keyturn.core import time_rules
from keyturn.core.errors import (
    ChallengeInvalid,
    CodeAttemptsExhausted,
    CodeExpired,
    ResendTooEarly,
    SendLimitReached,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
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


def sent_for(recent: Sequence[Challenge], *, action: Action, key_id: int | None) -> list[Challenge]:
    """The challenges of ``recent`` for this action and key, by send time: what the rules count."""
    return sorted(
        (c for c in recent if c.action is action and c.key_id == key_id),
        key=lambda c: c.code.sent_at,
    )


def live_challenge(
    recent: Sequence[Challenge],
    *,
    action: Action,
    key_id: int | None,
    digest: str,
    now: datetime,
    policy: Policy,
) -> Challenge | None:
    """The live challenge to show again for this request, or ``None``: a new code may go out.

    ``recent`` are the owner's challenges sent within the last ``send_window``. Before the last
    code for this action and key opens "resend", the same request gets that challenge back (if
    its code can still be used) and another request :class:`ResendTooEarly`; past the send cap
    for this action and key, :class:`SendLimitReached`.
    """
    mine = sent_for(recent, action=action, key_id=key_id)
    last = mine[-1] if mine else None
    if last is not None and not last.used and not time_rules.resend_open(last.code, now):
        usable = last.code.attempts < policy.max_attempts and not time_rules.is_expired(
            last.code, now
        )
        if last.request_digest == digest and usable:
            return last
        raise ResendTooEarly(
            key_id=key_id, state=None, action=action.value, available_at=last.code.resend_at
        )
    sends = tuple(c.code.sent_at for c in mine)
    capped = time_rules.next_send_at(sends, now, policy)
    if capped is not None:
        raise SendLimitReached(key_id=key_id, state=None, action=action.value, available_at=capped)
    return None


def challenge_checked(challenge: Challenge, *, matched: bool) -> Challenge:
    """The challenge after a code was checked: used on a match, one attempt more otherwise."""
    if matched:
        return attrs.evolve(challenge, used=True, version=challenge.version + 1)
    code = attrs.evolve(challenge.code, attempts=challenge.code.attempts + 1)
    return attrs.evolve(challenge, code=code, version=challenge.version + 1)
