"""Sync adapters as async ports, for :class:`~keyturn.service.AsyncKeyService`.

One piece: the writer thread, its batching and the reader threads are one mechanism, and most of
the length is one typed forwarding method per port method.

A store or notifier that blocks (SQLite's file, an SMTP connection) runs in worker threads, so
the event loop never waits on it; one that does not block (the in-memory store, the HMAC code
verifier) is called inline. PostgreSQL has a native async store
(:class:`~keyturn.adapters.postgres.AsyncPostgresKeyStore`). These wrappers add no rule: each
method is the port's, typed, calling the same method of the wrapped adapter.

:class:`AsyncStore` sends every write to one writer thread, through a queue (no convoy of
threads waking one another on a lock), and reads to a small pool of threads or, with
``inline_reads``, runs them on the event loop. When writes queue up and the store can batch them
(:class:`Batching`: SQLite), the writer runs them in one transaction, each in its own savepoint,
so one commit (one wait for the disk) serves them all: group commit. Each caller gets its answer
only once that commit is done, and a write that fails undoes only itself.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, ParamSpec, Protocol, TypeVar, runtime_checkable

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from contextlib import AbstractContextManager
    from datetime import datetime

    from keyturn.core.records import (
        ApiKey,
        Challenge,
        Change,
        Delivery,
        HistoryEntry,
        KeyEvent,
        LoadedSession,
        Notification,
        SecurityKey,
        Session,
    )
    from keyturn.ports import CodeVerifier, IssuedCode, KeyStore, Notifier

P = ParamSpec("P")
T = TypeVar("T")

#: The most queued writes one transaction takes.
MAX_BATCH: Final = 64


@runtime_checkable
class Batching(Protocol):
    """A store that can run the writes of a block in one transaction (one commit for all)."""

    def batch(self) -> AbstractContextManager[None]:
        """Writes made in this block on this thread share one transaction, each a savepoint."""
        ...


@attrs.define(eq=False)
class _Job:
    call: Callable[[], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop

    def settle(self, result: Any, error: BaseException | None) -> None:  # noqa: ANN401 (any answer)
        def done() -> None:
            if self.future.cancelled():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        self.loop.call_soon_threadsafe(done)


class _Writer:
    """One thread that runs queued writes, a batch at a time where the store can batch."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="keyturn-write", daemon=True)
        self._thread.start()

    def submit(self, job: _Job) -> None:
        self._jobs.put(job)

    def stop(self, *, wait: bool = True) -> None:
        """Finish the queued writes, then end the thread (``wait``: until it has ended)."""
        self._jobs.put(None)
        if wait:
            self._thread.join()

    def _run(self) -> None:
        while (first := self._jobs.get()) is not None:
            jobs, stopping = [first], False
            while len(jobs) < MAX_BATCH:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                jobs.append(more)
            self._write(jobs)
            if stopping:
                return

    def _write(self, jobs: list[_Job]) -> None:
        if len(jobs) == 1 or not isinstance(self._store, Batching):
            for job in jobs:
                job.settle(*_outcome(job))
            return
        try:
            with self._store.batch():
                outcomes = [_outcome(job) for job in jobs]
        except Exception as e:  # noqa: BLE001 (the commit failed: every write in it did)
            outcomes = [(None, e) for _ in jobs]
        for job, (result, error) in zip(jobs, outcomes, strict=True):
            job.settle(result, error)


def _outcome(job: _Job) -> tuple[Any, BaseException | None]:
    try:
        return job.call(), None
    except Exception as e:  # noqa: BLE001 (handed to the caller)
        return None, e


