"""keyturn.adapters.to_async.AsyncStore: the writer thread, group commit and inline reads.

Writes to a SQLite store wrapped in ``AsyncStore`` go to one writer thread; those that queue
while it is busy run in one transaction, each in its own savepoint. These tests hold the writer
(another thread is inside ``store.batch()``), queue writes behind it, and read the statements
SQLite really ran (``store.watch``).
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
import pytest

from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.adapters.to_async import AsyncStore
from keyturn.core.errors import QuotaExceeded
from keyturn.testing.contract.records import T0, creation, new_key

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence
    from pathlib import Path

    from keyturn.core.records import Change
    from keyturn.ports import KeyStore

LATER = T0 + timedelta(minutes=5)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SQLiteKeyStore]:
    """A SQLite store on a fresh file (no fsync: these tests count commits, not wait for them)."""
    store = SQLiteKeyStore(tmp_path / "keys.db", synchronous="OFF")
    yield store
    store.close()


@contextmanager
def writer_held(store: SQLiteKeyStore) -> Iterator[threading.Event]:
    """Another thread sits inside ``store.batch()`` until the yielded event is set."""
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.batch():
            inside.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(30)
    try:
        yield release
    finally:
        release.set()
        thread.join(30)


@contextmanager
def reopened(store: SQLiteKeyStore) -> Iterator[SQLiteKeyStore]:
    """The same file opened again (``aclose`` closed the wrapped store)."""
    again = SQLiteKeyStore(store.path, synchronous="OFF")
    try:
        yield again
    finally:
        again.close()


def queued(
    held: SQLiteKeyStore,
    wrapped: KeyStore,
    writes: Callable[[AsyncStore], Sequence[Awaitable[object]]],
    seen: list[str] | None = None,
) -> list[object]:
    """Each write's answer (or error), all queued behind ``held``'s busy writer, then let go.

    ``wrapped`` is what ``AsyncStore`` wraps (``held`` itself, or a store over it); ``seen``
    gets every statement ``held`` runs once the writer is held.
    """

    async def run() -> list[object]:
        store = AsyncStore(wrapped)
        try:
            with writer_held(held) as release:
                if seen is not None:
                    held.watch(seen.append)
                tasks = [asyncio.ensure_future(w) for w in writes(store)]
                await asyncio.sleep(0)  # every task runs up to its queued job
                release.set()
                return await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await store.aclose()

    return asyncio.run(run())


def commits(seen: list[str]) -> int:
    """How many of the statements seen were a COMMIT."""
    return sum(s.strip().upper() == "COMMIT" for s in seen)


def created(owner: str, name: str) -> Change:
    """A change inserting a new key of ``owner``."""
    return creation(new_key(owner=owner, name=name))


def test_writes_that_queue_share_one_commit(sqlite: SQLiteKeyStore) -> None:
    """Ten writes queued behind a busy writer are committed together: two COMMITs, not ten."""
    seen: list[str] = []
    answers = queued(
        sqlite,
        sqlite,
        lambda store: [store.use_nonce("c", f"n{i}", expires_at=LATER, now=T0) for i in range(10)],
        seen,
    )
    assert answers == [True] * 10
    # the held batch's commit, then at most two: the first write may be taken alone before the
    # others queue, and every write that queued behind it shares one commit
    assert 2 <= commits(seen) <= 3
    with reopened(sqlite) as again:
        assert all(
            again.use_nonce("c", f"n{i}", expires_at=LATER, now=T0) is False for i in range(10)
        )


def test_a_write_that_fails_in_a_batch_undoes_only_itself(sqlite: SQLiteKeyStore) -> None:
    """In one batch, an insert over the owner's quota raises; the writes around it are kept."""
    seen: list[str] = []
    answers = queued(
        sqlite,
        sqlite,
        lambda store: [
            store.use_nonce("c", "first", expires_at=LATER, now=T0),
            store.insert(created("alice", "a1"), max_live_per_owner=1),
            store.insert(created("alice", "a2"), max_live_per_owner=1),
            store.insert(created("bob", "b1"), max_live_per_owner=1),
        ],
        seen,
    )
    assert answers[0] is True
    assert isinstance(answers[2], QuotaExceeded)
    # the held batch's commit, then at most two: the four writes shared a transaction
    assert 2 <= commits(seen) <= 3
    with reopened(sqlite) as again:
        assert [k.name for k in again.list_keys("alice")] == ["a1"]
        assert [k.name for k in again.list_keys("bob")] == ["b1"]
        assert len(again.history(again.list_keys("bob")[0].id)) == 1
        assert again.use_nonce("c", "first", expires_at=LATER, now=T0) is False


