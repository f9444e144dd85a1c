"""Statements per operation: each does the fewest store round trips its rule allows.

A store's ``watch`` sees every statement it sends (``BEGIN`` and ``COMMIT`` included; SQLite's
connection-level ``PRAGMA`` settings are left out of the counts), so a regression that adds a
read or a transaction shows here as a changed list, on SQLite and on PostgreSQL, and through the
HTTP API for the calls a client makes most.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import attrs
import pytest

from apitools import call, login, portal_key, serving
from keyturn import State
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.testing import RecordingNotifier, key_in_state, make_service

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from keyturn.adapters.sql._sync.store import SqlStore

POSTGRES_URL = os.environ.get("KEYTURN_TEST_POSTGRES", "")
_NO_POSTGRES = pytest.mark.skipif(
    not POSTGRES_URL, reason="set KEYTURN_TEST_POSTGRES to a PostgreSQL URL to run (.ci/run does)"
)


class Statements:
    """What a store sent, as the first word of each statement (``PRAGMA`` left out)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, statement: str) -> None:
        """Note one statement."""
        word = statement.split(None, 1)[0].upper()
        if word != "PRAGMA":
            self.sent.append(word)

    def take(self) -> list[str]:
        """The statements sent since the last take."""
        sent, self.sent = self.sent, []
        return sent


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=_NO_POSTGRES)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """A SQL store of each kind, its statements not yet watched."""
    if request.param == "sqlite":
        sqlite = SQLiteKeyStore(tmp_path / "keys.db", synchronous="OFF")
        yield sqlite
        sqlite.close()
        return
    from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

    pg = PostgresKeyStore(POSTGRES_URL, schema=f"kt_{uuid.uuid4().hex[:12]}", max_size=2)
    yield pg
    pg.drop_schema()
    pg.close()


def test_a_read_is_one_statement_outside_any_transaction(store: SqlStore) -> None:
    """Reading a key, by id or client id, or an owner's keys, sends one SELECT and nothing else."""
    service = make_service(store=store)
    key = key_in_state(service, State.ACTIVE).key
    seen = Statements()
    store.watch(seen)
    store.get(key.id)
    assert seen.take() == ["SELECT"]
    store.get_by_client_id(key.client_id)
    assert seen.take() == ["SELECT"]
    store.get_by_client_id("nobody")
    assert seen.take() == ["SELECT"]
    store.list_keys(key.owner)
    assert seen.take() == ["SELECT"]


def test_a_change_delivered_inline_is_one_transaction_and_one_mark(store: SqlStore) -> None:
    """disable/enable: one read, one transaction (key, history, outbox claimed), one mark."""
    notifier = RecordingNotifier()
    service = make_service(store=store, notifier=notifier)
    service.policy = attrs.evolve(service.policy, direct_enable=True)
    key = key_in_state(service, State.ACTIVE).key
    seen = Statements()
    store.watch(seen)
    sent_before = len(notifier.sent)
    service.disable(key.id, owner=key.owner)
    assert seen.take() == ["SELECT", "BEGIN", "UPDATE", "INSERT", "INSERT", "COMMIT", "UPDATE"]
    service.enable(key.id, owner=key.owner)
    assert seen.take() == ["SELECT", "BEGIN", "UPDATE", "INSERT", "INSERT", "COMMIT", "UPDATE"]
    assert len(notifier.sent) == sent_before + 2
    assert store.pending_notifications() == 0


def test_a_key_read_by_the_caller_is_not_read_again(store: SqlStore) -> None:
    """A command given the key its caller just read (``loaded``) starts with the transaction."""
    service = make_service(store=store)
    key = key_in_state(service, State.ACTIVE).key
    seen = Statements()
    store.watch(seen)
    service.disable(key.id, owner=key.owner, loaded=service.get(key.id, owner=key.owner))
    assert seen.take().count("SELECT") == 1


def test_a_relay_pass_claims_in_one_statement_and_marks_in_one(store: SqlStore) -> None:
    """The relay's pass: one claiming UPDATE, a read of each queued code's key, one mark.

    The read per code is what lets the relay drop a code whose key was removed since it was
    queued; inline delivery of a request's own code skips it.
    """
    notifier = RecordingNotifier()
    service = make_service(store=store, notifier=notifier)
    service.deliver_inline = False
    for name in ("a", "b", "c"):
        key_in_state(service, State.PENDING_2FA, name=name)
    seen = Statements()
    store.watch(seen)
    report = service.relay.run_once()
    assert report.delivered >= 3
    assert seen.take() == ["BEGIN", "UPDATE", "COMMIT", "SELECT", "SELECT", "SELECT", "UPDATE"]


def test_api_calls_read_once_per_need(tmp_path: Path) -> None:
    """Over HTTP, listing keys with a token is two SELECTs (session with flags, keys), no BEGIN."""
    with serving(tmp_path) as (service, url):
        client_id, secret = portal_key(service)
        token = login(url, client_id, secret)
        store = service.store
        assert isinstance(store, SQLiteKeyStore)
        seen = Statements()
        store.watch(seen)
        listed = call(url, "private/list_api_keys", token=token)
        assert "result" in listed, listed
        assert seen.take() == ["SELECT", "SELECT"]


def test_an_api_change_reads_the_key_once(tmp_path: Path) -> None:
    """Over HTTP, disabling a key reads the session and the key once each, then one transaction."""
    with serving(tmp_path) as (service, url):
        client_id, secret = portal_key(service)
        token = login(url, client_id, secret)
        other = key_in_state(
            service, State.ACTIVE, owner="acct1", name="other", max_scope="trade:read"
        ).key
        store = service.store
        assert isinstance(store, SQLiteKeyStore)
        seen = Statements()
        store.watch(seen)
        answer = call(url, "private/disable_api_key", {"id": other.id}, token=token)
        assert answer.get("result", {}).get("enabled") is False, answer
        assert seen.take() == [
            "SELECT",  # the session, its key and the security-key flag
            "SELECT",  # the key to disable (its scope is checked against the caller's)
            "BEGIN",
            "UPDATE",
            "INSERT",
            "INSERT",
            "COMMIT",
            "UPDATE",  # the inline relay marks the notice delivered
        ]
