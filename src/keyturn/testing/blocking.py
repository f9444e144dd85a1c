"""Drive an :class:`~keyturn.service.AsyncKeyService` from synchronous code (tests).

:class:`BlockingService` runs every coroutine method of the async service to completion on its
own event loop, so a test suite written against :class:`~keyturn.service.KeyService` runs
unchanged against the async service, its async ports and the async driver. ``store`` and
``notifier`` are the sync objects the test inspects (the async ports wrap or share them).
Close it with :meth:`BlockingService.close`.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from keyturn.service import AsyncKeyService


class _Blocking:
    """Any object whose coroutine methods are run to completion on ``loop``."""

    def __init__(self, target: object, loop: asyncio.AbstractEventLoop) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_loop", loop)

    def _wrap(self, method: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            return self._loop.run_until_complete(method(*args, **kwargs))

        return call

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401
        value = getattr(self._target, name)
        if inspect.iscoroutinefunction(value):
            return self._wrap(value)
        return value

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._target, name, value)


class BlockingService(_Blocking):
    """The async service with blocking methods: ``service.create(...)`` returns the answer."""

    def __init__(
        self,
        service: AsyncKeyService,
        *,
        store: object,
        notifier: object,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        loop = loop if loop is not None else asyncio.new_event_loop()
        super().__init__(service, loop)
        object.__setattr__(self, "store", store)
        object.__setattr__(self, "notifier", notifier)
        object.__setattr__(self, "relay", _Blocking(service.relay, loop))
        object.__setattr__(self, "service", service)

    def run(self, awaitable: Awaitable[Any]) -> Any:  # noqa: ANN401
        """Run any awaitable on this facade's loop (closing an async store, say)."""
        return self._loop.run_until_complete(awaitable)

    def close(self) -> None:
        """Close the event loop."""
        self._loop.close()
