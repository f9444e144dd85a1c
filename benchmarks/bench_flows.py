"""Throughput and scale rows: full activation flows, cost at 1,000 against many keys, memory.

* flows: create, acknowledge, request a code, verify it, per second; in memory, on SQLite with
  durable commits (relay inline or in a worker), and on PostgreSQL with 1, 4 and 8 worker
  processes, counting lost updates;
* scale: ``authenticate()`` and disable/enable on a store of 1,000 keys against one of many
  (interleaved, so the ratio compares like with like), on SQLite and PostgreSQL;
* bytes per key in the in-memory store.

The large stores are filled by bulk SQL straight into keyturn's ``keyturn_keys`` table, copies of
a row keyturn wrote (the service would take minutes); nothing else here writes around keyturn.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import sqlite3
import time
import tracemalloc
import uuid
from typing import TYPE_CHECKING, Any

import bench_rounds
from bench_engines import NullNotifier, toggling
from bench_stores import SERVER_KEY, authenticating, service_with_key

from keyturn import State, wiring
from keyturn.adapters.codes import HmacCodeVerifier
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.testing import InMemoryKeyStore, make_service

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from keyturn import KeyService
    from keyturn.adapters.postgres import PostgresKeyStore
    from keyturn.ports import IssuedCode, KeyStore

_COLUMNS = "id, owner, client_id, live, version, data"


class CapturingVerifier(HmacCodeVerifier):
    """The default verifier, remembering the last code it issued per subject.

    With a shared outbox, any worker's relay may deliver any worker's code, so a benchmark
    worker reads its codes here rather than from its own notifier.
    """

    def __init__(self) -> None:
        super().__init__(SERVER_KEY)
        object.__setattr__(self, "last", {})

    def issue(self, *, subject: str, owner: str) -> IssuedCode:
        """Issue and remember."""
        issued = super().issue(subject=subject, owner=owner)
        self.last[subject] = issued.code  # type: ignore[attr-defined]
        return issued


def flow_service(store: KeyStore, *, inline: bool = True) -> KeyService:
    """A service as a deployment wires it, with codes readable by the benchmark."""
    service = wiring.build_service(store=store, notifier=NullNotifier(), master_key=SERVER_KEY)
    service.verifier = CapturingVerifier()
    service.deliver_inline = inline
    return service


def _flows(service: KeyService, seconds: float, owner_prefix: str) -> int:
    """Full activation flows, one after another, for ``seconds``; how many were done."""
    codes: dict[str, str] = service.verifier.last  # type: ignore[attr-defined]
    deadline, done = time.perf_counter() + seconds, 0
    while not done or time.perf_counter() < deadline:
        owner = f"{owner_prefix}{done}"
        key_id = service.create(owner=owner, name="k", max_scope="account:read").key.id
        service.acknowledge_secret(key_id, owner=owner)
        service.request_activation(key_id, owner=owner)
        service.verify_code(key_id, codes[f"activation:{key_id}"], owner=owner)
        done += 1
    return done


def flows_per_second(service: KeyService, seconds: float) -> float:
    """Full activation flows per second on one service, for ``seconds`` after a tenth of that."""
    _flows(service, seconds / 10, "warm")
    start = time.perf_counter()
    count = _flows(service, seconds, "o")
    elapsed = time.perf_counter() - start
    service.store.close()
    return count / elapsed


def _pg_worker(url: str, schema: str, seconds: float, worker: int, go: Any, results: Any) -> None:
    from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

    store = PostgresKeyStore(url, schema=schema, max_size=1)
    service = flow_service(store)
    results.put(("ready", 0, 0.0, 0.0))
    go.wait()
    start = time.perf_counter()
    count = _flows(service, seconds, f"w{worker}_")
    results.put(("done", count, start, time.perf_counter()))
    store.close()


def postgres_flows(url: str, workers: int, seconds: float) -> tuple[float, int]:
    """Flows per second with ``workers`` processes on one new schema, and lost updates found."""
    from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    PostgresKeyStore(url, schema=schema).close()  # created and migrated before the workers fork
    ctx = multiprocessing.get_context("fork")
    go, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_pg_worker, args=(url, schema, seconds, w, go, results))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    for _ in procs:  # every worker connected: start them together
        assert results.get(timeout=60)[0] == "ready"
    go.set()
    spans = [results.get(timeout=600)[1:] for _ in procs]
    for p in procs:
        p.join()
    total = sum(count for count, _, _ in spans)
    elapsed = max(end for _, _, end in spans) - min(start for _, start, _ in spans)
    store = PostgresKeyStore(url, schema=schema)
    try:
        keys = store.list_keys()
        lost = total - len(keys)
        for key in keys:
            if key.state is not State.ACTIVE or key.version != len(store.history(key.id)):
                lost += 1
    finally:
        store.drop_schema()
        store.close()
    return total / elapsed, lost


def bench_flows(folder: Path, seconds: float, postgres: str) -> dict[str, object]:
    """Flows per second in memory, on SQLite and on PostgreSQL (``seconds`` each); lost updates."""
    rates = {
        "memory": flows_per_second(flow_service(InMemoryKeyStore()), seconds),
        "sqlite (synchronous=FULL), inline relay": flows_per_second(
            flow_service(SQLiteKeyStore(folder / "flows-inline.db")), seconds
        ),
        "sqlite (synchronous=FULL), relay in a worker": flows_per_second(
            flow_service(SQLiteKeyStore(folder / "flows-worker.db"), inline=False), seconds
        ),
    }
    lost = {}
    if postgres:
        for workers in (1, 4, 8):
            rate, lost[str(workers)] = postgres_flows(postgres, workers, seconds)
            rates[f"postgres, {workers} worker(s)"] = rate
    found = {"lost_updates": sum(lost.values())} if lost else {}
    return {"per_second": rates, "postgres_lost_updates": lost, **found}


def _bulk_rows(template: str, start: int, count: int) -> Iterator[tuple[Any, ...]]:
    data = json.loads(template)
    for i in range(start, start + count):
        data["id"], data["client_id"], data["owner"] = i, f"c{i:09d}", f"bulk{i}"
        yield i, data["owner"], data["client_id"], 1, data["version"], json.dumps(data)


def fill_sqlite(path: Path, total: int) -> None:
    """Copies of the file's first key until it holds ``total`` keys, in one transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        template, have = conn.execute("SELECT MIN(data), COUNT(*) FROM keyturn_keys").fetchone()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            f"INSERT INTO keyturn_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
            _bulk_rows(template, 10_000_000, total - have),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def fill_postgres(url: str, schema: str, total: int) -> None:
    """Copies of the schema's first key until it holds ``total`` keys (COPY), then ANALYZE."""
    import psycopg  # noqa: PLC0415 (the postgres extra)
    from psycopg import sql  # noqa: PLC0415

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        cur.execute("SELECT MIN(data), COUNT(*) FROM keyturn_keys")
        template, have = cur.fetchone() or ("", 0)
        with cur.copy(f"COPY keyturn_keys ({_COLUMNS}) FROM STDIN") as copy:
            for row in _bulk_rows(template, 10_000_000, total - have):
                copy.write_row(row)
        conn.commit()
        cur.execute("ANALYZE keyturn_keys")


