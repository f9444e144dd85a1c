"""JSON-ready views of keyturn's records, for the web backends and pages that embed it.

Every view is a plain ``dict`` of ``str``, ``int``, ``bool``, ``list``, ``dict`` and ``None``:
``json.dumps`` and a template engine take it as it is. Times are ISO 8601 strings in UTC, and
where a person waits for one, also whole seconds left at ``now``, rounded so that a countdown
built on them never opens early (``*_in`` for a wait rounds up) nor closes late (``expires_in``
rounds down). The seconds are relative, so a page can count down with its own clock however far
it is from the server's.

No view carries a secret, a digest or a code, except :func:`issued_view`, which carries the
secret of the one answer that hands it out. This module reads records and the policy and
decides nothing: a preview of an edit runs the core's own decision on a copy
(:func:`edit_preview`) rather than restating its rule.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Final

from keyturn.core import checks, commands, time_rules, validation
from keyturn.core.changes import Edit, changed_fields
from keyturn.core.commands import Decision
from keyturn.core.decide import decide
from keyturn.core.lifecycle import State
from keyturn.core.scope import RESOURCES, Scope
from keyturn.service import UNSET

if TYPE_CHECKING:
    from datetime import datetime

    from keyturn.core.errors import ConfirmationRequired
    from keyturn.core.policy import Policy
    from keyturn.core.records import ApiKey, HistoryEntry, IssuedSecret, PendingCode

#: Each state in a person's words, as a portal's list shows it.
STATE_LABELS: Final = {
    State.CREATED: "Created, not activated",
    State.SECRET_ACKNOWLEDGED: "Not activated",
    State.PENDING_2FA: "Waiting for the code",
    State.ACTIVE: "Active",
    State.DISABLED: "Deactivated",
    State.REMOVED: "Removed",
}


def iso(when: datetime) -> str:
    """``when`` as ISO 8601 in UTC (``2026-01-01T12:00:00+00:00``)."""
    return when.isoformat()


def seconds_until(when: datetime, now: datetime, *, round_up: bool = True) -> int:
    """Whole seconds from ``now`` to ``when``, at least 0: rounded up, or down if asked."""
    left = (when - now).total_seconds()
    if left <= 0:
        return 0
    return math.ceil(left) if round_up else math.floor(left)


def scope_view(scope: Scope) -> dict[str, str]:
    """Every Deribit resource with its level (``none``, ``read``, ``read_write``)."""
    return {r: scope.level(r).label for r in RESOURCES}


def key_view(key: ApiKey, *, now: datetime, policy: Policy) -> dict[str, Any]:
    """A key for a page or a JSON answer; ``code`` describes its activation code, if any."""
    return {
        "id": key.id,
        "name": key.name,
        "owner": key.owner,
        "state": key.state.value,
        "state_label": STATE_LABELS[key.state],
        "enabled": key.enabled,
        "client_id": key.client_id,
        "fingerprint": key.fingerprint,
        "max_scope": str(key.max_scope),
        "scope": scope_view(key.max_scope),
        "ip_whitelist": [str(n) for n in key.ip_whitelist],
        "enabled_features": list(key.enabled_features),
        "signs_with_public_key": key.public_key is not None,
        "version": key.version,
        "created_at": iso(key.created_at),
        "updated_at": iso(key.updated_at),
        "code": code_view(key, now=now, policy=policy),
    }


def issued_view(issued: IssuedSecret, *, now: datetime, policy: Policy) -> dict[str, Any]:
    """The answer of a create or a reset: the key and its secret, to show to the person once."""
    return {**key_view(issued.key, now=now, policy=policy), "client_secret": issued.client_secret}


def _timing(
    sent_at: datetime, expires_at: datetime, resend_at: datetime, now: datetime
) -> dict[str, Any]:
    return {
        "sent_at": iso(sent_at),
        "expires_at": iso(expires_at),
        "expires_in": seconds_until(expires_at, now, round_up=False),
        "expired": now >= expires_at,
        "resend_at": iso(resend_at),
        "resend_in": seconds_until(resend_at, now),
    }


def next_send_at(key: ApiKey, *, now: datetime, policy: Policy) -> datetime:
    """The earliest time a new code can be sent for ``key``: ``now`` if it can be now.

    The later of the resend wait (from the last code sent, whatever happened since) and the
    send cap (``max_sends`` per ``send_window``): the core's own rules.
    """
    return checks.next_send_at(key, now, policy)


def activation_wait(key: ApiKey, *, now: datetime, policy: Policy) -> int:
    """Whole seconds before ACTIVATE on ``key`` can do anything (rounded up; 0: it can now).

    None while the key has a live code whose resend wait runs (ACTIVATE reopens the dialog on
    it); else the wait for a new code (:func:`next_send_at`). The core's own rules.
    """
    if checks.code_reusable(key, now, policy):
        return 0
    return seconds_until(next_send_at(key, now=now, policy=policy), now)


def code_view(key: ApiKey, *, now: datetime, policy: Policy) -> dict[str, Any] | None:
    """The key's pending activation code (never the code itself), or ``None`` if it has none.

    ``attempts_left`` counts the wrong tries it survives; ``next_send_in`` is how long until
    "Resend" can send (the resend wait or the send cap, whichever is later); ``locked`` says
    that too many wrong codes in a row locked activation until an operator unlocks it.
    """
    pending: PendingCode | None = key.pending
    if pending is None:
        return None
    send_at = next_send_at(key, now=now, policy=policy)
    return {
        **_timing(pending.sent_at, pending.expires_at, pending.resend_at, now),
        "attempts_left": checks.attempts_left(key, policy),
        "next_send_at": iso(send_at),
        "next_send_in": seconds_until(send_at, now),
        "send_limited": time_rules.next_send_at(key.sends, now, policy) is not None,
        "locked": key.consecutive_failures >= policy.max_consecutive_failures,
    }


def challenge_view(
    required: ConfirmationRequired, *, now: datetime, policy: Policy
) -> dict[str, Any]:
    """A confirmation code that was just sent (:class:`~keyturn.ConfirmationRequired`).

    ``challenge_id`` goes back with the code; the times follow the policy the service runs
    under (a code valid ``code_ttl``, a new one after ``resend_after``).
    """
    sent_at = required.expires_at - policy.code_ttl
    resend_at = required.resend_at or sent_at + policy.resend_after
    return {
        "challenge_id": required.challenge_id,
        "action": required.action,
        "key_id": required.key_id,
        **_timing(sent_at, required.expires_at, resend_at, now),
    }


def history_view(entry: HistoryEntry) -> dict[str, Any]:
    """One line of a key's audit trail, its states also in a person's words (``*_label``)."""
    return {
        "version": entry.version,
        "at": iso(entry.at),
        "action": entry.action.value,
        "event": entry.event,
        "from_state": entry.from_state.value if entry.from_state else None,
        "from_label": STATE_LABELS[entry.from_state] if entry.from_state else None,
        "to_state": entry.to_state.value,
        "to_label": STATE_LABELS[entry.to_state],
        "actor": entry.actor,
        "detail": entry.detail,
    }


def edit_preview(
    key: ApiKey,
    *,
    now: datetime,
    policy: Policy,
    name: object = UNSET,
    max_scope: object = UNSET,
    ip_whitelist: object = UNSET,
) -> dict[str, Any]:
    """What an edit would do to ``key``: the fields it changes and whether it deactivates it.

    The core's own decision runs on the key as it is, so the preview says what the service
    would do now (the portal's warning "the key will be deactivated"). Bad input raises
    :class:`~keyturn.InvalidInput`; an edit the key's state refuses raises
    :class:`~keyturn.ActionNotAllowed`. Nothing is written.
    """
    edit = Edit(
        name=None if name is UNSET else validation.name(name),
        max_scope=None if max_scope is UNSET else Scope.parse(max_scope),
        ip_whitelist=None if ip_whitelist is UNSET else validation.ip_whitelist(ip_whitelist),
    )
    outcome = decide(
        key, commands.Edit(key.owner, edit), now=now, policy=policy, new_id=lambda: "preview"
    )
    change = outcome.change if isinstance(outcome, Decision) else None
    return {
        "changes": list(changed_fields(key, edit)),
        "deactivates": change is not None and key.enabled and not change.key.enabled,
    }


__all__ = [
    "RESOURCES",
    "STATE_LABELS",
    "activation_wait",
    "challenge_view",
    "code_view",
    "edit_preview",
    "history_view",
    "iso",
    "issued_view",
    "key_view",
    "next_send_at",
    "scope_view",
    "seconds_until",
]
