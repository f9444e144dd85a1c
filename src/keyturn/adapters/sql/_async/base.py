"""What an SQL key store asks of its database driver, and the schema migrations built on it.

A driver (SQLite's, PostgreSQL's) fills four hooks: :meth:`AsyncSqlBase._one` and
:meth:`AsyncSqlBase._all` run one read statement on its own (autocommit: no ``BEGIN``/``COMMIT``
around it), :meth:`AsyncSqlBase._run` one write statement on its own, and
:meth:`AsyncSqlBase._transaction` opens a write transaction whose statements go through an
:class:`AsyncTx`. A driver turns the database's duplicate-key refusal into
:class:`~keyturn.adapters.sql.common.DuplicateRow` and every other failure into
:class:`~keyturn.core.errors.StoreError`: no driver exception leaves a store. Statements are
written with ``?`` placeholders, which the store's :class:`~keyturn.adapters.sql.schema.Dialect`
translates. ``trace`` (tests, profiling) sees every statement a store sends, ``BEGIN`` and
``COMMIT`` included, so a test can count the round trips of an operation.
This module is the async source: ``scripts/unasync.py`` writes its blocking twin.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from keyturn.core.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from contextlib import AbstractAsyncContextManager

    from keyturn.adapters.sql.common import Row
    from keyturn.adapters.sql.schema import Dialect


class AsyncCursor(Protocol):
    """The part of a DB-API cursor a transaction uses (sqlite3's and psycopg's fit)."""

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed."""
        ...

    async def execute(self, sql: str, params: Sequence[Any], /) -> object:
        """Run one statement."""
        ...

    async def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> object:
        """Run one statement for each parameter row."""
        ...

    async def fetchone(self) -> Any:  # noqa: ANN401 (a row, as the driver makes it)
        """The next row, or ``None``."""
        ...

    async def fetchall(self) -> list[Any]:
        """All remaining rows."""
        ...


class AsyncTx:
    """The statements of one write transaction, on the cursor a driver opened for it."""

    __slots__ = ("_cursor", "_dialect", "_trace")

    def __init__(
        self, cursor: AsyncCursor, dialect: Dialect, trace: Callable[[str], object] | None
    ) -> None:
        self._cursor = cursor
        self._dialect = dialect
        self._trace = trace

    async def _execute(self, sql: str, params: Sequence[Any]) -> None:
        if self._trace is not None:
            self._trace(sql)
        await self._cursor.execute(self._dialect.sql(sql), params)

    async def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of ``sql``, or ``None``."""
        await self._execute(sql, params)
        row: Row | None = await self._cursor.fetchone()
        return row

    async def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of ``sql``."""
        await self._execute(sql, params)
        return await self._cursor.fetchall()

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run ``sql``; how many rows it changed."""
        await self._execute(sql, params)
        return self._cursor.rowcount

    async def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` once per parameter row, in one call to the driver."""
        if not rows:
            return
        if self._trace is not None:
            self._trace(sql)
        await self._cursor.executemany(self._dialect.sql(sql), rows)


class AsyncSqlBase(abc.ABC):
    """The driver hooks every SQL store is written against, and its schema's migrations."""

    dialect: ClassVar[Dialect]
    #: Sees every statement sent, ``BEGIN`` and ``COMMIT`` included (``None``: nobody looks).
    trace: Callable[[str], object] | None = None

    @abc.abstractmethod
    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of one read statement, run on its own."""

    @abc.abstractmethod
    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of one read statement, run on its own."""

    @abc.abstractmethod
    async def _run(self, sql: str, params: Sequence[Any] = (), *, durable: bool = True) -> int:
        """One write statement, committed on its own; how many rows it changed.

        ``durable=False`` allows a driver to skip the wait for the disk on a write whose loss in
        a power failure costs only a repeat (a delivery mark): the next durable commit, or a
        checkpoint, makes it durable too.
        """

    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[AsyncTx]:
        """A write transaction: committed when the block ends, rolled back if it raises."""

    def watch(self, trace: Callable[[str], object] | None) -> None:
        """Have ``trace`` see every statement sent from now on (``None``: stop); for tests."""
        self.trace = trace

    async def _after_code_dropped(self) -> None:  # noqa: B027 (a hook most drivers leave be)
        """Called after delivered codes were erased; a store may scrub old copies from disk."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections and files."""

    # --- schema -----------------------------------------------------------------------------

    async def migrate(self) -> int:
        """Bring the schema up to date; return its version. Safe to run from many processes."""
        migrations = self.dialect.migrations
        async with self._transaction() as tx:
            if self.dialect.schema_lock is not None:
                await tx.run(self.dialect.schema_lock)
            await tx.run("CREATE TABLE IF NOT EXISTS keyturn_schema (version INTEGER NOT NULL)")
            row = await tx.one("SELECT version FROM keyturn_schema")
            current = int(row[0]) if row else 0
            if current > len(migrations):
                msg = (
                    f"the database has keyturn schema version {current}, newer than this "
                    f"keyturn knows ({len(migrations)}); upgrade keyturn"
                )
                raise StoreError(msg)
            for script in migrations[current:]:
                for statement in script.split(";"):
                    if statement.strip():
                        await tx.run(statement)
            if row is None:
                await tx.run("INSERT INTO keyturn_schema (version) VALUES (?)", (0,))
            await tx.run("UPDATE keyturn_schema SET version = ?", (len(migrations),))
        return len(migrations)

    async def schema_version(self) -> int:
        """The schema version the database is at."""
        row = await self._one("SELECT version FROM keyturn_schema")
        return int(row[0]) if row else 0

    async def analyze(self) -> None:
        """Refresh the planner's statistics (after a bulk load; PostgreSQL's autovacuum does it)."""
        await self._run("ANALYZE")
