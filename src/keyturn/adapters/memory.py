"""The in-memory key store: the reference adapter for :class:`~keyturn.ports.KeyStore`.

For tests and single-process use; nothing survives the process. It keeps the same promises as the
persistent stores (atomic changes, optimistic versions, quota checked inside the write, outbox
claims), under one lock, and passes the same contract suite (:mod:`keyturn.testing.contract`).
Records are frozen, so handing them out shares nothing mutable.

One piece: it is the SQL store's twin, one dict per table under one lock; the contract suite
reads it side by side with the SQL store.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING

import attrs

from keyturn.core.checks import check_quota
from keyturn.core.errors import ConcurrentUpdate, InvalidInput
from keyturn.core.records import Delivery, KeyEvent, LoadedSession
from keyturn.ports.common import CLAIM_LEASE

if TYPE_CHECKING:
    from collections.abc import Collection, Iterator, Sequence
    from datetime import datetime

    from keyturn.core.records import (
        ApiKey,
        Challenge,
        Change,
        HistoryEntry,
        Notification,
        SecurityKey,
        Session,
    )


@attrs.define
class _Outbox:
    notification: Notification
    attempts: int = 0
    due_at: datetime | None = None
    claimed_until: datetime | None = None
    last_error: str = ""


@attrs.define
class InMemoryKeyStore:
    """Keys, history, challenges and outbox in dicts, behind one lock."""

    _keys: dict[int, ApiKey] = attrs.field(factory=dict, init=False)
    _by_client_id: dict[str, int] = attrs.field(factory=dict, init=False)
    _history: dict[int, list[HistoryEntry]] = attrs.field(factory=dict, init=False)
    _challenges: dict[str, Challenge] = attrs.field(factory=dict, init=False)
    _undelivered: dict[str, _Outbox] = attrs.field(factory=dict, init=False)
    _nonces: dict[tuple[str, str], datetime] = attrs.field(factory=dict, init=False)
    _security_keys: dict[str, SecurityKey] = attrs.field(factory=dict, init=False)
    _sessions: dict[str, Session] = attrs.field(factory=dict, init=False)
    _ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    def get(self, key_id: int) -> ApiKey | None:
        """The key with this id, or ``None``."""
        return self._keys.get(key_id)

    def get_by_client_id(self, client_id: str) -> ApiKey | None:
        """The key with this client id, or ``None``."""
        key_id = self._by_client_id.get(client_id)
        return None if key_id is None else self._keys[key_id]

    def list_keys(self, owner: str | None = None) -> list[ApiKey]:
        """Keys of ``owner`` (or all), by id."""
        with self._lock:
            keys = list(self._keys.values())
        return [k for k in keys if owner is None or k.owner == owner]

    def insert(self, change: Change, *, max_live_per_owner: int, claim: bool = False) -> ApiKey:
        """Store a new key, choosing its id, if the owner is under quota."""
        if change.expected_version != 0:
            raise InvalidInput("change", "a new key must have expected_version 0")
        with self._lock:
            owner = change.key.owner
            live = sum(1 for k in self._keys.values() if k.owner == owner and k.live)
            check_quota(owner, live, max_live_per_owner)
            if change.key.client_id in self._by_client_id:
                raise ConcurrentUpdate(0, 0, action="create")
            self._check_challenge(change.challenge)
            change = change.with_key_id(next(self._ids))
            self._write(change, claim=claim)
            return change.key

    def apply(self, change: Change, *, claim: bool = False) -> None:
        """Store a change to an existing key, if nobody changed it since it was read."""
        with self._lock:
            current = self._keys.get(change.key.id)
            if current is None or current.version != change.expected_version:
                raise ConcurrentUpdate(change.key.id, change.expected_version)
            self._check_challenge(change.challenge)
            self._write(change, claim=claim)

    def _check_challenge(self, challenge: Challenge | None) -> None:
        if challenge is None:
            return
        stored = self._challenges.get(challenge.id)
        if stored is None or stored.version != challenge.version - 1:
            raise ConcurrentUpdate(challenge.key_id or 0, challenge.version - 1)

    def _write(self, change: Change, *, claim: bool) -> None:
        key = change.key
        self._keys[key.id] = key
        self._by_client_id[key.client_id] = key.id
        self._history.setdefault(key.id, []).extend(change.history)
        if change.challenge is not None:
            self._challenges[change.challenge.id] = change.challenge
        self._enqueue(change.notifications, claim=claim)

    def _enqueue(self, notifications: Sequence[Notification], *, claim: bool) -> None:
        for n in notifications:
            entry = _Outbox(n)
            if claim:
                entry.attempts, entry.claimed_until = 1, n.created_at + CLAIM_LEASE
            self._undelivered[n.id] = entry

    def history(self, key_id: int) -> list[HistoryEntry]:
        """The key's audit trail, oldest first."""
        with self._lock:
            return list(self._history.get(key_id, ()))

    def access_log(
        self,
        owner: str,
        *,
        events: Collection[str] | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> list[KeyEvent]:
        """The owner's history entries (of ``events``), newest first, one page."""
        with self._lock:
            found = [
                KeyEvent(key.client_id, h)
                for key in self._keys.values()
                if key.owner == owner
                for h in self._history.get(key.id, ())
                if events is None or h.event in events
            ]
        found.sort(key=lambda e: (e.entry.at, e.entry.key_id, e.entry.version), reverse=True)
        return found[offset : offset + limit]

    def start_session(self, session: Session, *, max_per_key: int, now: datetime) -> None:
        """Record a new session; forget the key's dead ones and end its oldest beyond the cap."""
        with self._lock:
            for s in list(self._sessions.values()):
                if s.key_id == session.key_id and not s.live(now):
                    del self._sessions[s.id]
            self._sessions[session.id] = session
            mine = sorted(
                (s for s in self._sessions.values() if s.key_id == session.key_id),
                key=lambda s: (s.created_at, s.id),
                reverse=True,
            )
            for s in mine[max_per_key:]:
                del self._sessions[s.id]

    def load_session(self, session_id: str) -> LoadedSession | None:
        """The session, its key, and whether the owner has a security key; or ``None``."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        key = self._keys[session.key_id]
        return LoadedSession(key, session, security_key=key.owner in self._security_keys)

    def rotate_session(self, session_id: str, *, expected: str, new: str) -> bool:
        """Swap the session's live refresh id ``expected`` for ``new``, if it is still live."""
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None or s.ended_at is not None or s.refresh_id != expected:
                return False
            self._sessions[session_id] = attrs.evolve(s, refresh_id=new)
            return True

    def end_session(self, session_id: str, now: datetime) -> bool:
        """End a session; whether it was live."""
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None or s.ended_at is not None:
                return False
            self._sessions[session_id] = attrs.evolve(s, ended_at=now)
            return True

    def get_security_key(self, owner: str) -> SecurityKey | None:
        """The owner's security key, or ``None``."""
        return self._security_keys.get(owner)

    def save_security_key(self, security_key: SecurityKey) -> None:
        """Store a security key one version above the stored one (version 1: a new one)."""
        with self._lock:
            stored = self._security_keys.get(security_key.owner)
            stored_version = 0 if stored is None else stored.version
            if stored_version != security_key.version - 1:
                raise ConcurrentUpdate(0, security_key.version - 1, action="security_key")
            self._security_keys[security_key.owner] = security_key

    def remove_security_key(self, owner: str) -> bool:
        """Forget the owner's security key; whether there was one."""
        with self._lock:
            return self._security_keys.pop(owner, None) is not None

    def list_security_keys(self) -> list[SecurityKey]:
        """Every account's security key, by owner."""
        with self._lock:
            return [self._security_keys[o] for o in sorted(self._security_keys)]

    def add_challenge(
        self,
        challenge: Challenge,
        notifications: Sequence[Notification],
        *,
        claim: bool = False,
        seen: tuple[datetime, int] | None = None,
    ) -> None:
        """Store a new challenge and enqueue its code (if the owner's recent ones are as seen)."""
        with self._lock:
            if challenge.id in self._challenges or (
                seen is not None and self._sent_since(challenge, seen[0]) != seen[1]
            ):
                raise ConcurrentUpdate(challenge.key_id or 0, 0, action="confirm")
            self._challenges[challenge.id] = challenge
            self._enqueue(notifications, claim=claim)

    def get_challenge(self, challenge_id: str) -> Challenge | None:
        """The challenge with this id, or ``None``."""
        return self._challenges.get(challenge_id)

    def _sent_since(self, new: Challenge, since: datetime) -> int:
        """The owner's challenges for ``new``'s action and key sent after ``since`` (locked)."""
        return sum(
            1
            for c in self._challenges.values()
            if (c.owner, c.action, c.key_id) == (new.owner, new.action, new.key_id)
            and c.code.sent_at > since
        )

    def recent_challenges(self, owner: str, *, since: datetime) -> list[Challenge]:
        """The owner's challenges whose code was sent after ``since``, oldest first."""
        with self._lock:
            mine = [
                c for c in self._challenges.values() if c.owner == owner and c.code.sent_at > since
            ]
        return sorted(mine, key=lambda c: c.code.sent_at)

    def save_challenge(self, challenge: Challenge) -> None:
        """Store a challenge one version above the stored one."""
        with self._lock:
            self._check_challenge(challenge)
            self._challenges[challenge.id] = challenge

    def use_nonce(self, client_id: str, nonce: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record a nonce unless the client used it and it is still remembered."""
        with self._lock:
            for k in [k for k, until in self._nonces.items() if until <= now]:
                del self._nonces[k]
            if (client_id, nonce) in self._nonces:
                return False
            self._nonces[client_id, nonce] = expires_at
            return True

    def reseal(self, key_id: int, *, expected: str, sealed: str) -> bool:
        """Swap the key's sealed secret if it is still ``expected``."""
        with self._lock:
            key = self._keys.get(key_id)
            if key is None or key.sealed_secret != expected:
                return False
            self._keys[key_id] = attrs.evolve(key, sealed_secret=sealed)
            return True

    def claim_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        """Take up to ``limit`` due, unclaimed notifications, oldest first."""
        with self._lock:
            due = [
                e
                for e in self._undelivered.values()
                if (e.due_at is None or e.due_at <= now)
                and (e.claimed_until is None or e.claimed_until <= now)
            ]
            due.sort(key=lambda e: (e.notification.created_at, e.notification.id))
            claimed = due[:limit]
            for e in claimed:
                e.claimed_until = now + CLAIM_LEASE
                e.attempts += 1
            return [Delivery(e.notification, e.attempts) for e in claimed]

    def mark_delivered(self, notifications: Sequence[Notification], now: datetime) -> None:  # noqa: ARG002 (port signature)
        """Forget delivered notifications, codes and all (the keys' history is the audit)."""
        with self._lock:
            for n in notifications:
                self._undelivered.pop(n.id, None)

    def mark_failed(self, notification_id: str, retry_at: datetime, error: str) -> None:
        """Record a failed delivery, due again at ``retry_at``."""
        with self._lock:
            e = self._undelivered[notification_id]
            e.due_at = retry_at
            e.claimed_until = None
            e.last_error = error[:500]

    def pending_notifications(self) -> int:
        """How many notifications wait for delivery (for operators and tests)."""
        return len(self._undelivered)

    def stored_codes(self) -> Iterator[str]:
        """Codes still held in the outbox, as stored: sealed (undelivered ones only; for audits)."""
        with self._lock:
            codes = [e.notification.code for e in self._undelivered.values()]
        return (c for c in codes if c is not None)

    def close(self) -> None:
        """Nothing to release."""
