"""The API as an ASGI application: JSON-RPC over HTTP and WebSocket, as Deribit serves it.

* ``GET /api/v2/{public,private}/<method>?<params>``: parameters from the query string, read by
  the method's declared types (:mod:`keyturn.api.params`).
* ``POST /api/v2/{public,private}/<method>``: a JSON-RPC body (its ``method`` may be left out).
* ``POST /api/v2``: a JSON-RPC body naming its method.
* ``/ws/api/v2``: JSON-RPC over WebSocket (:mod:`keyturn.api.websocket`).

Paths are read below the ASGI ``root_path``, so the app works mounted under a prefix (Starlette's
``Mount``, FastAPI's ``mount``, uvicorn's ``--root-path``), and a trailing slash is ignored.
Answers are JSON in Deribit's envelope, whatever went wrong: HTTP 200 with ``result``, 400 with
``error`` (Deribit's codes; 404 for a path that names no method). Anything unexpected is logged
and answered ``-32603`` (400), and a WebSocket stays open. Plain ASGI, no framework: run it with
any ASGI server (``keyturn serve`` uses uvicorn).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

import attrs

from keyturn.api import errors, websocket
from keyturn.api.errors import RpcError
from keyturn.api.rpc import Call, now_us
from keyturn.crypto import signatures

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from keyturn.api.rpc import Rpc

    Receive = Callable[[], Awaitable[dict[str, Any]]]
    Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY: Final = 64 * 1024
WS_PATH: Final = "/ws/api/v2"
_METHOD_PATH: Final = re.compile(r"/api/v2/((?:public|private)/[a-z_]{1,64})")


def route(scope: dict[str, Any]) -> str:
    """The request's path below the app's ``root_path``, without a trailing slash."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        path = path[len(root) :]
    return path.rstrip("/") if len(path) > 1 else path


def _peer(scope: dict[str, Any]) -> str:
    return (scope.get("client") or ("0.0.0.0", 0))[0]  # noqa: S104 (an unknown peer)


class _Refused(Exception):  # noqa: N818 (a refusal, not an error of ours)
    """An HTTP request refused before the RPC layer, with the request where it was read."""

    def __init__(self, error: RpcError, request: object = None) -> None:
        super().__init__(error.message)
        self.error, self.request = error, request


@attrs.define
class Api:
    """The ASGI callable.

    ``body_timeout``: seconds a request body may take to arrive. ``heartbeat_time_scale``: real
    seconds per second of a WebSocket heartbeat interval (1; tests shrink it).
    """

    rpc: Rpc
    body_timeout: float = 10.0
    heartbeat_time_scale: float = 1.0

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Serve one connection."""
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        us_in = now_us()
        try:
            status, body = await self._http(scope, receive, us_in)
        except Exception as e:  # noqa: BLE001 (the edge: no request may take the server down)
            status, body = 400, self.rpc.fail(e, us_in=us_in)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    async def _http(
        self, scope: dict[str, Any], receive: Receive, us_in: int
    ) -> tuple[int, dict[str, Any]]:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            request, body = await self._request(scope, receive)
        except _Refused as e:
            status = 404 if e.error.code == errors.METHOD_NOT_FOUND[0] else 400
            return status, self.rpc.refuse(e.error, us_in=us_in, request=e.request)
        authorization = headers.get("authorization")
        signed = None  # what a signature header signs; built only when one is sent
        if authorization and authorization.lstrip().lower().startswith(signatures.HEADER_SCHEME):
            query = scope.get("query_string", b"").decode("latin-1")
            uri = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
            signed = signatures.request_data(
                scope["method"], uri + (f"?{query}" if query else ""), body
            )
        call = Call(_peer(scope), authorization, signed)
        answer = await self.rpc.handle(request, call, us_in=us_in)
        return (400 if "error" in answer else 200), answer

    async def _websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Accept a WebSocket on the API's path (close any other at once) and serve it."""
        if (await receive())["type"] != "websocket.connect":
            return
        if route(scope) != WS_PATH:
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        await websocket.serve(
            self.rpc,
            receive,
            send,
            client_ip=_peer(scope),
            max_message=MAX_BODY,
            time_scale=self.heartbeat_time_scale,
        )

    async def _request(self, scope: dict[str, Any], receive: Receive) -> tuple[Any, str]:
        """The JSON-RPC request an HTTP request carries, and its body as text (or _Refused)."""
        path, verb = route(scope), scope["method"]
        match = _METHOD_PATH.fullmatch(path)
        if verb == "GET" and match:
            query = scope.get("query_string", b"").decode("latin-1")
            pairs = parse_qsl(query, keep_blank_values=True)
            try:
                params = self.rpc.query_params(match.group(1), pairs)
            except RpcError as e:
                raise _Refused(e) from None
            request = {"jsonrpc": "2.0", "method": match.group(1), "params": params}
            return request, ""
        if verb != "POST" or not (match or path == "/api/v2"):
            raise _Refused(RpcError(errors.METHOD_NOT_FOUND))
        raw = await self._body(receive)
        try:
            text = raw.decode()
            request = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise _Refused(RpcError(errors.PARSE_ERROR)) from None
        if match and isinstance(request, dict):
            request.setdefault("method", match.group(1))
            if request["method"] != match.group(1):
                reason = {"reason": "method differs from path"}
                raise _Refused(RpcError(errors.INVALID_REQUEST, reason), request)
        return request, text

    async def _body(self, receive: Receive) -> bytes:
        """The request body: at most MAX_BODY bytes, all of it within ``body_timeout``."""
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > MAX_BODY:
                        raise _Refused(
                            RpcError(errors.INVALID_REQUEST, {"reason": "body too large"})
                        )
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            raise _Refused(RpcError(errors.INVALID_REQUEST, {"reason": "body too slow"})) from None
        return b"".join(chunks)
