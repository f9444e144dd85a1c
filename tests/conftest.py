"""Shared fixtures: short names over the keyturn_* fixtures of the shipped pytest plugin."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from keyturn._log import forget_cached_logger
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.adapters.to_async import AsyncNotifierAdapter, AsyncStore, AsyncVerifierAdapter
from keyturn.service import AsyncKeyService
from keyturn.testing import InMemoryKeyStore
from keyturn.testing.blocking import BlockingService

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from keyturn import KeyService
    from keyturn.adapters.postgres import PostgresKeyStore
    from keyturn.ports import KeyStore
    from keyturn.testing import ManualClock, RecordingNotifier


pytest_plugins = ["api_required"]  # CI: an API test that skips fails
POSTGRES_URL = os.environ.get("KEYTURN_TEST_POSTGRES", "")
_NO_POSTGRES = pytest.mark.skipif(
    not POSTGRES_URL, reason="set KEYTURN_TEST_POSTGRES to a PostgreSQL URL to run (.ci/run does)"
)


@pytest.fixture(scope="session")
def _postgres_session_store() -> Iterator[PostgresKeyStore]:
    """One PostgreSQL schema for the whole run: created and migrated once, dropped at the end."""
    from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

    pg = PostgresKeyStore(POSTGRES_URL, schema=f"kt_{uuid.uuid4().hex[:12]}", max_size=2)
    yield pg
    pg.drop_schema()
    pg.close()


def empty_postgres(pg: PostgresKeyStore) -> None:
    """Delete every row of the store's tables (its schema version stays): a fresh store."""
    with pg.pool.connection() as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s "
            "AND tablename LIKE 'keyturn%%' AND tablename <> 'keyturn_schema'",
            (pg.schema,),
        ).fetchall()
        names = ", ".join(f'"{t}"' for (t,) in tables)
        conn.execute(f"TRUNCATE {names} RESTART IDENTITY")


@pytest.fixture(
    name="keyturn_store",
    params=["memory", "sqlite", pytest.param("postgres", marks=_NO_POSTGRES)],
)
def _keyturn_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    """Every service test runs on the in-memory store, a SQLite file and PostgreSQL.

    PostgreSQL's store is the run's one schema, emptied before each test: building a schema per
    test cost most of the service suites' time.
    """
    if request.param == "memory":
        yield InMemoryKeyStore()
        return
    if request.param == "sqlite":
        store = SQLiteKeyStore(tmp_path / "keys.db", synchronous="OFF")
        yield store
        store.close()
        return
    pg: PostgresKeyStore = request.getfixturevalue("_postgres_session_store")
    empty_postgres(pg)
    yield pg


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """Each test starts from structlog's defaults (the README's doctest configures it)."""
    structlog.reset_defaults()
    forget_cached_logger()
    yield
    structlog.reset_defaults()
    forget_cached_logger()


@pytest.fixture(name="service", params=["sync", "async"])
def _service(
    request: pytest.FixtureRequest,
    keyturn_service: KeyService,
    keyturn_store: KeyStore,
) -> Iterator[KeyService]:
    """The service over fakes: the sync one, and the async one over async ports.

    The async service shares the sync one's settings and fakes; its store is the same store
    seen through async ports (an async wrapper, or PostgreSQL's own async store on the same
    schema), so a test written against the sync service runs unchanged against both.
    """
    if request.param == "sync":
        yield keyturn_service
        return
    sync = keyturn_service
    loop = asyncio.new_event_loop()
    try:
        async_store = loop.run_until_complete(_async_store(keyturn_store))
        blocking = BlockingService(
            AsyncKeyService(
                store=async_store,
                verifier=AsyncVerifierAdapter(sync.verifier),
                notifier=AsyncNotifierAdapter(sync.notifier, threaded=False),
                clock=sync.clock,
                secret_hasher=sync.secret_hasher,
                code_seal=sync.code_seal,
                policy=sync.policy,
                secret_box=sync.secret_box,
                second_factor=sync.second_factor,
            ),
            store=keyturn_store,
            notifier=sync.notifier,
            loop=loop,
        )
        yield blocking  # type: ignore[misc]
        if not isinstance(async_store, AsyncStore):
            loop.run_until_complete(async_store.aclose())
    finally:
        loop.close()


async def _async_store(store: KeyStore) -> Any:
    """``store`` as an async port: PostgreSQL's native async store, else a wrapper."""
    if POSTGRES_URL:
        from keyturn.adapters.postgres import (  # noqa: PLC0415
            AsyncPostgresKeyStore,
            PostgresKeyStore,
        )

        if isinstance(store, PostgresKeyStore):
            return await AsyncPostgresKeyStore.open(POSTGRES_URL, schema=store.schema, max_size=2)
    return AsyncStore(store, threaded=not isinstance(store, InMemoryKeyStore))


@pytest.fixture(name="clock")
def _clock(keyturn_clock: ManualClock) -> ManualClock:
    """The service's manual clock."""
    return keyturn_clock


@pytest.fixture(name="notifier")
def _notifier(keyturn_notifier: RecordingNotifier) -> RecordingNotifier:
    """The service's recording notifier."""
    return keyturn_notifier


@pytest.fixture(name="store")
def _store(keyturn_store: KeyStore) -> KeyStore:
    """The service's store."""
    return keyturn_store
