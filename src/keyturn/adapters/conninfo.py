"""What a database string names, and how to name a PostgreSQL server without its password.

``--db``/``$KEYTURN_DB`` is a SQLite file path or a PostgreSQL conninfo, in either of libpq's
forms: a URL (``postgresql://user:pw@host/db``) or keywords (``host=h password=pw dbname=db``).
Telling them apart and describing a server both go through libpq's own parser (psycopg's
:func:`~psycopg.conninfo.conninfo_to_dict`), never string splitting, and a description lists
only the user, host, port and database: no password, wherever the conninfo hid it. psycopg is
imported only when a string looks like a conninfo, so SQLite needs nothing extra.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Final

from keyturn.core.errors import StoreError

_URL_PREFIXES: Final = ("postgresql://", "postgres://")
#: The start of libpq's keyword form: ``name =`` (a file path rarely starts so).
_KEYWORD: Final = re.compile(r"\s*[A-Za-z_]+\s*=")


def _parse(conninfo: str) -> dict[str, object] | None:
    """The parameters libpq reads in ``conninfo``, or ``None`` if it is not a conninfo."""
    import psycopg  # noqa: PLC0415 (the postgres extra, needed only for PostgreSQL)
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    try:
        return dict(conninfo_to_dict(conninfo))
    except psycopg.Error:
        return None


def is_postgres(target: str) -> bool:
    """Whether ``target`` is a PostgreSQL conninfo; StoreError if it is but the extra is missing."""
    url = target.startswith(_URL_PREFIXES)
    if not url and not _KEYWORD.match(target):
        return False
    if any(importlib.util.find_spec(m) is None for m in ("psycopg", "psycopg_pool")):
        msg = "PostgreSQL needs the postgres extra: pip install 'keyturn[postgres]'"
        raise StoreError(msg)
    return url or _parse(target) is not None


def describe(conninfo: str) -> str:
    """``user@host:port/dbname`` for messages and reprs; never a password or other option."""
    params = _parse(conninfo)
    if params is None:
        return "(a malformed connection string)"
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    where = f"{params['user']}@{host}" if params.get("user") else host
    if params.get("port"):
        where += f":{params['port']}"
    if params.get("dbname"):
        where += f"/{params['dbname']}"
    return where
