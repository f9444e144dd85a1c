"""The SQL stores' tables, and what differs between the SQL dialects keyturn speaks.

The schema is one set of scripts for SQLite and PostgreSQL (``{id}`` is the id column's type,
``{int}`` a 64-bit integer), applied in order and recorded in ``keyturn_schema``: a released script
is never edited, a new one is appended. Tables are prefixed ``keyturn_`` so that they can sit in
an application's database. A :class:`Dialect` says how one database spells what differs: its
placeholder, the locks its concurrent writers need, its DDL types. Nothing here runs a statement.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import attrs

from keyturn.ports.common import CLAIM_LEASE

#: The first schema: keys, their history, confirmation challenges and the outbox.
SCHEMA_V1: Final = """
CREATE TABLE keyturn_keys (
    id {id},
    owner TEXT NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    live {int} NOT NULL,
    version {int} NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX keyturn_keys_owner ON keyturn_keys (owner, live);
CREATE TABLE keyturn_history (
    key_id {int} NOT NULL REFERENCES keyturn_keys (id),
    version {int} NOT NULL,
    action TEXT NOT NULL,
    event TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    at {int} NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (key_id, version)
);
CREATE TABLE keyturn_challenges (
    id TEXT PRIMARY KEY,
    version {int} NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE keyturn_outbox (
    id TEXT PRIMARY KEY,
    created_at {int} NOT NULL,
    due_at {int} NOT NULL,
    claimed_until {int},
    delivered_at {int},
    attempts {int} NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    code TEXT,
    data TEXT NOT NULL
);
CREATE INDEX keyturn_outbox_due ON keyturn_outbox (due_at, created_at)
    WHERE delivered_at IS NULL
"""

#: The second schema: single-use nonces of signatures, remembered until their window ends.
SCHEMA_V2: Final = """
CREATE TABLE keyturn_nonces (
    client_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at {int} NOT NULL,
    PRIMARY KEY (client_id, nonce)
);
CREATE INDEX keyturn_nonces_expiry ON keyturn_nonces (expires_at)
"""

#: The third schema: the accounts' security keys (Deribit's per-call 2FA), one per owner.
SCHEMA_V3: Final = """
CREATE TABLE keyturn_security_keys (
    owner TEXT PRIMARY KEY,
    version {int} NOT NULL,
    data TEXT NOT NULL
)
"""

#: The fourth schema: API sessions (token families, so tokens can be ended), and each history
#: row's owner with an index, so an account's access log pages in SQL whatever its size.
SCHEMA_V4: Final = """
CREATE TABLE keyturn_sessions (
    id TEXT PRIMARY KEY,
    key_id {int} NOT NULL,
    generation {int} NOT NULL,
    refresh_id TEXT NOT NULL,
    created_at {int} NOT NULL,
    expires_at {int} NOT NULL,
    ended_at {int}
);
CREATE INDEX keyturn_sessions_key ON keyturn_sessions (key_id, created_at);
ALTER TABLE keyturn_history ADD COLUMN owner TEXT;
UPDATE keyturn_history SET owner = (
    SELECT k.owner FROM keyturn_keys k WHERE k.id = keyturn_history.key_id
);
CREATE INDEX keyturn_history_owner ON keyturn_history (owner, at, key_id, version)
"""

#: The fifth schema: each confirmation challenge's owner and send time, indexed, so the codes an
#: owner was sent recently are one indexed read (the resend wait and send cap of confirmations).
#: Challenges from before it have neither and count for nothing: they lived five minutes.
SCHEMA_V5: Final = """
ALTER TABLE keyturn_challenges ADD COLUMN owner TEXT;
ALTER TABLE keyturn_challenges ADD COLUMN sent_at {int};
CREATE INDEX keyturn_challenges_owner ON keyturn_challenges (owner, sent_at)
"""

#: The sixth schema: each challenge's action and key (0 for none) beside its owner, so a request
#: for a confirmation code can count, in its own transaction, the codes sent for the same action
#: and key since it decided (``add_challenge(..., seen=)``). Older rows have neither: they count
#: for nothing, as in the fifth.
SCHEMA_V6: Final = """
ALTER TABLE keyturn_challenges ADD COLUMN action TEXT;
ALTER TABLE keyturn_challenges ADD COLUMN key_id {int}
"""

SCHEMAS: Final = (SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6)

#: How long a claimed notification stays away from other relays (µs, as the outbox stores times).
CLAIM_LEASE_US: Final = CLAIM_LEASE // timedelta(microseconds=1)


@attrs.frozen
class Dialect:
    """How one database spells what differs: DDL types, placeholder, and locks.

    Statements are written with ``?`` placeholders; :meth:`sql` gives a statement in the
    dialect's own. ``owner_lock`` serialises one owner's key inserts (so the quota is exact) and
    ``schema_lock`` migrations, where writers run side by side (``None``: the database
    serialises writes itself, as SQLite's ``BEGIN IMMEDIATE`` does). ``claim_lock`` ends the
    outbox claim's select, so two relays never claim one row.
    """

    name: str
    id_type: str
    int_type: str
    placeholder: str = "?"
    claim_lock: str = ""
    owner_lock: str | None = None
    schema_lock: str | None = None
    #: The schema's scripts, oldest first (a test may add or leave out some).
    schemas: tuple[str, ...] = SCHEMAS
    _translated: dict[str, str] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def migrations(self) -> tuple[str, ...]:
        """The schema scripts in this dialect, oldest first."""
        return tuple(s.format(id=self.id_type, int=self.int_type) for s in self.schemas)

    def sql(self, statement: str) -> str:
        """``statement`` with this dialect's placeholder (translated once, then remembered)."""
        if self.placeholder == "?":
            return statement
        done = self._translated.get(statement)
        if done is None:
            done = self._translated[statement] = statement.replace("?", self.placeholder)
        return done


SQLITE: Final = Dialect("sqlite", id_type="INTEGER PRIMARY KEY AUTOINCREMENT", int_type="INTEGER")

#: Advisory lock id that serialises schema migrations ("keyturn" in ASCII, truncated).
_SCHEMA_LOCK: Final = 0x6B65797475726E

POSTGRES: Final = Dialect(
    "postgres",
    id_type="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    int_type="BIGINT",
    placeholder="%s",
    claim_lock=" FOR UPDATE SKIP LOCKED",
    owner_lock="SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
    schema_lock=f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})",
)
