"""keyturn's default logger: it follows the application's setup and never prints by itself."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import structlog
from structlog.testing import capture_logs

from keyturn.testing import RecordingNotifier, make_service

_LIFECYCLE = """
from keyturn.testing import RecordingNotifier, make_service
notifier = RecordingNotifier()
service = make_service(notifier=notifier)
issued = service.create(owner="alice", name="k1", max_scope="account:read")
service.acknowledge_secret(issued.key.id, owner="alice")
service.request_activation(issued.key.id, owner="alice")
service.verify_code(issued.key.id, notifier.last_code(), owner="alice")
notifier.failing = True
service.disable(issued.key.id, owner="alice")   # its notice fails: a warning
"""


def _run(prelude: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our interpreter, our code)
        [sys.executable, "-c", prelude + _LIFECYCLE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


@pytest.mark.slow
def test_unconfigured_application_sees_nothing_on_stdout_and_only_warnings_on_stderr() -> None:
    """With no logging or structlog setup, INFO events print nowhere and warnings go to stderr."""
    done = _run("")
    assert done.stdout == ""
    assert "enabled_api_key" not in done.stderr
    assert "event=notification_failed" in done.stderr


@pytest.mark.slow
def test_stdlib_logging_setup_receives_the_events() -> None:
    """An application that configured only the standard library gets every event it asks for."""
    done = _run("import logging\nlogging.basicConfig(level=logging.INFO)\n")
    assert done.stdout == ""
    assert "INFO:keyturn:event=enabled_api_key key_id=1 owner=alice" in done.stderr
    assert "WARNING:keyturn:event=notification_failed" in done.stderr


def test_configured_structlog_receives_the_events() -> None:
    """Once the application configured structlog, events go through its configuration."""
    notifier = RecordingNotifier()
    service = make_service(notifier=notifier)
    with capture_logs() as logs:
        issued = service.create(owner="alice", name="k1", max_scope="account:read")
    assert issued.key.id == 1
    assert {"event": "new_api_key", "log_level": "info"}.items() <= logs[0].items()


def test_stdlib_levels_are_obeyed_in_process(caplog: pytest.LogCaptureFixture) -> None:
    """Events below the 'keyturn' logger's level are dropped; those at or above it are kept."""
    structlog.reset_defaults()
    service = make_service()
    with caplog.at_level(logging.WARNING, logger="keyturn"):
        service.create(owner="alice", name="k1", max_scope="account:read")
    assert caplog.records == []
    with caplog.at_level(logging.INFO, logger="keyturn"):
        service.create(owner="alice", name="k2", max_scope="account:read")
    assert {r.name for r in caplog.records} == {"keyturn"}
    assert caplog.records[0].getMessage().startswith("event=new_api_key key_id=2")


def test_logger_repr_is_short() -> None:
    """The default logger's repr names it, so a service's repr stays readable."""
    assert "<keyturn logger>" in repr(make_service())
