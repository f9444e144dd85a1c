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
        for name, content in diagrams.render_all().items():
            if isinstance(content, bytes):
                (folder / name).write_bytes(content)
            else:
                (folder / name).write_text(content)
            app.err.say(f"wrote {folder / name}")
        return
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
        out = diagrams.mermaid(policy, highlight=highlight, note=note)
    else:
        out = diagrams.dot(policy, highlight=highlight, note=note)
        if a.format == "svg":
            out = diagrams.svg(out)
    if a.output:
        Path(a.output).write_text(out)
        app.err.say(f"wrote {a.output}")
    elif a.json:
        app.emit({"format": a.format, "key": a.key, "policy": a.policy, "diagram": out}, "")
    else:
        sys.stdout.write(out)
