"""What every SQL key store shares: the queries, the transaction shape, and schema migrations.

Each store method is a *program* (:class:`SqlPrograms`): a generator that yields the statements
of one transaction (:class:`Q`) and is sent each one's result. :class:`SqlKeyStore` runs programs
on a DB-API cursor; the async PostgreSQL store runs the same programs on psycopg's async cursor,
so no query is written twice. A subclass supplies connections and transactions, its dialect's DDL
(``MIGRATIONS``), its placeholder, and the locks its database needs (an owner lock for the quota,
row locks for outbox claims). Tables are prefixed ``keyturn_`` so they can sit in an
application's database.
"""

from __future__ import annotations

import abc
import contextlib
import functools
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Protocol, TypeVar

import attrs

from keyturn import effects
from keyturn.adapters import codec
from keyturn.core.errors import ConcurrentUpdate, QuotaExceeded, StoreError
from keyturn.core.records import Delivery, KeyEvent

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Sequence
    from contextlib import AbstractContextManager
    from datetime import datetime

    from keyturn.core.records import (
        ApiKey,
        Challenge,
        Change,
        HistoryEntry,
        Notification,
        SecurityKey,
        Session,
    )

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

#: The third schema: the accounts' security keys (Deribit's per-call 2FA), one per owner.
SCHEMA_V3: Final = """
CREATE TABLE keyturn_security_keys (
    owner TEXT PRIMARY KEY,
    version {int} NOT NULL,
    data TEXT NOT NULL
)
"""

#: The fourth schema: API sessions (token families, so tokens can be ended), and each history
#: row's owner with an index, so an account's access log pages in SQL whatever its size.
SCHEMA_V4: Final = """
CREATE TABLE keyturn_sessions (
    id TEXT PRIMARY KEY,
    key_id {int} NOT NULL,
    generation {int} NOT NULL,
    refresh_id TEXT NOT NULL,
    created_at {int} NOT NULL,
    expires_at {int} NOT NULL,
    ended_at {int}
);
CREATE INDEX keyturn_sessions_key ON keyturn_sessions (key_id, created_at);
ALTER TABLE keyturn_history ADD COLUMN owner TEXT;
UPDATE keyturn_history SET owner = (
    SELECT k.owner FROM keyturn_keys k WHERE k.id = keyturn_history.key_id
);
CREATE INDEX keyturn_history_owner ON keyturn_history (owner, at, key_id, version)
"""

#: How long a claimed notification stays away from other relays before it is due again (µs).
CLAIM_LEASE_US = 60_000_000

