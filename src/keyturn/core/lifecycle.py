"""The key lifecycle: every state, every action, every edge.

Everything that decides where a key may go lives here, and nowhere else. Rules of this module
(after h11's ``_state.py``):

* The edges are defined once, in ``_EDGES``, and one ``transitions`` machine is built from them
  for the whole process (``MACHINE``, ``model=None``). At import the machine is *triggered* for
  every state, action and answer of the guards, on a throwaway model, and where it went is kept
  in the lookup table ``ROUTES``. :mod:`keyturn.diagrams` has a ``GraphMachine`` draw the same
  answers. The service, the diagrams and the docs cannot disagree with the machine.
* Triggering a ``transitions`` event costs about 10 µs; a dict lookup a fraction of one. The hot
  path asks :func:`route`, which reads ``ROUTES`` and never touches a machine.
* A *guard* (:class:`Condition`) is a named fact about a request (``code_accepted``...), named
  once, in :class:`Condition`, and attached to its edges by that name: the machine asks the
  model's method (or attribute) of that name. At most one guard decides between the edges of one
  action from one state, so a route is a guard and its two answers. Time rules and counters are
  not guards: they refuse outright, in :mod:`keyturn.core.time_rules` and
  :mod:`keyturn.core.decisions`.
* Only ``transitions``' documented API is used: ``Machine(...)`` with transition dicts,
  ``get_triggers``, ``add_model``/``remove_model``, ``set_state`` and the model's ``trigger``.
* No I/O, no clock, no policy values here. Labels that mention numbers are templates, filled in
  from a :class:`~keyturn.core.policy.Policy` by whoever draws them.
"""

from __future__ import annotations

import enum
import itertools
from typing import TYPE_CHECKING, Final

import attrs
from transitions import Machine

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


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
    """The guards: facts about a request that choose between the edges of one action."""

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

    def config(self) -> dict[str, str | list[str]]:
        """This edge as ``transitions`` takes a transition: the guard attached by its name."""
        config: dict[str, str | list[str]] = {"trigger": self.action.value}
        config |= {"source": self.source.value, "dest": self.dest.value}
        for key, guard in (("conditions", self.when), ("unless", self.unless)):
            if guard is not None:
                config[key] = [guard.value]
        return config


def _from_each(
    action: Action, sources: tuple[State, ...], *, to: State | None = None, label: str = ""
) -> list[Edge]:
    """Edges of ``action`` from each source; to ``to``, or back to the source itself."""
    return [Edge(action, s, to if to is not None else s, label=label) for s in sources]


def _guarded(
    action: Action,
    source: State,
    guard: Condition,
    held: tuple[State, str],
    otherwise: tuple[State, str],
) -> list[Edge]:
    """The two edges of ``action`` from ``source``: ``(dest, label)`` if ``guard`` holds, or not."""
    return [
        Edge(action, source, held[0], when=guard, label=held[1]),
        Edge(action, source, otherwise[0], unless=guard, label=otherwise[1]),
    ]


_P, _CODE_SENT = State.PENDING_2FA, "code sent, valid {code_ttl}"
_WAITING = (State.SECRET_ACKNOWLEDGED, State.DISABLED)  # where activation can start
_RESEND = "after {resend_after}, max {max_sends} per {send_window}"

_EDGES: Final[tuple[Edge, ...]] = (
    Edge(Action.ACKNOWLEDGE_SECRET, State.CREATED, State.SECRET_ACKNOWLEDGED, label="secret saved"),
    *_from_each(Action.REQUEST_ACTIVATION, _WAITING, to=_P, label=_CODE_SENT),
    Edge(Action.RESEND_CODE, _P, _P, label=_RESEND),
    *_guarded(
        Action.VERIFY_CODE,
        _P,
        Condition.CODE_ACCEPTED,
        (State.ACTIVE, "right code within {code_ttl}"),
        (_P, "wrong code, max {max_attempts} per code"),
    ),
    *_guarded(
        Action.CANCEL_ACTIVATION,
        _P,
        Condition.CAME_FROM_DISABLED,
        (State.DISABLED, "dialog closed"),
        (State.SECRET_ACKNOWLEDGED, "dialog closed"),
    ),
    Edge(Action.DISABLE, State.ACTIVE, State.DISABLED, label="at once"),
    *(
        edge
        for source in _WAITING
        for edge in _guarded(
            Action.ENABLE,
            source,
            Condition.DIRECT_ENABLE,
            (State.ACTIVE, "no code"),
            (_P, _CODE_SENT),
        )
    ),
    *_guarded(
        Action.EDIT,
        State.ACTIVE,
        Condition.EDIT_DEACTIVATES,
        (State.DISABLED, "scope, whitelist or features changed"),
        (State.ACTIVE, ""),
    ),
    *_from_each(Action.EDIT, tuple(s for s in LIVE_STATES if s is not State.ACTIVE)),
    *_from_each(Action.RESET_SECRET, LIVE_STATES),
    *_from_each(Action.UNLOCK_ACTIVATION, LIVE_STATES),
    *_from_each(Action.REMOVE, LIVE_STATES, to=State.REMOVED, label="permanent"),
)


