"""The SMTP notifier against a real SMTP server on loopback (aiosmtpd, started here)."""

from __future__ import annotations

import socket
from datetime import timedelta
from email import message_from_bytes
from typing import TYPE_CHECKING, Any

import pytest
from aiosmtpd.controller import Controller

from keyturn import InvalidInput, KeyService, State
from keyturn.adapters.smtp import MessageTemplate, SmtpNotifier
from keyturn.testing import ManualClock, make_service

if TYPE_CHECKING:
    from collections.abc import Iterator
    from email.message import Message


class _Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(name="port")
def _port() -> int:
    return _free_port()


def _server(port: int, inbox: _Inbox) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


@pytest.fixture(name="inbox")
def _inbox(port: int) -> Iterator[_Inbox]:
    inbox = _Inbox()
    controller = _server(port, inbox)
    yield inbox
    controller.stop()


def _notifier(port: int, **kwargs: Any) -> SmtpNotifier:
    return SmtpNotifier(
        host="127.0.0.1", port=port, security="none", sender="keys@portal.example", **kwargs
    )


def test_code_arrives_with_recipient_subject_and_code(inbox: _Inbox, port: int) -> None:
    """The activation email reaches the owner's address with the subject and the code."""
    service = make_service(notifier=_notifier(port))
    owner = "alice@example.com"
    issued = service.create(owner=owner, name="bot", max_scope="account:read")
    service.acknowledge_secret(issued.key.id, owner=owner)
    service.request_activation(issued.key.id, owner=owner)
    rcpts, msg = inbox.messages[-1]
    assert rcpts == [owner]
    assert msg["To"] == owner
    assert msg["Subject"] == "Your code to activate API key 'bot'"
    body = msg.get_payload(decode=True)
    assert isinstance(body, bytes)
    code = body.decode().split("Your verification code is: ")[1][:6]
    assert service.verify_code(issued.key.id, code, owner=owner).state is State.ACTIVE
    assert inbox.messages[-1][1]["Subject"] == "API key 'bot' was activated"


def test_templates_are_replaceable(inbox: _Inbox, port: int) -> None:
    """A portal's own template is used for the subject and body."""
    notifier = _notifier(
        port,
        code_template=MessageTemplate(
            subject="[Portal] code for {key_name}", body="Code {code}, {minutes} minutes."
        ),
    )
    service = make_service(notifier=notifier)
    _pending(service, "o@example.com")
    msg = inbox.messages[-1][1]
    assert msg["Subject"] == "[Portal] code for k1"
    assert "minutes." in str(msg.get_payload())
    assert "Code 1" in str(msg.get_payload())


def test_outage_keeps_the_code_pending_until_the_server_is_back(port: int) -> None:
    """With the SMTP server down the code stays in the outbox; once it is up the relay sends it."""
    clock = ManualClock()
    service = make_service(notifier=_notifier(port, timeout=2), clock=clock)
    _pending(service, "o@example.com")
    store: Any = service.store
    assert store.pending_notifications() == 2
    inbox = _Inbox()
    controller = _server(port, inbox)
    try:
        clock.advance(timedelta(seconds=1))
        report = service.relay.run_once()
        assert report.delivered == 2
        assert store.pending_notifications() == 0
        subjects = [m["Subject"] for _, m in inbox.messages]
        assert "Your code to activate API key 'k1'" in subjects
    finally:
        controller.stop()


def test_owner_must_be_an_address_by_default(port: int) -> None:
    """An owner id that is not an email address needs address_of; the notifier says so."""
    with pytest.raises(InvalidInput, match="address_of"):
        _notifier(port).deliver(_event("acct-17"))


def test_password_is_hidden_from_repr() -> None:
    """The SMTP password does not appear in the notifier's repr."""
    notifier = SmtpNotifier(host="h", sender="s@x", username="u", password="hunter2")
    assert "hunter2" not in repr(notifier)


def _pending(service: KeyService, owner: str) -> int:
    """A new key of ``owner``, acknowledged, with a code requested."""
    key_id = service.create(owner=owner, name="k1", max_scope="account:read").key.id
    service.acknowledge_secret(key_id, owner=owner)
    service.request_activation(key_id, owner=owner)
    return key_id


def _event(owner: str) -> Any:
    from datetime import UTC, datetime  # noqa: PLC0415

    from keyturn.core.records import Notification, NotificationKind  # noqa: PLC0415

    return Notification(
        id="n1",
        owner=owner,
        key_id=1,
        key_name="k",
        kind=NotificationKind.KEY_EVENT,
        subject="API key 'k' was disabled",
        created_at=datetime.now(UTC),
    )


@pytest.mark.slow
def test_cli_sends_codes_by_smtp(inbox: _Inbox, port: int, tmp_path: Any) -> None:
    """Keyturn --notifier smtp, configured by KEYTURN_SMTP_*, emails the code to the owner."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
    env |= {
        "KEYTURN_NOTIFIER": "smtp",
        "KEYTURN_SMTP_HOST": "127.0.0.1",
        "KEYTURN_SMTP_PORT": str(port),
        "KEYTURN_SMTP_SENDER": "keys@portal.example",
        "KEYTURN_SMTP_SECURITY": "none",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603
            [sys.executable, "-m", "keyturn", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    assert (
        run(
            "create",
            "--init",
            "--owner",
            "ops@example.com",
            "--name",
            "k",
            "--scope",
            "account:read",
        ).returncode
        == 0
    )
    assert run("ack", "1").returncode == 0
    assert run("activate", "1").returncode == 0
    rcpts, msg = inbox.messages[-1]
    assert rcpts == ["ops@example.com"]
    assert "Your verification code is: " in str(msg.get_payload())
    bad = run("--notifier", "smtp", "list")
    assert bad.returncode == 0
    env.pop("KEYTURN_SMTP_HOST")
    missing = run("ack", "1")
    assert missing.returncode == 2
    assert "KEYTURN_SMTP_HOST" in missing.stderr
