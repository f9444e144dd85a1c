"""The SQLite store: the shared contract, durability settings, restarts and migrations."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
import pytest

from keyturn import SecurityKey, State, StoreError
from keyturn.adapters.sql.schema import SCHEMAS, SQLITE
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.core.records import LoadedSession, Session
from keyturn.testing import key_in_state, make_service
from keyturn.testing.contract import KeyStoreContract

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class TestSQLiteContract(KeyStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteKeyStore]:
        """An empty SQLite store in a fresh file."""
        s = SQLiteKeyStore(tmp_path / "keys.db")
        yield s
        s.close()


def test_keys_survive_a_restart(tmp_path: Path) -> None:
    """A key, its history and its pending code are all there after the store is reopened."""
    path = tmp_path / "keys.db"
    store = SQLiteKeyStore(path)
    service = make_service(store=store)
    key_id = key_in_state(service, State.PENDING_2FA).key.id
    before = store.get(key_id)
    history = store.history(key_id)
    store.close()
    again = SQLiteKeyStore(path)
    assert again.get(key_id) == before
    assert again.history(key_id) == history
    again.close()


def test_file_is_wal_and_durable(tmp_path: Path) -> None:
    """The file is in WAL mode and commits with synchronous=FULL by default."""
    store = SQLiteKeyStore(tmp_path / "k.db")
    with store._reader() as cur:
        assert cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cur.execute("PRAGMA synchronous").fetchone()[0] == 2
    store.close()


def test_synchronous_is_configurable(tmp_path: Path) -> None:
    """synchronous=NORMAL is honoured; an unknown level is refused."""
    store = SQLiteKeyStore(tmp_path / "k.db", synchronous="NORMAL")
    with store._reader() as cur:
        assert cur.execute("PRAGMA synchronous").fetchone()[0] == 1
    store.close()
    with pytest.raises(Exception, match="synchronous"):
        SQLiteKeyStore(tmp_path / "k.db", synchronous="FAST")  # type: ignore[arg-type]


def test_schema_is_versioned(tmp_path: Path) -> None:
    """A new file is at the latest schema version; reopening migrates nothing twice."""
    path = tmp_path / "k.db"
    store = SQLiteKeyStore(path)
    assert store.schema_version() == len(SQLiteKeyStore.dialect.migrations)
    assert store.migrate() == len(SQLiteKeyStore.dialect.migrations)
    store.close()


def test_forward_migration_from_an_old_file(tmp_path: Path) -> None:
    """A file at an older schema version is migrated forward on open."""

    class Later(SQLiteKeyStore):
        dialect = attrs.evolve(SQLITE, schemas=(*SCHEMAS, "CREATE TABLE keyturn_extra (x INTEGER)"))

    path = tmp_path / "k.db"
    SQLiteKeyStore(path).close()
    later = Later(path)
    assert later.schema_version() == len(SQLiteKeyStore.dialect.migrations) + 1
    with later._reader() as cur:
        cur.execute("SELECT COUNT(*) FROM keyturn_extra")
    later.close()


def test_a_version_1_file_migrates_to_the_latest_and_keeps_its_keys(tmp_path: Path) -> None:
    """A file of keyturn's first schema migrates forward: keys and history stay, history rows gain their owner, and nonces, security keys and sessions work."""

    class Version1(SQLiteKeyStore):
        dialect = attrs.evolve(SQLITE, schemas=SCHEMAS[:1])

    source = SQLiteKeyStore(tmp_path / "source.db")
    issued = key_in_state(make_service(store=source, sealed=False), State.ACTIVE)
    source.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "source.db")) as src:
        keys = src.execute("SELECT id, owner, client_id, live, version, data FROM keyturn_keys")
        key_rows = keys.fetchall()
        entries = src.execute(
            "SELECT key_id, version, action, event, from_state, to_state, actor, at, detail "
            "FROM keyturn_history"
        )
        history_rows = entries.fetchall()
    path = tmp_path / "k.db"
    Version1(path).close()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        assert conn.execute("SELECT version FROM keyturn_schema").fetchone() == (1,)
        conn.executemany("INSERT INTO keyturn_keys VALUES (?, ?, ?, ?, ?, ?)", key_rows)
        conn.executemany(
            "INSERT INTO keyturn_history VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", history_rows
        )
    store = SQLiteKeyStore(path)
    assert store.schema_version() == len(SQLiteKeyStore.dialect.migrations) == 6
    stored = store.get(issued.key.id)
    assert stored is not None
    assert stored.state is State.ACTIVE
    logged = store.access_log(stored.owner, limit=100)
    assert len(logged) == len(history_rows)
    assert {e.client_id for e in logged} == {stored.client_id}
    now = issued.key.created_at
    assert store.use_nonce("c", "n", expires_at=now, now=now - now.resolution)
    security_key = SecurityKey(
        owner="alice", name="phone", kind="tfa", sealed_secret="sealed", created_at=now
    )
    store.save_security_key(security_key)
    assert store.get_security_key("alice") == security_key
    session = Session(
        id="s1",
        key_id=stored.id,
        generation=0,
        refresh_id="r1",
        created_at=now,
        expires_at=now + timedelta(days=1),
    )
    store.start_session(session, max_per_key=16, now=now)
    assert stored.owner == security_key.owner
    assert store.load_session("s1") == LoadedSession(stored, session, security_key=True)
    store.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A file written by a newer keyturn is refused with a message saying to upgrade."""
    path = tmp_path / "k.db"
    SQLiteKeyStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE keyturn_schema SET version = 99")
    with pytest.raises(StoreError, match="upgrade keyturn"):
        SQLiteKeyStore(path)


def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    """A path that cannot be opened raises StoreError naming it."""
    with pytest.raises(StoreError, match="cannot open"):
        SQLiteKeyStore(tmp_path / "missing-dir" / "k.db")


def test_delivered_codes_leave_the_database(tmp_path: Path) -> None:
    """After delivery no code is left in the file's outbox."""
    store = SQLiteKeyStore(tmp_path / "k.db")
    service = make_service(store=store)
    key_in_state(service, State.PENDING_2FA)
    assert list(store.stored_codes()) == []
    assert store.pending_notifications() == 0
    store.close()


def test_database_file_holds_no_secret_and_no_delivered_code(tmp_path: Path) -> None:
    """After a lifecycle with a reset, neither the file nor its WAL contains a secret or a code."""
    from keyturn.adapters.codes import HmacCodeVerifier  # noqa: PLC0415
    from keyturn.adapters.notifiers import RecordingNotifier  # noqa: PLC0415

    path = tmp_path / "k.db"
    store = SQLiteKeyStore(path)
    notifier = RecordingNotifier()
    service = make_service(
        store=store, notifier=notifier, verifier=HmacCodeVerifier.generate(length=8)
    )
    issued = key_in_state(service, State.ACTIVE)
    fresh = service.reset_secret(issued.key.id, owner="alice")
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("k.db"))
    store.close()
    values = [issued.client_secret, fresh.client_secret, *notifier.codes()]
    assert len(values) == 3
    for value in values:
        assert value is not None
        assert value.encode() not in raw
