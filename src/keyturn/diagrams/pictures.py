"""What a picture of the lifecycle shows under a policy: arrows, and the lines in each box.

Decided from the machine's answers (``ROUTES``, compiled by triggering
:data:`~keyturn.core.lifecycle.MACHINE`): a guard the policy settles (``direct_enable``;
``edit_deactivates`` when it is off) is answered by the policy, a guard about the request is
shown both ways. Actions that keep a state are listed inside it, as UML lists internal
transitions, rather than drawn as loops; what every live state shares is listed once, in the
``SHARED`` box, with one arrow for ``remove``. Of two edges of one action between the same
states, one without a caption is drawn as its twin (ACTIVATE reopening the dialog with the live
code is drawn as ACTIVATE sending one). This module decides what is shown and draws nothing:
:mod:`keyturn.diagrams.drawing` has ``transitions`` draw it. No I/O.
"""

from __future__ import annotations

from typing import Final

import attrs

from keyturn.core.decide import routed
from keyturn.core.lifecycle import LIVE_STATES, Action, Condition, Edge, State
from keyturn.core.machine import ROUTES
from keyturn.core.policy import Policy

#: Where the drawing puts the states: a key's way toward ``active``. The box standing for every
#: live state comes before ``removed``, so its one ``remove`` arrow points forward too.
SHARED: Final = "any_live_state"
ORDER: Final = (
    State.CREATED,
    State.SECRET_ACKNOWLEDGED,
    State.DISABLED,
    State.PENDING_2FA,
    State.ACTIVE,
    SHARED,
    State.REMOVED,
)


def guard_answers(policy: Policy) -> dict[Condition, tuple[bool, ...]]:
    """How each guard can answer under ``policy``. The README's table shows the first answer."""
    return {
        Condition.CODE_ACCEPTED: (True, False),
        Condition.CAME_FROM_DISABLED: (False, True),
        Condition.DIRECT_ENABLE: (policy.direct_enable,),
        Condition.EDIT_DEACTIVATES: (True, False) if policy.edit_deactivates else (False,),
        Condition.CODE_REUSABLE: (False, True),
    }


def policy_caption(policy: Policy) -> str:
    """The policy switches a picture is drawn under, in one line."""
    on = {True: "on", False: "off"}
    return (
        f"policy: direct_enable {on[policy.direct_enable]}, "
        f"edit_deactivates {on[policy.edit_deactivates]}"
    )


@attrs.frozen
class Arrow:
    """One arrow of a picture: from a state (or the shared box) to another state, and why."""

    source: str
    dest: State
    reasons: tuple[tuple[Action, str], ...]  # (action, its caption under the policy)

    def caption(self, newline: str, width: int, line_width: int) -> str:
        """``action: why`` lines, actions sharing a why on one line.

        A line longer than ``width`` (an arrow with one why) or ``line_width`` (with several) is
        wrapped; where that takes no more lines, it breaks after the actions' colon.
        """
        whys: dict[str, list[str]] = {}
        for action, why in self.reasons:
            whys.setdefault(why, []).append(action.value)
        limit = width if len(whys) == 1 else line_width
        lines: list[str] = []
        for why, actions in whys.items():
            names = ", ".join(actions)
            whole = wrap(": ".join(filter(None, (names, why))), limit)
            at_colon = [f"{names}:", *wrap(why, limit)]
            lines += at_colon if why and len(whole) > 1 and len(at_colon) <= len(whole) else whole
        return newline.join(lines)


@attrs.frozen
class Picture:
    """What a picture shows: the arrows between states, and what each box lists inside.

    Actions that keep a state are listed inside it (as UML lists internal transitions), not
    drawn as loops. One every live state allows, and that keeps each state no arrow of it leaves,
    is listed once, in the ``SHARED`` box ("unless an arrow says otherwise"); a state it may both
    keep and leave lists it too (``edit`` in ``active`` under the default policy).
    """

    arrows: tuple[Arrow, ...]
    inside: dict[str, tuple[str, ...]]


