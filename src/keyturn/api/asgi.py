"""The API as an ASGI application: JSON-RPC over HTTP, as Deribit serves it.

* ``GET /api/v2/{public,private}/<method>?<params>``: parameters from the query string (a value
  that reads as JSON, such as ``5``, ``true`` or ``["a"]``, is taken as that JSON value).
* ``POST /api/v2/{public,private}/<method>``: a JSON-RPC body (its ``method`` may be left out).
* ``POST /api/v2``: a JSON-RPC body naming its method.
* ``/ws/api/v2``: JSON-RPC over WebSocket, one request per text message; a successful
  ``public/auth`` on the connection authenticates the calls after it.

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

from keyturn import signatures
from keyturn.api import errors
from keyturn.api.errors import RpcError
from keyturn.api.rpc import now_us

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from keyturn.api.rpc import Rpc

    Receive = Callable[[], Awaitable[dict[str, Any]]]
    Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY: Final = 64 * 1024
WS_PATH: Final = "/ws/api/v2"
_METHOD_PATH: Final = re.compile(r"/api/v2/((?:public|private)/[a-z_]{1,64})")


def _query_params(query: bytes) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, raw in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        try:
            params[name] = json.loads(raw)
        except (ValueError, RecursionError):
            params[name] = raw
    return params


def _access_token(request: object, answer: dict[str, Any]) -> str | None:
    """The access token a successful ``public/auth`` answered with, if this was one."""
    if not isinstance(request, dict) or request.get("method") != "public/auth":
        return None
    result = answer.get("result")
    token = result.get("access_token") if isinstance(result, dict) else None
    return token if isinstance(token, str) else None


class _Refused(Exception):  # noqa: N818 (a refusal, not an error of ours)
    """An HTTP request refused before the RPC layer, with the request where it was read."""

    def __init__(self, error: RpcError, request: object = None) -> None:
        super().__init__(error.message)
        self.error, self.request = error, request


@attrs.define
class Api:
    """The ASGI callable. ``body_timeout``: seconds a request body may take to arrive."""

    rpc: Rpc
    body_timeout: float = 10.0

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
        client_ip = (scope.get("client") or ("0.0.0.0", 0))[0]  # noqa: S104 (unknown peer)
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
        answer = await self.rpc.handle(request, authorization, client_ip, signed, us_in=us_in)
        return (400 if "error" in answer else 200), answer

    async def _websocket(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """JSON-RPC over one WebSocket: a successful ``public/auth`` authenticates the connection.

        Each text message is one request and gets one answer. A token that expires, or whose
        key is disabled, fails the next call (13009), as over HTTP.
        """
        if (await receive())["type"] != "websocket.connect":
            return
        if scope["path"] != WS_PATH:
            await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        client_ip = (scope.get("client") or ("0.0.0.0", 0))[0]  # noqa: S104 (unknown peer)
        authorization: str | None = None
        while (message := await receive())["type"] == "websocket.receive":
            us_in = now_us()
            try:
                answer, authorization = await self._message(
                    message.get("text"), authorization, client_ip, us_in
                )
            except Exception as e:  # noqa: BLE001 (one bad message must not end the connection)
                answer = self.rpc.fail(e, us_in=us_in)
            await send({"type": "websocket.send", "text": json.dumps(answer)})

    async def _message(
        self, text: str | None, authorization: str | None, client_ip: str, us_in: int
    ) -> tuple[dict[str, Any], str | None]:
        """The answer to one WebSocket message, and the connection's credential after it."""
        if text is None or len(text) > MAX_BODY:
            return self.rpc.refuse(RpcError(errors.INVALID_REQUEST), us_in=us_in), authorization
        try:
            request = json.loads(text)
        except (ValueError, RecursionError):  # nesting too deep is malformed too
            return self.rpc.refuse(RpcError(errors.PARSE_ERROR), us_in=us_in), authorization
        answer = await self.rpc.handle(request, authorization, client_ip, us_in=us_in)
        token = _access_token(request, answer)
        return answer, authorization if token is None else f"Bearer {token}"

    async def _request(self, scope: dict[str, Any], receive: Receive) -> tuple[Any, str]:
        """The JSON-RPC request an HTTP request carries, and its body as text (or _Refused)."""
        path, verb = scope["path"], scope["method"]
        match = _METHOD_PATH.fullmatch(path)
        if verb == "GET" and match:
            request = {
                "jsonrpc": "2.0",
                "method": match.group(1),
                "params": _query_params(scope.get("query_string", b"")),
            }
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
