"""The shipped store contract, run on the in-memory store."""

from __future__ import annotations

import pytest

from keyturn.adapters.memory import InMemoryKeyStore
from keyturn.testing.contract import KeyStoreContract


class TestInMemoryStore(KeyStoreContract):
    @pytest.fixture
    def store(self) -> InMemoryKeyStore:
        """An empty in-memory store."""
        return InMemoryKeyStore()
