"""The portal in a real browser: every step of the seed's flow, walked in headless Chromium.

Playwright (from PyPI) drives Debian's Chromium (``apt-get install chromium``; ``.ci/run``
installs it), found at ``$KEYTURN_CHROMIUM`` or on the PATH. The portal runs in uvicorn on a
SQLite store, its service on a :class:`~keyturn.testing.ManualClock`; each page runs on
Playwright's paused clock. :func:`_tick` moves both together, so a countdown is checked to the
second against the server's own rule. One browser and one server serve the whole module; each
test signs in as its own account.

Screenshots of each dialog for the README are taken here: ``KEYTURN_UPDATE_SCREENSHOTS=1``
rewrites ``docs/portal/*.png``; otherwise the last test only checks that they exist.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from keyturn import Policy, State, wiring
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.adapters.to_async import AsyncStore
from keyturn.portal import PORTAL_POLICY, DevMailbox, build_portal, build_site
from keyturn.testing import ManualClock, RecordingNotifier, key_in_state

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

try:
    import uvicorn
    from playwright import sync_api as playwright_api
    from playwright.sync_api import expect
except ImportError as missing:  # pragma: no cover (the test extra brings both)
    MISSING = f"{missing.name} is not installed: pip install -e '.[test]'"
else:
    MISSING = ""
CHROMIUM = os.environ.get("KEYTURN_CHROMIUM") or shutil.which("chromium") or ""
if not MISSING and not os.access(CHROMIUM, os.X_OK):
    MISSING = (
        f"no Chromium found{f' at {CHROMIUM}' if CHROMIUM else ''}: apt-get install chromium, "
        "or set KEYTURN_CHROMIUM (.ci/run does)"
    )
#: CI sets KEYTURN_REQUIRE_BROWSER=1: there a missing browser fails these tests, never skips them.
REQUIRED = os.environ.get("KEYTURN_REQUIRE_BROWSER") == "1"
if MISSING and REQUIRED:

    @pytest.fixture(autouse=True, scope="module")  # before the browser and the server start
    def _browser_required() -> None:
        pytest.fail(f"KEYTURN_REQUIRE_BROWSER=1, but {MISSING}", pytrace=False)

    pytestmark = [pytest.mark.slow]  # drives Chromium
else:
    pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(MISSING), reason=MISSING)]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).parent.parent / "docs" / "portal"
UPDATE_SHOTS = os.environ.get("KEYTURN_UPDATE_SCREENSHOTS") == "1"
#: The dialogs the README shows, in the order of the flow.
SCREENSHOTS = (
    "sign-in",
    "sign-in-code",
    "mailbox",
    "create",
    "confirm-create",
    "secret",
    "two-factor",
    "code-expired",
    "success",
    "keys",
    "disable",
    "activate",
    "edit",
    "edit-warning",
    "remove",
    "history",
)
MASTER = b"b" * 32


class Site:
    """The portal served by uvicorn in a thread, on SQLite and a manual clock."""

    def __init__(self, db: Path) -> None:
        self.clock = ManualClock()
        self.mailbox = DevMailbox()
        self.db = db
        store = AsyncStore(SQLiteKeyStore(db, synchronous="OFF"))
        service = wiring.build_async_service(
            store=store,
            notifier=self.mailbox,
            master_key=MASTER,
            clock=self.clock,
            policy=PORTAL_POLICY,
        )
        portal = build_portal(
            service=service, secret_key=wiring.derive(MASTER, "portal"), mailbox=self.mailbox
        )
        api = wiring.build_api(service, MASTER)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{port}/portal"
        config = uvicorn.Config(build_site(api=api, portal=portal), port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server and wait for its thread."""
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def seed(self, owner: str, state: State, name: str = "desk_1") -> int:
        """A key of ``owner`` walked to ``state`` by a sync service on the same file."""
        service = wiring.build_service(
            store=SQLiteKeyStore(self.db, synchronous="OFF"),
            notifier=RecordingNotifier(),
            master_key=MASTER,
            clock=self.clock,
            policy=Policy(),  # no confirmations: this sets up, it tests nothing
        )
        try:
            return key_in_state(service, state, owner=owner, name=name).key.id
        finally:
            service.store.close()


