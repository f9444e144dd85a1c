"""Fakes for testing code that embeds keyturn, shipped as public API (like ``structlog.testing``).

* :class:`ManualClock`: time stands still until you move it.
* :class:`RecordingNotifier`: keeps what was sent; ``last_code(key_id)`` reads a code back.
* :class:`KnownCodeVerifier`: issues codes you chose, in order.
* :class:`InMemoryKeyStore`: the reference store.
* :func:`make_service`: a :class:`~keyturn.KeyService` wired from the above.
* :func:`key_in_state`: a new key walked to any lifecycle state.
* :mod:`keyturn.testing.contract`: the store contract suite any store adapter can run.

The pytest plugin (:mod:`keyturn.testing.plugin`, registered automatically) exposes them as
``keyturn_clock``, ``keyturn_notifier``, ``keyturn_verifier``, ``keyturn_store`` and
``keyturn_service`` fixtures. This module imports nothing from pytest.
"""

from keyturn.adapters.clocks import ManualClock
from keyturn.adapters.memory import InMemoryKeyStore
from keyturn.adapters.notifiers import RecordingNotifier
from keyturn.testing._fakes import KnownCodeVerifier, key_in_state, make_service

__all__ = [
    "InMemoryKeyStore",
    "KnownCodeVerifier",
    "ManualClock",
    "RecordingNotifier",
    "key_in_state",
    "make_service",
]
