"""Deribit's session side of the API, over real HTTP and WebSocket (uvicorn started here).

Who a call speaks for, public/auth's session scopes, the session methods, heartbeats, logout.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from apitools import (
    assert_valid,
    call,
    credentials,
    login,
    portal_key,
    serving,
    ws_ask,
    ws_url,
)
from keyturn import State
from keyturn.testing import key_in_state
from keyturn.testing.signing import signature_params

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from websockets.sync.client import ClientConnection

    from keyturn import KeyService


@pytest.fixture(name="world")
def _world(tmp_path: Path) -> Iterator[tuple[KeyService, str]]:
    """The API served on loopback over a SQLite file, heartbeat intervals shrunk 100 times."""
    with serving(tmp_path, heartbeat_time_scale=0.01) as world:
        yield world


def session_id(token: str) -> str:
    """The session a token names (tests may look inside a token)."""
    body = token.split(".", maxsplit=1)[0]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    found: str = claims["i"]
    return found


def grant(url: str, params: dict[str, Any]) -> dict[str, Any]:
    """public/auth over HTTP; its result, checked against the official schema."""
    answer = call(url, "public/auth", params)
    assert_valid(answer, "public_auth_response")
    result: dict[str, Any] = answer["result"]
    return result


def owners_of(answer: dict[str, Any]) -> set[str]:
    """The client ids a list_api_keys answer lists."""
    return {k["client_id"] for k in answer["result"]}


def second_account(service: KeyService) -> tuple[str, str]:
    """An active key of another account (acct2); its client id and secret."""
    issued = key_in_state(
        service, State.ACTIVE, owner="acct2", name="theirs", max_scope="account:read_write"
    )
    assert issued.client_secret is not None
    return issued.key.client_id, issued.client_secret


def closed_with(ws: ClientConnection, within: float = 10.0) -> int | None:
    """The close code the server ends ``ws`` with, reading (and skipping) what comes first."""
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=within)
    except ConnectionClosed:
        return ws.close_code
    pytest.fail("the server did not close the connection")


class TestCallCredentials:
    def test_access_token_in_params_on_a_fresh_connection(
        self, world: tuple[KeyService, str]
    ) -> None:
        """A token from an HTTP login, given as params.access_token, serves a fresh socket."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        with connect(ws_url(url)) as ws:
            listed = ws_ask(ws, "private/list_api_keys", {"access_token": token}, 1)
            assert_valid(listed, "public_list_api_keys_response")
            assert owners_of(listed) == {cid}
            assert ws_ask(ws, "private/list_api_keys", {}, 2)["error"]["code"] == 10000

    def test_a_call_token_is_never_the_connection_session(
        self, world: tuple[KeyService, str]
    ) -> None:
        """On a socket logged in as one account, another account's token (or garbage) speaks for itself."""
        service, url = world
        cid, secret = portal_key(service)
        other_cid, other_secret = second_account(service)
        theirs = login(url, other_cid, other_secret)
        with connect(ws_url(url)) as ws:
            assert "result" in ws_ask(ws, "public/auth", credentials(cid, secret), 1)
            assert owners_of(ws_ask(ws, "private/list_api_keys", {}, 2)) == {cid}
            as_theirs = ws_ask(ws, "private/list_api_keys", {"access_token": theirs}, 3)
            assert owners_of(as_theirs) == {other_cid}
            for bad in ("garbage", theirs + "x", ""):
                answer = ws_ask(ws, "private/list_api_keys", {"access_token": bad}, 4)
                assert answer["error"]["code"] == 13009, bad
            assert owners_of(ws_ask(ws, "private/list_api_keys", {}, 5)) == {cid}

    def test_a_call_token_gets_every_check(self, world: tuple[KeyService, str]) -> None:
        """A token in params fails once its key is disabled elsewhere, as a header token does."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        with connect(ws_url(url)) as ws:
            assert "result" in ws_ask(ws, "private/list_api_keys", {"access_token": token}, 1)
            key = next(k for k in service.list_keys(owner="acct1") if k.client_id == cid)
            service.disable(key.id, owner="acct1")
            answer = ws_ask(ws, "private/list_api_keys", {"access_token": token}, 2)
            assert answer["error"]["code"] == 13009

    def test_over_http_one_credential_per_call(self, world: tuple[KeyService, str]) -> None:
        """Over HTTP params.access_token works alone; with an Authorization header too it is refused."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        alone = call(url, "private/list_api_keys", {"access_token": token})
        assert_valid(alone, "public_list_api_keys_response")
        both = call(url, "private/list_api_keys", {"access_token": token}, token=token)
        assert both["error"]["code"] == 11029
        assert both["error"]["data"]["param"] == "access_token"


