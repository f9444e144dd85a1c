"""The outbox relay: delivers committed notifications through the notifier, at least once.

A notification is written in the same atomic step as the change it reports; the relay claims due
ones, hands each to the notifier, and marks them delivered (dropping their codes, one statement
per pass) or failed (due again after an exponential backoff). A code whose expiry has passed
before it could be delivered, or whose key was removed meanwhile, is dropped, not sent: it could
no longer be used. Codes wait in the
outbox sealed (:class:`~keyturn.crypto.sealing.CodeSeal`); the relay opens one just before
handing it to the notifier. The relay runs inline after a request (best effort: the request's
own notifications, stored already claimed by the request's transaction, go straight to
:meth:`AsyncOutboxRelay.deliver`), once from a command, or as a loop in a worker. "At least once"
means a crash between delivery and marking can deliver a message twice; never zero times once
committed. Async source of a generated twin.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

from keyturn._log import get_logger
from keyturn.core.lifecycle import State
from keyturn.core.records import NotificationKind
from keyturn.service._async.compat import Event, wait

if TYPE_CHECKING:
    from collections.abc import Sequence

    from keyturn.core.records import Delivery, Notification
    from keyturn.crypto.sealing import CodeSeal
    from keyturn.ports import AsyncKeyStore, AsyncNotifier, Clock


@attrs.frozen
class RelayReport:
    """What one pass of the relay did."""

    delivered: int = 0
    failed: int = 0
    expired: int = 0

    @property
    def handled(self) -> int:
        """Notifications claimed in this pass."""
        return self.delivered + self.failed + self.expired


@attrs.define(kw_only=True)
class AsyncOutboxRelay:
    """Moves notifications from the store's outbox to the notifier."""

    store: AsyncKeyStore
    notifier: AsyncNotifier
    clock: Clock
    code_seal: CodeSeal
    logger: Any = attrs.field(factory=get_logger)
    batch: int = 100
    first_backoff: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(minutes=5)

    def backoff(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failed delivery: 1 s, 2 s, 4 s... capped."""
        wait_for: timedelta = self.first_backoff * (2 ** max(0, attempts - 1))
        return min(wait_for, self.max_backoff)

    async def run_once(self) -> RelayReport:
        """Claim the notifications due now (up to ``batch``) and deliver them.

        Never raises for one message: a failure is recorded and retried later.
        """
        return await self.deliver(await self.store.claim_deliveries(self.clock.now(), self.batch))

    async def deliver(
        self, deliveries: Sequence[Delivery], *, written_now: bool = False
    ) -> RelayReport:
        """Deliver notifications claimed for this relay; mark the done ones in one statement.

        A code past its expiry is dropped, not sent, and so is a code for a key removed since
        it was queued: neither could be used. ``written_now``: the caller's own request wrote
        these a moment ago (inline delivery), so their keys need no second look. A failed
        delivery is due again after the backoff. Never raises for one message.
        """
        now = self.clock.now()
        done: list[Notification] = []
        failed = expired = 0
        for d in deliveries:
            n = d.notification
            log = self.logger.bind(notification_id=n.id, key_id=n.key_id, kind=n.kind.value)
            if n.expires_at is not None and n.expires_at <= now:
                done.append(n)
                log.warning("notification_expired", attempts=d.attempts)
                expired += 1
                continue
            try:  # a failed read of the key, like a failed delivery, is retried later
                dropped = not written_now and await self._for_removed_key(n)
                if not dropped:
                    await self.notifier.deliver(self.code_seal.open_code(n))
            except Exception as e:  # noqa: BLE001 (any failure, opening included: retry later)
                retry_at = now + self.backoff(d.attempts)
                await self.store.mark_failed(n.id, retry_at, type(e).__name__)
                log.warning(
                    "notification_failed",
                    attempts=d.attempts,
                    error=type(e).__name__,
                    retry_at=retry_at.isoformat(),
                )
                failed += 1
            else:
                done.append(n)
                if dropped:
                    log.warning("notification_for_removed_key", attempts=d.attempts)
                    expired += 1
                else:
                    log.info("notification_delivered", attempts=d.attempts)
        if done:
            await self.store.mark_delivered(done, self.clock.now())
        return RelayReport(len(done) - expired, failed, expired)

    async def _for_removed_key(self, n: Notification) -> bool:
        """Whether ``n`` is a code for a key that is removed (or gone) by now."""
        if n.kind is not NotificationKind.CODE or n.key_id is None:
            return False
        key = await self.store.get(n.key_id)
        return key is None or key.state is State.REMOVED

    async def run_forever(self, *, interval: float = 1.0, stop: Event | None = None) -> None:
        """Run passes until ``stop`` is set, sleeping ``interval`` seconds when idle."""
        stop = stop or Event()
        while not stop.is_set():
            if (await self.run_once()).handled == 0:
                await wait(stop, interval)
