"""Key files and the SQLite file: created once, atomically, readable by their owner only."""

from __future__ import annotations

import multiprocessing
import os
import stat
from typing import TYPE_CHECKING, Any

import pytest

from keyturn import wiring
from keyturn.adapters import seal_keys
from keyturn.adapters.sqlite import SQLiteKeyStore

if TYPE_CHECKING:
    from pathlib import Path


CTX = multiprocessing.get_context("fork")
PROCESSES = 8
TRIALS = 50


def _start(queue: Any, barrier: Any, db: str) -> None:
    """One process starting on ``db``: server key, sealing ring, store, as a server does."""
    try:
        barrier.wait()
        key = wiring.server_key(db)
        box = seal_keys.secret_box(db)
        wiring.open_store(db).close()
        assert box is not None
        queue.put((key.hex(), box.current, {k: v.hex() for k, v in box.keys.items()}))
    except BaseException as e:  # noqa: BLE001 (reported to the parent, which fails the test)
        queue.put(f"{type(e).__name__}: {e}")


def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEYTURN_SERVER_KEY", "KEYTURN_SEAL_KEYS", "KEYTURN_SECRETS", "KEYTURN_DB"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.slow
def test_processes_starting_together_agree_on_every_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 processes starting at once on a new SQLite database, 50 times: one server key, one ring, no error."""
    _no_env(monkeypatch)
    for trial in range(TRIALS):
        db = str(tmp_path / f"trial{trial}.db")
        queue, barrier = CTX.Queue(), CTX.Barrier(PROCESSES)
        procs = [CTX.Process(target=_start, args=(queue, barrier, db)) for _ in range(PROCESSES)]
        for p in procs:
            p.start()
        results = [queue.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        errors = [r for r in results if isinstance(r, str)]
        assert errors == [], f"trial {trial}"
        assert len({repr(r) for r in results}) == 1, f"trial {trial}: processes disagree"
        assert (tmp_path / f"trial{trial}.db.key").read_text().strip() == results[0][0]


class TestModes:
    def test_new_database_and_its_journal_are_owner_only(self, tmp_path: Path) -> None:
        """A new SQLite file is created 0600, and its -wal and -shm files readable by no one else."""
        old = os.umask(0o022)
        try:
            store = SQLiteKeyStore(tmp_path / "keys.db")
            files = [tmp_path / n for n in ("keys.db", "keys.db-wal", "keys.db-shm")]
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
            store.close()
        finally:
            os.umask(old)
        assert modes["keys.db"] == 0o600
        assert all(mode & 0o077 == 0 for mode in modes.values()), modes

    def test_key_files_are_owner_only(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The server key file and the ring file are created 0600, with no temporary file left."""
        _no_env(monkeypatch)
        db = str(tmp_path / "keys.db")
        wiring.server_key(db)
        seal_keys.secret_box(db)
        for name in ("keys.db.key", "keys.db.seal"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
        assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.db.key", "keys.db.seal"]
