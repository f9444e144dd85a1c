"""The HTTP rows: ``keyturn serve`` against a floor app, under ``wrk``, interleaved in rounds.

Each row is ``wrk`` (16 threads, one keep-alive connection each) posting JSON-RPC bodies to a
server running as its own process, as in production:

* the floor: :mod:`floor_server`, a minimal ASGI app answering fixed JSON, under uvicorn with the
  configuration ``keyturn serve`` builds;
* keyturn: ``python -m keyturn serve`` itself, on a SQLite file or a fresh PostgreSQL schema,
  with a notifier configured (``log``, filtered out by the command's logging) so that the inline
  relay runs as it does in a deployment: ``public/auth`` (client credentials),
  ``private/list_api_keys`` (Bearer token) and ``private/disable_api_key`` +
  ``private/enable_api_key`` (Bearer token; the API's policy enables directly).

Sixteen accounts each hold three keys: one to log in with (the ``public/auth`` row, whose
sessions would otherwise end the other rows' tokens), one whose token the private rows send, and
one the pair row disables and enables (a key disabled by its own token would end that token).
Servers are started once and waited for on their port; every row is measured in turn, round
after round, and each ``floor ÷ keyturn`` ratio is taken per round. The CPU time of the server
and of ``wrk`` is recorded for every sample, so the report shows which one was saturated.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

import attrs
import bench_rounds
from bench_stores import SERVER_KEY
from bench_wrk import CONNECTIONS, HERE, Server, WrkRun, free_port, run_wrk

from keyturn import State, wiring
from keyturn.adapters import seal_keys
from keyturn.adapters.notifiers import RecordingNotifier
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.testing import key_in_state

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from keyturn.ports import KeyStore

FLOOR: Final = "floor: fixed JSON, same server settings"
ROWS: Final = ("public/auth", "private/list_api_keys", "disable_api_key + enable_api_key")
#: Seconds after which the private rows' tokens are renewed (they live 15 minutes).
TOKEN_AGE: Final = 300.0


def rpc_body(method: str, **params: Any) -> str:
    """A JSON-RPC request body."""
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def call(port: int, body: str, authorization: str = "") -> dict[str, Any]:
    """POST ``body`` to the server on ``port`` and return the decoded answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        conn.request("POST", "/api/v2", body, headers)
        answer: dict[str, Any] = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return answer


@attrs.define
class World:
    """``keyturn serve`` on one store, with the accounts and request files of its three rows."""

    kind: str
    server: Server
    folder: Path
    store: KeyStore
    logins: list[tuple[str, str]] = attrs.field(factory=list)
    tokens: list[tuple[str, str]] = attrs.field(factory=list)
    targets: list[int] = attrs.field(factory=list)
    tokens_at: float = 0.0

    def populate(self, db: str) -> None:
        """Create the accounts' keys through the service, as a deployment would."""
        service = wiring.build_service(
            store=self.store,
            notifier=RecordingNotifier(),
            master_key=SERVER_KEY,
            policy=wiring.API_POLICY,
            secret_box=seal_keys.secret_box(db),
        )
        for i in range(CONNECTIONS):
            owner = f"bench{i}"
            keys = [
                key_in_state(
                    service, State.ACTIVE, owner=owner, name=n, max_scope="account:read_write"
                )
                for n in ("login", "token", "target")
            ]
            self.logins.append((keys[0].key.client_id, keys[0].client_secret or ""))
            self.tokens.append((keys[1].key.client_id, keys[1].client_secret or ""))
            self.targets.append(keys[2].key.id)

    def file(self, row: str) -> Path:
        """The request file of ``row`` (written again with fresh tokens every few minutes)."""
        if row != ROWS[0] and time.monotonic() - self.tokens_at > TOKEN_AGE:
            self._write_private_files()
        return self.folder / f"{self.kind}-{ROWS.index(row)}.requests"

    def _write_private_files(self) -> None:
        bearers = []
        for client_id, secret in self.tokens:
            body = rpc_body(
                "public/auth",
                grant_type="client_credentials",
                client_id=client_id,
                client_secret=secret,
            )
            answer = call(self.server.port, body)
            if "result" not in answer:
                msg = f"{self.kind}: public/auth failed: {answer}"
                raise RuntimeError(msg)
            bearers.append("Bearer " + answer["result"]["access_token"])
        listing = rpc_body("private/list_api_keys")
        lines = [
            [f"{b}\t{listing}" for b in bearers],
            [
                f"{b}\t{rpc_body('private/disable_api_key', id=k)}"
                f"\t{rpc_body('private/enable_api_key', id=k)}"
                for b, k in zip(bearers, self.targets, strict=True)
            ],
        ]
        for row, text in zip(ROWS[1:], lines, strict=True):
            (self.folder / f"{self.kind}-{ROWS.index(row)}.requests").write_text("\n".join(text))
        self.tokens_at = time.monotonic()

    def write_login_file(self) -> None:
        """The ``public/auth`` row's requests: each thread logs in with its account's login key."""
        lines = [
            "\t"
            + rpc_body("public/auth", grant_type="client_credentials", client_id=c, client_secret=s)
            for c, s in self.logins
        ]
        (self.folder / f"{self.kind}-0.requests").write_text("\n".join(lines))


