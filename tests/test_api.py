"""The Deribit-compatible JSON-RPC API, over real HTTP on loopback (uvicorn started here).

Every result is validated against Deribit's official OpenAPI schema, kept in ``tests/data/deribit``.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import pytest

from apitools import (
    assert_valid,
    call,
    login,
    portal_key,
    serving,
    ws_ask,
)
from keyturn import State, wiring
from keyturn.adapters.totp import TotpVerifier
from keyturn.testing import key_in_state
from keyturn.testing.signing import (
    ed25519_key,
    now_ms,
    public_pem,
    rsa_key,
    signature_header,
    signature_params,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from keyturn import KeyService, SecurityKeyEnrollment


@pytest.fixture(name="world")
def _world(tmp_path: Path) -> Iterator[tuple[KeyService, str]]:
    """The API served on loopback over a SQLite file, with the portal's sync service."""
    with serving(tmp_path) as world:
        yield world


class TestAuth:
    def test_client_credentials_and_refresh(self, world: tuple[KeyService, str]) -> None:
        """public/auth issues tokens; the refresh token gets new ones; scope never exceeds the key's."""
        service, url = world
        cid, secret = portal_key(service)
        answer = call(
            url,
            "public/auth",
            {
                "grant_type": "client_credentials",
                "client_id": cid,
                "client_secret": secret,
                "scope": "account:read_write trade:read_write wallet:read",
            },
        )
        assert_valid(answer, "public_auth_response")
        assert answer["result"]["scope"] == (
            "account:read_write connection mainaccount trade:read wallet:none"
        )
        again = call(
            url,
            "public/auth",
            {"grant_type": "refresh_token", "refresh_token": answer["result"]["refresh_token"]},
        )
        assert_valid(again, "public_auth_response")
        assert call(url, "private/list_api_keys", token=again["result"]["access_token"])["result"]

    def test_wrong_secret_is_invalid_credentials(self, world: tuple[KeyService, str]) -> None:
        """A wrong secret gets 13004 invalid_credentials and no token."""
        service, url = world
        cid, _ = portal_key(service)
        answer = call(
            url,
            "public/auth",
            {"grant_type": "client_credentials", "client_id": cid, "client_secret": "x" * 43},
        )
        assert answer["error"]["code"] == 13004
        assert "result" not in answer

    def test_basic_authorization(self, world: tuple[KeyService, str]) -> None:
        """Authorization: Basic base64(client_id:client_secret) works for private calls."""
        service, url = world
        cid, secret = portal_key(service)
        basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
        answer = httpx.get(
            f"{url}/api/v2/private/list_api_keys", headers={"Authorization": f"Basic {basic}"}
        ).json()
        assert_valid(answer, "public_list_api_keys_response")
        bad = base64.b64encode(f"{cid}:nope".encode()).decode()
        refused = httpx.get(
            f"{url}/api/v2/private/list_api_keys", headers={"Authorization": f"Basic {bad}"}
        )
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == 13004

    def test_missing_and_bad_tokens(self, world: tuple[KeyService, str]) -> None:
        """No credentials: 10000; a forged token: 13009."""
        _, url = world
        assert call(url, "private/list_api_keys")["error"]["code"] == 10000
        assert call(url, "private/list_api_keys", token="a.b")["error"]["code"] == 13009

    def test_disabled_key_fails_on_the_next_request(self, world: tuple[KeyService, str]) -> None:
        """Disabling a key through the API makes its own token fail on the very next request."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        own = next(
            k
            for k in call(url, "private/list_api_keys", token=token)["result"]
            if k["client_id"] == cid
        )
        assert call(url, "private/disable_api_key", {"id": own["id"]}, token=token)["result"]
        assert call(url, "private/list_api_keys", token=token)["error"]["code"] == 13009


class TestMethods:
    def test_seed_example_works_as_written(self, world: tuple[KeyService, str]) -> None:
        """The seed's enable_api_key request, id 8580 and key 3, works and validates."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        for name in ("k2", "NewKeyName"):
            created = call(
                url,
                "private/create_api_key",
                {"max_scope": "trade:read", "name": name},
                token=token,
            )
            assert_valid(created, "private_api_key_response")
        assert created["result"]["id"] == 3
        call(url, "private/disable_api_key", {"id": 3}, token=token)
        seed = {
            "jsonrpc": "2.0",
            "id": 8580,
            "method": "private/enable_api_key",
            "params": {"id": 3},
        }
        answer = httpx.post(
            f"{url}/api/v2/private/enable_api_key",
            json=seed,
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert_valid(answer, "private_api_key_response")
        assert answer["id"] == 8580
        assert answer["result"]["enabled"] is True
        assert answer["result"]["name"] == "NewKeyName"
        assert set(answer) >= {"jsonrpc", "usIn", "usOut", "usDiff", "testnet"}

    def test_every_method_validates(self, world: tuple[KeyService, str]) -> None:
        """create, edit, enable, disable, list, reset, rename, change scope, access log, remove."""
        service, url = world
        cid, secret = portal_key(service)
        t = login(url, cid, secret)
        made = call(
            url,
            "private/create_api_key",
            {"max_scope": "account:read trade:read", "name": "bot", "enabled_features": []},
            token=t,
        )
        assert_valid(made, "private_api_key_response")
        key_id, first_secret = made["result"]["id"], made["result"]["client_secret"]
        assert made["result"]["enabled"] is True
        new_key = login(url, made["result"]["client_id"], first_secret)
        assert new_key
        steps = [
            (
                "private/edit_api_key",
                {
                    "id": key_id,
                    "max_scope": "trade:read",
                    "ip_whitelist": ["10.0.0.0/8"],
                    "enabled": False,
                },
                "private_api_key_response",
            ),
            ("private/enable_api_key", {"id": key_id}, "private_api_key_response"),
            (
                "private/change_api_key_name",
                {"id": key_id, "name": "bot2"},
                "private_api_key_response",
            ),
            (
                "private/change_scope_in_api_key",
                {"id": key_id, "max_scope": "account:read"},
                "private_api_key_response",
            ),
            ("private/disable_api_key", {"id": key_id}, "private_api_key_response"),
            ("private/list_api_keys", {}, "public_list_api_keys_response"),
            ("private/reset_api_key", {"id": key_id}, "private_api_key_response"),
            ("private/get_access_log", {"count": 50}, "private_get_access_log_response"),
            ("private/remove_api_key", {"id": key_id}, "ok_response"),
        ]
        results = {}
        for method, params, schema in steps:
            answer = call(url, method, params, token=t)
            assert "result" in answer, (method, answer)
            assert_valid(answer, schema)
            results[method] = answer["result"]
        assert results["private/reset_api_key"]["client_secret"] != first_secret
        listed = {k["id"]: k for k in results["private/list_api_keys"]}
        assert listed[key_id]["client_secret"].startswith("sha256:")
        assert first_secret not in json.dumps(results["private/list_api_keys"])
        logs = [e["log"] for e in results["private/get_access_log"]]
        assert {
            "new_api_key",
            "enabled_api_key",
            "disabled_api_key",
            "changed_scope",
            "reset_api_key",
        } <= set(logs)

    def test_get_with_query_parameters(self, world: tuple[KeyService, str]) -> None:
        """GET /api/v2/private/<method>?<params> works like POST."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        answer = httpx.get(
            f"{url}/api/v2/private/create_api_key",
            params={"max_scope": "trade:read", "name": "viaget"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        assert_valid(answer, "private_api_key_response")
        assert answer["result"]["name"] == "viaget"

    def test_post_to_api_root(self, world: tuple[KeyService, str]) -> None:
        """POST /api/v2 with the method in the body works."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        body = {"jsonrpc": "2.0", "id": 7, "method": "private/list_api_keys", "params": {}}
        answer = httpx.post(
            f"{url}/api/v2", json=body, headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert_valid(answer, "public_list_api_keys_response")
        assert answer["id"] == 7


class TestRefusals:
    def test_scope_rules(self, world: tuple[KeyService, str]) -> None:
        """account:read cannot manage keys (13021); nobody manages keys above their scope (13403)."""
        service, url = world
        cid, secret = portal_key(service)
        reader = login(url, cid, secret, scope="account:read")
        assert call(url, "private/list_api_keys", token=reader)["result"]
        assert (
            call(url, "private/create_api_key", {"max_scope": "trade:read"}, token=reader)["error"][
                "code"
            ]
            == 13021
        )
        writer = login(url, cid, secret)
        above = call(
            url, "private/create_api_key", {"max_scope": "wallet:read_write"}, token=writer
        )
        assert above["error"]["code"] == 13403

    def test_other_owners_keys_are_not_found(self, world: tuple[KeyService, str]) -> None:
        """A key of another account answers 13020 not_found and is left as it was."""
        service, url = world
        cid, secret = portal_key(service)
        theirs = key_in_state(
            service, State.ACTIVE, owner="acct2", name="theirs", max_scope="trade:read"
        ).key.id
        token = login(url, cid, secret)
        answer = call(url, "private/disable_api_key", {"id": theirs}, token=token)
        assert answer["error"]["code"] == 13020
        assert service.get(theirs, owner="acct2").state is State.ACTIVE

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            (b"{not json", -32700),
            (b'{"jsonrpc": "2.0", "id": 1, "method": "private/nope", "params": {}}', -32601),
            (
                b'{"jsonrpc": "2.0", "id": 1, "method": "private/enable_api_key", "params": {"id": "3"}}',
                -32602,
            ),
            (b'{"jsonrpc": "1.0", "id": 1, "method": "public/auth"}', -32600),
            (b"[1, 2]", -32600),
            (b"[" * 30_000 + b"]" * 30_000, -32700),
            (
                b'{"jsonrpc": "2.0", "id": 1, "method": "private/list_api_keys", "params": {"x": '
                + b"[" * 30_000
                + b"]" * 30_000
                + b"}}",
                -32700,
            ),
        ],
    )
    def test_protocol_errors(self, world: tuple[KeyService, str], body: bytes, code: int) -> None:
        """Malformed JSON (nesting too deep included), unknown methods, wrong types and bad envelopes get JSON-RPC errors."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        answer = httpx.post(
            f"{url}/api/v2", content=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code in (400, 404)
        assert answer.json()["error"]["code"] == code

    def test_bad_arguments(self, world: tuple[KeyService, str]) -> None:
        """A malformed scope or name is 11029 invalid_arguments, naming the parameter."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        answer = call(
            url,
            "private/create_api_key",
            {"max_scope": "trade:read", "name": "bad name"},
            token=token,
        )
        assert answer["error"]["code"] == 11029
        assert answer["error"]["data"]["param"] == "name"


