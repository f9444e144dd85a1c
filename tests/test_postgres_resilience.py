"""The PostgreSQL stores under trouble: unreachable servers, lost backends, passwords kept out.

Redaction needs no server (the address given is unreachable); the lost-backend tests need
``KEYTURN_TEST_POSTGRES`` and terminate the backends of a pool of their own, found by a unique
``application_name``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import structlog
import uvicorn
from psycopg.conninfo import make_conninfo

from keyturn import State, StoreError, wiring
from keyturn.adapters.postgres import AsyncPostgresKeyStore, PostgresKeyStore
from keyturn.adapters.to_async import AsyncNotifierAdapter
from keyturn.crypto.sealing import SecretBox
from keyturn.testing import RecordingNotifier, key_in_state

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

URL = os.environ.get("KEYTURN_TEST_POSTGRES", "")
needs_postgres = pytest.mark.skipif(
    not URL, reason="set KEYTURN_TEST_POSTGRES to a PostgreSQL URL to run (.ci/run does)"
)
PASSWORD = "hunter2-Zq9"
UNREACHABLE = {
    "url": f"postgresql://keys:{PASSWORD}@127.0.0.1:1/keys",
    "url_query": f"postgresql://keys@127.0.0.1:1/keys?password={PASSWORD}",
    "key_value": f"host=127.0.0.1 port=1 user=keys password={PASSWORD} dbname=keys",
}
MASTER = bytes(range(32))


class TestPasswordsStayOut:
    @pytest.mark.parametrize("form", sorted(UNREACHABLE))
    def test_unreachable_server_error_names_no_password(
        self, form: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Opening either store on an unreachable server raises StoreError; no message, repr or log shows the password."""
        caplog.set_level(logging.DEBUG)
        conninfo = UNREACHABLE[form]
        seen: list[str] = []
        with structlog.testing.capture_logs() as logs:
            with pytest.raises(StoreError) as sync_error:
                PostgresKeyStore(conninfo, timeout=0.5)
            with pytest.raises(StoreError) as schema_error:
                PostgresKeyStore(conninfo, schema="kt_x", timeout=1)
            with pytest.raises(StoreError) as async_error:
                asyncio.run(AsyncPostgresKeyStore.open(conninfo, timeout=0.5))
        for info in (sync_error, schema_error, async_error):
            seen += [str(info.value), repr(info.value), repr(vars(info.value))]
        assert "127.0.0.1" in str(sync_error.value)
        blob = "\n".join([*seen, caplog.text, repr(logs)])
        assert PASSWORD not in blob

    @pytest.mark.parametrize("form", sorted(UNREACHABLE))
    @pytest.mark.slow
    def test_command_line_error_names_no_password(self, form: str, tmp_path: Path) -> None:
        """`keyturn --db <conninfo> list` on an unreachable server exits 3 with one line and no password."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
        env["KEYTURN_SERVER_KEY"] = MASTER.hex()
        done = subprocess.run(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "keyturn", "--db", UNREACHABLE[form], "list"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 3, done.stderr
        assert done.stderr.startswith("keyturn: ")
        assert "PostgreSQL" in done.stderr
        assert PASSWORD not in done.stdout + done.stderr
        assert list(tmp_path.iterdir()) == []  # a conninfo is never taken for a file name

    @needs_postgres
    def test_repr_of_an_open_store_names_no_password(self) -> None:
        """A store opened with a password in either form shows where it is, not the password."""
        schema = f"kt_{uuid.uuid4().hex[:12]}"
        as_keywords = make_conninfo(URL, password=PASSWORD)
        store = PostgresKeyStore(as_keywords, schema=schema, max_size=1)
        try:
            assert PASSWORD not in repr(store)
            assert "127.0.0.1" in repr(store)
        finally:
            store.drop_schema()
            store.close()


# --- lost backends ------------------------------------------------------------------------------


def _tagged() -> tuple[str, str]:
    """A conninfo whose connections carry a unique application name, and that name."""
    name = f"kt_{uuid.uuid4().hex[:12]}"
    return make_conninfo(URL, application_name=name), name


def terminate_backends(application_name: str) -> int:
    """Terminate every backend of ``application_name`` and wait until they are gone."""
    with PostgresKeyStore(URL, max_size=1).pool.connection() as admin:
        admin.autocommit = True
        killed = admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s) t",
            (application_name,),
        ).fetchone()
        for _ in range(200):
            left = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (application_name,),
            ).fetchone()
            if left is not None and left[0] == 0:
                break
            time.sleep(0.01)
    return int(killed[0]) if killed else 0


@pytest.fixture(name="schema")
def _schema() -> Iterator[str]:
    """A fresh schema, dropped after the test."""
    name = f"kt_{uuid.uuid4().hex[:12]}"
    yield name
    store = PostgresKeyStore(URL, schema=name, max_size=1)
    store.drop_schema()
    store.close()


@needs_postgres
def test_sync_store_survives_terminated_backends(schema: str) -> None:
    """After every pooled backend is terminated, the next reads and writes all succeed."""
    conninfo, app = _tagged()
    store = PostgresKeyStore(conninfo, schema=schema, min_size=4, max_size=4)
    try:
        service = wiring.build_service(store=store, notifier=RecordingNotifier(), master_key=MASTER)
        key_id = service.create(owner="alice", name="k", max_scope="account:read").key.id
        assert terminate_backends(app) >= 4
        for _ in range(6):
            assert store.get(key_id) is not None
            assert len(store.list_keys("alice")) == 1
        service.acknowledge_secret(key_id, owner="alice")
        assert terminate_backends(app) >= 1
        service.request_activation(key_id, owner="alice")
        assert [h.version for h in store.history(key_id)] == [1, 2, 3]
    finally:
        store.close()


@needs_postgres
def test_async_store_survives_terminated_backends(schema: str) -> None:
    """The async store, too: after its backends are terminated the next operations succeed."""
    conninfo, app = _tagged()

    async def scenario() -> None:
        store = await AsyncPostgresKeyStore.open(conninfo, schema=schema, min_size=4, max_size=4)
        try:
            service = wiring.build_async_service(
                store=store,
                notifier=AsyncNotifierAdapter(RecordingNotifier()),
                master_key=MASTER,
            )
            issued = await service.create(owner="alice", name="k", max_scope="account:read")
            assert await asyncio.to_thread(terminate_backends, app) >= 4
            for _ in range(6):
                assert await store.get(issued.key.id) is not None
            await service.acknowledge_secret(issued.key.id, owner="alice")
            assert len(await store.history(issued.key.id)) == 2
        finally:
            await store.aclose()

    asyncio.run(scenario())


@needs_postgres
def test_lost_connection_mid_read_is_retried_and_a_lost_write_is_a_store_error(
    schema: str,
) -> None:
    """A read or a BEGIN on a dead connection runs again on another; a write lost after BEGIN raises StoreError and wrote nothing."""
    conninfo, app = _tagged()
    store = PostgresKeyStore(conninfo, schema=schema, min_size=1, max_size=1)
    service = wiring.build_service(store=store, notifier=RecordingNotifier(), master_key=MASTER)
    try:
        key_id = service.create(owner="alice", name="k", max_scope="account:read").key.id
        assert terminate_backends(app) == 1  # the pooled connection is dead, unchecked
        assert store.get(key_id) is not None
        assert terminate_backends(app) == 1
        now = datetime.now(UTC)
        later = now + timedelta(minutes=1)
        assert store.use_nonce("c0", "n0", expires_at=later, now=now)
        store.watch(_terminating_at("INSERT INTO keyturn_nonces", app))
        with pytest.raises(StoreError, match="lost the connection") as lost:
            store.use_nonce("c1", "n1", expires_at=later, now=now)
        store.watch(None)
        assert "127.0.0.1" in str(lost.value)
        assert store.use_nonce("c1", "n1", expires_at=later, now=now)
    finally:
        store.close()


def _terminating_at(prefix: str, app: str) -> Callable[[str], None]:
    """A statement trace that terminates the store's backends when a statement starts so."""

    def trace(statement: str) -> None:
        if statement.startswith(prefix):
            terminate_backends(app)

    return trace


