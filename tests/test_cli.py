"""The keyturn command, run as a subprocess against its SQLite default (and PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from clitools import code_from, keyturn, new_key, ok, refused
from keyturn import SecurityAnswer, SecurityKeyRequired, wiring
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.adapters.totp import TotpVerifier
from keyturn.testing import RecordingNotifier

if TYPE_CHECKING:
    from collections.abc import Iterator


def test_full_flow_on_the_default_store(tmp_path: Path) -> None:
    """create, ack, activate, verify, disable, enable, edit, reset, remove work on ./keyturn.db."""
    created = ok(
        tmp_path,
        "create",
        "--init",
        "--owner",
        "alice",
        "--name",
        "bot_1",
        "--scope",
        "account:read trade:read_write",
        "--ip",
        "10.0.0.0/8",
    )
    assert created["state"] == "created"
    assert len(created["client_secret"]) >= 43
    assert (tmp_path / "keyturn.db").exists()
    assert (tmp_path / "keyturn.db.key").stat().st_mode & 0o777 == 0o600
    key_id = str(created["id"])
    assert ok(tmp_path, "ack", key_id)["state"] == "secret_acknowledged"
    done = keyturn(tmp_path, "--dev", "--json", "activate", key_id)
    assert done.returncode == 0
    assert json.loads(done.stdout)["state"] == "pending_2fa"
    assert ok(tmp_path, "verify", key_id, code_from(done.stderr))["enabled"] is True
    assert ok(tmp_path, "disable", key_id)["state"] == "disabled"
    enabled = keyturn(tmp_path, "enable", key_id, "--dev")
    assert enabled.returncode == 0
    assert ok(tmp_path, "verify", key_id, code_from(enabled.stderr))["state"] == "active"
    edited = ok(tmp_path, "edit", key_id, "--scope", "account:read", "--clear-ip")
    assert (edited["state"], edited["ip_whitelist"]) == ("disabled", [])
    reset = ok(tmp_path, "reset", key_id)
    assert reset["client_secret"] not in (None, created["client_secret"])
    assert ok(tmp_path, "remove", key_id, "--yes")["state"] == "removed"
    shown = ok(tmp_path, "show", key_id)
    assert [h["event"] for h in shown["history"]][-3:] == [
        "edited_api_key",
        "reset_api_key",
        "removed_api_key",
    ]
    assert ok(tmp_path, "list") == []
    assert len(ok(tmp_path, "list", "--all")) == 1


def test_secret_shown_once_with_a_warning(tmp_path: Path) -> None:
    """Create prints the secret with a warning; list and show never print it."""
    done = keyturn(
        tmp_path, "create", "--init", "--owner", "o", "--name", "n", "--scope", "account:read"
    )
    assert done.returncode == 0
    secret = re.search(r"^ {6}(\S{43})$", done.stdout, re.MULTILINE)  # alone on its line
    assert secret
    assert "client_secret (shown this once)" in done.stdout
    assert "it cannot be shown again" in done.stdout
    for args in (("list",), ("show", "1"), ("--json", "show", "1"), ("--json", "list")):
        out = keyturn(tmp_path, *args)
        assert secret.group(1) not in out.stdout + out.stderr


def test_without_a_notifier_codes_wait_in_the_outbox(tmp_path: Path) -> None:
    """With no notifier configured a command sends nothing, says so, and leaves the code queued for a relay."""
    key_id = str(
        ok(tmp_path, "create", "--init", "--owner", "o", "--name", "n", "--scope", "account:read")[
            "id"
        ]
    )
    ok(tmp_path, "ack", key_id)
    done = keyturn(tmp_path, "activate", key_id)
    assert done.returncode == 0, done.stderr
    assert "now pending_2fa" in done.stdout
    assert "code sent" not in done.stderr
    assert "wait in the outbox" in done.stderr
    assert "KEYTURN_NOTIFIER" in done.stderr
    assert not re.search(r"\b\d{6}\b", done.stdout + done.stderr)
    store = SQLiteKeyStore(tmp_path / "keyturn.db")
    try:
        assert store.pending_notifications() == 2  # created, and the code
        assert len(list(store.stored_codes())) == 1
    finally:
        store.close()
    delivered = keyturn(tmp_path, "--dev", "relay", "--once")
    assert delivered.returncode == 0, delivered.stderr
    assert "delivered 2" in delivered.stdout
    assert ok(tmp_path, "verify", key_id, code_from(delivered.stderr))["state"] == "active"


@pytest.mark.parametrize(
    "args",
    [("relay", "--once"), ("relay",), ("--notifier", "console", "relay", "--once")],
)
def test_relay_refuses_to_start_without_a_notifier(tmp_path: Path, args: tuple[str, ...]) -> None:
    """`keyturn relay` with no notifier (or the console one) outside --dev exits 2 with one line saying what to set, and erases nothing."""
    key_id = str(
        ok(tmp_path, "create", "--init", "--owner", "o", "--name", "n", "--scope", "account:read")[
            "id"
        ]
    )
    ok(tmp_path, "ack", key_id)
    ok(tmp_path, "activate", key_id)
    done = keyturn(tmp_path, *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("keyturn: ")
    for hint in ("--notifier", "KEYTURN_NOTIFIER", "--dev"):
        assert hint in done.stderr
    store = SQLiteKeyStore(tmp_path / "keyturn.db")
    try:
        assert store.pending_notifications() == 2
        assert len(list(store.stored_codes())) == 1
    finally:
        store.close()


def test_console_notifier_needs_dev(tmp_path: Path) -> None:
    """Choosing the console notifier without --dev is bad usage; with --dev it shows the code."""
    refused = keyturn(
        tmp_path,
        "--notifier",
        "console",
        "create",
        "--init",
        "--owner",
        "o",
        "--name",
        "n",
        "--scope",
        "account:read",
    )
    assert refused.returncode == 2
    assert "--dev" in refused.stderr
    env = {"KEYTURN_NOTIFIER": "console"}
    done = keyturn(
        tmp_path,
        "--dev",
        "create",
        "--init",
        "--owner",
        "o",
        "--name",
        "n",
        "--scope",
        "account:read",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "notify o: API key 'n' was created" in done.stderr
    assert "wait in the outbox" not in done.stderr


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (("ack", "99"), 4, "no API key with id 99 in keyturn.db; keyturn list --all shows"),
        (("activate", "1"), 1, "acknowledge the secret first. Next: keyturn ack 1"),
        (
            ("create", "--owner", "o", "--name", "bad name", "--scope", "account:read"),
            2,
            "invalid name",
        ),
        (("create", "--owner", "o", "--name", "n", "--scope", "bank:read"), 2, "invalid max_scope"),
        (("verify", "1", "12ab56"), 2, "invalid code"),
        (("ack", "not-a-number"), 2, "invalid int value"),
        (("--db", "/nonexistent/dir/k.db", "list"), 10, "no key store at /nonexistent/dir/k.db"),
        (("--db", "/nonexistent/dir/k.db", "init"), 3, "cannot open the SQLite key store"),
    ],
)
def test_errors_are_one_line_with_documented_exit_codes(
    tmp_path: Path, args: tuple[str, ...], exit_code: int, message: str
) -> None:
    """Each kind of failure has its exit code and one line on stderr, with no traceback."""
    new_key(tmp_path)
    done = keyturn(tmp_path, *args)
    assert done.returncode == exit_code, done.stderr
    assert message in done.stderr
    assert done.stderr.startswith("keyturn: ")
    assert done.stderr.count("\n") == 1


def test_db_from_environment(tmp_path: Path) -> None:
    """KEYTURN_DB chooses the store file."""
    env = {"KEYTURN_DB": str(tmp_path / "elsewhere.db")}
    done = keyturn(
        tmp_path,
        "create",
        "--init",
        "--owner",
        "o",
        "--name",
        "n",
        "--scope",
        "account:read",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "elsewhere.db").exists()
    assert not (tmp_path / "keyturn.db").exists()


def test_bad_server_key_is_refused(tmp_path: Path) -> None:
    """A malformed KEYTURN_SERVER_KEY is bad input, named in the message."""
    done = keyturn(tmp_path, "init", env={"KEYTURN_SERVER_KEY": "abc"})
    assert done.returncode == 2
    assert "KEYTURN_SERVER_KEY" in done.stderr


def test_diagram_for_a_pending_key(tmp_path: Path) -> None:
    """Diagram --key highlights the key's state and shows its code's time left."""
    key_id = str(
        ok(tmp_path, "create", "--init", "--owner", "o", "--name", "n", "--scope", "account:read")[
            "id"
        ]
    )
    ok(tmp_path, "ack", key_id)
    ok(tmp_path, "activate", key_id)
    done = keyturn(tmp_path, "diagram", "--key", key_id)
    assert done.returncode == 0
    assert "Class pending_2fa s_active" in done.stdout
    assert re.search(r"pending_2fa : this key: code valid \d+ s more, resend in \d+ s", done.stdout)


def test_diagram_formats(tmp_path: Path) -> None:
    """Mermaid and dot print; -o writes a file; --policy api draws the API's policy."""
    assert "\nstateDiagram-v2\n" in keyturn(tmp_path, "diagram").stdout
    assert keyturn(tmp_path, "diagram", "--format", "dot").stdout.startswith("digraph keyturn")
    done = keyturn(tmp_path, "diagram", "--format", "mermaid", "-o", "x.mmd")
    assert done.returncode == 0
    assert "\nstateDiagram-v2\n" in (tmp_path / "x.mmd").read_text()
    api = keyturn(tmp_path, "diagram", "--policy", "api").stdout
    assert "secret_acknowledged --> active: enable: no code" in api


