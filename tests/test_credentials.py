"""Every credential obeys the lifecycle, tried over real HTTP and WebSocket against a served API.

The matrix: each kind of credential a client can hold (an access token, a refresh token, a
WebSocket session, Basic, the ``deri-hmac-sha256`` header, the ``client_signature`` grant, and
Ed25519 and RSA signatures) is obtained while its key is active; then another worker (the
portal's sync service on the same database, or the API itself) changes the key; then the
credential is tried again on the very next request. What was issued before a new secret, a
disable, a removal, or a narrower scope or whitelist is refused; credentials computed afresh
from a secret or a private key still work wherever the key is active with that secret; a rename
or a wider scope ends nothing.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import socket
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import pytest
from websockets.sync.client import connect

from apitools import MASTER, call, serving, ws_ask
from keyturn import Policy, State, wiring
from keyturn.adapters.memory import InMemoryKeyStore
from keyturn.core.errors import ActionNotAllowed
from keyturn.testing import ManualClock, RecordingNotifier, key_in_state
from keyturn.testing.signing import (
    ed25519_key,
    public_pem,
    rsa_key,
    signature_header,
    signature_params,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from websockets.sync.client import ClientConnection

    from keyturn import KeyService
    from keyturn.testing.signing import PrivateKey

SCOPE = "account:read_write trade:read"
LIST = "/api/v2/private/list_api_keys"


@attrs.define
class Held:
    """A credential a client holds, and what it needs to try it again."""

    owner: str
    key_id: int
    client_id: str
    secret: str | None = None
    private: PrivateKey | None = None
    access: str = ""
    refresh: str = ""
    ws: ClientConnection | None = None
    closing: contextlib.ExitStack = attrs.field(factory=contextlib.ExitStack)


def _ok(answer: dict[str, Any]) -> bool:
    return "result" in answer and "error" not in answer


def _auth(url: str, params: dict[str, Any]) -> dict[str, Any]:
    return call(url, "public/auth", params)


def _token_login(url: str, held: Held) -> Held:
    answer = _auth(
        url,
        {
            "grant_type": "client_credentials",
            "client_id": held.client_id,
            "client_secret": held.secret,
        },
    )
    assert _ok(answer), answer
    return attrs.evolve(
        held, access=answer["result"]["access_token"], refresh=answer["result"]["refresh_token"]
    )


def _bearer_works(url: str, held: Held) -> bool:
    return _ok(call(url, "private/list_api_keys", token=held.access))


def _refresh_works(url: str, held: Held) -> bool:
    answer = _auth(url, {"grant_type": "refresh_token", "refresh_token": held.refresh})
    if _ok(answer):
        held.refresh = answer["result"]["refresh_token"]  # a used refresh token is dead
    return _ok(answer)


def _ws_login(url: str, held: Held) -> Held:
    ws = held.closing.enter_context(connect(url.replace("http://", "ws://") + "/ws/api/v2"))
    answer = ws_ask(
        ws,
        "public/auth",
        {
            "grant_type": "client_credentials",
            "client_id": held.client_id,
            "client_secret": held.secret,
        },
        1,
    )
    assert _ok(answer), answer
    return attrs.evolve(held, ws=ws)


def _ws_works(_: str, held: Held) -> bool:
    assert held.ws is not None
    answer = ws_ask(held.ws, "private/list_api_keys", {}, 2)
    again = ws_ask(held.ws, "public/auth", {"grant_type": "nonsense"}, 3)
    assert "error" in again  # the connection is still open and answering, whatever happened
    return _ok(answer)


def _basic_works(url: str, held: Held) -> bool:
    basic = base64.b64encode(f"{held.client_id}:{held.secret}".encode()).decode()
    answer = httpx.get(url + LIST, headers={"Authorization": f"Basic {basic}"}).json()
    return _ok(answer)


def _header_works(url: str, held: Held) -> bool:
    credential = held.secret if held.private is None else held.private
    assert credential is not None
    header = signature_header(held.client_id, credential, method="GET", uri=LIST)
    return _ok(httpx.get(url + LIST, headers={"Authorization": header}).json())


def _grant_works(url: str, held: Held) -> bool:
    credential = held.secret if held.private is None else held.private
    assert credential is not None
    return _ok(_auth(url, signature_params(held.client_id, credential)))


@attrs.frozen
class Kind:
    """One kind of credential: how a client obtains it and how it tries it."""

    name: str
    key: str  # "secret", "ed25519" or "rsa"
    obtain: Callable[[str, Held], Held]
    works: Callable[[str, Held], bool]
    issued: bool  # issued by the server (dies with the session) vs computed from a secret/key


KINDS = (
    Kind("bearer", "secret", _token_login, _bearer_works, issued=True),
    Kind("refresh", "secret", _token_login, _refresh_works, issued=True),
    Kind("websocket", "secret", _ws_login, _ws_works, issued=True),
    Kind("basic", "secret", lambda _, h: h, _basic_works, issued=False),
    Kind("hmac_header", "secret", lambda _, h: h, _header_works, issued=False),
    Kind("client_signature", "secret", lambda _, h: h, _grant_works, issued=False),
    Kind("ed25519_header", "ed25519", lambda _, h: h, _header_works, issued=False),
    Kind("rsa_grant", "rsa", lambda _, h: h, _grant_works, issued=False),
)


def _reset(service: KeyService, held: Held) -> None:
    service.reset_secret(held.key_id, owner=held.owner)


def _disable(service: KeyService, held: Held) -> None:
    service.disable(held.key_id, owner=held.owner)


def _disable_enable(service: KeyService, held: Held) -> None:
    service.disable(held.key_id, owner=held.owner)
    service.enable(held.key_id, owner=held.owner)


def _remove(service: KeyService, held: Held) -> None:
    service.remove(held.key_id, owner=held.owner)


def _narrow_scope(service: KeyService, held: Held) -> None:
    service.edit(held.key_id, owner=held.owner, max_scope="account:read_write")


def _narrow_whitelist(service: KeyService, held: Held) -> None:
    service.edit(held.key_id, owner=held.owner, ip_whitelist=["127.0.0.0/8"])


def _rename(service: KeyService, held: Held) -> None:
    service.edit(held.key_id, owner=held.owner, name="renamed")


def _widen_scope(service: KeyService, held: Held) -> None:
    service.edit(held.key_id, owner=held.owner, max_scope=SCOPE + " wallet:read")


#: Each action, and whether a credential still works after it: (issued, computed afresh).
ACTIONS: dict[str, tuple[Callable[[KeyService, Held], None], bool, bool]] = {
    "reset_secret": (_reset, False, False),
    "disable": (_disable, False, False),
    "disable_then_enable": (_disable_enable, False, True),
    "remove": (_remove, False, False),
    "narrow_scope": (_narrow_scope, False, True),
    "narrow_whitelist": (_narrow_whitelist, False, True),
    "rename": (_rename, True, True),
    "widen_scope": (_widen_scope, True, True),
}


@pytest.fixture(name="world", scope="module")
def _world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KeyService, str]]:
    """One API served for the whole matrix; each case makes its own key."""
    with serving(tmp_path_factory.mktemp("api")) as world:
        yield world


_ACCOUNTS = itertools.count(1)


def _new_key(service: KeyService, kind: str, owner: str | None = None) -> Held:
    """An active key of a new account (or ``owner``'s): with a secret, or a public key."""
    owner = owner or f"acct{next(_ACCOUNTS)}"
    if kind == "secret":
        issued = key_in_state(service, State.ACTIVE, owner=owner, name="k", max_scope=SCOPE)
        return Held(owner, issued.key.id, issued.key.client_id, secret=issued.client_secret)
    private = ed25519_key() if kind == "ed25519" else rsa_key()
    key = service.create(
        owner=owner, name="pk", max_scope=SCOPE, public_key=public_pem(private), enable=True
    ).key
    return Held(owner, key.id, key.client_id, private=private)


#: Every kind against every action, but a new secret for a key that has none (it is refused).
MATRIX = [
    pytest.param(kind, action, id=f"{kind.name}-{action}")
    for kind in KINDS
    for action in ACTIONS
    if not (action == "reset_secret" and kind.key != "secret")
]


@pytest.mark.parametrize(("kind", "action"), MATRIX)
def test_credential_obeys_the_lifecycle(
    world: tuple[KeyService, str], kind: Kind, action: str
) -> None:
    """A credential works while its key is active; after the action it works only if the lifecycle allows."""
    service, url = world
    change, issued_survives, fresh_survives = ACTIONS[action]
    held = kind.obtain(url, _new_key(service, kind.key))
    try:
        assert kind.works(url, held), "the credential must work before the action"
        change(service, held)
        expected = issued_survives if kind.issued else fresh_survives
        assert kind.works(url, held) is expected
    finally:
        held.closing.close()


class TestRefreshTokens:
    def test_a_used_refresh_token_is_dead_and_its_reuse_ends_the_session(
        self, world: tuple[KeyService, str]
    ) -> None:
        """Refreshing rotates the refresh token; presenting the old one again ends the whole session, newest tokens included."""
        service, url = world
        held = _token_login(url, _new_key(service, "secret"))
        first = held.refresh
        answer = _auth(url, {"grant_type": "refresh_token", "refresh_token": first})
        assert _ok(answer)
        newest_access = answer["result"]["access_token"]
        newest_refresh = answer["result"]["refresh_token"]
        assert _ok(call(url, "private/list_api_keys", token=newest_access))
        replay = _auth(url, {"grant_type": "refresh_token", "refresh_token": first})
        assert replay["error"]["code"] == 13004
        assert call(url, "private/list_api_keys", token=newest_access)["error"]["code"] == 13009
        assert call(url, "private/list_api_keys", token=held.access)["error"]["code"] == 13009
        again = _auth(url, {"grant_type": "refresh_token", "refresh_token": newest_refresh})
        assert again["error"]["code"] == 13004

    def test_other_sessions_of_the_key_survive_a_reuse(self, world: tuple[KeyService, str]) -> None:
        """Reuse detection ends the session the token belongs to, not the key's other logins."""
        service, url = world
        key = _new_key(service, "secret")
        one, two = _token_login(url, key), _token_login(url, key)
        _auth(url, {"grant_type": "refresh_token", "refresh_token": one.refresh})
        _auth(url, {"grant_type": "refresh_token", "refresh_token": one.refresh})
        assert not _bearer_works(url, one)
        assert _bearer_works(url, two)

    def test_a_session_has_an_absolute_lifetime(self, tmp_path: Path) -> None:
        """However often it is refreshed, a session ends 30 days after login; each refresh token lives at most 7 days."""
        clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
        with serving(tmp_path, clock=clock) as (service, url):
            held = _token_login(url, _new_key(service, "secret"))
            for _ in range(4):  # 4 x 7 days = 28 days: each refresh is within its 7 days
                clock.advance(timedelta(days=7) - timedelta(seconds=1))
                assert _refresh_works(url, held)
            clock.advance(timedelta(days=2, seconds=5))  # 30 days and a second after login
            assert not _refresh_works(url, held)

    def test_an_idle_refresh_token_expires_after_seven_days(self, tmp_path: Path) -> None:
        """A refresh token not used for 7 days is refused."""
        clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
        with serving(tmp_path, clock=clock) as (service, url):
            held = _token_login(url, _new_key(service, "secret"))
            clock.advance(timedelta(days=7))
            assert not _refresh_works(url, held)


class TestWhitelistOnEveryRequest:
    def test_tokens_are_refused_from_an_address_the_whitelist_excludes(
        self, world: tuple[KeyService, str]
    ) -> None:
        """A token issued to a whitelisted address is refused from another one, Bearer and refresh alike."""
        service, url = world
        held = _new_key(service, "secret")
        service.edit(held.key_id, owner=held.owner, ip_whitelist=["127.0.0.1/32"])
        held = _token_login(url, held)
        elsewhere = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        with elsewhere:
            headers = {"Authorization": f"Bearer {held.access}"}
            answer = elsewhere.get(url + LIST, headers=headers).json()
            assert answer["error"]["code"] == 13009
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "public/auth",
                "params": {"grant_type": "refresh_token", "refresh_token": held.refresh},
            }
            assert elsewhere.post(url + "/api/v2", json=body).json()["error"]["code"] == 13004
        assert _bearer_works(url, held)

    def test_a_websocket_session_is_refused_from_an_address_the_whitelist_excludes(
        self, world: tuple[KeyService, str]
    ) -> None:
        """A token carried over to a WebSocket from an excluded address does not authenticate it."""
        service, url = world
        held = _new_key(service, "secret")
        service.edit(held.key_id, owner=held.owner, ip_whitelist=["127.0.0.1/32"])
        held = _token_login(url, held)
        port = int(url.rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
        with connect(f"ws://127.0.0.1:{port}/ws/api/v2", sock=sock) as ws:
            answer = ws_ask(ws, "public/auth", _secret_params(held), 1)
            assert answer["error"]["code"] == 13004
            refresh = {"grant_type": "refresh_token", "refresh_token": held.refresh}
            assert ws_ask(ws, "public/auth", refresh, 2)["error"]["code"] == 13004

    def test_forwarded_headers_are_not_believed_by_default(self, tmp_path: Path) -> None:
        """X-Forwarded-For from a client cannot claim a whitelisted address unless the proxy is trusted."""
        for trusted, works in ((None, False), ("127.0.0.1", True)):
            (where := tmp_path / str(works)).mkdir()
            with serving(where, forwarded_allow_ips=trusted) as (service, url):
                held = _new_key(service, "secret")
                service.edit(held.key_id, owner=held.owner, ip_whitelist=["198.51.100.7/32"])
                headers = {"X-Forwarded-For": "198.51.100.7"}
                body = {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "public/auth",
                    "params": _secret_params(held),
                }
                answer = httpx.post(url + "/api/v2", json=body, headers=headers).json()
                assert _ok(answer) is works


def _secret_params(held: Held) -> dict[str, Any]:
    return {
        "grant_type": "client_credentials",
        "client_id": held.client_id,
        "client_secret": held.secret,
    }


class TestSignaturesAreSingleUse:
    @pytest.mark.parametrize(
        "respell",
        [
            str.upper,
            lambda s: f" {s} ",
            lambda s: s[:-1] + s[-1].upper(),
        ],
        ids=["upper", "spaces", "last-upper"],
    )
    def test_an_hmac_grant_with_an_empty_nonce_cannot_be_replayed_respelled(
        self, world: tuple[KeyService, str], respell: Callable[[str], str]
    ) -> None:
        """With an empty nonce the signature is the single-use value; another spelling of it is refused, not a new use."""
        service, url = world
        held = _new_key(service, "secret")
        assert held.secret is not None
        params = signature_params(held.client_id, held.secret, nonce="")
        assert _ok(_auth(url, params))
        assert "error" in _auth(url, params)
        assert "error" in _auth(url, {**params, "signature": respell(params["signature"])})

    @pytest.mark.parametrize(
        "respell",
        [
            lambda s: s + "=" * (-len(s) % 4),
            lambda s: s.replace("-", "+").replace("_", "/") + "=" * (-len(s) % 4),
            lambda s: f" {s}",
        ],
        ids=["padded", "standard-alphabet", "space"],
    )
    def test_an_ed25519_grant_cannot_be_replayed_respelled(
        self, world: tuple[KeyService, str], respell: Callable[[str], str]
    ) -> None:
        """An Ed25519 signature is accepted only as unpadded base64url, so a re-spelled replay is refused."""
        service, url = world
        held = _new_key(service, "ed25519")
        assert held.private is not None
        params = signature_params(held.client_id, held.private, nonce="")
        while "-" not in params["signature"] and "_" not in params["signature"]:
            params = signature_params(held.client_id, held.private, nonce="")
        assert _ok(_auth(url, params))
        assert "error" in _auth(url, {**params, "signature": respell(params["signature"])})


class TestOneCallOneWrite:
    def test_edit_with_enabled_on_a_key_that_cannot_be_enabled_writes_nothing(
        self, world: tuple[KeyService, str]
    ) -> None:
        """edit_api_key with enabled=true on a key the lifecycle cannot enable answers an error and leaves name and scope as they were."""
        service, url = world
        admin = _token_login(url, _new_key(service, "secret"))
        created = service.create(owner=admin.owner, name="fresh", max_scope="account:read").key
        answer = call(
            url,
            "private/edit_api_key",
            {
                "id": created.id,
                "max_scope": "account:read_write",
                "name": "wider",
                "enabled": True,
            },
            token=admin.access,
        )
        assert answer["error"]["code"] == 11050
        after = service.get(created.id, owner=admin.owner)
        assert (after.name, str(after.max_scope), after.version) == ("fresh", "account:read", 1)
        assert [h.event for h in service.history(created.id, owner=admin.owner)] == ["new_api_key"]

    def test_create_api_key_writes_once(self, world: tuple[KeyService, str]) -> None:
        """create_api_key creates, acknowledges and enables in one write: three history entries, one version step each, one timestamp."""
        service, url = world
        admin = _token_login(url, _new_key(service, "secret"))
        answer = call(
            url, "private/create_api_key", {"max_scope": "account:read"}, token=admin.access
        )
        assert _ok(answer), answer
        history = service.history(answer["result"]["id"], owner=admin.owner)
        assert [h.event for h in history] == [
            "new_api_key",
            "secret_acknowledged",
            "enabled_api_key",
        ]
        assert len({h.at for h in history}) == 1

    def test_the_service_writes_create_and_enable_in_one_store_call(self) -> None:
        """create(enable=True) is one insert; under a policy without direct enable it is refused and nothing is stored."""
        writes: list[str] = []

        class Counting(InMemoryKeyStore):
            def insert(self, *args: Any, **kwargs: Any) -> Any:
                writes.append("insert")
                return super().insert(*args, **kwargs)

            def apply(self, *args: Any, **kwargs: Any) -> Any:
                writes.append("apply")
                return super().apply(*args, **kwargs)

        store = Counting()
        api = wiring.build_service(
            store=store,
            notifier=RecordingNotifier(),
            master_key=MASTER,
            policy=wiring.API_POLICY,
        )
        key = api.create(owner="o", name="n", max_scope="account:read", enable=True).key
        assert key.state is State.ACTIVE
        assert writes == ["insert"]
        portal = wiring.build_service(
            store=store, notifier=RecordingNotifier(), master_key=MASTER, policy=Policy()
        )
        with pytest.raises(ActionNotAllowed):
            portal.create(owner="p", name="n", max_scope="account:read", enable=True)
        assert store.list_keys("p") == []


class TestBoundedCosts:
    def test_a_websocket_message_larger_than_an_http_body_is_refused(
        self, world: tuple[KeyService, str]
    ) -> None:
        """A WebSocket message over the 64 KiB HTTP body limit closes the connection (1009) before it is buffered."""
        _, url = world
        with connect(url.replace("http://", "ws://") + "/ws/api/v2") as ws:
            ws.send(json.dumps({"method": "public/auth", "params": {"x": "y" * 100_000}}))
            with pytest.raises(Exception) as raised:  # noqa: PT011 (the library's closed-connection error)
                ws.recv(timeout=10)
            assert "1009" in str(raised.value)

    def test_a_slow_request_body_is_answered_with_an_error(self, tmp_path: Path) -> None:
        """A client that stops sending its body gets an error answer with the envelope when the body timeout passes."""
        with serving(tmp_path, body_timeout=0.3) as (_, url):
            port = int(url.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(
                    b"POST /api/v2 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 100\r\n\r\n{"jsonrpc"'
                )
                sock.settimeout(10)
                reply = b""
                with contextlib.suppress(TimeoutError):
                    while b"body too slow" not in reply:
                        chunk = sock.recv(4096)
                        if not chunk:
                            break
                        reply += chunk
        assert reply.startswith(b"HTTP/1.1 400")
        assert b'"reason": "body too slow"' in reply

    def test_the_access_log_pages_and_keeps_removed_keys(
        self, world: tuple[KeyService, str]
    ) -> None:
        """get_access_log answers one page, newest first, with the events of removed keys too."""
        service, url = world
        admin = _token_login(url, _new_key(service, "secret"))
        gone = _new_key(service, "secret", owner=admin.owner)
        service.remove(gone.key_id, owner=admin.owner)
        page = call(url, "private/get_access_log", {"count": 3}, token=admin.access)["result"]
        assert len(page) == 3
        assert page[0]["log"] == "removed_api_key"
        assert page[0]["data"] == gone.client_id
        stamps = [e["timestamp"] for e in page]
        assert stamps == sorted(stamps, reverse=True)
        second = call(url, "private/get_access_log", {"count": 3, "offset": 3}, token=admin.access)[
            "result"
        ]
        assert {e["id"] for e in second}.isdisjoint({e["id"] for e in page})
