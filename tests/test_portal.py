"""The portal over HTTP: sign-in, CSRF, the secret shown once, every dialog's refusals, mounting.

These run the portal's ASGI application in process (Starlette's test client); the browser suite
(test_portal_browser.py) walks the same steps in Chromium.
"""

from __future__ import annotations

import ast
import contextlib
import html
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from email import message_from_bytes
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from keyturn import Action, ApiKey, Policy, State
from keyturn.adapters.smtp import SmtpNotifier
from keyturn.adapters.to_async import AsyncNotifierAdapter, AsyncStore
from keyturn.core import scope
from keyturn.portal import PORTAL_POLICY, DevMailbox, build_portal
from keyturn.portal.web import local_path
from keyturn.testing import InMemoryKeyStore, ManualClock
from keyturn.wiring import build_async_service

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx2
    from starlette.requests import Request

    from keyturn.service import AsyncKeyService

SECRET_KEY = b"p" * 32
EMAIL = "alice@example.com"
KEY_FORM = {
    "name": "bot_1",
    "scope_account": "read",
    "scope_trade": "read_write",
    "ip_whitelist": "203.0.113.0/24",
}


class Person:
    """A browser without JavaScript: follows redirects, keeps cookies, sends forms with CSRF."""

    def __init__(self, client: TestClient, mailbox: DevMailbox, prefix: str = "") -> None:
        self.client, self.mailbox, self.prefix = client, mailbox, prefix
        self.sent: tuple[str, dict[str, str]] = ("", {})
        self.page: httpx2.Response = client.get(prefix + "/")

    @property
    def csrf(self) -> str:
        """The CSRF token of the page shown."""
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.page.text)
        assert found, self.page.text[:500]
        return found.group(1)

    def get(self, path: str) -> httpx2.Response:
        """Open ``path``."""
        self.page = self.client.get(self.prefix + path)
        return self.page

    def post(self, path: str, **fields: str) -> httpx2.Response:
        """Send a form of the page shown to ``path``."""
        self.page = self.client.post(self.prefix + path, data={"csrf_token": self.csrf, **fields})
        return self.page

    def submit(self, marker: str, **fields: str) -> httpx2.Response:
        """Send the form of the page shown that contains ``marker``, as a browser would.

        Its hidden fields go as the page has them (plus ``fields``), to its own action.
        """
        forms = re.findall(
            r'<form [^>]*action="([^"]+)"[^>]*>(.*?)</form>', self.page.text, re.DOTALL
        )
        [(action, body)] = [(a, b) for a, b in forms if marker in b]
        hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body)
        data = {name: html.unescape(value) for name, value in hidden} | fields
        self.sent = (html.unescape(action), data)
        self.page = self.client.post(html.unescape(action), data=data)
        return self.page

    def reload(self) -> httpx2.Response:
        """Send the last form submitted again, as a browser's reload of its answer does."""
        action, data = self.sent
        self.page = self.client.post(action, data=data)
        return self.page

    def hidden(self, name: str) -> str:
        """The value of a hidden field of the page shown."""
        found = re.search(rf'name="{name}" value="([^"]*)"', self.page.text)
        assert found, self.page.text[:2000]
        return found.group(1)

    @property
    def alert(self) -> str:
        """The page's error line, if any."""
        found = re.search(r'role="alert">([^<]+)<', self.page.text)
        return found.group(1) if found else ""

    def sign_in(self, email: str = EMAIL) -> None:
        """Sign in with a code from the mailbox."""
        self.get("/signin")
        self.post("/signin", email=email)
        self.post("/signin/code", code=self.mailbox.last_code(email.lower()))
        assert self.page.url.path == self.prefix + "/"

    def create(self, **form: str) -> str:
        """Create a key through its code; the secret shown."""
        fields = KEY_FORM | form
        self.get("/new")
        self.submit('name="name"', **fields)
        self.submit('name="code"', code=self.code())
        return self.hidden_secret()

    def hidden_secret(self) -> str:
        """The secret the page shows."""
        found = re.search(r'id="client-secret" readonly value="([^"]+)"', self.page.text)
        assert found, self.page.text[:2000]
        return found.group(1)

    def code(self) -> str:
        """The last code sent."""
        return self.mailbox.last_code()


@pytest.fixture(name="clock")
def _clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(name="mailbox")
def _mailbox() -> DevMailbox:
    return DevMailbox()


def _service(clock: ManualClock, mailbox: DevMailbox, policy: Policy) -> AsyncKeyService:
    return build_async_service(
        store=AsyncStore(InMemoryKeyStore(), threaded=False),
        notifier=mailbox,
        master_key=b"m" * 32,
        clock=clock,
        policy=policy,
    )


@pytest.fixture(name="service")
def _service_fixture(clock: ManualClock, mailbox: DevMailbox) -> AsyncKeyService:
    return _service(clock, mailbox, PORTAL_POLICY)


@pytest.fixture(name="person")
def _person(service: AsyncKeyService, mailbox: DevMailbox) -> Iterator[Person]:
    app = build_portal(service=service, secret_key=SECRET_KEY, mailbox=mailbox)
    with TestClient(app) as client:
        yield Person(client, mailbox)


@pytest.fixture(name="signed_in")
def _signed_in(person: Person) -> Person:
    person.sign_in()
    return person


def _keys(_: Person, service: AsyncKeyService, owner: str = EMAIL) -> list[ApiKey]:
    """The owner's live keys, read from the store under the service."""
    store = service.store
    assert isinstance(store, AsyncStore)
    return [k for k in store.store.list_keys(owner) if k.live]


class _Down:
    """A notifier whose server is down."""

    async def deliver(self, notification: object) -> None:
        raise ConnectionRefusedError(notification)


