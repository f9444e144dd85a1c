"""The API fuzzed as an attacker would: every method's parameters, the headers, raw bodies.

Hypothesis drives a real uvicorn on loopback, over HTTP and WebSocket, on SQLite and PostgreSQL,
both unauthenticated and with a valid token (most bugs hide past authentication). Whatever it
sends, the server answers without a 5xx and without ``-32603`` (an internal error is a bug the
fuzzer found), keeps the WebSocket open (a later request on the same socket still answers),
wraps every answer in Deribit's envelope, and leaves every table exactly as it was whenever the
answer is an error. ``KEYTURN_FUZZ_EXAMPLES`` sets the examples per target (default 200; raise it
for a deeper run). Each crash the fuzzer found has a named regression test in ``TestFound``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote_from_bytes

import attrs
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State as WsState
from websockets.sync.client import connect

from keyturn import State, wiring
from keyturn.adapters.postgres import PostgresKeyStore
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.adapters.to_async import AsyncNotifierAdapter, AsyncStore
from keyturn.api import server as api_server
from keyturn.api.asgi import MAX_BODY
from keyturn.crypto.sealing import SecretBox
from keyturn.crypto.signatures import HEADER_SCHEME, hmac_signature, request_data, string_to_sign
from keyturn.testing import RecordingNotifier, key_in_state
from keyturn.testing.signing import now_ms

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from pathlib import Path

    from websockets.sync.client import ClientConnection

    from keyturn import KeyService
    from keyturn.api.asgi import Api
    from keyturn.ports import AsyncKeyStore
    from keyturn.service import AsyncKeyService

POSTGRES_URL = os.environ.get("KEYTURN_TEST_POSTGRES", "")
#: Longer queries go by POST: httpx refuses URLs over 64 KiB before sending them.
MAX_URL: Final = 16 * 1024
pytestmark = [
    pytest.mark.slow,  # minutes of generated requests over real HTTP and WebSocket
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
    # The server runs in a thread beside Hypothesis, and uvicorn, websockets and psycopg_pool
    # draw from the global random module there (WebSocket masks, pool jitter) while Hypothesis
    # generates; the strategies here never use it.
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"),
]
MASTER = bytes(range(32))
EXAMPLES = int(os.environ.get("KEYTURN_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Every code an answer may carry: Deribit's and JSON-RPC's, but never -32603 (a crash caught).
KNOWN_CODES: Final = frozenset(
    {-32700, -32600, -32601, -32602, 10000, 11029, 11050, 12998, 13004, 13009, 13020, 13021}
    | {13403, 13668}
)
PRIVATE_METHODS: Final = (
    "private/create_api_key",
    "private/edit_api_key",
    "private/enable_api_key",
    "private/disable_api_key",
    "private/list_api_keys",
    "private/remove_api_key",
    "private/reset_api_key",
    "private/change_api_key_name",
    "private/change_scope_in_api_key",
    "private/get_access_log",
)
GUARDED: Final = (
    "private/create_api_key",
    "private/edit_api_key",
    "private/disable_api_key",
    "private/change_scope_in_api_key",
    "private/list_api_keys",
)
Snapshot = dict[str, list[str]]
#: Wrong codes counted on the fuzzed account before it is enrolled again (the lock is at 100).
LOCK_MARGIN: Final = 50


# --- the server ---------------------------------------------------------------------------


@contextlib.contextmanager
def uvicorn_serving(make_app: Callable[[], Awaitable[tuple[Api, AsyncKeyStore]]]) -> Iterator[str]:
    """A uvicorn on a free loopback port, in a thread with its own event loop; its base URL.

    It runs with the configuration ``keyturn serve`` uses (:func:`keyturn.api.server.config`).
    The app is built inside that loop, so an async PostgreSQL pool belongs to it.
    """
    import uvicorn  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    servers: list[uvicorn.Server] = []

    async def main() -> None:
        api, store = await make_app()
        server = uvicorn.Server(api_server.config(api, host="127.0.0.1", port=port))
        servers.append(server)
        try:
            await server.serve()
        finally:
            await store.aclose()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    for _ in range(500):
        if servers and servers[0].started:
            break
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        if servers:
            servers[0].should_exit = True
        thread.join(timeout=10)


def _sqlite_snapshot(path: Path, exits: contextlib.ExitStack) -> Callable[[], Snapshot]:
    """Every row of every table of the SQLite file, read on a connection of its own."""
    db = exits.enter_context(contextlib.closing(sqlite3.connect(path, check_same_thread=False)))
    tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'") if t]

    def snapshot() -> Snapshot:
        return {t: sorted(map(repr, db.execute(f"SELECT * FROM {t}"))) for t in tables}  # noqa: S608 (names from the schema)

    return snapshot


def _postgres_snapshot(schema: str, exits: contextlib.ExitStack) -> Callable[[], Snapshot]:
    """Every row of every table of the PostgreSQL schema, read on a connection of its own."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    db = exits.enter_context(psycopg.connect(POSTGRES_URL, autocommit=True))
    tables = [
        t
        for (t,) in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        )
    ]

    def snapshot() -> Snapshot:
        out = {}
        for t in tables:
            query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, t))
            out[t] = sorted(map(repr, db.execute(query)))
        return out

    return snapshot