@pytest.fixture(name="site", scope="module")
def _site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = Site(tmp_path_factory.mktemp("portal") / "keys.db")
    yield site
    site.stop()


@pytest.fixture(name="browser", scope="module")
def _browser() -> Iterator[Browser]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(name="page")
def _page(browser: Browser, site: Site) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.base[:-7])
    page = context.new_page()
    page.set_default_timeout(10_000)
    now = site.clock.now()
    page.clock.install(time=now - timedelta(seconds=10))  # it runs until paused: pause ahead
    page.clock.pause_at(now)
    yield page
    context.close()


def _tick(site: Site, page: Page, seconds: float) -> None:
    """Move the server's clock and the page's clock on together."""
    site.clock.advance(seconds)
    page.clock.run_for(int(seconds * 1000))


def _shot(page: Page, name: str) -> None:
    if name not in SCREENSHOTS:
        raise AssertionError(name)
    if UPDATE_SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS / f"{name}.png")


def _sign_in(page: Page, site: Site, email: str, *, shots: bool = False) -> None:
    page.goto(site.base + "/")
    if shots:
        _shot(page, "sign-in")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Send code").click()
    page.get_by_role("heading", name="Enter your code").wait_for()
    if shots:
        _shot(page, "sign-in-code")
    page.get_by_label("Verification code").fill(site.mailbox.last_code(email))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="API keys").wait_for()


def _enter_code(page: Page, code: str, button: str = "Activate") -> None:
    page.get_by_label("Verification code").fill(code)
    page.get_by_role("dialog").get_by_role("button", name=button, exact=True).click()


def _create_with_code(page: Page, site: Site) -> str:
    """Create bot_1 through the Create dialog and its code; the secret the next step shows."""
    page.get_by_role("link", name="Create API key").click()
    page.get_by_label("Name").fill("bot_1")
    page.get_by_label("Trade", exact=True).select_option("read_write")
    page.get_by_label("IP whitelist (optional)").fill("203.0.113.0/24")
    _shot(page, "create")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", name="Confirm the new API key").wait_for()
    _shot(page, "confirm-create")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        _enter_code(page, site.mailbox.last_code(), button="Confirm")
    assert answer.value.headers["cache-control"] == "no-store"
    return (
        page.get_by_role("dialog", name="Activate API Key")
        .get_by_label("API secret", exact=True)
        .input_value()
    )


def _secret_step(page: Page, secret: str) -> None:
    """The Activate API Key step: copy, then the checkbox opens ACTIVATE; click it."""
    dialog = page.get_by_role("dialog", name="Activate API Key")
    activate = dialog.get_by_role("button", name="Activate", exact=True)
    later = dialog.get_by_role("button", name="Activate later")
    expect(activate).to_be_disabled()
    expect(later).to_be_disabled()
    copy = dialog.get_by_role("button", name="Copy the API secret")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    _shot(page, "secret")
    dialog.get_by_label("I have saved the API secret").check()
    expect(activate).to_be_enabled()
    expect(later).to_be_enabled()
    activate.click()


