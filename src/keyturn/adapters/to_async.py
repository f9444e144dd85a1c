"""Sync adapters as async ports, for :class:`~keyturn.service.AsyncKeyService`.

A store or notifier that blocks (SQLite's file, an SMTP connection) runs in worker threads, so
the event loop never waits on it; one that does not block (the in-memory store, the HMAC code
verifier) is called inline. PostgreSQL has a native async store
(:class:`~keyturn.adapters.postgres.AsyncPostgresKeyStore`). These wrappers add no rule: each
method is the port's, typed, calling the same method of the wrapped adapter.

:class:`AsyncStore` sends reads to a small pool of threads and every write to one writer
thread. With SQLite this is what the file wants: readers run side by side on their own
connections, and writers are serialised by a queue (the writer thread's) instead of a convoy of
threads waking one another on a lock.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
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


@attrs.define
class AsyncStore:
    """A sync :class:`~keyturn.ports.KeyStore` as an :class:`~keyturn.ports.AsyncKeyStore`.

    ``threaded`` (default) runs reads on up to ``readers`` worker threads and writes on one
    writer thread; set it to ``False`` for a store that never blocks, such as
    :class:`~keyturn.adapters.memory.InMemoryKeyStore`, to call it inline.
    """

    store: KeyStore
    threaded: bool = True
    readers: int = 4
    _read_pool: ThreadPoolExecutor | None = attrs.field(default=None, init=False, repr=False)
    _write_pool: ThreadPoolExecutor | None = attrs.field(default=None, init=False, repr=False)

    async def _read(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if not self.threaded:
            return method(*args, **kwargs)
        if self._read_pool is None:
            self._read_pool = ThreadPoolExecutor(self.readers, thread_name_prefix="keyturn-read")
        call = functools.partial(method, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._read_pool, call)

    async def _write(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if not self.threaded:
            return method(*args, **kwargs)
        if self._write_pool is None:
            self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="keyturn-write")
        call = functools.partial(method, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._write_pool, call)

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
        self, challenge: Challenge, notifications: Sequence[Notification], *, claim: bool = False
    ) -> None:
        """The wrapped store's write."""
        await self._write(self.store.add_challenge, challenge, notifications, claim=claim)

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
        """Close the wrapped store (after its pending writes) and stop the threads."""
        await self._write(self.store.close)
        for pool in (self._read_pool, self._write_pool):
            if pool is not None:
                pool.shutdown(wait=False)
        self._read_pool = self._write_pool = None


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
