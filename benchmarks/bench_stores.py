"""The in-process SQLite rows: keyturn's store path against the same statements written by hand.

Two comparisons issue 16 bounds, each measured interleaved (:mod:`bench_rounds`):

1. disable/enable through :class:`~keyturn.KeyService` on SQLite with the inline relay (the
   default), with the relay off, and the same transaction written by hand with :mod:`sqlite3`
   (``BEGIN IMMEDIATE``; select the key; update it under its version; insert the history row and
   the owner's notice; ``COMMIT``), with one bare durable commit as the disk's floor;
2. ``authenticate()`` on SQLite (and on the in-memory store) against a hand-written select, JSON
   decode and HMAC of the secret.

The hand-written side opens its file with the settings :class:`~keyturn.adapters.sqlite.
SQLiteKeyStore` documents (WAL, ``synchronous=FULL``) and the ones it sets besides, and writes
rows copied from ones keyturn wrote, so both sides write the same bytes. This module reads
keyturn's tables, never its private code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any, Final

import attrs
import bench_rounds
from bench_engines import DIRECT, NullNotifier, toggling

from keyturn import State, wiring
from keyturn.adapters.notifiers import RecordingNotifier
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.testing import InMemoryKeyStore, key_in_state

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from keyturn import KeyService
    from keyturn.core.records import IssuedSecret
    from keyturn.crypto.sealing import SecretBox
    from keyturn.ports import KeyStore

SERVER_KEY: Final = bytes(range(32))
#: How SQLiteKeyStore opens its file (WAL and synchronous=FULL are its documented durability).
SQLITE_PRAGMAS: Final = (
    "PRAGMA busy_timeout = 30000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA secure_delete = ON",
)
INLINE: Final = "keyturn service, inline relay (default)"
OFF: Final = "keyturn service, relay off"
HAND: Final = "hand-written sqlite3 transaction"
COMMIT: Final = "one durable commit (insert one row)"
AUTH_SQLITE: Final = "authenticate(), SQLite"
AUTH_HAND: Final = "hand-written select + JSON decode + HMAC"
LOADS: Final = "json.loads of the stored row"
CODEC: Final = "key_from_json (the store's codec)"


def open_sqlite(path: Path) -> sqlite3.Connection:
    """A connection to ``path`` as the SQLite store opens its own (autocommit mode)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(pragma).fetchall()
    return conn


def service_with_key(
    store: KeyStore,
    *,
    policy: Any = DIRECT,
    owner: str = "alice",
    max_scope: str | None = None,
    secret_box: SecretBox | None = None,
) -> tuple[KeyService, IssuedSecret]:
    """A service as a deployment wires it over ``store``, and an active key of ``owner``.

    Its notifier is a no-op once the key is active, so delivery itself costs nothing.
    """
    service = wiring.build_service(
        store=store,
        notifier=RecordingNotifier(),
        master_key=SERVER_KEY,
        policy=policy,
        secret_box=secret_box,
    )
    scope = {"max_scope": max_scope} if max_scope else {}
    issued = key_in_state(service, State.ACTIVE, owner=owner, **scope)
    service.notifier = service.relay.notifier = NullNotifier()
    return service, issued


def sqlite_service(path: Path, *, inline: bool) -> Callable[[int], None]:
    """disable/enable through the service on a new SQLite file, the relay inline or off."""
    service, issued = service_with_key(SQLiteKeyStore(path))
    service.deliver_inline = inline
    return toggling(service, issued.key.id, issued.key.owner)


def hand_written(path: Path) -> Callable[[int], None]:
    """The same disable/enable transaction by hand, on rows copied from ones keyturn wrote."""
    service, issued = service_with_key(SQLiteKeyStore(path))
    service.deliver_inline = False
    service.disable(issued.key.id, owner=issued.key.owner)
    service.enable(issued.key.id, owner=issued.key.owner)
    service.store.close()
    conn = open_sqlite(path)
    written = conn.execute(  # keyturn's own disable and enable rows: event, actor, detail
        "SELECT action, event, actor, detail FROM keyturn_history WHERE key_id = ? "
        "ORDER BY version DESC LIMIT 2",
        (issued.key.id,),
    ).fetchall()
    history = {action: rest for action, *rest in written}
    notice = json.loads(
        conn.execute("SELECT data FROM keyturn_outbox ORDER BY rowid DESC LIMIT 1").fetchone()[0]
    )
    key_id, owner, serial = issued.key.id, issued.key.owner, [0]

    def toggle() -> None:
        now = time.time_ns() // 1000
        serial[0] += 1
        conn.execute("BEGIN IMMEDIATE")
        data = json.loads(
            conn.execute("SELECT data FROM keyturn_keys WHERE id = ?", (key_id,)).fetchone()[0]
        )
        was, version = data["state"], data["version"]
        data["state"] = "disabled" if was == "active" else "active"
        data["version"], data["updated_at"] = version + 1, now
        updated = conn.execute(
            "UPDATE keyturn_keys SET live = 1, version = ?, data = ? WHERE id = ? AND version = ?",
            (version + 1, json.dumps(data, separators=(",", ":")), key_id, version),
        ).rowcount
        assert updated == 1
        action = "disable" if was == "active" else "enable"
        event, actor, detail = history[action]
        conn.execute(
            "INSERT INTO keyturn_history (key_id, version, action, event, from_state, to_state, "
            "actor, at, detail, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key_id, version + 1, action, event, was, data["state"], actor, now, detail, owner),
        )
        notice["id"], notice["created_at"] = f"hand{serial[0]}", now
        conn.execute(
            "INSERT INTO keyturn_outbox (id, created_at, due_at, code, data) "
            "VALUES (?, ?, ?, NULL, ?)",
            (notice["id"], now, now, json.dumps(notice, separators=(",", ":"))),
        )
        conn.execute("COMMIT")

    def run(events: int) -> None:
        for _ in range(events):
            toggle()

    return run


