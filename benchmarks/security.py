"""Benchmarks for the costs issue 11 bounds: the access log's size, and what timing reveals.

    python benchmarks/security.py [--quick | --smoke] [--postgres URL] [--json]

1. ``get_access_log`` for an account with one key against one whose history holds 10,000
   removed keys, through the API's JSON-RPC handler (token check included), on SQLite and
   PostgreSQL. The call must not grow with the history: the ratio is what counts.
2. ``public/auth`` with a known ``client_id`` and a wrong secret against an unknown
   ``client_id``: the server's own ``usDiff`` of each answer, as a client sees it. Equal
   medians mean the answer time does not tell which client ids exist.

Both are measured interleaved in rounds (A, B, A, B...) so that load on the machine hits both
alike; each row prints the median and the spread (25th to 75th percentile) of the per-call
times. Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from keyturn import State, wiring
from keyturn.adapters.memory import InMemoryKeyStore
from keyturn.adapters.notifiers import RecordingNotifier
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.adapters.to_async import AsyncNotifierAdapter, AsyncStore
from keyturn.api.rpc import Call
from keyturn.testing import key_in_state

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from keyturn.api.rpc import Rpc
    from keyturn.ports import AsyncKeyStore, KeyStore

MASTER = bytes(range(32))


def spread(samples: list[float]) -> dict[str, float]:
    """Median and interquartile range of ``samples``."""
    q = statistics.quantiles(samples, n=4) if len(samples) > 1 else [samples[0]] * 3
    return {"median": q[1], "p25": q[0], "p75": q[2]}


async def interleaved(
    runs: dict[str, Callable[[], Awaitable[float]]], rounds: int, per_round: int
) -> dict[str, dict[str, float]]:
    """Each run's samples, taken in turn ``per_round`` calls at a time for ``rounds`` rounds."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # warm-up
        await run()
    for _ in range(rounds):
        for name, run in runs.items():
            for _ in range(per_round):
                samples[name].append(await run())
    return {name: spread(values) for name, values in samples.items()}


def _world(sync_store: KeyStore, async_store: AsyncKeyStore) -> tuple[Any, Rpc]:
    notifier = RecordingNotifier()
    portal = wiring.build_service(
        store=sync_store, notifier=notifier, master_key=MASTER, policy=wiring.API_POLICY
    )
    served = wiring.build_async_service(
        store=async_store,
        notifier=AsyncNotifierAdapter(notifier, threaded=False),
        master_key=MASTER,
        policy=wiring.API_POLICY,
    )
    return portal, wiring.build_api(served, MASTER).rpc


def _fill_removed(portal: Any, owner: str, count: int) -> None:
    """``count`` keys of ``owner`` created and removed (two history entries each)."""
    portal.deliver_inline = False
    for _ in range(count):
        key = portal.create(owner=owner, name="gone", max_scope="account:read").key
        portal.remove(key.id, owner=owner)
    portal.deliver_inline = True
    analyze = getattr(portal.store, "analyze", None)
    if analyze is not None:  # fresh statistics, as autovacuum would have them a minute later
        analyze()


async def access_log(
    sync_store: KeyStore, async_store: AsyncKeyStore, removed: int, rounds: int
) -> Any:
    """µs per get_access_log call: one key against ``removed`` removed keys and one live key."""
    portal, rpc = _world(sync_store, async_store)
    tokens = {}
    for owner, gone in (("small", 0), ("large", removed)):
        _fill_removed(portal, owner, gone)
        issued = key_in_state(
            portal, State.ACTIVE, owner=owner, name="live", max_scope="account:read_write"
        )
        login = await rpc.handle(
            {
                "method": "public/auth",
                "params": {
                    "grant_type": "client_credentials",
                    "client_id": issued.key.client_id,
                    "client_secret": issued.client_secret,
                },
            },
            Call("127.0.0.1"),
        )
        tokens[owner] = Call("127.0.0.1", "Bearer " + login["result"]["access_token"])
    request = {"method": "private/get_access_log", "params": {"count": 10}}

    def timed(owner: str) -> Callable[[], Awaitable[float]]:
        async def run() -> float:
            start = time.perf_counter()
            answer = await rpc.handle(request, tokens[owner])
            assert "result" in answer, answer
            return (time.perf_counter() - start) * 1e6

        return run

    return await interleaved(
        {"1 key": timed("small"), f"{removed:,} removed keys": timed("large")}, rounds, 25
    )


