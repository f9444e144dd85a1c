"""The store contract: what every :class:`~keyturn.ports.KeyStore` adapter must do, as tests.

Run it against your own store by subclassing and providing a ``store`` fixture that yields an
empty store::

    from keyturn.testing.contract import KeyStoreContract

    class TestMyStore(KeyStoreContract):
        @pytest.fixture
        def store(self):
            s = MyStore(...)
            yield s
            s.close()

keyturn runs it on its in-memory store (and on every persistent store it ships). It imports
pytest, so it is kept apart from :mod:`keyturn.testing`. Its parts (:mod:`.keys`, :mod:`.outbox`,
:mod:`.access`) are split by subject; :mod:`.records` builds what they write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from keyturn.testing.contract.access import AccessContract
from keyturn.testing.contract.keys import KeysContract
from keyturn.testing.contract.outbox import OutboxContract

if TYPE_CHECKING:
    from keyturn.ports import KeyStore

__all__ = ["KeyStoreContract"]


class KeyStoreContract(KeysContract, OutboxContract, AccessContract):
    """The behaviours every key store must have. Provide a ``store`` fixture."""

    @pytest.fixture
    def store(self) -> KeyStore:
        """An empty store; override in your subclass."""
        raise NotImplementedError
