"""The store contract, part: signature nonces, security keys and API sessions."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
import pytest

from keyturn.core.errors import ConcurrentUpdate
from keyturn.core.records import (
    LoadedSession,
)

if TYPE_CHECKING:
    from keyturn.ports import KeyStore

from keyturn.testing.contract.records import (
    T0,
    creation,
    new_key,
    new_security_key,
    new_session,
)


class AccessContract:
    """Signature nonces, security keys and API sessions."""

    def test_nonce_is_accepted_once_while_remembered(self, store: KeyStore) -> None:
        """A nonce is accepted once per client until it expires; other clients are separate."""
        until = T0 + timedelta(seconds=60)
        assert store.use_nonce("c1", "n", expires_at=until, now=T0)
        assert not store.use_nonce("c1", "n", expires_at=until, now=T0 + timedelta(seconds=59))
        assert store.use_nonce("c2", "n", expires_at=until, now=T0)
        assert store.use_nonce("c1", "n2", expires_at=until, now=T0)
        assert store.use_nonce("c1", "n", expires_at=until + timedelta(seconds=60), now=until)

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

    def test_a_session_started_again_replaces_the_old_one(self, store: KeyStore) -> None:
        """Starting a session whose id exists replaces it, ended or live: its old row is gone."""
        key = store.insert(creation(new_key()), max_live_per_owner=8)
        first = new_session(key.id)
        store.start_session(first, max_per_key=16, now=T0)
        store.end_session(first.id, T0)
        again = attrs.evolve(first, refresh_id="r2", created_at=T0 + timedelta(seconds=1))
        store.start_session(again, max_per_key=16, now=T0 + timedelta(seconds=1))
        loaded = store.load_session(first.id)
        assert loaded is not None
        assert loaded.session == again
        live = attrs.evolve(again, refresh_id="r3", created_at=T0 + timedelta(seconds=2))
        store.start_session(live, max_per_key=16, now=T0 + timedelta(seconds=2))
        loaded = store.load_session(first.id)
        assert loaded is not None
        assert loaded.session == live

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