def keyturn_env() -> dict[str, str]:
    """The environment of ``keyturn serve``: the benchmark's server key, the ``log`` notifier."""
    env = {**os.environ, "KEYTURN_SERVER_KEY": SERVER_KEY.hex(), "KEYTURN_NOTIFIER": "log"}
    env.pop("KEYTURN_DB", None)
    return env


@contextlib.contextmanager
def keyturn_world(kind: str, folder: Path, postgres: str) -> Iterator[World]:
    """``keyturn serve`` on a new SQLite file or a new PostgreSQL schema (dropped after)."""
    port = free_port()
    dropped = None
    if kind == "sqlite":
        db = str(folder / "http.db")
        store: KeyStore = SQLiteKeyStore(db)
    else:
        from psycopg.conninfo import make_conninfo  # noqa: PLC0415 (the postgres extra)

        from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        store = dropped = PostgresKeyStore(postgres, schema=schema)
        db = make_conninfo(postgres, options=f"-c search_path={schema}")
    argv = [sys.executable, "-m", "keyturn", "serve", "--db", db, "--port", str(port)]
    server = Server(f"keyturn serve ({kind})", argv, port, folder / f"{kind}.log", keyturn_env())
    world = World(kind, server, folder, store)
    try:
        world.populate(db)
        world.write_login_file()
        server.start()
        yield world
    finally:
        server.stop()
        if dropped is not None:
            dropped.drop_schema()
        store.close()


@attrs.define
class Row:
    """One HTTP row: a server, its request file, and every run's costs besides its rate.

    With ``warm``, the first run is the warm-up :func:`bench_rounds.interleave` discards; it
    lasts one second.
    """

    server: Server
    requests: Callable[[], Path]  # renews tokens between runs when they grow old
    seconds: int
    pair: bool = False
    warm: bool = True
    runs: list[WrkRun] = attrs.field(factory=list)

    def sample(self) -> float:
        """Requests per second of one run."""
        seconds = 1 if self.warm and not self.runs else self.seconds
        run = run_wrk(self.server, self.requests(), seconds, pair=self.pair)
        self.runs.append(run)
        return run.rate

    def costs(self) -> dict[str, float]:
        """Errors over all runs; per measured run (medians): latency, CPU per request and share."""
        runs = self.runs[1:] if self.warm else self.runs

        def median(values: list[float]) -> float:
            return bench_rounds.summary(values)["median"]

        return {
            "errors": float(sum(r.errors for r in self.runs)),
            "p50_ms": median([r.p50_us / 1000 for r in runs]),
            "p99_ms": median([r.p99_us / 1000 for r in runs]),
            "server_cpu_us_per_request": median([r.server_cpu / r.served * 1e6 for r in runs]),
            "wrk_cpu_us_per_request": median([r.wrk_cpu / r.served * 1e6 for r in runs]),
            "server_cores": median([r.server_cpu / r.seconds for r in runs]),
            "wrk_cores": median([r.wrk_cpu / r.seconds for r in runs]),
        }


def bench_http(
    folder: Path, seconds: int, rounds: int, postgres: str, *, warm: bool = True
) -> dict[str, object]:
    """Requests per second of the floor and of keyturn's rows, interleaved; floor ÷ keyturn.

    ``warm``: run each row for a second before the rounds (the servers' caches, pools, files).
    """
    floor = Server(
        "floor server",
        [sys.executable, str(HERE / "floor_server.py"), "--port", str(port := free_port())],
        port,
        folder / "floor.log",
    )
    with contextlib.ExitStack() as stack:
        floor.start()
        stack.callback(floor.stop)
        worlds = [stack.enter_context(keyturn_world("sqlite", folder, postgres))]
        if postgres:
            worlds.append(stack.enter_context(keyturn_world("postgres", folder, postgres)))
        listing = worlds[0]
        rows = {FLOOR: Row(floor, functools.partial(listing.file, ROWS[1]), seconds, warm=warm)}
        label = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
        for world in worlds:
            for i, name in enumerate(ROWS):
                rows[f"{label[world.kind]} {name}"] = Row(
                    world.server,
                    functools.partial(world.file, name),
                    seconds,
                    pair=i == 2,  # the third row is the pair
                    warm=warm,
                )
        samples = bench_rounds.interleave({n: r.sample for n, r in rows.items()}, rounds, warm=warm)
    ratios = {f"floor ÷ {name}": (FLOOR, name) for name in rows if name != FLOOR}
    result = bench_rounds.section(samples, ratios, "requests/s")
    result["costs"] = {name: row.costs() for name, row in rows.items()}
    result["settings"] = {"threads": CONNECTIONS, "connections": CONNECTIONS, "seconds": seconds}
    return result
