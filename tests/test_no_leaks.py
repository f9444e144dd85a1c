"""No secret and no code ever reaches a log line, an exception message or a repr."""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import structlog
from structlog.testing import capture_logs

from keyturn import (
    Confirmation,
    ConfirmationRequired,
    KeyturnError,
    Policy,
    SecurityAnswer,
    SecurityKeyRequired,
)
from keyturn.adapters.codes import HmacCodeVerifier
from keyturn.adapters.memory import InMemoryKeyStore
from keyturn.adapters.notifiers import LoggingNotifier, RecordingNotifier
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.adapters.totp import TotpVerifier
from keyturn.core.lifecycle import Action
from keyturn.testing import KnownCodeVerifier, ManualClock, make_service

if TYPE_CHECKING:
    from collections.abc import Callable

    from keyturn.ports import KeyStore


class _Tee:
    """A notifier that records (so the test learns the codes) and logs (as in development)."""

    def __init__(self) -> None:
        self.recorder = RecordingNotifier()
        self.logger = LoggingNotifier()

    def deliver(self, notification: Any) -> None:
        self.recorder.deliver(notification)
        self.logger.deliver(notification)


def test_full_lifecycle_leaks_nothing(  # noqa: PLR0915 (one long scripted lifecycle)
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Drive every action, wrong codes and refusals included; no secret or code shows anywhere."""
    caplog.set_level(logging.DEBUG)
    clock = ManualClock()
    tee = _Tee()
    policy = Policy(confirm=frozenset({Action.CREATE, Action.EDIT, Action.REMOVE}))
    service = make_service(
        clock=clock, notifier=tee, verifier=HmacCodeVerifier.generate(length=8), policy=policy
    )
    seen: list[str] = []

    def run(call: Callable[[], Any]) -> Any:
        try:
            result = call()
        except KeyturnError as e:
            seen.extend([str(e), repr(e), repr(vars(e)), repr(e.args)])
            return e
        seen.append(repr(result))
        return result

    secrets: list[str] = []
    with capture_logs() as logs:
        challenge = run(lambda: service.create(owner="alice", name="k1", max_scope="account:read"))
        assert isinstance(challenge, ConfirmationRequired)
        proof = Confirmation(challenge.challenge_id, tee.recorder.last_code())
        seen.append(repr(proof))
        issued = run(
            lambda: service.create(
                owner="alice", name="k1", max_scope="account:read", confirmation=proof
            )
        )
        secrets.append(issued.client_secret)
        key_id = issued.key.id
        run(lambda: service.request_activation(key_id, owner="alice"))
        run(lambda: service.acknowledge_secret(key_id, owner="alice"))
        run(lambda: service.request_activation(key_id, owner="alice"))
        run(lambda: service.verify_code(key_id, "00000000", owner="alice"))
        run(lambda: service.resend_code(key_id, owner="alice"))
        clock.advance(timedelta(minutes=2))
        run(lambda: service.resend_code(key_id, owner="alice"))
        run(lambda: service.verify_code(key_id, tee.recorder.last_code(key_id), owner="alice"))
        run(lambda: service.authenticate(issued.key.client_id, "wrong", source_ip="::1"))
        run(lambda: service.authenticate(issued.key.client_id, secrets[0], source_ip="::1"))
        fresh = run(lambda: service.reset_secret(key_id, owner="alice"))
        secrets.append(fresh.client_secret)
        run(lambda: service.authenticate(issued.key.client_id, secrets[0], source_ip="::1"))
        run(lambda: service.disable(key_id, owner="alice"))
        run(lambda: service.enable(key_id, owner="alice"))
        run(lambda: service.verify_code(key_id, tee.recorder.last_code(key_id), owner="alice"))
        edit = run(lambda: service.edit(key_id, owner="alice", name="k2"))
        run(
            lambda: service.edit(
                key_id,
                owner="alice",
                name="k2",
                confirmation=Confirmation(edit.challenge_id, "12345678"),
            )
        )
        gone = run(lambda: service.remove(key_id, owner="alice"))
        run(
            lambda: service.remove(
                key_id,
                owner="alice",
                confirmation=Confirmation(gone.challenge_id, tee.recorder.last_code()),
            )
        )
        seen.extend(repr(h) for h in service.history(key_id, owner="alice"))
        seen.append(repr(service))
        seen.extend(repr(n) for n in tee.recorder.sent)
    out = capsys.readouterr()
    blob = "\n".join([*seen, *map(repr, logs), out.out, out.err, caplog.text])
    codes = tee.recorder.codes()
    assert len(codes) >= 6
    assert len(secrets) == 2
    assert any(e["event"] == "notification_sent" for e in logs)
    for value in [*codes, *secrets]:
        assert value not in blob


def test_console_rendering_leaks_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """With structlog configured to print to the console, a lifecycle prints no secret or code."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory())
    recorder = RecordingNotifier()
    service = make_service(notifier=recorder, verifier=HmacCodeVerifier.generate(length=8))
    issued = service.create(owner="alice", name="k1", max_scope="account:read")
    service.acknowledge_secret(issued.key.id, owner="alice")
    service.request_activation(issued.key.id, owner="alice")
    service.verify_code(issued.key.id, recorder.last_code(), owner="alice")
    out = capsys.readouterr().out
    assert "enabled_api_key" in out
    assert recorder.last_code() not in out
    assert issued.client_secret is not None
    assert issued.client_secret not in out


def test_fakes_hide_codes_in_repr() -> None:
    """The testing fakes' reprs show no code they issued or recorded."""
    from keyturn.testing import KnownCodeVerifier  # noqa: PLC0415

    verifier = KnownCodeVerifier.of(["314159"])
    recorder = RecordingNotifier()
    service = make_service(verifier=verifier, notifier=recorder)
    issued = service.create(owner="alice", name="k", max_scope="account:read")
    service.acknowledge_secret(issued.key.id, owner="alice")
    service.request_activation(issued.key.id, owner="alice")
    assert recorder.last_code() == "314159"
    assert "314159" not in repr(verifier) + repr(recorder) + repr(service)


def test_security_keys_leak_nothing(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Enroll, challenge, answer wrong, right and twice, lock: no TOTP secret or code shows."""
    caplog.set_level(logging.DEBUG)
    clock = ManualClock()
    service = make_service(clock=clock, policy=Policy(max_consecutive_failures=2))
    totp = TotpVerifier()
    seen: list[str] = []
    challenges: list[str] = []

    def attempt(code: str | None) -> None:
        try:
            service.authorize_call(owner="alice", call="c", params={"id": 1})
        except SecurityKeyRequired as e:
            seen.extend([str(e), repr(e)])
            challenges.append(e.challenge)
        except KeyturnError as e:  # locked
            seen.extend([str(e), repr(e), repr(vars(e))])
            return
        if code is None:
            return
        try:
            service.authorize_call(
                owner="alice",
                call="c",
                params={"id": 1},
                answer=SecurityAnswer(challenges[-1], code),
            )
        except KeyturnError as e:
            seen.extend([str(e), repr(e), repr(vars(e)), repr(e.args)])

    with capture_logs() as logs:
        enrolled = service.enroll_security_key("alice")
        seen.extend([repr(enrolled), repr(service.security_key("alice"))])
        right = totp.code_at(enrolled.secret, clock.now())
        wrong = str((int(right) + 500_000) % 1_000_000).zfill(6)
        attempt(right)
        attempt(right)
        attempt(wrong)
        attempt(wrong)
        attempt(None)
        seen.append(repr(service))
    out, err = capsys.readouterr()
    logged = "\n".join([out, err, caplog.text, repr(logs)])
    shown = "\n".join(seen)
    assert "locked" in shown
    events = {entry["event"] for entry in logs}
    assert {"security_key_enrolled", "security_key_accepted", "security_key_rejected"} <= events
    for value in (enrolled.secret, right, wrong, enrolled.uri):
        assert value not in logged
        assert value not in shown
    for challenge in challenges:
        assert challenge not in logged


def stored_text(store: KeyStore) -> str:
    """Everything a store holds, as text: every row of every table (and a SQLite file's bytes)."""
    if isinstance(store, InMemoryKeyStore):
        return repr([attrs.asdict(e) for e in store._undelivered.values()])
    if isinstance(store, SQLiteKeyStore):
        path = Path(store.path)
        files = [path, path.with_name(path.name + "-wal")]
        text = b"".join(f.read_bytes() for f in files if f.exists()).decode("latin-1")
        with sqlite3.connect(path) as db:
            tables = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            rows = [db.execute(f"SELECT * FROM {t}").fetchall() for (t,) in tables]  # noqa: S608
        return text + repr(rows)
    from psycopg import sql  # noqa: PLC0415

    with store.pool.connection() as conn, conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (store.schema,),  # type: ignore[attr-defined]
        )
        tables = cur.fetchall()
        assert tables
        rows = []
        for (table,) in tables:
            cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
            rows.append(cur.fetchall())
    return repr(rows)


def test_undelivered_codes_are_sealed_in_every_store(store: KeyStore) -> None:
    """Codes waiting in the outbox (activation and confirmation) appear nowhere in what the store holds."""
    codes = ["40271993", "58316024"]
    clock, notifier = ManualClock(), RecordingNotifier()
    service = make_service(
        store=store,
        clock=clock,
        notifier=notifier,
        verifier=KnownCodeVerifier.of(codes, length=8),
        policy=Policy(confirm=frozenset({Action.REMOVE})),
    )
    service.deliver_inline = False
    key_id = service.create(owner="alice", name="k1", max_scope="account:read").key.id
    service.acknowledge_secret(key_id, owner="alice")
    service.request_activation(key_id, owner="alice")
    with pytest.raises(ConfirmationRequired):
        service.remove(key_id, owner="alice")
    held = stored_text(store)
    assert "k1" in held
    for code in codes:
        assert code not in held
    assert service.relay.run_once().delivered == 3
    assert notifier.codes() == codes
    held = stored_text(store)
    for code in codes:
        assert code not in held
