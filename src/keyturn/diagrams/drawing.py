"""Diagrams of the lifecycle, drawn by ``transitions`` from what the one machine does.

:func:`keyturn.diagrams.pictures.picture` decides what is shown under a policy, from the answers of
:data:`~keyturn.core.lifecycle.MACHINE`; here a ``GraphMachine`` built from that picture draws it,
with its Mermaid engine (no dependency) or its Graphviz engine (DOT source, through the
``graphviz`` package: extra ``diagrams``), and Graphviz's ``dot`` renders DOT to SVG and PNG. A
drawing machine is built per diagram and never triggered: none is on the hot path, and
``MACHINE`` itself stays a plain ``Machine``.

``transitions`` draws the states, the arrows with their captions and the highlighted state (the
model's). What it does not draw is added through the public API of the ``graphviz`` package or
as Mermaid lines: the ``create`` arrow, the end after ``removed``, the shared box's look, and a
layout near 16:9 (the states activation starts from side by side; Mermaid's ELK layout told to
keep the picture's order, and the shared box's line written in its name, one box high). A per-key
note is written inside the key's state, so no arrow can cross it. Only rendering runs a program
(``dot``).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING, Any, Final, Literal, cast

from transitions import State as MachineState
from transitions.extensions.diagrams import GraphMachine

from keyturn.core.lifecycle import INITIAL, TERMINAL, Action, State
from keyturn.core.policy import Policy
from keyturn.diagrams.pictures import ORDER, SHARED, Picture, picture, policy_caption, wrap

if TYPE_CHECKING:
    import graphviz

Engine = Literal["mermaid", "graphviz"]

#: The states activation starts from, drawn side by side (Graphviz: one rank).
_SIDE_BY_SIDE: Final = (State.SECRET_ACKNOWLEDGED, State.DISABLED)

#: Mermaid: ELK keeps ``ORDER`` (the picture's), so arrows against it are drawn as returns; its
#: model-order preset (network-simplex placement) draws the layers a little wider and lower.
_MERMAID_CONFIG: Final = (
    "markdownAutoWrap: false",
    "layout: elk",
    "elk:",
    "  preset: modelOrder",
    "  cycleBreakingStrategy: MODEL_ORDER",
    "state:",
    "  wrappingWidth: 400",
    "themeVariables:",
    '  fontSize: "16px"',
)

_FONT = "Helvetica"
_STYLES: Final[dict[Engine, dict[str, Any]]] = {
    "graphviz": {
        "graph": {"default": {"fontname": _FONT, "fontsize": "13", "labelloc": "t"}},
        "node": {
            "default": {
                "shape": "box",
                "style": "rounded,filled",
                "fillcolor": "white",
                "fontname": _FONT,
            },
            "active": {"fillcolor": "#ffd54f", "color": "#b26a00", "penwidth": "3"},
        },
        "edge": {"default": {"fontname": _FONT, "fontsize": "12"}},
    },
    "mermaid": {
        "node": {
            "default": {"fill": "white"},
            "active": {"fill": "#ffd54f", "stroke": "#b26a00", "stroke-width": "3px"},
        },
    },
}
#: Graphviz: states close together side by side (``nodesep``), so that the API policy's three
#: ``enable`` arrows around ``pending_2fa`` still fit README width.
_GRAPH: Final[dict[Engine, dict[str, str]]] = {
    "graphviz": {"rankdir": "TB", "nodesep": "0.25", "ranksep": "0.45", "fontname": _FONT},
    "mermaid": {"rankdir": "TB"},
}
_NEWLINE: Final[dict[Engine, str]] = {"graphviz": "\\n", "mermaid": "<br/>"}
#: Characters in a caption's line (alone; among several), at most. Graphviz packs narrow captions
#: best; Mermaid's layers stack tall, so wider captions keep its picture close to 4:3.
_WIDTH: Final[dict[Engine, tuple[int, int]]] = {"graphviz": (24, 24), "mermaid": (36, 48)}
_BOX_WIDTH: Final = 50  # characters in a line listed inside a Graphviz state


class GraphvizMissingError(RuntimeError):
    """DOT, SVG or PNG was asked for, but a part of Graphviz is not installed."""

    def __init__(self, what: str = "dot") -> None:
        if what == "graphviz package":
            message = (
                "DOT needs the graphviz Python package: pip install 'keyturn[diagrams]', "
                "or choose --format mermaid"
            )
        else:
            message = (
                "SVG and PNG need Graphviz: install its dot program (Debian/Ubuntu: apt-get "
                "install graphviz; macOS: brew install graphviz) or pip install 'keyturn[svg]' "
                "(pygraphviz, which bundles Graphviz), or choose --format mermaid or dot"
            )
        super().__init__(message)


class _LabelledState(MachineState):
    """A state with a caption of its own (``transitions`` draws a state's ``label``)."""

    def __init__(self, *args: Any, label: str = "", **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(*args, **kwargs)
        self.label = label or self.name


class _Drawing(GraphMachine):
    """A ``GraphMachine`` that only draws: built for one picture, never triggered."""

    state_cls = _LabelledState


class _Shown:
    """The model whose state a picture highlights (``transitions`` styles it ``active``)."""


def _graph(
    engine: Engine, policy: Policy, highlight: State | None, note: str
) -> tuple[Picture, object]:
    """The picture and ``transitions``' graph of it (a ``graphviz.Digraph``, or Mermaid's)."""
    shown = picture(policy)
    inside = dict(shown.inside)
    if highlight is not None and note:
        inside[highlight.value] = (*inside.get(highlight.value, ()), f"this key: {note}")
    titles = {SHARED: "any live state"}
    if engine == "mermaid":  # a state with lines is two boxes high: the top row stays one
        titles[SHARED] = ": ".join((titles[SHARED], *inside.pop(SHARED)))
    states = []
    for name in map(str, ORDER):
        label = titles.get(name, name)
        if engine == "graphviz" and name in inside:  # name centred, then lines left-justified
            lines = (part for line in inside[name] for part in wrap(line, _BOX_WIDTH))
            label = label + "\\n" + "\\l".join(lines)
        states.append({"name": name, "label": label})
    machine = _Drawing(
        model=None,
        states=states,
        transitions=[
            {
                "trigger": a.reasons[0][0].value,
                "source": a.source,
                "dest": a.dest.value,
                "label": a.caption(_NEWLINE[engine], *_WIDTH[engine]),
            }
            for a in shown.arrows
        ],
        initial=INITIAL.value,
        auto_transitions=False,
        title=policy_caption(policy),
        graph_engine=engine,
    )
    styles = _STYLES[engine]
    if highlight is None:  # transitions marks the model's state as active: make that look plain
        styles = {**styles, "node": {**styles["node"], "active": styles["node"]["default"]}}
    machine.style_attributes = styles
    machine.machine_attributes = {"directed": "true", "strict": "false", **_GRAPH[engine]}
    machine.add_model(_Shown(), initial=(highlight or INITIAL).value)
    return Picture(shown.arrows, inside), machine.get_combined_graph()


def mermaid(policy: Policy | None = None, *, highlight: State | None = None, note: str = "") -> str:
    """The lifecycle as a Mermaid ``stateDiagram-v2``, as ``transitions`` draws it."""
    policy = policy or Policy()
    shown, graph = _graph("mermaid", policy, highlight, note)
    drawn = cast("Any", graph).draw(None)
    lines = str(drawn).splitlines()
    if lines and lines[0] == "---":  # transitions' title: replaced by ours, with the layout
        lines = lines[lines.index("---", 1) + 1 :]
    start = f"[*] --> {INITIAL.value}"
    lines = [line for line in lines if line.strip() != start]
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("direction")) + 1
    lines[at:at] = [f"  {start}: {Action.CREATE.value}"]
    lines += [f"  {name} : {line}" for name, inside in shown.inside.items() for line in inside]
    lines += [
        "  classDef shared fill:#f6f6f6,stroke-dasharray:5 5",
        f"  class {SHARED} shared",
        *(f"  {s.value} --> [*]" for s in State if s in TERMINAL),
    ]
    front = ["---", f'title: "{policy_caption(policy)}"', "config:"]
    front += [f"  {line}" for line in _MERMAID_CONFIG] + ["---"]
    return "\n".join(front + [line.rstrip() for line in lines]) + "\n"


def dot(policy: Policy | None = None, *, highlight: State | None = None, note: str = "") -> str:
    """The lifecycle as Graphviz DOT source, as ``transitions`` draws it (extra ``diagrams``)."""
    try:
        import graphviz  # noqa: F401, PLC0415 (transitions' Graphviz engine needs it)
    except ImportError:
        raise GraphvizMissingError("graphviz package") from None
    policy = policy or Policy()
    _, drawn = _graph("graphviz", policy, highlight, note)
    graph = cast("graphviz.Digraph", drawn)
    graph.name = "keyturn"
    graph.node("start", label="", shape="point", width="0.15")
    graph.edge("start", INITIAL.value, label=Action.CREATE.value)
    graph.node(SHARED, shape="note", style="dashed,filled", fillcolor="#f6f6f6")
    for state in (s for s in State if s in TERMINAL):
        graph.node(state.value, peripheries="2")
    with graph.subgraph() as row:  # activation starts from either: one rank, left to right
        row.attr(rank="same")
        row.edge(*(s.value for s in _SIDE_BY_SIDE), style="invis")
    return str(graph.source)


def _render(dot_source: str, fmt: Literal["svg", "png"]) -> bytes:
    """Render DOT source: Graphviz's ``dot`` on PATH, else pygraphviz (extra ``svg``)."""
    options = ["-Gdpi=192"] if fmt == "png" else []
    program = shutil.which("dot")
    if program is not None:
        done = subprocess.run(  # noqa: S603 (fixed program, source on stdin)
            [program, f"-T{fmt}", *options],
            input=dot_source.encode(),
            capture_output=True,
            check=True,
        )
        return done.stdout
    try:
        import pygraphviz  # noqa: PLC0415
    except ImportError:
        raise GraphvizMissingError from None
    return bytes(
        pygraphviz.AGraph(string=dot_source).draw(format=fmt, prog="dot", args=" ".join(options))
    )


def svg(dot_source: str) -> str:
    """Render DOT source to SVG."""
    return _render(dot_source, "svg").decode()


def png(dot_source: str) -> bytes:
    """Render DOT source to PNG, at twice the usual 96 dpi (sharp when shown 800 px wide)."""
    return _render(dot_source, "png")


def graphviz_version(svg_text: str) -> str:
    """The Graphviz version an SVG says it was made with ("" if it does not say)."""
    for line in svg_text.splitlines()[:6]:
        if "Generated by graphviz version" in line:
            return line.split("version", 1)[1].strip(" ->")
    return ""


#: The committed diagrams, as ``diagrams/<name>``.
FILES: Final = ("lifecycle.mmd", "lifecycle.dot", "lifecycle.svg", "lifecycle.png")


def render_all() -> dict[str, str | bytes]:
    """The lifecycle in every committed format (default policy), by file name."""
    source = dot()
    return {
        "lifecycle.mmd": mermaid(),
        "lifecycle.dot": source,
        "lifecycle.svg": svg(source),
        "lifecycle.png": png(source),
    }