@attrs.define
class AsyncStore:
    """A sync :class:`~keyturn.ports.KeyStore` as an :class:`~keyturn.ports.AsyncKeyStore`.

    ``threaded`` (default) runs writes on one writer thread (batched where the store can) and
    reads on up to ``readers`` worker threads, or on the event loop itself with
    ``inline_reads`` (for a store whose reads are short and local, as SQLite's in WAL mode are:
    a thread hop costs more than the read; a read of a page not in memory then blocks the loop
    for one disk read). ``threaded=False`` calls everything inline, for a store that never
    blocks, such as :class:`~keyturn.adapters.memory.InMemoryKeyStore`.
    """

    store: KeyStore
    threaded: bool = True
    inline_reads: bool = False
    readers: int = 4
    _read_pool: ThreadPoolExecutor | None = attrs.field(default=None, init=False, repr=False)
    _writer: _Writer | None = attrs.field(default=None, init=False, repr=False)

    async def _read(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if not self.threaded or self.inline_reads:
            return method(*args, **kwargs)
        if self._read_pool is None:
            self._read_pool = ThreadPoolExecutor(self.readers, thread_name_prefix="keyturn-read")
        call = functools.partial(method, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._read_pool, call)

    async def _write(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if not self.threaded:
            return method(*args, **kwargs)
        if self._writer is None:
            self._writer = _Writer(self.store)
            # a wrapper dropped without aclose() still ends its thread
            weakref.finalize(self, self._writer.stop, wait=False)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._writer.submit(_Job(functools.partial(method, *args, **kwargs), future, loop))
        return await future

    # --- reads ------------------------------------------------------------------------------

    async def get(self, key_id: int) -> ApiKey | None:
        """The wrapped store's answer."""
        return await self._read(self.store.get, key_id)

    async def get_by_client_id(self, client_id: str) -> ApiKey | None:
        """The wrapped store's answer."""
        return await self._read(self.store.get_by_client_id, client_id)

    async def list_keys(self, owner: str | None = None) -> list[ApiKey]:
        """The wrapped store's answer."""
        return await self._read(self.store.list_keys, owner)

    async def history(self, key_id: int) -> list[HistoryEntry]:
        """The wrapped store's answer."""
        return await self._read(self.store.history, key_id)

    async def access_log(
        self,
        owner: str,
        *,
        events: Collection[str] | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> list[KeyEvent]:
        """The wrapped store's answer."""
        return await self._read(
            self.store.access_log, owner, events=events, offset=offset, limit=limit
        )

    async def get_challenge(self, challenge_id: str) -> Challenge | None:
        """The wrapped store's answer."""
        return await self._read(self.store.get_challenge, challenge_id)

    async def recent_challenges(self, owner: str, *, since: datetime) -> list[Challenge]:
        """The wrapped store's answer."""
        return await self._read(self.store.recent_challenges, owner, since=since)

    async def load_session(self, session_id: str) -> LoadedSession | None:
        """The wrapped store's answer."""
        return await self._read(self.store.load_session, session_id)

    async def get_security_key(self, owner: str) -> SecurityKey | None:
        """The wrapped store's answer."""
        return await self._read(self.store.get_security_key, owner)

    async def list_security_keys(self) -> list[SecurityKey]:
        """The wrapped store's answer."""
        return await self._read(self.store.list_security_keys)

    # --- writes -----------------------------------------------------------------------------

    async def insert(
        self, change: Change, *, max_live_per_owner: int, claim: bool = False
    ) -> ApiKey:
        """The wrapped store's write."""
        return await self._write(
            self.store.insert, change, max_live_per_owner=max_live_per_owner, claim=claim
        )

    async def apply(self, change: Change, *, claim: bool = False) -> None:
        """The wrapped store's write."""
        await self._write(self.store.apply, change, claim=claim)

    async def add_challenge(
        self,
        challenge: Challenge,
        notifications: Sequence[Notification],
        *,
        claim: bool = False,
        seen: tuple[datetime, int] | None = None,
    ) -> None:
        """The wrapped store's write."""
        await self._write(
            self.store.add_challenge, challenge, notifications, claim=claim, seen=seen
        )

    async def save_challenge(self, challenge: Challenge) -> None:
        """The wrapped store's write."""
        await self._write(self.store.save_challenge, challenge)

    async def use_nonce(
        self, client_id: str, nonce: str, *, expires_at: datetime, now: datetime
    ) -> bool:
        """The wrapped store's write."""
        return await self._write(
            self.store.use_nonce, client_id, nonce, expires_at=expires_at, now=now
        )

    async def start_session(self, session: Session, *, max_per_key: int, now: datetime) -> None:
        """The wrapped store's write."""
        await self._write(self.store.start_session, session, max_per_key=max_per_key, now=now)

    async def rotate_session(self, session_id: str, *, expected: str, new: str) -> bool:
        """The wrapped store's write."""
        return await self._write(self.store.rotate_session, session_id, expected=expected, new=new)

    async def end_session(self, session_id: str, now: datetime) -> bool:
        """The wrapped store's write."""
        return await self._write(self.store.end_session, session_id, now)

    async def save_security_key(self, security_key: SecurityKey) -> None:
        """The wrapped store's write."""
        await self._write(self.store.save_security_key, security_key)

    async def remove_security_key(self, owner: str) -> bool:
        """The wrapped store's write."""
        return await self._write(self.store.remove_security_key, owner)

    async def reseal(self, key_id: int, *, expected: str, sealed: str) -> bool:
        """The wrapped store's write."""
        return await self._write(self.store.reseal, key_id, expected=expected, sealed=sealed)

    async def claim_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        """The wrapped store's write."""
        return await self._write(self.store.claim_deliveries, now, limit)

    async def mark_delivered(self, notifications: Sequence[Notification], now: datetime) -> None:
        """The wrapped store's write."""
        await self._write(self.store.mark_delivered, notifications, now)

    async def mark_failed(self, notification_id: str, retry_at: datetime, error: str) -> None:
        """The wrapped store's write."""
        await self._write(self.store.mark_failed, notification_id, retry_at, error)

    async def aclose(self) -> None:
        """Finish the pending writes, stop the threads, and close the wrapped store."""
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.to_thread(writer.stop)
        if self._read_pool is not None:
            self._read_pool.shutdown(wait=False)
            self._read_pool = None
        await asyncio.to_thread(self.store.close)


@attrs.define
class AsyncNotifierAdapter:
    """A sync :class:`~keyturn.ports.Notifier` (SMTP, console...) delivering in a worker thread."""

    notifier: Notifier
    threaded: bool = True

    async def deliver(self, notification: Notification) -> None:
        """Deliver through the wrapped notifier."""
        if self.threaded:
            await asyncio.to_thread(self.notifier.deliver, notification)
        else:
            self.notifier.deliver(notification)


@attrs.define
class AsyncVerifierAdapter:
    """A sync :class:`~keyturn.ports.CodeVerifier` called inline (codes are local computation)."""

    verifier: CodeVerifier

    async def issue(self, *, subject: str, owner: str) -> IssuedCode:
        """A fresh code from the wrapped verifier."""
        return self.verifier.issue(subject=subject, owner=owner)

    async def check(self, *, subject: str, ref: str, candidate: str) -> bool:
        """The wrapped verifier's answer."""
        return self.verifier.check(subject=subject, ref=ref, candidate=candidate)

    def is_well_formed(self, candidate: str) -> bool:
        """The wrapped verifier's answer."""
        return self.verifier.is_well_formed(candidate)
