"""Helpers for the API tests: the API served on loopback, and a client's calls to it.

The API runs under uvicorn with the configuration ``keyturn serve`` uses
(:func:`keyturn.api.server.config`), on a SQLite file, in a thread of the test process; a sync
service on the same file plays the portal (another worker of the same deployment). Answers are
validated against Deribit's official OpenAPI schema, kept in ``tests/data/deribit``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jsonschema
import uvicorn

from keyturn import Policy, State, wiring
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.adapters.to_async import AsyncNotifierAdapter, AsyncStore
from keyturn.api import server as api_server
from keyturn.crypto.sealing import SecretBox
from keyturn.testing import RecordingNotifier, key_in_state

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from keyturn import KeyService
    from keyturn.api.asgi import Api
    from keyturn.ports import Clock

SCHEMA_FILE = Path(__file__).parent / "data/deribit/deribit_api_v2_api_keys.json"
MASTER = bytes(range(32))


def _schema_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    # The official file types access_log.data as "object or string", which is not a JSON Schema
    # type; read it as what it says.
    doc["components"]["schemas"]["access_log"]["properties"]["data"]["type"] = ["object", "string"]
    return doc


DOC = _schema_doc()


def assert_valid(response: dict[str, Any], name: str) -> None:
    """``response`` validates against the official schema's ``#/responses/<name>``."""
    root = copy.deepcopy(DOC)
    root["$ref"] = f"#/responses/{name}"
    jsonschema.validate(response, root)


@contextlib.contextmanager
def serving(
    path: Path,
    policy: Policy = wiring.API_POLICY,
    *,
    forwarded_allow_ips: str | None = None,
    clock: Clock | None = None,
    body_timeout: float = 10.0,
    heartbeat_time_scale: float = 1.0,
    mount: Callable[[Api], Any] | None = None,
) -> Iterator[tuple[KeyService, str]]:
    """The API (async service) on a SQLite file and a free port; a sync service on the file.

    The sync service plays the portal: it makes and activates keys the API then manages, and
    enrolls security keys. Both read ``clock`` (the system clock by default).
    ``heartbeat_time_scale`` shrinks WebSocket heartbeat intervals (0.01: 10 s last 0.1 s);
    ``mount`` wraps the API in another ASGI app (a Starlette app mounting it under a prefix).
    Serving the same ``path`` twice at once runs two workers of one deployment.
    """
    store = SQLiteKeyStore(path / "keys.db", synchronous="OFF")
    box, notifier = SecretBox.generate(), RecordingNotifier()
    service = wiring.build_service(
        store=store,
        notifier=notifier,
        master_key=MASTER,
        policy=policy,
        secret_box=box,
        clock=clock,
    )
    served = wiring.build_async_service(
        store=AsyncStore(store),
        notifier=AsyncNotifierAdapter(notifier),
        master_key=MASTER,
        policy=policy,
        secret_box=box,
        clock=clock,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = wiring.build_api(served, MASTER)
    api.body_timeout, api.heartbeat_time_scale = body_timeout, heartbeat_time_scale
    app = api if mount is None else mount(api)
    server = uvicorn.Server(
        api_server.config(app, host="127.0.0.1", port=port, forwarded_allow_ips=forwarded_allow_ips)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    try:
        yield service, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


def portal_key(
    service: KeyService, scope: str = "account:read_write trade:read"
) -> tuple[str, str]:
    """A key made and activated in the portal; its client id and secret."""
    issued = key_in_state(service, State.ACTIVE, owner="acct1", name="portal", max_scope=scope)
    assert issued.client_secret is not None
    return issued.key.client_id, issued.client_secret


def call(
    url: str, method: str, params: dict[str, Any] | None = None, *, token: str = "", rid: int = 1
) -> dict[str, Any]:
    """POST a JSON-RPC request to /api/v2/<method> and return the decoded answer."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}}
    answer: dict[str, Any] = httpx.post(f"{url}/api/v2/{method}", json=body, headers=headers).json()
    return answer


def login(url: str, client_id: str, secret: str, scope: str | None = None) -> str:
    """An access token from public/auth with client credentials."""
    params = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if scope:
        params["scope"] = scope
    answer = call(url, "public/auth", params)
    assert_valid(answer, "public_auth_response")
    token: str = answer["result"]["access_token"]
    return token


def ws_ask(ws: Any, method: str, params: dict[str, Any], rid: int) -> dict[str, Any]:
    """Send one JSON-RPC request on a WebSocket and return its answer (anything else skipped)."""
    ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
    while True:
        answer: dict[str, Any] = json.loads(ws.recv(timeout=10))
        if answer.get("method") != "heartbeat" and answer.get("id", rid) == rid:
            return answer


def ws_url(url: str) -> str:
    """The API's WebSocket URL on the server at ``url``."""
    return url.replace("http://", "ws://") + "/ws/api/v2"


def credentials(client_id: str, secret: str, **more: str) -> dict[str, str]:
    """public/auth's parameters for client credentials (and ``more``, e.g. ``scope``)."""
    grant = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return grant | more
