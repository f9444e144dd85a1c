"""The store contract, part: the outbox (claims, leases, retries, marks, codes kept sealed)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import attrs

from keyturn.core.records import (
    NotificationKind,
)
from keyturn.ports.common import CLAIM_LEASE
from keyturn.testing import KnownCodeVerifier, ManualClock, RecordingNotifier, make_service

if TYPE_CHECKING:
    from keyturn.ports import KeyStore

from keyturn.testing.contract.records import (
    T0,
    UNDELIVERED_CODE,
    code_notice,
    creation,
    new_key,
)


class OutboxContract:
    """The outbox: claims, leases, retries, marks, and codes kept only sealed."""

    def test_notifications_are_claimed_once_then_delivered(self, store: KeyStore) -> None:
        """A committed notification is claimed by one caller; once delivered its code is gone."""
        note = code_notice("alice", T0)
        store.insert(creation(new_key(), note), max_live_per_owner=8)
        claimed = store.claim_deliveries(T0, 10)
        assert [d.notification.id for d in claimed] == [note.id]
        assert claimed[0].notification.code == "123456"
        assert claimed[0].attempts == 1
        assert store.claim_deliveries(T0, 10) == []
        store.mark_delivered([claimed[0].notification], T0)
        assert store.claim_deliveries(T0 + timedelta(hours=1), 10) == []

    def test_failed_delivery_is_due_again_later(self, store: KeyStore) -> None:
        """A failed notification is not due before its retry time and is due from it on."""
        note = code_notice("alice", T0)
        store.insert(creation(new_key(), note), max_live_per_owner=8)
        store.claim_deliveries(T0, 10)
        store.mark_failed(note.id, T0 + timedelta(seconds=4), "ConnectionError")
        assert store.claim_deliveries(T0 + timedelta(seconds=3), 10) == []
        again = store.claim_deliveries(T0 + timedelta(seconds=4), 10)
        assert [(d.notification.id, d.attempts) for d in again] == [(note.id, 2)]

    def test_claims_are_oldest_first_and_limited(self, store: KeyStore) -> None:
        """Claims take the oldest notifications first, at most ``limit``."""
        notes = [code_notice("alice", T0 + timedelta(seconds=s)) for s in (3, 1, 2)]
        store.insert(creation(new_key(), *notes), max_live_per_owner=8)
        claimed = store.claim_deliveries(T0 + timedelta(seconds=5), 2)
        assert [d.notification.id for d in claimed] == [notes[1].id, notes[2].id]

    def test_a_change_can_store_its_notifications_claimed(self, store: KeyStore) -> None:
        """With ``claim`` a write's notifications are its caller's for the lease, then due again."""
        old = code_notice("alice", T0)
        store.insert(creation(new_key(), old), max_live_per_owner=8)
        mine = [code_notice("alice", T0), code_notice("alice", T0)]
        key = store.insert(creation(new_key(name="k2"), *mine), max_live_per_owner=8, claim=True)
        assert key.id > 0
        claimed = store.claim_deliveries(T0, 10)
        assert [d.notification.id for d in claimed] == [old.id]
        lapsed = store.claim_deliveries(T0 + CLAIM_LEASE, 10)
        assert sorted((d.notification.id, d.attempts) for d in lapsed) == sorted(
            [(mine[0].id, 2), (mine[1].id, 2), (old.id, 2)]
        )
        store.mark_delivered([d.notification for d in lapsed], T0 + CLAIM_LEASE)
        assert store.claim_deliveries(T0 + timedelta(hours=1), 10) == []

    def test_outbox_holds_no_code_in_clear(self, store: KeyStore) -> None:
        """A service over this store leaves a queued code in it only sealed; the relay opens it."""
        clock, notifier = ManualClock(), RecordingNotifier()
        service = make_service(
            store=store,
            clock=clock,
            notifier=notifier,
            verifier=KnownCodeVerifier.of([UNDELIVERED_CODE], length=len(UNDELIVERED_CODE)),
        )
        service.deliver_inline = False
        key_id = service.create(owner="alice", name="k1", max_scope="account:read").key.id
        service.acknowledge_secret(key_id, owner="alice")
        service.request_activation(key_id, owner="alice")
        held = [attrs.asdict(d.notification) for d in store.claim_deliveries(clock.now(), 100)]
        assert [n["kind"] for n in held].count(NotificationKind.CODE) == 1
        for note in held:
            assert all(UNDELIVERED_CODE not in str(value) for value in note.values())
        clock.advance(seconds=61)  # the claim above lapses
        assert service.relay.run_once().delivered == len(held)
        assert notifier.last_code(key_id) == UNDELIVERED_CODE
        assert store.claim_deliveries(clock.now() + timedelta(hours=1), 100) == []