class TestSessionScopes:
    def test_granted_scope_and_state(self, world: tuple[KeyService, str]) -> None:
        """The answer reports resource and session scopes sorted, as Deribit does, and echoes state."""
        service, url = world
        cid, secret = portal_key(service)
        plain = grant(url, credentials(cid, secret, state="s-1"))
        assert plain["scope"] == "account:read_write connection mainaccount trade:read"
        assert plain["state"] == "s-1"
        asked = "mainaccount trade:read expires:120 session:bot-1.a"
        named = grant(url, credentials(cid, secret, scope=asked))
        assert named["scope"] == "expires:120 mainaccount session:bot-1.a trade:read"
        assert named["expires_in"] == 120
        assert "state" not in named

    def test_expires_is_capped_at_the_server_maximum(self, world: tuple[KeyService, str]) -> None:
        """expires:SECONDS beyond the server's maximum (an hour) is cut to it, and says so."""
        service, url = world
        cid, secret = portal_key(service)
        capped = grant(url, credentials(cid, secret, scope="expires:315360000"))
        assert capped["expires_in"] == 3600
        assert "expires:3600" in capped["scope"].split()
        again = grant(
            url, {"grant_type": "refresh_token", "refresh_token": capped["refresh_token"]}
        )
        assert again["expires_in"] == 3600  # a refresh keeps the session's lifetime

    @pytest.mark.parametrize(
        "scope",
        [
            "session:",
            "session:a session:b",
            "session:" + "x" * 65,
            "session:bad/name",
            "expires:0",
            "expires:-5",
            "expires:soon",
            "expires:10 expires:20",
            "connection session:bot",
            "trade:read trade:read",
            "nonsense",
        ],
    )
    def test_malformed_session_scopes_are_refused(
        self, world: tuple[KeyService, str], scope: str
    ) -> None:
        """A malformed or contradictory scope is 11029 naming scope, and starts no session."""
        service, url = world
        cid, secret = portal_key(service)
        answer = call(url, "public/auth", credentials(cid, secret, scope=scope))
        assert answer["error"]["code"] == 11029
        assert answer["error"]["data"]["param"] == "scope"

    def test_a_named_session_is_replaced_by_a_login_with_its_name(
        self, world: tuple[KeyService, str]
    ) -> None:
        """A second login as session:bot ends the first one's tokens; session:other lives on."""
        service, url = world
        cid, secret = portal_key(service)
        first = grant(url, credentials(cid, secret, scope="session:bot"))
        other = grant(url, credentials(cid, secret, scope="session:other"))
        assert "result" in call(url, "private/list_api_keys", token=first["access_token"])
        second = grant(url, credentials(cid, secret, scope="session:bot"))
        assert session_id(second["access_token"]) == session_id(first["access_token"])
        assert call(url, "private/list_api_keys", token=first["access_token"])["error"]["code"] == (
            13009
        )
        refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
        assert call(url, "public/auth", refresh)["error"]["code"] == 13004
        assert "result" in call(url, "private/list_api_keys", token=second["access_token"])
        assert "result" in call(url, "private/list_api_keys", token=other["access_token"])
        renewed = grant(
            url, {"grant_type": "refresh_token", "refresh_token": second["refresh_token"]}
        )
        assert "session:bot" in renewed["scope"].split()

    def test_a_named_session_serves_any_connection(self, world: tuple[KeyService, str]) -> None:
        """A session:NAME login on one socket serves another socket and HTTP, and outlives its socket."""
        service, url = world
        cid, secret = portal_key(service)
        with connect(ws_url(url)) as ws:
            auth = ws_ask(ws, "public/auth", credentials(cid, secret, scope="session:desk"), 1)
            token = auth["result"]["access_token"]
        with connect(ws_url(url)) as other:
            listed = ws_ask(other, "private/list_api_keys", {"access_token": token}, 1)
            assert owners_of(listed) == {cid}
        assert "result" in call(url, "private/list_api_keys", token=token)

    def test_connection_scope_binds_tokens_to_their_socket(
        self, world: tuple[KeyService, str]
    ) -> None:
        """A socket's default login serves that socket only, and its session ends when it closes."""
        service, url = world
        cid, secret = portal_key(service)
        with connect(ws_url(url)) as ws, connect(ws_url(url)) as other:
            auth = ws_ask(ws, "public/auth", credentials(cid, secret, scope="connection"), 1)
            assert_valid(auth, "public_auth_response")
            token, refresh = auth["result"]["access_token"], auth["result"]["refresh_token"]
            assert "connection" in auth["result"]["scope"].split()
            mine = ws_ask(ws, "private/list_api_keys", {"access_token": token}, 2)
            assert owners_of(mine) == {cid}
            elsewhere = ws_ask(other, "private/list_api_keys", {"access_token": token}, 2)
            assert elsewhere["error"]["code"] == 13009
            assert call(url, "private/list_api_keys", token=token)["error"]["code"] == 13009
            by_refresh = {"grant_type": "refresh_token", "refresh_token": refresh}
            assert ws_ask(other, "public/auth", by_refresh, 3)["error"]["code"] == 13004
            renewed = ws_ask(ws, "public/auth", by_refresh, 4)
            assert_valid(renewed, "public_auth_response")
            assert owners_of(ws_ask(ws, "private/list_api_keys", {}, 5)) == {cid}
            sid = session_id(token)
            assert service.store.load_session(sid) is not None
        for _ in range(100):  # the server ends the session as it sees the socket close
            found = service.store.load_session(sid)
            if found is None or found.session.ended_at is not None:
                break
            time.sleep(0.05)
        assert found is None or found.session.ended_at is not None

    def test_connection_over_http_binds_nothing(self, world: tuple[KeyService, str]) -> None:
        """Over HTTP, scope connection is accepted and reported, and the token serves later requests."""
        service, url = world
        cid, secret = portal_key(service)
        result = grant(url, credentials(cid, secret, scope="connection mainaccount"))
        assert result["scope"] == "account:read_write connection mainaccount trade:read"
        assert "result" in call(url, "private/list_api_keys", token=result["access_token"])

    def test_signed_grant_with_a_string_timestamp(self, world: tuple[KeyService, str]) -> None:
        """client_signature accepts its timestamp as a string of digits, as some clients send it."""
        service, url = world
        cid, secret = portal_key(service)
        params = signature_params(cid, secret, data="x")
        params["timestamp"] = str(params["timestamp"])
        assert "access_token" in grant(url, params)
        params = signature_params(cid, secret)
        params["timestamp"] = "12e3"
        assert call(url, "public/auth", params)["error"]["code"] == 11029


