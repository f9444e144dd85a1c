"""The engine rows: one lifecycle event (disable, then enable) on keyturn's own machine, many ways.

Every row runs the same event sequence, disable/enable alternating on an active key, under the
direct-enable policy, on a machine of keyturn's size: the naive ``transitions`` and
python-statemachine rows are built from :func:`keyturn.core.lifecycle.edges`, the definition
:data:`keyturn.core.machine.MACHINE` is built from (every state, every edge, the initial state),
with each guard and check given as a plain callable answering this sequence's facts (the enable's
``direct_enable`` guard holds, its lock check passes). Those rows only flip a state; keyturn's
core also builds the new record, its history entry and the owner's notice, and the service adds
validation, the store and (with the inline relay) delivery to a no-op notifier.

Rows are measured interleaved (:mod:`bench_rounds`). This module must not reach into keyturn's
private names: it uses the lifecycle's public data, :func:`keyturn.core.decide.decide` and the
service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import bench_rounds
from statemachine import State as PState
from statemachine import StateMachine
from statemachine.factory import StateMachineMetaclass
from transitions import Machine

from keyturn import Policy, State
from keyturn.core import commands
from keyturn.core.decide import decide
from keyturn.core.lifecycle import INITIAL, TERMINAL, Condition, edges
from keyturn.core.machine import allowed_actions
from keyturn.crypto.hashing import new_id
from keyturn.testing import key_in_state, make_service

if TYPE_CHECKING:
    from collections.abc import Callable

    from statemachine.transition_list import TransitionList

    from keyturn import KeyService

DIRECT: Final = Policy(direct_enable=True)
#: What each guard answers in the disable/enable sequence (only ``direct_enable`` is asked).
FACTS: Final = {c: c is Condition.DIRECT_ENABLE for c in Condition}
ACTIVE: Final = State.ACTIVE.value
CORE: Final = "keyturn core (decide, pure)"
OFF: Final = "keyturn service, memory store, relay off"
INLINE: Final = "keyturn service, memory store, inline relay"


class NullNotifier:
    """As cheap as a notifier can be."""

    def deliver(self, notification: object) -> None:
        """Drop it."""


def _answer(value: bool) -> Callable[[], bool]:
    """A plain callable answering ``value`` (a guard or check as a naive user would write it)."""

    def answered() -> bool:
        return value

    return answered


def transitions_config() -> list[dict[str, Any]]:
    """Keyturn's edges as ``transitions`` takes them, guards and checks as plain callables."""
    configs = []
    for edge in edges():
        config = edge.config(lambda: None)
        del config["after"]  # keyturn's own machine records the edge taken; a naive one does not
        conditions = [_answer(FACTS[edge.when])] if edge.when is not None else []
        conditions += [_answer(value=True) for _ in edge.checks]
        config.pop("conditions", None)
        if conditions:
            config["conditions"] = conditions
        if edge.unless is not None:
            config["unless"] = [_answer(FACTS[edge.unless])]
        configs.append(config)
    return configs


def _machine_kwargs(initial: str) -> dict[str, Any]:
    return {
        "states": [s.value for s in State],
        "transitions": transitions_config(),
        "initial": initial,
        "auto_transitions": False,
        "ignore_invalid_triggers": False,
    }


class _Model:
    """A key as a naive ``transitions`` user keeps it: its state, nothing else."""

    def __init__(self, state: str) -> None:
        self.state = state


def _check_size(machine: Machine) -> None:
    """The benchmark's machine has keyturn's triggers from every state (asserted once)."""
    for state in State:
        expected = {a.value for a in allowed_actions(state)}
        assert set(machine.get_triggers(state.value)) == expected, state


def _event(i: int) -> str:
    return "disable" if i % 2 == 0 else "enable"


def floor(events: int) -> None:
    """A hand-written dict table of the two edges with the guard, on a dict record."""
    table = {(ACTIVE, "disable"): "disabled", ("disabled", "enable"): ACTIVE}
    record: dict[str, Any] = {"state": ACTIVE, "version": 1, "direct_enable": True}
    for i in range(events):
        action = _event(i)
        dest = table.get((record["state"], action))
        if dest is None or (action == "enable" and not record["direct_enable"]):
            raise RuntimeError(action)
        record["state"] = dest
        record["version"] += 1


def machine_per_key_kept() -> Callable[[int], None]:
    """Naive: one ``Machine`` per key, kept in memory with the key."""
    model = _Model(ACTIVE)
    _check_size(Machine(model=model, **_machine_kwargs(ACTIVE)))

    def run(events: int) -> None:
        for i in range(events):
            getattr(model, _event(i))()

    return run


