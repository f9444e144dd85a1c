"""What every SQL key store shares: the queries, the transaction shape, and schema migrations.

A subclass supplies connections and transactions (:meth:`SqlKeyStore._write` and
:meth:`SqlKeyStore._read`), its dialect's DDL (``MIGRATIONS``), its placeholder, and the locks its
database needs (an owner lock for the quota, row locks for outbox claims). Everything else, the
queries, optimistic versions, history and outbox written in the same transaction as the change,
lives here once. Tables are prefixed ``keyturn_`` so they can sit in an application's database.
"""

from __future__ import annotations

import abc
import contextlib
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

import attrs

from keyturn.adapters import codec
from keyturn.errors import ConcurrentUpdate, QuotaExceeded, StoreError
from keyturn.records import Delivery

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from contextlib import AbstractContextManager
    from datetime import datetime

    from keyturn.records import ApiKey, Challenge, Change, HistoryEntry, Notification

#: The first schema, for both dialects: ``{id}`` is the id column, ``{int}`` a 64-bit integer.
SCHEMA_V1: Final = """
CREATE TABLE keyturn_keys (
    id {id},
    owner TEXT NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    live {int} NOT NULL,
    version {int} NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX keyturn_keys_owner ON keyturn_keys (owner, live);
CREATE TABLE keyturn_history (
    key_id {int} NOT NULL REFERENCES keyturn_keys (id),
    version {int} NOT NULL,
    action TEXT NOT NULL,
    event TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    at {int} NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (key_id, version)
);
CREATE TABLE keyturn_challenges (
    id TEXT PRIMARY KEY,
    version {int} NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE keyturn_outbox (
    id TEXT PRIMARY KEY,
    created_at {int} NOT NULL,
    due_at {int} NOT NULL,
    claimed_until {int},
    delivered_at {int},
    attempts {int} NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    code TEXT,
    data TEXT NOT NULL
);
CREATE INDEX keyturn_outbox_due ON keyturn_outbox (due_at, created_at)
    WHERE delivered_at IS NULL
"""

#: The second schema: single-use nonces of signatures, remembered until their window ends.
SCHEMA_V2: Final = """
CREATE TABLE keyturn_nonces (
    client_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at {int} NOT NULL,
    PRIMARY KEY (client_id, nonce)
);
CREATE INDEX keyturn_nonces_expiry ON keyturn_nonces (expires_at)
"""

#: How long a claimed notification stays away from other relays before it is due again (µs).
CLAIM_LEASE_US = 60_000_000

_HISTORY_COLUMNS = "key_id, version, action, event, from_state, to_state, actor, at, detail"
_INSERT_HISTORY = (
    f"INSERT INTO keyturn_history ({_HISTORY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608 (constants only)
)
_SELECT_HISTORY = (
    f"SELECT {_HISTORY_COLUMNS} FROM keyturn_history WHERE key_id = ? ORDER BY version"  # noqa: S608
)


class Cursor(Protocol):
    """The part of a DB-API cursor the stores use."""

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any:  # noqa: ANN401
        """Run one statement."""
        ...

    def fetchone(self) -> Any:  # noqa: ANN401
        """The next row, or None."""
        ...

    def fetchall(self) -> list[Any]:
        """All remaining rows."""
        ...