class TestSignatures:
    def test_hmac_header_on_get_and_post(self, world: tuple[KeyService, str]) -> None:
        """deri-hmac-sha256 over the verb, URI with query and body authenticates GET and POST."""
        service, url = world
        cid, secret = portal_key(service)
        uri = "/api/v2/private/list_api_keys?extra=1"
        header = signature_header(cid, secret, method="GET", uri=uri)
        answer = httpx.get(url + uri, headers={"Authorization": header}).json()
        assert_valid(answer, "public_list_api_keys_response")
        body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "private/list_api_keys"})
        header = signature_header(cid, secret, method="POST", uri="/api/v2", body=body)
        posted = httpx.post(url + "/api/v2", content=body, headers={"Authorization": header})
        assert_valid(posted.json(), "public_list_api_keys_response")

    def test_hmac_header_refusals(self, world: tuple[KeyService, str]) -> None:
        """A replayed nonce, a changed body, a stale timestamp or a garbled header is refused."""
        service, url = world
        cid, secret = portal_key(service)
        uri = "/api/v2/private/list_api_keys"
        header = signature_header(cid, secret, method="GET", uri=uri)
        assert "result" in httpx.get(url + uri, headers={"Authorization": header}).json()
        replay = httpx.get(url + uri, headers={"Authorization": header}).json()
        assert replay["error"]["code"] == 13004
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "private/list_api_keys"})
        signed_other = signature_header(cid, secret, method="POST", uri="/api/v2", body=body + " ")
        changed = httpx.post(url + "/api/v2", content=body, headers={"Authorization": signed_other})
        assert changed.json()["error"]["code"] == 13004
        stale = signature_header(cid, secret, method="GET", uri=uri, timestamp=now_ms() - 61_000)
        assert (
            httpx.get(url + uri, headers={"Authorization": stale}).json()["error"]["code"] == 13004
        )
        garbled = httpx.get(url + uri, headers={"Authorization": "deri-hmac-sha256 id=x"}).json()
        assert garbled["error"]["code"] == 11029

    def test_client_signature_grant(self, world: tuple[KeyService, str]) -> None:
        """public/auth with client_signature issues tokens; a replay of it is refused."""
        service, url = world
        cid, secret = portal_key(service)
        params = signature_params(cid, secret, data="hello")
        answer = call(url, "public/auth", params)
        assert_valid(answer, "public_auth_response")
        assert call(url, "private/list_api_keys", token=answer["result"]["access_token"])["result"]
        assert call(url, "public/auth", params)["error"]["code"] == 13004

    @pytest.mark.parametrize("kind", ["ed25519", "rsa"])
    def test_asymmetric_key_made_through_the_api(
        self, world: tuple[KeyService, str], kind: str
    ) -> None:
        """A key created with a public key shows its MD5 fingerprint and signs in by signature only."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        private = ed25519_key() if kind == "ed25519" else rsa_key(2048)
        made = call(
            url,
            "private/create_api_key",
            {"max_scope": "trade:read", "name": "asym", "public_key": public_pem(private)},
            token=token,
        )
        assert_valid(made, "private_api_key_response")
        key = made["result"]
        assert key["enabled"] is True
        assert len(key["client_secret"]) == 32
        assert key["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
        auth = call(url, "public/auth", signature_params(key["client_id"], private))
        assert_valid(auth, "public_auth_response")
        assert auth["result"]["scope"] == "connection mainaccount trade:read"
        uri = "/api/v2/private/list_api_keys"
        header = signature_header(key["client_id"], private, method="GET", uri=uri)
        listed = httpx.get(url + uri, headers={"Authorization": header}).json()
        assert listed["error"]["code"] == 13021  # trade:read may not list keys: authenticated
        credentials = {
            "grant_type": "client_credentials",
            "client_id": key["client_id"],
            "client_secret": key["client_secret"],
        }
        assert call(url, "public/auth", credentials)["error"]["code"] == 13004

    def test_short_rsa_key_is_refused_at_create(self, world: tuple[KeyService, str]) -> None:
        """create_api_key with a 1024-bit RSA key is invalid_arguments and creates nothing."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        answer = call(
            url,
            "private/create_api_key",
            {"max_scope": "trade:read", "public_key": public_pem(rsa_key(1024))},
            token=token,
        )
        assert answer["error"]["code"] == 11029
        assert len(service.list_keys(owner="acct1")) == 1