@attrs.define
class Login:
    """An active key in its own account, with its secret, tokens and current version."""

    owner: str
    key_id: int
    client_id: str
    secret: str = attrs.field(repr=False)
    version: int
    access: str = attrs.field(repr=False)
    refresh: str = attrs.field(repr=False)


@attrs.define(repr=False)
class World:
    """One served API and what the fuzz targets need around it."""

    url: str
    service: KeyService
    snapshot: Callable[[], Snapshot]
    accounts: Iterator[int] = attrs.field(factory=itertools.count)
    logins: dict[str, Login] = attrs.field(factory=dict)
    sockets: dict[str, ClientConnection] = attrs.field(factory=dict)
    challenge: str = ""
    stale: set[str] = attrs.field(factory=set)
    _exits: contextlib.ExitStack = attrs.field(factory=contextlib.ExitStack)

    def __repr__(self) -> str:
        return f"World({self.url!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How Hypothesis shows the world in a failing example: by its URL only."""
        printer.text(repr(self))

    def login(self, role: str) -> Login:
        """An active key for ``role``, made again (in a new account) if a call changed it."""
        current = self.logins.get(role)
        if current is not None and role not in self.stale:
            key = self.service.store.get(current.key_id)
            if key is not None and key.enabled and key.version == current.version:
                return current
        self.stale.discard(role)
        owner = f"{role}{next(self.accounts)}"
        scope = "account:read_write trade:read"
        issued = key_in_state(self.service, State.ACTIVE, owner=owner, name="me", max_scope=scope)
        for name, state in (("other", State.ACTIVE), ("off", State.DISABLED)):
            key_in_state(self.service, state, owner=owner, name=name, max_scope="trade:read")
        assert issued.client_secret is not None
        cid = issued.key.client_id
        params = {"grant_type": "client_credentials", "client_id": cid}
        grant = post(self.url, "public/auth", {**params, "client_secret": issued.client_secret})
        key = self.service.get(issued.key.id, owner=owner)
        login = Login(
            owner,
            key.id,
            cid,
            issued.client_secret,
            key.version,
            grant[1]["result"]["access_token"],
            grant[1]["result"]["refresh_token"],
        )
        self.logins[role] = login
        if role == "tfa":
            self.service.enroll_security_key(owner, name="phone")
            self.challenge = post(self.url, "private/list_api_keys", {}, token=login.access)[1][
                "result"
            ]["challenge"]
        if role in self.sockets:
            ws_send(self.sockets[role], "public/auth", {**params, "client_secret": login.secret})
        return login

    def socket(self, role: str) -> ClientConnection:
        """The WebSocket of ``role`` (authenticated as its login unless it is ``anonymous``)."""
        ws = self.sockets.get(role)
        if ws is None or ws.protocol.state is not WsState.OPEN:  # a drop fails its own example
            ws = self._exits.enter_context(
                connect(self.url.replace("http://", "ws://") + "/ws/api/v2")
            )
            self.sockets[role] = ws
            if role != "anonymous":
                login = self.login(role)
                auth = {
                    "grant_type": "client_credentials",
                    "client_id": login.client_id,
                    "client_secret": login.secret,
                }
                assert "result" in ws_send(ws, "public/auth", auth)
        return ws

    def close(self) -> None:
        """Close the WebSockets."""
        self._exits.close()


@pytest.fixture(
    name="world",
    scope="module",
    params=[
        "sqlite",
        pytest.param(
            "postgres",
            marks=pytest.mark.skipif(
                not POSTGRES_URL,
                reason="set KEYTURN_TEST_POSTGRES to a PostgreSQL URL to run (.ci/run does)",
            ),
        ),
    ],
)
def _world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The API served over a real store (SQLite file or PostgreSQL schema), with its portal."""
    box, notifier = SecretBox.generate(), RecordingNotifier()
    exits = contextlib.ExitStack()
    store: SQLiteKeyStore | PostgresKeyStore
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fuzz") / "keys.db"
        store = SQLiteKeyStore(path, synchronous="OFF")
        snapshot = _sqlite_snapshot(path, exits)

        async def open_served() -> AsyncKeyStore:
            return AsyncStore(store)
    else:
        from keyturn.adapters.postgres import AsyncPostgresKeyStore  # noqa: PLC0415

        schema = f"kt_{uuid.uuid4().hex[:12]}"
        store = PostgresKeyStore(POSTGRES_URL, schema=schema, max_size=2)
        snapshot = _postgres_snapshot(schema, exits)

        async def open_served() -> AsyncKeyStore:
            return await AsyncPostgresKeyStore.open(POSTGRES_URL, schema=schema, max_size=4)

    service = wiring.build_service(
        store=store, notifier=notifier, master_key=MASTER, policy=wiring.API_POLICY, secret_box=box
    )

    async def make_app() -> tuple[Api, AsyncKeyStore]:
        served = await open_served()
        async_service = wiring.build_async_service(
            store=served,
            notifier=AsyncNotifierAdapter(notifier),
            master_key=MASTER,
            policy=wiring.API_POLICY,
            secret_box=box,
        )
        return wiring.build_api(async_service, MASTER), served

    with exits, uvicorn_serving(make_app) as url:
        world = World(url, service, snapshot)
        yield world
        world.close()
    if isinstance(store, PostgresKeyStore):
        store.drop_schema()
    store.close()


# --- talking to it ------------------------------------------------------------------------


def post(
    url: str, method: str, params: Any, *, token: str = "", rid: object = 1
) -> tuple[int, Any]:
    """POST one JSON-RPC request to /api/v2/<method>; the status and the decoded answer."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
    answer = httpx.post(f"{url}/api/v2/{method}", content=body, headers=headers, timeout=30)
    return answer.status_code, answer.json()


