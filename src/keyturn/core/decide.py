"""The core's one surface: ``decide(key, command, now=..., policy=...)``.

Every rule about a key is applied here, the same way for every command:

1. the route of the key's state and the command's action is read from the table compiled from
   the machine (:mod:`keyturn.core.machine`); no route is :class:`ActionNotAllowed` with a hint
   for the state the key is in (``enable`` without the ``direct_enable`` policy is ACTIVATE:
   the key is enabled through a code);
2. the route's guard is answered (:func:`_facts`): the verifier's answer, the policy, facts of
   the key; the edge it picks is the one taken;
3. the edge's checks run (:mod:`keyturn.core.checks`): a refusal raises before anything is built;
4. the edge's effect builds the change (:mod:`keyturn.core.changes`). Where it needs the world,
   a code issued or a code checked, it returns a need instead (:class:`SendCode`,
   :class:`CheckCode`); the shell answers it and calls ``decide`` again with the ``answer``.

Pure: no I/O, no clock (``now`` comes in), no randomness (``new_id`` comes in), no logging.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from keyturn.core import checks, time_rules
from keyturn.core.changes import EDIT_EVENTS, chain, changed_fields, code_notice, step
from keyturn.core.commands import (
    Acknowledge,
    Cancel,
    CheckCode,
    Decision,
    Disable,
    Edit,
    Enable,
    RequestActivation,
    Resend,
    ResetSecret,
    SendCode,
    Unlock,
    Verify,
)
from keyturn.core.errors import ActionNotAllowed, CodeMismatch
from keyturn.core.hints import not_allowed
from keyturn.core.lifecycle import Action, Condition, Edge, State
from keyturn.core.machine import ROUTES

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from keyturn.core.commands import Command, Need
    from keyturn.core.policy import Policy
    from keyturn.core.records import ApiKey, Challenge, Change
    from keyturn.ports import IssuedCode


@attrs.frozen
class _Ask:
    """One call of :func:`decide`: what it knows besides the key and the command."""

    now: datetime
    policy: Policy
    new_id: Callable[[], str]
    answer: IssuedCode | bool | None
    challenge: Challenge | None


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
    ask = _Ask(now, policy, new_id, answer, challenge)
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
    return _effect(key, command, edge, ask)


def routed(action: Action, policy: Policy) -> Action:
    """The action whose edges ``action`` takes: without direct enable, enabling is ACTIVATE."""
    if action is Action.ENABLE and not policy.direct_enable:
        return Action.REQUEST_ACTIVATION
    return action


def _facts(key: ApiKey, command: Command, ask: _Ask, guard: Condition) -> bool:
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


def _step(key: ApiKey, command: Command, edge: Edge, ask: _Ask, event: str, **kw: Any) -> Change:  # noqa: ANN401 (a step's field updates)
    return step(
        key,
        command.action,
        event,
        dest=edge.dest,
        now=ask.now,
        actor=command.actor,
        notification_id=ask.new_id(),
        challenge=ask.challenge,
        **kw,
    )


def _effect(key: ApiKey, command: Command, edge: Edge, ask: _Ask) -> Decision | Need:  # noqa: PLR0911 (one branch per command)
    """What taking ``edge`` writes."""
    if isinstance(command, RequestActivation | Resend | Enable) and edge.dest is State.PENDING_2FA:
        return _code(key, command, edge, ask)
    if isinstance(command, Verify):
        return _verified(key, command, edge, ask)
    if isinstance(command, Edit):
        return _edited(key, command, edge, ask)
    if isinstance(command, Acknowledge):
        return Decision(_step(key, command, edge, ask, "secret_acknowledged"))
    if isinstance(command, Enable):
        return Decision(
            _step(key, command, edge, ask, "enabled_api_key", pending=None, activation_origin=None)
        )
    if isinstance(command, Cancel):  # the code stays live: reopening the dialog keeps it
        return Decision(
            _step(key, command, edge, ask, "activation_cancelled", activation_origin=None)
        )
    if isinstance(command, Disable):
        return Decision(_step(key, command, edge, ask, "disabled_api_key"))
    if isinstance(command, ResetSecret):
        new = command.secret
        return Decision(
            _step(
                key,
                command,
                edge,
                ask,
                "reset_api_key",
                secret_digest=new.digest,
                fingerprint=new.fingerprint,
                sealed_secret=new.sealed,
            )
        )
    if isinstance(command, Unlock):
        return Decision(
            _step(key, command, edge, ask, "activation_unlocked", consecutive_failures=0)
        )
    return Decision(  # remove: the record and its history stay, the sealed secret does not
        _step(
            key,
            command,
            edge,
            ask,
            "removed_api_key",
            pending=None,
            activation_origin=None,
            sealed_secret=None,
        )
    )


def _code(key: ApiKey, command: Command, edge: Edge, ask: _Ask) -> Decision | Need:
    """Open the code dialog: with the live code (reopened), or with a new code once issued."""
    origin = key.activation_origin if key.state is State.PENDING_2FA else key.state
    if edge.when is Condition.CODE_REUSABLE:
        return Decision(
            _step(key, command, edge, ask, "activation_reopened", activation_origin=origin)
        )
    issued = ask.answer
    if issued is None or isinstance(issued, bool):
        return SendCode(f"activation:{key.id}", key.owner)
    pending = time_rules.new_code(issued.ref, ask.now, ask.policy)
    message = code_notice(
        notification_id=ask.new_id(),
        owner=key.owner,
        key_id=key.id,
        key_name=key.name,
        subject=f"Your code to activate API key {key.name!r}",
        code=issued.code,
        sent_at=ask.now,
        expires_at=pending.expires_at,
    )
    event = "code_resent" if command.action is Action.RESEND_CODE else "activation_requested"
    change = _step(
        key,
        command,
        edge,
        ask,
        event,
        extra=() if message is None else (message,),
        pending=pending,
        activation_origin=origin,
        sends=(*time_rules.recent_sends(key.sends, ask.now, ask.policy), ask.now),
    )
    return Decision(change)


def _verified(key: ApiKey, command: Verify, edge: Edge, ask: _Ask) -> Decision:
    """Activate on a match; count the failure, then refuse, otherwise."""
    if edge.dest is State.ACTIVE:
        change = _step(
            key,
            command,
            edge,
            ask,
            "enabled_api_key",
            pending=None,
            activation_origin=None,
            consecutive_failures=0,
        )
        return Decision(change)
    assert key.pending is not None  # noqa: S101 (the checks required a live code)
    pending = attrs.evolve(key.pending, attempts=key.pending.attempts + 1)
    failures = key.consecutive_failures + 1
    change = _step(
        key,
        command,
        edge,
        ask,
        "code_rejected",
        pending=pending,
        consecutive_failures=failures,
    )
    by_code = ask.policy.max_attempts - pending.attempts
    by_lock = ask.policy.max_consecutive_failures - failures
    refusal = CodeMismatch(
        key_id=key.id,
        state=edge.dest.value,
        action=command.action.value,
        attempts_left=max(0, min(by_code, by_lock)),
        failures_before_lock=max(0, by_lock),
    )
    return Decision(change, refusal)


def _edited(key: ApiKey, command: Edit, edge: Edge, ask: _Ask) -> Decision:
    """Change fields (ending a pending code); then enable or disable as ``enabled`` asks."""
    fields = changed_fields(key, command.fields)
    first = None
    if fields:
        ends_code = {}
        if key.pending is not None and not key.pending.ended:  # it still times the resend wait
            ends_code = {
                "pending": attrs.evolve(key.pending, ended=True),
                "activation_origin": None,
            }
        first = _step(
            key,
            command,
            edge,
            ask,
            EDIT_EVENTS[fields[0]] if len(fields) == 1 else "edited_api_key",
            detail="fields=" + ",".join(fields),
            **ends_code,
            **{f: getattr(command.fields, f) for f in fields},
        )
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
    ask = _Ask(now, policy, new_id, None, None)
    acked = decide_step(change.key, Acknowledge(actor), ask, challenge=False)
    return chain(change, acked, decide_step(acked.key, Enable(actor), ask, challenge=False))


def decide_step(key: ApiKey, command: Command, ask: _Ask, *, challenge: bool) -> Change:
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
