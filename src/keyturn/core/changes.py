"""How a decided step becomes a change: the new key, its history entry, the owner's notice.

It also holds the credential generation rule. :func:`step` builds one lifecycle step;
:func:`chain` joins steps decided one after another into one change, which a store writes
atomically. :func:`ends_credentials` is the one rule of which steps end every credential issued
before them. Pure: ids come in from the caller.
"""

from __future__ import annotations

import enum
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING, Final

import attrs

from keyturn.core.lifecycle import Action, State
from keyturn.core.records import (
    ApiKey,
    Challenge,
    Change,
    HistoryEntry,
    Notification,
    NotificationKind,
    evolve_key,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from keyturn.core.scope import Scope
    from keyturn.core.validation import IpNetwork

#: Events that the owner is told about (NIST 800-63B §4.6: notify after every change to a key).
OWNER_NEWS: Final[Mapping[str, str]] = {
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

#: The history event of an edit of one field (an edit of several is ``edited_api_key``).
EDIT_EVENTS: Final = {
    "name": "changed_name",
    "max_scope": "changed_scope",
    "ip_whitelist": "changed_whitelist",
    "enabled_features": "changed_features",
}


class _Unset(enum.Enum):
    UNSET = enum.auto()


#: What an edit is given for a field it leaves as it is (``None`` can be a value: no whitelist).
UNSET: Final = _Unset.UNSET


@attrs.frozen
class Edit:
    """What an edit asks to change; ``None`` leaves a field as it is."""

    name: str | None = None
    max_scope: Scope | None = None
    ip_whitelist: tuple[IpNetwork, ...] | None = None
    enabled_features: tuple[str, ...] | None = None


def changed_fields(key: ApiKey, edit: Edit) -> tuple[str, ...]:
    """The fields ``edit`` would really change, in a fixed order."""
    return tuple(
        f for f in EDIT_EVENTS if (v := getattr(edit, f)) is not None and v != getattr(key, f)
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


def notice(key: ApiKey, event: str, now: datetime, notification_id: str) -> Notification:
    """The owner's news of ``event`` on ``key``."""
    return Notification(
        id=notification_id,
        owner=key.owner,
        key_id=key.id,
        key_name=key.name,
        kind=NotificationKind.KEY_EVENT,
        subject=f"API key {key.name!r} was {OWNER_NEWS[event]}",
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


def step(
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
    """One lifecycle step: ``key`` moved to ``dest`` with ``updates``, its entry and notices."""
    new = evolve_key(key, state=dest, version=key.version + 1, updated_at=now, **updates)
    if key.version and ends_credentials(key, new, action):
        new = evolve_key(new, generation=key.generation + 1)
    notes = extra
    if event in OWNER_NEWS:
        notes = (*notes, notice(new, event, now, notification_id))
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
    for nxt in then:
        if nxt is None:
            continue
        if nxt.expected_version != out.key.version or nxt.challenge is not None:
            msg = "chained steps must each start from the key the previous one left"
            raise ValueError(msg)
        out = Change(
            key=nxt.key,
            expected_version=out.expected_version,
            history=(*out.history, *nxt.history),
            notifications=(*out.notifications, *nxt.notifications),
            challenge=out.challenge,
        )
    return out