async def auth_timing(
    sync_store: KeyStore, async_store: AsyncKeyStore, calls: int, rounds: int
) -> Any:
    """The server's usDiff for public/auth: a known client_id and a wrong secret, or unknown."""
    portal, rpc = _world(sync_store, async_store)
    known = key_in_state(portal, State.ACTIVE, owner="o", name="k").key.client_id

    def timed(client_id: str) -> Callable[[], Awaitable[float]]:
        request = {
            "method": "public/auth",
            "params": {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": "x" * 43,
            },
        }

        async def run() -> float:
            answer = await rpc.handle(request, Call("127.0.0.1"))
            assert answer["error"]["code"] == 13004, answer
            return float(answer["usDiff"])

        return run

    return await interleaved(
        {"known client_id": timed(known), "unknown client_id": timed("zZzZzZzZ")},
        rounds,
        max(1, calls // rounds),
    )


async def _stores(kind: str, url: str, folder: Path) -> tuple[KeyStore, AsyncKeyStore, Any]:
    if kind == "memory":
        store = InMemoryKeyStore()
        return store, AsyncStore(store, threaded=False), None
    if kind == "sqlite":
        sqlite = SQLiteKeyStore(folder / f"{uuid.uuid4().hex}.db", synchronous="OFF")
        return sqlite, AsyncStore(sqlite), sqlite.close
    from keyturn.adapters.postgres import (  # noqa: PLC0415
        AsyncPostgresKeyStore,
        PostgresKeyStore,
    )

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    pg = PostgresKeyStore(url, schema=schema, max_size=2)
    apg = await AsyncPostgresKeyStore.open(url, schema=schema, max_size=4)

    async def close() -> None:
        await apg.aclose()
        pg.drop_schema()
        pg.close()

    return pg, apg, close


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every row, for every store asked for."""
    removed, calls, rounds = (20, 40, 2) if args.smoke else (10_000, 2_000, 20)
    if args.quick:
        removed, calls = 1_000, 400
    kinds = ["sqlite"] + (["postgres"] if args.postgres else [])
    out: dict[str, Any] = {"access_log_us": {}, "auth_usdiff": {}}
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            for section in ("access_log_us", "auth_usdiff"):
                sync_store, async_store, close = await _stores(kind, args.postgres, Path(folder))
                try:
                    if section == "access_log_us":
                        out[section][kind] = await access_log(
                            sync_store, async_store, removed, rounds
                        )
                    else:
                        out[section][kind] = await auth_timing(
                            sync_store, async_store, calls, rounds
                        )
                finally:
                    if close is not None:
                        result = close()
                        if asyncio.iscoroutine(result):
                            await result
    return out


def render(results: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    lines = []
    for section, title in (
        ("access_log_us", "get_access_log, µs per call"),
        ("auth_usdiff", "public/auth with a wrong secret, server usDiff µs"),
    ):
        lines += ["", f"| {title} | median | p25-p75 |", "|---|---:|---:|"]
        for kind, rows in results[section].items():
            lines += [
                f"| {kind}, {name} | {v['median']:.0f} | {v['p25']:.0f}-{v['p75']:.0f} |"
                for name, v in rows.items()
            ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print a table (or ``--json``)."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        cache_logger_on_first_use=True,
    )
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 removed keys, fewer calls")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks that it runs")
    p.add_argument("--postgres", default="", help="a PostgreSQL URL for the PostgreSQL rows")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    results = asyncio.run(run_all(args))
    print(json.dumps(results, indent=1) if args.json else render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
