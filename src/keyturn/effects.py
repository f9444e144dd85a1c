"""How one service serves both sync and async callers: operations that yield their port calls.

Every operation of the service (:mod:`keyturn.operations`, :mod:`keyturn.confirmations`,
:mod:`keyturn.authentication`, :mod:`keyturn.outbox`) is a generator. Where it needs the world it
yields a :class:`Call` (``key = yield STORE.get(key_id)``) and is sent the answer back, or has the
port's exception thrown in at that point, so ``try``/``except`` around a ``yield`` works as around
a call. A driver runs the generator against ports: :func:`run` against sync ones and
:func:`run_async` against async ones (``await`` on each call). The rules are written once; the
drivers are the only code that differs, and they hold no rule.

This module must not import the rest of keyturn: it is the mechanism only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")
Y = TypeVar("Y")

#: An operation: yields :class:`Call` objects, is sent their results, returns a ``T``.
Op = Generator["Call", Any, T]


class Call(NamedTuple):
    """One request to a port: ``ports[port].method(*args, **kwargs)``."""

    port: str
    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = MappingProxyType({})


class Port:
    """Builds the calls to one port: ``STORE.get(3)`` is ``Call("store", "get", (3,))``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Port({self.name!r})"

    def __getattr__(self, method: str) -> Callable[..., Call]:
        if method.startswith("_"):
            raise AttributeError(method)
        port = self.name

        def call(*args: Any, **kwargs: Any) -> Call:  # noqa: ANN401
            return Call(port, method, args, kwargs)

        setattr(self, method, call)  # built once per method name, then a plain attribute
        return call


STORE = Port("store")
VERIFIER = Port("verifier")
NOTIFIER = Port("notifier")


def drive(op: Generator[Y, Any, T], execute: Callable[[Y], Any]) -> T:
    """Run any generator to the end: each yielded step goes to ``execute``, its answer back.

    An exception from ``execute`` is thrown into the generator at its ``yield``. Used for port
    calls (:func:`run`) and for the SQL stores' statement programs alike.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.throw(error) if error is not None else op.send(value)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value, error = None, None
        try:
            value = execute(step)
        except Exception as e:  # noqa: BLE001 (handed to the generator, which decides)
            error = e


async def drive_async(op: Generator[Y, Any, T], execute: Callable[[Y], Awaitable[Any]]) -> T:
    """:func:`drive` with each step awaited."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.throw(error) if error is not None else op.send(value)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value, error = None, None
        try:
            value = await execute(step)
        except Exception as e:  # noqa: BLE001 (handed to the generator, which decides)
            error = e


def run(op: Op[T], ports: Mapping[str, Any]) -> T:
    """Run ``op`` to the end against sync ``ports``; return its result or raise its error."""
    return drive(op, lambda c: getattr(ports[c.port], c.method)(*c.args, **c.kwargs))


async def run_async(op: Op[T], ports: Mapping[str, Any]) -> T:
    """Run ``op`` to the end against async ``ports`` (each call awaited)."""
    return await drive_async(op, lambda c: getattr(ports[c.port], c.method)(*c.args, **c.kwargs))
