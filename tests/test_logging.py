"""keyturn's log events survive any structlog set-up, the stdlib bridge included.

The standard library reserves the attributes of a ``LogRecord`` (``name``, ``module``,
``message``...): with structlog's ``render_to_log_kwargs`` every event field becomes an ``extra``
of the record, and a reserved one makes ``logging`` raise after the change was committed.
"""

from __future__ import annotations

import ast
import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import structlog

import keyturn
from keyturn import (
    AuthenticationFailed,
    CodeMismatch,
    Confirmation,
    ConfirmationRequired,
    Policy,
    SecurityAnswer,
    SecurityKeyRefused,
    SecurityKeyRequired,
)
from keyturn.adapters.notifiers import LoggingNotifier, RecordingNotifier
from keyturn.adapters.totp import TotpVerifier
from keyturn.core.lifecycle import Action
from keyturn.testing import ManualClock, make_service

if TYPE_CHECKING:
    from keyturn.core.records import Notification

SOURCE = Path(keyturn.__file__).parent
#: Fields a ``LogRecord`` has, or ``logging`` adds: an ``extra`` may not use them.
RESERVED = frozenset(vars(logging.LogRecord("n", 0, "p", 0, "m", None, None))) | {
    "message",
    "asctime",
}
#: What ``render_to_log_kwargs`` hands to ``logging`` as keyword arguments, not as extras.
LOGGING_KWARGS = frozenset({"exc_info", "stack_info", "stacklevel"})
LOG_METHODS = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "fatal", "msg", "log"}
    | {"bind", "new"}
)


def stdlib_bridge() -> None:
    """The documented structlog set-up for rendering through ``logging`` with extras."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class _Outbound:
    """Records and logs each notification (as in development); can be told to fail."""

    def __init__(self) -> None:
        self.recorder = RecordingNotifier()
        self.logging = LoggingNotifier()

    def deliver(self, notification: Notification) -> None:
        self.recorder.deliver(notification)
        self.logging.deliver(notification)


def test_whole_lifecycle_logs_through_the_stdlib_bridge(  # noqa: PLR0915 (one scripted lifecycle)
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every action, relay outcome and refusal logs through the stdlib bridge without raising."""
    stdlib_bridge()
    caplog.set_level(logging.DEBUG)
    clock = ManualClock()
    out = _Outbound()
    service = make_service(
        clock=clock, notifier=out, policy=Policy(confirm=frozenset({Action.REMOVE}), max_sends=20)
    )
    codes = out.recorder
    issued = service.create(owner="alice", name="k1", max_scope="account:read")
    key_id, secret = issued.key.id, issued.client_secret
    assert secret is not None
    service.acknowledge_secret(key_id, owner="alice")
    service.request_activation(key_id, owner="alice")
    with pytest.raises(CodeMismatch):
        service.verify_code(key_id, "000000", owner="alice")
    clock.advance(timedelta(minutes=2))
    service.resend_code(key_id, owner="alice")
    service.verify_code(key_id, codes.last_code(key_id), owner="alice")
    service.authenticate(issued.key.client_id, secret, source_ip="203.0.113.7")
    with pytest.raises(AuthenticationFailed):
        service.authenticate(issued.key.client_id, "wrong", source_ip="203.0.113.7")
    service.disable(key_id, owner="alice")
    service.enable(key_id, owner="alice")
    service.cancel_activation(key_id, owner="alice")
    service.enable(key_id, owner="alice")
    service.verify_code(key_id, codes.last_code(key_id), owner="alice")
    service.edit(key_id, owner="alice", name="k2", max_scope="account:read trade:read")
    service.enable(key_id, owner="alice")
    service.verify_code(key_id, codes.last_code(key_id), owner="alice")
    service.reset_secret(key_id, owner="alice")
    service.unlock_activation(key_id, actor="operator")
    service.reseal_secrets()

    out.recorder.failing = True
    service.disable(key_id, owner="alice")
    clock.advance(timedelta(seconds=2))
    service.relay.run_once()
    out.recorder.failing = False
    clock.advance(timedelta(seconds=5))
    assert service.relay.run_once().delivered == 1
    out.recorder.failing = True
    service.enable(key_id, owner="alice")
    out.recorder.failing = False
    clock.advance(timedelta(minutes=6))
    assert service.relay.run_once().expired == 1

    with pytest.raises(ConfirmationRequired) as asked:
        service.remove(key_id, owner="alice")
    with pytest.raises(CodeMismatch):
        service.remove(
            key_id, owner="alice", confirmation=Confirmation(asked.value.challenge_id, "000000")
        )
    proof = Confirmation(asked.value.challenge_id, codes.last_code())
    service.remove(key_id, owner="alice", confirmation=proof)

    enrolled = service.enroll_security_key("alice", name="phone")
    code = TotpVerifier().code_at(enrolled.secret, clock.now())

    def answer() -> None:
        with pytest.raises(SecurityKeyRequired) as challenged:
            service.authorize_call(owner="alice", call="c", params={})
        reply = SecurityAnswer(challenged.value.challenge, code)
        service.authorize_call(owner="alice", call="c", params={}, answer=reply)

    answer()
    with pytest.raises(SecurityKeyRefused):
        answer()
    service.remove_security_key("alice")

    events = {r.msg for r in caplog.records if r.name == "keyturn"}
    assert {
        "new_api_key",
        "enabled_api_key",
        "authentication_failed",
        "notification_sent",
        "notification_delivered",
        "notification_failed",
        "notification_expired",
        "confirmation_requested",
        "confirmation_rejected",
        "removed_api_key",
        "secrets_resealed",
        "security_key_enrolled",
        "security_key_accepted",
        "security_key_rejected",
        "security_key_removed",
    } <= events
    enrolled_record = next(r for r in caplog.records if r.msg == "security_key_enrolled")
    assert vars(enrolled_record)["key_name"] == "phone"


def _log_calls() -> list[tuple[str, int, list[str]]]:
    """Every call on a logger in keyturn's source: file, line, and its keyword names."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = ast.unparse(node.func.value)
            if node.func.attr in LOG_METHODS and "log" in receiver.lower():
                names = [k.arg if k.arg is not None else "**" for k in node.keywords]
                found.append((str(path.relative_to(SOURCE)), node.lineno, names))
    return found


def test_no_log_call_uses_a_reserved_field() -> None:
    """No structlog call in keyturn passes a keyword that is a LogRecord attribute (or a ** splat)."""
    calls = _log_calls()
    assert len(calls) >= 15
    assert any(path == "service/_async/security.py" for path, _, _ in calls)
    bad = [
        (path, line, name)
        for path, line, names in calls
        for name in names
        if name == "**" or (name in RESERVED and name not in LOGGING_KWARGS)
    ]
    assert bad == []


def test_reserved_names_are_the_ones_logging_refuses() -> None:
    """The reserved set is exactly what makes logging refuse an extra (so the scan checks the real rule)."""
    logger = logging.getLogger("keyturn.test_reserved")
    for name in ("name", "module", "message", "lineno", "process"):
        assert name in RESERVED
        with pytest.raises(KeyError):
            logger.makeRecord("n", logging.INFO, "p", 1, "m", (), None, extra={name: 1})
    logger.makeRecord("n", logging.INFO, "p", 1, "m", (), None, extra={"key_name": 1})