def test_a_failed_commit_fails_every_write_of_its_batch(sqlite: SQLiteKeyStore) -> None:
    """When a batch's commit fails, every caller in it gets the error and nothing is written."""

    @attrs.define
    class FailingCommit:
        """Lets the store run the batch, then fails it as a failed COMMIT would."""

        store: SQLiteKeyStore
        batches: int = 0

        @contextmanager
        def batch(self) -> Iterator[None]:
            with self.store.batch():
                yield
                self.batches += 1
                msg = "disk I/O error"
                raise OSError(msg)

        def __getattr__(self, name: str) -> object:
            return getattr(self.store, name)

    failing = FailingCommit(sqlite)
    answers = queued(
        sqlite,
        failing,  # type: ignore[arg-type]  # a store by delegation
        lambda store: [store.use_nonce("c", f"n{i}", expires_at=LATER, now=T0) for i in range(4)],
    )
    assert failing.batches >= 1
    assert any(isinstance(a, OSError) for a in answers)
    with reopened(sqlite) as again:
        for i, answer in enumerate(answers):
            # a write reported done is on disk; one that got the commit's error is not
            assert answer is True or isinstance(answer, OSError)
            written = not again.use_nonce("c", f"n{i}", expires_at=LATER, now=T0)
            assert written == (answer is True)


def test_aclose_finishes_queued_writes(sqlite: SQLiteKeyStore) -> None:
    """Closing the wrapper while writes wait in its queue writes them all before it returns."""

    async def run() -> list[object]:
        store = AsyncStore(sqlite)
        with writer_held(sqlite) as release:
            tasks = [
                asyncio.ensure_future(store.use_nonce("c", f"n{i}", expires_at=LATER, now=T0))
                for i in range(20)
            ]
            await asyncio.sleep(0)  # every write is queued behind the held writer
            closing = asyncio.ensure_future(store.aclose())
            await asyncio.sleep(0.05)
            assert not closing.done()  # it waits for the queued writes
            writer = store._writer
            assert writer is None
            release.set()
            await closing
        return await asyncio.gather(*tasks)

    assert asyncio.run(run()) == [True] * 20
    with reopened(sqlite) as again:
        assert all(
            again.use_nonce("c", f"n{i}", expires_at=LATER, now=T0) is False for i in range(20)
        )


def test_inline_reads_run_on_the_event_loop_and_writes_do_not(sqlite: SQLiteKeyStore) -> None:
    """inline_reads=True: a read runs on the loop's thread; a write still runs on the writer's."""
    threads: dict[str, str] = {}
    read, write = sqlite.get, sqlite.use_nonce

    def get(key_id: int) -> object:
        threads["read"] = threading.current_thread().name
        return read(key_id)

    def use_nonce(*args: object, **kwargs: object) -> bool:
        threads["write"] = threading.current_thread().name
        return write(*args, **kwargs)  # type: ignore[arg-type]

    async def run() -> None:
        store = AsyncStore(sqlite, inline_reads=True)
        store.store = _Spy(sqlite, get=get, use_nonce=use_nonce)  # type: ignore[assignment]
        try:
            assert await store.get(1) is None
            assert await store.use_nonce("c", "n", expires_at=LATER, now=T0) is True
        finally:
            await store.aclose()

    asyncio.run(run())
    assert threads == {"read": threading.main_thread().name, "write": "keyturn-write"}


@attrs.define
class _Spy:
    """A store whose ``get`` and ``use_nonce`` are the test's; the rest is the real store's."""

    store: SQLiteKeyStore
    get: object
    use_nonce: object

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)
