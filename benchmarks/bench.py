"""keyturn's benchmark harness: one run, every measurement side by side, a table or ``--json``.

    python benchmarks/bench.py --quick --postgres URL   # what README's command runs (< 3 min)
    python benchmarks/bench.py --postgres URL           # full sizes
    python benchmarks/bench.py --smoke                  # tiny: checks that it runs (no HTTP)
    python benchmarks/bench.py --only http,engines      # some sections
    python benchmarks/bench.py --quick --update-readme README.md

Sections (see README "Performance"):

* ``http``: ``keyturn serve`` on SQLite and PostgreSQL against a floor app under ``wrk``
  (:mod:`bench_http`), requests per second and floor ÷ keyturn;
* ``engines``: µs per lifecycle event, keyturn's core and service against naive ``transitions``
  and python-statemachine uses of keyturn's own machine (:mod:`bench_engines`);
* ``stores``: SQLite disable/enable and ``authenticate()`` against the same work by hand
  (:mod:`bench_stores`);
* ``flows``, ``scale``, ``memory``: activation flows per second, 1,000 against many keys, bytes
  per key (:mod:`bench_flows`).

Compared rows are measured interleaved in rounds (:mod:`bench_rounds`): medians, spreads and
ratios taken per round. Numbers are printed, never asserted: the targets table compares them with
the issues' bounds (:mod:`bench_report`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final, NamedTuple

import bench_engines
import bench_flows
import bench_http
import bench_report
import bench_stores
import bench_wrk
import structlog

SECTIONS: Final = ("http", "engines", "stores", "flows", "scale", "memory")
README_START: Final = "<!-- bench.py --update-readme: start -->"
README_END: Final = "<!-- bench.py --update-readme: end -->"


class Sizes(NamedTuple):
    """How long each kind of row runs, by mode."""

    rounds: int
    budget: float  # seconds per sample of an in-process row
    http_rounds: int
    http_seconds: int
    flows: float  # seconds each flow row runs
    scale: int
    memory_keys: int


MODES: Final = {
    "smoke": Sizes(1, 0.002, 1, 1, 0.05, 2_000, 50),
    "quick": Sizes(5, 0.06, 4, 2, 1.0, 100_000, 2_000),
    "full": Sizes(9, 0.4, 7, 5, 5.0, 1_000_000, 20_000),
}


def quiet_logging() -> None:
    """Events filtered out as early as structlog allows (the cheapest logging)."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        cache_logger_on_first_use=True,
    )


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "load_before": os.getloadavg()[0],  # other jobs on a shared machine: how noisy it was
    }


def run_all(args: argparse.Namespace, sections: list[str]) -> dict[str, Any]:
    """Every section asked for, in order; PostgreSQL rows only with a URL."""
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    size = MODES[mode]
    started = time.perf_counter()
    out: dict[str, Any] = {"machine": machine(), "mode": mode}
    folder = Path(tempfile.mkdtemp(prefix="keyturn-bench-"))

    def step(name: str) -> bool:
        if name in sections:
            print(f"{time.perf_counter() - started:6.1f} s  {name}...", file=sys.stderr)
        return name in sections

    if step("http"):
        reason = bench_wrk.skip_reason()
        out["http"] = (
            {"skipped": reason}
            if reason
            else bench_http.bench_http(
                folder, size.http_seconds, size.http_rounds, args.postgres, warm=mode != "smoke"
            )
        )
        if reason:
            print(f"HTTP rows skipped: {reason}", file=sys.stderr)
    if step("engines"):
        out["engines"] = bench_engines.bench_engines(size.budget, size.rounds)
    if step("stores"):
        out["sqlite_writes"] = bench_stores.bench_sqlite_writes(folder, size.budget, size.rounds)
        out["authenticate"] = bench_stores.bench_authenticate(folder, size.budget, size.rounds)
        out["decoding"] = bench_stores.bench_decoding(folder, size.budget, size.rounds)
    if step("flows"):
        out["flows"] = bench_flows.bench_flows(folder, size.flows, args.postgres)
    if step("scale"):
        large = args.scale or size.scale
        out["scale"] = bench_flows.bench_scale(
            folder, large, size.budget, size.rounds, args.postgres
        )
    if step("memory"):
        out["memory_bytes_per_key"] = bench_flows.memory_per_key(size.memory_keys)
    out["seconds"] = time.perf_counter() - started
    out["machine"]["load_after"] = os.getloadavg()[0]
    return out


def update_readme(path: Path, report: str, command: str) -> None:
    """Replace the block between README's markers with this run's report and command."""
    text = path.read_text()
    today = dt.datetime.now(tz=dt.UTC).date().isoformat()
    block = f"{README_START}\nOne run of `{command}` ({today}):\n\n{report}{README_END}"
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        msg = f"{path} has no {README_START} ... {README_END} block"
        raise SystemExit(msg)
    path.write_text(pattern.sub(lambda _: block, text))


def main(argv: list[str] | None = None) -> int:
    """Run and print."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--quick", action="store_true", help="smaller sizes (under 3 minutes)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, no HTTP: checks it runs")
    p.add_argument("--only", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    p.add_argument("--scale", type=int, help="keys of the large scale store")
    p.add_argument("--update-readme", metavar="README", type=Path, help="write the report there")
    p.add_argument(
        "--postgres",
        default=os.environ.get("KEYTURN_BENCH_POSTGRES", ""),
        help="PostgreSQL URL (default $KEYTURN_BENCH_POSTGRES); omit to skip its rows",
    )
    args = p.parse_args(argv)
    default = [s for s in SECTIONS if not (args.smoke and s == "http")]
    sections = args.only.split(",") if args.only else default
    if unknown := set(sections) - set(SECTIONS):
        p.error(f"unknown sections: {', '.join(sorted(unknown))}")
    quiet_logging()
    results = run_all(args, sections)
    report = bench_report.render(results)
    print(json.dumps(results, indent=2, ensure_ascii=False) if args.json else report)
    if args.update_readme:
        given = [
            a
            for a in (argv or sys.argv[1:])
            if a not in ("--update-readme", str(args.update_readme))
        ]
        command = shlex.join(["python", "benchmarks/bench.py", *given])
        update_readme(args.update_readme, report, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