def query(params: dict[str, Any]) -> str:
    """A query string as a client writes one: strings as they are, other values as JSON."""
    parts = []
    for name, value in params.items():
        text = value if isinstance(value, str) else json.dumps(value)
        raw = [t.encode("utf-8", "surrogatepass") for t in (name, text)]
        parts.append("=".join(quote_from_bytes(r, safe="") for r in raw))
    return "&".join(parts)


def get(url: str, method: str, params: dict[str, Any], *, token: str = "") -> tuple[int, Any]:
    """GET /api/v2/<method>?<params>; the status and the decoded answer."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.get(f"{url}/api/v2/{method}?{query(params)}", headers=headers, timeout=30)
    return answer.status_code, answer.json()


def ws_send(ws: ClientConnection, method: str, params: Any, rid: object = 1) -> Any:
    """Send one JSON-RPC request on a WebSocket; the decoded answer."""
    ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
    return json.loads(ws.recv(timeout=30))


def still_open(ws: ClientConnection) -> None:
    """A well-formed request on the same socket still gets its answer."""
    answer = ws_send(ws, "public/auth", {}, rid="probe")
    assert answer["id"] == "probe"
    assert answer["error"]["code"] == -32602


def assert_envelope(answer: Any, codes: frozenset[int] = KNOWN_CODES) -> None:
    """Deribit's envelope, with a result or a well-formed error of one of ``codes``."""
    assert isinstance(answer, dict), answer
    assert answer["jsonrpc"] == "2.0"
    assert ("result" in answer) != ("error" in answer), answer
    assert isinstance(answer["testnet"], bool)
    us_in, us_out, us_diff = answer["usIn"], answer["usOut"], answer["usDiff"]
    assert all(isinstance(v, int) for v in (us_in, us_out, us_diff))
    assert us_diff == us_out - us_in >= 0
    if "error" in answer:
        error = answer["error"]
        assert error["code"] in codes, answer
        assert isinstance(error["message"], str)
        if error["code"] == 11029:
            assert isinstance(error["data"]["param"], str)
            assert isinstance(error["data"]["reason"], str)


def check(
    world: World,
    before: Snapshot,
    answer: Any,
    status: int | None = None,
    *,
    may_change: frozenset[str] = frozenset(),
) -> None:
    """No 5xx, the envelope, and every table as it was if the answer is an error.

    ``may_change`` names tables a refused request writes on purpose (a verified signature's
    nonce is spent whatever follows; a security-key answer to its own challenge is counted).
    """
    if status is not None:
        assert status < 500
        assert (status == 200) == ("result" in answer), (status, answer)
        assert status in {200, 400, 404}
    assert_envelope(answer)
    if "error" in answer:
        after = world.snapshot()
        for table in may_change:
            after.pop(table, None)
            before.pop(table, None)
        assert after == before, answer


def send(world: World, via: str, role: str, method: str, params: Any) -> tuple[int | None, Any]:
    """One request by ``via`` (post, get or ws), as ``role``'s login (or as nobody)."""
    token = "" if role == "anonymous" else world.login(role).access
    message = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    if via == "ws" and len(message) <= MAX_BODY:  # longer: closed with 1009, tested on its own
        ws = world.socket(role)
        answer = ws_send(ws, method, params)
        still_open(ws)
        return None, answer
    if via == "get" and isinstance(params, dict) and len(query(params)) <= MAX_URL:
        return get(world.url, method, params, token=token)
    return post(world.url, method, params, token=token)


# --- what the fuzzer sends ------------------------------------------------------------------

#: Pieces that broke (or could break) a store or a codec: lone surrogates, NUL and other
#: control characters, look-alike digits, separators, quotes.
PIECES: Final = (
    "\ud800",
    "\udfff",
    "\ud83d",
    "\x00",
    "\x01",
    "\x1b",
    "\x7f",
    "\x85",
    "\u2028",
    "\u202e",
    "\ufeff",
    "\uffff",
    "١٢٣٤٥٦",
    "１２３４５６",
    "é",
    "😀",
    "\t",
    "\r\n",
    " ",
    "%00",
    "\\u0000",
    "'",
    '"',
    ",",
    ".",
    ":",
    "=",
)
#: One of each kind that broke a store or a codec before, drawn more often than the rest.
WORST: Final = ("\ud800", "\x00", "\x85", "é")
ANY_CHAR = st.characters(exclude_categories=())


