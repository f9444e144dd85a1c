"""Shared fixtures: short names over the keyturn_* fixtures of the shipped pytest plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.testing import InMemoryKeyStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from keyturn import KeyService
    from keyturn.ports import KeyStore
    from keyturn.testing import ManualClock, RecordingNotifier


@pytest.fixture(name="keyturn_store", params=["memory", "sqlite"])
def _keyturn_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyStore]:
    """Every service test runs on the in-memory store and on a SQLite file."""
    if request.param == "memory":
        yield InMemoryKeyStore()
        return
    store = SQLiteKeyStore(tmp_path / "keys.db", synchronous="OFF")
    yield store
    store.close()


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
