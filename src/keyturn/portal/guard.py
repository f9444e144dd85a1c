"""The portal's outer layer: every answer carries its security headers, every body is bounded.

It wraps the whole portal application, so the headers are on the answers Starlette makes by
itself as well (its 400 for a form with too many fields or a file, 404 for an unknown path, 405
for a wrong method, the static files, a 500), and a request body is read here first: more than
:data:`keyturn.api.asgi.MAX_BODY` (64 KiB, as for the API) is answered 413, and a body that has
not arrived within the body timeout (10 s, :class:`keyturn.api.server.ServerLimits`) is answered
408, before any endpoint runs. A host application that mounts the portal gets both, as
``keyturn serve`` does. It decides nothing else.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

import attrs
from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse

from keyturn.api.asgi import MAX_BODY
from keyturn.api.server import ServerLimits

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Sent with every answer: never cached, never framed, only the portal's own script and style.
HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
BODY_TIMEOUT: Final = ServerLimits().body_timeout


class _Refused(Exception):  # noqa: N818 (an answer to give, not a failure of ours)
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


class _Gone(Exception):  # noqa: N818
    """The client went away before its body arrived: there is nobody to answer."""


@attrs.define
class Guard:
    """An ASGI layer around the portal: bounded bodies, and the headers on every answer."""

    app: ASGIApp
    max_body: int = MAX_BODY
    body_timeout: float = BODY_TIMEOUT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection through the portal."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        try:
            body = await self._body(scope, receive)
        except _Gone:
            return
        except _Refused as refused:
            answer = PlainTextResponse(
                refused.text, status_code=refused.status, headers={"Connection": "close"}
            )
            await answer(scope, receive, send_with_headers)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send_with_headers)

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        """The whole request body: at most ``max_body`` bytes, within ``body_timeout``."""
        too_large = _Refused(413, "This request is too large for the portal.")
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Gone
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        raise too_large
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise _Refused(408, "The request took too long to arrive. Try again.") from None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