_HISTORY_COLUMNS = "key_id, version, action, event, from_state, to_state, actor, at, detail"
_INSERT_HISTORY = (
    f"INSERT INTO keyturn_history ({_HISTORY_COLUMNS}, owner) "  # noqa: S608 (constants only)
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SESSION_COLUMNS = "id, key_id, generation, refresh_id, created_at, expires_at, ended_at"
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


T = TypeVar("T")
Fetch = Literal["none", "one", "all", "rowcount"]


@attrs.frozen
class Q:
    """One statement of a program, and what to send back: nothing, a row, all rows, a count."""

    sql: str
    params: tuple[Any, ...] = ()
    fetch: Fetch = "none"


#: A transaction's statements: yields :class:`Q`, is sent each result, returns a ``T``.
Program = Generator[Q, Any, T]


@attrs.frozen
class Tx:
    """How to run a program: in a write transaction or not, and what a duplicate means."""

    write: bool
    unique: str | None = None
    key_id: int = 0


READ: Final = Tx(write=False)
WRITE: Final = Tx(write=True)


def run_on(cur: Cursor, q: Q) -> Any:  # noqa: ANN401
    """Execute ``q`` on a sync cursor and fetch what it asks for."""
    cur.execute(q.sql, q.params)
    if q.fetch == "one":
        return cur.fetchone()
    if q.fetch == "all":
        return cur.fetchall()
    if q.fetch == "rowcount":
        return cur.rowcount
    return None


class SqlPrograms:
    """The :class:`~keyturn.ports.KeyStore` queries as programs, for any dialect and driver."""

    #: One DDL script per schema version, oldest first. Never edit a released one: append.
    MIGRATIONS: ClassVar[tuple[str, ...]]
    placeholder: ClassVar[str] = "?"
    claim_lock: ClassVar[str] = ""
    #: Statements that serialise one owner's inserts, and migrations (``None``: writes are serial).
    owner_lock: ClassVar[str | None] = None
    schema_lock: ClassVar[str | None] = None

    def _q(self, text: str, params: Sequence[Any] = (), fetch: Fetch = "none") -> Q:
        sql = text if self.placeholder == "?" else text.replace("?", self.placeholder)
        return Q(sql, tuple(params), fetch)

    def _is_unique_violation(self, error: Exception) -> bool:
        """Whether ``error`` is the database refusing a duplicate unique value."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _unique(self, tx: Tx) -> Iterator[None]:
        """Turn the database's duplicate-key refusal into ConcurrentUpdate (the caller retries)."""
        try:
            yield
        except Exception as e:
            if tx.unique is not None and self._is_unique_violation(e):
                raise ConcurrentUpdate(tx.key_id, 0, action=tx.unique) from None
            raise

    # --- schema -----------------------------------------------------------------------------

    def p_migrate(self) -> Program[int]:
        """Bring the schema up to date; return its version."""
        if self.schema_lock is not None:
            yield self._q(self.schema_lock)
        yield self._q("CREATE TABLE IF NOT EXISTS keyturn_schema (version INTEGER NOT NULL)")
        row = yield self._q("SELECT version FROM keyturn_schema", fetch="one")
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
                    yield self._q(statement)
        if row is None:
            yield self._q("INSERT INTO keyturn_schema (version) VALUES (?)", (0,))
        yield self._q("UPDATE keyturn_schema SET version = ?", (len(self.MIGRATIONS),))
        return len(self.MIGRATIONS)

    def p_schema_version(self) -> Program[int]:
        """The schema version the database is at."""
        row = yield self._q("SELECT version FROM keyturn_schema", fetch="one")
        return int(row[0]) if row else 0

    # --- keys -------------------------------------------------------------------------------

    def p_get(self, key_id: int) -> Program[ApiKey | None]:
        """The key with this id, or ``None``."""
        row = yield self._q("SELECT data FROM keyturn_keys WHERE id = ?", (key_id,), "one")
        return codec.key_from_json(row[0]) if row else None

    def p_get_by_client_id(self, client_id: str) -> Program[ApiKey | None]:
        """The key with this client id, or ``None``.

        A miss decodes a decoy record of a key's size, so that it costs what a hit costs: the
        time of an authentication does not tell whether a client id exists.
        """
        row = yield self._q(
            "SELECT data FROM keyturn_keys WHERE client_id = ?", (client_id,), "one"
        )
        key = codec.key_from_json(row[0] if row else codec.DECOY_KEY)
        return key if row else None

    def p_list_keys(self, owner: str | None) -> Program[list[ApiKey]]:
        """Keys of ``owner`` (or all), by id."""
        if owner is None:
            rows = yield self._q("SELECT data FROM keyturn_keys ORDER BY id", fetch="all")
        else:
            rows = yield self._q(
                "SELECT data FROM keyturn_keys WHERE owner = ? ORDER BY id", (owner,), "all"
            )
        return [codec.key_from_json(r[0]) for r in rows]

    def p_insert(self, change: Change, max_live_per_owner: int) -> Program[ApiKey]:
        """Store a new key under the owner's quota, choosing its id."""
        owner = change.key.owner
        if self.owner_lock is not None:
            yield self._q(self.owner_lock, (owner,))
        live = yield self._q(
            "SELECT COUNT(*) FROM keyturn_keys WHERE owner = ? AND live = 1", (owner,), "one"
        )
        if live[0] >= max_live_per_owner:
            raise QuotaExceeded(owner, max_live_per_owner)
        row = yield self._q(
            "INSERT INTO keyturn_keys (owner, client_id, live, version, data) "
            "VALUES (?, ?, 1, ?, '{}') RETURNING id",
            (owner, change.key.client_id, change.key.version),
            "one",
        )
        change = change.with_key_id(int(row[0]))
        yield self._q(
            "UPDATE keyturn_keys SET data = ? WHERE id = ?",
            (codec.key_to_json(change.key), change.key.id),
        )
        yield from self._write_rest(change)
        return change.key

    def p_apply(self, change: Change) -> Program[None]:
        """Store a change if the key is still at ``expected_version``, with its history."""
        key = change.key
        updated = yield self._q(
            "UPDATE keyturn_keys SET live = ?, version = ?, data = ? WHERE id = ? AND version = ?",
            (int(key.live), key.version, codec.key_to_json(key), key.id, change.expected_version),
            "rowcount",
        )
        if updated != 1:
            raise ConcurrentUpdate(key.id, change.expected_version)
        yield from self._write_rest(change)

    def _write_rest(self, change: Change) -> Program[None]:
        for entry in change.history:
            yield self._q(_INSERT_HISTORY, (*codec.history_row(entry), change.key.owner))
        if change.challenge is not None:
            yield from self._save_challenge(change.challenge)
        yield from self._enqueue(change.notifications)

    def p_history(self, key_id: int) -> Program[list[HistoryEntry]]:
        """The key's audit trail, oldest first."""
        rows = yield self._q(_SELECT_HISTORY, (key_id,), "all")
        return [codec.history_from_row(tuple(r)) for r in rows]

    def p_access_log(
        self, owner: str, events: Collection[str] | None, offset: int, limit: int
    ) -> Program[list[KeyEvent]]:
        """The owner's history entries (of ``events``), newest first, one page.

        The page is chosen on the history's ``(owner, at, key_id, version)`` index alone, read
        backwards, and only its rows are joined to their keys' client ids.
        """
        chosen = sorted(events) if events is not None else []
        where = f" AND event IN ({', '.join('?' * len(chosen))})" if events is not None else ""
        rows = yield self._q(
            f"SELECT h.*, k.client_id FROM (SELECT {_HISTORY_COLUMNS} FROM keyturn_history "  # noqa: S608 (constants only)
            f"WHERE owner = ?{where} ORDER BY at DESC, key_id DESC, version DESC "
            "LIMIT ? OFFSET ?) h JOIN keyturn_keys k ON k.id = h.key_id "
            "ORDER BY h.at DESC, h.key_id DESC, h.version DESC",
            (owner, *chosen, limit, offset),
            "all",
        )
        return [KeyEvent(r[-1], codec.history_from_row(tuple(r[:-1]))) for r in rows]

    # --- sessions ---------------------------------------------------------------------------

    def p_start_session(self, session: Session, max_per_key: int, now: datetime) -> Program[None]:
        """Record a new session; forget the key's dead ones and end its oldest beyond the cap."""
        yield self._q(
            "DELETE FROM keyturn_sessions WHERE key_id = ? "
            "AND (ended_at IS NOT NULL OR expires_at <= ?)",
            (session.key_id, codec.to_us(now)),
        )
        yield self._q(
            f"INSERT INTO keyturn_sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 (constants only)
            codec.session_row(session),
        )
        rows = yield self._q(
            "SELECT id FROM keyturn_sessions WHERE key_id = ? ORDER BY created_at DESC, id DESC",
            (session.key_id,),
            "all",
        )
        for row in rows[max_per_key:]:
            yield self._q("DELETE FROM keyturn_sessions WHERE id = ?", (row[0],))

    def p_load_session(self, session_id: str) -> Program[tuple[ApiKey, Session] | None]:
        """The session and its key, or ``None``."""
        columns = ", ".join(f"s.{c}" for c in _SESSION_COLUMNS.split(", "))
        row = yield self._q(
            f"SELECT k.data, {columns} FROM keyturn_sessions s "  # noqa: S608 (constants only)
            "JOIN keyturn_keys k ON k.id = s.key_id WHERE s.id = ?",
            (session_id,),
            "one",
        )
        if row is None:
            return None
        return codec.key_from_json(row[0]), codec.session_from_row(tuple(row[1:]))

    def p_rotate_session(self, session_id: str, expected: str, new: str) -> Program[bool]:
        """Swap the session's live refresh id ``expected`` for ``new``, if it is still live."""
        swapped = yield self._q(
            "UPDATE keyturn_sessions SET refresh_id = ? "
            "WHERE id = ? AND refresh_id = ? AND ended_at IS NULL",
            (new, session_id, expected),
            "rowcount",
        )
        return bool(swapped == 1)

    def p_end_session(self, session_id: str, now: datetime) -> Program[bool]:
        """End a session; whether it was live."""
        ended = yield self._q(
            "UPDATE keyturn_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
            (codec.to_us(now), session_id),
            "rowcount",
        )
        return bool(ended == 1)

    def p_reseal(self, key_id: int, expected: str, sealed: str) -> Program[bool]:
        """Swap the key's sealed secret if it is still ``expected`` (version unchanged)."""
        row = yield self._q("SELECT data FROM keyturn_keys WHERE id = ?", (key_id,), "one")
        key = codec.key_from_json(row[0]) if row else None
        if key is None or key.sealed_secret != expected:
            return False
        yield self._q(
            "UPDATE keyturn_keys SET data = ? WHERE id = ?",
            (codec.key_to_json(attrs.evolve(key, sealed_secret=sealed)), key_id),
        )
        return True

    # --- nonces -----------------------------------------------------------------------------

    def p_use_nonce(
        self, client_id: str, nonce: str, expires_at: datetime, now: datetime
    ) -> Program[bool]:
        """Record a nonce unless the client used it and it is still remembered."""
        yield self._q("DELETE FROM keyturn_nonces WHERE expires_at <= ?", (codec.to_us(now),))
        inserted = yield self._q(
            "INSERT INTO keyturn_nonces (client_id, nonce, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (client_id, nonce, codec.to_us(expires_at)),
            "rowcount",
        )
        return bool(inserted == 1)

    # --- security keys ----------------------------------------------------------------------

    def p_get_security_key(self, owner: str) -> Program[SecurityKey | None]:
        """The owner's security key, or ``None``."""
        row = yield self._q(
            "SELECT data FROM keyturn_security_keys WHERE owner = ?", (owner,), "one"
        )
        return codec.security_key_from_json(row[0]) if row else None

    def p_save_security_key(self, security_key: SecurityKey) -> Program[None]:
        """Insert a version-1 security key, or update the stored one from ``version - 1``."""
        sk, data = security_key, codec.security_key_to_json(security_key)
        if sk.version == 1:
            written = yield self._q(
                "INSERT INTO keyturn_security_keys (owner, version, data) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (sk.owner, sk.version, data),
                "rowcount",
            )
        else:
            written = yield self._q(
                "UPDATE keyturn_security_keys SET version = ?, data = ? "
                "WHERE owner = ? AND version = ?",
                (sk.version, data, sk.owner, sk.version - 1),
                "rowcount",
            )
        if written != 1:
            raise ConcurrentUpdate(0, sk.version - 1, action="security_key")

    def p_remove_security_key(self, owner: str) -> Program[bool]:
        """Forget the owner's security key; whether there was one."""
        removed = yield self._q(
            "DELETE FROM keyturn_security_keys WHERE owner = ?", (owner,), "rowcount"
        )
        return bool(removed)

    def p_list_security_keys(self) -> Program[list[SecurityKey]]:
        """Every account's security key, by owner."""
        rows = yield self._q("SELECT data FROM keyturn_security_keys ORDER BY owner", fetch="all")
        return [codec.security_key_from_json(r[0]) for r in rows]

    # --- challenges -------------------------------------------------------------------------

    def p_add_challenge(
        self, challenge: Challenge, notifications: Sequence[Notification]
    ) -> Program[None]:
        """Store a new challenge and enqueue its code."""
        yield self._q(
            "INSERT INTO keyturn_challenges (id, version, data) VALUES (?, ?, ?)",
            (challenge.id, challenge.version, codec.challenge_to_json(challenge)),
        )
        yield from self._enqueue(notifications)

    def p_get_challenge(self, challenge_id: str) -> Program[Challenge | None]:
        """The challenge with this id, or ``None``."""
        row = yield self._q(
            "SELECT data FROM keyturn_challenges WHERE id = ?", (challenge_id,), "one"
        )
        return codec.challenge_from_json(row[0]) if row else None

    def _save_challenge(self, challenge: Challenge) -> Program[None]:
        updated = yield self._q(
            "UPDATE keyturn_challenges SET version = ?, data = ? WHERE id = ? AND version = ?",
            (
                challenge.version,
                codec.challenge_to_json(challenge),
                challenge.id,
                challenge.version - 1,
            ),
            "rowcount",
        )
        if updated != 1:
            raise ConcurrentUpdate(challenge.key_id or 0, challenge.version - 1)

    def p_save_challenge(self, challenge: Challenge) -> Program[None]:
        """Store a challenge one version above the stored one."""
        yield from self._save_challenge(challenge)

    # --- outbox -----------------------------------------------------------------------------

    def _enqueue(self, notifications: Sequence[Notification]) -> Program[None]:
        for n in notifications:
            at = codec.to_us(n.created_at)
            yield self._q(
                "INSERT INTO keyturn_outbox (id, created_at, due_at, code, data) "
                "VALUES (?, ?, ?, ?, ?)",
                (n.id, at, at, n.code, codec.notification_to_json(n)),
            )

    def p_claim_deliveries(
        self, now: datetime, limit: int, only: Sequence[str] | None
    ) -> Program[list[Delivery]]:
        """Claim up to ``limit`` due notifications (of ``only``), oldest first, for a lease."""
        t = codec.to_us(now)
        where = "" if only is None else f" AND id IN ({', '.join('?' * len(only))})"
        ids = yield self._q(
            "SELECT id FROM keyturn_outbox WHERE delivered_at IS NULL AND due_at <= ? "  # noqa: S608 (claim_lock is a class constant)
            "AND (claimed_until IS NULL OR claimed_until <= ?)"
            f"{where} "
            f"ORDER BY created_at, id LIMIT ?{self.claim_lock}",
            (t, t, *(only or ()), limit),
            "all",
        )
        claimed = []
        for row in ids:
            row_claimed = yield self._q(
                "UPDATE keyturn_outbox SET claimed_until = ?, attempts = attempts + 1 "
                "WHERE id = ? RETURNING data, code, attempts",
                (t + CLAIM_LEASE_US, row[0]),
                "one",
            )
            claimed.append(row_claimed)
        return [Delivery(codec.notification_from_json(d, c), int(a)) for d, c, a in claimed]

    def p_mark_delivered(self, notification_id: str, now: datetime) -> Program[bool]:
        """Record delivery and drop the notification's code; whether a code was erased."""
        erased = yield self._q(
            "UPDATE keyturn_outbox SET code = NULL WHERE id = ? AND code IS NOT NULL",
            (notification_id,),
            "rowcount",
        )
        yield self._q(
            "UPDATE keyturn_outbox SET delivered_at = ?, claimed_until = NULL WHERE id = ?",
            (codec.to_us(now), notification_id),
        )
        return bool(erased)

    def p_mark_failed(self, notification_id: str, retry_at: datetime, error: str) -> Program[None]:
        """Record a failed delivery, due again at ``retry_at``."""
        yield self._q(
            "UPDATE keyturn_outbox SET due_at = ?, claimed_until = NULL, last_error = ? "
            "WHERE id = ?",
            (codec.to_us(retry_at), error[:500], notification_id),
        )

    def p_pending_notifications(self) -> Program[int]:
        """How many notifications wait for delivery."""
        row = yield self._q(
            "SELECT COUNT(*) FROM keyturn_outbox WHERE delivered_at IS NULL", fetch="one"
        )
        return int(row[0])

    def p_stored_codes(self) -> Program[list[str]]:
        """Codes still held in the outbox."""
        rows = yield self._q("SELECT code FROM keyturn_outbox WHERE code IS NOT NULL", fetch="all")
        return [r[0] for r in rows]


class SqlKeyStore(SqlPrograms, abc.ABC):
    """The :class:`~keyturn.ports.KeyStore`, running the programs on a subclass's connections."""

    @abc.abstractmethod
    def _write(self) -> AbstractContextManager[Cursor]:
        """A cursor inside a write transaction, committed on exit, rolled back on error."""

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor for reading."""

    def close(self) -> None:
        """Release connections and files."""

    def _after_code_dropped(self) -> None:
        """Called after a delivered code was erased; a store may scrub old copies from disk."""

    def _drive(self, program: Program[T], tx: Tx = READ) -> T:
        with self._unique(tx), self._write() if tx.write else self._read() as cur:
            return effects.drive(program, functools.partial(run_on, cur))

    def analyze(self) -> None:
        """Refresh the planner's statistics (after a bulk load; PostgreSQL's autovacuum does it)."""
        with self._write() as cur:
            cur.execute("ANALYZE")

    def migrate(self) -> int:
        """Bring the schema up to date; return its version. Safe to run from many processes."""
        return self._drive(self.p_migrate(), WRITE)

    def schema_version(self) -> int:
        """The schema version the database is at."""
        return self._drive(self.p_schema_version())

    def get(self, key_id: int) -> ApiKey | None:
        """The key with this id, or ``None``."""
        return self._drive(self.p_get(key_id))

    def get_by_client_id(self, client_id: str) -> ApiKey | None:
        """The key with this client id, or ``None``."""
        return self._drive(self.p_get_by_client_id(client_id))

    def list_keys(self, owner: str | None = None) -> list[ApiKey]:
        """Keys of ``owner`` (or all), by id."""
        return self._drive(self.p_list_keys(owner))

    def insert(self, change: Change, *, max_live_per_owner: int) -> ApiKey:
        """Store a new key under the owner's quota, choosing its id, in one transaction."""
        return self._drive(
            self.p_insert(change, max_live_per_owner), Tx(write=True, unique="create")
        )

    def apply(self, change: Change) -> None:
        """Store a change if the key is still at ``expected_version``, with its history."""
        self._drive(self.p_apply(change), WRITE)

    def history(self, key_id: int) -> list[HistoryEntry]:
        """The key's audit trail, oldest first."""
        return self._drive(self.p_history(key_id))

    def access_log(
        self,
        owner: str,
        *,
        events: Collection[str] | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> list[KeyEvent]:
        """The owner's history entries (of ``events``), newest first, one page."""
        return self._drive(self.p_access_log(owner, events, offset, limit))

    def start_session(self, session: Session, *, max_per_key: int, now: datetime) -> None:
        """Record a new session; forget the key's dead ones and end its oldest beyond the cap."""
        self._drive(self.p_start_session(session, max_per_key, now), WRITE)

    def load_session(self, session_id: str) -> tuple[ApiKey, Session] | None:
        """The session and its key, in one read, or ``None``."""
        return self._drive(self.p_load_session(session_id))

    def rotate_session(self, session_id: str, *, expected: str, new: str) -> bool:
        """Swap the session's live refresh id ``expected`` for ``new``, if it is still live."""
        return self._drive(self.p_rotate_session(session_id, expected, new), WRITE)

    def end_session(self, session_id: str, now: datetime) -> bool:
        """End a session; whether it was live."""
        return self._drive(self.p_end_session(session_id, now), WRITE)

    def reseal(self, key_id: int, *, expected: str, sealed: str) -> bool:
        """Swap the key's sealed secret if it is still ``expected`` (version unchanged)."""
        return self._drive(self.p_reseal(key_id, expected, sealed), WRITE)

    def use_nonce(self, client_id: str, nonce: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record a nonce unless the client used it and it is still remembered."""
        return self._drive(self.p_use_nonce(client_id, nonce, expires_at, now), WRITE)

    def get_security_key(self, owner: str) -> SecurityKey | None:
        """The owner's security key, or ``None``."""
        return self._drive(self.p_get_security_key(owner))

    def save_security_key(self, security_key: SecurityKey) -> None:
        """Store a security key one version above the stored one (version 1: a new one)."""
        self._drive(self.p_save_security_key(security_key), WRITE)

    def remove_security_key(self, owner: str) -> bool:
        """Forget the owner's security key; whether there was one."""
        return self._drive(self.p_remove_security_key(owner), WRITE)

    def list_security_keys(self) -> list[SecurityKey]:
        """Every account's security key, by owner."""
        return self._drive(self.p_list_security_keys())

    def add_challenge(self, challenge: Challenge, notifications: Sequence[Notification]) -> None:
        """Store a new challenge and enqueue its code, in one transaction."""
        tx = Tx(write=True, unique="confirm", key_id=challenge.key_id or 0)
        self._drive(self.p_add_challenge(challenge, notifications), tx)

    def get_challenge(self, challenge_id: str) -> Challenge | None:
        """The challenge with this id, or ``None``."""
        return self._drive(self.p_get_challenge(challenge_id))

    def save_challenge(self, challenge: Challenge) -> None:
        """Store a challenge one version above the stored one."""
        self._drive(self.p_save_challenge(challenge), WRITE)

    def claim_deliveries(
        self, now: datetime, limit: int, only: Sequence[str] | None = None
    ) -> list[Delivery]:
        """Claim up to ``limit`` due notifications (of ``only``), oldest first, for a lease."""
        if only is not None and not only:
            return []
        return self._drive(self.p_claim_deliveries(now, limit, only), WRITE)

    def mark_delivered(self, notification_id: str, now: datetime) -> None:
        """Record delivery and drop the notification's code."""
        if self._drive(self.p_mark_delivered(notification_id, now), WRITE):
            self._after_code_dropped()

    def mark_failed(self, notification_id: str, retry_at: datetime, error: str) -> None:
        """Record a failed delivery, due again at ``retry_at``."""
        self._drive(self.p_mark_failed(notification_id, retry_at, error), WRITE)

    def pending_notifications(self) -> int:
        """How many notifications wait for delivery (for operators and tests)."""
        return self._drive(self.p_pending_notifications())

    def stored_codes(self) -> Iterator[str]:
        """Codes still held in the outbox, as stored: sealed (undelivered ones only; for audits)."""
        return iter(self._drive(self.p_stored_codes()))