def choice(*options: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One of ``options``, each as likely as the others.

    ``st.one_of`` flattens nested choices into one list, so a plausible value among
    ``anything``'s many kinds would be drawn once in a dozen; this keeps the weights as written.
    """
    return st.sampled_from(options).flatmap(lambda chosen: chosen)


piece = choice(
    st.sampled_from(WORST), st.sampled_from(PIECES), st.text(ANY_CHAR, min_size=1, max_size=4)
)
long_text = st.builds(
    lambda c, n: c * n,
    st.sampled_from(["a", "\x00", "\ud800", "9", "é", "😀"]),
    st.sampled_from([65, 129, 201, 257, 1025, 2049, 16_385, 70_000]),
)
wild_text = choice(
    st.lists(piece, min_size=1, max_size=5).map("".join),
    st.text(ANY_CHAR, max_size=20),
    long_text,
)
huge = st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**100, -(10**4000), 10**4000])
scalars = choice(st.none(), st.booleans(), st.integers(), huge, st.floats())
anything = choice(
    wild_text,
    scalars,
    st.recursive(
        choice(scalars, wild_text),
        lambda inner: choice(
            st.lists(inner, max_size=3), st.dictionaries(wild_text, inner, max_size=3)
        ),
        max_leaves=6,
    ),
)
maybe_piece = choice(st.just(""), piece)


def either(*plausible: object) -> st.SearchStrategy[Any]:
    """A plausible value (to get past the first check), one poisoned with a piece, or anything."""
    options = [st.sampled_from(plausible), anything]
    strings = [p for p in plausible if isinstance(p, str)]
    if strings:
        poisoned = st.builds(
            lambda a, v, b: a + v + b, maybe_piece, st.sampled_from(strings), maybe_piece
        )
        options.append(poisoned)
    return choice(*options)


@attrs.frozen
class Real:
    """A credential of the world's login (``what``), filled in when the request is sent."""

    what: str
    before: str = ""
    after: str = ""

    def resolve(self, login: Login, world: World) -> str:
        """The real value, with what the fuzzer put around it."""
        value = {
            "client_id": login.client_id,
            "secret": login.secret,
            "access": login.access,
            "refresh": login.refresh,
            "challenge": world.challenge,
        }[self.what]
        return self.before + value + self.after


def real(what: str) -> st.SearchStrategy[Real]:
    """The real value of ``what``: with one of the worst after it, with pieces around it, or exact.

    Hypothesis leans towards the first of a choice; the worst first finds the most.
    """
    return choice(
        st.builds(Real, st.just(what), st.just(""), st.sampled_from(WORST)),
        st.builds(Real, st.just(what), maybe_piece, maybe_piece),
        st.just(Real(what)),
    )


def fill(value: object, login: Login, world: World) -> Any:
    """``value`` with each :class:`Real` replaced by what it stands for."""
    if isinstance(value, Real):
        return value.resolve(login, world)
    if isinstance(value, dict):
        return {k: fill(v, login, world) for k, v in value.items()}
    return value


ID = choice(st.integers(1, 40), anything)
SCOPE = either("account:read", "trade:read", "account:read_write trade:read", "wallet:read_write")
NAME = either("fuzzed", "k_2", "x" * 16)
WHITELIST = either([], ["10.0.0.0/8"], ["127.0.0.1"], "10.0.0.1, ::1")
FEATURES = either([], ["block_trade_approval"])
PUBLIC_KEY = either(
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n"
    "-----END PUBLIC KEY-----\n"
)
PARAMS: Final[dict[str, dict[str, st.SearchStrategy[Any]]]] = {
    "private/create_api_key": {
        "max_scope": SCOPE,
        "name": NAME,
        "public_key": PUBLIC_KEY,
        "enabled_features": FEATURES,
    },
    "private/edit_api_key": {
        "id": ID,
        "max_scope": SCOPE,
        "name": NAME,
        "enabled_features": FEATURES,
        "ip_whitelist": WHITELIST,
        "enabled": choice(st.booleans(), anything),
    },
    "private/enable_api_key": {"id": ID},
    "private/disable_api_key": {"id": ID},
    "private/list_api_keys": {},
    "private/remove_api_key": {"id": ID},
    "private/reset_api_key": {"id": ID},
    "private/change_api_key_name": {"id": ID, "name": NAME},
    "private/change_scope_in_api_key": {"id": ID, "max_scope": SCOPE},
    "private/get_access_log": {"offset": either(0, 3), "count": either(1, 10, 10_000)},
}
extra_params = st.dictionaries(wild_text, anything, max_size=2)


ANSWER: Final = {
    "authorization_data": either("123456", 123456, "12345", "١٢٣٤٥٦", "12345\x00"),
    "challenge": either("a.1.b", "é.1.x", "x.1.é"),
}


def params_for(method: str) -> st.SearchStrategy[Any]:
    """Parameters for ``method``: each known one or not, fuzzed, plus unknown ones; or no dict."""
    answer = ANSWER if method in GUARDED else {}
    known = st.fixed_dictionaries({}, optional={**PARAMS[method], **answer})
    mixed = st.builds(lambda k, x: {**x, **k}, known, extra_params)
    return choice(known, mixed, anything)


private_calls = st.sampled_from(PRIVATE_METHODS).flatmap(
    lambda m: st.tuples(st.just(m), params_for(m))
)
#: Guarded calls whose own parameters pass, so that the security-key answer is what gets checked.
VALID_GUARDED: Final[tuple[tuple[str, dict[str, Any]], ...]] = (
    ("private/list_api_keys", {}),
    ("private/create_api_key", {"max_scope": "trade:read", "name": "tfa"}),
)
guarded_calls = choice(
    st.sampled_from(VALID_GUARDED),
    st.sampled_from(GUARDED).flatmap(lambda m: st.tuples(st.just(m), params_for(m))),
)
codes = choice(st.text("0123456789", min_size=6, max_size=6), ANSWER["authorization_data"])
AUTH_FIELDS: Final = {
    "client_id": choice(real("client_id"), wild_text, anything),
    "client_secret": choice(real("secret"), wild_text, anything),
    "timestamp": choice(st.builds(now_ms), st.builds(lambda: str(now_ms())), anything),
    "nonce": choice(st.just(""), st.just("n1"), wild_text, anything),
    "data": choice(st.just(""), wild_text, anything),
    "signature": choice(st.just("sign"), wild_text, anything),
    "refresh_token": choice(real("refresh"), real("access"), wild_text, anything),
}
AUTH_SCOPE: Final = {"scope": either("account:read", "trade:read wallet:none")}


def grant(kind: str, *fields: str) -> st.SearchStrategy[dict[str, Any]]:
    """``public/auth`` with grant ``kind`` and all its ``fields``, each fuzzed, maybe a scope."""
    required = {"grant_type": st.just(kind), **{f: AUTH_FIELDS[f] for f in fields}}
    return st.fixed_dictionaries(required, optional=AUTH_SCOPE)


auth_params = choice(
    grant("client_credentials", "client_id", "client_secret"),
    grant("client_signature", "client_id", "timestamp", "nonce", "data", "signature"),
    grant("refresh_token", "refresh_token"),
    st.fixed_dictionaries(
        {"grant_type": either("client_credentials", "client_signature", "refresh_token")},
        optional={**AUTH_FIELDS, **AUTH_SCOPE},
    ),
)
TRANSPORTS = st.sampled_from(["post", "get", "ws"])


def sign_grant(params: dict[str, Any], login: Login) -> bool:
    """Replace a ``signature`` of ``"sign"`` by the right one where the fields allow; whether."""
    fields = (params.get("timestamp"), params.get("nonce", ""), params.get("data", ""))
    if params.get("signature") != "sign" or not isinstance(fields[0], int):
        return False
    if not all(isinstance(f, str) for f in fields[1:]):
        return False
    try:
        message = string_to_sign(fields[0], fields[1], fields[2])
    except (UnicodeEncodeError, ValueError):
        return False
    params["signature"] = hmac_signature(login.secret, message)
    return True


def header_bytes(text: str) -> bytes:
    """``text`` as an HTTP header value can carry it (h11 refuses control bytes)."""
    raw = text.encode("utf-8", "surrogatepass")[:MAX_URL]
    return bytes(b for b in raw if b == 9 or 32 <= b != 127).strip(b" \t") or b"x"


basic_pair = st.tuples(choice(real("client_id"), wild_text), choice(real("secret"), wild_text))
hmac_fields = st.fixed_dictionaries(
    {},
    optional={
        "id": choice(real("client_id"), wild_text),
        "ts": choice(
            st.builds(lambda: str(now_ms())),
            st.sampled_from(["9" * 19, "9" * 20, "1" * 4301, "-1", "1e3"]),
            wild_text,
        ),
        "sig": wild_text,
        "nonce": wild_text,
        "extra": wild_text,
    },
)
#: Authorization values by scheme: the rest of the header, fuzzed.
AUTHORIZATIONS: Final = {
    "Bearer": choice(real("access"), real("refresh"), wild_text),
    "Basic": choice(basic_pair, wild_text),
    HEADER_SCHEME: choice(hmac_fields, st.just("sign")),
    "garbage": st.tuples(wild_text, wild_text),
}
header_calls = st.tuples(
    st.sampled_from(PRIVATE_METHODS),
    choice(st.just({}), st.builds(lambda i: {"id": i}, st.integers(1, 40))),
    st.sampled_from(["GET", "POST"]),
)


def authorization(
    spec: tuple[str, Any], login: Login, world: World, verb: str, uri: str, body: str
) -> tuple[bytes, bool]:
    """The ``Authorization`` value ``spec`` describes, and whether its signature is right."""
    scheme, value = spec
    if scheme == "Basic" and isinstance(value, tuple):
        pair = ":".join(fill(v, login, world) for v in value)
        value = base64.b64encode(pair.encode("utf-8", "surrogatepass")).decode()
    elif scheme == HEADER_SCHEME and value == "sign":
        ts, nonce = now_ms(), uuid.uuid4().hex
        message = string_to_sign(ts, nonce, request_data(verb, uri, body))
        sig = hmac_signature(login.secret, message)
        return (
            f"{HEADER_SCHEME} id={login.client_id},ts={ts},sig={sig},nonce={nonce}".encode(),
            True,
        )
    elif scheme == HEADER_SCHEME:
        value = ",".join(f"{k}={fill(v, login, world)}" for k, v in value.items())
    else:
        value = fill(value, login, world)
    return header_bytes(scheme) + b" " + header_bytes(value), False


def nested(opening: bytes, closing: bytes) -> st.SearchStrategy[bytes]:
    """JSON nested ``n`` deep, from shallow to far past any recursion limit."""
    return st.sampled_from([10, 500, 990, 1_100, 30_000]).map(
        lambda n: opening * n + b"1" + closing * n
    )


envelopes = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": either("2.0", "1.0"),
        "id": anything,
        "method": either("public/auth", *PRIVATE_METHODS),
        "params": anything,
    },
).map(lambda e: json.dumps(e).encode())
raw_bodies = choice(
    st.binary(max_size=64),
    st.binary(max_size=32).map(
        lambda b: b'{"jsonrpc":"2.0","method":"' + b + b"\xff\xc0\x80" + b'"}'
    ),
    nested(b"[", b"]"),
    nested(b'{"a":', b"}"),
    st.sampled_from([b"1" * 4301, b"1e999", b"-1e-999", b"NaN", b"-Infinity", b"-0", b"null"]),
    st.sampled_from([b" " * 70_000 + b"{}", b'{"x": "' + b"a" * 70_000 + b'"}']),
    st.sampled_from([b'"\\ud800"', b'{"id": "\\udfff", "method": "\\u0000"}', b"\xef\xbb\xbf{}"]),
    envelopes,
)
paths = choice(
    st.sampled_from(
        [
            "/api/v2",
            "/api/v2/",
            "/api/v2/public/auth",
            "/api/v2/private/list_api_keys",
            "/api/v2/private/nope",
            "/api/v2/private/LIST",
            "/api/v3",
            "/",
            "/ws/api/v2",
        ]
    ),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789/_-.~%", max_size=30).map(lambda p: "/" + p),
)


