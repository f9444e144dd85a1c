"""Where a request's CPU goes: the API application called in process, without HTTP.

The HTTP rows of ``bench.py`` show that the server process is what saturates; this tool says
what that process spends per request once the HTTP layer (which the floor app pays too) is set
apart. It builds the application ``keyturn serve`` builds (``wiring.build_api`` over the async
service, on a new SQLite file or a new PostgreSQL schema, the inline relay on, delivering to a
logging notifier whose lines go nowhere), calls it as an ASGI server would, one request after
another, and prints the wall time and the process's CPU time per request (CPU includes the
store's writer thread; PostgreSQL's own CPU is not in it). With PostgreSQL it also prints the
client CPU of one bare ``SELECT 1`` through psycopg's async connection: the cost of a statement
that no keyturn code can remove. ``--profile`` prints the functions with the most time of their
own under ``cProfile`` (which slows everything; read its shares, not its times).

    python benchmarks/profile_api.py [--postgres URL] [--requests N] [--profile]

Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import pstats
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keyturn import wiring
from keyturn.adapters.notifiers import LoggingNotifier
from keyturn.adapters.to_async import AsyncNotifierAdapter

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from keyturn.api.asgi import Api
    from keyturn.ports import AsyncKeyStore
    from keyturn.service import AsyncKeyService

SERVER_KEY = bytes(range(32))
Headers = list[tuple[bytes, bytes]]


async def ask(app: Api, body: dict[str, Any], headers: Headers | None = None) -> dict[str, Any]:
    """Post one JSON-RPC request to the ASGI app and return its decoded answer."""
    raw = json.dumps(body).encode()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v2/" + body["method"],
        "raw_path": ("/api/v2/" + body["method"]).encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
    }
    await app(scope, receive, send)
    answer: dict[str, Any] = json.loads(sent[-1]["body"])
    if "result" not in answer:
        msg = f"{body['method']} failed: {answer.get('error')}"
        raise RuntimeError(msg)
    return answer


async def active_key(service: AsyncKeyService, name: str) -> tuple[int, str, str]:
    """An active key of one account: its id, client id and secret."""
    issued = await service.create(owner="acct", name=name, max_scope="account:read_write")
    await service.acknowledge_secret(issued.key.id, owner="acct")
    await service.enable(issued.key.id, owner="acct")
    return issued.key.id, issued.key.client_id, issued.client_secret or ""


async def rows(app: Api, service: AsyncKeyService) -> dict[str, Callable[[int], Awaitable[Any]]]:
    """One request per call for each row: a login, a list with a token, a disable or an enable.

    As in ``bench_http``, the login row logs in with a key of its own: a key keeps its newest
    sessions only, so its logins would end the token the other rows send.
    """
    _, client_id, secret = await active_key(service, "login")
    _, token_client, token_secret = await active_key(service, "token")
    toggled, _, _ = await active_key(service, "toggled")

    def login(client: str, text: str) -> dict[str, Any]:
        params = {"grant_type": "client_credentials", "client_id": client, "client_secret": text}
        return {"jsonrpc": "2.0", "id": 1, "method": "public/auth", "params": params}

    auth = login(client_id, secret)
    token = (await ask(app, login(token_client, token_secret)))["result"]["access_token"]
    bearer = [(b"authorization", f"Bearer {token}".encode())]
    listing = {"jsonrpc": "2.0", "id": 2, "method": "private/list_api_keys", "params": {}}
    pair = [
        {"jsonrpc": "2.0", "id": 3, "method": f"private/{m}_api_key", "params": {"id": toggled}}
        for m in ("disable", "enable")
    ]
    return {
        "public/auth": lambda _: ask(app, auth),
        "private/list_api_keys": lambda _: ask(app, listing, bearer),
        "disable_api_key + enable_api_key": lambda i: ask(app, pair[i % 2], bearer),
    }


async def bare_statements(conninfo: str, n: int) -> float:
    """Client CPU µs of one ``SELECT 1`` through psycopg's async connection (autocommit)."""
    import psycopg  # noqa: PLC0415 (the postgres extra)

    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for _ in range(100):
            await conn.execute("SELECT 1")
        cpu = time.process_time()
        for _ in range(n):
            await (await conn.execute("SELECT 1")).fetchone()
        return (time.process_time() - cpu) / n * 1e6


async def open_store(postgres: str | None, folder: Path) -> tuple[AsyncKeyStore, str]:
    """A new async store: a SQLite file in ``folder``, or a new schema on ``postgres``."""
    if postgres is None:
        from keyturn.adapters.sqlite import SQLiteKeyStore  # noqa: PLC0415
        from keyturn.adapters.to_async import AsyncStore  # noqa: PLC0415

        sqlite = SQLiteKeyStore(folder / "keys.db")
        sqlite.migrate()
        return AsyncStore(sqlite, inline_reads=True), "SQLite"
    from keyturn.adapters.postgres import AsyncPostgresKeyStore  # noqa: PLC0415

    schema = f"kt_profile_{uuid.uuid4().hex[:8]}"
    return await AsyncPostgresKeyStore.open(postgres, schema=schema), "PostgreSQL"


async def main(postgres: str | None, requests: int, *, profile: bool) -> None:
    """Measure every row on one store, then print the table (and the profile)."""
    logging.getLogger("keyturn").propagate = False  # the logging notifier's lines go nowhere
    with tempfile.TemporaryDirectory() as folder:
        store, label = await open_store(postgres, Path(folder))
        service = wiring.build_async_service(
            store=store,
            notifier=AsyncNotifierAdapter(LoggingNotifier(), threaded=False),
            master_key=SERVER_KEY,
            policy=wiring.API_POLICY,
        )
        app = wiring.build_api(service, SERVER_KEY)
        try:
            print(f"{label}, {requests} requests per row, one at a time, no HTTP")
            print("| row | wall µs/request | CPU µs/request |\n|---|---:|---:|")
            profiler = cProfile.Profile() if profile else None
            for name, one in (await rows(app, service)).items():
                for i in range(min(200, requests)):
                    await one(i)
                wall, cpu = time.perf_counter(), time.process_time()
                if profiler is not None:
                    profiler.enable()
                for i in range(requests):
                    await one(i)
                if profiler is not None:
                    profiler.disable()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                print(f"| {name} | {wall / requests * 1e6:,.0f} | {cpu / requests * 1e6:,.0f} |")
            if postgres is not None:
                bare = await bare_statements(postgres, requests)
                print(f"\npsycopg: one bare SELECT 1 costs {bare:,.0f} µs of client CPU")
            if profiler is not None:
                print()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        finally:
            drop = getattr(store, "drop_schema", None)
            if drop is not None:
                await drop()
            await store.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL conninfo (else SQLite)")
    parser.add_argument("--requests", type=int, default=3000, help="requests per row")
    parser.add_argument("--profile", action="store_true", help="print a cProfile summary")
    args = parser.parse_args()
    asyncio.run(main(args.postgres, args.requests, profile=args.profile))