class TestWebSocket:
    def test_auth_then_calls_on_one_connection(self, world: tuple[KeyService, str]) -> None:
        """public/auth over the socket authenticates the connection for private calls."""
        from websockets.sync.client import connect  # noqa: PLC0415

        service, url = world
        cid, secret = portal_key(service)
        with connect(url.replace("http://", "ws://") + "/ws/api/v2") as ws:
            ask = functools.partial(ws_ask, ws)

            assert ask("private/list_api_keys", {}, 1)["error"]["code"] == 10000
            auth = ask(
                "public/auth",
                {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
                2,
            )
            assert_valid(auth, "public_auth_response")
            listed = ask("private/list_api_keys", {}, 3)
            assert_valid(listed, "public_list_api_keys_response")
            assert listed["id"] == 3
            made = ask("private/create_api_key", {"max_scope": "trade:read", "name": "ws"}, 4)
            assert_valid(made, "private_api_key_response")
            own = next(k for k in listed["result"] if k["client_id"] == cid)
            assert "result" in ask("private/disable_api_key", {"id": own["id"]}, 5)
            assert ask("private/list_api_keys", {}, 6)["error"]["code"] == 13009
            ws.send("{not json")
            assert json.loads(ws.recv(timeout=10))["error"]["code"] == -32700
            ws.send("[" * 30_000 + "]" * 30_000)
            assert json.loads(ws.recv(timeout=10))["error"]["code"] == -32700
            assert ask("private/list_api_keys", {}, 7)["error"]["code"] == 13009

    def test_client_signature_over_the_socket(self, world: tuple[KeyService, str]) -> None:
        """public/auth with client_signature authenticates a WebSocket connection."""
        from websockets.sync.client import connect  # noqa: PLC0415

        service, url = world
        cid, secret = portal_key(service)
        with connect(url.replace("http://", "ws://") + "/ws/api/v2") as ws:
            params = signature_params(cid, secret)
            ws.send(
                json.dumps({"jsonrpc": "2.0", "id": 1, "method": "public/auth", "params": params})
            )
            auth = json.loads(ws.recv(timeout=10))
            assert_valid(auth, "public_auth_response")
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "private/list_api_keys"}))
            listed = json.loads(ws.recv(timeout=10))
            assert_valid(listed, "public_list_api_keys_response")

    def test_other_paths_are_refused(self, world: tuple[KeyService, str]) -> None:
        """A WebSocket to any other path is closed at once."""
        from websockets.exceptions import InvalidStatus  # noqa: PLC0415
        from websockets.sync.client import connect  # noqa: PLC0415

        _, url = world
        with pytest.raises(InvalidStatus):
            connect(url.replace("http://", "ws://") + "/ws/elsewhere").close()


