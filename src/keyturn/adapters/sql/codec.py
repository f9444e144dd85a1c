"""Records to and from storage rows: JSON text for records, integer microseconds for times.

One piece: every record's encoding and decoding, so the bytes every SQL store writes have one
definition (a record's codec and its inverse side by side); each function is short.

Shared by every SQL store so that they store the same bytes. Times are stored as microseconds
since the Unix epoch (UTC): exact, orderable in any database, and free of time-zone parsing. This
module never sees a secret: keys hold only digests, and a notification's code travels in its own
column so that it can be dropped on delivery.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from typing import TYPE_CHECKING, Any, Final

from keyturn.core.lifecycle import Action, State
from keyturn.core.records import (
    ApiKey,
    Challenge,
    HistoryEntry,
    Notification,
    NotificationKind,
    PendingCode,
    SecurityKey,
    Session,
)
from keyturn.core.scope import Scope
from keyturn.core.time_rules import EPOCH, from_us, to_us

if TYPE_CHECKING:
    from keyturn.core.validation import IpNetwork


def _pending_out(p: PendingCode | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "ref": p.ref,
        "sent_at": to_us(p.sent_at),
        "expires_at": to_us(p.expires_at),
        "resend_at": to_us(p.resend_at),
        "attempts": p.attempts,
        "ended": p.ended,
    }


def _pending_in(d: dict[str, Any] | None) -> PendingCode | None:
    if d is None:
        return None
    return PendingCode(
        ref=d["ref"],
        sent_at=from_us(d["sent_at"]),
        expires_at=from_us(d["expires_at"]),
        resend_at=from_us(d["resend_at"]),
        attempts=d["attempts"],
        ended=d.get("ended", False),
    )


def key_to_json(key: ApiKey) -> str:
    """The key as JSON text, but for its id (the row's ``id`` column holds it)."""
    return json.dumps(
        {
            "owner": key.owner,
            "client_id": key.client_id,
            "name": key.name,
            "max_scope": str(key.max_scope),
            "ip_whitelist": [str(n) for n in key.ip_whitelist],
            "enabled_features": list(key.enabled_features),
            "state": key.state.value,
            "version": key.version,
            "created_at": to_us(key.created_at),
            "updated_at": to_us(key.updated_at),
            "fingerprint": key.fingerprint,
            "secret_digest": key.secret_digest,
            "public_key": key.public_key,
            "sealed_secret": key.sealed_secret,
            "activation_origin": key.activation_origin.value if key.activation_origin else None,
            "pending": _pending_out(key.pending),
            "consecutive_failures": key.consecutive_failures,
            "sends": [to_us(s) for s in key.sends],
            "generation": key.generation,
        },
        separators=(",", ":"),
    )


@functools.lru_cache(maxsize=1024)
def _scope(text: str) -> Scope:
    """A stored scope, parsed once per distinct text (a :class:`Scope` is immutable)."""
    return Scope.parse(text)


@functools.lru_cache(maxsize=1024)
def _whitelist(networks: tuple[str, ...]) -> tuple[IpNetwork, ...]:
    """A stored IP whitelist, parsed once per distinct list (networks are immutable)."""
    return tuple(ipaddress.ip_network(n) for n in networks)


def key_from_json(key_id: int, text: str) -> ApiKey:
    """The key with id ``key_id`` stored as ``text``.

    Decoding is on every authentication's path, so what repeats across keys (scopes,
    whitelists) is parsed once and shared; ``benchmarks/bench.py`` measures it.
    """
    d = json.loads(text)
    whitelist = d["ip_whitelist"]
    origin = d["activation_origin"]
    return ApiKey(
        id=key_id,
        owner=d["owner"],
        client_id=d["client_id"],
        name=d["name"],
        max_scope=_scope(d["max_scope"]),
        ip_whitelist=_whitelist(tuple(whitelist)) if whitelist else (),
        enabled_features=tuple(d["enabled_features"]),
        state=State(d["state"]),
        version=d["version"],
        created_at=from_us(d["created_at"]),
        updated_at=from_us(d["updated_at"]),
        fingerprint=d["fingerprint"],
        secret_digest=d["secret_digest"],
        public_key=d["public_key"],
        sealed_secret=d.get("sealed_secret"),
        activation_origin=State(origin) if origin else None,
        pending=_pending_in(d["pending"]),
        consecutive_failures=d["consecutive_failures"],
        sends=tuple(from_us(s) for s in d["sends"]) if d["sends"] else (),
        generation=d.get("generation", 0),
    )


def challenge_to_json(c: Challenge) -> str:
    """The whole challenge as JSON text."""
    return json.dumps(
        {
            "id": c.id,
            "owner": c.owner,
            "action": c.action.value,
            "key_id": c.key_id,
            "request_digest": c.request_digest,
            "code": _pending_out(c.code),
            "used": c.used,
            "version": c.version,
        },
        separators=(",", ":"),
    )


def challenge_from_json(text: str) -> Challenge:
    """The challenge stored as ``text``."""
    d = json.loads(text)
    code = _pending_in(d["code"])
    assert code is not None  # noqa: S101 (a challenge always has its code)
    return Challenge(
        id=d["id"],
        owner=d["owner"],
        action=Action(d["action"]),
        key_id=d["key_id"],
        request_digest=d["request_digest"],
        code=code,
        used=d["used"],
        version=d["version"],
    )


def security_key_to_json(k: SecurityKey) -> str:
    """The whole security key (its secret sealed) as JSON text."""
    return json.dumps(
        {
            "owner": k.owner,
            "name": k.name,
            "kind": k.kind,
            "sealed_secret": k.sealed_secret,
            "created_at": to_us(k.created_at),
            "last_step": k.last_step,
            "failures": k.failures,
            "version": k.version,
        },
        separators=(",", ":"),
    )


def security_key_from_json(text: str) -> SecurityKey:
    """The security key stored as ``text``."""
    d = json.loads(text)
    return SecurityKey(
        owner=d["owner"],
        name=d["name"],
        kind=d["kind"],
        sealed_secret=d["sealed_secret"],
        created_at=from_us(d["created_at"]),
        last_step=d["last_step"],
        failures=d["failures"],
        version=d["version"],
    )


def notification_to_json(n: Notification) -> str:
    """The notification without its code (which is stored apart)."""
    return json.dumps(
        {
            "id": n.id,
            "owner": n.owner,
            "key_id": n.key_id,
            "key_name": n.key_name,
            "kind": n.kind.value,
            "subject": n.subject,
            "created_at": to_us(n.created_at),
            "expires_at": to_us(n.expires_at) if n.expires_at else None,
        },
        separators=(",", ":"),
    )


def notification_from_json(text: str, code: str | None) -> Notification:
    """The notification stored as ``text``, with its code if still kept."""
    d = json.loads(text)
    return Notification(
        id=d["id"],
        owner=d["owner"],
        key_id=d["key_id"],
        key_name=d["key_name"],
        kind=NotificationKind(d["kind"]),
        subject=d["subject"],
        created_at=from_us(d["created_at"]),
        code=code,
        expires_at=from_us(d["expires_at"]) if d["expires_at"] is not None else None,
    )


def history_row(h: HistoryEntry) -> tuple[object, ...]:
    """A history entry as the columns of ``key_history``."""
    return (
        h.key_id,
        h.version,
        h.action.value,
        h.event,
        h.from_state.value if h.from_state else None,
        h.to_state.value,
        h.actor,
        to_us(h.at),
        h.detail,
    )


def history_from_row(row: tuple[Any, ...]) -> HistoryEntry:
    """A ``key_history`` row as an entry."""
    key_id, version, action, event, from_state, to_state, actor, at, detail = row
    return HistoryEntry(
        key_id=key_id,
        version=version,
        action=Action(action),
        event=event,
        from_state=State(from_state) if from_state else None,
        to_state=State(to_state),
        actor=actor,
        at=from_us(at),
        detail=detail,
    )


def session_row(s: Session) -> tuple[object, ...]:
    """A session as the columns of ``keyturn_sessions``."""
    return (
        s.id,
        s.key_id,
        s.generation,
        s.refresh_id,
        to_us(s.created_at),
        to_us(s.expires_at),
        to_us(s.ended_at) if s.ended_at is not None else None,
    )


def session_from_row(row: tuple[Any, ...]) -> Session:
    """A ``keyturn_sessions`` row as a session."""
    session_id, key_id, generation, refresh_id, created_at, expires_at, ended_at = row
    return Session(
        id=session_id,
        key_id=key_id,
        generation=generation,
        refresh_id=refresh_id,
        created_at=from_us(created_at),
        expires_at=from_us(expires_at),
        ended_at=from_us(ended_at) if ended_at is not None else None,
    )


#: A stored key of typical size, decoded where no key was found, so that a miss costs what a hit
#: does (see ``get_by_client_id``). It holds no secret: its digests and sealed text are filler.
DECOY_KEY: Final = key_to_json(
    ApiKey(
        id=0,
        owner="decoy@example.invalid",
        client_id="decoy000",
        name="decoy_key",
        max_scope=Scope.parse("account:read_write trade:read_write wallet:read"),
        ip_whitelist=(ipaddress.ip_network("192.0.2.0/24"),),
        enabled_features=(),
        state=State.ACTIVE,
        version=3,
        created_at=EPOCH,
        updated_at=EPOCH,
        fingerprint="sha256:" + "0" * 16,
        secret_digest="0" * 64,
        sealed_secret="k1:" + "A" * 120,
    )
)
