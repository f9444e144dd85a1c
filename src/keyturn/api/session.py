"""Deribit's session methods: the server's time and version, heartbeats, and logout.

* ``public/get_time``: the server's clock in milliseconds. ``public/test`` answers the API
  version (``expected_result: "exception"`` answers an error instead, for testing a client's
  error handling); ``public/hello`` (``client_name``, ``client_version``) the same version;
  ``public/status`` that nothing is locked.
* ``public/set_heartbeat`` (``interval`` in seconds, at least :data:`MIN_HEARTBEAT`) and
  ``public/disable_heartbeat``: WebSocket only (:class:`~keyturn.api.websocket.Connection` runs
  the heartbeats). Over HTTP they answer ``10030 must_be_websocket_request``, as on Deribit.
* ``private/logout`` (WebSocket only): ends the session of the call's token unless
  ``invalidate_token`` is false, so its access and refresh tokens fail on every worker, answers
  ``"ok"``, and closes the connection.

Nothing here reads or writes a key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from keyturn.api import errors
from keyturn.api.errors import RpcError
from keyturn.api.params import Kind, Param
from keyturn.api.rpc import Method
from keyturn.core.scope import Scope

if TYPE_CHECKING:
    from keyturn.api.rpc import Context
    from keyturn.api.websocket import Connection

#: The Deribit API version keyturn's methods follow, as ``public/test`` and ``hello`` report it.
API_VERSION: Final = "2.1.1"
#: The shortest heartbeat interval a client may ask for, in seconds (Deribit's).
MIN_HEARTBEAT: Final = 10
#: The longest, in seconds (a day: longer says nothing about a connection).
MAX_HEARTBEAT: Final = 86_400


def _connection(ctx: Context) -> Connection:
    """The call's WebSocket connection (the dispatcher lets only WebSocket calls through)."""
    if ctx.call.connection is None:
        raise RpcError(errors.MUST_BE_WEBSOCKET)
    return ctx.call.connection


async def get_time(ctx: Context, _: dict[str, Any]) -> int:
    """The server's time, in milliseconds since the epoch."""
    return int(ctx.rpc.service.clock.now().timestamp() * 1000)


async def test(ctx: Context, params: dict[str, Any]) -> dict[str, str]:
    """The API version; an error when asked for one. Over WebSocket it answers a test_request."""
    if ctx.call.connection is not None:
        ctx.call.connection.tested()
    if params.get("expected_result") == "exception":
        raise RpcError(errors.INTERNAL_SERVER_ERROR, {"reason": "expected_result: exception"})
    return {"version": API_VERSION}


async def hello(_: Context, __: dict[str, Any]) -> dict[str, str]:
    """The API version, in answer to a client introducing itself."""
    return {"version": API_VERSION}


async def status(_: Context, __: dict[str, Any]) -> dict[str, Any]:
    """Whether the platform is locked: never, here."""
    return {"locked": "false", "locked_indices": []}


async def set_heartbeat(ctx: Context, params: dict[str, Any]) -> str:
    """Start (or restart) heartbeats on this connection, every ``interval`` seconds."""
    interval = params["interval"]
    if not MIN_HEARTBEAT <= interval <= MAX_HEARTBEAT:
        reason = f"must be {MIN_HEARTBEAT} to {MAX_HEARTBEAT} seconds"
        raise RpcError(errors.INVALID_ARGUMENTS, {"param": "interval", "reason": reason})
    _connection(ctx).heartbeat(float(interval))
    return "ok"


async def disable_heartbeat(ctx: Context, _: dict[str, Any]) -> str:
    """Stop this connection's heartbeats."""
    _connection(ctx).stop_heartbeat()
    return "ok"


async def logout(ctx: Context, params: dict[str, Any]) -> str:
    """End the call's session (unless ``invalidate_token`` is false) and close the connection."""
    connection = _connection(ctx)
    if params.get("invalidate_token", True):
        now = ctx.rpc.service.clock.now()
        await ctx.rpc.tokens.end(ctx.token, now=now, connection=connection.id)
    connection.close_after_answer()
    return "ok"


METHODS: Final = (
    Method("public/get_time", get_time),
    Method("public/test", test, (Param("expected_result", Kind.STR),)),
    Method(
        "public/hello",
        hello,
        (
            Param("client_name", Kind.STR, required=True),
            Param("client_version", Kind.STR, required=True),
        ),
    ),
    Method("public/status", status),
    Method(
        "public/set_heartbeat",
        set_heartbeat,
        (Param("interval", Kind.NUMBER, required=True),),
        websocket_only=True,
    ),
    Method("public/disable_heartbeat", disable_heartbeat, websocket_only=True),
    Method(
        "private/logout",
        logout,
        (Param("invalidate_token", Kind.BOOL),),
        need=Scope(()),
        websocket_only=True,
    ),
)
