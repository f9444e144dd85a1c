"""The time rules of codes, as pure functions of ``now``: expiry, resend, and the send cap.

Boundaries are exact and half-open: a code sent at ``t`` is valid on ``[t, t + code_ttl)`` and
expired from ``t + code_ttl`` on; "resend" is open from ``t + resend_after`` on; a send counts
against the cap on ``(now - send_window, now]``. No timers, no threads, no clock reads here: the
caller passes ``now`` from its :class:`~keyturn.ports.Clock`. Times leave keyturn (stores,
the API) as whole microseconds since the Unix epoch: :func:`to_us` and :func:`from_us`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from keyturn.core.records import PendingCode

if TYPE_CHECKING:
    from keyturn.core.policy import Policy

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)


def to_us(when: datetime) -> int:
    """Microseconds since the epoch: exact, orderable, free of time zones."""
    return (when - EPOCH) // _US


def from_us(us: int) -> datetime:
    """The UTC datetime ``us`` microseconds after the epoch."""
    return EPOCH + _US * us  # exact integer arithmetic; the fastest spelling (every key decode)


def new_code(ref: str, now: datetime, policy: Policy) -> PendingCode:
    """A pending code sent at ``now``."""
    return PendingCode(
        ref=ref,
        sent_at=now,
        expires_at=now + policy.code_ttl,
        resend_at=now + policy.resend_after,
    )


def is_expired(code: PendingCode, now: datetime) -> bool:
    """Whether ``code`` has expired at ``now`` (true from ``expires_at`` exactly)."""
    return now >= code.expires_at


def resend_open(code: PendingCode, now: datetime) -> bool:
    """Whether a new code may be requested at ``now`` (true from ``resend_at`` exactly)."""
    return now >= code.resend_at


def recent_sends(
    sends: tuple[datetime, ...], now: datetime, policy: Policy
) -> tuple[datetime, ...]:
    """The sends that still count against the cap at ``now``."""
    start = now - policy.send_window
    return tuple(s for s in sends if s > start)


def next_send_at(sends: tuple[datetime, ...], now: datetime, policy: Policy) -> datetime | None:
    """When the next send is allowed, if the cap forbids one at ``now``; else ``None``."""
    recent = recent_sends(sends, now, policy)
    if len(recent) < policy.max_sends:
        return None
    return recent[-policy.max_sends] + policy.send_window