def test_svg_without_graphviz_says_what_to_install(tmp_path: Path) -> None:
    """With neither dot nor pygraphviz, --format svg exits 3 and names what to install."""
    blocker = tmp_path / "block" / "pygraphviz"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('blocked for this test')\n")
    env = {"PATH": str(tmp_path), "PYTHONPATH": str(tmp_path / "block")}
    done = keyturn(tmp_path, "diagram", "--format", "svg", env=env)
    assert done.returncode == 3
    assert "apt-get install graphviz" in done.stderr
    assert "keyturn[svg]" in done.stderr


def test_svg_renders_when_graphviz_is_there(tmp_path: Path) -> None:
    """--format svg writes an SVG document when Graphviz is installed."""
    done = keyturn(tmp_path, "diagram", "--format", "svg")
    if done.returncode == 3:
        pytest.skip("no Graphviz here (.ci/run installs it)")
    assert "<svg" in done.stdout


def test_relay_once(tmp_path: Path) -> None:
    """Relay --once reports what it delivered (nothing pending here)."""
    ok(tmp_path, "init")
    done = ok(tmp_path, "--dev", "relay", "--once")
    assert done == {"delivered": 0, "failed": 0, "expired": 0, "dev_codes": []}


def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    """Keyturn demo walks every step of the seeds and ends with the key removed."""
    done = keyturn(tmp_path, "demo")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for expected in (
        "acknowledge the secret first",
        "too early for a new code for key 1: one can be sent in 1 min 30 s (at 12:02:00 UTC)",
        "verification code does not match",
        "the code expired",
        "[active]",
        "invalid credentials (reason, for the server's log only: key_not_active)",
        "invalid credentials (reason, for the server's log only: invalid_credentials)",
        "[removed]",
        "removed_api_key",
    ):
        assert expected in out
    assert not list(tmp_path.iterdir())


