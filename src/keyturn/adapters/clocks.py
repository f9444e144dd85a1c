"""Clock adapters: the system clock, and a manual clock that tests move by hand.

Both return timezone-aware UTC. ``SystemClock`` reads the time on every call (never at import),
so freezegun can stand in for it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from keyturn.core.errors import InvalidInput


@attrs.frozen
class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        """The current time."""
        return datetime.now(UTC)


def _aware_utc(value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput("now", "must be a timezone-aware datetime")
    return value.astimezone(UTC)


@attrs.define
class ManualClock:
    """A clock that stands still until told to move: exact time boundaries in tests."""

    current: datetime = attrs.field(
        factory=lambda: datetime(2026, 1, 1, 12, 0, tzinfo=UTC), converter=_aware_utc
    )

    def now(self) -> datetime:
        """The time the clock was last set or advanced to."""
        return self.current

    def advance(self, delta: timedelta | float = 0.0, /, **kwargs: float) -> datetime:
        """Move forward by a timedelta, a number of seconds, or ``timedelta`` keywords."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        step += timedelta(**kwargs)
        if step < timedelta(0):
            raise InvalidInput("delta", "a clock does not go backwards")
        self.current += step
        return self.current

    def set(self, when: datetime) -> datetime:
        """Jump to ``when`` (timezone-aware)."""
        self.current = _aware_utc(when)
        return self.current