# --- the fuzz targets -----------------------------------------------------------------------


class TestFuzz:
    @FUZZ
    @given(params=auth_params, via=TRANSPORTS)
    def test_public_auth(self, world: World, params: dict[str, Any], via: str) -> None:
        """public/auth with every grant type and fuzzed fields never crashes or writes on an error."""
        login = world.login("login")
        params = fill(params, login, world)
        signed = sign_grant(params, login)
        if via == "ws":
            world.socket("anonymous")
        refresh = params.get("grant_type") == "refresh_token"
        # A refresh rotates its session's refresh token; a used one ends the session on purpose,
        # the refusal included (OAuth 2.1's reuse detection): the login must start over after it.
        may_change = _nonces(signed) | ({"keyturn_sessions"} if refresh else set())
        before = world.snapshot()
        status, answer = send(world, via, "anonymous", "public/auth", params)
        check(world, before, answer, status, may_change=frozenset(may_change))
        if refresh:
            world.stale.add("login")

    @FUZZ
    @given(call=private_calls, via=TRANSPORTS)
    def test_private_methods_authenticated(
        self, world: World, call: tuple[str, Any], via: str
    ) -> None:
        """Every private method with fuzzed parameters and a valid token: no crash, nothing written on an error."""
        method, params = call
        world.login("caller")
        if via == "ws":
            world.socket("caller")
        before = world.snapshot()
        status, answer = send(world, via, "caller", method, params)
        check(world, before, answer, status)
        if answer.get("error", {}).get("code") == 13009:
            world.stale.add("caller")

    @pytest.mark.parametrize("scheme", list(AUTHORIZATIONS))
    @settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
    @given(data=st.data(), call=header_calls, forwarded=choice(st.none(), wild_text))
    def test_authorization_headers(
        self,
        world: World,
        scheme: str,
        data: st.DataObject,
        call: tuple[str, dict[str, Any], str],
        forwarded: str | None,
    ) -> None:
        """Bearer, Basic, deri-hmac-sha256 and garbage Authorization headers (and X-Forwarded-For), fuzzed: no crash, nothing written on an error."""
        method, params, verb = call
        login = world.login("header")
        uri = f"/api/v2/{method}" + (f"?{query(params)}" if verb == "GET" else "")
        body = "" if verb == "GET" else json.dumps({"jsonrpc": "2.0", "id": 1, "params": params})
        value = data.draw(AUTHORIZATIONS[scheme], label="value")
        spec = value if scheme == "garbage" else (scheme, value)
        header, signed = authorization(spec, login, world, verb, uri, body)
        headers = [(b"Authorization", header)]
        if forwarded is not None:
            headers.append((b"X-Forwarded-For", header_bytes(forwarded)))
        before = world.snapshot()
        response = httpx.request(verb, world.url + uri, content=body, headers=headers, timeout=30)
        check(world, before, response.json(), response.status_code, may_change=_nonces(signed))

    @FUZZ
    @given(body=raw_bodies, path=paths, verb=st.sampled_from(["POST", "GET", "PUT", "DELETE"]))
    def test_raw_http_bodies(self, world: World, body: bytes, path: str, verb: str) -> None:
        """Raw bytes, invalid UTF-8, deep nesting, huge numbers and wrong envelopes, on any path: an error in the envelope."""
        token = world.login("caller").access
        before = world.snapshot()
        response = httpx.request(
            verb,
            world.url + path,
            content=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        check(world, before, response.json(), response.status_code)

    @FUZZ
    @given(body=raw_bodies, binary=st.booleans(), role=st.sampled_from(["anonymous", "caller"]))
    def test_raw_websocket_messages(
        self, world: World, body: bytes, binary: bool, role: str
    ) -> None:
        """Raw text and binary WebSocket messages get an answer in the envelope, and the socket stays open."""
        ws = world.socket(role)
        before = world.snapshot()
        message = body if binary else body.decode("utf-8", "replace")
        if len(message) > MAX_BODY:  # refused whole by the server, close code 1009 (tested above)
            return
        ws.send(message)
        check(world, before, json.loads(ws.recv(timeout=30)))
        still_open(ws)

    @FUZZ
    @given(
        call=guarded_calls,
        code=codes,
        challenge=choice(real("challenge"), ANSWER["challenge"]),
    )
    def test_security_key_answers(
        self, world: World, call: tuple[str, Any], code: Any, challenge: Any
    ) -> None:
        """Fuzzed codes and challenges on every guarded call: no crash; only a right challenge's answer is counted."""
        method, params = call
        login = world.login("tfa")
        if isinstance(params, dict):
            bare = {k: v for k, v in params.items() if k not in ANSWER}
            before = world.snapshot()
            status, first = post(world.url, method, bare, token=login.access)
            check(world, before, first, status)
            fresh = first.get("result")
            if isinstance(fresh, dict) and "challenge" in fresh:
                world.challenge = fresh["challenge"]
            answer = {"authorization_data": code, "challenge": fill(challenge, login, world)}
            params = {**bare, **answer}
        before = world.snapshot()
        status, answered = post(world.url, method, params, token=login.access)
        counted = isinstance(params, dict) and params.get("challenge") == world.challenge
        spent = frozenset({"keyturn_nonces", "keyturn_security_keys"}) if counted else frozenset()
        check(world, before, answered, status, may_change=spent)
        enrolled = world.service.security_key(login.owner)
        if counted and enrolled is not None and enrolled.failures >= LOCK_MARGIN:
            world.service.enroll_security_key(login.owner, name="phone")  # before the lock


def _nonces(signed: bool) -> frozenset[str]:
    return frozenset({"keyturn_nonces"}) if signed else frozenset()


# --- the crashes the fuzzer found, one named test each ---------------------------------------


def refused(answer: Any, code: int, param: str | None = None) -> None:
    """``answer`` is the error ``code`` in the envelope (naming ``param`` for 11029)."""
    assert_envelope(answer)
    assert answer["error"]["code"] == code, answer
    if param is not None:
        assert answer["error"]["data"]["param"] == param


def auth_with(login: Login, field: str, value: str) -> dict[str, Any]:
    """public/auth parameters whose grant carries ``field``, set to ``value``."""
    if field == "refresh_token":
        return {"grant_type": "refresh_token", "refresh_token": value}
    if field in {"client_id", "client_secret"}:
        base = {"client_id": login.client_id, "client_secret": login.secret}
        return {"grant_type": "client_credentials", **base, field: value}
    signed = {"client_id": login.client_id, "timestamp": now_ms(), "nonce": "n", "data": ""}
    return {"grant_type": "client_signature", **signed, "signature": "ab", field: value}


class TestFound:
    @pytest.mark.parametrize(
        ("field", "code"),
        [
            ("client_id", 11029),
            ("client_secret", 13004),
            ("nonce", 11029),
            ("data", 11029),
            ("refresh_token", 13004),
        ],
    )
    def test_lone_surrogate_in_public_auth(self, world: World, field: str, code: int) -> None:
        """A lone surrogate in client_id, client_secret, nonce, data or a refresh token is a typed error (13004 for a secret) on HTTP and WebSocket, and writes nothing."""
        login = world.login("login")
        params = auth_with(login, field, "\ud800" + login.refresh)
        before = world.snapshot()
        status, answer = post(world.url, "public/auth", params)
        assert status == 400
        refused(answer, code, field if code == 11029 else None)
        ws = world.socket("anonymous")
        refused(ws_send(ws, "public/auth", params), code)
        still_open(ws)
        assert world.snapshot() == before

    def test_nul_in_client_id(self, world: World) -> None:
        """A NUL in client_id (PostgreSQL cannot hold one) is 11029 as a parameter and 13004 in a Basic header, before the store is read."""
        login = world.login("login")
        before = world.snapshot()
        params = auth_with(login, "client_id", login.client_id + "\x00")
        refused(post(world.url, "public/auth", params)[1], 11029, "client_id")
        basic = base64.b64encode(f"{login.client_id}\x00:{login.secret}".encode()).decode()
        answer = httpx.get(
            f"{world.url}/api/v2/private/list_api_keys", headers={"Authorization": f"Basic {basic}"}
        )
        assert answer.status_code == 400
        refused(answer.json(), 13004)
        assert world.snapshot() == before

    def test_non_ascii_challenge(self, world: World) -> None:
        """A challenge with non-ASCII text is one this server did not issue: 13668, nothing counted or spent."""
        login = world.login("tfa")
        before = world.snapshot()
        params = {"authorization_data": "123456", "challenge": world.challenge + "é"}
        status, answer = post(world.url, "private/list_api_keys", params, token=login.access)
        assert status == 400
        refused(answer, 13668)
        assert answer["error"]["data"] == {"reason": "tfa_code_not_matched"}
        assert world.snapshot() == before

    def test_timestamp_of_thousands_of_digits(self, world: World) -> None:
        """A signature header's timestamp of 5,000 digits (past int()'s limit) is 11029 naming it."""
        login = world.login("login")
        before = world.snapshot()
        digits = "1" * 5000
        header = f"{HEADER_SCHEME} id={login.client_id},ts={digits},sig=ab,nonce=n"
        answer = httpx.get(
            f"{world.url}/api/v2/private/list_api_keys", headers={"Authorization": header}
        )
        refused(answer.json(), 11029, "timestamp")
        assert world.snapshot() == before

    @pytest.mark.parametrize(
        ("verb", "path", "body", "status", "code"),
        [
            ("POST", "/api/v2", b"{not json", 400, -32700),
            ("POST", "/api/v2", b"\xff\xfe", 400, -32700),
            ("POST", "/api/v2", b" " * (64 * 1024 + 1), 400, -32600),
            ("GET", "/nowhere", b"", 404, -32601),
            ("PUT", "/api/v2", b"{}", 404, -32601),
        ],
    )
    def test_refusals_before_the_rpc_layer_carry_the_envelope(
        self, world: World, verb: str, path: str, body: bytes, status: int, code: int
    ) -> None:
        """Malformed JSON, invalid UTF-8, an oversized body and an unmatched path answer in Deribit's full envelope."""
        answer = httpx.request(verb, world.url + path, content=body)
        assert answer.status_code == status
        refused(answer.json(), code)

    def test_method_differing_from_path_keeps_the_id(self, world: World) -> None:
        """A body naming another method than its path is -32600 in the envelope, with the request's id."""
        body = json.dumps({"jsonrpc": "2.0", "id": 77, "method": "private/reset_api_key"})
        answer = httpx.post(f"{world.url}/api/v2/private/list_api_keys", content=body).json()
        refused(answer, -32600)
        assert answer["id"] == 77

    @pytest.mark.parametrize(
        ("message", "code"),
        [("{not json", -32700), (b"{}", -32600), ("x" * (MAX_BODY - 100), -32700)],
    )
    def test_websocket_refusals_carry_the_envelope(
        self, world: World, message: str | bytes, code: int
    ) -> None:
        """A malformed, binary or long (within 64 KiB) WebSocket message answers in the full envelope; the socket stays open."""
        ws = world.socket("anonymous")
        ws.send(message)
        refused(json.loads(ws.recv(timeout=10)), code)
        still_open(ws)

    def test_a_websocket_message_over_the_body_limit_closes_with_1009(self, world: World) -> None:
        """A message larger than an HTTP body may be is refused by the server before it is buffered: close code 1009, as the README says."""
        with connect(world.url.replace("http://", "ws://") + "/ws/api/v2") as ws:
            ws.send("x" * (MAX_BODY + 1))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009


class _FailingStore(AsyncStore):
    """A store whose look-up by client id fails as no one foresaw (a driver bug, say)."""

    async def get_by_client_id(self, client_id: str) -> None:
        msg = f"driver lost its mind over {client_id}"
        raise RuntimeError(msg)


@attrs.define
class Failing:
    """The API over a store that fails unexpectedly: its URL and its service."""

    url: str
    services: list[AsyncKeyService]


@pytest.fixture(name="failing", scope="module")
def _failing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Failing]:
    """The API served over a store that fails unexpectedly."""
    store = SQLiteKeyStore(tmp_path_factory.mktemp("failing") / "keys.db", synchronous="OFF")
    services: list[AsyncKeyService] = []

    async def make_app() -> tuple[Api, AsyncKeyStore]:
        served = _FailingStore(store)
        service = wiring.build_async_service(
            store=served, notifier=AsyncNotifierAdapter(RecordingNotifier()), master_key=MASTER
        )
        services.append(service)
        return wiring.build_api(service, MASTER), served

    with uvicorn_serving(make_app) as url:
        yield Failing(url, services)
    store.close()


