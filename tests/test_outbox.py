"""The outbox relay: delivery, retries with backoff, and codes that expired undelivered."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from keyturn import KeyService, State
from keyturn.testing import ManualClock, RecordingNotifier, key_in_state

if TYPE_CHECKING:
    from keyturn.adapters.memory import InMemoryKeyStore
    from keyturn.adapters.sqlite import SQLiteKeyStore


def test_failed_delivery_stays_pending_and_is_retried(
    service: KeyService,
    notifier: RecordingNotifier,
    clock: ManualClock,
    store: InMemoryKeyStore | SQLiteKeyStore,
) -> None:
    """While the notifier fails the code stays in the outbox; the next relay run delivers it."""
    notifier.failing = True
    key_id = key_in_state(service, State.SECRET_ACKNOWLEDGED).key.id
    service.request_activation(key_id, owner="alice")
    assert notifier.sent == []
    assert store.pending_notifications() == 2
    notifier.failing = False
    assert service.relay.run_once().delivered == 0
    clock.advance(timedelta(seconds=1))
    report = service.relay.run_once()
    assert report.delivered == 2
    assert service.verify_code(key_id, notifier.last_code(key_id), owner="alice").enabled


def test_backoff_doubles_and_is_capped(service: KeyService) -> None:
    """Backoff is 1 s, 2 s, 4 s... and never more than five minutes."""
    waits = [service.relay.backoff(n).total_seconds() for n in (1, 2, 3, 4, 20)]
    assert waits == [1, 2, 4, 8, 300]


def test_delivered_notification_loses_its_code(
    service: KeyService, store: InMemoryKeyStore | SQLiteKeyStore, notifier: RecordingNotifier
) -> None:
    """Once delivered, a code notification no longer holds the code in storage."""
    notifier.failing = True
    key_in_state(service, State.PENDING_2FA)
    assert len(list(store.stored_codes())) == 1
    notifier.failing = False
    service.relay.run_once()
    service.relay.clock.advance(timedelta(seconds=2))  # type: ignore[attr-defined]
    service.relay.run_once()
    assert list(store.stored_codes()) == []
    assert notifier.codes()


def test_code_that_expired_undelivered_is_dropped(
    service: KeyService, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """A code still undelivered at its expiry is dropped, not sent."""
    notifier.failing = True
    key_in_state(service, State.PENDING_2FA)
    notifier.failing = False
    clock.advance(timedelta(minutes=5))
    report = service.relay.run_once()
    assert report.expired == 1
    assert notifier.codes() == []


def test_fresh_code_is_not_stuck_behind_a_backlog(
    service: KeyService, notifier: RecordingNotifier, store: InMemoryKeyStore | SQLiteKeyStore
) -> None:
    """Inline delivery sends the request's own code at once, even with 150 older messages due."""
    key_id = key_in_state(service, State.SECRET_ACKNOWLEDGED).key.id
    service.deliver_inline = False
    for i in range(150):
        service.create(owner=f"backlog{i}", name="k", max_scope="account:read")
    service.deliver_inline = True
    service.request_activation(key_id, owner="alice")
    assert service.verify_code(key_id, notifier.last_code(key_id), owner="alice").enabled
    assert store.pending_notifications() == 150


def test_run_forever_stops_when_told(
    keyturn_service: KeyService, notifier: RecordingNotifier
) -> None:
    """The sync relay loop delivers what is due and returns once its stop event is set.

    (The async relay's loop has its own test in ``test_aio.py``.)
    """
    import threading  # noqa: PLC0415

    service = keyturn_service

    service.deliver_inline = False
    key_in_state(service, State.CREATED)
    stop = threading.Event()
    worker = threading.Thread(
        target=service.relay.run_forever, kwargs={"interval": 0.01, "stop": stop}
    )
    worker.start()
    for _ in range(500):
        if notifier.events():
            break
        threading.Event().wait(0.01)
    stop.set()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert notifier.events() == ["API key 'k1' was created"]
