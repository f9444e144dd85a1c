"""The portal's outer layer: bounded request bodies and the security headers on every answer.

Through the portal's ASGI application, alone and mounted in a host application, as a browser or
a script would reach it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from keyturn.api.asgi import MAX_BODY
from keyturn.portal import build_portal
from test_portal import (  # the fixtures are shared with the main portal suite
    KEY_FORM,
    SECRET_KEY,
    Person,
    _clock,  # noqa: F401
    _keys,
    _mailbox,  # noqa: F401
    _person,  # noqa: F401
    _service_fixture,  # noqa: F401
    _signed_in,  # noqa: F401
)

if TYPE_CHECKING:
    from collections.abc import Iterator, MutableMapping

    from starlette.types import ASGIApp

    from keyturn.portal import DevMailbox
    from keyturn.service import AsyncKeyService

FORM = {"content-type": "application/x-www-form-urlencoded"}


def _secure(headers: Any) -> None:
    assert headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


@pytest.fixture(name="host")
def _host(service: AsyncKeyService, mailbox: DevMailbox) -> Iterator[TestClient]:
    """A host application with the portal mounted at /keys (reference sign-in on)."""
    portal = build_portal(service=service, secret_key=SECRET_KEY, mailbox=mailbox)
    with TestClient(Starlette(routes=[Mount("/keys", app=portal)])) as client:
        yield client


class TestBodyLimits:
    def test_a_body_over_64_kib_is_refused_413(
        self, host: TestClient, mailbox: DevMailbox, service: AsyncKeyService
    ) -> None:
        """A mounted portal answers 413 to a form over 64 KiB, declared or streamed, and acts not."""
        person = Person(host, mailbox, prefix="/keys")
        person.sign_in()
        padding = "x" * MAX_BODY
        fields = {"csrf_token": person.csrf, **KEY_FORM, "pad": padding}
        body = "&".join(f"{k}={v}" for k, v in fields.items()).encode()
        declared = host.post("/keys/new", content=body, headers=FORM)
        streamed = host.post("/keys/new", content=iter([body[:1000], body[1000:]]), headers=FORM)
        for answer in (declared, streamed):
            assert answer.status_code == 413
            assert answer.text == "This request is too large for the portal."
            _secure(answer.headers)
        assert _keys(person, service) == []
        assert [m.subject for m in mailbox.messages] == ["Your sign-in code"]

    def test_a_body_of_exactly_64_kib_is_read(self, host: TestClient, mailbox: DevMailbox) -> None:
        """64 KiB is still a body the portal reads (here: a sign-in form with padding)."""
        person = Person(host, mailbox, prefix="/keys")
        start = f"csrf_token={person.csrf}&email=ann%40example.com&pad=".encode()
        body = start + b"x" * (MAX_BODY - len(start))
        assert len(body) == MAX_BODY
        answer = host.post("/keys/signin", content=body, headers=FORM)
        assert answer.status_code == 200
        assert "Enter your code" in answer.text

    def test_a_body_that_never_arrives_is_answered_408(
        self, service: AsyncKeyService, mailbox: DevMailbox
    ) -> None:
        """A mounted portal answers 408, with its headers, when a body is not in by the timeout."""
        portal = build_portal(
            service=service, secret_key=SECRET_KEY, mailbox=mailbox, body_timeout=0.2
        )
        host = Starlette(routes=[Mount("/keys", app=portal)])
        status, headers, body = asyncio.run(_slow_post(host, "/keys/signin"))
        assert status == 408
        assert body == b"The request took too long to arrive. Try again."
        _secure(headers)
        assert mailbox.messages == []


async def _slow_post(app: ASGIApp, path: str) -> tuple[int, dict[str, str], bytes]:
    """POST to ``app`` a body whose first bytes come and whose rest never does."""
    stalled = asyncio.Event()
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"csrf_token=x&em", "more_body": True}
        await stalled.wait()  # never set: the rest of the body never comes
        return {"type": "http.disconnect"}

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"portal.test"), (b"content-type", FORM["content-type"].encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("portal.test", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=5)
    start = sent[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], headers, body


class TestHeadersEverywhere:
    def test_starlettes_own_answers_carry_the_headers(self, signed_in: Person) -> None:
        """Starlette's own 404, 405 and 400 (too many fields, a file) and static files are secured."""
        client, csrf = signed_in.client, signed_in.csrf
        many = "&".join(f"f{i}=1" for i in range(100))
        answers = {
            404: client.get("/no/such/page"),
            405: client.get("/signout"),
            400: client.post("/new", content=f"csrf_token={csrf}&{many}".encode(), headers=FORM),
        }
        upload = client.post(
            "/new", data={"csrf_token": csrf}, files={"name": ("a.txt", b"bot_1", "text/plain")}
        )
        for status, answer in answers.items():
            assert answer.status_code == status
            _secure(answer.headers)
        assert upload.status_code == 400
        _secure(upload.headers)
        _secure(client.get("/static/portal.css").headers)

    def test_the_headers_are_set_once(self, signed_in: Person) -> None:
        """A page's answer names each security header once (the layer replaces, never repeats)."""
        answer = signed_in.get("/")
        for name in ("cache-control", "content-security-policy", "x-frame-options"):
            assert len(answer.headers.get_list(name)) == 1
