"""keyturn's benchmark harness: one run, every measurement side by side, a table or ``--json``.

    python benchmarks/bench.py                       # everything (PostgreSQL if --postgres/env)
    python benchmarks/bench.py --quick               # smaller sizes (about a minute)
    python benchmarks/bench.py --json > results.json

Sections (see README "Performance"):

1. engine: µs per lifecycle event (disable/enable with the direct-enable guard), median of
   repeated runs, for a hand-written dict table (the floor), naive ``transitions`` uses,
   python-statemachine, keyturn's pure core, and the keyturn service on the in-memory store;
2. flows: full activation flows (create, acknowledge, request, verify) per second, in memory,
   on SQLite with durable commits, and on PostgreSQL with 1, 4 and 8 worker processes;
3. authenticate: µs per call, in memory and on SQLite;
4. scale: per-operation cost with 1,000 and 1,000,000 keys stored, and memory per key.

Numbers are printed, never asserted: targets are compared in the README, not in unit tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from keyturn import Policy, State, wiring
from keyturn.adapters.codes import HmacCodeVerifier
from keyturn.adapters.sql import codec
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.core import commands
from keyturn.core.decide import decide
from keyturn.crypto.hashing import new_id
from keyturn.testing import InMemoryKeyStore, key_in_state, make_service

if TYPE_CHECKING:
    from collections.abc import Callable

    from keyturn import KeyService
    from keyturn.ports import IssuedCode, KeyStore

SERVER_KEY = bytes(range(32))
DIRECT = Policy(direct_enable=True)


class NullNotifier:
    """As cheap as a notifier can be."""

    def deliver(self, notification: object) -> None:
        """Drop it."""


def quiet_logging() -> None:
    """Events filtered out as early as structlog allows (the cheapest logging)."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        cache_logger_on_first_use=True,
    )


