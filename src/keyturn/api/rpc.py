"""JSON-RPC 2.0 dispatch in Deribit's envelope: the methods' table, no transport and no method.

:meth:`Rpc.handle` takes a decoded request and the :class:`Call` it came with (its peer, its
HTTP ``Authorization`` header and signed request data, or its WebSocket connection) and returns
the response envelope Deribit sends (``jsonrpc``, ``id``, ``result`` or ``error``, ``usIn``,
``usOut``, ``usDiff``, ``testnet``). It never raises for anything a client sends.

Each method is a :class:`Method`: its handler, its declared parameters
(:mod:`keyturn.api.params`, which also reads a GET query for it), the scope a private one needs,
and whether it serves WebSocket only. The handlers live by role (:mod:`keyturn.api.methods`
gathers them), and :mod:`keyturn.api.callers` finds who a private call speaks for. No
lifecycle rule lives here.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Final

import attrs

from keyturn.api import callers, errors, params
from keyturn.api.errors import RpcError
from keyturn.core import validation
from keyturn.core.errors import KeyturnError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from keyturn.api.tokens import Tokens
    from keyturn.api.websocket import Connection
    from keyturn.core.records import Principal
    from keyturn.core.scope import Scope
    from keyturn.service import AsyncKeyService

#: Parameters whose text may hold line breaks: a PEM block, and the data a signature covers.
_MULTILINE_PARAMS: Final = frozenset({"public_key", "data"})


def now_us() -> int:
    """The time in microseconds since the epoch, as Deribit's ``usIn`` and ``usOut`` count it."""
    return time.time_ns() // 1000


