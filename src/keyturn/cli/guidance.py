"""What happened, and what to do next: the sentences the command says about a key.

After an action the command says what it did (a code sent, or the live one kept; an edit that
deactivated the key, and why) and what the key's state lets the operator do next, as the
commands to type, with the waits that apply ("keyturn resend 1 in 1 min 47 s (at 05:09:33
UTC)"). A refusal ends with the same next steps, read from the key as it is now, so a hint is
never one the state would refuse. The facts come from the key and the core's own rules
(:mod:`keyturn.core.checks`, :mod:`keyturn.web.views`); nothing is decided or written here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from keyturn.core import checks
from keyturn.core.lifecycle import Action, State
from keyturn.web import views
from keyturn.web.views import seconds_until

from .output import clock, duration, when

if TYPE_CHECKING:
    from datetime import datetime

    from keyturn.core.policy import Policy
    from keyturn.core.records import ApiKey

#: The command that runs each action.
COMMAND_OF: Final = {
    Action.CREATE: "create",
    Action.ACKNOWLEDGE_SECRET: "ack",
    Action.REQUEST_ACTIVATION: "activate",
    Action.RESEND_CODE: "resend",
    Action.VERIFY_CODE: "verify",
    Action.CANCEL_ACTIVATION: "cancel",
    Action.DISABLE: "disable",
    Action.ENABLE: "enable",
    Action.EDIT: "edit",
    Action.RESET_SECRET: "reset",
    Action.UNLOCK_ACTIVATION: "unlock",
    Action.REMOVE: "remove",
}


def next_steps(key: ApiKey, now: datetime, policy: Policy) -> list[str]:
    """The commands the key's state allows next, each with what it does and when it can run."""
    k = key.id
    if key.consecutive_failures >= policy.max_consecutive_failures:
        return [f"keyturn unlock {k} (an operator: activation is locked after wrong codes)"]
    if key.state is State.CREATED:
        return [f"keyturn ack {k} once the secret is saved"]
    if key.state in (State.SECRET_ACKNOWLEDGED, State.DISABLED):
        return [_activation_step(key, now, policy)]
    if key.state is State.PENDING_2FA:
        return _pending_steps(key, now, policy)
    if key.state is State.ACTIVE:
        return [f"nothing: clients can sign in as {key.client_id} (keyturn disable {k} stops it)"]
    return [f"nothing: the key is removed for good (keyturn show {k} shows its history)"]


def _activation_step(key: ApiKey, now: datetime, policy: Policy) -> str:
    """How to activate a key that is not active: a new code, the live one, or after a wait."""
    command = f"keyturn {'enable' if key.state is State.DISABLED else 'activate'} {key.id}"
    live = checks.live_code(key, now, policy)
    if checks.code_reusable(key, now, policy) and live is not None:
        return f"{command} reopens the code sent {when(live.sent_at, now)}; no new code is sent"
    send_at = views.next_send_at(key, now=now, policy=policy)
    if send_at > now:
        return f"{command} {when(send_at, now)}, when a new code can be sent"
    return f"{command} sends {key.owner} a code"


def _pending_steps(key: ApiKey, now: datetime, policy: Policy) -> list[str]:
    k = key.id
    steps = []
    live = checks.live_code(key, now, policy)
    if live is not None:
        left = duration(seconds_until(live.expires_at, now, round_up=False))
        tries = checks.attempts_left(key, policy)
        steps.append(f"keyturn verify {k} CODE with the code {key.owner} was sent ({left} left, ")
        steps[-1] += f"{tries} {'try' if tries == 1 else 'tries'})"
    send_at = views.next_send_at(key, now=now, policy=policy)
    if send_at > now:
        steps.append(f"keyturn resend {k} {when(send_at, now)} for a new code")
    else:
        steps.append(f"keyturn resend {k} sends a new code")
    steps.append(f"keyturn cancel {k} closes the code dialog")
    return steps


def code_outcome(before: ApiKey | None, after: ApiKey, now: datetime, *, queued: bool) -> str:
    """What an ACTIVATE, enable or resend did about the code: sent, queued, or kept."""
    pending = after.pending
    if pending is None:
        return "no code was needed"
    sent = before is None or before.pending is None or before.pending.sent_at != pending.sent_at
    until = clock(pending.expires_at, now)
    if not sent:
        return f"no new code: the code sent {when(pending.sent_at, now)} is live until {until}"
    valid = f"valid {duration(round((pending.expires_at - now).total_seconds()))} (until {until})"
    if queued:
        return f"a code for {after.owner} waits in the outbox, {valid}: no notifier sent it"
    return f"a code was sent to {after.owner}, {valid}"


def edit_outcome(before: ApiKey, after: ApiKey) -> str:
    """Which fields an edit changed, and why the state moved if it did."""
    changed = [
        label
        for label, old, new in (
            ("name", before.name, after.name),
            ("scope", before.max_scope, after.max_scope),
            ("ip whitelist", before.ip_whitelist, after.ip_whitelist),
            ("features", before.enabled_features, after.enabled_features),
        )
        if old != new
    ]
    if not changed:
        return "nothing changed"
    text = f"{', '.join(changed)} changed"
    if before.state is State.ACTIVE and after.state is not State.ACTIVE:
        text += "; a changed scope, whitelist or features deactivates an active key"
    elif before.state is State.PENDING_2FA and after.state is not State.PENDING_2FA:
        text += "; an edit ends the activation code"
    return text


#: What each action did, for the ones a fixed sentence says.
DONE: Final = {
    Action.ACKNOWLEDGE_SECRET: "the secret is saved and acknowledged",
    Action.VERIFY_CODE: "code accepted",
    Action.CANCEL_ACTIVATION: "activation cancelled, the code dialog is closed",
    Action.DISABLE: "disabled: clients are refused from now on",
    Action.RESET_SECRET: "a new secret; the old one stopped working at once",
    Action.UNLOCK_ACTIVATION: "activation unlocked: the count of wrong codes is back to 0",
    Action.REMOVE: "removed for good; its record and history stay for audit",
}
