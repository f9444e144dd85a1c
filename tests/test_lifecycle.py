"""The lifecycle table: compiled from the one transitions machine, and equal to it."""

from __future__ import annotations

import itertools

import pytest
from transitions import MachineError

from keyturn import lifecycle
from keyturn.lifecycle import ACTION_DOCS, MACHINE, ROUTES, Action, Condition, State, route


class _Model:
    """A throwaway model to trigger the shared machine with, never registered."""

    def __init__(self, state: State, facts: dict[str, bool]) -> None:
        self.state = state.value
        for name, value in facts.items():
            setattr(self, name, lambda v=value: v)


FACT_SETS = [
    dict(zip([c.value for c in Condition], values, strict=True))
    for values in itertools.product([False, True], repeat=len(Condition))
]


class TestCompiledTable:
    @pytest.mark.parametrize("state", list(State))
    @pytest.mark.parametrize("action", [a for a in Action if a is not Action.CREATE])
    def test_route_agrees_with_triggering_the_machine(self, state: State, action: Action) -> None:
        """For every state, action and combination of facts, route() answers what the machine does."""
        for facts in FACT_SETS:
            model = _Model(state, facts)
            try:
                moved = MACHINE.events[action.value].trigger(model)
            except MachineError:
                expected = None
            else:
                expected = State(model.state) if moved else None
            assert route(state, action, facts.__getitem__) == expected, facts

    def test_machine_has_no_models(self) -> None:
        """The process-wide machine is a definition only: nothing is ever added to it."""
        assert MACHINE.models == []

    def test_removed_is_terminal(self) -> None:
        """No action leads out of removed."""
        assert lifecycle.allowed_actions(State.REMOVED) == ()

    def test_every_live_state_can_be_removed(self) -> None:
        """Remove leads from every live state to removed."""
        for state in lifecycle.LIVE_STATES:
            assert route(state, Action.REMOVE) is State.REMOVED

    def test_every_action_is_documented(self) -> None:
        """Each action has a description for the README and the command line."""
        assert set(ACTION_DOCS) == set(Action)

    def test_every_edge_is_in_the_table(self) -> None:
        """Every declared edge is reachable through the compiled table."""
        for e in lifecycle.edges():
            assert any(dest is e.dest for _, _, dest in ROUTES[e.source, e.action])

    def test_unknown_pair_routes_nowhere(self) -> None:
        """An action with no edge out of a state routes to None."""
        assert route(State.CREATED, Action.VERIFY_CODE) is None
        assert route(State.ACTIVE, Action.ENABLE) is None

    def test_conditional_edge_without_facts_routes_nowhere(self) -> None:
        """An action whose edges all need a condition routes nowhere when no facts are given."""
        assert route(State.PENDING_2FA, Action.CANCEL_ACTIVATION) is None
