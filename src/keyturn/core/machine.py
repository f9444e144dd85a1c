"""The one ``transitions`` machine of the process, and the lookup table compiled from it.

* ``MACHINE`` (``model=None``) is built once from :func:`keyturn.core.lifecycle.edges`. At import
  it is *triggered* for every state, action and answer of the guards, on a throwaway model, and
  the edge it took is kept in ``ROUTES``. :mod:`keyturn.diagrams` has a ``GraphMachine`` draw
  the same answers. The service, the diagrams and the docs cannot disagree with the machine.
* Triggering a ``transitions`` event costs about 10 µs; a dict lookup a fraction of one. The hot
  path asks :func:`route`, which reads ``ROUTES`` and never touches a machine.
* Only ``transitions``' documented API is used: ``Machine(...)`` with transition dicts (an
  an ``after`` callback records the edge taken), ``get_triggers``, ``add_model``/``remove_model``,
  ``set_state`` and the model's ``trigger``.
"""

from __future__ import annotations

import functools
import itertools
from typing import TYPE_CHECKING, Final, NamedTuple

from transitions import Machine

from keyturn.core.lifecycle import INITIAL, Action, Condition, Edge, State, edges

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

#: The edges the machine took, in order: each edge's ``after`` callback appends itself.
_TAKEN: Final[list[Edge]] = []

#: The one machine of the process: the definition the table is compiled from, by triggering it.
MACHINE: Final = Machine(
    model=None,
    states=[s.value for s in State],
    transitions=[e.config(functools.partial(_TAKEN.append, e)) for e in edges()],
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


class Route(NamedTuple):
    """The guard that decides (or ``None``), the edge taken when it holds and the edge when not.

    An edge is ``None`` where the action goes nowhere; without a guard both are the one edge.
    """

    guard: Condition | None
    held: Edge | None
    otherwise: Edge | None

    def edge(self, facts: Callable[[str], bool] | None) -> Edge | None:
        """The edge taken for these facts (asked only if there is a guard; ``None``: no facts)."""
        if self.guard is None:
            return self.held
        if facts is None:
            return None
        return self.held if facts(self.guard) else self.otherwise


def _compile(machine: Machine) -> dict[tuple[State, Action], Route]:
    """Trigger ``machine`` for every state, action and answer of the guards; keep the edge taken."""
    probe = _Probe()
    machine.add_model(probe, initial=INITIAL.value)
    answers = [
        dict(zip(Condition, values, strict=True))
        for values in itertools.product((True, False), repeat=len(Condition))
    ]

    def taken(state: State, action: Action, answer: Mapping[Condition, bool]) -> Edge | None:
        for guard, value in answer.items():
            setattr(probe, guard.value, value)
        machine.set_state(state.value, model=probe)
        _TAKEN.clear()
        moved = probe.trigger(action.value)
        return _TAKEN[-1] if moved and _TAKEN else None

    table: dict[tuple[State, Action], Route] = {}
    try:
        for state in State:
            for action in map(Action, machine.get_triggers(state.value)):
                seen = [(a, taken(state, action, a)) for a in answers]
                table[state, action] = _route_of(state, action, seen)
    finally:
        machine.remove_model(probe)
    return table


def _route_of(
    state: State, action: Action, seen: Sequence[tuple[Mapping[Condition, bool], Edge | None]]
) -> Route:
    """The one guard (or none) that explains every edge taken ``seen``; more is refused."""
    for guard in (None, *Condition):
        held = {id(e): e for a, e in seen if guard is None or a[guard]}
        other = {id(e): e for a, e in seen if guard is not None and not a[guard]}
        if len(held) == 1 and len(other) <= 1:
            edge = next(iter(held.values()))
            return Route(guard, edge, next(iter(other.values())) if other else edge)
    msg = f"{action} from {state}: no single guard decides where it goes"
    raise LifecycleDefinitionError(msg)


#: ``{(state, action): Route(guard or None, edge when it holds, edge when not)}``, from ``MACHINE``.
ROUTES: Final = _compile(MACHINE)


def allowed_actions(state: State) -> tuple[Action, ...]:
    """The actions that have an edge out of ``state``, in declaration order."""
    return tuple(a for a in Action if (state, a) in ROUTES)


def sources_of(action: Action) -> tuple[State, ...]:
    """The states ``action`` may start from."""
    return tuple(s for s in State if (s, action) in ROUTES)


def destinations(state: State, action: Action) -> frozenset[State]:
    """Every state ``action`` can lead to from ``state``, whatever its guard answers."""
    found = ROUTES.get((state, action))
    edges = () if found is None else (found.held, found.otherwise)
    return frozenset(e.dest for e in edges if e is not None)


def route(state: State, action: Action, facts: Callable[[str], bool] | None = None) -> Edge | None:
    """The edge ``action`` takes from ``state``, as the machine answered for these facts.

    ``facts(guard_name)`` answers the route's guard; it is asked only when there is one.
    ``None`` means the action has no edge out of ``state`` (or none whose guard holds, or the
    route has a guard and no facts were given).
    """
    found = ROUTES.get((state, action))
    return None if found is None else found.edge(facts)