TOTP = TotpVerifier()


def tfa(enrolled: SecurityKeyEnrollment) -> str:
    """The code the account's authenticator app shows now."""
    return TOTP.code_at(enrolled.secret, datetime.now(UTC))


def wrong_code(right: str) -> str:
    """A six-digit code that is not ``right``."""
    return str((int(right) + 500_000) % 1_000_000).zfill(6)


def guarded(
    url: str, method: str, params: dict[str, Any], token: str, enrolled: SecurityKeyEnrollment
) -> dict[str, Any]:
    """A guarded call in Deribit's two rounds: the challenge, then the call with a TOTP code."""
    first = call(url, method, params, token=token)
    result = first["result"]
    assert result["security_key_authorization_required"] is True
    assert result["security_keys"] == [{"type": "tfa", "name": enrolled.key.name}]
    answer = {**params, "authorization_data": tfa(enrolled), "challenge": result["challenge"]}
    return call(url, method, answer, token=token)


class TestSecurityKeys:
    def test_every_guarded_method_in_two_rounds(self, world: tuple[KeyService, str]) -> None:
        """create, edit, disable, change scope and list answer a challenge, then run with a code."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        enrolled = service.enroll_security_key("acct1", name="phone")
        made = guarded(
            url,
            "private/create_api_key",
            {"max_scope": "trade:read", "name": "tfa"},
            token,
            enrolled,
        )
        assert_valid(made, "private_api_key_response")
        key_id = made["result"]["id"]
        steps = [
            ("private/edit_api_key", {"id": key_id, "max_scope": "trade:read", "name": "tfa2"}),
            ("private/change_scope_in_api_key", {"id": key_id, "max_scope": "account:read"}),
            ("private/disable_api_key", {"id": key_id}),
            ("private/list_api_keys", {}),
        ]
        for method, params in steps:
            enrolled = service.enroll_security_key("acct1", name="phone")  # a fresh TOTP step
            answer = guarded(url, method, params, token, enrolled)
            name = (
                "public_list_api_keys_response"
                if method.endswith("list_api_keys")
                else "private_api_key_response"
            )
            assert_valid(answer, name)
        stored = service.get(key_id, owner="acct1")
        assert (stored.name, str(stored.max_scope), stored.enabled) == (
            "tfa2",
            "account:read",
            False,
        )

    def test_unguarded_methods_need_no_code(self, world: tuple[KeyService, str]) -> None:
        """enable, reset, rename, access log and remove run at once, as on Deribit."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        other = key_in_state(
            service, State.DISABLED, owner="acct1", name="other", max_scope="trade:read"
        ).key.id
        service.enroll_security_key("acct1")
        assert_valid(
            call(url, "private/enable_api_key", {"id": other}, token=token),
            "private_api_key_response",
        )
        assert_valid(
            call(url, "private/change_api_key_name", {"id": other, "name": "n2"}, token=token),
            "private_api_key_response",
        )
        assert_valid(
            call(url, "private/reset_api_key", {"id": other}, token=token),
            "private_api_key_response",
        )
        assert_valid(
            call(url, "private/get_access_log", {}, token=token), "private_get_access_log_response"
        )
        assert call(url, "private/remove_api_key", {"id": other}, token=token)["result"] == "ok"

    def test_refusals_use_deribit_reasons(self, world: tuple[KeyService, str]) -> None:
        """Wrong, reused, missing and misplaced codes get 13668 with Deribit's reasons."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        enrolled = service.enroll_security_key("acct1")
        method = "private/list_api_keys"

        def challenge(for_method: str = method, params: dict[str, Any] | None = None) -> str:
            found: str = call(url, for_method, params or {}, token=token)["result"]["challenge"]
            return found

        def reason(answer: dict[str, Any]) -> str:
            assert answer["error"]["code"] == 13668, answer
            assert answer["error"]["message"] == "security_key_authorization_error"
            found: str = answer["error"]["data"]["reason"]
            return found

        right = tfa(enrolled)
        wrong = wrong_code(right)
        spent = challenge()
        params = {"authorization_data": wrong, "challenge": spent}
        assert reason(call(url, method, params, token=token)) == "tfa_code_not_matched"
        params = {"authorization_data": right, "challenge": spent}
        assert reason(call(url, method, params, token=token)) == "used_tfa_code"
        params = {"challenge": challenge()}
        assert reason(call(url, method, params, token=token)) == "tfa_code_is_required"
        create = {"max_scope": "trade:read"}
        params = {
            "authorization_data": right,
            "challenge": challenge("private/create_api_key", create),
        }
        assert reason(call(url, method, params, token=token)) == "tfa_code_not_matched"
        params = {"authorization_data": right, "challenge": challenge()}
        assert "result" in call(url, method, params, token=token)
        params = {"authorization_data": right, "challenge": challenge()}
        assert reason(call(url, method, params, token=token)) == "used_tfa_code"
        assert len(service.list_keys(owner="acct1")) == 1

    def test_malformed_answers_are_argument_errors(self, world: tuple[KeyService, str]) -> None:
        """A malformed code or challenge is 11029/-32602, spends nothing, and changes no key."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        enrolled = service.enroll_security_key("acct1")
        method = "private/create_api_key"
        params = {"max_scope": "trade:read", "name": "made"}
        challenge = call(url, method, params, token=token)["result"]["challenge"]
        for bad, code in (
            ({"authorization_data": "12ab56", "challenge": challenge}, 11029),
            ({"authorization_data": ["1"], "challenge": challenge}, -32602),
            ({"authorization_data": "123456", "challenge": 5}, -32602),
            ({"authorization_data": "123456", "challenge": "c" * 300}, 11029),
            ({"name": "bad name!", "authorization_data": "123456", "challenge": challenge}, 11029),
        ):
            answer = call(url, method, {**params, **bad}, token=token)
            assert answer["error"]["code"] == code, (bad, answer)
        assert len(service.list_keys(owner="acct1")) == 1
        good = {**params, "authorization_data": tfa(enrolled), "challenge": challenge}
        assert_valid(call(url, method, good, token=token), "private_api_key_response")

    def test_a_get_query_carries_the_code(self, world: tuple[KeyService, str]) -> None:
        """Over GET the code and challenge travel in the query string, like every parameter."""
        service, url = world
        cid, secret = portal_key(service)
        token = login(url, cid, secret)
        enrolled = service.enroll_security_key("acct1")
        headers = {"Authorization": f"Bearer {token}"}
        endpoint = f"{url}/api/v2/private/list_api_keys"
        first = httpx.get(endpoint, headers=headers).json()
        query = {"authorization_data": tfa(enrolled), "challenge": first["result"]["challenge"]}
        answer = httpx.get(endpoint, params=query, headers=headers).json()
        assert_valid(answer, "public_list_api_keys_response")

    def test_wrong_codes_in_a_row_are_over_limit(self, tmp_path: Path) -> None:
        """After the policy's run of wrong codes the account gets 12998 until enrolled again."""
        policy = attrs.evolve(wiring.API_POLICY, max_consecutive_failures=2)
        with serving(tmp_path, policy) as (service, url):
            cid, secret = portal_key(service)
            token = login(url, cid, secret)
            enrolled = service.enroll_security_key("acct1")
            wrong = wrong_code(tfa(enrolled))
            method = "private/list_api_keys"
            for _ in range(2):
                challenge = call(url, method, token=token)["result"]["challenge"]
                params = {"authorization_data": wrong, "challenge": challenge}
                assert call(url, method, params, token=token)["error"]["code"] == 13668
            over = call(url, method, token=token)["error"]
            assert over == {"code": 12998, "message": "security_key_authorization_over_limit"}
            assert_valid(
                guarded(url, method, {}, token, service.enroll_security_key("acct1")),
                "public_list_api_keys_response",
            )

    def test_a_late_answer_is_challenge_timeout(self, tmp_path: Path) -> None:
        """An answer after the challenge's lifetime gets 13668 challenge_timeout."""
        policy = attrs.evolve(wiring.API_POLICY, security_challenge_ttl=timedelta(milliseconds=300))
        with serving(tmp_path, policy) as (service, url):
            cid, secret = portal_key(service)
            token = login(url, cid, secret)
            enrolled = service.enroll_security_key("acct1")
            method = "private/list_api_keys"
            challenge = call(url, method, token=token)["result"]["challenge"]
            time.sleep(0.4)
            params = {"authorization_data": tfa(enrolled), "challenge": challenge}
            answer = call(url, method, params, token=token)
            assert answer["error"]["data"] == {"reason": "challenge_timeout"}

    def test_over_the_socket(self, world: tuple[KeyService, str]) -> None:
        """The two rounds work over a WebSocket connection too."""
        from websockets.sync.client import connect  # noqa: PLC0415

        service, url = world
        cid, secret = portal_key(service)
        enrolled = service.enroll_security_key("acct1")
        with connect(url.replace("http://", "ws://") + "/ws/api/v2") as ws:
            ask = functools.partial(ws_ask, ws)

            auth = {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}
            assert_valid(ask("public/auth", auth, 1), "public_auth_response")
            first = ask("private/list_api_keys", {}, 2)
            assert first["result"]["security_key_authorization_required"] is True
            params = {
                "authorization_data": tfa(enrolled),
                "challenge": first["result"]["challenge"],
            }
            listed = ask("private/list_api_keys", params, 3)
            assert_valid(listed, "public_list_api_keys_response")
            assert listed["id"] == 3
