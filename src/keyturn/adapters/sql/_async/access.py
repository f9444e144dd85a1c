"""The SQL key store's tables of access: API sessions, signature nonces, and security keys.

Part of :class:`~keyturn.adapters.sql._async.store.AsyncSqlStore`, split off by subject. Loading a
session is the one read every token-authenticated request makes, so it answers all that such a
request needs: the session, its key, and whether the key's owner has a security key (a guarded
call asks nothing more when none exists).
This module is the async source: ``scripts/unasync.py`` writes its blocking twin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyturn.adapters.sql import codec
from keyturn.adapters.sql._async.base import AsyncSqlBase
from keyturn.core.errors import ConcurrentUpdate
from keyturn.core.records import LoadedSession
from keyturn.core.time_rules import to_us

if TYPE_CHECKING:
    from datetime import datetime

    from keyturn.core.records import SecurityKey, Session

_SESSION_COLUMNS = "id, key_id, generation, refresh_id, created_at, expires_at, ended_at"
_START_SESSION = (
    f"INSERT INTO keyturn_sessions ({_SESSION_COLUMNS}) "  # noqa: S608 (constants only)
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _SESSION_COLUMNS.split(", ")[1:])
)
_LOAD_SESSION = (
    "SELECT k.data, "  # noqa: S608 (constants only)
    + ", ".join(f"s.{c}" for c in _SESSION_COLUMNS.split(", "))
    + ", EXISTS (SELECT 1 FROM keyturn_security_keys sk WHERE sk.owner = k.owner) "
    "FROM keyturn_sessions s JOIN keyturn_keys k ON k.id = s.key_id WHERE s.id = ?"
)


class AsyncAccessTables(AsyncSqlBase):
    """Sessions, nonces and security keys (see the module's docstring)."""

    # --- sessions ---------------------------------------------------------------------------

    async def start_session(self, session: Session, *, max_per_key: int, now: datetime) -> None:
        """Record a session (replacing one of its id); forget the key's dead and surplus ones."""
        t = to_us(now)
        async with self._transaction() as tx:
            await tx.run(_START_SESSION, codec.session_row(session))
            await tx.run(
                "DELETE FROM keyturn_sessions WHERE key_id = ? AND (ended_at IS NOT NULL "
                "OR expires_at <= ? OR id NOT IN (SELECT id FROM keyturn_sessions "
                "WHERE key_id = ? AND ended_at IS NULL AND expires_at > ? "
                "ORDER BY created_at DESC, id DESC LIMIT ?))",
                (session.key_id, t, session.key_id, t, max_per_key),
            )

    async def load_session(self, session_id: str) -> LoadedSession | None:
        """The session, its key, and whether the owner has a security key: one read."""
        row = await self._one(_LOAD_SESSION, (session_id,))
        if row is None:
            return None
        session = codec.session_from_row(tuple(row[1:-1]))
        key = codec.key_from_json(session.key_id, row[0])
        return LoadedSession(key, session, security_key=bool(row[-1]))

    async def rotate_session(self, session_id: str, *, expected: str, new: str) -> bool:
        """Swap the session's live refresh id ``expected`` for ``new``, if it is still live."""
        swapped = await self._run(
            "UPDATE keyturn_sessions SET refresh_id = ? "
            "WHERE id = ? AND refresh_id = ? AND ended_at IS NULL",
            (new, session_id, expected),
        )
        return swapped == 1

    async def end_session(self, session_id: str, now: datetime) -> bool:
        """End a session; whether it was live."""
        ended = await self._run(
            "UPDATE keyturn_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
            (to_us(now), session_id),
        )
        return ended == 1

    # --- nonces -----------------------------------------------------------------------------

    async def use_nonce(
        self, client_id: str, nonce: str, *, expires_at: datetime, now: datetime
    ) -> bool:
        """Record a nonce unless the client used it and it is still remembered."""
        async with self._transaction() as tx:
            await tx.run("DELETE FROM keyturn_nonces WHERE expires_at <= ?", (to_us(now),))
            inserted = await tx.run(
                "INSERT INTO keyturn_nonces (client_id, nonce, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (client_id, nonce, to_us(expires_at)),
            )
        return inserted == 1

    # --- security keys ----------------------------------------------------------------------

    async def get_security_key(self, owner: str) -> SecurityKey | None:
        """The owner's security key, or ``None``."""
        row = await self._one("SELECT data FROM keyturn_security_keys WHERE owner = ?", (owner,))
        return codec.security_key_from_json(row[0]) if row else None

    async def save_security_key(self, security_key: SecurityKey) -> None:
        """Insert a version-1 security key, or update the stored one from ``version - 1``."""
        sk, data = security_key, codec.security_key_to_json(security_key)
        if sk.version == 1:
            written = await self._run(
                "INSERT INTO keyturn_security_keys (owner, version, data) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (sk.owner, sk.version, data),
            )
        else:
            written = await self._run(
                "UPDATE keyturn_security_keys SET version = ?, data = ? "
                "WHERE owner = ? AND version = ?",
                (sk.version, data, sk.owner, sk.version - 1),
            )
        if written != 1:
            raise ConcurrentUpdate(0, sk.version - 1, action="security_key")

    async def remove_security_key(self, owner: str) -> bool:
        """Forget the owner's security key; whether there was one."""
        removed = await self._run("DELETE FROM keyturn_security_keys WHERE owner = ?", (owner,))
        return removed > 0

    async def list_security_keys(self) -> list[SecurityKey]:
        """Every account's security key, by owner."""
        rows = await self._all("SELECT data FROM keyturn_security_keys ORDER BY owner")
        return [codec.security_key_from_json(r[0]) for r in rows]