CREDENTIALS: Final = {
    "grant_type": "client_credentials",
    "client_id": "visible-client",
    "client_secret": "hidden-s3cret",
}


class _BrokenLogger:
    """A logger that fails as a misconfigured application's might."""

    def error(self, event: str, **fields: Any) -> None:
        msg = f"logging is broken: {event}"
        raise RuntimeError(msg)


class TestUnexpectedFailures:
    def test_http_answers_internal_error_in_the_envelope(self, failing: Failing) -> None:
        """An unexpected failure is -32603 in the envelope with the request's id and HTTP 400, never a 5xx."""
        body = {"jsonrpc": "2.0", "id": 9, "method": "public/auth", "params": CREDENTIALS}
        answer = httpx.post(f"{failing.url}/api/v2", json=body)
        assert answer.status_code == 400
        assert_envelope(answer.json(), frozenset({-32603}))
        assert answer.json()["id"] == 9
        assert answer.json()["error"] == {"code": -32603, "message": "Internal error"}

    def test_websocket_stays_open(self, failing: Failing) -> None:
        """Over a WebSocket the failure is answered -32603 in the envelope and the connection stays open."""
        with connect(failing.url.replace("http://", "ws://") + "/ws/api/v2") as ws:
            assert_envelope(ws_send(ws, "public/auth", CREDENTIALS, rid=3), frozenset({-32603}))
            still_open(ws)

    def test_logged_with_type_and_origin_only(self, failing: Failing) -> None:
        """request_failed names the exception's type, where it was raised and the method, never a value, secret or message."""
        with capture_logs() as logs:
            post(failing.url, "public/auth", CREDENTIALS)
        failed = [e for e in logs if e["event"] == "request_failed"]
        assert len(failed) == 1
        assert failed[0]["log_level"] == "error"
        assert failed[0]["error_type"] == "RuntimeError"
        assert failed[0]["method"] == "public/auth"
        assert failed[0]["origin"].startswith("test_api_fuzz.get_by_client_id:")
        for value in ("visible-client", "hidden-s3cret", "lost its mind"):
            assert value not in repr(logs)

    def test_answered_even_when_logging_fails(self, failing: Failing) -> None:
        """If the application's logging fails as well, the answer is still -32603 in the envelope."""
        (service,) = failing.services
        logger, service.logger = service.logger, _BrokenLogger()
        try:
            status, answer = post(failing.url, "public/auth", CREDENTIALS)
        finally:
            service.logger = logger
        assert status == 400
        assert_envelope(answer, frozenset({-32603}))
