"""The SQLite key store: keyturn's embedded default, one file, safe for several processes.

Standard-library :mod:`sqlite3` only, driving the SQL store written once in
:mod:`keyturn.adapters.sql` (this module is its SQLite driver). The file runs in WAL mode with
durable commits (``synchronous=FULL`` by default) and a busy timeout. Readers never wait behind
the writer: each read runs on its own connection, taken from a small pool of idle ones (WAL lets
them read the last commit while a write is under way). Writes go through one connection in
``BEGIN IMMEDIATE`` transactions: this process's writers take turns on it (behind a lock that
is free whenever one thread does the writing, as under ``keyturn serve``), other processes'
wait on SQLite's busy timeout. :meth:`SQLiteKeyStore.batch` runs many writes in one transaction,
each in a savepoint: one commit, one wait for the disk, for all of them (the async wrapper's
writer thread uses it for the writes that queued up meanwhile). The schema is created on first
use and migrated forward. A new file is created readable by its owner only (0600), and so are
its ``-wal`` and ``-shm``. Every :mod:`sqlite3` failure leaves as a
:class:`~keyturn.core.errors.StoreError`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from keyturn.adapters.sql._sync.base import Tx
from keyturn.adapters.sql._sync.store import SqlStore
from keyturn.adapters.sql.common import DuplicateRow
from keyturn.adapters.sql.schema import SQLITE, Dialect
from keyturn.core.errors import InvalidInput, StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

    from keyturn.adapters.sql.common import Row

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
_MEMORY: Final = ("", ":memory:")


def _create_private(path: str) -> None:
    """Create a new database file readable by its owner only (0600); an existing one is kept.

    SQLite gives its ``-wal`` and ``-shm`` files the database file's permissions, so they are
    private too. A file that exists already keeps the permissions it has.
    """
    if path in _MEMORY:
        return
    with contextlib.suppress(OSError):  # exists already, or SQLite reports why it cannot open
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class SQLiteKeyStore(SqlStore):
    """Keys in one SQLite file (``":memory:"`` for a private, throwaway database)."""

    dialect: ClassVar[Dialect] = SQLITE

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout: float = 30.0,
        scrub_delivered_codes: bool = True,
    ) -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise InvalidInput("synchronous", "must be OFF, NORMAL, FULL or EXTRA")
        self.path = str(path)
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.scrub_delivered_codes = scrub_delivered_codes
        self._write_lock = threading.RLock()
        self._batching = False
        self._scrub_after_batch = False
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._opened: list[sqlite3.Connection] = []
        self._closed = False
        _create_private(self.path)
        self._writer = self._open(first=True)
        self.migrate()

    def __repr__(self) -> str:
        return f"SQLiteKeyStore({self.path!r})"

    # --- connections ------------------------------------------------------------------------

    def _open(self, *, first: bool = False) -> sqlite3.Connection:
        """A new connection with the store's settings (the first one also switches on WAL)."""
        if self._closed:
            msg = f"the SQLite key store at {self.path!r} is closed"
            raise StoreError(msg)
        try:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self.busy_timeout,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if first:
                self._use_wal(conn)
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA secure_delete = ON")
        except sqlite3.Error as e:
            msg = f"cannot open the SQLite key store at {self.path!r}: {e}"
            raise StoreError(msg) from None
        if self.trace is not None:
            conn.set_trace_callback(self.trace)
        self._opened.append(conn)
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL, waiting for other processes doing the same on a new file.

        Changing the journal mode can answer "database is locked" at once, without waiting on
        the busy timeout, while another connection holds the lock it needs; so wait here.
        """
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL").fetchall()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)
            else:
                return

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """An idle read connection (a new one if none is idle), given back after use.

        A private in-memory database exists on one connection only: it reads on the writer's.
        """
        if self.path in _MEMORY:
            with self._write_lock:
                yield self._writer
            return
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._open()
        try:
            yield conn
        finally:
            self._idle.put(conn)

    def _failed(self, error: sqlite3.Error) -> StoreError:
        """The typed error for an :mod:`sqlite3` failure."""
        if isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error):
            return DuplicateRow()
        msg = f"the SQLite key store at {self.path!r} failed: {error}"
        if "locked" in str(error) or "busy" in str(error):
            msg += " (another process held it longer than the busy timeout; try again)"
        return StoreError(msg)

    # --- the driver hooks -------------------------------------------------------------------

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        try:
            if self.path in _MEMORY:  # one connection: the writer's
                with self._write_lock:
                    return self._writer.execute(sql, params).fetchone()  # type: ignore[no-any-return]
            try:  # an idle reader, taken and given back inline: every key lookup comes here
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            try:
                row: Row | None = conn.execute(sql, params).fetchone()
            finally:
                self._idle.put(conn)
        except sqlite3.Error as e:
            raise self._failed(e) from e
        return row

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            with self._reader() as conn:
                return conn.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise self._failed(e) from e

    def _run(self, sql: str, params: Sequence[Any] = (), *, durable: bool = True) -> int:
        relax = not durable and not self._batching and self.synchronous in ("FULL", "EXTRA")
        try:
            with self._write_lock:
                if relax:  # a commit without the fsync; the next durable one syncs the WAL
                    self._writer.execute("PRAGMA synchronous = NORMAL")
                try:
                    return self._writer.execute(sql, params).rowcount
                finally:
                    if relax:
                        self._writer.execute(f"PRAGMA synchronous = {self.synchronous}")
        except sqlite3.Error as e:
            raise self._failed(e) from e

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Tx]:
        try:
            with self._write_lock:
                cur = self._writer.cursor()
                begin, commit, undo = (
                    ("SAVEPOINT write", "RELEASE write", "ROLLBACK TO write")
                    if self._batching
                    else ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
                )
                cur.execute(begin)
                try:
                    yield Tx(cur, self.dialect, None)  # the connection traces every statement
                except BaseException:
                    cur.execute(undo)
                    if self._batching:
                        cur.execute(commit)
                    raise
                else:
                    cur.execute(commit)
                finally:
                    cur.close()
        except sqlite3.Error as e:
            raise self._failed(e) from e

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Run the writes this thread makes in the block in one transaction: one commit for all.

        Each write is a savepoint, so one that fails undoes only itself; if the commit fails,
        none is written. Readers see them all at once, when the block ends.
        """
        with self._write_lock:
            if self._batching:  # already in a batch: this block is part of it
                yield
                return
            try:
                self._writer.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise self._failed(e) from e
            self._batching = True
            try:
                yield
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            else:
                try:
                    self._writer.execute("COMMIT")
                except sqlite3.Error as e:
                    self._writer.execute("ROLLBACK")
                    raise self._failed(e) from e
            finally:
                self._batching = False
        if self._scrub_after_batch:
            self._scrub_after_batch = False
            self._after_code_dropped()

    def _after_code_dropped(self) -> None:
        """Fold the WAL into the file and truncate it, so no old page keeps the erased code.

        ``secure_delete`` zeroes freed content in the file; the WAL still holds earlier versions
        of the page until a checkpoint. A checkpoint another process blocks is retried by the
        next delivery; switch it off with ``scrub_delivered_codes=False`` to save the fsyncs.
        """
        if self._batching:  # a checkpoint waits for the batch's commit
            self._scrub_after_batch = True
            return
        if self.scrub_delivered_codes:
            with self._write_lock:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def watch(self, trace: Callable[[str], object] | None) -> None:
        """Have ``trace`` see every statement sent from now on (``None``: stop); for tests.

        SQLite's own trace hook on each connection reports them, so they are the statements
        the library really ran (``BEGIN IMMEDIATE``, ``PRAGMA`` settings and all).
        """
        self.trace = trace
        for conn in self._opened:
            conn.set_trace_callback(trace)

    def close(self) -> None:
        """Close every connection."""
        with self._write_lock:
            self._closed = True
            for conn in self._opened:
                conn.close()
            self._opened.clear()
