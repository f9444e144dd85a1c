"""``keyturn diagram``: the lifecycle drawn from the machine, optionally with a key's place in it.

Mermaid needs nothing; DOT needs the ``diagrams`` extra; SVG and PNG also need Graphviz
(:mod:`keyturn.diagrams` says what to install). ``--update DIR`` regenerates the committed
diagrams. A store is opened only for ``--key``. Drawing decides nothing about keys.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from keyturn import diagrams, wiring
from keyturn.core.policy import Policy
from keyturn.web.views import seconds_until

if TYPE_CHECKING:
    from keyturn.core.lifecycle import State

    from .app import App

#: The policies ``keyturn diagram --policy`` draws under: the library's default, or the API's.
POLICIES: Final = {"default": Policy(), "api": wiring.API_POLICY}


def cmd_diagram(app: App) -> None:
    """Draw the lifecycle, or regenerate the committed diagrams."""
    a = app.args
    if a.update is not None:
        folder = Path(a.update)
        folder.mkdir(parents=True, exist_ok=True)
        wrote = []
        for name, content in diagrams.render_all().items():
            if isinstance(content, bytes):
                (folder / name).write_bytes(content)
            else:
                (folder / name).write_text(content)
            wrote.append(str(folder / name))
        _wrote(app, wrote, {})
        return
    out = _drawn(app)
    fields = {"format": a.format, "key": a.key, "policy": a.policy}
    if a.output:
        Path(a.output).write_text(out)
        _wrote(app, [a.output], fields)
    elif a.json:
        app.emit({**fields, "diagram": out}, "")
    else:
        sys.stdout.write(out)


def _drawn(app: App) -> str:
    """The diagram the options ask for, as text (Mermaid, DOT or SVG)."""
    a = app.args
    policy = POLICIES[a.policy]
    highlight: State | None = None
    note = ""
    if a.key is not None:
        key = app.service.get(a.key, owner=app.owner_of(a.key))
        highlight = key.state
        if key.pending is not None:
            now = app.clock.now()
            left = seconds_until(key.pending.expires_at, now, round_up=False)
            resend = seconds_until(key.pending.resend_at, now)
            note = f"code valid {left} s more, resend in {resend} s"
    if a.format == "mermaid":
        return diagrams.mermaid(policy, highlight=highlight, note=note)
    out = diagrams.dot(policy, highlight=highlight, note=note)
    return diagrams.svg(out) if a.format == "svg" else out


def _wrote(app: App, paths: list[str], fields: dict[str, object]) -> None:
    """Say which files were written: one JSON object with ``--json``, else a line each."""
    if app.args.json:
        app.emit({**fields, "wrote": paths}, "")
        return
    for path in paths:
        app.err.say(f"wrote {path}")
