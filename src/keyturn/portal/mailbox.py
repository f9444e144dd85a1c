"""The development mailbox: the emails the portal's notifier sent, kept to be read on a page.

``keyturn serve --dev`` wraps its notifier in a :class:`DevMailbox`, and the portal shows its
messages (codes included) at ``/dev/mailbox``, so the whole flow can be walked without an SMTP
server. It keeps the last ``size`` messages in memory and hands each on to the notifier it wraps,
if any. It is for development only: never give it to a portal that real people use.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from keyturn import Notification
    from keyturn.ports import AsyncNotifier


@attrs.define
class DevMailbox:
    """An async notifier that keeps what it delivers, newest last, and passes it on."""

    forward: AsyncNotifier | None = None
    size: int = 200
    _messages: deque[Notification] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._messages = deque(maxlen=self.size)

    async def deliver(self, notification: Notification) -> None:
        """Keep ``notification``, then deliver it through the wrapped notifier."""
        self._messages.append(notification)
        if self.forward is not None:
            await self.forward.deliver(notification)

    @property
    def messages(self) -> list[Notification]:
        """The messages kept, newest first."""
        return list(reversed(self._messages))

    def last_code(self, owner: str | None = None) -> str:
        """The code in the newest message carrying one (to ``owner``, if given)."""
        for message in reversed(self._messages):
            if message.code is not None and owner in (None, message.owner):
                return message.code
        msg = f"no code was sent{f' to {owner}' if owner else ''}"
        raise LookupError(msg)