def edges() -> tuple[Edge, ...]:
    """Every edge of the lifecycle, in definition order."""
    return _EDGES


#: The one machine of the process: the definition the table is compiled from, by triggering it.
MACHINE: Final = Machine(
    model=None,
    states=[s.value for s in State],
    transitions=[e.config() for e in _EDGES],
    initial=INITIAL.value,
    auto_transitions=False,
    ignore_invalid_triggers=False,
)


class LifecycleDefinitionError(Exception):
    """The edges break a rule of this module: a programming error, raised at import."""


class _Probe:
    """A throwaway model to trigger ``MACHINE`` on; each guard is an attribute of its name.

    ``transitions`` takes a guard attribute that is not callable as its value.
    """

    state: str
    trigger: Callable[[str], bool]  # bound by ``add_model``


#: A route: the guard that decides (or ``None``), where the action goes when it holds and where
#: when it does not (``None``: nowhere). Without a guard, both are the one destination.
Route = tuple[Condition | None, State | None, State | None]


def _compile(machine: Machine) -> dict[tuple[State, Action], Route]:
    """Trigger ``machine`` for every state, action and answer of the guards; keep where it went."""
    probe = _Probe()
    machine.add_model(probe, initial=INITIAL.value)
    answers = [
        dict(zip(Condition, values, strict=True))
        for values in itertools.product((True, False), repeat=len(Condition))
    ]

    def outcome(state: State, action: Action, answer: Mapping[Condition, bool]) -> State | None:
        for guard, value in answer.items():
            setattr(probe, guard.value, value)
        machine.set_state(state.value, model=probe)
        return State(probe.state) if probe.trigger(action.value) else None

    table: dict[tuple[State, Action], Route] = {}
    try:
        for state in State:
            for action in map(Action, machine.get_triggers(state.value)):
                seen = [(a, outcome(state, action, a)) for a in answers]
                table[state, action] = _route_of(state, action, seen)
    finally:
        machine.remove_model(probe)
    return table


def _route_of(
    state: State, action: Action, seen: Sequence[tuple[Mapping[Condition, bool], State | None]]
) -> Route:
    """The one guard (or none) that explains every outcome ``seen``; more is refused."""
    for guard in (None, *Condition):
        held = {dest for a, dest in seen if guard is None or a[guard]}
        otherwise = {dest for a, dest in seen if guard is not None and not a[guard]}
        if len(held) == 1 and len(otherwise) <= 1:
            dest = held.pop()
            return guard, dest, otherwise.pop() if otherwise else dest
    msg = f"{action} from {state}: no single guard decides where it goes"
    raise LifecycleDefinitionError(msg)


#: ``{(state, action): (guard or None, dest when it holds, dest when not)}``, from ``MACHINE``.
ROUTES: Final = _compile(MACHINE)


def allowed_actions(state: State) -> tuple[Action, ...]:
    """The actions that have an edge out of ``state``, in declaration order."""
    return tuple(a for a in Action if (state, a) in ROUTES)


def sources_of(action: Action) -> tuple[State, ...]:
    """The states ``action`` may start from."""
    return tuple(s for s in State if (s, action) in ROUTES)


def destinations(state: State, action: Action) -> frozenset[State]:
    """Every state ``action`` can lead to from ``state``, whatever its guard answers."""
    _, held, otherwise = ROUTES.get((state, action), (None, None, None))
    return frozenset(d for d in (held, otherwise) if d is not None)


def route(state: State, action: Action, facts: Callable[[str], bool] | None = None) -> State | None:
    """Where ``action`` takes a key in ``state``, as the machine answered for these facts.

    ``facts(guard_name)`` answers the route's guard; it is asked only when there is one.
    ``None`` means the action has no edge out of ``state`` (or none whose guard holds, or the
    route has a guard and no facts were given).
    """
    found = ROUTES.get((state, action))
    if found is None:
        return None
    guard, when_held, otherwise = found
    if guard is None:
        return when_held
    if facts is None:
        return None
    return when_held if facts(guard) else otherwise
