"""The PostgreSQL key store on psycopg's async connections (extra ``postgres``).

It runs the same programs as :class:`~keyturn.adapters.postgres.PostgresKeyStore` (the queries
of :mod:`keyturn.adapters._sql`, PostgreSQL's locks and DDL), awaiting each statement on an
``AsyncConnectionPool`` connection: one transaction per store method, as in the sync store.
Open it with ``await AsyncPostgresKeyStore.open(conninfo)``, close it with ``aclose()``. Lost
connections are handled as in the sync store: checked out checked, a read retried once on
another connection, any other failure a :class:`~keyturn.core.errors.StoreError`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from keyturn import effects
from keyturn.adapters._sql import READ, WRITE, Program, Tx
from keyturn.adapters.conninfo import describe
from keyturn.adapters.postgres import (
    LOST,
    PostgresPrograms,
    check_schema_name,
    create_schema,
    retry_read,
    store_error,
    unreachable,
    whole_seconds,
)
from keyturn.core.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from psycopg import AsyncCursor

    from keyturn.adapters._sql import Q, T
    from keyturn.core.records import (
        ApiKey,
        Challenge,
        Change,
        Delivery,
        HistoryEntry,
        KeyEvent,
        Notification,
        SecurityKey,
        Session,
    )


async def _run_on(cur: AsyncCursor[Any], q: Q) -> Any:  # noqa: ANN401
    await cur.execute(q.sql, q.params)
    if q.fetch == "one":
        return await cur.fetchone()
    if q.fetch == "all":
        return await cur.fetchall()
    if q.fetch == "rowcount":
        return cur.rowcount
    return None


class AsyncPostgresKeyStore(PostgresPrograms):
    """Keys in PostgreSQL over async connections; an :class:`~keyturn.ports.AsyncKeyStore`."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, schema: str | None, where: str) -> None:
        self._pool = pool
        self.schema = schema
        self._where = where

    @classmethod
    async def open(
        cls,
        conninfo: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 8,
        connect_timeout: float = 10.0,
    ) -> AsyncPostgresKeyStore:
        """Connect, create ``schema`` if asked, and migrate the schema forward."""
        schema = check_schema_name(schema)
        where = describe(conninfo)

        async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
            if schema is not None:
                await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
                await conn.commit()

        async def check(conn: psycopg.AsyncConnection[Any]) -> None:
            """As the sync store's check: a dead connection has the pool check the rest."""
            try:
                await AsyncConnectionPool.check_connection(conn)
            except psycopg.Error:
                await pool.check()
                raise

        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            timeout=connect_timeout,
            configure=configure,
            check=check,
            open=False,
        )
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, connect_timeout=whole_seconds(connect_timeout)
            ) as c:  # fails fast, with libpq's reason, where the pool would retry until timeout
                if schema is not None:
                    await c.execute(create_schema(schema))
            await pool.open(wait=True, timeout=connect_timeout)
        except (psycopg.Error, TimeoutError, OSError) as e:
            await pool.close()
            raise unreachable(where, e) from None
        store = cls(pool, schema=schema, where=where)
        await store.migrate()
        return store

    def __repr__(self) -> str:
        return f"AsyncPostgresKeyStore({self._where!r}, schema={self.schema!r})"

    async def _drive(self, program: Program[T], tx: Tx = READ) -> T:
        try:
            if not tx.write:
                return await effects.drive_async(program, self._read_statement)
            with self._unique(tx):
                async with (
                    self._pool.connection() as conn,
                    conn.transaction(),
                    conn.cursor() as cur,
                ):
                    return await effects.drive_async(program, functools.partial(_run_on, cur))
        except psycopg.Error as e:
            raise store_error(self._where, e) from e

    async def _read_once(self, q: Q) -> Any:  # noqa: ANN401 (a row, rows or a count)
        async with self._pool.connection() as conn, conn.cursor() as cur:
            return await _run_on(cur, q)

    async def _read_statement(self, q: Q) -> Any:  # noqa: ANN401
        """One read statement on a pooled connection; once more on another if that one is lost."""
        try:
            return await self._read_once(q)
        except LOST as e:
            if not retry_read(e):
                raise
        return await self._read_once(q)

    async def migrate(self) -> int:
        """Bring the schema up to date; return its version."""
        return await self._drive(self.p_migrate(), WRITE)

    async def schema_version(self) -> int:
        """The schema version the database is at."""
        return await self._drive(self.p_schema_version())

    async def get(self, key_id: int) -> ApiKey | None:
        """The key with this id, or ``None``."""
        return await self._drive(self.p_get(key_id))

    async def get_by_client_id(self, client_id: str) -> ApiKey | None:
        """The key with this client id, or ``None``."""
        return await self._drive(self.p_get_by_client_id(client_id))

    async def list_keys(self, owner: str | None = None) -> list[ApiKey]:
        """Keys of ``owner`` (or all), by id."""
        return await self._drive(self.p_list_keys(owner))

    async def insert(self, change: Change, *, max_live_per_owner: int) -> ApiKey:
        """Store a new key under the owner's quota, choosing its id, in one transaction."""
        return await self._drive(
            self.p_insert(change, max_live_per_owner), Tx(write=True, unique="create")
        )

    async def apply(self, change: Change) -> None:
        """Store a change if the key is still at ``expected_version``, with its history."""
        await self._drive(self.p_apply(change), WRITE)

    async def history(self, key_id: int) -> list[HistoryEntry]:
        """The key's audit trail, oldest first."""
        return await self._drive(self.p_history(key_id))

    async def access_log(
        self,
        owner: str,
        *,
        events: Collection[str] | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> list[KeyEvent]:
        """The owner's history entries (of ``events``), newest first, one page."""
        return await self._drive(self.p_access_log(owner, events, offset, limit))

    async def start_session(self, session: Session, *, max_per_key: int, now: datetime) -> None:
        """Record a new session; forget the key's dead ones and end its oldest beyond the cap."""
        await self._drive(self.p_start_session(session, max_per_key, now), WRITE)

    async def load_session(self, session_id: str) -> tuple[ApiKey, Session] | None:
        """The session and its key, in one read, or ``None``."""
        return await self._drive(self.p_load_session(session_id))

    async def rotate_session(self, session_id: str, *, expected: str, new: str) -> bool:
        """Swap the session's live refresh id ``expected`` for ``new``, if it is still live."""
        return await self._drive(self.p_rotate_session(session_id, expected, new), WRITE)

    async def end_session(self, session_id: str, now: datetime) -> bool:
        """End a session; whether it was live."""
        return await self._drive(self.p_end_session(session_id, now), WRITE)

    async def get_security_key(self, owner: str) -> SecurityKey | None:
        """The owner's security key, or ``None``."""
        return await self._drive(self.p_get_security_key(owner))

    async def save_security_key(self, security_key: SecurityKey) -> None:
        """Store a security key one version above the stored one (version 1: a new one)."""
        await self._drive(self.p_save_security_key(security_key), WRITE)

    async def remove_security_key(self, owner: str) -> bool:
        """Forget the owner's security key; whether there was one."""
        return await self._drive(self.p_remove_security_key(owner), WRITE)

    async def list_security_keys(self) -> list[SecurityKey]:
        """Every account's security key, by owner."""
        return await self._drive(self.p_list_security_keys())

    async def reseal(self, key_id: int, *, expected: str, sealed: str) -> bool:
        """Swap the key's sealed secret if it is still ``expected``."""
        return await self._drive(self.p_reseal(key_id, expected, sealed), WRITE)

    async def use_nonce(
        self, client_id: str, nonce: str, *, expires_at: datetime, now: datetime
    ) -> bool:
        """Record a nonce unless the client used it and it is still remembered."""
        return await self._drive(self.p_use_nonce(client_id, nonce, expires_at, now), WRITE)

    async def add_challenge(
        self, challenge: Challenge, notifications: Sequence[Notification]
    ) -> None:
        """Store a new challenge and enqueue its code, in one transaction."""
        tx = Tx(write=True, unique="confirm", key_id=challenge.key_id or 0)
        await self._drive(self.p_add_challenge(challenge, notifications), tx)

    async def get_challenge(self, challenge_id: str) -> Challenge | None:
        """The challenge with this id, or ``None``."""
        return await self._drive(self.p_get_challenge(challenge_id))

    async def save_challenge(self, challenge: Challenge) -> None:
        """Store a challenge one version above the stored one."""
        await self._drive(self.p_save_challenge(challenge), WRITE)

    async def claim_deliveries(
        self, now: datetime, limit: int, only: Sequence[str] | None = None
    ) -> list[Delivery]:
        """Claim up to ``limit`` due notifications (of ``only``), oldest first, for a lease."""
        if only is not None and not only:
            return []
        return await self._drive(self.p_claim_deliveries(now, limit, only), WRITE)

    async def mark_delivered(self, notification_id: str, now: datetime) -> None:
        """Record delivery and drop the notification's code."""
        await self._drive(self.p_mark_delivered(notification_id, now), WRITE)

    async def mark_failed(self, notification_id: str, retry_at: datetime, error: str) -> None:
        """Record a failed delivery, due again at ``retry_at``."""
        await self._drive(self.p_mark_failed(notification_id, retry_at, error), WRITE)

    async def pending_notifications(self) -> int:
        """How many notifications wait for delivery."""
        return await self._drive(self.p_pending_notifications())

    async def drop_schema(self) -> None:
        """Drop this store's schema and everything in it (tests; irreversible)."""
        if self.schema is None:
            raise InvalidInput("schema", "only a store with its own schema can drop it")
        async with self._pool.connection() as conn:
            await conn.execute(
                sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(self.schema))
            )

    async def aclose(self) -> None:
        """Close the pool."""
        await self._pool.close()
