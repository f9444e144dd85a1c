"""Notifier adapters that need nothing outside the process.

* :class:`RecordingNotifier` keeps what it was given (tests read codes from it).
* :class:`LoggingNotifier` logs that a notification went out, without the code: for development,
  where no email is sent.
* :class:`UnconfiguredNotifier` stands in where no notifier is configured: it delivers nothing
  and fails, so every message stays in the outbox for a relay that has a real notifier.

Real delivery (SMTP) lives in its own module.
"""

from __future__ import annotations

from typing import Any

import attrs

from keyturn._log import get_logger
from keyturn.core.records import Notification, NotificationKind


@attrs.define
class RecordingNotifier:
    """Records every notification delivered to it, in order. Can be told to fail."""

    sent: list[Notification] = attrs.field(factory=list)
    failing: bool = False

    def deliver(self, notification: Notification) -> None:
        """Record ``notification``, or raise ``ConnectionError`` while ``failing``."""
        if self.failing:
            msg = "recording notifier is set to fail"
            raise ConnectionError(msg)
        self.sent.append(notification)

    def codes(self, key_id: int | None = None) -> list[str]:
        """The codes delivered (for ``key_id`` only, if given), oldest first."""
        return [
            n.code
            for n in self.sent
            if n.code is not None and (key_id is None or n.key_id == key_id)
        ]

    def last_code(self, key_id: int | None = None) -> str:
        """The most recent code delivered (for ``key_id``, if given)."""
        codes = self.codes(key_id)
        if not codes:
            msg = f"no code was delivered for key {key_id}"
            raise LookupError(msg)
        return codes[-1]

    def events(self, key_id: int | None = None) -> list[str]:
        """Subjects of the key-event notifications delivered."""
        return [
            n.subject
            for n in self.sent
            if n.kind is NotificationKind.KEY_EVENT and (key_id is None or n.key_id == key_id)
        ]


@attrs.define
class LoggingNotifier:
    """Logs ``notification_sent`` with who and what, never the code."""

    logger: Any = attrs.field(factory=get_logger)

    def deliver(self, notification: Notification) -> None:
        """Log that ``notification`` was sent."""
        self.logger.info(
            "notification_sent",
            notification_id=notification.id,
            owner=notification.owner,
            key_id=notification.key_id,
            kind=notification.kind.value,
            subject=notification.subject,
            has_code=notification.code is not None,
        )


@attrs.define
class UnconfiguredNotifier:
    """Delivers nothing: each call fails, so the message waits in the outbox for a real relay."""

    def deliver(self, notification: Notification) -> None:  # noqa: ARG002 (port signature)
        """Refuse: no notifier is configured, so nothing can reach the owner."""
        msg = "no notifier is configured; the message stays in the outbox"
        raise ConnectionError(msg)
