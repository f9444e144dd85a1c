"""The outbox relay: delivers committed notifications through the notifier, at least once.

A notification is written in the same atomic step as the change it reports (see
:class:`~keyturn.ports.KeyStore`); this relay claims due ones, hands each to the notifier, and
marks it delivered (dropping its code) or failed (due again after an exponential backoff). A code
whose expiry has passed before it could be delivered is dropped, not sent: it could no longer be
used. The relay runs inline after a request (best effort), once from a command, or as a loop in a
worker. One pass is an operation (:func:`relay_pass`) run by :class:`OutboxRelay` against sync
ports and by :class:`AsyncOutboxRelay` against async ones. "At least once" means a crash between
delivery and marking can deliver a message twice; never zero times once committed.

A code waits in the outbox sealed (:class:`CodeSeal`): the operations seal it as they queue it,
and the relay opens it just before handing it to the notifier, so no store (whichever adapter,
whatever ``KEYTURN_SECRETS`` says) ever holds a code in clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs

from keyturn import effects
from keyturn._log import get_logger
from keyturn.crypto.sealing import SecretBox
from keyturn.effects import NOTIFIER, STORE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from keyturn.core.records import Delivery, Notification
    from keyturn.effects import Op
    from keyturn.ports import AsyncKeyStore, AsyncNotifier, Clock, KeyStore, Notifier

#: The ring id of the one key codes are sealed under; it also marks a value as sealed.
_SEALED_CODE: Final = "oc1"


@attrs.frozen
class CodeSeal:
    """Seals the codes the outbox holds: AES-256-GCM, bound to the notification's id.

    The key comes from the server key (``wiring.derive(server_key, "outbox-codes")``), so every
    worker and relay sharing a database opens what any of them sealed. A sealed code is
    ``oc1:<base64url>``; a value without that prefix is a code queued before codes were sealed,
    and is delivered as it is.
    """

    _box: SecretBox = attrs.field(alias="box", repr=False)

    @classmethod
    def from_key(cls, key: bytes) -> CodeSeal:
        """A seal under ``key`` (32 bytes)."""
        return cls(box=SecretBox({_SEALED_CODE: key}, _SEALED_CODE))

    @classmethod
    def generate(cls) -> CodeSeal:
        """A seal under a fresh random key (tests, throwaway stores)."""
        return cls(box=SecretBox.generate(_SEALED_CODE))

    def seal(self, notification: Notification | None) -> Notification | None:
        """``notification`` with its code sealed; one without a code (or ``None``) as it is."""
        if notification is None or notification.code is None:
            return notification
        sealed = self._box.seal(notification.code, context=_context(notification))
        return attrs.evolve(notification, code=sealed)

    def open(self, notification: Notification) -> Notification:
        """``notification`` with its code opened for delivery (a legacy plain code as it is).

        Raises :class:`~keyturn.crypto.sealing.SealError` for a value sealed under another server
        key or moved from another notification.
        """
        code = notification.code
        if code is None or not code.startswith(f"{_SEALED_CODE}:"):
            return notification
        opened = self._box.open(code, context=_context(notification))
        return attrs.evolve(notification, code=opened)


def _context(notification: Notification) -> str:
    return f"outbox/{notification.id}"


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


class RelayRules(Protocol):
    """What a relay pass needs: how many to claim, how long to back off, how codes are sealed."""

    batch: int
    code_seal: CodeSeal

    def backoff(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failed delivery."""
        ...


def relay_pass(
    rules: RelayRules,
    clock: Clock,
    logger: Any,  # noqa: ANN401 (structlog loggers have no useful static type)
    only: Sequence[str] | None = None,
) -> Op[RelayReport]:
    """One pass: deliver the notifications due now (up to ``batch``; of ``only``, if given).

    Never raises for one message: a failure is recorded and retried later.
    """
    now = clock.now()
    delivered = failed = expired = 0
    claimed: list[Delivery] = yield STORE.claim_deliveries(now, rules.batch, only)
    for d in claimed:
        n = d.notification
        log = logger.bind(notification_id=n.id, key_id=n.key_id, kind=n.kind.value)
        if n.expires_at is not None and n.expires_at <= now:
            yield STORE.mark_delivered(n.id, now)
            log.warning("notification_expired", attempts=d.attempts)
            expired += 1
            continue
        try:
            yield NOTIFIER.deliver(rules.code_seal.open(n))
        except Exception as e:  # noqa: BLE001 (any failure, opening included, means: retry later)
            retry_at = now + rules.backoff(d.attempts)
            yield STORE.mark_failed(n.id, retry_at, type(e).__name__)
            log.warning(
                "notification_failed",
                attempts=d.attempts,
                error=type(e).__name__,
                retry_at=retry_at.isoformat(),
            )
            failed += 1
        else:
            yield STORE.mark_delivered(n.id, clock.now())
            log.info("notification_delivered", attempts=d.attempts)
            delivered += 1
    return RelayReport(delivered, failed, expired)


@attrs.define(kw_only=True)
class _Backoff:
    batch: int = 100
    first_backoff: timedelta = timedelta(seconds=1)
    max_backoff: timedelta = timedelta(minutes=5)

    def backoff(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failed delivery: 1 s, 2 s, 4 s... capped."""
        wait: timedelta = self.first_backoff * (2 ** max(0, attempts - 1))
        return min(wait, self.max_backoff)


@attrs.define(kw_only=True)
class OutboxRelay(_Backoff):
    """Moves notifications from the store's outbox to the notifier."""

    store: KeyStore
    notifier: Notifier
    clock: Clock
    code_seal: CodeSeal
    logger: Any = attrs.field(factory=get_logger)

    def run_once(self, only: Sequence[str] | None = None) -> RelayReport:
        """Deliver the notifications due now (up to ``batch``; of ``only``, if given)."""
        ports = {"store": self.store, "notifier": self.notifier}
        return effects.run(relay_pass(self, self.clock, self.logger, only), ports)

    def run_forever(self, *, interval: float = 1.0, stop: threading.Event | None = None) -> None:
        """Run passes until ``stop`` is set, sleeping ``interval`` seconds when idle."""
        stop = stop or threading.Event()
        while not stop.is_set():
            if self.run_once().handled == 0:
                stop.wait(interval)


@attrs.define(kw_only=True)
class AsyncOutboxRelay(_Backoff):
    """:class:`OutboxRelay` over an async store and notifier: the same pass, awaited."""

    store: AsyncKeyStore
    notifier: AsyncNotifier
    clock: Clock
    code_seal: CodeSeal
    logger: Any = attrs.field(factory=get_logger)

    async def run_once(self, only: Sequence[str] | None = None) -> RelayReport:
        """Deliver the notifications due now (up to ``batch``; of ``only``, if given)."""
        ports = {"store": self.store, "notifier": self.notifier}
        return await effects.run_async(relay_pass(self, self.clock, self.logger, only), ports)

    async def run_forever(
        self, *, interval: float = 1.0, stop: asyncio.Event | None = None
    ) -> None:
        """Run passes until ``stop`` is set, sleeping ``interval`` seconds when idle."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            if (await self.run_once()).handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
