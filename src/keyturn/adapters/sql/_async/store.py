"""The SQL key store, written once: every query of :class:`~keyturn.ports.AsyncKeyStore`.

Each method is the fewest statements its promise allows, in plain sight. A read is one
statement on its own (no transaction around it); a change is one write transaction: the key,
its history, its consumed challenge and its notifications together. With ``claim=True`` the
notifications are stored already claimed by the caller, which delivers them at once and marks
them in one more statement (:meth:`AsyncSqlStore.mark_delivered`): inline delivery costs no
transaction of its own. Keys and notifications are stored as JSON text (:mod:`..codec`) beside the
columns that are queried. Sessions, nonces and security keys are in :mod:`.access`.
This module is the async source: ``scripts/unasync.py`` writes its blocking twin.

One piece: keys, history, challenges and the outbox are written together by one change, so their
statements stay side by side (the rest of the tables are already in :mod:`.access`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from keyturn.adapters.sql import codec
from keyturn.adapters.sql._async.access import AsyncAccessTables
from keyturn.adapters.sql.common import DuplicateRow
from keyturn.adapters.sql.schema import CLAIM_LEASE_US
from keyturn.core.checks import check_quota
from keyturn.core.errors import ConcurrentUpdate
from keyturn.core.records import Delivery, KeyEvent
from keyturn.core.time_rules import to_us

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from keyturn.adapters.sql._async.base import AsyncTx
    from keyturn.core.records import ApiKey, Challenge, Change, HistoryEntry, Notification

_HISTORY_COLUMNS = "key_id, version, action, event, from_state, to_state, actor, at, detail"
_INSERT_HISTORY = (
    f"INSERT INTO keyturn_history ({_HISTORY_COLUMNS}, owner) "  # noqa: S608 (constants only)
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_ENQUEUE = (
    "INSERT INTO keyturn_outbox (id, created_at, due_at, claimed_until, attempts, code, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _placeholders(count: int) -> str:
    return ", ".join("?" * count)


class AsyncSqlStore(AsyncAccessTables):
    """An :class:`~keyturn.ports.AsyncKeyStore` on any driver that fills the hooks."""

    # --- keys -------------------------------------------------------------------------------

    async def get(self, key_id: int) -> ApiKey | None:
        """The key with this id, removed ones included, or ``None``."""
        row = await self._one("SELECT data FROM keyturn_keys WHERE id = ?", (key_id,))
        return codec.key_from_json(key_id, row[0]) if row else None

    async def get_by_client_id(self, client_id: str) -> ApiKey | None:
        """The key with this client id, or ``None``.

        A miss decodes a decoy record of a key's size, so that it costs what a hit costs: the
        time of an authentication does not tell whether a client id exists.
        """
        row = await self._one("SELECT id, data FROM keyturn_keys WHERE client_id = ?", (client_id,))
        if row is None:
            codec.key_from_json(0, codec.DECOY_KEY)
            return None
        return codec.key_from_json(row[0], row[1])

    async def list_keys(self, owner: str | None = None) -> list[ApiKey]:
        """Keys of ``owner`` (every owner's when ``None``), removed ones included, by id."""
        if owner is None:
            rows = await self._all("SELECT id, data FROM keyturn_keys ORDER BY id")
        else:
            rows = await self._all(
                "SELECT id, data FROM keyturn_keys WHERE owner = ? ORDER BY id", (owner,)
            )
        return [codec.key_from_json(r[0], r[1]) for r in rows]

    async def insert(
        self, change: Change, *, max_live_per_owner: int, claim: bool = False
    ) -> ApiKey:
        """Store a new key under the owner's quota, choosing its id, in one transaction."""
        owner = change.key.owner
        try:
            async with self._transaction() as tx:
                if self.dialect.owner_lock is not None:
                    await tx.run(self.dialect.owner_lock, (owner,))
                live = await tx.one(
                    "SELECT COUNT(*) FROM keyturn_keys WHERE owner = ? AND live = 1", (owner,)
                )
                check_quota(owner, int(live[0]) if live else 0, max_live_per_owner)
                key = change.key
                row = await tx.one(
                    "INSERT INTO keyturn_keys (owner, client_id, live, version, data) "
                    "VALUES (?, ?, 1, ?, ?) RETURNING id",
                    (owner, key.client_id, key.version, codec.key_to_json(key)),
                )
                assert row is not None  # noqa: S101 (RETURNING always answers)
                change = change.with_key_id(int(row[0]))
                await self._write_rest(tx, change, claim=claim)
        except DuplicateRow:  # a client id drawn twice: the caller draws again
            raise ConcurrentUpdate(0, 0, action="create") from None
        return change.key

    async def apply(self, change: Change, *, claim: bool = False) -> None:
        """Store a change if the key is still at ``expected_version``, in one transaction."""
        key = change.key
        async with self._transaction() as tx:
            updated = await tx.run(
                "UPDATE keyturn_keys SET live = ?, version = ?, data = ? "
                "WHERE id = ? AND version = ?",
                (
                    int(key.live),
                    key.version,
                    codec.key_to_json(key),
                    key.id,
                    change.expected_version,
                ),
            )
            if updated != 1:
                raise ConcurrentUpdate(key.id, change.expected_version)
            await self._write_rest(tx, change, claim=claim)

    async def _write_rest(self, tx: AsyncTx, change: Change, *, claim: bool) -> None:
        """The parts of a change besides the key row: history, challenge, notifications."""
        owner = change.key.owner
        await tx.many(_INSERT_HISTORY, [(*codec.history_row(h), owner) for h in change.history])
        if change.challenge is not None:
            await self._save_challenge(tx, change.challenge)
        await self._enqueue(tx, change.notifications, claim=claim)

    async def history(self, key_id: int) -> list[HistoryEntry]:
        """The key's audit trail, oldest first."""
        rows = await self._all(
            f"SELECT {_HISTORY_COLUMNS} FROM keyturn_history "  # noqa: S608 (constants only)
            "WHERE key_id = ? ORDER BY version",
            (key_id,),
        )
        return [codec.history_from_row(tuple(r)) for r in rows]

    async def access_log(
        self,
        owner: str,
        *,
        events: Collection[str] | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> list[KeyEvent]:
        """One page of the owner's history (of ``events``), newest first.

        The page is chosen on the history's ``(owner, at, key_id, version)`` index alone, read
        backwards, and only its rows are joined to their keys' client ids.
        """
        chosen = sorted(events) if events is not None else []
        where = f" AND event IN ({_placeholders(len(chosen))})" if events is not None else ""
        rows = await self._all(
            f"SELECT h.*, k.client_id FROM (SELECT {_HISTORY_COLUMNS} FROM keyturn_history "  # noqa: S608 (constants only)
            f"WHERE owner = ?{where} ORDER BY at DESC, key_id DESC, version DESC "
            "LIMIT ? OFFSET ?) h JOIN keyturn_keys k ON k.id = h.key_id "
            "ORDER BY h.at DESC, h.key_id DESC, h.version DESC",
            (owner, *chosen, limit, offset),
        )
        return [KeyEvent(r[-1], codec.history_from_row(tuple(r[:-1]))) for r in rows]

    async def reseal(self, key_id: int, *, expected: str, sealed: str) -> bool:
        """Swap the key's sealed secret if it is still ``expected`` (version unchanged)."""
        async with self._transaction() as tx:
            row = await tx.one("SELECT data FROM keyturn_keys WHERE id = ?", (key_id,))
            key = codec.key_from_json(key_id, row[0]) if row else None
            if key is None or key.sealed_secret != expected:
                return False
            await tx.run(
                "UPDATE keyturn_keys SET data = ? WHERE id = ?",
                (codec.key_to_json(attrs.evolve(key, sealed_secret=sealed)), key_id),
            )
        return True

    # --- challenges -------------------------------------------------------------------------

    async def add_challenge(
        self,
        challenge: Challenge,
        notifications: Sequence[Notification],
        *,
        claim: bool = False,
        seen: tuple[datetime, int] | None = None,
    ) -> None:
        """Store a new challenge and enqueue its code, in one transaction.

        With ``seen``, the owner's challenges for the same action and key sent after ``since``
        are counted first, under the owner's lock (PostgreSQL's advisory lock, in a READ
        COMMITTED transaction so the count sees what the lock waited for; SQLite's writers take
        turns), and a count other than the one seen writes nothing and raises ConcurrentUpdate.
        """
        try:
            async with self._transaction() as tx:
                if seen is not None:
                    if self.dialect.owner_lock is not None:
                        await tx.run(self.dialect.owner_lock, (challenge.owner,))
                    row = await tx.one(
                        "SELECT COUNT(*) FROM keyturn_challenges WHERE owner = ? AND sent_at > ? "
                        "AND action = ? AND key_id = ?",
                        (
                            challenge.owner,
                            to_us(seen[0]),
                            challenge.action.value,
                            _key_column(challenge),
                        ),
                    )
                    if row is None or int(row[0]) != seen[1]:
                        raise ConcurrentUpdate(challenge.key_id or 0, 0, action="confirm")
                await tx.run(
                    "INSERT INTO keyturn_challenges "
                    "(id, version, owner, sent_at, action, key_id, data) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        challenge.id,
                        challenge.version,
                        challenge.owner,
                        to_us(challenge.code.sent_at),
                        challenge.action.value,
                        _key_column(challenge),
                        codec.challenge_to_json(challenge),
                    ),
                )
                await self._enqueue(tx, notifications, claim=claim)
        except DuplicateRow:
            raise ConcurrentUpdate(challenge.key_id or 0, 0, action="confirm") from None

    async def get_challenge(self, challenge_id: str) -> Challenge | None:
        """The challenge with this id, or ``None``."""
        row = await self._one("SELECT data FROM keyturn_challenges WHERE id = ?", (challenge_id,))
        return codec.challenge_from_json(row[0]) if row else None

    async def recent_challenges(self, owner: str, *, since: datetime) -> list[Challenge]:
        """The owner's challenges whose code was sent after ``since``, oldest first."""
        rows = await self._all(
            "SELECT data FROM keyturn_challenges WHERE owner = ? AND sent_at > ? ORDER BY sent_at",
            (owner, to_us(since)),
        )
        return [codec.challenge_from_json(r[0]) for r in rows]

    async def save_challenge(self, challenge: Challenge) -> None:
        """Store a challenge one version above the stored one (one statement)."""
        updated = await self._run(_SAVE_CHALLENGE, _challenge_row(challenge))
        if updated != 1:
            raise ConcurrentUpdate(challenge.key_id or 0, challenge.version - 1)

    async def _save_challenge(self, tx: AsyncTx, challenge: Challenge) -> None:
        if await tx.run(_SAVE_CHALLENGE, _challenge_row(challenge)) != 1:
            raise ConcurrentUpdate(challenge.key_id or 0, challenge.version - 1)

    # --- outbox -----------------------------------------------------------------------------

    async def _enqueue(
        self, tx: AsyncTx, notifications: Sequence[Notification], *, claim: bool
    ) -> None:
        rows = []
        for n in notifications:
            at = to_us(n.created_at)
            claimed = (at + CLAIM_LEASE_US, 1) if claim else (None, 0)
            rows.append((n.id, at, at, *claimed, n.code, codec.notification_to_json(n)))
        await tx.many(_ENQUEUE, rows)

    async def claim_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        """Claim up to ``limit`` due notifications, oldest first, for a lease."""
        t = to_us(now)
        async with self._transaction() as tx:
            rows = await tx.all(
                "UPDATE keyturn_outbox SET claimed_until = ?, attempts = attempts + 1 "  # noqa: S608 (constants only)
                "WHERE id IN (SELECT id FROM keyturn_outbox "
                "WHERE delivered_at IS NULL AND due_at <= ? "
                "AND (claimed_until IS NULL OR claimed_until <= ?) "
                f"ORDER BY created_at, id LIMIT ?{self.dialect.claim_lock}) "
                "RETURNING created_at, id, data, code, attempts",
                (t + CLAIM_LEASE_US, t, t, limit),
            )
        rows.sort(key=lambda r: (r[0], r[1]))
        return [Delivery(codec.notification_from_json(d, c), int(a)) for _, _, d, c, a in rows]

    async def mark_delivered(self, notifications: Sequence[Notification], now: datetime) -> None:
        """Record delivery of ``notifications`` and drop their codes, in one statement.

        The mark is not worth a wait for the disk: if a power failure loses it, the messages
        are delivered again, as "at least once" allows; the next durable commit keeps it.
        """
        if not notifications:
            return
        await self._run(
            "UPDATE keyturn_outbox SET delivered_at = ?, claimed_until = NULL, code = NULL "  # noqa: S608 (constants only)
            f"WHERE id IN ({_placeholders(len(notifications))})",
            (to_us(now), *(n.id for n in notifications)),
            durable=False,
        )
        if any(n.code is not None for n in notifications):
            await self._after_code_dropped()

    async def mark_failed(self, notification_id: str, retry_at: datetime, error: str) -> None:
        """Record a failed delivery, due again at ``retry_at``."""
        await self._run(
            "UPDATE keyturn_outbox SET due_at = ?, claimed_until = NULL, last_error = ? "
            "WHERE id = ?",
            (to_us(retry_at), error[:500], notification_id),
        )

    async def pending_notifications(self) -> int:
        """How many notifications wait for delivery (for operators and tests)."""
        row = await self._one("SELECT COUNT(*) FROM keyturn_outbox WHERE delivered_at IS NULL")
        return int(row[0]) if row else 0

    async def stored_codes(self) -> list[str]:
        """Codes still held in the outbox, as stored: sealed (undelivered ones only; audits)."""
        rows = await self._all("SELECT code FROM keyturn_outbox WHERE code IS NOT NULL")
        return [r[0] for r in rows]


_SAVE_CHALLENGE = (
    "UPDATE keyturn_challenges SET version = ?, key_id = ?, data = ? WHERE id = ? AND version = ?"
)


def _challenge_row(challenge: Challenge) -> tuple[Any, ...]:
    data = codec.challenge_to_json(challenge)
    # the key column follows the record: a creation's challenge names its key once it is used
    return (challenge.version, _key_column(challenge), data, challenge.id, challenge.version - 1)


def _key_column(challenge: Challenge) -> int:
    """The challenge's key as its column holds it: 0 for none (so ``=`` compares it)."""
    return challenge.key_id or 0
