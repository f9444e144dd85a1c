"""Processes of the HTTP rows: servers started and stopped as in production, and ``wrk`` runs.

A :class:`Server` is a subprocess started by the harness and waited for by polling its port (no
guessed sleep), stopped with SIGINT as Ctrl-C would. :func:`run_wrk` runs ``wrk`` once with
``benchmarks/rpc.lua`` and reads back its one result line, with the CPU time ``wrk`` and the
server used meanwhile (from ``getrusage`` and Linux's ``/proc``), so that a report can tell
which side was saturated. Nothing here knows keyturn: :mod:`bench_http` says what to serve.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Final

import attrs

HERE: Final = Path(__file__).parent
#: wrk threads, each with one keep-alive connection (so its requests arrive in order).
CONNECTIONS: Final = 16
#: How long a server may take to open its port.
START_TIMEOUT: Final = 60.0


def skip_reason() -> str | None:
    """Why the HTTP rows cannot run here, or ``None``."""
    if shutil.which("wrk") is None:
        return "wrk is not on PATH (Debian: apt-get install -y wrk)"
    try:
        import uvicorn  # noqa: F401, PLC0415
    except ImportError:
        return "uvicorn is missing (pip install -e '.[bench]')"
    return None


def free_port() -> int:
    """A TCP port free on the loopback address now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` so far (Linux ``/proc``; else 0)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@attrs.define
class Server:
    """A server subprocess: started, waited for on its port, stopped with SIGINT (as Ctrl-C)."""

    name: str
    argv: list[str]
    port: int
    log: Path
    env: dict[str, str] = attrs.field(factory=lambda: dict(os.environ))
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process and return once its port accepts connections."""
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 (our interpreter, our arguments)
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = f"{self.name} exited with {self.proc.returncode}: {self.output()}"
                raise RuntimeError(msg)
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            time.sleep(0.02)  # polling the port, not waiting a guessed time
        msg = f"{self.name} did not open port {self.port} in {START_TIMEOUT:.0f} s: {self.output()}"
        raise RuntimeError(msg)

    def output(self) -> str:
        """The end of what the server printed."""
        return self.log.read_text(errors="replace")[-2000:]

    def cpu(self) -> float:
        """CPU seconds the server has used."""
        return _cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def stop(self) -> None:
        """Interrupt the server as Ctrl-C would, and wait for it to finish (kill if it hangs)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@attrs.frozen
class WrkRun:
    """What one ``wrk`` run reported, and the CPU it and the server used."""

    requests: int
    seconds: float
    errors: int
    p50_us: int
    p99_us: int
    wrk_cpu: float
    server_cpu: float

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.requests / self.seconds

    @property
    def served(self) -> int:
        """Successful requests, at least one (to divide by)."""
        return max(1, self.requests)


def run_wrk(server: Server, requests: Path, seconds: int, *, pair: bool) -> WrkRun:
    """One ``wrk`` run against ``server``: successful requests per second and what it cost."""
    argv = ["wrk", f"-t{CONNECTIONS}", f"-c{CONNECTIONS}", f"-d{seconds}s"]
    argv += ["-s", str(HERE / "rpc.lua"), f"http://127.0.0.1:{server.port}/api/v2"]
    argv += ["--", str(requests), "pair" if pair else "single"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = server.cpu()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 60)  # noqa: S603
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("keyturn-wrk ")), None)
    if done.returncode != 0 or line is None:
        msg = f"wrk failed ({done.returncode}): {done.stdout[-1000:]} {done.stderr[-1000:]}"
        raise RuntimeError(msg)
    count, secs, refused, broken, resyncs, p50, p99 = line.split()[1:]
    return WrkRun(
        requests=int(count) - int(refused),
        seconds=float(secs),
        errors=int(refused) - int(resyncs) + int(broken),
        p50_us=int(p50),
        p99_us=int(p99),
        wrk_cpu=after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
        server_cpu=server.cpu() - server_before,
    )