def scale_rows(store: KeyStore, fill: Callable[[int], None], total: int) -> dict[str, Any]:
    """``authenticate()`` and disable/enable of an active key on ``store`` filled to ``total``."""
    service, issued = service_with_key(store)
    service.deliver_inline = False
    fill(total)
    return {
        "authenticate": authenticating(service, issued),
        "disable/enable": toggling(service, issued.key.id, issued.key.owner),
    }


def _sqlite_store(folder: Path, total: int) -> tuple[KeyStore, Callable[[int], None]]:
    path = folder / f"scale{total}.db"
    return SQLiteKeyStore(path), functools.partial(fill_sqlite, path)


def _postgres_store(url: str) -> tuple[PostgresKeyStore, Callable[[int], None]]:
    from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

    store = PostgresKeyStore(url, schema=f"bench_{uuid.uuid4().hex[:10]}")
    return store, functools.partial(fill_postgres, url, store.schema or "")


def bench_scale(
    folder: Path, large: int, budget: float, rounds: int, postgres: str
) -> dict[str, object]:
    """µs per operation at 1,000 and ``large`` keys, interleaved; ratios large ÷ 1,000."""
    rows: dict[str, bench_rounds.Sample] = {}
    ratios = {}
    opened: list[KeyStore] = []
    dropped: list[PostgresKeyStore] = []
    try:
        for kind in ("sqlite", "postgres") if postgres else ("sqlite",):
            for total in (1_000, large):
                if kind == "sqlite":
                    store, fill = _sqlite_store(folder, total)
                else:
                    pg, fill = _postgres_store(postgres)
                    store = pg
                    dropped.append(pg)
                opened.append(store)
                for op, run in scale_rows(store, fill, total).items():
                    name = f"{kind}, {op}, {total:,} keys"
                    rows[name] = bench_rounds.per_op_us(run, budget)
                    if total == large:
                        small = f"{kind}, {op}, 1,000 keys"
                        ratios[f"{kind}, {op}: large ÷ 1,000 keys"] = (name, small)
        samples = bench_rounds.interleave(rows, rounds)
    finally:
        for pg in dropped:
            pg.drop_schema()
        for store in opened:
            store.close()
    return bench_rounds.section(samples, ratios, "µs per operation")


def memory_per_key(count: int) -> float:
    """Bytes per key in the in-memory store, created through the service (tracemalloc)."""
    service = make_service(store=InMemoryKeyStore())
    service.notifier = service.relay.notifier = NullNotifier()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(count):
        service.create(owner=f"o{i}", name="k", max_scope="account:read trade:read_write")
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(s.size_diff for s in after.compare_to(before, "filename")) / count
