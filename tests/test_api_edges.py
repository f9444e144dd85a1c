"""What Deribit clients send at the API's edges, over real HTTP and WebSocket (uvicorn here).

GET parameters read by each method's declared types, idempotent enable and disable, the envelope
on every answer, the app mounted under a prefix, trailing slashes, and ``serve --testnet``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from websockets.sync.client import connect

from apitools import assert_valid, call, login, portal_key, serving, ws_ask
from keyturn import State
from keyturn.api.asgi import MAX_BODY
from keyturn.testing import key_in_state
from keyturn.testing.signing import signature_header

if TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.types import ASGIApp

    from keyturn import KeyService
    from keyturn.api.asgi import Api

ENVELOPE = {"jsonrpc", "usIn", "usOut", "usDiff", "testnet"}


@pytest.fixture(name="world")
def _world(tmp_path: Path) -> Iterator[tuple[KeyService, str]]:
    """The API served on loopback over a SQLite file, with the portal's sync service."""
    with serving(tmp_path) as world:
        yield world


def get(url: str, method: str, query: str, token: str) -> dict[str, Any]:
    """GET /api/v2/<method>?<query> with a Bearer token, the query exactly as written."""
    answer: dict[str, Any] = httpx.get(
        f"{url}/api/v2/{method}?{query}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    return answer


def other_key(service: KeyService, state: State = State.ACTIVE) -> int:
    """Another key of acct1, in ``state``; its id."""
    made = key_in_state(service, state, owner="acct1", name="other", max_scope="trade:read")
    return made.key.id


class TestGetParameters:
    @pytest.mark.parametrize("name", ["123", "true", "null", "1e5"])
    def test_a_string_parameter_takes_the_text_as_written(
        self, world: tuple[KeyService, str], name: str
    ) -> None:
        """name=123, name=true and name=null rename the key to that very text."""
        service, url = world
        token = login(url, *portal_key(service))
        key_id = other_key(service)
        answer = get(url, "private/change_api_key_name", f"id={key_id}&name={name}", token)
        assert_valid(answer, "private_api_key_response")
        assert answer["result"]["name"] == name

    def test_null_is_refused_where_a_value_is_required(self, world: tuple[KeyService, str]) -> None:
        """id=null is "is required" (-32602), never a default; nothing changes."""
        service, url = world
        token = login(url, *portal_key(service))
        key_id = other_key(service)
        answer = get(url, "private/disable_api_key", "id=null", token)
        assert answer["error"]["code"] == -32602
        assert answer["error"]["data"] == {"param": "id", "reason": "is required"}
        assert service.get(key_id, owner="acct1").state is State.ACTIVE

    @pytest.mark.parametrize(
        "query",
        [
            "ip_whitelist=10.0.0.0/8&ip_whitelist=192.168.1.1",
            "ip_whitelist[]=10.0.0.0/8&ip_whitelist[]=192.168.1.1",
            'ip_whitelist=["10.0.0.0/8","192.168.1.1"]',
        ],
    )
    def test_lists_from_json_or_repeated_keys(
        self, world: tuple[KeyService, str], query: str
    ) -> None:
        """A whitelist as a JSON array, a repeated key or key[] sets the same two entries."""
        service, url = world
        token = login(url, *portal_key(service))
        key_id = other_key(service)
        params = f"id={key_id}&max_scope=trade:read&{query}"
        answer = get(url, "private/edit_api_key", params, token)
        assert_valid(answer, "private_api_key_response")
        assert answer["result"]["ip_whitelist"] == ["10.0.0.0/8", "192.168.1.1/32"]
        stored = service.get(key_id, owner="acct1")
        assert [str(n) for n in stored.ip_whitelist] == ["10.0.0.0/8", "192.168.1.1/32"]

    def test_one_entry_and_an_empty_list(self, world: tuple[KeyService, str]) -> None:
        """ip_whitelist=one is a list of one; ip_whitelist= (empty) clears it; enabled=false is a bool."""
        service, url = world
        token = login(url, *portal_key(service))
        key_id = other_key(service)
        base = f"id={key_id}&max_scope=trade:read"
        one = get(url, "private/edit_api_key", f"{base}&ip_whitelist=10.1.0.0/16", token)
        assert one["result"]["ip_whitelist"] == ["10.1.0.0/16"]
        off = get(url, "private/edit_api_key", f"{base}&ip_whitelist=&enabled=false", token)
        assert (off["result"]["ip_whitelist"], off["result"]["enabled"]) == ([], False)

    @pytest.mark.parametrize(
        ("query", "param"),
        [
            ("id={id}&id={id}", "id"),
            ("id=abc", "id"),
            ("id=3.0", "id"),
            ("id={id}&max_scope=trade:read&enabled=yes", "enabled"),
            ("id={id}&max_scope=trade:read&max_scope=trade:read", "max_scope"),
        ],
    )
    def test_wrong_types_and_repeats_are_invalid_params(
        self, world: tuple[KeyService, str], query: str, param: str
    ) -> None:
        """A value of the wrong type, or a single-valued parameter given twice, is -32602 naming it."""
        service, url = world
        token = login(url, *portal_key(service))
        key_id = other_key(service)
        before = service.get(key_id, owner="acct1")
        answer = get(url, "private/edit_api_key", query.format(id=key_id), token)
        assert answer["error"]["code"] == -32602, answer
        assert answer["error"]["data"]["param"] == param
        assert set(answer) >= ENVELOPE
        assert service.get(key_id, owner="acct1") == before

    def test_post_and_websocket_read_the_same_declarations(
        self, world: tuple[KeyService, str]
    ) -> None:
        """Over POST and WebSocket a list must hold strings and a string must be a string."""
        service, url = world
        token = login(url, *portal_key(service))
        key_id = other_key(service)
        bad = {"id": key_id, "max_scope": "trade:read", "ip_whitelist": ["10.0.0.0/8", 5]}
        answer = call(url, "private/edit_api_key", bad, token=token)
        assert answer["error"]["data"] == {
            "param": "ip_whitelist",
            "reason": "must be a list of strings",
        }
        with connect(url.replace("http://", "ws://") + "/ws/api/v2") as ws:
            params = {"access_token": token, "id": key_id, "name": 123}
            answer = ws_ask(ws, "private/change_api_key_name", params, 1)
            assert answer["error"]["data"] == {"param": "name", "reason": "must be a string"}


class TestIdempotence:
    def test_enable_an_enabled_key_answers_it(self, world: tuple[KeyService, str]) -> None:
        """enable_api_key on an enabled key answers the key, unchanged, as Deribit does."""
        service, url = world
        token = login(url, *portal_key(service))
        key_id = other_key(service)
        before = service.get(key_id, owner="acct1")
        answer = call(url, "private/enable_api_key", {"id": key_id}, token=token)
        assert_valid(answer, "private_api_key_response")
        assert answer["result"]["enabled"] is True
        assert service.get(key_id, owner="acct1") == before  # same version: nothing written

    def test_disable_a_disabled_key_answers_it(self, world: tuple[KeyService, str]) -> None:
        """disable_api_key on a disabled key answers the key, unchanged."""
        service, url = world
        token = login(url, *portal_key(service))
        key_id = other_key(service, State.DISABLED)
        before = service.get(key_id, owner="acct1")
        answer = call(url, "private/disable_api_key", {"id": key_id}, token=token)
        assert_valid(answer, "private_api_key_response")
        assert answer["result"]["enabled"] is False
        assert service.get(key_id, owner="acct1") == before

    def test_enable_still_enables_a_disabled_key(self, world: tuple[KeyService, str]) -> None:
        """enable_api_key on a disabled key enables it (the direct-enable edge)."""
        service, url = world
        token = login(url, *portal_key(service))
        key_id = other_key(service, State.DISABLED)
        answer = call(url, "private/enable_api_key", {"id": key_id}, token=token)
        assert answer["result"]["enabled"] is True
        assert service.get(key_id, owner="acct1").state is State.ACTIVE


class TestEnvelope:
    @pytest.mark.parametrize(
        ("verb", "path", "body", "status", "code"),
        [
            ("POST", "/api/v2", b"{not json", 400, -32700),
            ("POST", "/api/v2", b"x" * (MAX_BODY + 1), 400, -32600),
            ("GET", "/api/v2/nowhere/at_all", b"", 404, -32601),
            ("GET", "/elsewhere", b"", 404, -32601),
            ("GET", "/api/v2/public/get_time?x=1&x=2", b"", 200, None),
            ("GET", "/api/v2/public/no_such_method", b"", 400, -32601),
        ],
    )
    def test_every_answer_carries_the_envelope(
        self,
        world: tuple[KeyService, str],
        verb: str,
        path: str,
        body: bytes,
        status: int,
        code: int | None,
    ) -> None:
        """Malformed JSON, an oversized body, an unmatched path: each answers in Deribit's envelope."""
        _, url = world
        answer = httpx.request(verb, url + path, content=body)
        assert answer.status_code == status
        doc = answer.json()
        assert set(doc) >= ENVELOPE
        assert doc["testnet"] is False
        assert doc["usDiff"] == doc["usOut"] - doc["usIn"] >= 0
        assert (doc["error"]["code"] if code is not None else None) == code

    def test_trailing_slashes(self, world: tuple[KeyService, str]) -> None:
        """/api/v2/<method>/ and /ws/api/v2/ work as without the slash."""
        _, url = world
        answer = httpx.get(f"{url}/api/v2/public/test/").json()
        assert answer["result"] == {"version": "2.1.1"}
        posted = httpx.post(f"{url}/api/v2/", json={"method": "public/test", "id": 2}).json()
        assert posted["result"] == {"version": "2.1.1"}
        with connect(url.replace("http://", "ws://") + "/ws/api/v2/") as ws:
            assert ws_ask(ws, "public/test", {}, 1)["result"] == {"version": "2.1.1"}


def mounted(api: Api) -> Starlette:
    """A host application that mounts the API under /deribit."""
    return Starlette(routes=[Mount("/deribit", app=cast("ASGIApp", api))])


class TestMounted:
    def test_under_a_prefix(self, tmp_path: Path) -> None:
        """Mounted at /deribit in Starlette, every transport and credential works below the prefix."""
        with serving(tmp_path, mount=mounted) as (service, url):
            cid, secret = portal_key(service)
            base = f"{url}/deribit"
            assert httpx.get(f"{base}/api/v2/public/test").json()["result"]["version"] == "2.1.1"
            token = login(base, cid, secret)
            listed = call(base, "private/list_api_keys", token=token)
            assert_valid(listed, "public_list_api_keys_response")
            uri = "/deribit/api/v2/private/list_api_keys"
            header = signature_header(cid, secret, method="GET", uri=uri)
            signed = httpx.get(url + uri, headers={"Authorization": header}).json()
            assert_valid(signed, "public_list_api_keys_response")
            for path in ("/deribit/ws/api/v2", "/deribit/ws/api/v2/"):
                with connect(url.replace("http://", "ws://") + path) as ws:
                    answer = ws_ask(ws, "private/list_api_keys", {"access_token": token}, 1)
                    assert_valid(answer, "public_list_api_keys_response")
            assert httpx.get(f"{url}/api/v2/public/test").status_code == 404  # outside the mount


@pytest.mark.slow
def test_serve_testnet_answers_testnet_true(tmp_path: Path) -> None:
    """Keyturn serve --testnet answers testnet: true in the envelope (false without it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
    subprocess.run(
        [sys.executable, "-m", "keyturn", "init"], cwd=tmp_path, env=env, check=True, timeout=60
    )
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "keyturn", "serve", "--port", str(port), "--testnet"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        answer = None
        for _ in range(600):
            assert proc.poll() is None, f"keyturn serve exited with {proc.returncode}"
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v2/public/test", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert answer is not None, "keyturn serve did not answer within 30 s"
        assert answer.json()["testnet"] is True
        assert answer.json()["result"] == {"version": "2.1.1"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize(("required", "outcome"), [("1", "1 failed"), ("", "1 skipped")])
@pytest.mark.slow
def test_a_skipped_api_test_fails_where_they_are_required(
    tmp_path: Path, required: str, outcome: str
) -> None:
    """With KEYTURN_REQUIRE_API_TESTS=1 (CI) an API test that skips fails, saying why; else it skips."""
    probe = tmp_path / "test_api_probe.py"
    probe.write_text(
        '"""A probe."""\nimport pytest\n\n\ndef test_probe():\n    pytest.skip("no server")\n'
    )
    env = os.environ | {
        "KEYTURN_REQUIRE_API_TESTS": required,
        "PYTHONPATH": str(Path(__file__).parent),
        "COLUMNS": "400",  # the summary line in full
    }
    options = ["-q", "-p", "api_required", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pytest", *options, str(probe)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert outcome in done.stdout, done.stdout[-2000:]
    if required:
        assert "KEYTURN_REQUIRE_API_TESTS=1, but this API test was skipped: Skipped: no server" in (
            done.stdout
        )
