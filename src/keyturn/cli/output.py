"""How the command shows things: colour on a terminal, times a person reads, tables, the secret.

Everything the command prints as text goes through here, so it looks the same everywhere:
colour only on a terminal and never with ``NO_COLOR`` (https://no-color.org) or ``TERM=dumb``;
a time as how far away it is with the UTC clock time beside it ("in 1 min 47 s (at 05:09:33
UTC)"); a secret on a line of its own, set apart, so that it is copied alone. Plain ANSI escape
codes are all the colour needs, so no library is loaded for it (README: "Why argparse").

This module decides nothing about keys and prints nothing by itself: it formats what the
commands give it.
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, TYPE_CHECKING, Any, Final

from keyturn.core.lifecycle import State
from keyturn.web.views import seconds_until

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from keyturn.core.records import ApiKey

_SGR: Final = {
    "bold": "1",
    "dim": "2",
    "reverse": "7",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "cyan": "36",
}
_STATE_STYLE: Final = {
    State.CREATED: "cyan",
    State.SECRET_ACKNOWLEDGED: "cyan",
    State.PENDING_2FA: "yellow",
    State.ACTIVE: "green",
    State.DISABLED: "red",
    State.REMOVED: "dim",
}


def colour_wanted(stream: IO[str]) -> bool:
    """Whether to colour ``stream``: a terminal, with neither ``NO_COLOR`` nor ``TERM=dumb``."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Painter:
    """Wraps text in ANSI styles when its stream is a terminal that wants colour."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.on = colour_wanted(stream)

    def __call__(self, text: str, *styles: str) -> str:
        """``text`` in ``styles`` (``bold``, ``red``...), or as it is when colour is off."""
        if not self.on or not styles:
            return text
        codes = ";".join(_SGR[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def state(self, state: State) -> str:
        """A state's name in its colour (active green, pending yellow, disabled red...)."""
        return self(state.value, "bold", _STATE_STYLE[state])

    def say(self, text: str = "") -> None:
        """Print one line (or block) to the stream."""
        print(text, file=self.stream)


def duration(seconds: int) -> str:
    """A span as a person says it: ``47 s``, ``1 min 47 s``, ``2 h 5 min``, ``3 d 4 h``."""
    days, rest = divmod(max(0, seconds), 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0 s"


def clock(at: datetime, now: datetime) -> str:
    """``05:09:33 UTC``, with the date in front when it is not ``now``'s day."""
    return f"{at:%H:%M:%S} UTC" if at.date() == now.date() else f"{at:%Y-%m-%d %H:%M:%S} UTC"


def when(at: datetime, now: datetime) -> str:
    """``in 1 min 47 s (at 05:09:33 UTC)``, ``2 min ago (at ...)``, or ``just now``."""
    if at > now:
        return f"in {duration(seconds_until(at, now))} (at {clock(at, now)})"
    past = int((now - at).total_seconds())
    return "just now" if past == 0 else f"{duration(past)} ago (at {clock(at, now)})"


def table(rows: Sequence[Sequence[str]], paint: Painter) -> str:
    """Columns padded to their widest cell; the first row is the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        lines.append(paint(line, "bold") if n == 0 else line)
    return "\n".join(lines)


def key_fields(key: ApiKey, paint: Painter) -> str:
    """A key's fields, one per line, names right-aligned; no secret, no digest, no code."""
    fields = [
        ("id", str(key.id)),
        ("name", key.name),
        ("owner", key.owner),
        ("state", paint.state(key.state)),
        ("client_id", key.client_id),
        ("fingerprint", key.fingerprint),
        ("max_scope", str(key.max_scope) or "(none)"),
        ("ip_whitelist", " ".join(str(n) for n in key.ip_whitelist) or "(any address)"),
        ("enabled_features", " ".join(key.enabled_features) or "-"),
    ]
    return "\n".join(f"{name:>16}: {value}" for name, value in fields)


def secret_block(label: str, secret: str, paint: Painter) -> str:
    """A secret set apart: a blank line, its label, the secret alone on its line, a blank line."""
    return f"\n  {paint(label, 'bold')}\n\n      {paint(secret, 'bold', 'reverse')}\n"


def json_text(data: Any) -> str:  # noqa: ANN401 (any JSON value)
    """``data`` as the command's JSON output."""
    return json.dumps(data, indent=2)


def stdout() -> Painter:
    """A painter for standard output."""
    return Painter(sys.stdout)


def stderr() -> Painter:
    """A painter for standard error."""
    return Painter(sys.stderr)