class SqlKeyStore(abc.ABC):
    """The :class:`~keyturn.ports.KeyStore` queries, over a subclass's connections."""

    #: One DDL script per schema version, oldest first. Never edit a released one: append.
    MIGRATIONS: ClassVar[tuple[str, ...]]
    placeholder: ClassVar[str] = "?"
    claim_lock: ClassVar[str] = ""

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[Cursor]:
        """A cursor inside a write transaction, committed on exit, rolled back on error."""

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor for reading."""

    @abc.abstractmethod
    def _is_unique_violation(self, error: Exception) -> bool:
        """Whether ``error`` is the database refusing a duplicate unique value."""

    def _lock_owner(self, cur: Cursor, owner: str) -> None:  # noqa: B027 (optional hook)
        """Serialise inserts of one owner (for the quota); no-op where writes are serial."""

    def _lock_schema(self, cur: Cursor) -> None:  # noqa: B027 (optional hook)
        """Serialise migrations of concurrent processes; no-op where writes are serial."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections and files."""

    def _after_code_dropped(self) -> None:  # noqa: B027 (optional hook)
        """Called after a delivered code was erased; a store may scrub old copies from disk."""

    @contextlib.contextmanager
    def _unique(self, action: str, key_id: int = 0) -> Iterator[None]:
        """Turn the database's duplicate-key refusal into ConcurrentUpdate (the caller retries)."""
        try:
            yield
        except Exception as e:
            if self._is_unique_violation(e):
                raise ConcurrentUpdate(key_id, 0, action=action) from None
            raise

    def _sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def _run(self, cur: Cursor, text: str, params: Sequence[Any] = ()) -> Cursor:
        cur.execute(self._sql(text), params)
        return cur

    # --- schema -----------------------------------------------------------------------------

    def migrate(self) -> int:
        """Bring the schema up to date; return its version. Safe to run from many processes."""
        with self._write() as cur:
            self._lock_schema(cur)
            self._run(cur, "CREATE TABLE IF NOT EXISTS keyturn_schema (version INTEGER NOT NULL)")
            row = self._run(cur, "SELECT version FROM keyturn_schema").fetchone()
            current = row[0] if row else 0
            if current > len(self.MIGRATIONS):
                msg = (
                    f"the database has keyturn schema version {current}, newer than this "
                    f"keyturn knows ({len(self.MIGRATIONS)}); upgrade keyturn"
                )
                raise StoreError(msg)
            for script in self.MIGRATIONS[current:]:
                for statement in script.split(";"):
                    if statement.strip():
                        self._run(cur, statement)
            if row is None:
                self._run(cur, "INSERT INTO keyturn_schema (version) VALUES (?)", (0,))
            self._run(cur, "UPDATE keyturn_schema SET version = ?", (len(self.MIGRATIONS),))
            return len(self.MIGRATIONS)

    def schema_version(self) -> int:
        """The schema version the database is at."""
        with self._read() as cur:
            row = self._run(cur, "SELECT version FROM keyturn_schema").fetchone()
            return int(row[0]) if row else 0

    # --- keys -------------------------------------------------------------------------------

    def get(self, key_id: int) -> ApiKey | None:
        """The key with this id, or ``None``."""
        with self._read() as cur:
            row = self._run(cur, "SELECT data FROM keyturn_keys WHERE id = ?", (key_id,)).fetchone()
        return codec.key_from_json(row[0]) if row else None

    def get_by_client_id(self, client_id: str) -> ApiKey | None:
        """The key with this client id, or ``None``."""
        with self._read() as cur:
            row = self._run(
                cur, "SELECT data FROM keyturn_keys WHERE client_id = ?", (client_id,)
            ).fetchone()
        return codec.key_from_json(row[0]) if row else None

    def list_keys(self, owner: str | None = None) -> list[ApiKey]:
        """Keys of ``owner`` (or all), by id."""
        with self._read() as cur:
            if owner is None:
                rows = self._run(cur, "SELECT data FROM keyturn_keys ORDER BY id").fetchall()
            else:
                rows = self._run(
                    cur, "SELECT data FROM keyturn_keys WHERE owner = ? ORDER BY id", (owner,)
                ).fetchall()
        return [codec.key_from_json(r[0]) for r in rows]

    def insert(self, change: Change, *, max_live_per_owner: int) -> ApiKey:
        """Store a new key under the owner's quota, choosing its id, in one transaction."""
        owner = change.key.owner
        with self._unique("create"), self._write() as cur:
            self._lock_owner(cur, owner)
            live = self._run(
                cur, "SELECT COUNT(*) FROM keyturn_keys WHERE owner = ? AND live = 1", (owner,)
            ).fetchone()[0]
            if live >= max_live_per_owner:
                raise QuotaExceeded(owner, max_live_per_owner)
            key_id = self._run(
                cur,
                "INSERT INTO keyturn_keys (owner, client_id, live, version, data) "
                "VALUES (?, ?, 1, ?, '{}') RETURNING id",
                (owner, change.key.client_id, change.key.version),
            ).fetchone()[0]
            change = change.with_key_id(int(key_id))
            self._run(
                cur,
                "UPDATE keyturn_keys SET data = ? WHERE id = ?",
                (codec.key_to_json(change.key), change.key.id),
            )
            self._write_rest(cur, change)
        return change.key

    def apply(self, change: Change) -> None:
        """Store a change if the key is still at ``expected_version``, with its history."""
        key = change.key
        with self._write() as cur:
            updated = self._run(
                cur,
                "UPDATE keyturn_keys SET live = ?, version = ?, data = ? "
                "WHERE id = ? AND version = ?",
                (
                    int(key.live),
                    key.version,
                    codec.key_to_json(key),
                    key.id,
                    change.expected_version,
                ),
            ).rowcount
            if updated != 1:
                raise ConcurrentUpdate(key.id, change.expected_version)
            self._write_rest(cur, change)

    def _write_rest(self, cur: Cursor, change: Change) -> None:
        self._run(
            cur,
            _INSERT_HISTORY,
            codec.history_row(change.history),
        )
        if change.challenge is not None:
            self._save_challenge(cur, change.challenge)
        self._enqueue(cur, change.notifications)

    def history(self, key_id: int) -> list[HistoryEntry]:
        """The key's audit trail, oldest first."""
        with self._read() as cur:
            rows = self._run(
                cur,
                _SELECT_HISTORY,
                (key_id,),
            ).fetchall()
        return [codec.history_from_row(tuple(r)) for r in rows]

    def reseal(self, key_id: int, *, expected: str, sealed: str) -> bool:
        """Swap the key's sealed secret if it is still ``expected`` (version unchanged)."""
        with self._write() as cur:
            row = self._run(cur, "SELECT data FROM keyturn_keys WHERE id = ?", (key_id,)).fetchone()
            key = codec.key_from_json(row[0]) if row else None
            if key is None or key.sealed_secret != expected:
                return False
            self._run(
                cur,
                "UPDATE keyturn_keys SET data = ? WHERE id = ?",
                (codec.key_to_json(attrs.evolve(key, sealed_secret=sealed)), key_id),
            )
            return True

    # --- nonces -----------------------------------------------------------------------------

    def use_nonce(self, client_id: str, nonce: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record a nonce unless the client used it and it is still remembered."""
        with self._write() as cur:
            self._run(cur, "DELETE FROM keyturn_nonces WHERE expires_at <= ?", (codec.to_us(now),))
            inserted = self._run(
                cur,
                "INSERT INTO keyturn_nonces (client_id, nonce, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (client_id, nonce, codec.to_us(expires_at)),
            ).rowcount
        return inserted == 1

    # --- challenges -------------------------------------------------------------------------

    def add_challenge(self, challenge: Challenge, notifications: Sequence[Notification]) -> None:
        """Store a new challenge and enqueue its code, in one transaction."""
        with self._unique("confirm", challenge.key_id or 0), self._write() as cur:
            self._run(
                cur,
                "INSERT INTO keyturn_challenges (id, version, data) VALUES (?, ?, ?)",
                (challenge.id, challenge.version, codec.challenge_to_json(challenge)),
            )
            self._enqueue(cur, notifications)

    def get_challenge(self, challenge_id: str) -> Challenge | None:
        """The challenge with this id, or ``None``."""
        with self._read() as cur:
            row = self._run(
                cur, "SELECT data FROM keyturn_challenges WHERE id = ?", (challenge_id,)
            ).fetchone()
        return codec.challenge_from_json(row[0]) if row else None

    def save_challenge(self, challenge: Challenge) -> None:
        """Store a challenge one version above the stored one."""
        with self._write() as cur:
            self._save_challenge(cur, challenge)

    def _save_challenge(self, cur: Cursor, challenge: Challenge) -> None:
        updated = self._run(
            cur,
            "UPDATE keyturn_challenges SET version = ?, data = ? WHERE id = ? AND version = ?",
            (
                challenge.version,
                codec.challenge_to_json(challenge),
                challenge.id,
                challenge.version - 1,
            ),
        ).rowcount
        if updated != 1:
            raise ConcurrentUpdate(challenge.key_id or 0, challenge.version - 1)

    # --- outbox -----------------------------------------------------------------------------

    def _enqueue(self, cur: Cursor, notifications: Sequence[Notification]) -> None:
        for n in notifications:
            at = codec.to_us(n.created_at)
            self._run(
                cur,
                "INSERT INTO keyturn_outbox (id, created_at, due_at, code, data) "
                "VALUES (?, ?, ?, ?, ?)",
                (n.id, at, at, n.code, codec.notification_to_json(n)),
            )

    def claim_deliveries(
        self, now: datetime, limit: int, only: Sequence[str] | None = None
    ) -> list[Delivery]:
        """Claim up to ``limit`` due notifications (of ``only``), oldest first, for a lease."""
        t = codec.to_us(now)
        if only is not None and not only:
            return []
        where = "" if only is None else f" AND id IN ({', '.join('?' * len(only))})"
        with self._write() as cur:
            ids = self._run(
                cur,
                "SELECT id FROM keyturn_outbox WHERE delivered_at IS NULL AND due_at <= ? "  # noqa: S608 (claim_lock is a class constant)
                "AND (claimed_until IS NULL OR claimed_until <= ?)"
                f"{where} "
                f"ORDER BY created_at, id LIMIT ?{self.claim_lock}",
                (t, t, *(only or ()), limit),
            ).fetchall()
            claimed = [
                self._run(
                    cur,
                    "UPDATE keyturn_outbox SET claimed_until = ?, attempts = attempts + 1 "
                    "WHERE id = ? RETURNING data, code, attempts",
                    (t + CLAIM_LEASE_US, row[0]),
                ).fetchone()
                for row in ids
            ]
        return [Delivery(codec.notification_from_json(d, c), int(a)) for d, c, a in claimed]

    def mark_delivered(self, notification_id: str, now: datetime) -> None:
        """Record delivery and drop the notification's code."""
        with self._write() as cur:
            erased = self._run(
                cur,
                "UPDATE keyturn_outbox SET code = NULL WHERE id = ? AND code IS NOT NULL",
                (notification_id,),
            ).rowcount
            self._run(
                cur,
                "UPDATE keyturn_outbox SET delivered_at = ?, claimed_until = NULL WHERE id = ?",
                (codec.to_us(now), notification_id),
            )
        if erased:
            self._after_code_dropped()

    def mark_failed(self, notification_id: str, retry_at: datetime, error: str) -> None:
        """Record a failed delivery, due again at ``retry_at``."""
        with self._write() as cur:
            self._run(
                cur,
                "UPDATE keyturn_outbox SET due_at = ?, claimed_until = NULL, last_error = ? "
                "WHERE id = ?",
                (codec.to_us(retry_at), error[:500], notification_id),
            )

    def pending_notifications(self) -> int:
        """How many notifications wait for delivery (for operators and tests)."""
        with self._read() as cur:
            return int(
                self._run(
                    cur, "SELECT COUNT(*) FROM keyturn_outbox WHERE delivered_at IS NULL"
                ).fetchone()[0]
            )

    def stored_codes(self) -> Iterator[str]:
        """Codes still held in the outbox (undelivered ones only; for tests and audits)."""
        with self._read() as cur:
            rows = self._run(
                cur, "SELECT code FROM keyturn_outbox WHERE code IS NOT NULL"
            ).fetchall()
        return (r[0] for r in rows)
