"""Which store a command may open: an existing one, unless it is the command that creates it.

The library opens (and creates) whatever ``--db`` names, as an embedding application expects
(:func:`keyturn.wiring.open_store`). The command is stricter, because an operator's typo must
not become a new, empty database with a fresh server key: before anything is opened or written,
a SQLite file must exist, and a PostgreSQL database must hold keyturn's tables, except for the
commands that create a store (``init``, ``create --init``, ``serve --dev``). An existing SQLite
store whose server key is missing is refused too: a new key would make every stored secret
unusable. PostgreSQL is probed with one direct connection first, with a short timeout, so an
unreachable server, a wrong port or a wrong database is one line naming libpq's reason within
seconds, never with the password.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from keyturn import wiring
from keyturn.adapters.conninfo import describe, is_postgres

from .failures import STORE, Failure, no_store

#: Seconds a command waits for PostgreSQL to answer before saying it cannot reach it.
CONNECT_TIMEOUT: Final = 3
#: libpq's keyword form (``host=h dbname=d``): a --db that starts so is meant for PostgreSQL.
_KEYWORDS: Final = re.compile(r"\s*[A-Za-z_]+\s*=")
#: The table every keyturn schema has (its version): a database without it holds no store.
SCHEMA_TABLE: Final = "keyturn_schema"


def where(target: str) -> str:
    """The store as messages name it: the file, or ``user@host:port/db`` (no password)."""
    return describe(target) if is_postgres(target) else target


def exists(target: str) -> bool:
    """Whether a store is at ``target`` (PostgreSQL: reachable, else a :class:`Failure`)."""
    if is_postgres(target):
        return _postgres_has_store(target)
    return Path(target).exists()


def check(target: str, *, create: bool) -> bool:
    """Refuse to open ``target`` unless a store is there or this command creates one.

    Returns whether a store was there (``False``: this command will create it).
    """
    if _KEYWORDS.match(target) and not is_postgres(target):  # never echo it: it may hold a password
        raise _unreachable(target, "libpq cannot read this connection string")
    if not exists(target):
        if create:
            return False
        hint = "" if target == wiring.DEFAULT_DB else f" --db {target}"
        raise no_store(where(target), hint=" with the same --db" if is_postgres(target) else hint)
    if not is_postgres(target) and not os.environ.get("KEYTURN_SERVER_KEY"):
        key_file = Path(target + ".key")
        if not key_file.exists():
            raise Failure(
                "server_key_missing",
                f"the key store {target} has no server key: neither $KEYTURN_SERVER_KEY nor "
                f"{key_file} is there; set the one it was created with, or restore the file "
                "(a new key would make every stored secret unusable)",
                STORE,
            )
    return True


def _postgres_has_store(target: str) -> bool:
    import psycopg  # noqa: PLC0415 (the postgres extra; is_postgres checked it is installed)
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    try:
        password = str(conninfo_to_dict(target).get("password") or "")
    except psycopg.Error:
        raise _unreachable(target, "the connection string is malformed") from None
    try:
        with psycopg.connect(target, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_TABLE,)).fetchone()
    except psycopg.Error as e:
        raise _unreachable(target, cause(e, password)) from None
    return bool(row and row[0])


def cause(error: Exception, password: str = "") -> str:
    """The reason libpq gave, on one line: no ``connection failed:`` prefix, no password."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = text.removeprefix("connection failed: ").replace("FATAL:  ", "")
    return text.replace(password, "***") if password else text


def _unreachable(target: str, reason: str) -> Failure:
    return Failure(
        "store_unreachable",
        f"cannot reach the PostgreSQL key store at {describe(target)}: {reason}",
        STORE,
    )