class TestSignIn:
    def test_code_by_email_signs_in_with_a_safe_cookie(self, person: Person) -> None:
        """An emailed code signs in; the cookie is HttpOnly, SameSite=Lax and scoped to the portal."""
        assert person.page.url.path == "/signin"
        person.post("/signin", email="Alice@Example.com")
        assert "Enter your code" in person.page.text
        person.post("/signin/code", code="000000")
        assert person.page.status_code == 403
        assert person.alert == "That code is not right. 4 tries left for this code."
        person.post("/signin/code", code=person.mailbox.last_code(EMAIL))
        assert person.page.url.path == "/"
        assert EMAIL in person.page.text
        cookie = person.page.history[0].headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Path=/" in cookie
        assert "Secure" not in cookie  # plain HTTP here; over HTTPS it is Secure

    def test_expired_and_reused_codes_are_refused(self, person: Person, clock: ManualClock) -> None:
        """A code is refused from 5:00 after it was sent, and cannot sign in twice."""
        person.post("/signin", email=EMAIL)
        code = person.mailbox.last_code()
        clock.advance(minutes=5)
        person.post("/signin/code", code=code)
        assert person.alert == "The code expired, request a new one."
        person.post("/signin", resend="1")
        person.post("/signin/code", code=person.mailbox.last_code())
        assert person.page.url.path == "/"
        person.post("/signout")
        person.get("/signin")
        person.post("/signin", email=EMAIL)
        assert person.mailbox.last_code() != code

    def test_resend_waits_two_minutes(self, person: Person, clock: ManualClock) -> None:
        """Resend sends nothing before 2:00 after the last code, and a new code at 2:00."""
        person.post("/signin", email=EMAIL)
        sent = len(person.mailbox.messages)
        clock.advance(119)
        person.post("/signin", resend="1")
        assert person.page.status_code == 429
        assert person.alert == "You can request a new code in 0:01."
        assert len(person.mailbox.messages) == sent
        clock.advance(1)
        person.post("/signin", resend="1")
        assert len(person.mailbox.messages) == sent + 1

    @pytest.mark.parametrize(
        ("sends_codes", "message"),
        [
            (True, "We could not send the code: email is not working right now. Try again later."),
            (False, "Sign-in codes cannot be sent: this server has no way to send email."),
        ],
    )
    def test_a_code_that_cannot_be_sent_is_said_so(
        self,
        service: AsyncKeyService,
        sends_codes: bool,
        message: str,
    ) -> None:
        """A failing notifier, or none at all, is said on the page (503): no code, no 500."""
        portal = build_portal(
            service=service,
            secret_key=SECRET_KEY,
            sign_in_notifier=_Down(),
            sends_codes=sends_codes,
        )
        with TestClient(portal) as client, capture_logs() as logs:
            page = client.get("/signin").text
            assert ('name="email"' in page) is sends_codes
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
            token = csrf.group(1) if csrf else ""
            answer = client.post("/signin", data={"csrf_token": token, "email": EMAIL})
            assert answer.status_code == (503 if sends_codes else 403)
            if sends_codes:
                assert message in answer.text
                assert 'name="email"' in client.get("/signin").text  # no code waits
                assert [e["event"] for e in logs] == ["sign_in_code_not_sent"]
            else:
                assert message in page

    def test_one_client_mails_codes_to_five_addresses_per_ten_minutes(
        self, service: AsyncKeyService, mailbox: DevMailbox, clock: ManualClock
    ) -> None:
        """A sixth address from one client address waits for the window; other clients do not."""
        portal = build_portal(service=service, secret_key=SECRET_KEY, mailbox=mailbox)
        with TestClient(portal, client=("203.0.113.9", 40000)) as client:
            for n in range(6):
                clock.advance(60)
                person = Person(client, mailbox)
                client.cookies.clear()
                person.get("/signin")
                person.post("/signin", email=f"user{n}@example.com")
            assert person.page.status_code == 429
            assert person.alert == (
                "Too many codes were sent recently. You can request another in 5:00."
            )
            assert len(mailbox.messages) == 5
        with TestClient(portal, client=("198.51.100.4", 40000)) as other:
            person = Person(other, mailbox)
            person.post("/signin", email="user5@example.com")
            assert "Enter your code" in person.page.text
            assert len(mailbox.messages) == 6

    def test_a_forged_cookie_is_not_signed_in(self, person: Person) -> None:
        """A cookie whose signature does not match counts for nothing."""
        person.sign_in()
        value = person.client.cookies["keyturn_portal"]
        person.client.cookies.clear()
        person.client.cookies.set("keyturn_portal", value[:-3] + "abc")
        assert person.get("/").url.path == "/signin"

    @pytest.mark.parametrize(
        "email",
        [
            "",
            "alice",
            "a%40b",
            "a%00%40example.com",
            "x" * 120 + "%40example.com",
            "%ED%A0%80%40example.com",  # a lone surrogate, as UTF-8 would spell it
            "%FF%40example.com",
        ],
    )
    def test_bad_addresses_send_nothing(self, person: Person, email: str) -> None:
        """An address that is not one is refused with a message, and no code goes out."""
        body = f"csrf_token={person.csrf}&email={email}".encode()
        person.page = person.client.post(
            "/signin", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert person.page.status_code == 422
        assert person.alert.startswith("Check the email")
        assert person.mailbox.messages == []


def test_every_form_needs_the_csrf_token(
    signed_in: Person, service: AsyncKeyService, mailbox: DevMailbox
) -> None:
    """A POST without the session's CSRF token changes nothing and sends nothing, on every form."""
    signed_in.create()
    before = _keys(signed_in, service)
    sent = len(mailbox.messages)
    paths = [
        "/new",
        *(
            f"/keys/1/{a}"
            for a in (
                "saved",
                "activate",
                "verify",
                "resend",
                "cancel",
                "disable",
                "edit",
                "remove",
            )
        ),
        "/signout",
    ]
    for path in paths:
        for token in (None, "forged"):
            data = KEY_FORM | {"saved": "on", "do": "activate", "code": "100000"}
            if token:
                data["csrf_token"] = token
            answer = signed_in.client.post(path, data=data)
            assert answer.status_code == 403, path
            assert "came from another site" in answer.text
    assert _keys(signed_in, service) == before
    assert len(mailbox.messages) == sent
    assert signed_in.get("/").url.path == "/"  # still signed in


class TestSecretShownOnce:
    def test_create_is_confirmed_by_code_then_shows_the_secret_once(
        self, signed_in: Person, service: AsyncKeyService
    ) -> None:
        """Create asks for a code; the secret page is no-store and the secret never shows again."""
        signed_in.get("/new")
        signed_in.submit('name="name"', **KEY_FORM)
        assert "Confirm the new API key" in signed_in.page.text
        assert _keys(signed_in, service) == []
        with capture_logs() as logs:
            secret = signed_in.create()
        page = signed_in.page
        assert page.headers["cache-control"] == "no-store"
        assert "Activate API Key" in page.text
        assert secret not in str(page.url)
        later = [signed_in.post("/keys/1/saved", saved="on", do="activate")]
        paths = ("/", "/keys/1/verify", "/keys/1/history", "/keys/1/edit", "/dev/mailbox")
        later.extend(signed_in.get(path) for path in paths)
        for answer in later:
            assert secret not in answer.text
            assert secret not in str(answer.url)
            assert all(secret not in str(r.url) for r in answer.history)
        assert secret not in repr(logs)

    def test_reloading_the_secret_page_says_the_key_exists(
        self, signed_in: Person, service: AsyncKeyService, mailbox: DevMailbox
    ) -> None:
        """The confirmed Create sent again shows no secret and no refusal: the key exists."""
        secret = signed_in.create()
        codes = [m for m in mailbox.messages if m.code]
        signed_in.reload()
        assert signed_in.page.status_code == 200
        assert "was created already" in signed_in.page.text
        assert "This confirmation can no longer be used" not in signed_in.page.text
        assert 'href="/keys/1/activate"' in signed_in.page.text
        assert secret not in signed_in.page.text
        assert len(_keys(signed_in, service)) == 1
        assert [m for m in mailbox.messages if m.code] == codes

    def test_without_confirmation_a_resent_create_makes_no_second_key(
        self, clock: ManualClock, mailbox: DevMailbox
    ) -> None:
        """Under a policy that does not confirm Create, the same form sent twice makes one key."""
        service = _service(clock, mailbox, Policy())
        with TestClient(build_portal(service=service, secret_key=SECRET_KEY, mailbox=mailbox)) as c:
            person = Person(c, mailbox)
            person.sign_in()
            person.get("/new")
            person.submit('name="name"', **KEY_FORM)
            secret = person.hidden_secret()
            person.reload()
            assert "was created already" in person.page.text
            assert secret not in person.page.text
            assert len(_keys(person, service)) == 1
            person.get("/new")  # a new form makes a new key
            person.submit('name="name"', **KEY_FORM | {"name": "bot_2"})
            assert len(_keys(person, service)) == 2

    def test_a_create_without_its_form_value_makes_nothing(
        self, signed_in: Person, service: AsyncKeyService
    ) -> None:
        """A Create without the form's one-time value is sent back to the form: nothing is made."""
        signed_in.get("/new")
        signed_in.post("/new", **KEY_FORM)
        assert signed_in.page.status_code == 422
        assert signed_in.alert == "This form has expired. Check it and press Create again."
        assert signed_in.hidden("form_id")
        assert _keys(signed_in, service) == []
        assert [m.subject for m in signed_in.mailbox.messages] == ["Your sign-in code"]

    def test_activate_later_leaves_it_acknowledged(
        self, signed_in: Person, service: AsyncKeyService
    ) -> None:
        """ACTIVATE LATER records the acknowledgement and sends no code."""
        signed_in.create()
        sent = len(signed_in.mailbox.messages)
        signed_in.post("/keys/1/saved", saved="on", do="later")
        assert "is not active" in signed_in.page.text
        assert [k.state for k in _keys(signed_in, service)] == [State.SECRET_ACKNOWLEDGED]
        assert len(signed_in.mailbox.messages) == sent

    def test_without_the_checkbox_nothing_happens(
        self, signed_in: Person, service: AsyncKeyService
    ) -> None:
        """A crafted request without "I have saved the API secret" leaves the key created."""
        signed_in.create()
        signed_in.post("/keys/1/saved", do="activate")
        assert "confirm that you saved the secret" in signed_in.page.text
        assert [k.state for k in _keys(signed_in, service)] == [State.CREATED]


def test_the_forms_offer_every_resource_of_the_scope(signed_in: Person) -> None:
    """Create and Edit offer a level for each resource keyturn's scopes know, in their order."""
    signed_in.create()
    for path in ("/new", "/keys/1/edit"):
        page = signed_in.get(path).text
        assert re.findall(r'<select id="scope_([a-z_]+)"', page) == list(scope.RESOURCES)
    assert '<label for="scope_block_rfq">Block RFQ</label>' in page


class TestBadInput:
    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("name", "bad name", "Check the name"),
            ("name", "x" * 17, "Check the name"),
            ("name", "n\x00", "Check the name"),
            ("name", "%ED%A0%80", "Check the name"),  # a lone surrogate, as UTF-8 would spell it
            ("name", "%FF", "Check the name"),
            ("ip_whitelist", "10.0.0.7/8", "Check the ip whitelist"),
            ("ip_whitelist", "1" * 5000, "Check the ip whitelist"),
            ("scope_trade", "admin", "Check the max scope"),
            ("scope_account", "none", "Check the permissions"),
        ],
    )
    def test_create_refuses_with_a_message_and_changes_nothing(
        self, signed_in: Person, service: AsyncKeyService, field: str, value: str, message: str
    ) -> None:
        """Bad fields are shown in the Create dialog; no key is made and no code is sent."""
        form = {k: urllib.parse.quote(v) for k, v in KEY_FORM.items()} | {field: value}
        if field == "scope_account":
            form.pop("scope_trade")
        signed_in.get("/new")
        once = {"csrf_token": signed_in.csrf, "form_id": signed_in.hidden("form_id")}
        body = "&".join(f"{k}={v}" for k, v in (form | once).items())
        signed_in.page = signed_in.client.post(
            "/new",
            content=body.encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert signed_in.page.status_code == 422
        assert signed_in.alert.startswith(message), signed_in.alert
        assert _keys(signed_in, service) == []
        assert [m.subject for m in signed_in.mailbox.messages] == ["Your sign-in code"]

    def test_unknown_and_foreign_keys_are_not_found(
        self, signed_in: Person, person: Person, service: AsyncKeyService
    ) -> None:
        """Another account's key and a missing key both answer 404 and change nothing."""
        signed_in.create()
        signed_in.post("/signout")
        signed_in.sign_in("bob@example.com")
        for path in ("/keys/1/activate", "/keys/99/edit", "/keys/1/history"):
            answer = signed_in.get(path)
            assert answer.status_code == 404
            assert "There is no such API key." in answer.text
        signed_in.post("/keys/1/remove")
        assert signed_in.page.status_code == 404
        assert [k.state for k in _keys(signed_in, service)] == [State.CREATED]
        assert signed_in.get("/keys/abc/edit").status_code == 404


class TestActivation:
    def _pending(self, person: Person) -> None:
        person.create()
        person.post("/keys/1/saved", saved="on", do="activate")
        assert person.page.url.path == "/keys/1/verify"

    def test_wrong_expired_and_right_codes(self, signed_in: Person, clock: ManualClock) -> None:
        """A wrong code says the tries left, a code at 5:00 has expired, a fresh one activates."""
        self._pending(signed_in)
        signed_in.post("/keys/1/verify", code="000000")
        assert signed_in.alert == "That code is not right. 4 tries left for this code."
        clock.advance(minutes=5)
        signed_in.post("/keys/1/verify", code=signed_in.code())
        assert signed_in.page.status_code == 403
        assert signed_in.alert == "The code expired, request a new one."
        signed_in.post("/keys/1/resend")
        assert "We sent a new code." in signed_in.page.text
        signed_in.post("/keys/1/verify", code=signed_in.code())
        assert "API key activated" in signed_in.page.text
        assert "API key &#39;bot_1&#39; is activated." in signed_in.page.text

    def test_an_expired_code_is_said_once_and_cannot_be_sent(
        self, signed_in: Person, clock: ManualClock
    ) -> None:
        """From 5:00 every code dialog says "expired" once, shows no tries and disables submit."""
        expired = "The code expired, request a new one."
        self._pending(signed_in)
        clock.advance(minutes=5)
        refused = signed_in.post("/keys/1/verify", code=signed_in.code())
        assert refused.status_code == 403
        for answer in (refused, signed_in.get("/keys/1/verify")):
            assert answer.text.count(expired) == 1
            assert "tries left" not in answer.text
            assert re.search(
                r'<button id="code-submit"[^>]* disabled>Activate</button>', answer.text
            )
        signed_in.get("/new")
        signed_in.submit('name="name"', **KEY_FORM | {"name": "bot_2"})
        clock.advance(minutes=5)
        signed_in.submit('name="code"', code=signed_in.code())
        assert signed_in.page.status_code == 403
        assert signed_in.page.text.count(expired) == 1
        assert re.search(r'id="code-submit"[^>]* disabled>Confirm<', signed_in.page.text)
        signed_in.post("/signout")
        signed_in.get("/signin")
        signed_in.post("/signin", email=EMAIL)
        clock.advance(minutes=5)
        signed_in.post("/signin/code", code=signed_in.code())
        assert signed_in.page.text.count(expired) == 1
        assert re.search(r'id="code-submit"[^>]* disabled>Sign in<', signed_in.page.text)

    def test_resend_is_refused_before_two_minutes(
        self, signed_in: Person, clock: ManualClock
    ) -> None:
        """Resend at 1:59 is refused with the wait; at 2:00 it sends a new code."""
        self._pending(signed_in)
        first = signed_in.code()
        clock.advance(119)
        signed_in.post("/keys/1/resend")
        assert signed_in.page.status_code == 429
        assert signed_in.alert == "You can request a new code in 0:01."
        assert signed_in.code() == first
        clock.advance(1)
        signed_in.post("/keys/1/resend")
        assert signed_in.code() != first

    def test_closing_the_dialog_keeps_the_resend_wait(
        self, signed_in: Person, service: AsyncKeyService, clock: ManualClock
    ) -> None:
        """Closing the pop-up is ACTIVATE LATER; Activate within 2:00 reopens it on the same code."""
        self._pending(signed_in)
        first = signed_in.code()
        signed_in.post("/keys/1/cancel")
        assert [k.state for k in _keys(signed_in, service)] == [State.SECRET_ACKNOWLEDGED]
        clock.advance(60)
        signed_in.get("/keys/1/activate")
        assert "A new code can be sent in" not in signed_in.page.text
        sent = len(signed_in.mailbox.messages)
        signed_in.post("/keys/1/activate")
        assert signed_in.page.url.path == "/keys/1/verify"
        assert len(signed_in.mailbox.messages) == sent
        signed_in.post("/keys/1/verify", code=first)
        assert [k.state for k in _keys(signed_in, service)] == [State.ACTIVE]

    def test_activate_after_the_wait_sends_a_new_code(
        self, signed_in: Person, service: AsyncKeyService, clock: ManualClock
    ) -> None:
        """After Activate Later and 2:00, Activate sends a new code, and only the new one works."""
        self._pending(signed_in)
        first = signed_in.code()
        signed_in.post("/keys/1/cancel")
        clock.advance(120)
        sent = len(signed_in.mailbox.messages)
        signed_in.post("/keys/1/activate")
        assert signed_in.page.url.path == "/keys/1/verify"
        assert len(signed_in.mailbox.messages) == sent + 1
        assert signed_in.code() != first
        signed_in.post("/keys/1/verify", code=signed_in.code())
        assert [k.state for k in _keys(signed_in, service)] == [State.ACTIVE]

    def test_activate_on_a_pending_key_reopens_its_dialog(
        self, signed_in: Person, mailbox: DevMailbox
    ) -> None:
        """Activate on a key waiting for its code shows the code dialog and sends nothing new."""
        self._pending(signed_in)
        sent = len(mailbox.messages)
        signed_in.get("/")
        assert "Activate bot_1" in signed_in.page.text
        signed_in.get("/keys/1/activate")
        assert signed_in.page.url.path == "/keys/1/verify"
        assert len(mailbox.messages) == sent

    def test_disabled_key_is_activated_again_by_code(
        self, signed_in: Person, service: AsyncKeyService, clock: ManualClock
    ) -> None:
        """An active key is deactivated at once, then Activate shows its details and sends a code."""
        self._pending(signed_in)
        signed_in.post("/keys/1/verify", code=signed_in.code())
        signed_in.get("/keys/1/disable")
        signed_in.post("/keys/1/disable")
        assert [k.state for k in _keys(signed_in, service)] == [State.DISABLED]
        clock.advance(minutes=2)
        signed_in.get("/keys/1/activate")
        assert "203.0.113.0/24" in signed_in.page.text
        signed_in.post("/keys/1/activate")
        signed_in.post("/keys/1/verify", code=signed_in.code())
        assert [k.state for k in _keys(signed_in, service)] == [State.ACTIVE]


def test_locked_and_send_limit_states_are_explained(
    clock: ManualClock, mailbox: DevMailbox
) -> None:
    """Past the send cap the dialog says when; after too many wrong codes it says it is locked."""
    policy = Policy(max_sends=3, max_consecutive_failures=3, confirm={Action.CREATE})
    service = _service(clock, mailbox, policy)
    with TestClient(build_portal(service=service, secret_key=SECRET_KEY, mailbox=mailbox)) as c:
        person = Person(c, mailbox)
        person.sign_in()
        person.create()
        person.post("/keys/1/saved", saved="on", do="activate")
        for _ in range(2):
            clock.advance(minutes=2)
            person.post("/keys/1/resend")
        clock.advance(minutes=2)
        person.post("/keys/1/resend")
        assert person.page.status_code == 429
        assert person.alert == "Too many codes were sent recently. You can request another in 4:00."
        for _ in range(3):
            person.post("/keys/1/verify", code="000000")
        assert (
            person.alert
            == "That code is not right, and this code has no tries left: request a new one."
        )
        person.post("/keys/1/verify", code="000000")
        assert person.page.status_code == 423
        assert "Contact support to unlock this key." in person.alert
        assert "locked after too many wrong codes" in person.get("/keys/1/verify").text


class TestConfirmationCodes:
    def test_an_early_resend_keeps_the_code_already_sent(
        self, signed_in: Person, mailbox: DevMailbox, clock: ManualClock
    ) -> None:
        """Resend before 2:00 is refused and the dialog keeps its challenge: the code still works."""
        signed_in.get("/new")
        signed_in.submit('name="name"', **KEY_FORM)
        code, sent = signed_in.code(), [m for m in mailbox.messages if m.code]
        clock.advance(60)
        signed_in.submit('name="resend"')
        assert signed_in.page.status_code == 429
        assert signed_in.alert == "You can request a new code in 1:00."
        signed_in.submit('name="code"', code=code)
        assert "Activate API Key" in signed_in.page.text
        assert [m for m in mailbox.messages if m.code] == sent

    def test_the_dialog_keeps_its_times_without_the_cookie_record(
        self, signed_in: Person, clock: ManualClock
    ) -> None:
        """After a wrong code, the dialog's countdown comes from the dialog, not the cookie."""
        signed_in.get("/new")
        before = signed_in.client.cookies["keyturn_portal"]  # no confirmation sent yet
        signed_in.submit('name="name"', **KEY_FORM)
        jar = signed_in.client.cookies
        jar.delete("keyturn_portal")
        jar.set("keyturn_portal", before)  # as if the sends were kept elsewhere than the cookie
        clock.advance(60)
        signed_in.submit('name="code"', code="000000")
        assert signed_in.alert == "That code is not right. 4 tries left for this code."
        assert "The code expires in" in signed_in.page.text
        assert re.search(r'data-countdown="240"', signed_in.page.text)
        assert re.search(
            r'id="code-submit" type="submit" class="primary">Confirm<', signed_in.page.text
        )
        signed_in.submit('name="code"', code=signed_in.code())
        assert "Activate API Key" in signed_in.page.text

    def test_the_send_cap_is_explained_as_the_activation_dialog_does(
        self, clock: ManualClock, mailbox: DevMailbox
    ) -> None:
        """Past the cap of confirmation codes, the dialog says too many were sent, and when."""
        service = _service(clock, mailbox, Policy(max_sends=2, confirm={Action.CREATE}))
        with TestClient(build_portal(service=service, secret_key=SECRET_KEY, mailbox=mailbox)) as c:
            person = Person(c, mailbox)
            person.sign_in()
            person.get("/new")
            person.submit('name="name"', **KEY_FORM)
            clock.advance(minutes=2)
            person.submit('name="resend"')
            sent = len(mailbox.messages)
            clock.advance(minutes=2)
            person.submit('name="resend"')
            assert person.page.status_code == 429
            assert person.alert == (
                "Too many codes were sent recently. You can request another in 6:00."
            )
            assert len(mailbox.messages) == sent

    def test_many_confirmed_actions_do_not_sign_the_person_out(
        self, signed_in: Person, service: AsyncKeyService, clock: ManualClock
    ) -> None:
        """The cookie forgets every action's sends once out of the window: it stops growing."""
        sizes = []
        for n in range(1, 61):
            signed_in.create(name=f"bot_{n}")
            signed_in.post(f"/keys/{n}/remove")
            signed_in.submit('name="code"', code=signed_in.code())
            assert "was removed" in signed_in.page.text, n
            clock.advance(minutes=3)
            sizes.append(len(signed_in.client.cookies["keyturn_portal"]))
        # it stays level (random form values compress unevenly); before, 30 more actions: +160
        assert max(sizes[30:]) <= max(sizes[:30]) + 16
        assert signed_in.get("/").url.path == "/"
        assert _keys(signed_in, service) == []


class TestEditAndRemove:
    def _active(self, person: Person) -> None:
        person.create()
        person.post("/keys/1/saved", saved="on", do="activate")
        person.post("/keys/1/verify", code=person.code())

    def test_edit_warns_before_deactivating_then_asks_a_code(
        self, signed_in: Person, service: AsyncKeyService
    ) -> None:
        """A new whitelist on an active key warns, asks a code, and leaves the key deactivated."""
        self._active(signed_in)
        form = KEY_FORM | {"ip_whitelist": "198.51.100.0/24"}
        signed_in.post("/keys/1/edit", **form)
        assert "The edited API key will be deactivated after changes" in signed_in.page.text
        assert [k.state for k in _keys(signed_in, service)] == [State.ACTIVE]
        signed_in.post("/keys/1/edit", **form, accept_deactivate="yes")
        assert "Confirm the changes" in signed_in.page.text
        signed_in.post(
            "/keys/1/edit",
            **form,
            accept_deactivate="yes",
            challenge_id=signed_in.hidden("challenge_id"),
            code=signed_in.code(),
        )
        assert "was deactivated" in signed_in.page.text
        [key] = _keys(signed_in, service)
        assert (key.state, [str(n) for n in key.ip_whitelist]) == (
            State.DISABLED,
            ["198.51.100.0/24"],
        )

    def test_the_history_reads_as_a_person_would(self, signed_in: Person) -> None:
        """The history names each state in words and says what an edit changed."""
        self._active(signed_in)
        form = KEY_FORM | {"ip_whitelist": "198.51.100.0/24", "scope_wallet": "read"}
        signed_in.post("/keys/1/edit", **form, accept_deactivate="yes")
        signed_in.submit('name="code"', code=signed_in.code())
        page = signed_in.get("/keys/1/history").text
        body = page[page.index('<table class="history">') :]
        assert "<td>Active</td><td>Deactivated</td>" in body
        assert "<td>Not activated</td><td>Waiting for the code</td>" in body
        assert "<td>changed: permissions, IP whitelist</td>" in body
        assert "pending_2fa" not in body
        assert "fields=" not in body

    def test_renaming_does_not_warn(self, signed_in: Person, service: AsyncKeyService) -> None:
        """A new name alone keeps the key active: no warning, straight to the code."""
        self._active(signed_in)
        signed_in.post("/keys/1/edit", **KEY_FORM | {"name": "bot_2"})
        assert "Confirm the changes" in signed_in.page.text
        signed_in.post(
            "/keys/1/edit",
            **KEY_FORM | {"name": "bot_2"},
            challenge_id=signed_in.hidden("challenge_id"),
            code="999999",
        )
        assert signed_in.alert == "That code is not right. 4 tries left for this code."
        assert [k.name for k in _keys(signed_in, service)] == ["bot_1"]

    def test_remove_is_confirmed_by_code(self, signed_in: Person, service: AsyncKeyService) -> None:
        """Remove asks for a code under the portal's policy and removes the key with it."""
        signed_in.create()
        signed_in.get("/keys/1/remove")
        assert "We will send a code" in signed_in.page.text
        signed_in.post("/keys/1/remove")
        signed_in.post(
            "/keys/1/remove", challenge_id=signed_in.hidden("challenge_id"), code=signed_in.code()
        )
        assert "was removed" in signed_in.page.text
        assert _keys(signed_in, service) == []
        history = signed_in.get("/keys/1/history").text
        assert history.index("removed_api_key") < history.index("new_api_key")

    def test_remove_without_code_when_the_policy_says_so(
        self, clock: ManualClock, mailbox: DevMailbox
    ) -> None:
        """Under a policy that does not confirm removal, Remove removes at once."""
        service = _service(clock, mailbox, Policy(confirm={Action.CREATE}))
        with TestClient(build_portal(service=service, secret_key=SECRET_KEY, mailbox=mailbox)) as c:
            person = Person(c, mailbox)
            person.sign_in()
            person.create()
            person.get("/keys/1/remove")
            assert "We will send a code" not in person.page.text
            person.post("/keys/1/remove")
            assert "was removed" in person.page.text


def test_answers_carry_security_headers(signed_in: Person) -> None:
    """Every page is no-store, framed by nobody, and runs only the portal's own script."""
    for path in ("/", "/new", "/dev/mailbox"):
        headers = signed_in.get(path).headers
        assert headers["cache-control"] == "no-store"
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"


def test_no_mailbox_outside_development(service: AsyncKeyService) -> None:
    """Without a mailbox (no --dev) the mailbox page does not exist."""
    with TestClient(build_portal(service=service, secret_key=SECRET_KEY)) as client:
        assert client.get("/dev/mailbox").status_code == 404


def _host_app(service: AsyncKeyService, **portal: Any) -> Starlette:
    """A host application with its own session login (``/login?as=``), the portal at /keys."""

    def account_of(request: Request) -> str | None:
        return request.session.get("user")

    async def login(request: Request) -> PlainTextResponse:
        request.session["user"] = request.query_params["as"]
        return PlainTextResponse("signed in")

    app = build_portal(service=service, secret_key=SECRET_KEY, account_of=account_of, **portal)
    return Starlette(
        routes=[Route("/login", login), Mount("/keys", app=app)],
        middleware=[Middleware(SessionMiddleware, secret_key="host-secret")],
    )


def test_a_host_application_mounts_it_behind_its_own_login(
    mailbox: DevMailbox, service: AsyncKeyService
) -> None:
    """A Starlette app with its own session login mounts the portal at /keys; links stay under it."""
    with TestClient(_host_app(service, login_url="/login")) as client:
        answer = client.get("/keys/", follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/login?next=%2Fkeys%2F")
        assert client.get("/keys/signin").status_code == 404  # no reference sign-in here
        client.get("/login?as=carol@example.com")
        person = Person(client, mailbox, prefix="/keys")
        assert "carol@example.com" in person.page.text
        assert 'href="/keys/new"' in person.page.text
        assert 'href="/keys/static/portal.css"' in person.page.text
        assert client.get("/keys/static/portal.js").status_code == 200
        secret = person.create()
        assert person.page.url.path == "/keys/new"
        person.post("/keys/1/saved", saved="on", do="activate")
        assert person.page.url.path == "/keys/keys/1/verify"
        person.post("/keys/1/verify", code=person.code())
        keys = _keys(person, service, "carol@example.com")
        assert [k.state for k in keys] == [State.ACTIVE]
        client.get("/login?as=dave@example.com")  # the host switches user: the portal follows
        assert "carol@example.com" not in client.get("/keys/").text
        assert secret not in client.get("/keys/").text


def test_the_host_login_page_gets_the_way_back(service: AsyncKeyService) -> None:
    """A person not signed in is sent to the host's login with the local path to come back to."""
    portal = build_portal(
        service=service,
        secret_key=SECRET_KEY,
        account_of=lambda _: None,
        login_url="/login?from=portal",
    )
    with TestClient(Starlette(routes=[Mount("/keys", app=portal)])) as client:
        answer = client.get("/keys/keys/1/edit?a=b", follow_redirects=False)
        assert answer.headers["location"] == (
            "/login?from=portal&next=%2Fkeys%2Fkeys%2F1%2Fedit%3Fa%3Db"
        )


@pytest.mark.parametrize("path", ["//evil.example/x", "/\\evil.example/x", "/a\x00b", "/a b", "x"])
def test_a_way_back_is_only_ever_a_local_path(path: str) -> None:
    """A path a browser would read as another site's address, or that is no path, is refused."""
    assert not local_path(path)
    assert local_path("/keys/1/edit?a=b")


def test_a_user_switch_in_the_host_makes_a_new_csrf_token(
    service: AsyncKeyService, mailbox: DevMailbox
) -> None:
    """When the host signs in another user, the old user's forms no longer post."""
    with TestClient(_host_app(service)) as client:
        client.get("/login?as=carol@example.com")
        carol = Person(client, mailbox, prefix="/keys")
        carol.get("/new")
        token = carol.csrf
        client.get("/login?as=dave@example.com")
        dave = Person(client, mailbox, prefix="/keys")
        assert "dave@example.com" in dave.get("/new").text
        assert dave.csrf != token
        answer = client.post("/keys/new", data={"csrf_token": token, **KEY_FORM})
        assert answer.status_code == 403
        assert "came from another site" in answer.text
        assert mailbox.messages == []


def test_portal_uses_only_public_modules() -> None:
    """The portal imports keyturn only through its public modules, as an embedder would."""
    public = {
        "keyturn",
        "keyturn.web.views",
        "keyturn.web.http_errors",
        "keyturn.wiring",
        "keyturn.service",
        "keyturn.ports",
        "keyturn.adapters.codes",
        "keyturn.api.asgi",  # MAX_BODY: the portal's bodies are bounded as the API's
        "keyturn.api.server",  # ServerLimits: and arrive within the same time
    }
    root = Path(__file__).parent.parent / "src" / "keyturn" / "portal"
    used: set[str] = set()
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("keyturn")
            ):
                used.add(node.module)
            if isinstance(node, ast.Import):
                used |= {a.name for a in node.names if a.name.startswith("keyturn")}
    outside = {m for m in used if not m.startswith("keyturn.portal")}
    assert outside <= public, outside - public
    assert "keyturn" in outside


#: A clean environment for `keyturn` processes: no notifier, a $KEYTURN_DB --dev must ignore.
_ENV: Final = {"PATH": "/usr/bin:/bin", "KEYTURN_DB": "postgresql://nowhere/x"}


@contextlib.contextmanager
def _serving(tmp_path: Path, *args: str) -> Iterator[tuple[str, list[str]]]:
    """``keyturn serve ARGS`` in a process on a free port: its URL, and its stderr lines after.

    The lines are there once the block is left (the server is stopped first).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "keyturn", "serve", *args, "--port", str(port)],
        cwd=tmp_path,
        env=_ENV | {"HOME": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    try:
        for _ in range(100):
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, lines
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        lines.extend(err.splitlines())


@pytest.mark.slow
def test_serve_dev_runs_the_portal_with_a_mailbox(tmp_path: Path) -> None:
    """`keyturn serve --dev` serves the API, the portal and its mailbox on the SQLite default."""
    with (
        _serving(tmp_path, "--dev") as (base, err),
        httpx.Client(base_url=base, follow_redirects=True) as client,
    ):
        page = client.get("/")
        assert page.url.path == "/portal/signin"
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        client.post("/portal/signin", data={"csrf_token": csrf.group(1), "email": EMAIL})
        mail = client.get("/portal/dev/mailbox").text
        code = re.search(r'<code class="code">(\d{6})</code>', mail)
        assert code is not None
        done = client.post(
            "/portal/signin/code", data={"csrf_token": csrf.group(1), "code": code.group(1)}
        )
        assert done.url.path == "/portal/"
        assert "You have no API keys yet." in done.text
        api = client.get("/api/v2/public/auth").json()
        assert api["error"]["data"]["param"] == "grant_type"
    assert (tmp_path / "keyturn.db").exists()
    assert any("/portal/dev/mailbox" in line for line in err)
    [sent] = [line for line in err if line.startswith(f"notify {EMAIL}:")]
    assert sent.startswith(f"notify {EMAIL}: Your sign-in code sent, valid until ")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::", "example.com"])  # noqa: S104
@pytest.mark.slow
def test_serve_dev_refuses_a_host_others_reach(tmp_path: Path, host: str) -> None:
    """`keyturn serve --dev` on an address others can reach is refused, in one line, exit 2."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "keyturn", "serve", "--dev", "--host", host, "--port", "1"],
        cwd=tmp_path,
        env=_ENV | {"HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,  # before the fix it served: this would time out
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("keyturn: invalid host: --dev shows every account's codes")
    assert "--expose-dev-mailbox" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no store, no key file: nothing started


@pytest.mark.slow
def test_serve_dev_on_another_host_needs_the_override_and_warns(tmp_path: Path) -> None:
    """With --expose-dev-mailbox, `--dev --host 0.0.0.0` serves, and warns at start."""
    with (
        _serving(tmp_path, "--dev", "--host", "0.0.0.0", "--expose-dev-mailbox") as (base, err),  # noqa: S104
        httpx.Client(base_url=base) as client,
    ):
        assert client.get("/portal/dev/mailbox").status_code == 200
    assert any(
        "warning: 0.0.0.0 is not a loopback address: anyone who reaches this server can read "
        "every account's codes" in line
        for line in err
    )


@pytest.mark.slow
def test_serve_without_a_notifier_says_nobody_can_sign_in(tmp_path: Path) -> None:
    """Without a notifier, the start says sign-in cannot work, and so does the sign-in page."""
    made = subprocess.run(  # noqa: S603 (keyturn serve needs a store: init makes it)
        [sys.executable, "-m", "keyturn", "--db", str(tmp_path / "k.db"), "init"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    with (
        _serving(tmp_path, "--db", str(tmp_path / "k.db")) as (base, err),
        httpx.Client(base_url=base, follow_redirects=True) as client,
    ):
        page = client.get("/")
        assert page.url.path == "/portal/signin"
        assert "Sign-in codes cannot be sent: this server has no way to send email." in page.text
        assert 'name="email"' not in page.text
    assert any("the portal's sign-in cannot send its codes" in line for line in err)


class _Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        body = message_from_bytes(envelope.content).get_payload(decode=True)
        self.messages.append((list(envelope.rcpt_tos), bytes(body).decode()))
        return "250 OK"

    def last_code(self) -> str:
        found = re.search(r"Your verification code is: (\d{6})", self.messages[-1][1])
        assert found is not None
        return found.group(1)


def test_with_smtp_the_codes_arrive_by_email(clock: ManualClock) -> None:
    """With an SMTP notifier, the sign-in and confirmation codes reach the address as email."""
    from aiosmtpd.controller import Controller  # noqa: PLC0415

    inbox = _Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = SmtpNotifier(host="127.0.0.1", port=port, security="none", sender="keys@x.example")
        service = build_async_service(
            store=AsyncStore(InMemoryKeyStore(), threaded=False),
            notifier=AsyncNotifierAdapter(smtp),
            master_key=b"m" * 32,
            clock=clock,
            policy=PORTAL_POLICY,
        )
        with TestClient(build_portal(service=service, secret_key=SECRET_KEY)) as client:
            person = Person(client, DevMailbox())
            person.post("/signin", email=EMAIL)
            assert inbox.messages[-1][0] == [EMAIL]
            person.post("/signin/code", code=inbox.last_code())
            assert person.page.url.path == "/"
            person.get("/new")
            person.submit('name="name"', **KEY_FORM)
            assert "Confirm the new API key" in person.page.text
            assert inbox.messages[-1][0] == [EMAIL]
            person.submit('name="code"', code=inbox.last_code())
            assert "Activate API Key" in person.page.text
            assert client.get("/dev/mailbox").status_code == 404
    finally:
        controller.stop()


@pytest.mark.parametrize(
    ("required", "chromium", "outcome"),
    [
        ("1", None, " errors in "),  # none on the PATH
        ("1", "no-chromium", " errors in "),  # KEYTURN_CHROMIUM names nothing
        ("", None, " skipped in "),
    ],
)
@pytest.mark.slow
def test_browser_tests_fail_without_a_browser_where_one_is_required(
    tmp_path: Path, required: str, chromium: str | None, outcome: str
) -> None:
    """With KEYTURN_REQUIRE_BROWSER=1 (CI) the browser tests fail without Chromium; else skip."""
    env = {k: v for k, v in os.environ.items() if k != "KEYTURN_CHROMIUM"}
    env |= {"KEYTURN_REQUIRE_BROWSER": required, "PATH": str(tmp_path)}
    if chromium:
        env["KEYTURN_CHROMIUM"] = str(tmp_path / chromium)
    browser_tests = Path(__file__).parent / "test_portal_browser.py"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(browser_tests)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert outcome in done.stdout, done.stdout[-2000:]
    assert " passed" not in done.stdout
    assert " failed" not in done.stdout  # every test failed in its setup: none ran
    assert done.returncode == (1 if required else 0)
    if required:
        assert "KEYTURN_REQUIRE_BROWSER=1, but no Chromium found" in done.stdout
