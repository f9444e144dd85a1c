"""PostgreSQL's driver for the SQL store: psycopg 3 connections from a pool (extra ``postgres``).

Pooled connections are in autocommit mode, so a read is one statement and one round trip (no
``BEGIN``/``COMMIT`` around it, no rollback when the connection goes back to the pool); a change
is ``BEGIN``, its statements, ``COMMIT``. psycopg prepares a statement on a connection once it has
run a few times there (``prepare_threshold``), so the store's fixed statements run prepared.
The pool is sized to the server unless told: at most a quarter of its ``max_connections``,
and no more than four per CPU of this machine, so many backend instances can share it.

A database restart or a terminated backend must not turn into failed requests, and checking
every connection as it is handed out would cost a round trip each time. So a lost connection is
found when it is used, and then the pool checks all its idle ones at once (one dead connection
usually means every one is: the server restarted, or ended them). A read whose connection is
lost runs once more on another (a fresh statement sees the same READ COMMITTED view); so does a
transaction whose ``BEGIN`` could not be sent, since nothing of it reached the server. A write
lost after that is never retried here: whether its commit happened cannot be known, so it
becomes a :class:`~keyturn.core.errors.StoreError`, as does every other database failure; no
psycopg exception leaves a store. Messages and reprs name the server by
:func:`~keyturn.adapters.conninfo.describe`, never with its password.
This module is the async source: ``scripts/unasync.py`` writes its blocking twin.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import TYPE_CHECKING, Any, ClassVar, Final

import psycopg
from psycopg import errors, sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from keyturn.adapters.conninfo import describe
from keyturn.adapters.sql._async.base import AsyncTx
from keyturn.adapters.sql._async.store import AsyncSqlStore
from keyturn.adapters.sql.common import DuplicateRow
from keyturn.adapters.sql.schema import POSTGRES, Dialect
from keyturn.core.errors import InvalidInput, StoreError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from keyturn.adapters.sql.common import Row

#: A connection that is gone (or never came): the errors a read is retried after.
LOST: Final = (psycopg.OperationalError, psycopg.InterfaceError)
#: Pool connections per CPU of this machine, at most (when the pool is sized automatically).
_PER_CPU: Final = 4
#: Every write transaction's start. READ COMMITTED whatever the server's default: a statement
#: after an advisory lock (the quota, a confirmation's count) must see what the lock waited for,
#: which a REPEATABLE READ snapshot taken before the wait would not.
_BEGIN: Final = "BEGIN ISOLATION LEVEL READ COMMITTED"


def _store_error(where: str, error: psycopg.Error) -> StoreError:
    """The typed error for a database failure: what happened, where, and what to do."""
    name = type(error).__name__
    if isinstance(error, errors.UniqueViolation):
        return DuplicateRow()
    if isinstance(error, LOST):
        msg = f"lost the connection to the PostgreSQL key store at {where} ({name}); try again"
    else:
        msg = f"the PostgreSQL key store at {where} refused the request ({name})"
    return StoreError(msg)


def _unreachable(where: str, error: Exception) -> StoreError:
    """The typed error for a store that cannot be opened."""
    msg = f"cannot reach the PostgreSQL key store at {where}: {type(error).__name__}"
    return StoreError(msg)


def check_schema_name(schema: str | None) -> str | None:
    """``schema`` if it is a plain SQL identifier (or ``None``), else InvalidInput."""
    if schema is not None and (not schema.isidentifier() or len(schema) > 63):  # noqa: PLR2004
        raise InvalidInput("schema", "must be a plain SQL identifier of at most 63 characters")
    return schema


def pool_size(max_connections: int, cpus: int | None) -> int:
    """The pool's size when not given: a quarter of the server's connections, 4 per local CPU."""
    return max(2, min(max_connections // 4, _PER_CPU * (cpus or 1)))


class AsyncPostgresStore(AsyncSqlStore):
    """Keys in PostgreSQL, optionally in their own ``schema``. :meth:`connect` before use."""

    dialect: ClassVar[Dialect] = POSTGRES

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.schema = check_schema_name(schema)
        self._conninfo = conninfo
        self._where = describe(conninfo)
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = timeout
        self._pool: AsyncConnectionPool[Any] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._where!r}, schema={self.schema!r})"

    async def connect(self) -> None:
        """Reach the server, create the schema if asked, open the pool, migrate the tables.

        Fails fast with libpq's reason, where a pool would retry until its timeout.
        """
        try:
            async with await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True, connect_timeout=max(1, math.ceil(self._timeout))
            ) as conn:
                if self.schema is not None:
                    await conn.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                            sql.Identifier(self.schema)
                        )
                    )
                cur = await conn.execute("SHOW max_connections")
                row = await cur.fetchone()
            size = self._max_size or pool_size(int(row[0]) if row else 100, os.cpu_count())
            self._pool = AsyncConnectionPool(
                self._conninfo,
                min_size=min(self._min_size, size),
                max_size=size,
                timeout=self._timeout,
                kwargs={"autocommit": True},
                configure=self._configure,
                open=False,
            )
            await self._pool.open(wait=True, timeout=self._timeout)
        except (psycopg.Error, TimeoutError, OSError) as e:
            await self.aclose()
            raise _unreachable(self._where, e) from None
        await self.migrate()

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        """The connection pool (after :meth:`connect`)."""
        if self._pool is None:
            msg = f"the PostgreSQL key store at {self._where} is not connected"
            raise StoreError(msg)
        return self._pool

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self.schema is not None:
            await conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))

    async def _lost(self, error: psycopg.Error, *, last: bool) -> None:
        """A connection was lost: check the pool's idle ones, then raise unless another try."""
        if last or isinstance(error, PoolTimeout):
            raise _store_error(self._where, error) from error
        with contextlib.suppress(psycopg.Error):
            await self.pool.check()

    # --- the driver hooks -------------------------------------------------------------------

    async def _read(self, statement: str, params: Sequence[Any], *, many: bool) -> Any:  # noqa: ANN401 (a row or rows)
        """One read statement on a pooled connection; once more on another if that one is lost."""
        if self.trace is not None:
            self.trace(statement)
        query = self.dialect.sql(statement)
        for attempt in (1, 2):
            try:
                async with self.pool.connection() as conn:
                    cur = await conn.execute(query, params)
                    return await cur.fetchall() if many else await cur.fetchone()
            except LOST as e:
                await self._lost(e, last=attempt == 2)  # noqa: PLR2004
            except psycopg.Error as e:
                raise _store_error(self._where, e) from e
        raise AssertionError  # pragma: no cover (the loop returns or raises)

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = await self._read(sql, params, many=False)
        return row

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows: list[Row] = await self._read(sql, params, many=True)
        return rows

    async def _run(self, sql: str, params: Sequence[Any] = (), *, durable: bool = True) -> int:  # noqa: ARG002 (every commit here is durable)
        if self.trace is not None:
            self.trace(sql)
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute(self.dialect.sql(sql), params)
                changed: int = cur.rowcount
                return changed
        except LOST as e:
            await self._lost(e, last=False)  # the others are checked; this write is not retried
            raise _store_error(self._where, e) from e
        except psycopg.Error as e:
            raise _store_error(self._where, e) from e

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncTx]:
        try:
            async with self._begun() as conn, conn.cursor() as cur:
                try:
                    yield AsyncTx(cur, self.dialect, self.trace)
                except BaseException:
                    with contextlib.suppress(psycopg.Error):  # a lost connection rolled back
                        await conn.execute("ROLLBACK")
                    raise
                if self.trace is not None:
                    self.trace("COMMIT")
                await conn.execute("COMMIT")
        except psycopg.Error as e:
            raise _store_error(self._where, e) from e

    @contextlib.asynccontextmanager
    async def _begun(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection in a transaction; another one if ``BEGIN`` could not be sent."""
        for attempt in (1, 2):
            async with self.pool.connection() as conn:
                if self.trace is not None:
                    self.trace(_BEGIN)
                try:
                    await conn.execute(_BEGIN)
                except LOST as e:
                    await self._lost(e, last=attempt == 2)  # noqa: PLR2004
                    continue
                yield conn
                return

    # --- administration ---------------------------------------------------------------------

    async def drop_schema(self) -> None:
        """Drop this store's schema and everything in it (tests; irreversible)."""
        if self.schema is None:
            raise InvalidInput("schema", "only a store with its own schema can drop it")
        async with self.pool.connection() as conn:
            await conn.execute(
                sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(self.schema))
            )

    async def aclose(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            await self._pool.close()
