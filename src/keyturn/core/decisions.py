"""The functional core: every decision about a key, as pure functions.

Given a key (or challenge), ``now``, the policy and the request, these decide what changes, as a
:class:`~keyturn.core.records.Change`, or refuse with a typed error.

Every business rule of keyturn is decided here, once; the sync service (and any async one) only
loads records, calls ports, and hands these functions the results. Functions here do no I/O, read
no clock, draw no randomness and log nothing: their inputs say everything, which is what makes
them cheap to test exhaustively. A refusal raises before anything is built, so a refused action
leaves every record as it was. The one deliberate exception is a wrong code: it is refused *and*
counted (:func:`code_checked` returns the change that counts it).
"""

from __future__ import annotations

import hashlib
import json
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING, Final

import attrs

from keyturn.core import time_rules
from keyturn.core.errors import (
    ActionNotAllowed,
    ActivationLocked,
    ChallengeInvalid,
    CodeAttemptsExhausted,
    CodeExpired,
    ResendTooEarly,
    SendLimitReached,
)
from keyturn.core.lifecycle import Action, Condition, State, route, sources_of
from keyturn.core.records import (
    ApiKey,
    Challenge,
    Change,
    HistoryEntry,
    Notification,
    NotificationKind,
    PendingCode,
    evolve_key,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from keyturn.core.policy import Policy
    from keyturn.core.scope import Scope
    from keyturn.validation import IpNetwork

_HINTS: Final[Mapping[Action, str]] = {
    Action.REQUEST_ACTIVATION: "acknowledge the secret first",
    Action.VERIFY_CODE: "request activation to get a code",
    Action.RESEND_CODE: "request activation to get a code",
    Action.ENABLE: "acknowledge the secret first",
    Action.DISABLE: "only an active key can be disabled",
}

#: Events that the owner is told about (NIST 800-63B §4.6: notify after every change to a key).
_OWNER_NEWS: Final[Mapping[str, str]] = {
    "new_api_key": "created",
    "enabled_api_key": "activated",
    "disabled_api_key": "disabled",
    "changed_name": "renamed",
    "changed_scope": "given a new scope",
    "changed_whitelist": "given a new IP whitelist",
    "changed_features": "given new features",
    "edited_api_key": "edited",
    "reset_api_key": "given a new secret",
    "removed_api_key": "removed",
}


@attrs.frozen
class Edit:
    """What an edit asks to change; ``None`` leaves a field as it is."""

    name: str | None = None
    max_scope: Scope | None = None
    ip_whitelist: tuple[IpNetwork, ...] | None = None
    enabled_features: tuple[str, ...] | None = None


def require(key: ApiKey, action: Action) -> None:
    """Refuse ``action`` if the lifecycle has no edge for it out of the key's state."""
    if route(key.state, action, _any_fact) is None:
        raise not_allowed(key, action)


def not_allowed(key: ApiKey, action: Action) -> ActionNotAllowed:
    """The error for ``action`` on ``key`` in its state, saying what would make it possible."""
    if key.state is State.REMOVED:
        hint = "the key was removed"
    else:
        needs = " or ".join(repr(s.value) for s in sources_of(action))
        hint = f"it needs {needs}"
        if extra := _HINTS.get(action):
            hint += f"; {extra}"
    return ActionNotAllowed(
        f"cannot {action.value} API key {key.id}: it is {key.state.value!r}, {hint}",
        key_id=key.id,
        state=key.state.value,
        action=action.value,
    )


def _any_fact(_: str) -> bool:
    return True


def _to(key: ApiKey, action: Action, facts: Callable[[str], bool] | None = None) -> State:
    dest = route(key.state, action, facts)
    if dest is None:
        raise not_allowed(key, action)
    return dest


def _notice(key: ApiKey, event: str, now: datetime, notification_id: str) -> Notification:
    return Notification(
        id=notification_id,
        owner=key.owner,
        key_id=key.id,
        key_name=key.name,
        kind=NotificationKind.KEY_EVENT,
        subject=f"API key {key.name!r} was {_OWNER_NEWS[event]}",
        created_at=now,
    )


def code_notice(
    *,
    notification_id: str,
    owner: str,
    key_id: int | None,
    key_name: str,
    subject: str,
    code: str | None,
    sent_at: datetime,
    expires_at: datetime,
) -> Notification | None:
    """The message carrying a code for keyturn to deliver; ``None`` if the verifier sent it."""
    if code is None:
        return None
    return Notification(
        id=notification_id,
        owner=owner,
        key_id=key_id,
        key_name=key_name,
        kind=NotificationKind.CODE,
        subject=subject,
        created_at=sent_at,
        code=code,
        expires_at=expires_at,
    )


def _lets_through(whitelist: tuple[IpNetwork, ...], network: IpNetwork) -> bool:
    """Whether every address of ``network`` passes ``whitelist`` (empty: every address does)."""
    if not whitelist:
        return True
    if isinstance(network, IPv4Network):
        return any(isinstance(w, IPv4Network) and network.subnet_of(w) for w in whitelist)
    return any(isinstance(w, IPv6Network) and network.subnet_of(w) for w in whitelist)


def narrows(old: ApiKey, new: ApiKey) -> bool:
    """Whether ``new`` lets through less than ``old``: a smaller scope or whitelist."""
    if not new.max_scope.covers(old.max_scope):
        return True
    if not old.ip_whitelist:
        return bool(new.ip_whitelist)
    return not all(_lets_through(new.ip_whitelist, net) for net in old.ip_whitelist)


def ends_credentials(old: ApiKey, new: ApiKey, action: Action) -> bool:
    """Whether this step must end every credential issued for the key before it.

    A new secret, leaving ``active`` (disable, remove, an edit that deactivates) and an edit
    that narrows the scope or the whitelist each do: tokens and sessions issued earlier carry
    the old generation and are refused from the next request on, on every worker.
    """
    if action is Action.RESET_SECRET or (old.enabled and not new.enabled):
        return True
    return action is Action.EDIT and narrows(old, new)


def _change(
    key: ApiKey,
    action: Action,
    event: str,
    *,
    dest: State,
    now: datetime,
    actor: str,
    notification_id: str,
    detail: str = "",
    extra: tuple[Notification, ...] = (),
    challenge: Challenge | None = None,
    **updates: object,
) -> Change:
    new = evolve_key(key, state=dest, version=key.version + 1, updated_at=now, **updates)
    if key.version and ends_credentials(key, new, action):
        new = evolve_key(new, generation=key.generation + 1)
    notes = extra
    if event in _OWNER_NEWS:
        notes = (*notes, _notice(new, event, now, notification_id))
    history = HistoryEntry(
        key_id=key.id,
        version=new.version,
        action=action,
        event=event,
        from_state=key.state if key.version else None,
        to_state=dest,
        actor=actor,
        at=now,
        detail=detail,
    )
    return Change(
        key=new,
        expected_version=key.version,
        history=(history,),
        notifications=notes,
        challenge=challenge,
    )


def chain(first: Change, *then: Change | None) -> Change:
    """Steps decided one after another (each from the key the previous one left), as one change.

    The store writes them in one atomic step: every history entry and notification, or none. A
    ``None`` step (an edit that changes nothing) is skipped. Only the first may consume a
    confirmation challenge.
    """
    out = first
    for step in then:
        if step is None:
            continue
        if step.expected_version != out.key.version or step.challenge is not None:
            msg = "chained steps must each start from the key the previous one left"
            raise ValueError(msg)
        out = Change(
            key=step.key,
            expected_version=out.expected_version,
            history=(*out.history, *step.history),
            notifications=(*out.notifications, *step.notifications),
            challenge=out.challenge,
        )
    return out


def created(
    key: ApiKey,
    *,
    now: datetime,
    actor: str,
    notification_id: str,
    challenge: Challenge | None = None,
) -> Change:
    """A new key (version 0, id 0 until stored) entering ``created``."""
    return _change(
        key,
        Action.CREATE,
        "new_api_key",
        dest=State.CREATED,
        now=now,
        actor=actor,
        notification_id=notification_id,
        challenge=challenge,
    )


def acknowledged(key: ApiKey, *, now: datetime, actor: str, notification_id: str) -> Change:
    """The person confirmed they saved the secret."""
    return _change(
        key,
        Action.ACKNOWLEDGE_SECRET,
        "secret_acknowledged",
        dest=_to(key, Action.ACKNOWLEDGE_SECRET),
        now=now,
        actor=actor,
        notification_id=notification_id,
    )


def check_send(key: ApiKey, action: Action, now: datetime, policy: Policy) -> None:
    """Refuse a code send (activation, resend, enable) that the rules forbid at ``now``."""
    _to(key, action, lambda c: c != Condition.DIRECT_ENABLE)
    if key.consecutive_failures >= policy.max_consecutive_failures:
        raise ActivationLocked(
            key_id=key.id,
            state=key.state.value,
            action=action.value,
            failures=key.consecutive_failures,
        )
    if (
        action is Action.RESEND_CODE
        and key.pending is not None
        and not time_rules.resend_open(key.pending, now)
    ):
        raise ResendTooEarly(
            key_id=key.id,
            state=key.state.value,
            action=action.value,
            available_at=key.pending.resend_at,
        )
    if (at := time_rules.next_send_at(key.sends, now, policy)) is not None:
        raise SendLimitReached(
            key_id=key.id, state=key.state.value, action=action.value, available_at=at
        )


def code_sent(
    key: ApiKey,
    action: Action,
    *,
    ref: str,
    code_notice: Notification | None,
    now: datetime,
    policy: Policy,
    actor: str,
    notification_id: str,
) -> Change:
    """A code was issued for ``key`` (activation, resend, or enable through a code).

    The new code replaces any earlier one; the key's failure count carries over (NIST: a new code
    must not reset it).
    """
    check_send(key, action, now, policy)
    dest = _to(key, action, lambda c: c != Condition.DIRECT_ENABLE)
    origin = key.activation_origin if key.state is State.PENDING_2FA else key.state
    event = "code_resent" if action is Action.RESEND_CODE else "activation_requested"
    return _change(
        key,
        action,
        event,
        dest=dest,
        now=now,
        actor=actor,
        notification_id=notification_id,
        extra=(code_notice,) if code_notice else (),
        pending=time_rules.new_code(ref, now, policy),
        activation_origin=origin,
        sends=(*time_rules.recent_sends(key.sends, now, policy), now),
    )


def check_verify(key: ApiKey, now: datetime, policy: Policy) -> PendingCode:
    """Refuse a code entry that cannot succeed whatever the code; return the code to check."""
    require(key, Action.VERIFY_CODE)
    key_id, state, action = key.id, key.state.value, Action.VERIFY_CODE.value
    if key.consecutive_failures >= policy.max_consecutive_failures:
        raise ActivationLocked(
            key_id=key_id, state=state, action=action, failures=key.consecutive_failures
        )
    pending = key.pending
    if pending is None or pending.attempts >= policy.max_attempts:
        raise CodeAttemptsExhausted(key_id=key_id, state=state, action=action)
    if time_rules.is_expired(pending, now):
        raise CodeExpired(key_id=key_id, state=state, action=action, expired_at=pending.expires_at)
    return pending


def code_checked(
    key: ApiKey,
    *,
    matched: bool,
    now: datetime,
    policy: Policy,
    actor: str,
    notification_id: str,
) -> Change:
    """The verifier answered: activate on a match, count the failure otherwise."""
    pending = check_verify(key, now, policy)
    if matched:
        return _change(
            key,
            Action.VERIFY_CODE,
            "enabled_api_key",
            dest=_to(key, Action.VERIFY_CODE, lambda _: True),
            now=now,
            actor=actor,
            notification_id=notification_id,
            pending=None,
            activation_origin=None,
            consecutive_failures=0,
        )
    return _change(
        key,
        Action.VERIFY_CODE,
        "code_rejected",
        dest=_to(key, Action.VERIFY_CODE, lambda _: False),
        now=now,
        actor=actor,
        notification_id=notification_id,
        pending=attrs.evolve(pending, attempts=pending.attempts + 1),
        consecutive_failures=key.consecutive_failures + 1,
    )


def attempts_left(key: ApiKey, policy: Policy) -> int:
    """Wrong tries the key's current code has left."""
    used = key.pending.attempts if key.pending else policy.max_attempts
    by_code = policy.max_attempts - used
    by_life = policy.max_consecutive_failures - key.consecutive_failures
    return max(0, min(by_code, by_life))


def cancelled(key: ApiKey, *, now: datetime, actor: str, notification_id: str) -> Change:
    """The code dialog was closed: back to where activation started."""
    dest = _to(
        key,
        Action.CANCEL_ACTIVATION,
        lambda c: c == Condition.CAME_FROM_DISABLED and key.activation_origin is State.DISABLED,
    )
    return _change(
        key,
        Action.CANCEL_ACTIVATION,
        "activation_cancelled",
        dest=dest,
        now=now,
        actor=actor,
        notification_id=notification_id,
        pending=None,
        activation_origin=None,
    )


def disabled(
    key: ApiKey,
    *,
    now: datetime,
    actor: str,
    notification_id: str,
    challenge: Challenge | None = None,
) -> Change:
    """Deactivated, effective at once."""
    return _change(
        key,
        Action.DISABLE,
        "disabled_api_key",
        dest=_to(key, Action.DISABLE),
        now=now,
        actor=actor,
        notification_id=notification_id,
        challenge=challenge,
    )


def enabled_directly(
    key: ApiKey, *, now: datetime, policy: Policy, actor: str, notification_id: str
) -> Change:
    """``enable`` with the direct-enable policy: ``disabled`` -> ``active`` with no code.

    Refused when the policy does not allow a direct enable: then a key is enabled through a code.
    """
    if not policy.direct_enable:
        raise ActionNotAllowed(
            f"cannot enable API key {key.id} directly: the policy activates keys through a "
            "code; request activation instead",
            key_id=key.id,
            state=key.state.value,
            action=Action.ENABLE.value,
        )
    dest = _to(key, Action.ENABLE, lambda c: c == Condition.DIRECT_ENABLE)
    if key.consecutive_failures >= policy.max_consecutive_failures:
        raise ActivationLocked(
            key_id=key.id,
            state=key.state.value,
            action=Action.ENABLE.value,
            failures=key.consecutive_failures,
        )
    return _change(
        key,
        Action.ENABLE,
        "enabled_api_key",
        dest=dest,
        now=now,
        actor=actor,
        notification_id=notification_id,
    )


_EDIT_EVENTS: Final = {
    "name": "changed_name",
    "max_scope": "changed_scope",
    "ip_whitelist": "changed_whitelist",
    "enabled_features": "changed_features",
}


def changed_fields(key: ApiKey, edit: Edit) -> tuple[str, ...]:
    """The fields ``edit`` would really change, in a fixed order."""
    return tuple(
        f for f in _EDIT_EVENTS if (v := getattr(edit, f)) is not None and v != getattr(key, f)
    )


def edited(
    key: ApiKey,
    edit: Edit,
    *,
    now: datetime,
    policy: Policy,
    actor: str,
    notification_id: str,
    challenge: Challenge | None = None,
) -> Change | None:
    """Name, scope, whitelist or features changed; ``None`` if nothing would change.

    Changing anything but the name of an ``active`` key disables it, unless the policy says not.
    """
    require(key, Action.EDIT)
    fields = changed_fields(key, edit)
    if not fields:
        return None
    deactivates = policy.edit_deactivates and fields != ("name",)
    dest = _to(key, Action.EDIT, lambda c: c == Condition.EDIT_DEACTIVATES and deactivates)
    event = _EDIT_EVENTS[fields[0]] if len(fields) == 1 else "edited_api_key"
    return _change(
        key,
        Action.EDIT,
        event,
        dest=dest,
        now=now,
        actor=actor,
        notification_id=notification_id,
        detail="fields=" + ",".join(fields),
        challenge=challenge,
        **{f: getattr(edit, f) for f in fields},
    )


def secret_reset(
    key: ApiKey,
    *,
    secret_digest: str,
    fingerprint: str,
    sealed_secret: str | None,
    now: datetime,
    actor: str,
    notification_id: str,
    challenge: Challenge | None = None,
) -> Change:
    """A new secret replaces the old, which stops working at once."""
    return _change(
        key,
        Action.RESET_SECRET,
        "reset_api_key",
        dest=_to(key, Action.RESET_SECRET),
        now=now,
        actor=actor,
        notification_id=notification_id,
        challenge=challenge,
        secret_digest=secret_digest,
        fingerprint=fingerprint,
        sealed_secret=sealed_secret,
    )


def removed(
    key: ApiKey,
    *,
    now: datetime,
    actor: str,
    notification_id: str,
    challenge: Challenge | None = None,
) -> Change:
    """Removed for good; the record and its history stay, the sealed secret does not."""
    return _change(
        key,
        Action.REMOVE,
        "removed_api_key",
        dest=_to(key, Action.REMOVE),
        now=now,
        actor=actor,
        notification_id=notification_id,
        challenge=challenge,
        pending=None,
        activation_origin=None,
        sealed_secret=None,
    )


def unlocked(key: ApiKey, *, now: datetime, actor: str, notification_id: str) -> Change:
    """An operator cleared the key's consecutive-failure count."""
    return _change(
        key,
        Action.UNLOCK_ACTIVATION,
        "activation_unlocked",
        dest=_to(key, Action.UNLOCK_ACTIVATION),
        now=now,
        actor=actor,
        notification_id=notification_id,
        consecutive_failures=0,
    )


# --- confirmations -------------------------------------------------------------------------------


def request_digest(action: Action, key_id: int | None, params: Mapping[str, str]) -> str:
    """A digest of one exact request: the code confirms this request and no other."""
    canonical = json.dumps(
        {"action": action.value, "key_id": key_id, "params": dict(sorted(params.items()))},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_challenge(
    challenge: Challenge | None,
    *,
    owner: str,
    action: Action,
    key_id: int | None,
    digest: str,
    now: datetime,
    policy: Policy,
) -> Challenge:
    """Refuse a confirmation that cannot succeed whatever the code; return the challenge."""
    reason = None
    if challenge is None or challenge.owner != owner:
        reason = "no such challenge"
    elif challenge.used:
        reason = "the challenge was already used"
    elif challenge.action is not action or challenge.key_id != key_id:
        reason = "the challenge was issued for another request"
    elif challenge.request_digest != digest:
        reason = "the request differs from the one the code was sent for"
    if reason is not None or challenge is None:
        raise ChallengeInvalid(reason or "no such challenge", action=action.value, key_id=key_id)
    if challenge.code.attempts >= policy.max_attempts:
        raise CodeAttemptsExhausted(key_id=key_id, state=None, action=action.value)
    if time_rules.is_expired(challenge.code, now):
        raise CodeExpired(
            key_id=key_id, state=None, action=action.value, expired_at=challenge.code.expires_at
        )
    return challenge


def challenge_checked(challenge: Challenge, *, matched: bool) -> Challenge:
    """The challenge after a code was checked: used on a match, one attempt more otherwise."""
    if matched:
        return attrs.evolve(challenge, used=True, version=challenge.version + 1)
    code = attrs.evolve(challenge.code, attempts=challenge.code.attempts + 1)
    return attrs.evolve(challenge, code=code, version=challenge.version + 1)
