"""The outbox relay: delivery, retries with backoff, and codes that expired undelivered."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
import pytest
from structlog.testing import capture_logs

from keyturn import Action, ConfirmationRequired, KeyService, State, StoreError
from keyturn.crypto.sealing import CodeSeal, SealError
from keyturn.testing import (
    InMemoryKeyStore,
    ManualClock,
    RecordingNotifier,
    key_in_state,
    make_service,
)
from keyturn.testing.contract.records import T0, code_notice, creation, new_key

if TYPE_CHECKING:
    from keyturn.adapters.sqlite import SQLiteKeyStore
    from keyturn.core.records import ApiKey


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


def test_code_for_a_key_removed_since_is_dropped(
    service: KeyService, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """A code still undelivered when its key is removed is dropped, not sent; news still goes."""
    notifier.failing = True
    key_id = key_in_state(service, State.PENDING_2FA).key.id
    service.remove(key_id, owner="alice")
    notifier.failing = False
    clock.advance(timedelta(minutes=1))  # the failed deliveries are due again
    report = service.relay.run_once()
    assert notifier.codes() == []  # the code for the removed key never went out
    assert report.expired == 1
    assert report.delivered >= 1  # the news of the changes did
    assert service.relay.run_once().handled == 0  # and nothing waits any more


def test_queued_codes_for_live_keys_and_for_no_key_go_out(
    service: KeyService, notifier: RecordingNotifier
) -> None:
    """Through the relay, an activation code and a code confirming a create (no key) are sent."""
    service.deliver_inline = False
    service.policy = attrs.evolve(service.policy, confirm=frozenset({Action.CREATE}))
    with pytest.raises(ConfirmationRequired):
        service.create(owner="alice", name="k2", max_scope="account:read")
    service.policy = attrs.evolve(service.policy, confirm=frozenset())
    key_id = key_in_state(service, State.PENDING_2FA).key.id
    report = service.relay.run_once()
    assert report.expired == 0
    assert len(notifier.codes()) == 2  # the confirmation's and the activation's
    assert notifier.last_code(key_id)


class _UnreadableKeys(InMemoryKeyStore):
    """A store whose key reads fail once ``failing`` is set (writes and the outbox still work)."""

    failing = False

    def get(self, key_id: int) -> ApiKey | None:
        """The key, or a StoreError while ``failing``."""
        if self.failing:
            msg = "the store is away"
            raise StoreError(msg)
        return super().get(key_id)


def test_a_failed_read_of_a_codes_key_is_retried_not_fatal() -> None:
    """If reading a queued code's key fails, that code is retried later and the pass goes on."""
    store, notifier, clock = _UnreadableKeys(), RecordingNotifier(), ManualClock()
    service = make_service(store=store, notifier=notifier, clock=clock)
    service.deliver_inline = False
    key_in_state(service, State.PENDING_2FA)
    store.failing = True
    report = service.relay.run_once()
    assert report.failed == 1  # the code: its key could not be read
    assert report.delivered >= 1  # the news of the key's changes still went out
    assert notifier.codes() == []
    store.failing = False
    clock.advance(timedelta(seconds=2))  # the retry is due
    assert service.relay.run_once().delivered == 1
    assert len(notifier.codes()) == 1


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


def test_code_queued_in_clear_before_sealing_is_still_delivered(
    store: InMemoryKeyStore | SQLiteKeyStore,
) -> None:
    """A code an older keyturn queued in clear is delivered as it is, then erased."""
    legacy = code_notice("alice", T0, code="424242")
    store.insert(creation(new_key(), legacy), max_live_per_owner=8)
    notifier = RecordingNotifier()
    service = make_service(store=store, notifier=notifier, clock=ManualClock(T0))
    assert service.relay.run_once().delivered == 1
    assert notifier.codes() == ["424242"]
    assert list(store.stored_codes()) == []


def test_code_sealed_under_another_key_is_retried_not_lost(
    store: InMemoryKeyStore | SQLiteKeyStore,
) -> None:
    """A relay that cannot open a sealed code records a failure and sends nothing; the right relay delivers it later."""
    clock, sent, wrong = ManualClock(), RecordingNotifier(), RecordingNotifier()
    service = make_service(store=store, notifier=sent, clock=clock)
    service.deliver_inline = False
    key_id = key_in_state(service, State.SECRET_ACKNOWLEDGED).key.id
    service.request_activation(key_id, owner="alice")
    other = make_service(store=store, notifier=wrong, clock=clock)
    with capture_logs() as logs:
        report = other.relay.run_once()
    assert (report.delivered, report.failed) == (1, 1)  # the key event went; the code did not
    assert wrong.codes() == []
    assert [e["error"] for e in logs if e["event"] == "notification_failed"] == ["SealError"]
    clock.advance(seconds=1)
    assert service.relay.run_once().delivered == 1
    assert len(sent.codes(key_id)) == 1
    assert list(store.stored_codes()) == []


def test_seal_binds_a_code_to_its_notification() -> None:
    """A sealed code hides the code, and moved onto another notification it does not open."""
    seal = CodeSeal.generate()
    first, second = code_notice("alice", T0, code="424242"), code_notice("alice", T0)
    sealed = seal.seal_code(first)
    assert sealed.code is not None
    assert "424242" not in sealed.code
    assert seal.open_code(sealed) == first
    with pytest.raises(SealError):
        seal.open_code(attrs.evolve(second, code=sealed.code))
    with pytest.raises(SealError):
        CodeSeal.generate().open_code(sealed)
    assert "424242" not in repr(seal) + repr(sealed)


def test_a_mark_that_fails_does_not_fail_the_request(clock: ManualClock) -> None:
    """If marking the inline delivery fails, the request still succeeds; the relay retries later."""
    from keyturn import StoreError  # noqa: PLC0415
    from keyturn.adapters.memory import InMemoryKeyStore  # noqa: PLC0415

    class MarkFails(InMemoryKeyStore):
        def mark_delivered(self, notifications: Any, now: Any) -> None:
            raise StoreError("the store went away")

    store, notifier = MarkFails(), RecordingNotifier()
    service = make_service(store=store, notifier=notifier, clock=clock)
    with capture_logs() as logs:
        issued = service.create(owner="alice", name="k1", max_scope="account:read")
    assert issued.client_secret
    assert notifier.events(issued.key.id) == ["API key 'k1' was created"]
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["inline_delivery_unmarked"]
    assert store.pending_notifications() == 1
    clock.advance(timedelta(seconds=61))  # the claim lapses: the relay delivers it again
    assert store.claim_deliveries(clock.now(), 10)[0].attempts == 2
