"""Shared fixtures: short names over the keyturn_* fixtures of the shipped pytest plugin."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import pytest
import structlog

from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.testing import InMemoryKeyStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from keyturn import KeyService
    from keyturn.ports import KeyStore
    from keyturn.testing import ManualClock, RecordingNotifier


POSTGRES_URL = os.environ.get("KEYTURN_TEST_POSTGRES", "")
_NO_POSTGRES = pytest.mark.skipif(
    not POSTGRES_URL, reason="set KEYTURN_TEST_POSTGRES to a PostgreSQL URL to run (.ci/run does)"
)


@pytest.fixture(
    name="keyturn_store",
    params=["memory", "sqlite", pytest.param("postgres", marks=_NO_POSTGRES)],
)
def _keyturn_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    """Every service test runs on the in-memory store, a SQLite file and PostgreSQL."""
    if request.param == "memory":
        yield InMemoryKeyStore()
        return
    if request.param == "sqlite":
        store = SQLiteKeyStore(tmp_path / "keys.db", synchronous="OFF")
        yield store
        store.close()
        return
    from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

    pg = PostgresKeyStore(POSTGRES_URL, schema=f"kt_{uuid.uuid4().hex[:12]}", max_size=2)
    yield pg
    pg.drop_schema()
    pg.close()


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """Each test starts from structlog's defaults (the README's doctest configures it)."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.fixture(name="service")
def _service(keyturn_service: KeyService) -> KeyService:
    """The service over fakes."""
    return keyturn_service


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