def test_resend_and_cancel(tmp_path: Path) -> None:
    """Resend is refused before 2 minutes (exit 6) with the wait and its UTC time; cancel returns the key."""
    key_id = new_key(tmp_path, "ack", "activate")
    early = keyturn(tmp_path, "resend", key_id)
    assert early.returncode == 6
    assert re.search(
        r"too early for a new code for key 1: one can be sent in \d+ min( \d+ s)? "
        r"\(at \d\d:\d\d:\d\d UTC\)\. Next: keyturn verify 1 CODE",
        early.stderr,
    ), early.stderr
    body = refused(tmp_path, "resend", key_id)
    assert (body["error"], body["key_id"]) == ("resend_too_early", 1)
    assert datetime.fromisoformat(body["available_at"]) > datetime.now(UTC)
    assert ok(tmp_path, "cancel", key_id)["state"] == "secret_acknowledged"


def test_relay_loop_stops_on_interrupt(tmp_path: Path) -> None:
    """The relay loop runs until interrupted, then exits 130 without a traceback."""
    import signal  # noqa: PLC0415
    import time  # noqa: PLC0415

    ok(tmp_path, "init")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keyturn", "--dev", "relay", "--interval", "0.05"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "relaying notifications" in err
    assert "Traceback" not in err


def test_console_script_is_installed() -> None:
    """The keyturn console script sits beside the interpreter and answers --help."""
    script = Path(sys.executable).parent / "keyturn"
    assert script.exists()
    done = subprocess.run(  # noqa: S603
        [str(script), "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0
    assert "exit codes:" in done.stdout


def test_json_on_diagram_and_demo(tmp_path: Path) -> None:
    """Diagram and demo answer --json too."""
    diagram = ok(tmp_path, "diagram")
    assert "\nstateDiagram-v2\n" in diagram["diagram"]
    assert diagram["policy"] == "default"
    demo = ok(tmp_path, "demo")
    assert any("[removed]" in line for line in demo["transcript"])


@pytest.fixture(name="served_db", params=["sqlite", "postgres"])
def _served_db(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The environment for the default SQLite file, or for PostgreSQL in a fresh schema."""
    if request.param == "sqlite":
        yield {}
        return
    url = os.environ.get("KEYTURN_TEST_POSTGRES", "")
    if not url:
        pytest.skip("set KEYTURN_TEST_POSTGRES to a PostgreSQL URL to run (.ci/run does)")
    import psycopg  # noqa: PLC0415

    schema = f"kt_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield {
            "KEYTURN_DB": f"{url}?options=-csearch_path%3D{schema}",
            "KEYTURN_SERVER_KEY": "ab" * 32,
            "KEYTURN_SEAL_KEYS": "k1:" + "cd" * 32,
        }
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_serve_runs_the_api(tmp_path: Path, served_db: dict[str, str]) -> None:
    """Keyturn serve (async service) answers a Bearer token and a signature for a CLI-made key.

    A security key enrolled with the CLI then guards list_api_keys on the running server.
    """
    import socket  # noqa: PLC0415
    import time  # noqa: PLC0415

    import httpx  # noqa: PLC0415

    from keyturn.testing.signing import signature_header  # noqa: PLC0415

    def run(*args: str) -> Any:
        done = keyturn(tmp_path, "--json", *args, env=served_db)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    run("init")
    made = run("create", "--owner", "o", "--name", "n", "--scope", "account:read_write")
    key_id = str(made["id"])
    run("ack", key_id)
    code = code_from(keyturn(tmp_path, "--dev", "activate", key_id, env=served_db).stderr)
    run("verify", key_id, code)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")} | served_db
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "keyturn", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v2"
        for _ in range(100):
            try:
                httpx.get(f"{url}/public/auth", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        auth = httpx.get(
            f"{url}/public/auth",
            params={
                "grant_type": "client_credentials",
                "client_id": made["client_id"],
                "client_secret": made["client_secret"],
            },
        ).json()
        token = auth["result"]["access_token"]
        keys = httpx.get(
            f"{url}/private/list_api_keys", headers={"Authorization": f"Bearer {token}"}
        ).json()["result"]
        assert [k["client_id"] for k in keys] == [made["client_id"]]
        assert keys[0]["enabled"] is True
        uri = "/api/v2/private/list_api_keys"
        header = signature_header(made["client_id"], made["client_secret"], method="GET", uri=uri)
        signed = httpx.get(f"http://127.0.0.1:{port}{uri}", headers={"Authorization": header})
        assert [k["id"] for k in signed.json()["result"]] == [made["id"]]
        enrolled = run("security-key", "enroll", "o", "--name", "phone")
        bearer = {"Authorization": f"Bearer {token}"}
        first = httpx.get(f"{url}/private/list_api_keys", headers=bearer).json()["result"]
        assert first["security_keys"] == [{"type": "tfa", "name": "phone"}]
        answer = {
            "challenge": first["challenge"],
            "authorization_data": TotpVerifier().code_at(enrolled["secret"], datetime.now(UTC)),
        }
        listed = httpx.get(f"{url}/private/list_api_keys", params=answer, headers=bearer).json()
        assert [k["id"] for k in listed["result"]] == [made["id"]]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


class TestRotateServerKey:
    def test_rotation_reseals_and_finish_retires_the_old_key(self, tmp_path: Path) -> None:
        """rotate-server-key adds k2 and re-seals every secret; --finish drops the unused k1."""
        ok(tmp_path, "create", "--init", "--owner", "a", "--name", "one", "--scope", "trade:read")
        ok(tmp_path, "create", "--owner", "a", "--name", "two", "--scope", "trade:read")
        ring = tmp_path / "keyturn.db.seal"
        assert ring.stat().st_mode & 0o777 == 0o600
        assert set(json.loads(ring.read_text())["keys"]) == {"k1"}
        rotated = ok(tmp_path, "rotate-server-key")
        assert (rotated["current"], rotated["resealed"], rotated["left"]) == ("k2", 2, 0)
        assert set(json.loads(ring.read_text())["keys"]) == {"k1", "k2"}
        finished = ok(tmp_path, "rotate-server-key", "--finish", "--yes")
        assert (finished["resealed"], finished["dropped"], finished["in_use"]) == (
            0,
            ["k1"],
            ["k2"],
        )
        assert set(json.loads(ring.read_text())["keys"]) == {"k2"}
        db = SQLiteKeyStore(tmp_path / "keyturn.db")
        sealed = [k.sealed_secret for k in db.list_keys()]
        db.close()
        assert all(s is not None and s.startswith("k2:") for s in sealed)

    def test_ring_in_the_environment_is_not_rewritten(self, tmp_path: Path) -> None:
        """With KEYTURN_SEAL_KEYS, rotating asks the operator to add the key; --finish re-seals."""
        env1 = {"KEYTURN_SEAL_KEYS": "k1:" + "11" * 32}
        done = keyturn(
            tmp_path,
            "--json",
            "create",
            "--init",
            "--owner",
            "a",
            "--name",
            "n",
            "--scope",
            "trade:read",
            env=env1,
        )
        assert done.returncode == 0, done.stderr
        refused = keyturn(tmp_path, "rotate-server-key", env=env1)
        assert refused.returncode == 2
        assert "KEYTURN_SEAL_KEYS" in refused.stderr
        env2 = {"KEYTURN_SEAL_KEYS": "k2:" + "22" * 32 + ",k1:" + "11" * 32}
        finished = keyturn(tmp_path, "--json", "rotate-server-key", "--finish", "-y", env=env2)
        assert finished.returncode == 0, finished.stderr
        report = json.loads(finished.stdout)
        assert (report["resealed"], report["in_use"], report["dropped"]) == (1, ["k2"], [])
        assert not (tmp_path / "keyturn.db.seal").exists()

    def test_hash_only_has_nothing_to_rotate(self, tmp_path: Path) -> None:
        """With KEYTURN_SECRETS=hashed no secret is sealed and rotation says so."""
        env = {"KEYTURN_SECRETS": "hashed"}
        ok(tmp_path, "init", env=env)
        done = keyturn(tmp_path, "rotate-server-key", "--finish", env=env)
        assert done.returncode == 2
        assert "hashed" in done.stderr


class TestSecurityKeyCommand:
    def test_enroll_show_remove(self, tmp_path: Path) -> None:
        """Enroll prints the TOTP secret once; show never does; remove says whether one existed."""
        ok(tmp_path, "init")
        enrolled = ok(tmp_path, "security-key", "enroll", "alice", "--name", "phone")
        secret = enrolled["secret"]
        assert enrolled["uri"].startswith("otpauth://totp/keyturn:alice?secret=")
        shown = keyturn(tmp_path, "security-key", "show", "alice")
        assert shown.returncode == 0
        assert "phone" in shown.stdout
        assert secret not in shown.stdout + shown.stderr
        assert ok(tmp_path, "security-key", "remove", "alice")["removed"] is True
        assert ok(tmp_path, "security-key", "remove", "alice")["removed"] is False
        assert ok(tmp_path, "security-key", "show", "alice")["security_key"] is None
        store = SQLiteKeyStore(tmp_path / "keyturn.db")
        try:
            assert store.list_security_keys() == []
        finally:
            store.close()

    def test_bad_name_is_bad_input(self, tmp_path: Path) -> None:
        """A bad name exits with the bad-input code and enrolls nothing."""
        ok(tmp_path, "init")
        done = keyturn(tmp_path, "security-key", "enroll", "alice", "--name", "bad name")
        assert done.returncode == 2
        assert "invalid name" in done.stderr
        assert ok(tmp_path, "security-key", "show", "alice")["security_key"] is None

    def test_hashed_only_deployments_cannot_enroll(self, tmp_path: Path) -> None:
        """With KEYTURN_SECRETS=hashed there is nothing to seal a TOTP secret with: bad input."""
        ok(tmp_path, "init", env={"KEYTURN_SECRETS": "hashed"})
        done = keyturn(
            tmp_path, "security-key", "enroll", "alice", env={"KEYTURN_SECRETS": "hashed"}
        )
        assert done.returncode == 2
        assert "secret_box" in done.stderr

    def test_rotation_keeps_ring_keys_security_keys_use(self, tmp_path: Path) -> None:
        """rotate-server-key re-seals security keys too, so --finish can drop the old ring key."""
        ok(tmp_path, "init")
        enrolled = ok(tmp_path, "security-key", "enroll", "alice")
        rotated = ok(tmp_path, "rotate-server-key")
        assert (rotated["resealed"], rotated["left"]) == (1, 0)
        finished = ok(tmp_path, "rotate-server-key", "--finish", "--yes")
        assert (finished["dropped"], finished["in_use"]) == (["k1"], ["k2"])
        db = str(tmp_path / "keyturn.db")
        service = wiring.build_service(
            store=wiring.open_store(db),
            notifier=RecordingNotifier(),
            master_key=wiring.server_key(db),
            secret_box=wiring.secret_box(db),
        )
        try:
            with pytest.raises(SecurityKeyRequired) as raised:
                service.authorize_call(owner="alice", call="c", params={})
            code = TotpVerifier().code_at(enrolled["secret"], datetime.now(UTC))
            answer = SecurityAnswer(raised.value.challenge, code)
            service.authorize_call(owner="alice", call="c", params={}, answer=answer)
        finally:
            service.store.close()
