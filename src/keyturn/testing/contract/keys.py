"""The store contract, part: keys, history, changes and challenges (atomic, read back equal)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
import pytest

from keyturn.core.errors import ConcurrentUpdate, QuotaExceeded
from keyturn.core.lifecycle import Action, State
from keyturn.core.records import (
    PendingCode,
)

if TYPE_CHECKING:
    from keyturn.ports import KeyStore

from keyturn.testing.contract.records import (
    T0,
    code_notice,
    creation,
    new_challenge,
    new_key,
    step,
)


class KeysContract:
    """Keys, their history, changes and challenges: written atomically, read back equal."""

    def test_insert_assigns_distinct_ids(self, store: KeyStore) -> None:
        """Inserting keys gives each a distinct positive id and stores every field as given."""
        a = store.insert(creation(new_key()), max_live_per_owner=8)
        b = store.insert(creation(new_key(name="k2")), max_live_per_owner=8)
        assert a.id > 0
        assert b.id > 0
        assert a.id != b.id
        assert store.get(a.id) == a

    def test_round_trip_keeps_every_field(self, store: KeyStore) -> None:
        """A stored key reads back equal, pending code and send times included."""
        key = store.insert(creation(new_key()), max_live_per_owner=8)
        pending = PendingCode(
            ref="salt:mac",
            sent_at=T0,
            expires_at=T0 + timedelta(minutes=5),
            resend_at=T0 + timedelta(minutes=2),
            attempts=2,
        )
        change = step(
            key,
            State.PENDING_2FA,
            T0,
            pending=pending,
            sends=(T0,),
            consecutive_failures=3,
            activation_origin=State.SECRET_ACKNOWLEDGED,
            public_key=None,
        )
        store.apply(change)
        assert store.get(key.id) == change.key

    def test_lookup_by_client_id_and_owner(self, store: KeyStore) -> None:
        """Keys are found by client id, and listed by owner in id order."""
        a = store.insert(creation(new_key("alice", "a1")), max_live_per_owner=8)
        b = store.insert(creation(new_key("bob", "b1")), max_live_per_owner=8)
        c = store.insert(creation(new_key("alice", "a2")), max_live_per_owner=8)
        assert store.get_by_client_id(b.client_id) == b
        assert store.get_by_client_id("nobody00") is None
        assert store.get(10**9) is None
        assert [k.id for k in store.list_keys("alice")] == [a.id, c.id]
        assert [k.id for k in store.list_keys()] == [a.id, b.id, c.id]

    def test_stale_apply_raises_and_writes_nothing(self, store: KeyStore) -> None:
        """A change built on an old version raises ConcurrentUpdate and leaves the key as it was."""
        key = store.insert(creation(new_key()), max_live_per_owner=8)
        first = step(key, State.SECRET_ACKNOWLEDGED, T0)
        store.apply(first)
        stale = step(key, State.REMOVED, T0, code_notice(key.owner, T0))
        with pytest.raises(ConcurrentUpdate):
            store.apply(stale)
        assert store.get(key.id) == first.key
        assert [h.version for h in store.history(key.id)] == [1, 2]
        assert len(store.claim_deliveries(T0, 100)) == 0

    def test_history_is_appended_in_order(self, store: KeyStore) -> None:
        """Each applied change appends its history entry; entries read back oldest first."""
        key = store.insert(creation(new_key()), max_live_per_owner=8)
        c1 = step(key, State.SECRET_ACKNOWLEDGED, T0 + timedelta(seconds=1))
        store.apply(c1)
        c2 = step(c1.key, State.PENDING_2FA, T0 + timedelta(seconds=2))
        store.apply(c2)
        history = store.history(key.id)
        assert [h.version for h in history] == [1, 2, 3]
        assert history[0].key_id == key.id
        assert history[0].from_state is None
        assert (history[2],) == c2.history

    def test_quota_counts_live_keys_only(self, store: KeyStore) -> None:
        """Insert refuses a key beyond the owner's quota of live keys; removed keys do not count."""
        keys = [store.insert(creation(new_key()), max_live_per_owner=2) for _ in range(2)]
        with pytest.raises(QuotaExceeded):
            store.insert(creation(new_key()), max_live_per_owner=2)
        store.insert(creation(new_key("bob")), max_live_per_owner=2)
        store.apply(step(keys[0], State.REMOVED, T0))
        store.insert(creation(new_key()), max_live_per_owner=2)
        assert len(store.list_keys("alice")) == 3

    def test_challenges_round_trip_and_version(self, store: KeyStore) -> None:
        """A challenge reads back equal; saving a stale version raises and writes nothing."""
        ch = new_challenge(Action.REMOVE)
        note = code_notice("alice", T0)
        store.add_challenge(ch, [note])
        assert store.get_challenge(ch.id) == ch
        assert store.get_challenge("missing") is None
        used = attrs.evolve(ch, used=True, version=2)
        store.save_challenge(used)
        with pytest.raises(ConcurrentUpdate):
            store.save_challenge(attrs.evolve(ch, version=2))
        assert store.get_challenge(ch.id) == used
        assert [d.notification.id for d in store.claim_deliveries(T0, 10)] == [note.id]

    def test_recent_challenges_are_the_owners_sent_after_a_time(self, store: KeyStore) -> None:
        """An owner's challenges sent after ``since`` come back oldest first, updates included."""
        early = new_challenge(Action.REMOVE)
        late = new_challenge(Action.EDIT)
        late = attrs.evolve(
            late, code=attrs.evolve(late.code, sent_at=late.code.sent_at + timedelta(minutes=3))
        )
        theirs = new_challenge(Action.REMOVE, owner="bob")
        for ch in (late, early, theirs):
            store.add_challenge(ch, [])
        assert store.recent_challenges("alice", since=T0 - timedelta(seconds=1)) == [early, late]
        assert store.recent_challenges("alice", since=early.code.sent_at) == [late]
        assert store.recent_challenges("carol", since=T0 - timedelta(days=1)) == []
        used = attrs.evolve(early, used=True, version=2)
        store.save_challenge(used)
        assert store.recent_challenges("alice", since=T0 - timedelta(seconds=1)) == [used, late]

    def test_a_challenge_is_added_only_if_the_owners_recent_ones_are_as_seen(
        self, store: KeyStore
    ) -> None:
        """add_challenge(seen=(since, n)) writes only while n were sent for its action and key."""
        since = T0 - timedelta(seconds=1)
        first, second = new_challenge(Action.REMOVE), new_challenge(Action.REMOVE)
        sent = code_notice("alice", T0)
        store.add_challenge(first, [sent], seen=(since, 0))
        with pytest.raises(ConcurrentUpdate):  # decided on an empty list: another came since
            store.add_challenge(second, [code_notice("alice", T0, "222222")], seen=(since, 0))
        assert store.get_challenge(second.id) is None
        # the refused challenge's code was not queued
        assert [d.notification.id for d in store.claim_deliveries(T0, 10)] == [sent.id]
        store.add_challenge(second, [], seen=(since, 1))
        other_action, other_key = new_challenge(Action.EDIT), new_challenge(Action.REMOVE)
        other_key = attrs.evolve(other_key, key_id=7)
        store.add_challenge(other_action, [], seen=(since, 0))  # counted apart: another action
        store.add_challenge(other_key, [], seen=(since, 0))  # and another key
        store.add_challenge(new_challenge(Action.REMOVE, owner="bob"), [], seen=(since, 0))
        recent = store.recent_challenges("alice", since=since)
        assert {c.id for c in recent} == {first.id, second.id, other_action.id, other_key.id}

    def test_change_consumes_challenge_atomically(self, store: KeyStore) -> None:
        """A change carrying a challenge saves both, or neither when the challenge is stale."""
        ch = new_challenge(Action.CREATE)
        store.add_challenge(ch, [])
        used = attrs.evolve(ch, used=True, version=2)
        key = store.insert(attrs.evolve(creation(new_key()), challenge=used), max_live_per_owner=8)
        assert store.get_challenge(ch.id) == attrs.evolve(used, key_id=key.id)
        with pytest.raises(ConcurrentUpdate):
            store.insert(attrs.evolve(creation(new_key()), challenge=used), max_live_per_owner=8)
        assert len(store.list_keys("alice")) == 1

    def test_reseal_swaps_only_the_expected_value(self, store: KeyStore) -> None:
        """Re-sealing swaps the expected sealed value, same version; otherwise it writes nothing."""
        key = store.insert(creation(new_key()), max_live_per_owner=8)
        assert key.sealed_secret is not None
        resealed = "k2:BBBB"
        assert store.reseal(key.id, expected=key.sealed_secret, sealed=resealed)
        assert store.get(key.id) == attrs.evolve(key, sealed_secret=resealed)
        assert not store.reseal(key.id, expected=key.sealed_secret, sealed="k3:CCCC")
        assert not store.reseal(key.id + 1000, expected="x", sealed="k3:CCCC")
        stored = store.get(key.id)
        assert stored is not None
        assert stored.sealed_secret == resealed
        assert len(store.history(key.id)) == 1

    def test_a_change_of_several_steps_writes_every_entry_or_none(self, store: KeyStore) -> None:
        """A change of chained steps writes all its history entries, or, if stale, none."""
        key = store.insert(creation(new_key()), max_live_per_owner=8)
        first = step(key, State.SECRET_ACKNOWLEDGED, T0 + timedelta(seconds=1))
        second = step(first.key, State.ACTIVE, T0 + timedelta(seconds=2))
        both = attrs.evolve(
            second, expected_version=key.version, history=first.history + second.history
        )
        store.apply(both)
        assert [h.version for h in store.history(key.id)] == [1, 2, 3]
        stale = attrs.evolve(both, key=attrs.evolve(both.key, version=5))
        with pytest.raises(ConcurrentUpdate):
            store.apply(stale)
        assert [h.version for h in store.history(key.id)] == [1, 2, 3]

    def test_access_log_pages_the_owners_history_newest_first(self, store: KeyStore) -> None:
        """The access log: every key of the owner (removed too), newest first, paged, filtered."""
        a = store.insert(creation(new_key()), max_live_per_owner=8)
        b = store.insert(creation(new_key()), max_live_per_owner=8)
        store.insert(creation(new_key(owner="bob")), max_live_per_owner=8)
        gone = step(a, State.REMOVED, T0 + timedelta(seconds=3))
        store.apply(
            attrs.evolve(gone, history=(attrs.evolve(gone.history[0], event="removed_api_key"),))
        )
        renamed = step(b, State.CREATED, T0 + timedelta(seconds=2))
        store.apply(renamed)
        log = store.access_log("alice", limit=10)
        assert [(e.entry.key_id, e.entry.version) for e in log] == [
            (a.id, 2),
            (b.id, 2),
            (b.id, 1),
            (a.id, 1),
        ]
        assert [e.client_id for e in log] == [a.client_id, b.client_id, b.client_id, a.client_id]
        assert [
            (e.entry.key_id, e.entry.version) for e in store.access_log("alice", offset=1, limit=2)
        ] == [(b.id, 2), (b.id, 1)]
        only = store.access_log("alice", events={"removed_api_key", "new_api_key"}, limit=10)
        assert [e.entry.event for e in only] == ["removed_api_key", "new_api_key", "new_api_key"]
        assert store.access_log("nobody") == []
