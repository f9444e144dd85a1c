"""The lifecycle table: compiled by triggering the one transitions machine, and equal to it.

These tests trigger ``MACHINE`` themselves, on a model whose guards are named methods, and hold
the table to what the machine does.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from typing import TYPE_CHECKING

import pytest
from transitions import Machine, MachineError

from keyturn.core import lifecycle, machine
from keyturn.core.lifecycle import ACTION_DOCS, Action, Condition, Edge, State
from keyturn.core.machine import (
    MACHINE,
    ROUTES,
    LifecycleDefinitionError,
    destinations,
    route,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


class _Key:
    """A throwaway model for the shared machine: one named guard method per condition."""

    state: str

    def __init__(self, facts: dict[str, bool]) -> None:
        self.facts = facts

    def code_accepted(self) -> bool:
        """The code entered is the right one, in time."""
        return self.facts["code_accepted"]

    def came_from_disabled(self) -> bool:
        """Activation started from disabled."""
        return self.facts["came_from_disabled"]

    def direct_enable(self) -> bool:
        """The policy lets enable skip the code."""
        return self.facts["direct_enable"]

    def edit_deactivates(self) -> bool:
        """The edit changes scope, whitelist or features, and the policy deactivates on that."""
        return self.facts["edit_deactivates"]

    def code_reusable(self) -> bool:
        """The key's code is still live and its resend is not open yet."""
        return self.facts["code_reusable"]


FACT_SETS = [
    dict(zip([c.value for c in Condition], values, strict=True))
    for values in itertools.product([False, True], repeat=len(Condition))
]


@pytest.fixture(name="key")
def _key() -> Iterator[_Key]:
    """A model added to MACHINE for one test, and removed after it."""
    key = _Key(dict.fromkeys(Condition, False))
    MACHINE.add_model(key)
    yield key
    MACHINE.remove_model(key)


def _trigger(key: _Key, state: State, action: Action, facts: dict[str, bool]) -> State | None:
    """Where the machine takes ``key`` from ``state`` (``None``: refused, or no guard held)."""
    key.facts = facts
    MACHINE.set_state(state.value, model=key)
    try:
        moved = getattr(key, "trigger")(action.value)  # noqa: B009 (bound by add_model)
    except MachineError:
        return None
    return State(key.state) if moved else None


class TestCompiledTable:
    def test_guard_methods_are_the_conditions(self) -> None:
        """The test model has exactly one guard method per named condition."""
        methods = {n for n, _ in inspect.getmembers(_Key, inspect.isfunction) if n[0] != "_"}
        assert methods == {c.value for c in Condition}

    def test_every_edge_triggers_on_the_machine(self, key: _Key) -> None:
        """Each edge, triggered on the machine with its guard holding, lands where it says, and route() agrees."""
        for edge in lifecycle.edges():
            for facts in FACT_SETS:
                if edge.when is not None and not facts[edge.when]:
                    continue
                if edge.unless is not None and facts[edge.unless]:
                    continue
                assert _trigger(key, edge.source, edge.action, facts) is edge.dest, edge
                assert route(edge.source, edge.action, facts.__getitem__) is edge, edge

    @pytest.mark.parametrize("state", list(State))
    @pytest.mark.parametrize("action", [a for a in Action if a is not Action.CREATE])
    def test_route_agrees_with_triggering_the_machine(
        self, key: _Key, state: State, action: Action
    ) -> None:
        """For every state, action and combination of facts, route() answers what the machine does."""
        for facts in FACT_SETS:
            expected = _trigger(key, state, action, facts)
            taken = route(state, action, facts.__getitem__)
            assert (None if taken is None else taken.dest) == expected, facts

    def test_machine_has_no_models(self) -> None:
        """The process-wide machine keeps no model: compiling the table removed its probe."""
        assert MACHINE.models == []

    def test_two_deciding_guards_are_refused(self) -> None:
        """A machine where two guards decide one action from one state cannot be compiled."""
        rival = (
            Edge(Action.ENABLE, State.DISABLED, State.ACTIVE, when=Condition.DIRECT_ENABLE),
            Edge(Action.ENABLE, State.DISABLED, State.PENDING_2FA, when=Condition.CODE_ACCEPTED),
        )
        one = Machine(
            model=None,
            states=[s.value for s in State],
            transitions=[e.config(functools.partial(machine._TAKEN.append, e)) for e in rival],
            initial="created",
            auto_transitions=False,
        )
        with pytest.raises(LifecycleDefinitionError, match="no single guard decides"):
            machine._compile(one)

    def test_removed_is_terminal(self) -> None:
        """No action leads out of removed."""
        assert machine.allowed_actions(State.REMOVED) == ()

    def test_every_live_state_can_be_removed(self) -> None:
        """Remove leads from every live state to removed."""
        for state in lifecycle.LIVE_STATES:
            removal = route(state, Action.REMOVE)
            assert removal is not None
            assert removal.dest is State.REMOVED

    def test_every_action_is_documented(self) -> None:
        """Each action has a description for the README and the command line."""
        assert set(ACTION_DOCS) == set(Action)

    def test_every_edge_is_in_the_table(self) -> None:
        """Every declared edge's destination is one the compiled table can route to."""
        for e in lifecycle.edges():
            assert e.dest in destinations(e.source, e.action), e

    def test_table_holds_only_declared_edges(self) -> None:
        """Every destination in the table is a declared edge: the machine adds nothing."""
        declared = {(e.source, e.action, e.dest) for e in lifecycle.edges()}
        for state, action in ROUTES:
            for dest in destinations(state, action):
                assert (state, action, dest) in declared

    def test_unknown_pair_routes_nowhere(self) -> None:
        """An action with no edge out of a state routes to None."""
        assert route(State.CREATED, Action.VERIFY_CODE) is None
        assert route(State.ACTIVE, Action.ENABLE) is None
        assert destinations(State.ACTIVE, Action.ENABLE) == frozenset()

    def test_conditional_edge_without_facts_routes_nowhere(self) -> None:
        """An action whose edges all need a condition routes nowhere when no facts are given."""
        assert route(State.PENDING_2FA, Action.CANCEL_ACTIVATION) is None