def per_event_us(run: Callable[[int], None], events: int, repeats: int) -> float:
    """Median µs per event of ``run(events)`` over ``repeats`` runs (after one warm-up)."""
    run(max(1, events // 10))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(events)
        samples.append((time.perf_counter() - start) / events * 1e6)
    return statistics.median(samples)


# --- 1. engine overhead ---------------------------------------------------------------------

_TABLE = {("active", "disable"): "disabled", ("disabled", "enable"): "active"}


def floor(events: int) -> None:
    """A hand-written dict table with the same guards, on a dict record."""
    record = {"state": "active", "version": 1, "direct_enable": True}
    for i in range(events):
        action = "disable" if i % 2 == 0 else "enable"
        dest = _TABLE.get((record["state"], action))  # type: ignore[arg-type]
        if dest is None or (action == "enable" and not record["direct_enable"]):
            raise RuntimeError(action)
        record["state"] = dest
        record["version"] += 1  # type: ignore[operator]


def _transitions_spec() -> dict[str, Any]:
    return {
        "states": ["active", "disabled"],
        "transitions": [
            {"trigger": "disable", "source": "active", "dest": "disabled"},
            {
                "trigger": "enable",
                "source": "disabled",
                "dest": "active",
                "conditions": "direct_enable",
            },
        ],
        "initial": "active",
        "auto_transitions": False,
    }


class _Model:
    def __init__(self, state: str = "active") -> None:
        self.state = state

    def direct_enable(self) -> bool:
        return True


def transitions_machine_per_key_loaded(events: int) -> None:
    """Naive: a Machine built for the key each time it is loaded (one event per request)."""
    from transitions import Machine  # noqa: PLC0415

    state = "active"
    for i in range(events):
        model = _Model(state)
        Machine(model=model, **{**_transitions_spec(), "initial": state})
        getattr(model, "disable" if i % 2 == 0 else "enable")()
        state = model.state


def transitions_machine_per_key_kept(events: int) -> None:
    """Naive: one Machine per key, kept in memory with the key."""
    from transitions import Machine  # noqa: PLC0415

    model = _Model()
    Machine(model=model, **_transitions_spec())
    for i in range(events):
        getattr(model, "disable" if i % 2 == 0 else "enable")()


def transitions_shared_add_remove(events: int) -> None:
    """Naive: one shared Machine, add_model/remove_model around every event."""
    from transitions import Machine  # noqa: PLC0415

    machine = Machine(model=None, **_transitions_spec())
    state = "active"
    for i in range(events):
        model = _Model(state)
        machine.add_model(model, initial=state)
        getattr(model, "disable" if i % 2 == 0 else "enable")()
        state = model.state
        machine.remove_model(model)


def python_statemachine_kept(events: int) -> None:
    """python-statemachine: one instance per key, kept in memory."""
    from statemachine import State as PState  # noqa: PLC0415
    from statemachine import StateMachine  # noqa: PLC0415

    class KeySM(StateMachine):
        active = PState(initial=True)
        disabled = PState()
        disable = active.to(disabled)
        enable = disabled.to(active, cond="direct_enable")

        def direct_enable(self) -> bool:
            return True

    sm = KeySM()
    for i in range(events):
        sm.send("disable" if i % 2 == 0 else "enable")


def keyturn_core(events: int) -> None:
    """Keyturn's pure core: decide each event, producing the new record, history and notice."""
    service = make_service(policy=DIRECT)
    key = service.get(key_in_state(service, State.ACTIVE).key.id, owner="alice")
    now = service.clock.now()
    off, on = commands.Disable("a"), commands.Enable("a")
    for i in range(events):
        outcome = decide(key, on if i % 2 else off, now=now, policy=DIRECT, new_id=new_id)
        assert isinstance(outcome, commands.Decision)
        assert outcome.change is not None
        key = outcome.change.key


def _service_run(*, inline: bool) -> Callable[[int], None]:
    def run(events: int) -> None:
        service = make_service(policy=DIRECT)
        key_id = key_in_state(service, State.ACTIVE).key.id
        service.notifier = service.relay.notifier = NullNotifier()
        service.deliver_inline = inline
        for _ in range(events // 2):
            service.disable(key_id, owner="alice")
            service.enable(key_id, owner="alice")

    return run


def bench_engine(events: int, repeats: int) -> dict[str, float]:
    """µs per event for each engine."""
    rows: dict[str, Callable[[int], None]] = {
        "floor: dict table": floor,
        "transitions: Machine per key, kept": transitions_machine_per_key_kept,
        "transitions: shared, add/remove_model per event": transitions_shared_add_remove,
        "transitions: Machine per key, built per load": transitions_machine_per_key_loaded,
        "python-statemachine: instance per key, kept": python_statemachine_kept,
        "keyturn core (decisions, pure)": keyturn_core,
        "keyturn service, memory store, relay off": _service_run(inline=False),
        "keyturn service, memory store, inline relay": _service_run(inline=True),
    }
    slow = {
        "transitions: Machine per key, built per load",
        "python-statemachine: instance per key, kept",
    }
    return {
        name: per_event_us(run, events // 10 if name in slow else events, repeats)
        for name, run in rows.items()
    }


# --- 2. full activation flows ---------------------------------------------------------------


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


def bench_service(store: KeyStore) -> KeyService:
    """A service as a deployment wires it, with codes readable by the benchmark."""
    service = wiring.build_service(store=store, notifier=NullNotifier(), master_key=SERVER_KEY)
    service.verifier = CapturingVerifier()
    return service


def _flows(service: KeyService, count: int, owner_prefix: str) -> None:
    verifier = service.verifier
    assert isinstance(verifier, CapturingVerifier)
    codes: dict[str, str] = verifier.last  # type: ignore[attr-defined]
    for i in range(count):
        owner = f"{owner_prefix}{i}"
        key_id = service.create(owner=owner, name="k", max_scope="account:read").key.id
        service.acknowledge_secret(key_id, owner=owner)
        service.request_activation(key_id, owner=owner)
        service.verify_code(key_id, codes[f"activation:{key_id}"], owner=owner)


def flows_per_second(make: Callable[[], KeyService], count: int) -> float:
    """Full activation flows per second on one service."""
    service = make()
    _flows(service, max(1, count // 10), "warm")
    start = time.perf_counter()
    _flows(service, count, "o")
    elapsed = time.perf_counter() - start
    service.store.close()
    return count / elapsed


def _pg_worker(
    url: str,
    schema: str,
    count: int,
    worker: int,
    go: Any,
    results: Any,
) -> None:
    quiet_logging()
    from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

    store = PostgresKeyStore(url, schema=schema, max_size=1)
    service = bench_service(store)
    go.wait()
    start = time.perf_counter()
    _flows(service, count, f"w{worker}_")
    results.put((start, time.perf_counter()))
    store.close()


def postgres_flows(url: str, workers: int, count: int) -> tuple[float, int]:
    """Flows per second with ``workers`` processes on one database, and lost updates found."""
    from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    PostgresKeyStore(url, schema=schema).close()
    ctx = multiprocessing.get_context("fork")
    go, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_pg_worker, args=(url, schema, count, w, go, results))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)
    go.set()
    spans = [results.get(timeout=600) for _ in procs]
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    for p in procs:
        p.join()
    store = PostgresKeyStore(url, schema=schema)
    lost = 0
    for key in store.list_keys():
        history = store.history(key.id)
        if key.state is not State.ACTIVE or key.version != len(history) or key.version != 4:
            lost += 1
    total = len(store.list_keys())
    store.drop_schema()
    store.close()
    lost += workers * count - total
    return workers * count / elapsed, lost


def durable_commit_us(folder: Path) -> float:
    """µs per durable SQLite commit (WAL, synchronous=FULL) on this disk: a write's floor."""
    conn = sqlite3.connect(folder / "fsync.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")

    def run(n: int) -> None:
        for i in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?)", (i,))
            conn.execute("COMMIT")

    try:
        return per_event_us(run, 300, 3)
    finally:
        conn.close()


# --- 3. authenticate --------------------------------------------------------------------------


def authenticate_us(store: KeyStore, calls: int, repeats: int) -> float:
    """µs per authenticate() of an active key."""
    service = make_service(store=store)
    issued = key_in_state(service, State.ACTIVE)
    client_id, secret = issued.key.client_id, issued.client_secret

    def run(n: int) -> None:
        for _ in range(n):
            service.authenticate(client_id, secret, source_ip="203.0.113.7")

    return per_event_us(run, calls, repeats)


# --- 4. scale ---------------------------------------------------------------------------------


def _bulk_rows(start: int, count: int, template: str) -> list[tuple[Any, ...]]:
    data = json.loads(template)
    rows = []
    for i in range(start, start + count):
        data["id"], data["client_id"], data["owner"] = i, f"c{i:09d}", f"bulk{i}"
        rows.append(
            (
                i,
                data["owner"],
                data["client_id"],
                1,
                data["version"],
                json.dumps(data, separators=(",", ":")),
            )
        )
    return rows


def fill(store: KeyStore, kind: str, total: int) -> None:
    """Add synthetic keys until the store holds ``total`` (fast bulk SQL, not the service)."""
    service = make_service(store=store)
    template = codec.key_to_json(
        service.get(key_in_state(service, State.ACTIVE).key.id, owner="alice")
    )
    have = len(store.list_keys())
    base = 10_000_000
    sql = (
        "INSERT INTO keyturn_keys (id, owner, client_id, live, version, data) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    chunk = 50_000
    for offset in range(0, total - have, chunk):
        rows = _bulk_rows(base + have + offset, min(chunk, total - have - offset), template)
        if kind == "postgres":
            pool = store.pool  # type: ignore[attr-defined]
            with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                copying = "COPY keyturn_keys (id, owner, client_id, live, version, data) FROM STDIN"
                with cur.copy(copying) as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            path = store.path  # type: ignore[attr-defined]
            with contextlib.closing(sqlite3.connect(path)) as db, db:
                db.executemany(sql, rows)


def per_op_us(store: KeyStore, ops: int, repeats: int) -> dict[str, float]:
    """µs per authenticate, and per lifecycle write (disable or enable), on this store."""
    service = make_service(store=store, policy=DIRECT)
    issued = key_in_state(service, State.ACTIVE, owner=f"scale{uuid.uuid4().hex[:6]}")
    service.deliver_inline = False
    key_id, owner = issued.key.id, issued.key.owner
    client_id, secret = issued.key.client_id, issued.client_secret

    def auth(n: int) -> None:
        for _ in range(n):
            service.authenticate(client_id, secret, source_ip="203.0.113.7")

    def write(n: int) -> None:
        for _ in range(n // 2):
            service.disable(key_id, owner=owner)
            service.enable(key_id, owner=owner)

    return {
        "authenticate": per_event_us(auth, ops, repeats),
        "disable/enable": per_event_us(write, ops, repeats),
    }


def memory_per_key(count: int) -> float:
    """Bytes per key in the in-memory store, created through the service (tracemalloc)."""
    store = InMemoryKeyStore()
    service = make_service(store=store)
    service.notifier = service.relay.notifier = NullNotifier()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(count):
        service.create(owner=f"o{i}", name="k", max_scope="account:read trade:read_write")
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    return grown / count


# --- the run ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def run_all(args: argparse.Namespace) -> dict[str, Any]:
    """Every section; PostgreSQL ones only with a URL."""
    quick = args.quick or args.smoke
    repeats = 1 if args.smoke else 5 if quick else 9
    events = 200 if args.smoke else 20_000 if quick else 100_000
    out: dict[str, Any] = {"machine": machine(), "quick": quick}
    out["engine_us_per_event"] = bench_engine(events, repeats)
    tmp = Path(tempfile.mkdtemp(prefix="keyturn-bench-"))
    flows = 5 if args.smoke else 300 if quick else 2000

    def sqlite_service(*, inline: bool = True) -> KeyService:
        service = bench_service(SQLiteKeyStore(tmp / f"flows{uuid.uuid4().hex}.db"))
        service.deliver_inline = inline
        return service

    out["flows_per_second"] = {
        "memory": flows_per_second(lambda: bench_service(InMemoryKeyStore()), flows * 5),
        "sqlite (synchronous=FULL), inline relay": flows_per_second(sqlite_service, flows),
        "sqlite (synchronous=FULL), relay in a worker": flows_per_second(
            lambda: sqlite_service(inline=False), flows
        ),
    }
    out["sqlite_durable_commit_us"] = durable_commit_us(tmp)
    if args.postgres:
        for workers in (1, 4, 8):
            rate, lost = postgres_flows(args.postgres, workers, max(50, flows // 4))
            out["flows_per_second"][f"postgres, {workers} worker(s)"] = rate
            out.setdefault("postgres_lost_updates", {})[str(workers)] = lost
    calls = 50 if args.smoke else 20_000 if quick else 100_000
    out["authenticate_us"] = {
        "memory": authenticate_us(InMemoryKeyStore(), calls, repeats),
        "sqlite": authenticate_us(SQLiteKeyStore(tmp / "auth.db"), calls // 5, repeats),
    }
    scale = args.scale or (2_000 if args.smoke else 100_000 if quick else 1_000_000)
    ops = 20 if args.smoke else 2_000 if quick else 10_000
    out["scale_us_per_op"] = {}
    stores: list[tuple[str, Callable[[], KeyStore]]] = [
        ("sqlite", lambda: SQLiteKeyStore(tmp / "scale.db")),
    ]
    if args.postgres:
        from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        stores.append(("postgres", lambda: PostgresKeyStore(args.postgres, schema=schema)))
    for kind, opener in stores:
        store = opener()
        for total in (1_000, scale):
            fill(store, kind, total)
            out["scale_us_per_op"][f"{kind}, {total:,} keys"] = per_op_us(store, ops, repeats)
        if kind == "postgres":
            store.drop_schema()  # type: ignore[attr-defined]
        store.close()
    out["memory_bytes_per_key"] = memory_per_key(50 if args.smoke else 20_000)
    return out


def render(r: dict[str, Any]) -> str:
    """The results as a Markdown table (what the README shows)."""
    m = r["machine"]
    lines = [f"Python {m['python']}, {m['cpus']} CPUs, {m['platform']}", ""]
    eng = r["engine_us_per_event"]
    base = eng["floor: dict table"]
    lines += ["| engine, per lifecycle event | µs | × floor |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:.2f} | {v / base:.1f} |" for k, v in eng.items()]
    lines += [
        "",
        "| full activation flows (create, ack, request, verify) | per second |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:,.0f} |" for k, v in r["flows_per_second"].items()]
    if "postgres_lost_updates" in r:
        lost = ", ".join(f"{w}: {n}" for w, n in r["postgres_lost_updates"].items())
        lines += ["", f"PostgreSQL lost updates by worker count: {lost}"]
    lines += ["", f"One durable SQLite commit on this disk: {r['sqlite_durable_commit_us']:.0f} µs"]
    lines += ["", "| authenticate() | µs per call |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in r["authenticate_us"].items()]
    lines += ["", "| scale | authenticate µs | disable/enable µs |", "|---|---:|---:|"]
    lines += [
        f"| {k} | {v['authenticate']:.2f} | {v['disable/enable']:.2f} |"
        for k, v in r["scale_us_per_op"].items()
    ]
    per_key = r["memory_bytes_per_key"]
    lines += ["", f"In-memory store: {per_key:.0f} bytes per key (the key and its history)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run and print."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness runs")
    p.add_argument("--scale", type=int, help="keys for the large scale run (default 1,000,000)")
    p.add_argument(
        "--postgres",
        default=os.environ.get("KEYTURN_BENCH_POSTGRES", ""),
        help="PostgreSQL URL (default $KEYTURN_BENCH_POSTGRES); omit to skip",
    )
    args = p.parse_args(argv)
    quiet_logging()
    results = run_all(args)
    print(json.dumps(results, indent=2) if args.json else render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