def _origin(error: BaseException) -> str:
    """Where ``error`` was raised (module, function, line): no value, no message."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "unknown"
    frame = tb.tb_frame
    return f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_name}:{tb.tb_lineno}"


@attrs.frozen
class Call:
    """Where a request came from and what it carries besides its parameters.

    Over HTTP: the ``Authorization`` header and, with a signature header, what it signs (method,
    URI and body; :func:`keyturn.crypto.signatures.request_data`). Over WebSocket: the connection.
    """

    client_ip: str
    authorization: str | None = attrs.field(default=None, repr=False)
    request_data: str | None = attrs.field(default=None, repr=False)
    connection: Connection | None = None


@attrs.frozen
class Context:
    """One call being served: the API, the call, and for a private method who makes it.

    ``token`` is the access token a private call was authenticated by, if it was one.
    """

    rpc: Rpc
    call: Call
    caller: Principal | None = None
    token: str | None = attrs.field(default=None, repr=False)

    @property
    def principal(self) -> Principal:
        """Who a private call speaks for (private methods only)."""
        if self.caller is None:
            raise RpcError(errors.AUTHORIZATION_REQUIRED)
        return self.caller


@attrs.frozen
class Method:
    """One JSON-RPC method: handler, parameters, the scope it needs (``None``: public)."""

    name: str
    run: Callable[[Context, dict[str, Any]], Awaitable[Any]]
    params: tuple[params.Param, ...] = ()
    need: Scope | None = None
    websocket_only: bool = False


def _method_and_params(request: object) -> tuple[str, dict[str, Any]]:
    """The method and parameters of a request, every text in them checked before any use."""
    if not isinstance(request, dict) or request.get("jsonrpc", "2.0") != "2.0":
        raise RpcError(errors.INVALID_REQUEST)
    method, raw = request.get("method"), request.get("params", {})
    if not isinstance(method, str) or not isinstance(raw, dict):
        raise RpcError(errors.INVALID_REQUEST)
    validation.texts(raw, multiline=_MULTILINE_PARAMS)
    return method, raw


@attrs.define(kw_only=True)
class Rpc:
    """Deribit's methods over a :class:`~keyturn.service.AsyncKeyService`."""

    service: AsyncKeyService
    tokens: Tokens
    testnet: bool = False
    methods: dict[str, Method] = attrs.field(factory=dict)

    def serve(self, methods: Iterable[Method]) -> None:
        """Add ``methods`` to those this API answers."""
        self.methods.update((m.name, m) for m in methods)

    def query_params(self, method: str, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
        """The parameters a GET query string carries for ``method`` (its declared kinds)."""
        found = self.methods.get(method)
        return params.from_query(found.params if found else (), pairs)

    async def handle(
        self, request: object, call: Call, *, us_in: int | None = None
    ) -> dict[str, Any]:
        """The response envelope for one decoded JSON-RPC request; it never raises.

        ``us_in`` is when the request arrived (default: now).
        """
        us_in = now_us() if us_in is None else us_in
        try:
            name, raw = _method_and_params(request)
            result = await self._call(name, raw, call)
        except RpcError as e:
            return self.refuse(e, us_in=us_in, request=request)
        except KeyturnError as e:
            refusal = errors.from_keyturn(e)
            if refusal.code == errors.INTERNAL_ERROR[0]:
                return self.fail(e, us_in=us_in, request=request)
            return self.refuse(refusal, us_in=us_in, request=request)
        except Exception as e:  # noqa: BLE001 (the edge: no request may take the server down)
            return self.fail(e, us_in=us_in, request=request)
        return self._envelope({"result": result}, us_in, request)

    async def _call(self, name: str, raw: dict[str, Any], call: Call) -> Any:  # noqa: ANN401
        method = self.methods.get(name)
        if method is None:
            raise RpcError(errors.METHOD_NOT_FOUND, {"method": name[:64]})
        if method.websocket_only and call.connection is None:
            raise RpcError(errors.MUST_BE_WEBSOCKET)
        if method.need is None:
            raw.pop(params.ACCESS_TOKEN.name, None)
            return await method.run(Context(self, call), params.check(method.params, raw))
        token = params.check((params.ACCESS_TOKEN,), raw).pop(params.ACCESS_TOKEN.name, None)
        raw.pop(params.ACCESS_TOKEN.name, None)
        caller = await callers.principal(self, call, token)
        if not caller.max_scope.covers(method.need):
            raise RpcError(errors.FORBIDDEN, {"reason": f"needs scope {method.need}"})
        used = None if call.authorization else callers.token_of(call, token)
        context = Context(self, call, caller, used)
        return await method.run(context, params.check(method.params, raw))

    def refuse(self, error: RpcError, *, us_in: int, request: object = None) -> dict[str, Any]:
        """The envelope of an error answer (with the request's ``id`` where it has one)."""
        return self._envelope({"error": error.body()}, us_in, request)

    def fail(self, error: BaseException, *, us_in: int, request: object = None) -> dict[str, Any]:
        """Log an unexpected failure (its type and origin only) and answer ``-32603``.

        The answer goes out even if the application's logging fails too.
        """
        method = request.get("method") if isinstance(request, dict) else None
        with contextlib.suppress(Exception):
            self.service.logger.error(
                "request_failed",
                error_type=type(error).__name__,
                origin=_origin(error),
                method=method if isinstance(method, str) and method in self.methods else None,
            )
        return self.refuse(RpcError(errors.INTERNAL_ERROR), us_in=us_in, request=request)

    def notification(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """A message the server sends on its own (a heartbeat): JSON-RPC, no ``id``."""
        return {"jsonrpc": "2.0", "method": method, "params": body}

    def _envelope(self, body: dict[str, Any], us_in: int, request: object) -> dict[str, Any]:
        """Deribit's envelope around a ``result`` or an ``error``."""
        us_out = now_us()
        envelope: dict[str, Any] = {"jsonrpc": "2.0"}
        request_id = request.get("id") if isinstance(request, dict) else None
        if isinstance(request_id, int | str) and not isinstance(request_id, bool):
            envelope["id"] = request_id
        return {
            **envelope,
            **body,
            "usIn": us_in,
            "usOut": us_out,
            "usDiff": us_out - us_in,
            "testnet": self.testnet,
        }
