"""The README's session with the keyturn command, run as written, so that it cannot drift.

The block after ``<!-- transcript -->`` in README.md is a terminal session: ``$ keyturn ...``
and ``$ echo $?`` lines, each followed by what it prints (stdout and stderr, in order). The
test runs every command in an empty folder and compares the output line by line, with what
differs on every run masked on both sides: secrets, codes, client ids, fingerprints, clock
times and durations. A code the README's output showed is replaced, in a later command, by the
code this run printed.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from clitools import keyturn

pytestmark = pytest.mark.slow  # runs the keyturn command as a process

README = Path(__file__).parent.parent / "README.md"
_MASKS = (
    (re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"), "YYYY-MM-DD hh:mm:ss"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}\b"), "hh:mm:ss"),
    (re.compile(r"\b\d+ (?:d|h|min|s)(?: \d+ (?:h|min|s))?\b"), "<span>"),
    (re.compile(r"(?<![\w-])[A-Za-z0-9_-]{43}(?![\w-])"), "<secret>"),
    (re.compile(r"sha256:[0-9a-f]{16}"), "sha256:<fingerprint>"),
    (re.compile(r"\b\d{6}\b"), "<code>"),
)
_CLIENT_ID = re.compile(r"client_id: (\S+)")
_CODE = re.compile(r"code: (\d{6})")


def session(text: str) -> list[tuple[str, list[str]]]:
    """The README's transcript: each command with the lines it printed."""
    block = text.split("<!-- transcript -->", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def masked(lines: list[str], client_ids: dict[str, str]) -> list[str]:
    """``lines`` with everything that differs on each run replaced by a placeholder."""
    out = []
    for line in lines:
        for real, shown in client_ids.items():
            line = line.replace(real, shown)  # noqa: PLW2901 (masking in place)
        for pattern, placeholder in _MASKS:
            line = pattern.sub(placeholder, line)  # noqa: PLW2901
        out.append(line.rstrip())
    return out


def test_the_readme_session_is_what_the_command_prints(tmp_path: Path) -> None:
    """Every command of the README's session prints what the README shows, secrets and times masked."""
    steps = session(README.read_text())
    assert len(steps) > 15
    client_ids: dict[str, str] = {}
    codes: dict[str, str] = {}
    last_exit = 0
    for command, shown in steps:
        if command == "echo $?":
            assert shown == [str(last_exit)], f"exit code of the command before: {last_exit}"
            continue
        words = shlex.split(command)
        assert words[0] == "keyturn", command
        args = [codes.get(w, w) for w in words[1:]]
        done = keyturn(tmp_path, *args, merged=True)
        last_exit = done.returncode
        printed = done.stdout.splitlines()
        shown_text = "\n".join(shown)
        found = zip(_CLIENT_ID.findall(shown_text), _CLIENT_ID.findall(done.stdout), strict=False)
        client_ids.update({got: want for want, got in found})
        sent = zip(_CODE.findall(shown_text), _CODE.findall(done.stdout), strict=True)
        codes.update(dict(sent))
        assert masked(printed, client_ids) == masked(shown, client_ids), f"$ {command}"
