"""What taking an edge writes: each command's effect on a key, as a :class:`Change`.

:func:`effect` is step 4 of :func:`keyturn.core.decide.decide`: the route is chosen and its
checks have passed, so nothing here refuses, except a wrong code, which is written (the failure
counts) and then refused. Sending a code needs the world: the effect returns a
:class:`SendCode` need first and builds the change from the issued code it is answered with.
Pure, as the rest of the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from keyturn.core import checks, time_rules
from keyturn.core.changes import EDIT_EVENTS, changed_fields, code_notice, step
from keyturn.core.commands import (
    Acknowledge,
    Cancel,
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
from keyturn.core.errors import CodeMismatch
from keyturn.core.lifecycle import Action, Condition, Edge, State

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from keyturn.core.commands import Command, Need
    from keyturn.core.policy import Policy
    from keyturn.core.records import ApiKey, Challenge, Change
    from keyturn.ports import IssuedCode


@attrs.frozen
class Ask:
    """One call of :func:`decide`: what it knows besides the key and the command."""

    now: datetime
    policy: Policy
    new_id: Callable[[], str]
    answer: IssuedCode | bool | None
    challenge: Challenge | None


def _step(key: ApiKey, command: Command, edge: Edge, ask: Ask, event: str, **kw: Any) -> Change:  # noqa: ANN401 (a step's field updates)
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


def effect(key: ApiKey, command: Command, edge: Edge, ask: Ask) -> Decision | Need:  # noqa: PLR0911 (one branch per command)
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


def _code(key: ApiKey, command: Command, edge: Edge, ask: Ask) -> Decision | Need:
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


def _verified(key: ApiKey, command: Verify, edge: Edge, ask: Ask) -> Decision:
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
    refusal = CodeMismatch(
        key_id=key.id,
        state=edge.dest.value,
        action=command.action.value,
        attempts_left=checks.attempts_left(change.key, ask.policy),
        failures_before_lock=checks.failures_before_lock(change.key, ask.policy),
    )
    return Decision(change, refusal)


def _edited(key: ApiKey, command: Edit, edge: Edge, ask: Ask) -> Decision:
    """Change fields, ending a pending code (the enable or disable after it is decided apart)."""
    fields = changed_fields(key, command.fields)
    if not fields:
        return Decision(None)
    ends_code = {}
    if key.pending is not None and not key.pending.ended:  # it still times the resend wait
        ends_code = {"pending": attrs.evolve(key.pending, ended=True), "activation_origin": None}
    return Decision(
        _step(
            key,
            command,
            edge,
            ask,
            EDIT_EVENTS[fields[0]] if len(fields) == 1 else "edited_api_key",
            detail="fields=" + ",".join(fields),
            **ends_code,
            **{f: getattr(command.fields, f) for f in fields},
        )
    )