def _two_factor(page: Page, site: Site) -> None:
    """The 2FA pop-up against both clocks: Resend at 1:59 and 2:00, expiry at 5:00, success."""
    verify = page.get_by_role("dialog", name="Two-factor authentication")
    verify.wait_for()
    resend = verify.get_by_role("button", name="Resend code")
    expect(resend).to_be_disabled()
    _shot(page, "two-factor")
    _tick(site, page, 119)
    expect(resend).to_be_disabled()
    expect(verify.get_by_text("available in 0:01")).to_be_visible()
    _tick(site, page, 1)
    expect(resend).to_be_enabled()
    _enter_code(page, "000000")
    alert = verify.get_by_role("alert")
    expect(alert).to_have_text("That code is not right. 4 tries left for this code.")
    code = site.mailbox.last_code()
    expired = verify.get_by_text("The code expired, request a new one.")
    tries = verify.get_by_text("4 tries left for this code.", exact=True)
    activate = verify.get_by_role("button", name="Activate", exact=True)
    _tick(site, page, 179)
    expect(expired).to_be_hidden()
    expect(tries).to_be_visible()
    expect(activate).to_be_enabled()
    _tick(site, page, 1)
    expect(expired).to_be_visible()
    expect(tries).to_be_hidden()
    expect(activate).to_be_disabled()
    page.get_by_label("Verification code").fill(code)
    with page.expect_navigation():  # sent anyway, as a page without the script would send it
        page.evaluate("document.getElementById('code-submit').form.requestSubmit()")
    expect(alert).to_have_text("The code expired, request a new one.")
    expect(expired).to_have_count(1)
    expect(tries).to_have_count(0)
    expect(activate).to_be_disabled()
    _shot(page, "code-expired")
    verify.get_by_role("button", name="Resend code").click()
    page.get_by_text("We sent a new code.").wait_for()
    assert site.mailbox.last_code() != code
    _enter_code(page, site.mailbox.last_code())


def _history(page: Page, name: str) -> None:
    """The key's history: newest first, every column inside the dialog, states in words."""
    page.get_by_role("link", name=f"History of {name}").click()
    history = page.get_by_role("dialog", name=f"History of {name}")
    events = history.locator("tbody code").all_inner_texts()
    assert events[:3] == ["changed_whitelist", "enabled_api_key", "activation_requested"]
    assert events[-1] == "new_api_key"
    box = history.bounding_box()
    assert box is not None
    for column in ("When", "By", "Detail"):  # every column is inside the dialog, none clipped
        cell = history.get_by_role("columnheader", name=column).bounding_box()
        assert cell is not None
        assert box["x"] <= cell["x"]
        assert cell["x"] + cell["width"] <= box["x"] + box["width"], column
    first = history.locator("tbody tr").first
    expect(first.get_by_role("cell", name="changed: IP whitelist")).to_be_visible()
    expect(first.get_by_role("cell", name="Deactivated", exact=True)).to_be_visible()
    _shot(page, "history")
    history.get_by_role("link", name="Back to API keys").click()