@needs_postgres
def test_async_lost_connection_mid_read_is_retried_and_a_lost_write_is_a_store_error(
    schema: str,
) -> None:
    """The async store, too: a dead connection costs a read or a BEGIN nothing, a write lost after BEGIN a StoreError."""
    conninfo, app = _tagged()

    async def scenario() -> None:
        store = await AsyncPostgresKeyStore.open(conninfo, schema=schema, min_size=1, max_size=1)
        service = wiring.build_async_service(
            store=store, notifier=AsyncNotifierAdapter(RecordingNotifier()), master_key=MASTER
        )
        try:
            issued = await service.create(owner="alice", name="k", max_scope="account:read")
            assert await asyncio.to_thread(terminate_backends, app) == 1
            assert await store.get(issued.key.id) is not None
            assert await asyncio.to_thread(terminate_backends, app) == 1
            now = datetime.now(UTC)
            later = now + timedelta(minutes=1)
            assert await store.use_nonce("c0", "n0", expires_at=later, now=now)
            store.watch(_terminating_at("INSERT INTO keyturn_nonces", app))
            with pytest.raises(StoreError, match="lost the connection"):
                await store.use_nonce("c1", "n1", expires_at=later, now=now)
            store.watch(None)
            assert await store.use_nonce("c1", "n1", expires_at=later, now=now)
        finally:
            await store.aclose()

    asyncio.run(scenario())


