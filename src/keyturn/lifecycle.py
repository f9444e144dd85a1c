"""The key lifecycle: every state, every action, every edge.

Everything that decides where a key may go lives here, and nowhere else.

Rules of this module (after h11's ``_state.py``):

* The edges are defined once, in ``_EDGES``. From them one ``transitions`` machine is built for
  the whole process (``MACHINE``, ``model=None``; no model is ever added to it), and from that
  machine the lookup table ``ROUTES`` is compiled at import. The service, the diagrams and the
  docs all read the machine or the table compiled from it, so they cannot disagree.
* Triggering a ``transitions`` event costs about 10 µs; a dict lookup costs a fraction of one.
  The hot path therefore asks :func:`route`, which reads ``ROUTES``; a test checks, for every
  state and action, that ``ROUTES`` answers what triggering ``MACHINE`` answers.
* An edge may carry a *condition*, a named fact about the request (``code_accepted``,
  ``direct_enable``...). The caller computes the facts; this module only picks the first edge
  whose condition holds. Time rules and counters are not conditions: they refuse the action
  outright, and live in :mod:`keyturn.time_rules` and :mod:`keyturn.decisions`.
* No I/O, no clock, no policy values here. Labels that mention numbers are templates, filled in
  from a :class:`~keyturn.policy.Policy` by whoever draws them.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

import attrs
from transitions import Machine

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


class State(enum.StrEnum):
    """Where a key is in its life."""

    CREATED = "created"
    SECRET_ACKNOWLEDGED = "secret_acknowledged"  # noqa: S105 (a state name, not a password)
    PENDING_2FA = "pending_2fa"
    ACTIVE = "active"
    DISABLED = "disabled"
    REMOVED = "removed"


class Action(enum.StrEnum):
    """What a caller can ask of a key. ``create`` brings a key into ``created``."""

    CREATE = "create"
    ACKNOWLEDGE_SECRET = "acknowledge_secret"  # noqa: S105 (an action name)
    REQUEST_ACTIVATION = "request_activation"
    RESEND_CODE = "resend_code"
    VERIFY_CODE = "verify_code"
    CANCEL_ACTIVATION = "cancel_activation"
    DISABLE = "disable"
    ENABLE = "enable"
    EDIT = "edit"
    RESET_SECRET = "reset_secret"  # noqa: S105 (an action name)
    REMOVE = "remove"
    UNLOCK_ACTIVATION = "unlock_activation"


class Condition(enum.StrEnum):
    """Facts about a request that choose between edges of one action."""

    CODE_ACCEPTED = "code_accepted"
    CAME_FROM_DISABLED = "came_from_disabled"
    DIRECT_ENABLE = "direct_enable"
    EDIT_DEACTIVATES = "edit_deactivates"


INITIAL: Final = State.CREATED
TERMINAL: Final = frozenset({State.REMOVED})
LIVE_STATES: Final = tuple(s for s in State if s not in TERMINAL)

#: What each action is for, in a person's words (README, ``keyturn`` help, diagrams).
ACTION_DOCS: Final[Mapping[Action, str]] = {
    Action.CREATE: "new key; the secret is handed out in this one answer",
    Action.ACKNOWLEDGE_SECRET: 'the person confirms "I saved the secret"',
    Action.REQUEST_ACTIVATION: "ACTIVATE: a code is sent to the owner",
    Action.RESEND_CODE: "a fresh code replaces the last one",
    Action.VERIFY_CODE: "the owner enters the code",
    Action.CANCEL_ACTIVATION: "the owner closes the code dialog",
    Action.DISABLE: "deactivate, at once",
    Action.ENABLE: "activate an acknowledged or disabled key (directly, under the policy)",
    Action.EDIT: "change name, scope, IP whitelist or features",
    Action.RESET_SECRET: "a new secret, shown once; the old one stops working at once",
    Action.REMOVE: "permanent; the record stays for audit",
    Action.UNLOCK_ACTIVATION: "an operator clears the wrong-code lock",
}


@attrs.frozen
class Edge:
    """One arrow of the lifecycle.

    ``when``/``unless`` name the condition that must hold (or must not); ``label`` is the arrow's
    caption, a template whose ``{fields}`` are filled from the policy's ``describe()``.
    """

    action: Action
    source: State
    dest: State
    when: Condition | None = None
    unless: Condition | None = None
    label: str = ""


def _from_each(
    action: Action, sources: tuple[State, ...], *, to: State | None = None, label: str = ""
) -> list[Edge]:
    """Edges of ``action`` from each source; to ``to``, or back to the source itself."""
    return [Edge(action, s, to if to is not None else s, label=label) for s in sources]


_EDGES: Final[tuple[Edge, ...]] = (
    Edge(Action.ACKNOWLEDGE_SECRET, State.CREATED, State.SECRET_ACKNOWLEDGED, label="secret saved"),
    Edge(
        Action.REQUEST_ACTIVATION,
        State.SECRET_ACKNOWLEDGED,
        State.PENDING_2FA,
        label="code sent, valid {code_ttl}",
    ),
    Edge(
        Action.REQUEST_ACTIVATION,
        State.DISABLED,
        State.PENDING_2FA,
        label="code sent, valid {code_ttl}",
    ),
    Edge(
        Action.RESEND_CODE,
        State.PENDING_2FA,
        State.PENDING_2FA,
        label="resend after {resend_after}, max {max_sends} per {send_window}",
    ),
    Edge(
        Action.VERIFY_CODE,
        State.PENDING_2FA,
        State.ACTIVE,
        when=Condition.CODE_ACCEPTED,
        label="right code within {code_ttl}",
    ),
    Edge(
        Action.VERIFY_CODE,
        State.PENDING_2FA,
        State.PENDING_2FA,
        unless=Condition.CODE_ACCEPTED,
        label="wrong code, max {max_attempts} per code",
    ),
    Edge(
        Action.CANCEL_ACTIVATION,
        State.PENDING_2FA,
        State.DISABLED,
        when=Condition.CAME_FROM_DISABLED,
        label="dialog closed",
    ),
    Edge(
        Action.CANCEL_ACTIVATION,
        State.PENDING_2FA,
        State.SECRET_ACKNOWLEDGED,
        unless=Condition.CAME_FROM_DISABLED,
        label="dialog closed",
    ),
    Edge(Action.DISABLE, State.ACTIVE, State.DISABLED, label="at once"),
    Edge(
        Action.ENABLE,
        State.SECRET_ACKNOWLEDGED,
        State.ACTIVE,
        when=Condition.DIRECT_ENABLE,
        label="direct enable (policy)",
    ),
    Edge(
        Action.ENABLE,
        State.SECRET_ACKNOWLEDGED,
        State.PENDING_2FA,
        unless=Condition.DIRECT_ENABLE,
        label="code sent, valid {code_ttl}",
    ),
    Edge(
        Action.ENABLE,
        State.DISABLED,
        State.ACTIVE,
        when=Condition.DIRECT_ENABLE,
        label="direct enable (policy)",
    ),
    Edge(
        Action.ENABLE,
        State.DISABLED,
        State.PENDING_2FA,
        unless=Condition.DIRECT_ENABLE,
        label="code sent, valid {code_ttl}",
    ),
    Edge(
        Action.EDIT,
        State.ACTIVE,
        State.DISABLED,
        when=Condition.EDIT_DEACTIVATES,
        label="scope, whitelist or features changed",
    ),
    Edge(Action.EDIT, State.ACTIVE, State.ACTIVE, unless=Condition.EDIT_DEACTIVATES),
    *_from_each(Action.EDIT, tuple(s for s in LIVE_STATES if s is not State.ACTIVE)),
    *_from_each(Action.RESET_SECRET, LIVE_STATES),
    *_from_each(Action.UNLOCK_ACTIVATION, LIVE_STATES),
    *_from_each(Action.REMOVE, LIVE_STATES, to=State.REMOVED, label="permanent"),
)


def edges() -> tuple[Edge, ...]:
    """Every edge of the lifecycle, in definition order."""
    return _EDGES


def _build_machine() -> Machine:
    machine = Machine(
        model=None,
        states=[s.value for s in State],
        initial=INITIAL.value,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )
    for e in _EDGES:
        machine.add_transition(
            e.action.value,
            e.source.value,
            e.dest.value,
            conditions=[e.when.value] if e.when else None,
            unless=[e.unless.value] if e.unless else None,
        )
    return machine


#: The one machine of the process. It has no models: it is the definition the table is read from.
MACHINE: Final = _build_machine()

_Route = tuple[tuple[str | None, bool, State], ...]


def _compile(machine: Machine) -> dict[tuple[State, Action], _Route]:
    """Read every transition back out of ``machine`` into ``{(state, action): options}``."""
    table: dict[tuple[State, Action], _Route] = {}
    for name, event in machine.events.items():
        action = Action(name)
        for source, transitions in event.transitions.items():
            options: list[tuple[str | None, bool, State]] = []
            for t in transitions:
                conds = [(str(c.func), bool(c.target)) for c in t.conditions]
                cond, target = conds[0] if conds else (None, True)
                options.append((cond, target, State(str(t.dest))))
            table[State(source), action] = tuple(options)
    return table


#: ``{(state, action): ((condition or None, must_hold, dest), ...)}``, compiled from ``MACHINE``.
ROUTES: Final = _compile(MACHINE)


def allowed_actions(state: State) -> tuple[Action, ...]:
    """The actions that have an edge out of ``state``, in declaration order."""
    return tuple(a for a in Action if (state, a) in ROUTES)


def sources_of(action: Action) -> tuple[State, ...]:
    """The states ``action`` may start from."""
    return tuple(s for s in State if (s, action) in ROUTES)


def route(state: State, action: Action, facts: Callable[[str], bool] | None = None) -> State | None:
    """Where ``action`` takes a key in ``state``: the first edge whose condition holds.

    ``facts(condition_name)`` answers the conditions; it is asked only when an edge has one.
    ``None`` means the action has no edge out of ``state`` (or no condition held).
    """
    options = ROUTES.get((state, action))
    if options is None:
        return None
    for cond, must_hold, dest in options:
        if cond is None or (facts is not None and facts(cond) is must_hold):
            return dest
    return None
