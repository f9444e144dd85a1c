"""The benchmark harness stays runnable (tiny sizes; numbers are printed, never asserted)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # runs the benchmark harness

ROOT = Path(__file__).parent.parent
README_START = "<!-- bench.py --update-readme: start -->"
README_END = "<!-- bench.py --update-readme: end -->"
FLOOR = "floor: fixed JSON, same server settings"
ROWS = ("public/auth", "private/list_api_keys", "disable_api_key + enable_api_key")


def _bench(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """Run benchmarks/bench.py with ``args`` and ``--json``, writing the report into a README copy.

    Returns the JSON results and the README block the run wrote.
    """
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{README_START}\nold numbers\n{README_END}\nafter\n")
    done = subprocess.run(  # noqa: S603 (our interpreter, our script)
        [
            sys.executable,
            str(ROOT / "benchmarks/bench.py"),
            *args,
            "--json",
            "--update-readme",
            str(readme),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "KEYTURN_BENCH_POSTGRES": os.environ.get("KEYTURN_TEST_POSTGRES", "")},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    text = readme.read_text()
    assert text.startswith("before\n")
    assert text.endswith(f"{README_END}\nafter\n")
    assert "old numbers" not in text
    return json.loads(done.stdout), text


def _script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run benchmarks/``name`` with ``args``; it must succeed."""
    done = subprocess.run(  # noqa: S603 (our interpreter, our script)
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_harness_runs_every_section(tmp_path: Path) -> None:
    """bench.py --smoke measures every in-process section interleaved and writes the README's targets table."""
    results, readme = _bench(tmp_path, "--smoke")
    assert set(results) >= {
        "machine",
        "engines",
        "sqlite_writes",
        "authenticate",
        "decoding",
        "flows",
        "scale",
        "memory_bytes_per_key",
    }
    assert "http" not in results  # --smoke leaves the HTTP rows out unless asked
    engines = results["engines"]
    assert len(engines["rows"]) == 8
    assert "service inline relay ÷ relay off" in engines["ratios"]
    writes = results["sqlite_writes"]
    assert set(writes["ratios"]) >= {"inline relay ÷ hand-written", "inline relay ÷ relay off"}
    assert set(results["authenticate"]["ratios"]) == {"SQLite ÷ hand-written"}
    assert set(results["decoding"]["ratios"]) == {"codec ÷ json.loads"}
    assert "decoding one stored key (SQLite row)" in readme
    assert all(s["min"] <= s["median"] <= s["max"] for s in engines["rows"].values())
    assert "| 16 | SQLite `authenticate()` ÷ hand-written | ≤ 2.00 |" in readme
    if os.environ.get("KEYTURN_TEST_POSTGRES"):
        assert results["flows"]["postgres_lost_updates"] == {"1": 0, "4": 0, "8": 0}
        assert len(results["scale"]["ratios"]) == 4


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_http_rows_run(tmp_path: Path) -> None:
    """bench.py --only http serves keyturn and the floor, drives them with wrk, and every request succeeds."""
    results, readme = _bench(tmp_path, "--smoke", "--only", "http")
    http = results["http"]
    stores = ["SQLite", "PostgreSQL"] if os.environ.get("KEYTURN_TEST_POSTGRES") else ["SQLite"]
    rows = [f"{db} {row}" for db in stores for row in ROWS]
    assert list(http["rows"]) == [FLOOR, *rows]
    assert set(http["ratios"]) == {f"floor ÷ {row}" for row in rows}
    assert all(s["median"] > 0 for s in http["rows"].values())
    assert {name: c["errors"] for name, c in http["costs"].items()} == dict.fromkeys(
        [FLOOR, *rows], 0
    )
    assert "floor ÷ keyturn over HTTP, SQLite `public/auth`" in readme


def test_security_benchmarks_run() -> None:
    """benchmarks/security.py --smoke --json prints the access-log and auth-timing rows for each store."""
    postgres = os.environ.get("KEYTURN_TEST_POSTGRES", "")
    done = _script(
        "security.py", "--smoke", "--json", *(["--postgres", postgres] if postgres else [])
    )
    results = json.loads(done.stdout)
    stores = {"sqlite", "postgres"} if postgres else {"sqlite"}
    assert set(results["access_log_us"]) == stores
    assert set(results["auth_usdiff"]) == stores
    assert set(results["auth_usdiff"]["sqlite"]) == {"known client_id", "unknown client_id"}


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_the_api_profile_runs(store: str) -> None:
    """benchmarks/profile_api.py calls the API in process and prints a time for every row."""
    postgres = os.environ.get("KEYTURN_TEST_POSTGRES", "")
    if store == "postgres" and not postgres:
        pytest.skip("KEYTURN_TEST_POSTGRES is not set")
    where = ["--postgres", postgres] if store == "postgres" else []
    done = _script("profile_api.py", "--requests", "20", "--profile", *where)
    lines = done.stdout.splitlines()
    for row in ROWS:
        (line,) = [x for x in lines if x.startswith(f"| {row} |")]
        wall, cpu = (float(c.strip().replace(",", "")) for c in line.split("|")[2:4])
        assert wall > 0
        assert cpu > 0
    assert "tottime" in done.stdout  # the profile
    assert ("bare SELECT 1" in done.stdout) == (store == "postgres")