class _Lines(logging.Handler):
    """Keeps each record's message."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(name="access_log")
def _access_log() -> Iterator[list[str]]:
    """The access log of uvicorn at INFO during one test: a line per request answered."""
    logger, handler = logging.getLogger("uvicorn.access"), _Lines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_create_secret_and_activation_by_code(
    page: Page, site: Site, caplog: pytest.LogCaptureFixture, access_log: list[str]
) -> None:
    """Sign in, create with a code, see the secret once, then activate through the 2FA pop-up.

    Resend is disabled at 1:59 and enabled at 2:00 after the code; at 5:00 the code is refused
    as expired; a fresh code shows the success pop-up and the list shows the key active. The
    secret is in no later page, URL or log line (keyturn's or uvicorn's access log), nor in
    the secret page gone back to; no code is in a URL or a log line either.
    """
    caplog.set_level(logging.DEBUG)
    email = "ann@example.com"
    _sign_in(page, site, email, shots=True)
    mail = page.context.new_page()
    mail.goto(site.base + "/dev/mailbox")
    assert mail.get_by_role("cell", name=site.mailbox.last_code(email)).count() == 1
    _shot(mail, "mailbox")
    mail.close()

    secret = _create_with_code(page, site)
    assert len(secret) >= 40
    secret_entry = page.evaluate("history.length") - 1  # where the back button finds it
    _secret_step(page, secret)
    _two_factor(page, site)

    success = page.get_by_role("dialog", name="API key activated")
    expect(success.get_by_text("API key 'bot_1' is activated.")).to_be_visible()
    _shot(page, "success")
    success.get_by_role("link", name="OK").click()
    row = page.get_by_role("row").filter(has_text="bot_1")
    expect(row.get_by_text("Active", exact=True)).to_be_visible()
    expect(row.get_by_role("link", name="Disable bot_1")).to_be_visible()
    _shot(page, "keys")
    assert "event=new_api_key" in caplog.text  # the server's log was captured
    assert any('"POST /portal/new HTTP/1.1" 200' in line for line in access_log)
    codes = [m.code for m in site.mailbox.messages if m.owner == email and m.code]
    assert len(codes) == 4  # sign-in, Create, activation and its resend
    access = "\n".join(access_log)
    for shown in (page.content(), page.url, caplog.text, access):
        assert secret not in shown
    for code in codes:
        assert code not in caplog.text
        assert code not in access
    back = secret_entry - (page.evaluate("history.length") - 1)
    # Back to the secret page: with no-store, Chromium keeps no copy to show and will not send
    # the Create again by itself; it asks to (ERR_CACHE_MISS, "Confirm Form Resubmission").
    with pytest.raises(playwright_api.Error, match="ERR_CACHE_MISS"), page.expect_navigation():
        page.evaluate(f"history.go({back})")
    page.wait_for_url("chrome-error://**")  # Chromium's own page asks to send the form again
    page.wait_for_load_state()
    assert secret not in page.content()
    with page.expect_navigation():
        page.reload()  # the person confirms: the Create is sent again
    assert page.url == site.base + "/new"
    expect(page.get_by_role("dialog", name="API key created")).to_be_visible()
    expect(page.get_by_text("was created already, by this form")).to_be_visible()
    assert secret not in page.content()
    expect(page.get_by_role("row").filter(has_text="bot_1")).to_have_count(1)


def test_deactivate_activate_edit_remove_and_history(page: Page, site: Site) -> None:
    """An active key is deactivated, activated again from its pop-up, edited, removed, audited."""
    email = "ben@example.com"
    key_id = site.seed(email, State.ACTIVE, name="desk_1")
    _sign_in(page, site, email)

    page.get_by_role("link", name="Disable desk_1").click()
    _shot(page, "disable")
    page.get_by_role("button", name="Deactivate").click()
    page.get_by_role("link", name="OK").click()
    expect(
        page.get_by_role("row").filter(has_text="desk_1").get_by_text("Deactivated")
    ).to_be_visible()

    _tick(site, page, 120)  # the seeded code was sent at the clock's time
    page.get_by_role("link", name="Activate desk_1").click()
    popup = page.get_by_role("dialog", name="Activate API key")
    expect(popup.get_by_text("account: read, trade: read write")).to_be_visible()
    _shot(page, "activate")
    popup.get_by_role("button", name="Activate").click()
    _enter_code(page, site.mailbox.last_code())
    page.get_by_role("dialog", name="API key activated").get_by_role("link", name="OK").click()

    page.get_by_role("link", name="Edit desk_1").click()
    page.get_by_label("IP whitelist (optional)").fill("198.51.100.7")
    _shot(page, "edit")
    page.get_by_role("button", name="Save").click()
    warning = page.get_by_role("dialog", name="The key will be deactivated")
    expect(warning.get_by_text("will be deactivated after changes")).to_be_visible()
    _shot(page, "edit-warning")
    warning.get_by_role("button", name="Save and deactivate").click()
    _enter_code(page, site.mailbox.last_code(), button="Confirm")
    expect(page.get_by_text("the key was deactivated")).to_be_visible()
    page.get_by_role("link", name="OK").click()
    row = page.get_by_role("row").filter(has_text="desk_1")
    expect(row.get_by_text("198.51.100.7/32")).to_be_visible()
    expect(row.get_by_text("Deactivated")).to_be_visible()

    _history(page, "desk_1")
    page.get_by_role("link", name="Remove desk_1").click()
    _shot(page, "remove")
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    _enter_code(page, site.mailbox.last_code(), button="Confirm")
    expect(page.get_by_text("API key 'desk_1' was removed.")).to_be_visible()
    page.get_by_role("link", name="OK").click()
    expect(page.get_by_text("You have no API keys yet.")).to_be_visible()
    assert key_id > 0


#: The name a person hears for the focused element: its label, its aria-label, or its text.
FOCUSED_NAME = """() => { const e = document.activeElement;
    return ((e.labels && e.labels[0] && e.labels[0].textContent)
        || e.getAttribute('aria-label') || e.textContent || '').trim(); }"""
#: Whether focus left the open dialog for the page behind it (the body: the browser's controls).
BEHIND = """() => { const open = document.querySelector('dialog[open]');
    return open !== null && !open.contains(document.activeElement)
        && document.activeElement !== document.body; }"""


def _tab_to(page: Page, name: str) -> None:
    """Press Tab until the element named ``name`` has focus, never leaving an open dialog."""
    page.wait_for_load_state()  # the page's script has opened its dialog and placed focus
    for _ in range(40):
        page.keyboard.press("Tab")
        assert not page.evaluate(BEHIND)  # the page behind a modal dialog is inert
        if page.evaluate(FOCUSED_NAME) == name:
            return
    msg = f"Tab never reached {name!r}"
    raise AssertionError(msg)


def _type_and_enter(page: Page, text: str) -> None:
    page.wait_for_load_state()  # keys typed before the script placed focus would be lost
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def _sign_in_by_keyboard(page: Page, site: Site, email: str) -> None:
    page.goto(site.base + "/")
    expect(page.get_by_label("Email address")).to_be_focused()
    _type_and_enter(page, email)
    page.get_by_role("heading", name="Enter your code").wait_for()
    _type_and_enter(page, site.mailbox.last_code(email))
    page.get_by_role("heading", name="API keys").wait_for()


def _confirm_by_keyboard(page: Page, site: Site, email: str) -> None:
    """The code dialog of a confirmation: the code field has focus; type the code, Enter."""
    confirm = page.get_by_role("dialog").filter(has=page.get_by_label("Verification code"))
    expect(confirm.get_by_label("Verification code")).to_be_focused()
    _type_and_enter(page, site.mailbox.last_code(email))


def _ok_by_keyboard(page: Page, text: str) -> None:
    """The pop-up after a step says ``text``; its OK has focus: Enter closes it."""
    expect(page.get_by_role("dialog").get_by_text(text)).to_be_visible()
    expect(page.get_by_role("link", name="OK")).to_be_focused()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="API keys").wait_for()
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_keyboard_only_from_create_to_remove(page: Page, site: Site) -> None:
    """Create, its code, the secret step, the two-factor pop-up, Edit and Remove by keyboard."""
    email = "eve@example.com"
    _sign_in_by_keyboard(page, site, email)
    _tab_to(page, "Create API key")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name")).to_be_focused()
    _type_and_enter(page, "kb_2")
    _confirm_by_keyboard(page, site, email)
    page.get_by_role("dialog", name="Activate API Key").wait_for()
    _tab_to(page, "I have saved the API secret")
    page.keyboard.press("Space")
    _tab_to(page, "Activate")
    page.keyboard.press("Enter")
    page.get_by_role("dialog", name="Two-factor authentication").wait_for()
    _confirm_by_keyboard(page, site, email)
    _ok_by_keyboard(page, "API key 'kb_2' is activated.")

    _tab_to(page, "Edit kb_2")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name")).to_be_focused()
    _tab_to(page, "IP whitelist (optional)")
    _type_and_enter(page, "198.51.100.7")
    warning = page.get_by_role("dialog", name="The key will be deactivated")
    expect(warning.get_by_role("button", name="Save and deactivate")).to_be_focused()
    page.keyboard.press("Enter")
    _confirm_by_keyboard(page, site, email)
    _ok_by_keyboard(page, "the key was deactivated")
    row = page.get_by_role("row").filter(has_text="kb_2")
    expect(row.get_by_text("198.51.100.7/32")).to_be_visible()

    _tab_to(page, "Remove kb_2")
    page.keyboard.press("Enter")
    page.get_by_role("dialog", name="Remove API key").wait_for()
    _tab_to(page, "Remove")
    page.keyboard.press("Enter")
    _confirm_by_keyboard(page, site, email)
    _ok_by_keyboard(page, "API key 'kb_2' was removed.")
    expect(page.get_by_text("You have no API keys yet.")).to_be_visible()


def test_keyboard_only(page: Page, site: Site) -> None:
    """The dialogs work from the keyboard: focus starts inside, Tab never reaches the page behind.

    Escape on the two-factor pop-up is ACTIVATE LATER: the key goes back to not activated.
    """
    email = "cat@example.com"
    site.seed(email, State.CREATED, name="kb_1")
    _sign_in_by_keyboard(page, site, email)

    _tab_to(page, "Activate kb_1")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Activate API key")
    dialog.wait_for()
    seen = set()
    for _ in range(8):
        page.keyboard.press("Tab")
        assert not page.evaluate(BEHIND)  # the page behind a modal dialog is inert
        seen.add(page.evaluate("document.activeElement.textContent.trim()"))
    assert {"Activate later", "×"} <= seen  # Activate waits for the checkbox
    checkbox = dialog.get_by_label("I have saved the API secret")
    checkbox.focus()
    page.keyboard.press("Space")
    expect(checkbox).to_be_checked()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Activate"
    page.keyboard.press("Enter")

    verify = page.get_by_role("dialog", name="Two-factor authentication")
    verify.wait_for()
    expect(verify.get_by_label("Verification code")).to_be_focused()
    page.keyboard.press("Escape")
    page.get_by_role("heading", name="API keys").wait_for()
    row = page.get_by_role("row").filter(has_text="kb_1")
    expect(row.get_by_text("Not activated")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)


def test_every_field_has_a_label(page: Page, site: Site) -> None:
    """Every visible input and select of every dialog is labelled."""
    email = "dan@example.com"
    created = site.seed(email, State.CREATED, name="lab_1")
    active = site.seed(email, State.ACTIVE, name="lab_2")
    page.goto(site.base + "/")
    unlabelled = """() => [...document.querySelectorAll('input:not([type=hidden]), select')]
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
        .map(e => e.outerHTML)"""
    assert page.evaluate(unlabelled) == []
    _sign_in(page, site, email)
    _tick(site, page, 120)
    for path in (
        "/new",
        f"/keys/{created}/activate",
        f"/keys/{active}/edit",
        f"/keys/{active}/disable",
    ):
        page.goto(site.base + path)
        assert page.evaluate(unlabelled) == [], path
    page.goto(site.base + f"/keys/{created}/activate")
    page.get_by_label("I have saved the API secret").check()
    page.get_by_role("dialog").get_by_role("button", name="Activate").click()
    expect(page.get_by_label("Verification code")).to_be_visible()
    assert page.evaluate(unlabelled) == []


def test_screenshots_exist() -> None:
    """The README's screenshot of each dialog is committed (KEYTURN_UPDATE_SCREENSHOTS=1 makes them)."""
    missing = [n for n in SCREENSHOTS if not (SHOTS / f"{n}.png").is_file()]
    assert missing == []
    sizes: dict[str, Any] = {n: (SHOTS / f"{n}.png").stat().st_size for n in SCREENSHOTS}
    assert max(sizes.values()) < 200_000, sizes