def shared_add_remove() -> Callable[[int], None]:
    """Naive: one shared ``Machine``, ``add_model``/``remove_model`` around every event."""
    machine = Machine(model=None, **_machine_kwargs(INITIAL.value))
    state = [ACTIVE]

    def run(events: int) -> None:
        for i in range(events):
            model = _Model(state[0])
            machine.add_model(model, initial=state[0])
            getattr(model, _event(i))()
            state[0] = model.state
            machine.remove_model(model)

    return run


def machine_per_load(events: int) -> None:
    """Naive: a ``Machine`` built for the key each time it is loaded (one event per request)."""
    state = ACTIVE
    for i in range(events):
        model = _Model(state)
        Machine(model=model, **_machine_kwargs(state))
        getattr(model, _event(i))()
        state = model.state


def statemachine_class() -> type[StateMachine]:
    """Keyturn's edges as a python-statemachine class, guards and checks as plain callables."""
    states = {
        s.value: PState(s.value, value=s.value, initial=s is INITIAL, final=s in TERMINAL)
        for s in State
    }
    events: dict[str, TransitionList] = {}
    for edge in edges():
        conds = [_answer(FACTS[edge.when])] if edge.when is not None else []
        conds += [_answer(value=True) for _ in edge.checks]
        unless = [_answer(FACTS[edge.unless])] if edge.unless is not None else []
        step = states[edge.source.value].to(states[edge.dest.value], cond=conds, unless=unless)
        name = edge.action.value
        events[name] = events[name] | step if name in events else step
    return StateMachineMetaclass(  # type: ignore[return-value]
        "KeyturnLifecycle", (StateMachine,), {**states, **events}
    )


def statemachine_kept() -> Callable[[int], None]:
    """python-statemachine: one instance per key, kept in memory."""
    machine = statemachine_class()(start_value=ACTIVE)

    def run(events: int) -> None:
        for i in range(events):
            machine.send(_event(i))

    return run


def core() -> Callable[[int], None]:
    """Keyturn's pure core: decide each event, producing the new record, history and notice."""
    service = make_service(policy=DIRECT)
    key = [service.get(key_in_state(service, State.ACTIVE).key.id, owner="alice")]
    now = service.clock.now()
    off, on = commands.Disable("a"), commands.Enable("a")

    def run(events: int) -> None:
        for i in range(events):
            outcome = decide(key[0], on if i % 2 else off, now=now, policy=DIRECT, new_id=new_id)
            assert isinstance(outcome, commands.Decision)
            assert outcome.change is not None
            key[0] = outcome.change.key

    return run


def toggling(service: KeyService, key_id: int, owner: str) -> Callable[[int], None]:
    """``run(n)``: ``n`` lifecycle events through ``service``, disable then enable."""

    def run(events: int) -> None:
        for _ in range(events // 2):
            service.disable(key_id, owner=owner)
            service.enable(key_id, owner=owner)

    return run


def memory_service(*, inline: bool) -> Callable[[int], None]:
    """The service on the in-memory store, a no-op notifier, the relay inline or off."""
    service = make_service(policy=DIRECT)
    key_id = key_in_state(service, State.ACTIVE).key.id
    service.notifier = service.relay.notifier = NullNotifier()
    service.deliver_inline = inline
    return toggling(service, key_id, "alice")


def bench_engines(budget: float, rounds: int) -> dict[str, object]:
    """µs per event of every engine row, interleaved, with each row's ratio to keyturn's core.

    ``budget``: seconds one sample of a row takes.
    """
    rows: dict[str, Callable[[int], None]] = {
        "floor: dict table": floor,
        "transitions: Machine per key, kept": machine_per_key_kept(),
        "transitions: shared Machine, add/remove_model per event": shared_add_remove(),
        "transitions: Machine per key, built per load": machine_per_load,
        "python-statemachine: instance per key, kept": statemachine_kept(),
        CORE: core(),
        OFF: memory_service(inline=False),
        INLINE: memory_service(inline=True),
    }
    samples = bench_rounds.interleave_ops(rows, budget, rounds)
    ratios = {f"{name} ÷ core": (name, CORE) for name in rows if name.startswith(("trans", "py"))}
    ratios |= {
        "service relay off ÷ core": (OFF, CORE),
        "service inline relay ÷ core": (INLINE, CORE),
        "service inline relay ÷ relay off": (INLINE, OFF),
    }
    return bench_rounds.section(samples, ratios, "µs per event")
