"""JSON-RPC over one WebSocket connection, with Deribit's heartbeats; no method lives here.

Each text message is one request and gets one answer, in order. A :class:`Connection` is what
the methods see of the socket:

* its own session: the last successful ``public/auth`` on it serves the private calls that
  carry no ``access_token`` (:mod:`keyturn.api.callers`); the sessions bound to it (the
  ``connection`` scope) are ended when it closes, so their tokens die on every worker;
* heartbeats (``public/set_heartbeat``): an asyncio task of the connection, no thread. Every
  interval it sends a ``heartbeat`` notification if the client spoke since the last one, and a
  ``test_request`` if not; a ``test_request`` still unanswered by ``public/test`` one interval
  later closes the connection (code 4000, "heartbeat close", as Deribit does). The task ends
  with the connection or with ``public/disable_heartbeat``;
* ``private/logout``: its answer is sent, then the connection closes (code 1000).

``time_scale`` is how many real seconds one second of an interval lasts: 1 in service, less in
tests, so a test sees a 10-second heartbeat in a fraction of a second without waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any, Final

import attrs

from keyturn.api import errors
from keyturn.api.errors import RpcError
from keyturn.api.rpc import Call, now_us
from keyturn.crypto.hashing import new_token

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from keyturn.api.rpc import Rpc
    from keyturn.api.tokens import Grant

    Receive = Callable[[], Awaitable[dict[str, Any]]]
    Send = Callable[[dict[str, Any]], Awaitable[None]]

#: The close code and reason when a client leaves a test_request unanswered (Deribit's).
HEARTBEAT_CLOSE: Final = (4000, "heartbeat close")
NORMAL_CLOSE: Final = (1000, "logout")


@attrs.define(eq=False)
class Connection:
    """One WebSocket connection: its id, its own session, its heartbeats."""

    rpc: Rpc
    send: Send
    time_scale: float = 1.0
    id: str = attrs.field(factory=lambda: new_token(12))
    token: str | None = attrs.field(default=None, repr=False)
    bound: set[str] = attrs.field(factory=set)
    closing: bool = False
    closed: bool = False
    _lock: asyncio.Lock = attrs.field(factory=asyncio.Lock)
    _beat: asyncio.Task[None] | None = None
    _awaiting: bool = False
    _heard: bool = False

    def adopt(self, grant: Grant) -> None:
        """Make a login on this connection its own session."""
        self.token = grant.access_token
        if grant.bound:
            self.bound.add(grant.session_id)

    def heard(self) -> None:
        """Note that the client spoke (a heartbeat then needs no test_request)."""
        self._heard = True

    def tested(self) -> None:
        """Note a ``public/test``: the answer to a test_request."""
        self._awaiting = False

    def heartbeat(self, interval: float) -> None:
        """Send heartbeats every ``interval`` seconds from now on, in place of any before."""
        self.stop_heartbeat()
        self._beat = asyncio.create_task(self._beats(interval * self.time_scale))

    def stop_heartbeat(self) -> None:
        """Send no more heartbeats."""
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        self._awaiting = False

    def close_after_answer(self) -> None:
        """Close the connection once the current answer is sent (logout)."""
        self.closing = True

    async def send_json(self, message: dict[str, Any]) -> None:
        """Send one message, unless the connection is closed; one sender at a time."""
        async with self._lock:
            if not self.closed:
                await self.send({"type": "websocket.send", "text": json.dumps(message)})

    async def close(self, code: int, reason: str) -> None:
        """Close the connection (once)."""
        async with self._lock:
            if not self.closed:
                self.closed = True
                await self.send({"type": "websocket.close", "code": code, "reason": reason})

    async def _beats(self, period: float) -> None:
        """Heartbeats every ``period`` real seconds until stopped or answered with silence."""
        with contextlib.suppress(Exception):  # a peer that went away ends the heartbeats
            while not self.closed:
                await asyncio.sleep(period)
                if self._awaiting:
                    await self.close(*HEARTBEAT_CLOSE)
                    return
                kind = "heartbeat" if self._heard else "test_request"
                self._awaiting, self._heard = kind == "test_request", False
                await self.send_json(self.rpc.notification("heartbeat", {"type": kind}))


async def serve(
    rpc: Rpc,
    receive: Receive,
    send: Send,
    *,
    client_ip: str,
    max_message: int,
    time_scale: float = 1.0,
) -> None:
    """Serve an accepted connection until the peer leaves, a heartbeat fails or it logs out."""
    connection = Connection(rpc, send, time_scale)
    try:
        while (message := await receive())["type"] == "websocket.receive":
            connection.heard()
            us_in = now_us()
            try:
                text = message.get("text")
                answer = await _answer(connection, text, client_ip, max_message, us_in)
            except Exception as e:  # noqa: BLE001 (one bad message must not end the connection)
                answer = rpc.fail(e, us_in=us_in)
            await connection.send_json(answer)
            if connection.closing:
                await connection.close(*NORMAL_CLOSE)
            if connection.closed:
                break
    finally:
        connection.stop_heartbeat()
        connection.closed = True
        with contextlib.suppress(Exception):  # the store is gone too: the sessions expire
            await rpc.tokens.end_sessions(connection.bound, rpc.service.clock.now())


async def _answer(
    connection: Connection, text: str | None, client_ip: str, max_message: int, us_in: int
) -> dict[str, Any]:
    """The answer to one message."""
    rpc = connection.rpc
    if text is None or len(text) > max_message:
        return rpc.refuse(RpcError(errors.INVALID_REQUEST), us_in=us_in)
    try:
        request = json.loads(text)
    except (ValueError, RecursionError):  # nesting too deep is malformed too
        return rpc.refuse(RpcError(errors.PARSE_ERROR), us_in=us_in)
    return await rpc.handle(request, Call(client_ip, connection=connection), us_in=us_in)