def picture(policy: Policy) -> Picture:
    """The arrows ``MACHINE`` takes under ``policy``, with what every live state shares boxed."""
    answers, words = guard_answers(policy), policy.describe()
    taken: list[Edge] = []
    for route in ROUTES.values():
        if route.guard is None:
            options = [route.held]
        else:
            options = [route.held if a else route.otherwise for a in answers[route.guard]]
        taken += [e for e in dict.fromkeys(options) if e is not None]

    def sources(action: Action, dest: State | None) -> set[State]:
        return {
            e.source
            for e in taken
            if e.action is action and e.dest is (e.source if dest is None else dest)
        }

    def why(edge: Edge) -> str:
        caption: str = edge.label.format(**words)
        return caption

    live = set(LIVE_STATES)
    moved = {(e.source, e.action) for e in taken if e.dest is not e.source}
    # Boxed: allowed in every live state, and keeping it wherever no arrow of it leaves.
    stays = [
        a
        for a in Action
        if (kept := sources(a, None)) and all(s in kept or (s, a) in moved for s in live)
    ]
    leaves = [(a, d) for a in Action for d in State if d not in live and sources(a, d) == live]
    merged: dict[tuple[str, State], list[tuple[Action, str]]] = {}
    inside: dict[str, list[str]] = {}
    for edge in taken:
        state, action, dest = edge.source, edge.action, edge.dest
        boxed = action in stays and dest is state and (state, action) not in moved
        if boxed or (action, dest) in leaves:
            continue
        reason = (action, why(edge))
        if not reason[1] and any(
            e.action is action and e.source is state and e.dest is dest and e.label for e in taken
        ):
            continue  # an edge without a caption beside a twin that has one: drawn once
        if dest is state:
            inside.setdefault(state.value, []).append(": ".join(filter(None, reason)))
        else:
            merged.setdefault((state.value, dest), []).append(reason)
    for action, dest in leaves:
        first = next(
            e for e in taken if (e.source, e.action, e.dest) == (LIVE_STATES[0], action, dest)
        )
        merged.setdefault((SHARED, dest), []).append((action, why(first)))
    order = [str(s) for s in ORDER]
    arrows = sorted(
        (Arrow(s, d, tuple(r)) for (s, d), r in merged.items()),
        key=lambda a: (order.index(a.source), order.index(a.dest)),
    )
    unless = any(a in stays for arrow in arrows for a, _ in arrow.reasons)
    shared = ", ".join(a.value for a in stays) + " keep the state"
    inside[SHARED] = [shared + (", unless an arrow says otherwise" if unless else "")]
    return Picture(tuple(arrows), {k: tuple(v) for k, v in inside.items()})


def wrap(text: str, width: int) -> list[str]:
    """``text`` broken at spaces into as few lines as ``width`` allows, as even as they can be."""
    words = text.split()

    def greedy(limit: int) -> list[str]:
        lines = [""]
        for word in words:
            if lines[-1] and len(lines[-1]) + 1 + len(word) > limit:
                lines.append("")
            lines[-1] = f"{lines[-1]} {word}".strip()
        return lines

    fewest = len(greedy(width))
    return next(lines for limit in range(1, width + 1) if len(lines := greedy(limit)) == fewest)


def markdown_table(policy: Policy | None = None) -> str:
    """The README's table: for each state, what each action does (default policy)."""
    answers = guard_answers(policy or Policy())
    actions = [a for a in Action if a is not Action.CREATE]
    header = "| state | " + " | ".join(f"`{a.value}`" for a in actions) + " |"
    rule = "|---" * (len(actions) + 1) + "|"
    rows = [header, rule]
    for s in State:
        cells = []
        for a in actions:
            route = ROUTES.get((s, routed(a, policy or Policy())))
            edge = None if route is None else route.edge(lambda g: answers[Condition(g)][0])
            dest = None if edge is None else edge.dest
            if dest is None:
                cells.append("refused")
            elif dest is s:
                cells.append("stays")
            else:
                cells.append(f"→ `{dest.value}`")
        rows.append(f"| `{s.value}` | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"
