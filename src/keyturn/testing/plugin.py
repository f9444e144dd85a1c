"""The keyturn pytest plugin: fakes as ``keyturn_*`` fixtures.

Registered through the ``pytest11`` entry point, so it is active wherever keyturn is installed.
It stays import-light (keyturn's own fakes only) and prefixes every fixture, so it cannot clash
with yours. Override ``keyturn_policy`` in your conftest to change the rules for your tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from keyturn.core.policy import Policy
from keyturn.testing import (
    InMemoryKeyStore,
    KnownCodeVerifier,
    ManualClock,
    RecordingNotifier,
    make_service,
)

if TYPE_CHECKING:
    from keyturn.service import KeyService


@pytest.fixture(name="keyturn_clock")
def _keyturn_clock() -> ManualClock:
    """A manual clock at 2026-01-01 12:00 UTC."""
    return ManualClock()


@pytest.fixture(name="keyturn_notifier")
def _keyturn_notifier() -> RecordingNotifier:
    """A notifier that records what it delivers."""
    return RecordingNotifier()


@pytest.fixture(name="keyturn_verifier")
def _keyturn_verifier() -> KnownCodeVerifier:
    """A code verifier issuing 100001, 100002..."""
    return KnownCodeVerifier()


@pytest.fixture(name="keyturn_store")
def _keyturn_store() -> InMemoryKeyStore:
    """An empty in-memory key store."""
    return InMemoryKeyStore()


@pytest.fixture(name="keyturn_policy")
def _keyturn_policy() -> Policy:
    """The default policy."""
    return Policy()


@pytest.fixture(name="keyturn_service")
def _keyturn_service(
    keyturn_store: InMemoryKeyStore,
    keyturn_verifier: KnownCodeVerifier,
    keyturn_notifier: RecordingNotifier,
    keyturn_clock: ManualClock,
    keyturn_policy: Policy,
) -> KeyService:
    """A service wired from the other ``keyturn_*`` fixtures."""
    return make_service(
        store=keyturn_store,
        verifier=keyturn_verifier,
        notifier=keyturn_notifier,
        clock=keyturn_clock,
        policy=keyturn_policy,
    )
