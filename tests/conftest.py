"""Shared fixtures: short names over the keyturn_* fixtures of the shipped pytest plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from keyturn import KeyService
    from keyturn.testing import InMemoryKeyStore, ManualClock, RecordingNotifier


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
def _store(keyturn_store: InMemoryKeyStore) -> InMemoryKeyStore:
    """The service's in-memory store."""
    return keyturn_store
