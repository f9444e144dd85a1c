"""The benchmark harness stays runnable (tiny sizes; numbers are printed, never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_harness_runs_every_section() -> None:
    """benchmarks/bench.py --smoke --json prints every section the README reports."""
    done = subprocess.run(  # noqa: S603 (our interpreter, our script)
        [sys.executable, str(ROOT / "benchmarks/bench.py"), "--smoke", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "KEYTURN_BENCH_POSTGRES": os.environ.get("KEYTURN_TEST_POSTGRES", "")},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    assert set(results) >= {
        "machine",
        "engine_us_per_event",
        "flows_per_second",
        "sqlite_durable_commit_us",
        "authenticate_us",
        "scale_us_per_op",
        "memory_bytes_per_key",
    }
    assert len(results["engine_us_per_event"]) == 8
    if os.environ.get("KEYTURN_TEST_POSTGRES"):
        assert results["postgres_lost_updates"] == {"1": 0, "4": 0, "8": 0}


def test_security_benchmarks_run() -> None:
    """benchmarks/security.py --smoke --json prints the access-log and auth-timing rows for each store."""
    postgres = os.environ.get("KEYTURN_TEST_POSTGRES", "")
    done = subprocess.run(  # noqa: S603 (our interpreter, our script)
        [
            sys.executable,
            str(ROOT / "benchmarks/security.py"),
            "--smoke",
            "--json",
            *(["--postgres", postgres] if postgres else []),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    stores = {"sqlite", "postgres"} if postgres else {"sqlite"}
    assert set(results["access_log_us"]) == stores
    assert set(results["auth_usdiff"]) == stores
    assert set(results["auth_usdiff"]["sqlite"]) == {"known client_id", "unknown client_id"}
