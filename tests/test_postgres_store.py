"""The PostgreSQL store: the shared contract and the service suite on a real server.

Needs ``KEYTURN_TEST_POSTGRES`` (a libpq URL, e.g. ``postgresql://postgres@127.0.0.1/test``);
``.ci/run`` starts the server and sets it. Each test gets a schema of its own, dropped after.
"""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

import pytest

from keyturn import State, StoreError
from keyturn.testing import key_in_state, make_service
from keyturn.testing.contract import KeyStoreContract

if TYPE_CHECKING:
    from collections.abc import Iterator

    from keyturn.adapters.postgres import PostgresKeyStore

URL = os.environ.get("KEYTURN_TEST_POSTGRES", "")
pytestmark = pytest.mark.skipif(
    not URL, reason="set KEYTURN_TEST_POSTGRES to a PostgreSQL URL to run (.ci/run does)"
)


@pytest.fixture(name="pg")
def _pg() -> Iterator[PostgresKeyStore]:
    from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

    store = PostgresKeyStore(URL, schema=f"kt_{uuid.uuid4().hex[:12]}", max_size=4)
    yield store
    store.drop_schema()
    store.close()


class TestPostgresContract(KeyStoreContract):
    @pytest.fixture
    def store(self, pg: PostgresKeyStore) -> PostgresKeyStore:
        """An empty store in a fresh schema."""
        return pg


def test_full_lifecycle_on_postgres(pg: PostgresKeyStore) -> None:
    """A key walks to active and back through the service on PostgreSQL, history intact."""
    service = make_service(store=pg)
    key_id = key_in_state(service, State.DISABLED).key.id
    assert pg.get(key_id) is not None
    assert [h.event for h in pg.history(key_id)] == [
        "new_api_key",
        "secret_acknowledged",
        "activation_requested",
        "enabled_api_key",
        "disabled_api_key",
    ]
    assert list(pg.stored_codes()) == []


def test_schema_is_versioned(pg: PostgresKeyStore) -> None:
    """The schema is at the latest version and migrating again changes nothing."""
    assert pg.schema_version() == len(pg.dialect.migrations)
    assert pg.migrate() == len(pg.dialect.migrations)


def test_unreachable_server_is_a_store_error() -> None:
    """A server that does not answer raises StoreError without the password in the message."""
    from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

    with pytest.raises(StoreError) as info:
        PostgresKeyStore("postgresql://u:hunter2@127.0.0.1:1/x", timeout=1)
    assert "hunter2" not in str(info.value)
