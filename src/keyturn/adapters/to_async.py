"""Sync adapters as async ports, for :class:`~keyturn.service.AsyncKeyService`.

A store or notifier that blocks (SQLite's file, an SMTP connection) runs in a worker thread
(``asyncio.to_thread``), so the event loop never waits on it; one that does not block (the
in-memory store, the HMAC code verifier) is called inline. PostgreSQL has a native async store
(:class:`~keyturn.adapters.postgres_async.AsyncPostgresKeyStore`). These wrappers add no rule.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable

    from keyturn.core.records import Notification
    from keyturn.ports import CodeVerifier, IssuedCode, KeyStore, Notifier


@attrs.define
class AsyncStore:
    """A sync :class:`~keyturn.ports.KeyStore` as an async one (every method, same arguments).

    ``threaded`` (default) runs each call in a worker thread; set it to ``False`` for a store
    that never blocks, such as :class:`~keyturn.adapters.memory.InMemoryKeyStore`.
    """

    store: KeyStore
    threaded: bool = True

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.store, name)
        if name.startswith("_") or not callable(method):
            raise AttributeError(name)

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            if self.threaded:
                return await asyncio.to_thread(method, *args, **kwargs)
            return method(*args, **kwargs)

        return call

    async def aclose(self) -> None:
        """Close the wrapped store."""
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
