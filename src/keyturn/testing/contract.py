"""The store contract: what every :class:`~keyturn.ports.KeyStore` adapter must do, as tests.

Run it against your own store by subclassing and providing a ``store`` fixture that yields an
empty store::

    from keyturn.testing.contract import KeyStoreContract

    class TestMyStore(KeyStoreContract):
        @pytest.fixture
        def store(self):
            s = MyStore(...)
            yield s
            s.close()

keyturn runs it on its in-memory store (and on every persistent store it ships). It imports
pytest, so it is kept apart from :mod:`keyturn.testing`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import attrs
import pytest

from keyturn.core.errors import ConcurrentUpdate, QuotaExceeded
from keyturn.core.lifecycle import Action, State
from keyturn.core.records import (
    ApiKey,
    Challenge,
    Change,
    HistoryEntry,
    LoadedSession,
    Notification,
    NotificationKind,
    PendingCode,
    SecurityKey,
    Session,
)
from keyturn.core.scope import Scope
from keyturn.core.validation import ip_whitelist
from keyturn.crypto.hashing import new_client_id, new_token
from keyturn.ports.common import CLAIM_LEASE
from keyturn.testing import KnownCodeVerifier, ManualClock, RecordingNotifier, make_service

if TYPE_CHECKING:
    from keyturn.ports import KeyStore

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
#: The code the outbox test queues: long and unusual, so finding it anywhere means a leak.
UNDELIVERED_CODE = "40271993"


def new_key(owner: str = "alice", name: str = "k1") -> ApiKey:
    """An unsaved key in ``created`` (id 0, version 0) with every field set."""
    return ApiKey(
        id=0,
        owner=owner,
        client_id=new_client_id(),
        name=name,
        max_scope=Scope.parse("account:read trade:read_write"),
        ip_whitelist=ip_whitelist("10.0.0.0/8 2001:db8::/32"),
        enabled_features=("block_trade_approval",),
        state=State.CREATED,
        version=0,
        created_at=T0,
        updated_at=T0,
        fingerprint="sha256:0011223344556677",
        secret_digest="ab" * 32,
        sealed_secret="k1:" + "A" * 80,
    )


def new_challenge(action: Action, owner: str = "alice") -> Challenge:
    """An unsaved challenge for ``action`` by ``owner``, its code sent at ``T0``."""
    code = PendingCode(
        ref="r",
        sent_at=T0,
        expires_at=T0 + timedelta(minutes=5),
        resend_at=T0 + timedelta(minutes=2),
    )
    return Challenge(
        id=new_token(),
        owner=owner,
        action=action,
        key_id=None,
        request_digest="d" * 64,
        code=code,
    )


def new_security_key(owner: str, name: str = "phone") -> SecurityKey:
    """An unsaved version-1 security key of ``owner``, enrolled at ``T0``."""
    return SecurityKey(
        owner=owner, name=name, kind="tfa", sealed_secret="k1:" + new_token(), created_at=T0
    )


def code_notice(owner: str, at: datetime, code: str = "123456") -> Notification:
    """A code notification created at ``at``."""
    return Notification(
        id=new_token(),
        owner=owner,
        key_id=None,
        key_name="k1",
        kind=NotificationKind.CODE,
        subject="code",
        created_at=at,
        code=code,
        expires_at=at + timedelta(minutes=5),
    )


def creation(key: ApiKey, *notes: Notification) -> Change:
    """The change that inserts ``key``."""
    entry = HistoryEntry(
        key_id=0,
        version=1,
        action=Action.CREATE,
        event="new_api_key",
        from_state=None,
        to_state=State.CREATED,
        actor=key.owner,
        at=key.created_at,
    )
    return Change(
        key=attrs.evolve(key, version=1), expected_version=0, history=(entry,), notifications=notes
    )


def step(key: ApiKey, dest: State, at: datetime, *notes: Notification, **updates: object) -> Change:
    """The change that moves a stored ``key`` to ``dest``."""
    new = attrs.evolve(key, state=dest, version=key.version + 1, updated_at=at, **updates)  # type: ignore[arg-type]
    entry = HistoryEntry(
        key_id=key.id,
        version=new.version,
        action=Action.EDIT,
        event="changed_name",
        from_state=key.state,
        to_state=dest,
        actor=key.owner,
        at=at,
    )
    return Change(key=new, expected_version=key.version, history=(entry,), notifications=notes)


class KeyStoreContract:
    """The behaviours every key store must have. Provide a ``store`` fixture."""

    @pytest.fixture
    def store(self) -> KeyStore:
        """An empty store; override in your subclass."""
        raise NotImplementedError

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

    def test_nonce_is_accepted_once_while_remembered(self, store: KeyStore) -> None:
        """A nonce is accepted once per client until it expires; other clients are separate."""
        until = T0 + timedelta(seconds=60)
        assert store.use_nonce("c1", "n", expires_at=until, now=T0)
        assert not store.use_nonce("c1", "n", expires_at=until, now=T0 + timedelta(seconds=59))
        assert store.use_nonce("c2", "n", expires_at=until, now=T0)
        assert store.use_nonce("c1", "n2", expires_at=until, now=T0)
        assert store.use_nonce("c1", "n", expires_at=until + timedelta(seconds=60), now=until)

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

    def test_security_keys_round_trip_with_versions(self, store: KeyStore) -> None:
        """A security key reads back equal; a duplicate or stale save raises and writes nothing."""
        first = new_security_key("alice")
        store.save_security_key(first)
        assert store.get_security_key("alice") == first
        assert store.get_security_key("bob") is None
        with pytest.raises(ConcurrentUpdate):
            store.save_security_key(new_security_key("alice", name="other"))
        counted = attrs.evolve(first, failures=1, version=2)
        store.save_security_key(counted)
        with pytest.raises(ConcurrentUpdate):
            store.save_security_key(attrs.evolve(first, last_step=9, version=2))
        assert store.get_security_key("alice") == counted

    def test_security_keys_are_listed_by_owner_and_removed(self, store: KeyStore) -> None:
        """Security keys list by owner; removing one says whether there was one to remove."""
        store.save_security_key(new_security_key("carol"))
        store.save_security_key(new_security_key("alice"))
        assert [k.owner for k in store.list_security_keys()] == ["alice", "carol"]
        assert store.remove_security_key("alice")
        assert not store.remove_security_key("alice")
        assert store.get_security_key("alice") is None
        assert [k.owner for k in store.list_security_keys()] == ["carol"]
        store.save_security_key(new_security_key("alice"))
        assert store.get_security_key("alice") is not None

    # --- several steps in one change, the access log, sessions ---------------------------

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

    def test_a_session_is_read_with_its_key_and_ends(self, store: KeyStore) -> None:
        """A started session loads with its key in one read; ending it is seen by the next load."""
        key = store.insert(creation(new_key()), max_live_per_owner=8)
        session = new_session(key.id)
        store.start_session(session, max_per_key=16, now=T0)
        assert store.load_session(session.id) == LoadedSession(key, session, security_key=False)
        assert store.load_session("missing") is None
        assert store.end_session(session.id, T0 + timedelta(seconds=5))
        assert not store.end_session(session.id, T0 + timedelta(seconds=6))
        loaded = store.load_session(session.id)
        assert loaded is not None
        assert loaded.session.ended_at == T0 + timedelta(seconds=5)

    def test_a_session_loads_whether_its_owner_has_a_security_key(self, store: KeyStore) -> None:
        """Loading a session tells whether the key's owner has a security key, as it is now."""
        key = store.insert(creation(new_key()), max_live_per_owner=8)
        session = new_session(key.id)
        store.start_session(session, max_per_key=16, now=T0)
        store.save_security_key(new_security_key("bob"))
        loaded = store.load_session(session.id)
        assert loaded is not None
        assert not loaded.security_key
        store.save_security_key(new_security_key("alice"))
        loaded = store.load_session(session.id)
        assert loaded is not None
        assert loaded.security_key
        store.remove_security_key("alice")
        loaded = store.load_session(session.id)
        assert loaded is not None
        assert not loaded.security_key

    def test_rotating_a_refresh_id_is_a_compare_and_swap(self, store: KeyStore) -> None:
        """Only the live refresh id rotates, once; a stale id or an ended session changes none."""
        key = store.insert(creation(new_key()), max_live_per_owner=8)
        session = new_session(key.id)
        store.start_session(session, max_per_key=16, now=T0)
        assert store.rotate_session(session.id, expected=session.refresh_id, new="r2")
        assert not store.rotate_session(session.id, expected=session.refresh_id, new="r3")
        loaded = store.load_session(session.id)
        assert loaded is not None
        assert loaded.session.refresh_id == "r2"
        store.end_session(session.id, T0)
        assert not store.rotate_session(session.id, expected="r2", new="r4")

    def test_starting_a_session_forgets_dead_ones_and_caps_live_ones(self, store: KeyStore) -> None:
        """A new session drops the key's dead sessions and its oldest live ones beyond the cap."""
        key = store.insert(creation(new_key()), max_live_per_owner=8)
        other = store.insert(creation(new_key()), max_live_per_owner=8)
        ended = new_session(key.id, at=T0)
        store.start_session(ended, max_per_key=3, now=T0)
        store.end_session(ended.id, T0)
        expired = attrs.evolve(new_session(key.id, at=T0), expires_at=T0 + timedelta(seconds=1))
        store.start_session(expired, max_per_key=3, now=T0)
        theirs = new_session(other.id, at=T0)
        store.start_session(theirs, max_per_key=3, now=T0)
        later = [new_session(key.id, at=T0 + timedelta(seconds=10 + i)) for i in range(4)]
        for s in later:
            store.start_session(s, max_per_key=3, now=T0 + timedelta(seconds=10))
        assert store.load_session(ended.id) is None
        assert store.load_session(expired.id) is None
        assert store.load_session(later[0].id) is None
        assert all(store.load_session(s.id) is not None for s in later[1:])
        assert store.load_session(theirs.id) is not None


def new_session(key_id: int, at: datetime = T0) -> Session:
    """An unsaved session of key ``key_id`` started at ``at``, good for a day."""
    return Session(
        id=new_token(),
        key_id=key_id,
        generation=0,
        refresh_id=new_token(),
        created_at=at,
        expires_at=at + timedelta(days=1),
    )