class TestSessionMethods:
    def test_public_methods_over_http_and_websocket(self, world: tuple[KeyService, str]) -> None:
        """get_time, test, hello and status answer Deribit's shapes on both transports."""
        _, url = world
        before = int(time.time() * 1000)
        with connect(ws_url(url)) as ws:
            asks: list[Callable[[str, dict[str, Any]], dict[str, Any]]] = [
                lambda m, p: call(url, m, p),
                lambda m, p: ws_ask(ws, m, p, 9),
            ]
            for ask in asks:
                now = ask("public/get_time", {})["result"]
                assert before - 5_000 <= now <= int(time.time() * 1000) + 5_000
                assert ask("public/test", {})["result"] == {"version": "2.1.1"}
                failed = ask("public/test", {"expected_result": "exception"})
                assert failed["error"]["code"] == 11094
                hello = {"client_name": "bot", "client_version": "1.0"}
                assert ask("public/hello", hello)["result"] == {"version": "2.1.1"}
                assert ask("public/hello", {"client_name": "bot"})["error"]["code"] == -32602
                assert ask("public/status", {})["result"] == {
                    "locked": "false",
                    "locked_indices": [],
                }

    @pytest.mark.parametrize(
        ("method", "params"),
        [
            ("public/set_heartbeat", {"interval": 10}),
            ("public/disable_heartbeat", {}),
            ("private/logout", {}),
        ],
    )
    def test_websocket_only_methods_over_http(
        self, world: tuple[KeyService, str], method: str, params: dict[str, Any]
    ) -> None:
        """Heartbeats and logout over HTTP answer 10030 must_be_websocket_request, in the envelope."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        answer = httpx.post(
            f"{url}/api/v2/{method}",
            json={"jsonrpc": "2.0", "id": 4, "method": method, "params": params},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 400
        body = answer.json()
        assert body["error"] == {"code": 10030, "message": "must_be_websocket_request"}
        assert {"usIn", "usOut", "usDiff", "testnet", "id"} <= set(body)
        assert "result" in call(url, "private/list_api_keys", token=token)  # no logout happened

    def test_heartbeat_interval_is_checked(self, world: tuple[KeyService, str]) -> None:
        """An interval under 10 s is 11029; one that is no number is -32602."""
        _, url = world
        with connect(ws_url(url)) as ws:
            for interval, code in ((9.99, 11029), (0, 11029), ("10", -32602), (None, -32602)):
                answer = ws_ask(ws, "public/set_heartbeat", {"interval": interval}, 1)
                assert answer["error"]["code"] == code, interval


def notifications(ws: ClientConnection, count: int) -> list[str]:
    """The types of the next ``count`` heartbeat notifications on ``ws`` (answers skipped)."""
    kinds: list[str] = []
    while len(kinds) < count:
        message = json.loads(ws.recv(timeout=10))
        if "id" in message:
            assert message["result"] == {"version": "2.1.1"}  # a public/test answered
            continue
        assert message["method"] == "heartbeat"
        kinds.append(message["params"]["type"])
    return kinds


class TestHeartbeats:
    def test_a_silent_client_is_tested_then_closed(self, world: tuple[KeyService, str]) -> None:
        """After set_heartbeat a silent client gets heartbeat, then test_request, then close 4000."""
        _, url = world
        with connect(ws_url(url)) as ws:
            assert ws_ask(ws, "public/set_heartbeat", {"interval": 10}, 1)["result"] == "ok"
            assert notifications(ws, 2) == ["heartbeat", "test_request"]
            assert closed_with(ws) == 4000
            assert ws.close_reason == "heartbeat close"

    def test_an_answering_client_stays_until_it_disables(self, tmp_path: Path) -> None:
        """A client that answers each test_request with public/test stays; disable_heartbeat stops them."""
        with serving(tmp_path, heartbeat_time_scale=0.03) as (_, url), connect(ws_url(url)) as ws:
            assert ws_ask(ws, "public/set_heartbeat", {"interval": 10}, 1)["result"] == "ok"
            tested = 0
            while tested < 4:
                (kind,) = notifications(ws, 1)
                if kind == "test_request":
                    tested += 1
                    ws.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "public/test"}))
            assert ws_ask(ws, "public/disable_heartbeat", {}, 2)["result"] == "ok"
            time.sleep(1.0)  # more than three intervals of 0.3 s
            assert ws_ask(ws, "public/get_time", {}, 3)["id"] == 3  # nothing came in between

    def test_set_heartbeat_again_restarts_them(self, world: tuple[KeyService, str]) -> None:
        """A second set_heartbeat replaces the first: one stream of notifications, not two."""
        _, url = world
        with connect(ws_url(url)) as ws:
            for rid in (1, 2):
                assert ws_ask(ws, "public/set_heartbeat", {"interval": 10}, rid)["result"] == "ok"
            started = time.monotonic()
            assert notifications(ws, 2) == ["heartbeat", "test_request"]
            assert time.monotonic() - started >= 0.15  # two intervals of 0.1 s, not one


class TestLogout:
    def test_logout_ends_the_session_on_every_worker(self, tmp_path: Path) -> None:
        """Logout on one worker's socket closes it, and the session's tokens fail on another worker."""
        with serving(tmp_path) as (service, url), serving(tmp_path) as (_, other):
            cid, secret = portal_key(service)
            tokens = grant(url, credentials(cid, secret, scope="session:bot"))
            access = tokens["access_token"]
            with connect(ws_url(other)) as ws:
                assert "result" in ws_ask(ws, "private/list_api_keys", {"access_token": access}, 1)
            with connect(ws_url(url)) as ws:
                answer = ws_ask(ws, "private/logout", {"access_token": access}, 1)
                assert answer["result"] == "ok"
                assert closed_with(ws) == 1000
            assert call(other, "private/list_api_keys", token=access)["error"]["code"] == 13009
            refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
            assert call(other, "public/auth", refresh)["error"]["code"] == 13004
            with connect(ws_url(other)) as ws:
                answer = ws_ask(ws, "private/list_api_keys", {"access_token": access}, 2)
                assert answer["error"]["code"] == 13009

    def test_logout_of_the_connection_session(self, world: tuple[KeyService, str]) -> None:
        """Logout with no token ends the connection's own session (a named one stays dead)."""
        service, url = world
        cid, secret = portal_key(service)
        with connect(ws_url(url)) as ws:
            auth = ws_ask(ws, "public/auth", credentials(cid, secret, scope="session:a"), 1)
            assert ws_ask(ws, "private/logout", {}, 2)["result"] == "ok"
            assert closed_with(ws) == 1000
        token = auth["result"]["access_token"]
        assert call(url, "private/list_api_keys", token=token)["error"]["code"] == 13009

    def test_logout_keeping_tokens(self, world: tuple[KeyService, str]) -> None:
        """invalidate_token false closes the connection and leaves the session's tokens valid."""
        service, url = world
        cid, secret = portal_key(service)
        access = login(url, cid, secret)
        with connect(ws_url(url)) as ws:
            params = {"access_token": access, "invalidate_token": False}
            assert ws_ask(ws, "private/logout", params, 1)["result"] == "ok"
            assert closed_with(ws) == 1000
        assert "result" in call(url, "private/list_api_keys", token=access)

    def test_logout_needs_a_valid_token(self, world: tuple[KeyService, str]) -> None:
        """Logout without credentials is 10000 and with a bad token 13009; the socket stays open."""
        _, url = world
        with connect(ws_url(url)) as ws:
            assert ws_ask(ws, "private/logout", {}, 1)["error"]["code"] == 10000
            bad = ws_ask(ws, "private/logout", {"access_token": "x.y"}, 2)
            assert bad["error"]["code"] == 13009
            assert ws_ask(ws, "public/test", {}, 3)["result"] == {"version": "2.1.1"}
