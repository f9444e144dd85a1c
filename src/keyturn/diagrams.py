"""Pictures and tables of the lifecycle, generated from the one machine in :mod:`keyturn.lifecycle`.

Mermaid (``stateDiagram-v2``, rendered by GitHub), Graphviz DOT, SVG (through the ``dot`` program)
and the README's state x action table all read ``MACHINE``'s transitions, so none of them can
drift from the code. Edge captions are filled in from a :class:`~keyturn.policy.Policy`, in a
person's words. A per-key picture highlights the key's state and, while a code is pending, the
time left. Rendering SVG runs ``dot``; nothing else here does I/O.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING, Final

from keyturn.lifecycle import (
    INITIAL,
    MACHINE,
    TERMINAL,
    Action,
    Condition,
    State,
    edges,
    route,
)
from keyturn.policy import Policy

if TYPE_CHECKING:
    from collections.abc import Iterator

    from keyturn.lifecycle import Edge

#: How the README and the CLI say what a condition means.
CONDITION_WORDS: Final = {
    Condition.CODE_ACCEPTED: "code accepted",
    Condition.CAME_FROM_DISABLED: "started from disabled",
    Condition.DIRECT_ENABLE: "direct-enable policy",
    Condition.EDIT_DEACTIVATES: "scope, whitelist or features changed",
}


class GraphvizMissingError(RuntimeError):
    """SVG was asked for, but Graphviz's ``dot`` program is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "SVG needs Graphviz: install its dot program (Debian/Ubuntu: apt-get install "
            "graphviz; macOS: brew install graphviz) or pip install 'keyturn[svg]' (pygraphviz, "
            "which bundles Graphviz), or choose --format mermaid or dot"
        )


def _machine_edges() -> Iterator[tuple[State, State, Action]]:
    """Every (source, dest, action) as the transitions machine holds them."""
    for name, event in MACHINE.events.items():
        for source, transitions in event.transitions.items():
            for t in transitions:
                yield State(source), State(str(t.dest)), Action(name)


def _caption(edge: Edge, policy: Policy) -> str:
    text = edge.action.value
    if edge.label:
        text += f": {edge.label.format(**policy.describe())}"
    return text


def _arrows(policy: Policy, sep: str = " / ") -> list[tuple[State, State, str]]:
    """One arrow per (source, dest), captions of its actions joined, in a stable order."""
    declared = {(e.source, e.dest, e.action): e for e in edges()}
    merged: dict[tuple[State, State], list[str]] = {}
    for source, dest, action in _machine_edges():
        edge = declared[source, dest, action]
        merged.setdefault((source, dest), []).append(_caption(edge, policy))
    order = list(State)
    return [
        (s, d, sep.join(captions))
        for (s, d), captions in sorted(
            merged.items(), key=lambda kv: (order.index(kv[0][0]), order.index(kv[0][1]))
        )
    ]


def mermaid(policy: Policy | None = None, *, highlight: State | None = None, note: str = "") -> str:
    """The lifecycle as a Mermaid ``stateDiagram-v2``."""
    policy = policy or Policy()
    lines = ["stateDiagram-v2", "    direction LR", f"    [*] --> {INITIAL.value}: create"]
    lines += [f"    {s.value} --> {d.value}: {caption}" for s, d, caption in _arrows(policy)]
    lines += [f"    {s.value} --> [*]" for s in State if s in TERMINAL]
    if highlight is not None:
        lines += [
            "    classDef current fill:#ffd54f,stroke:#b26a00,stroke-width:3px",
            f"    class {highlight.value} current",
        ]
        if note:
            lines.append(f"    note right of {highlight.value}: {note}")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


def dot(policy: Policy | None = None, *, highlight: State | None = None, note: str = "") -> str:
    """The lifecycle as Graphviz DOT source."""
    policy = policy or Policy()
    lines = [
        "digraph keyturn {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
        "  start [shape=point, width=0.15];",
    ]
    for s in State:
        attrs = []
        if s in TERMINAL:
            attrs.append("peripheries=2")
        if s is highlight:
            attrs += ['fillcolor="#ffd54f"', "penwidth=3"]
            if note:
                attrs.append(f"xlabel={_dot_quote(note)}")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {s.value}{suffix};")
    lines.append(f"  start -> {INITIAL.value} [label=create];")
    lines += [
        f"  {s.value} -> {d.value} [label={_dot_quote(caption)}];"
        for s, d, caption in _arrows(policy, sep="\n")
    ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def svg(dot_source: str) -> str:
    """Render DOT source to SVG: Graphviz's ``dot`` on PATH, else pygraphviz (extra ``svg``)."""
    program = shutil.which("dot")
    if program is not None:
        done = subprocess.run(  # noqa: S603 (fixed program, source on stdin)
            [program, "-Tsvg"], input=dot_source, capture_output=True, text=True, check=True
        )
        return done.stdout
    try:
        import pygraphviz  # noqa: PLC0415
    except ImportError:
        raise GraphvizMissingError from None
    drawn = pygraphviz.AGraph(string=dot_source).draw(format="svg", prog="dot")
    return bytes(drawn).decode()


def graphviz_version(svg_text: str) -> str:
    """The Graphviz version an SVG says it was made with ("" if it does not say)."""
    for line in svg_text.splitlines()[:6]:
        if "Generated by graphviz version" in line:
            return line.split("version", 1)[1].strip(" ->")
    return ""


#: The committed diagrams, as ``diagrams/<name>``, and how each is made.
FILES: Final = ("lifecycle.mmd", "lifecycle.dot", "lifecycle.svg")


def render_all() -> dict[str, str]:
    """The lifecycle in every committed format (SVG needs ``dot``), by file name."""
    source = dot()
    return {"lifecycle.mmd": mermaid(), "lifecycle.dot": source, "lifecycle.svg": svg(source)}


def markdown_table(policy: Policy | None = None) -> str:
    """The README's table: for each state, what each action does (default policy)."""
    policy = policy or Policy()
    facts = {
        Condition.CODE_ACCEPTED.value: True,
        Condition.CAME_FROM_DISABLED.value: False,
        Condition.DIRECT_ENABLE.value: policy.direct_enable,
        Condition.EDIT_DEACTIVATES.value: policy.edit_deactivates,
    }
    actions = [a for a in Action if a is not Action.CREATE]
    header = "| state | " + " | ".join(f"`{a.value}`" for a in actions) + " |"
    rule = "|---" * (len(actions) + 1) + "|"
    rows = [header, rule]
    for s in State:
        cells = []
        for a in actions:
            dest = route(s, a, facts.__getitem__)
            if dest is None:
                cells.append("refused")
            elif dest is s:
                cells.append("stays")
            else:
                cells.append(f"→ `{dest.value}`")
        rows.append(f"| `{s.value}` | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
