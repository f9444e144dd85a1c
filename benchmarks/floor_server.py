"""The floor of the HTTP rows: the least an ASGI app can do per request, served as keyturn serves.

    python benchmarks/floor_server.py --port 8123

It reads each request's body and answers one fixed JSON-RPC-shaped body. It runs under uvicorn
with the configuration ``keyturn serve`` builds (:func:`keyturn.api.server.config`, the same
limits, the same event loop and HTTP implementation), started the way ``keyturn serve`` starts
its server, so the only difference between the floor and keyturn is the application. It must not
do anything an application could skip: no JSON parsing, no routing, no logging.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import TYPE_CHECKING, Any, Final

import uvicorn

from keyturn.api import server

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

#: Deribit's envelope around a small result, as keyturn answers it (fixed, so never re-encoded).
BODY: Final = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"id": 1, "enabled": True},
        "usIn": 1_700_000_000_000_000,
        "usOut": 1_700_000_000_000_050,
        "usDiff": 50,
        "testnet": False,
    }
).encode()
HEADERS: Final = [(b"content-type", b"application/json")]


async def app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """Read the request's body, answer :data:`BODY`; lifespan as uvicorn expects it."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": message["type"] + ".complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    """Serve the floor on ``--host``/``--port`` until interrupted."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    config = server.config(app, host=args.host, port=args.port)
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