def durable_commit(path: Path) -> Callable[[int], None]:
    """One row inserted per durable commit, on a file opened as the store opens its own."""
    conn = open_sqlite(path)
    conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")

    def run(n: int) -> None:
        for i in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?)", (i,))
            conn.execute("COMMIT")

    return run


def bench_sqlite_writes(folder: Path, budget: float, rounds: int) -> dict[str, object]:
    """µs per disable or enable on SQLite: inline relay, relay off, by hand; a durable commit."""
    rows = {
        INLINE: sqlite_service(folder / "inline.db", inline=True),
        OFF: sqlite_service(folder / "off.db", inline=False),
        HAND: hand_written(folder / "hand.db"),
        COMMIT: durable_commit(folder / "commit.db"),
    }
    samples = bench_rounds.interleave_ops(rows, budget, rounds)
    ratios = {
        "inline relay ÷ hand-written": (INLINE, HAND),
        "relay off ÷ hand-written": (OFF, HAND),
        "inline relay ÷ relay off": (INLINE, OFF),
        "hand-written ÷ one durable commit": (HAND, COMMIT),
    }
    return bench_rounds.section(samples, ratios, "µs per event")


def authenticating(service: KeyService, issued: IssuedSecret) -> Callable[[int], None]:
    """``run(n)``: ``n`` successful ``authenticate()`` calls of the active key."""
    client_id, secret = issued.key.client_id, issued.client_secret

    def run(n: int) -> None:
        for _ in range(n):
            service.authenticate(client_id, secret, source_ip="203.0.113.7")

    return run


def hand_authenticate(path: Path, issued: IssuedSecret) -> Callable[[int], None]:
    """A hand-written check: select the key by client id, decode it, compare the secret's HMAC."""
    conn = open_sqlite(path)
    pepper = wiring.derive(SERVER_KEY, "secrets")
    client_id, secret = issued.key.client_id, issued.client_secret or ""

    def run(n: int) -> None:
        for _ in range(n):
            row = conn.execute(
                "SELECT data FROM keyturn_keys WHERE client_id = ?", (client_id,)
            ).fetchone()
            data = json.loads(row[0])
            digest = hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()
            assert data["state"] == "active"
            assert hmac.compare_digest(digest, data["secret_digest"])

    return run


def bench_authenticate(folder: Path, budget: float, rounds: int) -> dict[str, object]:
    """µs per authenticate() in memory and on SQLite, and by hand on the same SQLite file."""
    path = folder / "auth.db"
    memory = service_with_key(InMemoryKeyStore())
    sqlite = service_with_key(SQLiteKeyStore(path))
    rows = {
        "authenticate(), memory store": authenticating(*memory),
        AUTH_SQLITE: authenticating(*sqlite),
        AUTH_HAND: hand_authenticate(path, sqlite[1]),
    }
    samples = bench_rounds.interleave_ops(rows, budget, rounds)
    return bench_rounds.section(samples, {"SQLite ÷ hand-written": (AUTH_SQLITE, AUTH_HAND)}, "µs")


def bench_decoding(folder: Path, budget: float, rounds: int) -> dict[str, object]:
    """µs to decode one stored key: its JSON alone, the whole codec, and the record alone.

    The row is one keyturn wrote (an active key with an IP whitelist, sealed secrets on). What
    a faster JSON codec could save is at most the first row; building the typed record is the
    rest of ``key_from_json``, whatever the row's encoding.
    """
    from keyturn.adapters.sql import codec  # noqa: PLC0415 (the store's codec, measured here)
    from keyturn.core.records import ApiKey  # noqa: PLC0415

    path = folder / "decode.db"
    store = SQLiteKeyStore(path)
    service, issued = service_with_key(store, secret_box=wiring.secret_box(str(path)))
    key = issued.key
    service.edit(key.id, owner="alice", ip_whitelist="10.0.0.0/8 192.0.2.7")
    store.close()
    conn = sqlite3.connect(path)
    key_id, text = conn.execute("SELECT id, data FROM keyturn_keys").fetchone()
    conn.close()
    decoded = codec.key_from_json(key_id, text)
    fields = {f.name: getattr(decoded, f.name) for f in attrs.fields(ApiKey)}

    def loads(n: int) -> None:
        for _ in range(n):
            json.loads(text)

    def whole(n: int) -> None:
        for _ in range(n):
            codec.key_from_json(key_id, text)

    def record(n: int) -> None:
        for _ in range(n):
            ApiKey(**fields)

    rows = {LOADS: loads, CODEC: whole, "ApiKey(...) from decoded values": record}
    samples = bench_rounds.interleave_ops(rows, budget, rounds)
    return bench_rounds.section(samples, {"codec ÷ json.loads": (CODEC, LOADS)}, "µs")
