"""The rules that refuse an edge outright, each written once.

Every :class:`~keyturn.core.lifecycle.Check` named on an edge has one function here; the core
runs an edge's checks (:func:`run`) before it builds a change, so a refusal raises before
anything is built and leaves every record as it was. The facts of a key that conditions ask
(:func:`code_reusable`, :func:`came_from_disabled`) are here too. Pure: the time comes in as
``now``, nothing is read or written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from keyturn.core import time_rules
from keyturn.core.errors import (
    ActivationLocked,
    CodeAttemptsExhausted,
    CodeExpired,
    InvalidInput,
    QuotaExceeded,
    ResendTooEarly,
    SendLimitReached,
)
from keyturn.core.lifecycle import Action, Check, State

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from keyturn.core.policy import Policy
    from keyturn.core.records import ApiKey, PendingCode


def _not_locked(key: ApiKey, action: Action, now: datetime, policy: Policy) -> None:  # noqa: ARG001
    """Activation is locked after ``max_consecutive_failures`` wrong codes in a row."""
    if key.consecutive_failures >= policy.max_consecutive_failures:
        raise ActivationLocked(
            key_id=key.id,
            state=key.state.value,
            action=action.value,
            failures=key.consecutive_failures,
        )


def next_code_at(key: ApiKey) -> datetime | None:
    """When a new code may be sent for ``key``: ``resend_after`` after the last one was sent.

    The wait follows the last code until it is used: closing the dialog, asking again or an
    edit does not open it, only time does; a code entered right ends it.
    """
    return key.pending.resend_at if key.pending is not None else None


def _resend_open(key: ApiKey, action: Action, now: datetime, policy: Policy) -> None:  # noqa: ARG001
    """A new code only from ``resend_after`` after the last one was sent."""
    at = next_code_at(key)
    if at is not None and now < at:
        raise ResendTooEarly(
            key_id=key.id, state=key.state.value, action=action.value, available_at=at
        )


def _under_send_cap(key: ApiKey, action: Action, now: datetime, policy: Policy) -> None:
    """At most ``max_sends`` codes in any ``send_window``."""
    if (at := time_rules.next_send_at(key.sends, now, policy)) is not None:
        raise SendLimitReached(
            key_id=key.id, state=key.state.value, action=action.value, available_at=at
        )


def live_code(key: ApiKey, now: datetime, policy: Policy) -> PendingCode | None:
    """The key's code if it can still be entered at ``now``: sent, tries left, not expired."""
    pending = key.pending
    if pending is None or pending.ended or pending.attempts >= policy.max_attempts:
        return None
    return None if time_rules.is_expired(pending, now) else pending


def _code_live(key: ApiKey, action: Action, now: datetime, policy: Policy) -> None:
    """A code can be checked only while it is live; say why it is not."""
    pending = key.pending
    key_id, state = key.id, key.state.value
    if pending is None or pending.ended or pending.attempts >= policy.max_attempts:
        raise CodeAttemptsExhausted(key_id=key_id, state=state, action=action.value)
    if time_rules.is_expired(pending, now):
        raise CodeExpired(
            key_id=key_id, state=state, action=action.value, expired_at=pending.expires_at
        )


def _has_secret(key: ApiKey, action: Action, now: datetime, policy: Policy) -> None:  # noqa: ARG001
    """A key registered with a public key has no secret to reset."""
    if key.public_key is not None:
        raise InvalidInput(
            "id", "this key authenticates by public key and has no secret to reset", action=action
        )


_CHECKS: Final[Mapping[Check, Callable[[ApiKey, Action, datetime, Policy], None]]] = {
    Check.NOT_LOCKED: _not_locked,
    Check.RESEND_OPEN: _resend_open,
    Check.UNDER_SEND_CAP: _under_send_cap,
    Check.CODE_LIVE: _code_live,
    Check.HAS_SECRET: _has_secret,
}


def run(
    checks: tuple[Check, ...], key: ApiKey, action: Action, now: datetime, policy: Policy
) -> None:
    """Run ``checks`` in order; the first that fails raises its typed error."""
    for check in checks:
        _CHECKS[check](key, action, now, policy)


def attempts_left(key: ApiKey, policy: Policy) -> int:
    """Wrong codes the key's current code can still bear.

    The smaller of its own tries left and the wrong codes in a row left before activation locks.
    """
    used = key.pending.attempts if key.pending else policy.max_attempts
    return max(0, min(policy.max_attempts - used, failures_before_lock(key, policy)))


def failures_before_lock(key: ApiKey, policy: Policy) -> int:
    """Wrong codes in a row the key can still bear before activation locks."""
    return max(0, policy.max_consecutive_failures - key.consecutive_failures)


def next_send_at(key: ApiKey, now: datetime, policy: Policy) -> datetime:
    """The earliest time a new code can be sent for ``key`` (``now`` if it can be now).

    The later of the resend wait (from the last send) and the send cap.
    """
    waits = (next_code_at(key), time_rules.next_send_at(key.sends, now, policy))
    return max([now, *(w for w in waits if w is not None)])


def code_reusable(key: ApiKey, now: datetime, policy: Policy) -> bool:
    """A live code whose resend is not open yet: reopening the dialog keeps it."""
    at = next_code_at(key)
    return live_code(key, now, policy) is not None and at is not None and now < at


def check_quota(owner: str, live: int, limit: int) -> None:
    """The key quota: ``owner``, holding ``live`` live keys, may add one only under ``limit``.

    A store asks this inside the write that adds the key, with the count it read there, so that
    two concurrent creates cannot both pass it.
    """
    if live >= limit:
        raise QuotaExceeded(owner, limit)


def came_from_disabled(key: ApiKey) -> bool:
    """Activation started from ``disabled`` (so closing the dialog goes back there)."""
    return key.activation_origin is State.DISABLED


#: Every check has its one rule; a test holds this to the enum.
CHECKED: Final = frozenset(_CHECKS)
