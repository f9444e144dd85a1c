"""The PostgreSQL key stores, for deployments that outgrow one machine (extra ``postgres``).

Many backend instances share one database. The queries are the SQLite store's
(:mod:`keyturn.adapters.sql`), with PostgreSQL's own locks where its writes run side by side: a
transaction-scoped advisory lock per owner keeps the key quota exact, another serialises
migrations, and outbox claims take rows ``FOR UPDATE SKIP LOCKED`` so two relays never claim the
same message. The driver (pool, autocommit reads, retries, errors) is
:mod:`keyturn.adapters.sql._async.postgres` and its generated blocking twin; this module gives
each its way to open:

* ``PostgresKeyStore(conninfo, schema=...)`` connects in its constructor, as a blocking object
  may;
* ``await AsyncPostgresKeyStore.open(conninfo, schema=...)`` connects in a coroutine (a
  constructor cannot await); close it with ``await store.aclose()``.
"""

from __future__ import annotations

from typing import Self

from keyturn.adapters.sql._async.postgres import AsyncPostgresStore, check_schema_name, pool_size
from keyturn.adapters.sql._sync.postgres import PostgresStore

__all__ = ["AsyncPostgresKeyStore", "PostgresKeyStore", "check_schema_name", "pool_size"]


class PostgresKeyStore(PostgresStore):
    """Keys in a PostgreSQL database, optionally in their own ``schema``: connected and migrated.

    ``max_size`` bounds the connection pool (default: sized to the server, see
    :func:`pool_size`); ``timeout`` bounds connecting and waiting for a pooled connection.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(
            conninfo, schema=schema, min_size=min_size, max_size=max_size, timeout=timeout
        )
        self.connect()


class AsyncPostgresKeyStore(AsyncPostgresStore):
    """Keys in PostgreSQL over async connections; an :class:`~keyturn.ports.AsyncKeyStore`."""

    @classmethod
    async def open(
        cls,
        conninfo: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 (bounds connecting, as the sync store's does)
    ) -> Self:
        """Connect, create ``schema`` if asked, and migrate the schema forward."""
        store = cls(conninfo, schema=schema, min_size=min_size, max_size=max_size, timeout=timeout)
        await store.connect()
        return store