@contextlib.contextmanager
def serving(conninfo: str, schema: str, box: SecretBox) -> Iterator[str]:
    """The API on loopback over the async PostgreSQL store (a pool of 4), as `keyturn serve` runs it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    holder: dict[str, Any] = {}

    async def main() -> None:
        store = await AsyncPostgresKeyStore.open(conninfo, schema=schema, min_size=4, max_size=4)
        service = wiring.build_async_service(
            store=store,
            notifier=AsyncNotifierAdapter(RecordingNotifier()),
            master_key=MASTER,
            policy=wiring.API_POLICY,
            secret_box=box,
        )
        config = uvicorn.Config(
            wiring.build_api(service, MASTER), host="127.0.0.1", port=port, log_level="warning"
        )
        holder["server"] = server = uvicorn.Server(config)
        try:
            await server.serve()
        finally:
            await store.aclose()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    for _ in range(500):
        if "server" in holder and holder["server"].started:
            break
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        holder["server"].should_exit = True
        thread.join(timeout=10)


@needs_postgres
def test_api_answers_without_500_after_backends_are_terminated(schema: str) -> None:
    """Over real HTTP, the requests after a terminate of every pooled backend all get answers, none a 500."""
    conninfo, app = _tagged()
    box = SecretBox.generate()
    portal = wiring.build_service(
        store=PostgresKeyStore(URL, schema=schema, max_size=1),
        notifier=RecordingNotifier(),
        master_key=MASTER,
        secret_box=box,
    )
    issued = key_in_state(portal, State.ACTIVE, owner="acct1", max_scope="account:read_write")
    portal.store.close()
    grant = {
        "grant_type": "client_credentials",
        "client_id": issued.key.client_id,
        "client_secret": issued.client_secret,
    }

    def ask(method: str, params: dict[str, Any], token: str = "") -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return httpx.post(f"{url}/api/v2/{method}", json=body, headers=headers, timeout=30)

    with serving(conninfo, schema, box) as url:
        token = ask("public/auth", grant).json()["result"]["access_token"]
        assert ask("private/list_api_keys", {}, token).status_code == 200
        assert terminate_backends(app) >= 4
        answers = [ask("private/list_api_keys", {}, token) for _ in range(6)]
        answers += [ask("public/auth", grant) for _ in range(2)]
    assert [a.status_code for a in answers] == [200] * 8
