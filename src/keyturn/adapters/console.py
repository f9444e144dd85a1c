"""A notifier for a terminal: says that a code was sent, and shows the code only in dev mode.

For trying keyturn by hand (``keyturn --dev ...``): in dev mode the person at the terminal plays
the key's owner, so the code is printed, marked as such. Outside dev mode the code is never
written anywhere. Output goes to the stream given (stderr by default), never to a log.
"""

from __future__ import annotations

import sys
from typing import TextIO

import attrs

from keyturn.core.records import Notification, NotificationKind


@attrs.define
class ConsoleNotifier:
    """Prints one line per notification."""

    stream: TextIO = attrs.field(factory=lambda: sys.stderr)
    show_codes: bool = False

    def deliver(self, notification: Notification) -> None:
        """Print that ``notification`` was sent (with its code in dev mode)."""
        n = notification
        if n.kind is NotificationKind.CODE:
            expiry = f", valid until {n.expires_at:%H:%M:%S} UTC" if n.expires_at else ""
            # a code for no key (a sign-in, a Create to confirm) says what it is by its subject
            what = f"code sent for key {n.key_id}" if n.key_id is not None else f"{n.subject} sent"
            line = f"notify {n.owner}: {what}{expiry}"
            if self.show_codes and n.code is not None:
                line += f" [dev mode, code: {n.code}]"
        else:
            line = f"notify {n.owner}: {n.subject}"
        print(line, file=self.stream, flush=True)
