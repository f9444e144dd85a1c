"""The core's one surface: ``decide(key, command, now=..., policy=...)``.

Every rule about a key is applied here, the same way for every command:

1. the route of the key's state and the command's action is read from the table compiled from
   the machine (:mod:`keyturn.core.machine`); no route is :class:`ActionNotAllowed` with a hint
   for the state the key is in (``enable`` without the ``direct_enable`` policy is ACTIVATE:
   the key is enabled through a code);
2. the route's guard is answered (:func:`_facts`): the verifier's answer, the policy, facts of
   the key; the edge it picks is the one taken;
3. the edge's checks run (:mod:`keyturn.core.checks`): a refusal raises before anything is built;
4. the edge's effect builds the change (:mod:`keyturn.core.effects`). Where it needs the world,
   a code issued or a code checked, it returns a need instead (:class:`SendCode`,
   :class:`CheckCode`); the shell answers it and calls ``decide`` again with the ``answer``;
5. an edit's ``enabled`` is decided as a second step of the same change (:func:`_then`).

Pure: no I/O, no clock (``now`` comes in), no randomness (``new_id`` comes in), no logging.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyturn.core import checks
from keyturn.core.changes import chain, changed_fields, step
from keyturn.core.commands import (
    Acknowledge,
    CheckCode,
    Decision,
    Disable,
    Edit,
    Enable,
    Verify,
)
from keyturn.core.effects import Ask, effect
from keyturn.core.errors import ActionNotAllowed
from keyturn.core.hints import not_allowed
from keyturn.core.lifecycle import Action, Condition, State
from keyturn.core.machine import ROUTES

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from keyturn.core.commands import Command, Need
    from keyturn.core.policy import Policy
    from keyturn.core.records import ApiKey, Challenge, Change
    from keyturn.ports import IssuedCode


def decide(
    key: ApiKey,
    command: Command,
    *,
    now: datetime,
    policy: Policy,
    new_id: Callable[[], str],
    answer: IssuedCode | bool | None = None,
    challenge: Challenge | None = None,
) -> Decision | Need:
    """What ``command`` does to ``key`` at ``now``: a decision, or first a need to answer.

    ``answer`` is the shell's answer to the need this returned before (an issued code, or
    whether the code matched). ``challenge`` is a confirmation the request consumed: it is
    written with the change. A refusal raises a typed error and builds nothing.
    """
    ask = Ask(now, policy, new_id, answer, challenge)
    action = command.action
    found = ROUTES.get((key.state, routed(action, policy)))
    if found is None:
        raise not_allowed(key, action, policy)
    if found.guard is Condition.CODE_ACCEPTED and answer is None:
        assert found.held is not None  # noqa: S101 (the verify route has both edges)
        checks.run(found.held.checks, key, action, now, policy)
        assert isinstance(command, Verify)  # noqa: S101 (only verify is decided by a code)
        assert key.pending is not None  # noqa: S101 (the checks required a live code)
        return CheckCode(f"activation:{key.id}", key.pending.ref, command.candidate)
    edge = found.edge(lambda guard: _facts(key, command, ask, Condition(guard)))
    if edge is None:
        raise not_allowed(key, action, policy)
    checks.run(edge.checks, key, action, now, policy)
    outcome = effect(key, command, edge, ask)
    if isinstance(command, Edit) and isinstance(outcome, Decision):
        return _then(key, command, outcome.change, ask)
    return outcome


def routed(action: Action, policy: Policy) -> Action:
    """The action whose edges ``action`` takes: without direct enable, enabling is ACTIVATE."""
    if action is Action.ENABLE and not policy.direct_enable:
        return Action.REQUEST_ACTIVATION
    return action


def _facts(key: ApiKey, command: Command, ask: Ask, guard: Condition) -> bool:
    """The answer to the route's guard, for this key, command and call."""
    if guard is Condition.CODE_ACCEPTED:
        return ask.answer is True
    if guard is Condition.CAME_FROM_DISABLED:
        return checks.came_from_disabled(key)
    if guard is Condition.DIRECT_ENABLE:
        return ask.policy.direct_enable
    if guard is Condition.CODE_REUSABLE:
        return checks.code_reusable(key, ask.now, ask.policy)
    assert isinstance(command, Edit)  # noqa: S101 (the one guard left is the edit's)
    fields = changed_fields(key, command.fields)
    return ask.policy.edit_deactivates and fields != ("name",)


def _then(key: ApiKey, command: Edit, first: Change | None, ask: Ask) -> Decision:
    """An edit's change, then the enable or disable its ``enabled`` asks, as one change."""
    after = key if first is None else first.key
    then = None
    if command.enabled is True and not after.enabled:
        if not ask.policy.direct_enable:
            msg = f"cannot enable API key {key.id} in an edit: under this policy a code enables it"
            raise ActionNotAllowed(msg, key_id=key.id, state=after.state.value, action="enable")
        then = decide_step(after, Enable(command.actor), ask, challenge=first is None)
    elif command.enabled is False and after.enabled:
        then = decide_step(after, Disable(command.actor), ask, challenge=first is None)
    steps = [c for c in (first, then) if c is not None]
    return Decision(chain(*steps) if steps else None)


def create(
    draft: ApiKey,
    *,
    actor: str,
    now: datetime,
    policy: Policy,
    new_id: Callable[[], str],
    challenge: Challenge | None = None,
    enable: bool = False,
) -> Change:
    """A new key (``draft``: version 0, id 0 until stored) entering ``created``.

    With ``enable`` (a ``direct_enable`` policy only) the same change also acknowledges the
    secret (the answer is its one showing) and enables the key.
    """
    if enable and not policy.direct_enable:
        msg = "cannot create an enabled key: under this policy a code enables it"
        raise ActionNotAllowed(msg, key_id=0, state=State.CREATED.value, action="create")
    change = step(
        draft,
        Action.CREATE,
        "new_api_key",
        dest=State.CREATED,
        now=now,
        actor=actor,
        notification_id=new_id(),
        challenge=challenge,
    )
    if not enable:
        return change
    ask = Ask(now, policy, new_id, None, None)
    acked = decide_step(change.key, Acknowledge(actor), ask, challenge=False)
    return chain(change, acked, decide_step(acked.key, Enable(actor), ask, challenge=False))


def decide_step(key: ApiKey, command: Command, ask: Ask, *, challenge: bool) -> Change:
    """A follow-up step of one request (enable or disable after an edit), decided in full."""
    outcome = decide(
        key,
        command,
        now=ask.now,
        policy=ask.policy,
        new_id=ask.new_id,
        challenge=ask.challenge if challenge else None,
    )
    assert isinstance(outcome, Decision)  # noqa: S101 (direct steps need nothing)
    assert outcome.change is not None  # noqa: S101 (and always change something)
    return outcome.change
