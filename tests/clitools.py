"""Helpers for the command's tests: run ``python -m keyturn`` as a subprocess, as an operator would.

Each run gets a clean environment (no ``KEYTURN_*`` from the test's own), a fixed user for
``cli:$USER``, and unbuffered output, so that stdout and stderr interleave as on a terminal.
:func:`on_terminal` runs the command with a pseudo-terminal as stdin and stdout, for the
prompts and the colour that only a terminal gets.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

USER = "ops"


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without ``KEYTURN_*`` or ``NO_COLOR``, plus ``env``."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_") and k != "NO_COLOR"}
    full.update({"USER": USER, "LOGNAME": USER, "PYTHONUNBUFFERED": "1"})
    full.update(env or {})
    return full


def keyturn(
    cwd: Path, *args: str, env: dict[str, str] | None = None, merged: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m keyturn ARGS`` in ``cwd`` (``merged``: stderr into stdout, in order)."""
    return subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "keyturn", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        env=environment(env),
        timeout=60,
        check=False,
    )


def ok(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run a command with --json that must succeed; return its parsed output."""
    done = keyturn(cwd, "--json", *args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def refused(cwd: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command with --json that must fail; return its error object (exit included)."""
    done = keyturn(cwd, "--json", *args, env=env)
    assert done.returncode != 0, done.stdout
    body: dict[str, Any] = json.loads(done.stdout)
    assert body["exit"] == done.returncode
    return body


def new_key(cwd: Path, *states: str, owner: str = "alice") -> str:
    """A key made with ``create --init``, walked through ``states`` (ack, activate); its id."""
    made = ok(cwd, "create", "--init", "--owner", owner, "--name", "bot", "--scope", "trade:read")
    key_id = str(made["id"])
    for command in states:
        ok(cwd, command, key_id)
    return key_id


def code_from(text: str) -> str:
    """The code a --dev run printed."""
    match = re.search(r"code: (\d{6})", text)
    assert match, text
    return match.group(1)


def on_terminal(
    cwd: Path, *args: str, answer: str = "", env: dict[str, str] | None = None
) -> tuple[int, str]:
    """Run the command on a pseudo-terminal, typing ``answer``; its exit code and output."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "keyturn", *args],
        cwd=cwd,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=environment(env),
    )
    os.close(follower)
    if answer:
        os.write(leader, answer.encode())
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(timeout=30), b"".join(chunks).decode()
