"""The SQLite key store: keyturn's embedded default, one file, safe for several processes.

Standard-library :mod:`sqlite3` only. The file runs in WAL mode with durable commits
(``synchronous=FULL`` by default) and a busy timeout, and every write is a ``BEGIN IMMEDIATE``
transaction, so processes on one machine serialise their writes instead of failing. The schema is
created on first use and migrated forward by :meth:`~keyturn.adapters._sql.SqlKeyStore.migrate`.
A new file is created readable by its owner only (0600), and so are its ``-wal`` and ``-shm``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from typing import TYPE_CHECKING, ClassVar, Literal

from keyturn.adapters._sql import SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, Cursor, SqlKeyStore
from keyturn.core.errors import InvalidInput, StoreError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


def _create_private(path: str) -> None:
    """Create a new database file readable by its owner only (0600); an existing one is kept.

    SQLite gives its ``-wal`` and ``-shm`` files the database file's permissions, so they are
    private too. A file that exists already keeps the permissions it has.
    """
    if path in ("", ":memory:"):
        return
    with contextlib.suppress(OSError):  # exists already, or SQLite reports why it cannot open
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class SQLiteKeyStore(SqlKeyStore):
    """Keys in one SQLite file (``":memory:"`` for a private, throwaway database)."""

    MIGRATIONS: ClassVar[tuple[str, ...]] = (
        SCHEMA_V1.format(id="INTEGER PRIMARY KEY AUTOINCREMENT", int="INTEGER"),
        SCHEMA_V2.format(int="INTEGER"),
        SCHEMA_V3.format(int="INTEGER"),
        SCHEMA_V4.format(int="INTEGER"),
    )

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
        self.scrub_delivered_codes = scrub_delivered_codes
        self._lock = threading.RLock()
        _create_private(self.path)
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._use_wal(busy_timeout)
            self._conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA secure_delete = ON")
        except sqlite3.Error as e:
            msg = f"cannot open the SQLite key store at {self.path!r}: {e}"
            raise StoreError(msg) from None
        self.migrate()

    def __repr__(self) -> str:
        return f"SQLiteKeyStore({self.path!r})"

    def _use_wal(self, busy_timeout: float) -> None:
        """Switch the file to WAL, waiting for other processes doing the same on a new file.

        Changing the journal mode can answer "database is locked" at once, without waiting on
        the busy timeout, while another connection holds the lock it needs; so wait here.
        """
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL").fetchall()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)
            else:
                return

    @contextlib.contextmanager
    def _write(self) -> Iterator[Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def _after_code_dropped(self) -> None:
        """Fold the WAL into the file and truncate it, so no old page keeps the erased code.

        ``secure_delete`` zeroes freed content in the file; the WAL still holds earlier versions
        of the page until a checkpoint. A checkpoint another process blocks is retried by the
        next delivery; switch it off with ``scrub_delivered_codes=False`` to save the fsyncs.
        """
        if self.scrub_delivered_codes:
            with self._lock:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def _is_unique_violation(self, error: Exception) -> bool:
        return isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in str(error)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
