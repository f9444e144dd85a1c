"""The records the store contract writes: keys, challenges, notices, changes, sessions.

Plain builders with fixed times (``T0``), so that every store sees the same values.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs

from keyturn.core.lifecycle import Action, State
from keyturn.core.records import (
    ApiKey,
    Challenge,
    Change,
    HistoryEntry,
    Notification,
    NotificationKind,
    PendingCode,
    SecurityKey,
    Session,
)
from keyturn.core.scope import Scope
from keyturn.core.validation import ip_whitelist
from keyturn.crypto.hashing import new_client_id, new_token

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
#: The code the outbox test queues: long and unusual, so finding it anywhere means a leak.
UNDELIVERED_CODE = "40271993"


def new_key(owner: str = "alice", name: str = "k1") -> ApiKey:
    """An unsaved key in ``created`` (id 0, version 0) with every field set."""
    return ApiKey(
        id=0,
        owner=owner,
        client_id=new_client_id(),
        name=name,
        max_scope=Scope.parse("account:read trade:read_write"),
        ip_whitelist=ip_whitelist("10.0.0.0/8 2001:db8::/32"),
        enabled_features=("block_trade_approval",),
        state=State.CREATED,
        version=0,
        created_at=T0,
        updated_at=T0,
        fingerprint="sha256:0011223344556677",
        secret_digest="ab" * 32,
        sealed_secret="k1:" + "A" * 80,
    )


def new_challenge(action: Action, owner: str = "alice") -> Challenge:
    """An unsaved challenge for ``action`` by ``owner``, its code sent at ``T0``."""
    code = PendingCode(
        ref="r",
        sent_at=T0,
        expires_at=T0 + timedelta(minutes=5),
        resend_at=T0 + timedelta(minutes=2),
    )
    return Challenge(
        id=new_token(),
        owner=owner,
        action=action,
        key_id=None,
        request_digest="d" * 64,
        code=code,
    )


def new_security_key(owner: str, name: str = "phone") -> SecurityKey:
    """An unsaved version-1 security key of ``owner``, enrolled at ``T0``."""
    return SecurityKey(
        owner=owner, name=name, kind="tfa", sealed_secret="k1:" + new_token(), created_at=T0
    )


def code_notice(owner: str, at: datetime, code: str = "123456") -> Notification:
    """A code notification created at ``at``."""
    return Notification(
        id=new_token(),
        owner=owner,
        key_id=None,
        key_name="k1",
        kind=NotificationKind.CODE,
        subject="code",
        created_at=at,
        code=code,
        expires_at=at + timedelta(minutes=5),
    )


def creation(key: ApiKey, *notes: Notification) -> Change:
    """The change that inserts ``key``."""
    entry = HistoryEntry(
        key_id=0,
        version=1,
        action=Action.CREATE,
        event="new_api_key",
        from_state=None,
        to_state=State.CREATED,
        actor=key.owner,
        at=key.created_at,
    )
    return Change(
        key=attrs.evolve(key, version=1), expected_version=0, history=(entry,), notifications=notes
    )


def step(key: ApiKey, dest: State, at: datetime, *notes: Notification, **updates: object) -> Change:
    """The change that moves a stored ``key`` to ``dest``."""
    new = attrs.evolve(key, state=dest, version=key.version + 1, updated_at=at, **updates)  # type: ignore[arg-type]
    entry = HistoryEntry(
        key_id=key.id,
        version=new.version,
        action=Action.EDIT,
        event="changed_name",
        from_state=key.state,
        to_state=dest,
        actor=key.owner,
        at=at,
    )
    return Change(key=new, expected_version=key.version, history=(entry,), notifications=notes)


def new_session(key_id: int, at: datetime = T0) -> Session:
    """An unsaved session of key ``key_id`` started at ``at``, good for a day."""
    return Session(
        id=new_token(),
        key_id=key_id,
        generation=0,
        refresh_id=new_token(),
        created_at=at,
        expires_at=at + timedelta(days=1),
    )
