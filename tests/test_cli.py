"""The keyturn command, run as a subprocess against its SQLite default (and PostgreSQL)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from clitools import USER, code_from, environment, keyturn, new_key, ok, on_terminal, refused
from keyturn import SecurityAnswer, SecurityKeyRequired, diagrams, wiring
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.adapters.totp import TotpVerifier
from keyturn.testing import RecordingNotifier

pytestmark = pytest.mark.slow  # runs the keyturn command as a process

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

    ok(tmp_path, "init")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
    env["PYTHONFAULTHANDLER"] = "1"  # a hang is dumped below (SIGABRT), not just timed out
    # A background job of a non-interactive shell starts with SIGINT ignored, and an ignored
    # signal stays ignored across exec: Python would then install no KeyboardInterrupt. The
    # child gets Ctrl-C as a terminal would give it, whoever started this test.
    inherited = signal.getsignal(signal.SIGINT)
    if inherited == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # SIG_DFL in the child
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keyturn", "--dev", "relay", "--interval", "0.05"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, inherited)
    with proc:
        assert proc.stderr is not None
        first = proc.stderr.readline()  # the loop has started once this line is out
        assert "relaying notifications" in first, first
        proc.send_signal(signal.SIGINT)
        try:
            _, rest = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            _, dump = proc.communicate(timeout=30)
            pytest.fail(f"the relay did not stop on SIGINT within 30 s; its threads:\n{dump}")
    assert proc.returncode == 130, rest
    assert "Traceback" not in first + rest


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


class TestStoreMustExist:
    def test_a_typo_in_db_creates_nothing(self, tmp_path: Path) -> None:
        """A --db that names no store exits 10, names the path and how to create one, and creates no file."""
        new_key(tmp_path)
        before = sorted(p.name for p in tmp_path.iterdir())
        done = keyturn(tmp_path, "--db", "keyturn.dbb", "ack", "1")
        assert done.returncode == 10, done.stderr
        assert done.stderr == (
            "keyturn: no key store at keyturn.dbb: create one with keyturn init --db keyturn.dbb "
            "(or create --init), or check --db and $KEYTURN_DB\n"
        )
        assert sorted(p.name for p in tmp_path.iterdir()) == before

    @pytest.mark.parametrize(
        "args",
        [
            ("list",),
            ("show", "1"),
            ("create", "--owner", "o", "--name", "n", "--scope", "trade:read"),
            ("--dev", "relay", "--once"),
            ("rotate-server-key",),
            ("rotate-server-key", "--finish", "--yes"),
            ("security-key", "show", "o"),
            ("diagram", "--key", "1"),
            ("serve",),
        ],
    )
    def test_only_init_creates_a_store(self, tmp_path: Path, args: tuple[str, ...]) -> None:
        """Every command but init, create --init and the dev server refuses a missing store and writes no file."""
        body = refused(tmp_path, *args)
        assert (body["error"], body["exit"], body["db"]) == ("store_missing", 10, "keyturn.db")
        assert list(tmp_path.iterdir()) == []

    def test_init_creates_the_store_once(self, tmp_path: Path) -> None:
        """Init creates the store, its server key and ring (0600); run again, it says the store exists."""
        first = ok(tmp_path, "init")
        assert first == {
            "db": "keyturn.db",
            "created": True,
            "server_key": "keyturn.db.key",
            "ring": "keyturn.db.seal",
        }
        for name in ("keyturn.db", "keyturn.db.key", "keyturn.db.seal"):
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
        assert ok(tmp_path, "init")["created"] is False
        again = keyturn(tmp_path, "init")
        assert "the key store at keyturn.db exists already" in again.stdout
        assert ok(tmp_path, "list") == []

    def test_a_store_without_its_server_key_is_refused(self, tmp_path: Path) -> None:
        """An existing store whose key file is gone is refused (exit 3), and no new key is made."""
        new_key(tmp_path)
        (tmp_path / "keyturn.db.key").unlink()
        done = keyturn(tmp_path, "list")
        assert done.returncode == 3
        assert "has no server key" in done.stderr
        assert "KEYTURN_SERVER_KEY" in done.stderr
        assert not (tmp_path / "keyturn.db.key").exists()

    def test_serve_dev_creates_its_store(self, tmp_path: Path) -> None:
        """Keyturn serve --dev starts on a new SQLite store, which it creates."""
        import socket  # noqa: PLC0415
        import time  # noqa: PLC0415

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "keyturn", "serve", "--dev", "--port", str(port)],
            cwd=tmp_path,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for _ in range(200):
                if (tmp_path / "keyturn.db").exists() or proc.poll() is not None:
                    break
                time.sleep(0.05)
            assert (tmp_path / "keyturn.db").exists()
        finally:
            proc.terminate()
            proc.communicate(timeout=30)


@pytest.fixture(name="postgres_url")
def _postgres_url() -> str:
    """The test server's URL, or a skip."""
    url = os.environ.get("KEYTURN_TEST_POSTGRES", "")
    if not url:
        pytest.skip("set KEYTURN_TEST_POSTGRES to a PostgreSQL URL to run (.ci/run does)")
    return url


class TestPostgresConnection:
    @pytest.mark.parametrize(
        ("url", "cause"),
        [
            ("postgresql://postgres:hunter2@127.0.0.1:1/test", "port 1 failed: Connection refused"),
            ("postgresql://postgres:hunter2@nohost.invalid/test", "nohost.invalid"),
            ("host=127.0.0.1 password=hunter2 dbname", "libpq cannot read this connection string"),
        ],
    )
    def test_unreachable_is_one_line_with_its_cause(
        self, tmp_path: Path, url: str, cause: str
    ) -> None:
        """An unreachable server is one line within seconds, naming the cause and never the password."""
        import time  # noqa: PLC0415

        started = time.monotonic()
        done = keyturn(tmp_path, "--db", url, "list", env={"KEYTURN_SERVER_KEY": "ab" * 32})
        elapsed = time.monotonic() - started
        assert done.returncode == 3, done.stderr
        assert done.stderr.count("\n") == 1
        assert done.stderr.startswith("keyturn: cannot reach the PostgreSQL key store at ")
        assert cause in done.stderr
        assert "hunter2" not in done.stdout + done.stderr
        assert elapsed < 8
        assert list(tmp_path.iterdir()) == []

    def test_a_wrong_database_is_named(self, tmp_path: Path, postgres_url: str) -> None:
        """A database that does not exist is named in the one line, with no password."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: PLC0415

        params = conninfo_to_dict(postgres_url) | {"dbname": "keyturn_no_such_db"}
        url = make_conninfo("", **{**params, "password": "hunter2"})
        body = refused(tmp_path, "--db", url, "list", env={"KEYTURN_SERVER_KEY": "ab" * 32})
        assert body["exit"] == 3
        assert 'database "keyturn_no_such_db" does not exist' in body["message"]
        assert "hunter2" not in json.dumps(body)

    def test_a_schema_without_a_store_needs_init(
        self, tmp_path: Path, served_db: dict[str, str]
    ) -> None:
        """A database without keyturn's tables is a missing store (exit 10) until init creates them."""
        if "KEYTURN_DB" not in served_db:
            pytest.skip("PostgreSQL only")
        body = refused(tmp_path, "list", env=served_db)
        assert body["error"] == "store_missing"
        assert "keyturn init with the same --db" in body["message"]
        assert ok(tmp_path, "init", env=served_db)["created"] is True
        assert ok(tmp_path, "list", env=served_db) == []


class TestMessages:
    def test_after_reset_the_hint_fits_the_state(self, tmp_path: Path) -> None:
        """After a reset, the next step is the one the key's state allows, never 'keyturn ack'."""
        key_id = new_key(tmp_path, "ack")
        done = keyturn(tmp_path, "reset", key_id)
        assert done.returncode == 0, done.stderr
        assert "a new secret; the old one stopped working at once" in done.stdout
        assert "next: keyturn activate 1 sends alice a code" in done.stdout
        assert "keyturn ack" not in done.stdout

    def test_enable_says_it_goes_through_a_code(self, tmp_path: Path) -> None:
        """Enable of a disabled key says a code was sent (or waits), not that the key is enabled."""
        key_id = new_key(tmp_path, "ack")
        code = code_from(keyturn(tmp_path, "--dev", "activate", key_id).stderr)
        ok(tmp_path, "verify", key_id, code)
        ok(tmp_path, "disable", key_id)
        done = keyturn(tmp_path, "--dev", "enable", key_id)
        assert done.returncode == 0, done.stderr
        assert re.search(
            r"key 1: enabling goes through a code: a code was sent to alice, valid 5 min "
            r"\(until \d\d:\d\d:\d\d UTC\) \(now pending_2fa\)",
            done.stdout,
        ), done.stdout
        assert "next: keyturn verify 1 CODE" in done.stdout

    def test_a_wrong_code_says_how_many_tries_are_left(self, tmp_path: Path) -> None:
        """A wrong code exits 5 and says the tries left; JSON carries attempts_left."""
        key_id = new_key(tmp_path, "ack", "activate")
        done = keyturn(tmp_path, "verify", key_id, "000000")
        assert done.returncode == 5
        assert "4 attempt(s) left for this code. Next: keyturn verify 1 CODE" in done.stderr
        body = refused(tmp_path, "verify", key_id, "000000")
        assert (body["error"], body["attempts_left"], body["exit"]) == ("code_mismatch", 3, 5)

    def test_edit_says_why_the_key_was_deactivated(self, tmp_path: Path) -> None:
        """An edit of an active key's scope says it deactivated the key, and how to activate it."""
        key_id = new_key(tmp_path, "ack")
        code = code_from(keyturn(tmp_path, "--dev", "activate", key_id).stderr)
        ok(tmp_path, "verify", key_id, code)
        done = keyturn(tmp_path, "edit", key_id, "--scope", "account:read")
        assert "scope changed; a changed scope, whitelist or features deactivates" in done.stdout
        assert "(now disabled)" in done.stdout
        assert "next: keyturn enable 1" in done.stdout

    def test_create_records_the_operator_as_actor(self, tmp_path: Path) -> None:
        """Create records cli:$USER as actor, like every other command; --actor overrides it."""
        key_id = new_key(tmp_path, "ack")
        ok(tmp_path, "--actor", "ticket-42", "activate", key_id)
        shown = ok(tmp_path, "show", key_id)
        actors = [h["actor"] for h in shown["history"]]
        assert actors == [f"cli:{USER}", f"cli:{USER}", "ticket-42"]
        made = ok(
            tmp_path,
            "--actor",
            "ticket-7",
            "create",
            "--owner",
            "o",
            "--name",
            "n",
            "--scope",
            "trade:read",
        )
        assert ok(tmp_path, "show", str(made["id"]))["history"][0]["actor"] == "ticket-7"

    def test_quota_has_its_exit_code(self, tmp_path: Path) -> None:
        """The ninth live key of one owner exits 8 and says how to make room."""
        for _ in range(8):
            new_key(tmp_path)
        body = refused(
            tmp_path, "create", "--owner", "alice", "--name", "n", "--scope", "trade:read"
        )
        assert (body["error"], body["exit"], body["limit"]) == ("quota_exceeded", 8, 8)
        assert "keyturn list --owner alice, then keyturn remove ID" in body["message"]


class TestJson:
    def test_usage_errors_answer_json(self, tmp_path: Path) -> None:
        """A usage error with --json is the stable error object, on stdout, and nothing on stderr."""
        done = keyturn(tmp_path, "--json", "ack", "not-a-number")
        assert done.returncode == 2
        assert done.stderr == ""
        body = json.loads(done.stdout)
        assert list(body) == ["error", "message", "exit"]
        assert (body["error"], body["exit"]) == ("usage", 2)
        assert "keyturn ack --help" in body["message"]

    def test_dev_puts_the_code_in_the_json(self, tmp_path: Path) -> None:
        """With --dev and --json the code sent is in the answer too, the one the owner was sent."""
        key_id = new_key(tmp_path, "ack")
        done = keyturn(tmp_path, "--dev", "--json", "activate", key_id)
        answer = json.loads(done.stdout)
        assert answer["dev_codes"] == [
            {"owner": "alice", "key_id": 1, "code": code_from(done.stderr)}
        ]
        assert ok(tmp_path, "verify", key_id, answer["dev_codes"][0]["code"])["state"] == "active"
        assert "dev_codes" not in ok(tmp_path, "show", key_id)

    def test_every_exit_code_is_documented_in_the_readme(self) -> None:
        """The README's exit-code table lists every code the command uses, with its meaning."""
        from keyturn.cli.failures import EXIT_CODES  # noqa: PLC0415

        readme = (Path(__file__).parent.parent / "README.md").read_text()
        for code, meaning in EXIT_CODES.items():
            assert f"| `{code}` | {meaning} |" in readme


class TestConfirmation:
    def test_remove_without_a_terminal_needs_yes(self, tmp_path: Path) -> None:
        """Remove with no terminal to ask on exits 2 saying --yes, and the key stays."""
        key_id = new_key(tmp_path)
        done = keyturn(tmp_path, "remove", key_id)
        assert done.returncode == 2
        assert "add --yes to confirm it (there is no terminal to ask on)" in done.stderr
        assert ok(tmp_path, "show", key_id)["state"] == "created"
        assert ok(tmp_path, "remove", key_id, "--yes")["state"] == "removed"

    @pytest.mark.parametrize(
        ("answer", "exit_code", "state"), [("y\n", 0, "removed"), ("n\n", 1, "created")]
    )
    def test_remove_asks_on_a_terminal(
        self, tmp_path: Path, answer: str, exit_code: int, state: str
    ) -> None:
        """On a terminal remove asks; yes removes the key, anything else changes nothing (exit 1)."""
        key_id = new_key(tmp_path)
        code, out = on_terminal(tmp_path, "remove", key_id, answer=answer)
        assert code == exit_code, out
        assert (
            "Remove key 1 ('bot' of alice) for good: no one can use or restore it, its history stays. Go on? [y/N]"
            in out
        )
        assert ok(tmp_path, "show", key_id)["state"] == state

    def test_finishing_a_rotation_asks_too(self, tmp_path: Path) -> None:
        """rotate-server-key --finish needs --yes without a terminal, and drops nothing without it."""
        new_key(tmp_path)
        ok(tmp_path, "rotate-server-key")
        done = keyturn(tmp_path, "rotate-server-key", "--finish")
        assert done.returncode == 2
        assert "--yes" in done.stderr
        assert set(json.loads((tmp_path / "keyturn.db.seal").read_text())["keys"]) == {"k1", "k2"}


class TestRelayFailures:
    @pytest.fixture(name="closed_smtp")
    def _closed_smtp(self) -> dict[str, str]:
        """An SMTP notifier pointed at a port nothing listens on."""
        import socket  # noqa: PLC0415

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return {
            "KEYTURN_NOTIFIER": "smtp",
            "KEYTURN_SMTP_HOST": "127.0.0.1",
            "KEYTURN_SMTP_PORT": str(port),
            "KEYTURN_SMTP_SENDER": "keys@example.com",
            "KEYTURN_SMTP_SECURITY": "none",
        }

    def test_relay_once_exits_9_when_a_delivery_failed(
        self, tmp_path: Path, closed_smtp: dict[str, str]
    ) -> None:
        """Relay --once with failed deliveries exits 9, names the error, and keeps the messages."""
        import time  # noqa: PLC0415

        new_key(tmp_path, "ack", "activate", owner="alice@example.com")
        body = refused(tmp_path, "relay", "--once", env=closed_smtp)
        assert (body["error"], body["exit"], body["failed"]) == ("delivery_failed", 9, 2)
        assert body["errors"] == ["ConnectionRefusedError"]
        time.sleep(1.2)  # the first retry is due 1 s after the first failure
        done = keyturn(tmp_path, "relay", "--once", env=closed_smtp)
        assert done.returncode == 9, done.stderr
        assert done.stderr.count("\n") == 1
        assert "2 delivery(ies) failed (ConnectionRefusedError)" in done.stderr
        store = SQLiteKeyStore(tmp_path / "keyturn.db")
        try:
            assert store.pending_notifications() == 2
        finally:
            store.close()

    def test_the_relay_loop_stops_at_a_failure(
        self, tmp_path: Path, closed_smtp: dict[str, str]
    ) -> None:
        """The relay loop exits 9 at its first failed delivery, so a supervisor sees it."""
        new_key(tmp_path, owner="alice@example.com")
        done = keyturn(tmp_path, "relay", "--interval", "0.05", env=closed_smtp)
        assert done.returncode == 9
        assert "1 delivery(ies) failed (ConnectionRefusedError)" in done.stderr


class TestLooks:
    def test_version(self, tmp_path: Path) -> None:
        """--version prints the installed version."""
        from importlib.metadata import version  # noqa: PLC0415

        assert keyturn(tmp_path, "--version").stdout == f"keyturn {version('keyturn')}\n"

    def test_commands_are_listed_in_lifecycle_order(self, tmp_path: Path) -> None:
        """--help lists the commands grouped, the lifecycle's in the order a key meets them."""
        text = keyturn(tmp_path, "--help").stdout
        order = [
            "init",
            "create",
            "ack",
            "activate",
            "resend",
            "verify",
            "cancel",
            "disable",
            "enable",
            "edit",
            "reset",
            "unlock",
            "remove",
            "list",
            "show",
            "relay",
            "serve",
        ]
        places = [text.index(f"\n  {name} ") for name in order]
        assert places == sorted(places)
        assert "a key's lifecycle, in order:" in text

    def test_create_help_explains_its_rules(self, tmp_path: Path) -> None:
        """Create --help explains the owner, the name rule, the scope's resources and levels, and the features."""
        from keyturn.core.scope import RESOURCES  # noqa: PLC0415
        from keyturn.core.validation import FEATURES  # noqa: PLC0415

        text = " ".join(keyturn(tmp_path, "create", "--help").stdout.split())
        assert "the account that owns the key" in text
        assert "1-16 ASCII letters, digits or underscores" in text
        assert f"resources: {', '.join(RESOURCES)}; levels: none, read, read_write" in text
        assert ", ".join(sorted(FEATURES)) in text

    def test_every_option_has_help(self) -> None:
        """Every option and argument of every command says what it is in --help."""
        import argparse  # noqa: PLC0415

        from keyturn.cli.parser import build  # noqa: PLC0415

        top = build()
        parsers = [top]
        for action in top._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
        assert len(parsers) > 20
        for parser in parsers:
            for action in parser._actions:
                assert action.help, (parser.prog, action.dest)

    def test_colour_on_a_terminal_only(self, tmp_path: Path) -> None:
        """On a terminal the state is coloured and the secret set apart in reverse; NO_COLOR and pipes get none."""
        ok(tmp_path, "init")
        args = ("create", "--owner", "o", "--name", "n", "--scope", "trade:read")
        code, out = on_terminal(tmp_path, *args)
        assert code == 0, out
        assert "\x1b[1;36mcreated\x1b[0m" in out
        assert re.search(r"\n {6}\x1b\[1;7m\S{43}\x1b\[0m", out)
        code, plain = on_terminal(tmp_path, *args, env={"NO_COLOR": "1"})
        assert code == 0
        assert "\x1b[" not in plain
        assert "\x1b[" not in keyturn(tmp_path, *args).stdout


def test_cli_modules_are_small_and_say_their_role() -> None:
    """Every module of keyturn.cli is under 300 lines and opens with a docstring."""
    import ast  # noqa: PLC0415

    import keyturn.cli  # noqa: PLC0415

    folder = Path(keyturn.cli.__file__).parent
    modules = sorted(folder.glob("*.py"))
    assert len(modules) >= 10
    for module in modules:
        source = module.read_text()
        assert source.count("\n") < 300, module.name
        assert ast.get_docstring(ast.parse(source)), module.name


class TestFailureTable:
    """The refusals a subprocess cannot cheaply reach (locks, the send cap, an expiry) in-process."""

    NOW = datetime(2026, 1, 1, 5, 7, 46, tzinfo=UTC)

    def explain(self, error: Exception) -> Any:
        """The command's failure for ``error``, at NOW, with no key to read."""
        from keyturn import Policy  # noqa: PLC0415
        from keyturn.cli.failures import Context, explain  # noqa: PLC0415

        ctx = Context(self.NOW, Policy(), lambda _: None, "keyturn.db", "verify")
        return explain(error, ctx)

    def test_waits_and_locks_have_their_codes_and_say_when(self) -> None:
        """Send cap and expiry read relative with the UTC time; locks exit 7; a race exits 1."""
        from datetime import timedelta  # noqa: PLC0415

        from keyturn.core import errors  # noqa: PLC0415

        later, earlier = self.NOW + timedelta(seconds=107), self.NOW - timedelta(minutes=2)
        cap = self.explain(
            errors.SendLimitReached(
                key_id=1, state="pending_2fa", action="resend_code", available_at=later
            )
        )
        assert (cap.exit, cap.error) == (6, "send_limit_reached")
        assert cap.message == (
            "too many codes were sent for key 1 (at most 5 in 10 min): the next can be sent "
            "in 1 min 47 s (at 05:09:33 UTC)"
        )
        expired = self.explain(
            errors.CodeExpired(
                key_id=1, state="pending_2fa", action="verify_code", expired_at=earlier
            )
        )
        assert (expired.exit, expired.message) == (
            5,
            "the code expired 2 min ago (at 05:05:46 UTC)",
        )
        locked = self.explain(
            errors.ActivationLocked(
                key_id=1, state="pending_2fa", action="verify_code", failures=100
            )
        )
        assert (locked.exit, locked.error) == (7, "activation_locked")
        assert self.explain(errors.SecurityKeyLocked(call="c", failures=100)).exit == 7
        assert self.explain(errors.ConcurrentUpdate(1, 3)).exit == 1
        assert self.explain(errors.StoreError("down")).body() == {
            "error": "store_error",
            "message": "down",
            "exit": 3,
        }

    def test_a_locked_key_points_to_unlock(self) -> None:
        """The next step for a key locked by wrong codes is keyturn unlock, whatever its state."""
        import attrs  # noqa: PLC0415

        from keyturn import Policy, State  # noqa: PLC0415
        from keyturn.cli.guidance import next_steps  # noqa: PLC0415
        from keyturn.testing import key_in_state, make_service  # noqa: PLC0415

        service = make_service()
        made = key_in_state(service, State.PENDING_2FA)
        key = attrs.evolve(service.get(made.key.id, owner="alice"), consecutive_failures=100)
        assert next_steps(key, self.NOW, Policy())[0].startswith(f"keyturn unlock {key.id}")


def test_create_init_says_what_it_made_as_init_does(tmp_path: Path) -> None:
    """A create --init on a new store names it and its key files once; later ones do not."""
    args = ("create", "--init", "--owner", "o", "--name", "n", "--scope", "account:read")
    first = keyturn(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert "created the key store at keyturn.db" in first.stderr
    assert "keyturn.db.key, keyturn.db.seal (mode 0600): back them up" in first.stderr
    again = keyturn(tmp_path, *args[:5], "n2", *args[6:])
    assert again.returncode == 0, again.stderr
    assert "created the key store" not in again.stderr


@pytest.mark.parametrize("command", [("diagram",), ("--json", "diagram"), ("--json", "bogus")])
def test_a_closed_pipe_ends_quietly_with_141(tmp_path: Path, command: tuple[str, ...]) -> None:
    """Output to a reader that went away (| head) exits 141 with nothing on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
    with subprocess.Popen(  # noqa: S603 (our interpreter)
        [sys.executable, "-m", "keyturn", *command],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        proc.stdout.close()  # the reader is gone before the first line
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141, err
    assert err == ""


def test_json_covers_version_and_written_diagrams(tmp_path: Path) -> None:
    """With --json, --version and diagrams written to files answer one JSON object on stdout."""
    assert ok(tmp_path, "--version") == {"version": version("keyturn")}
    assert ok(tmp_path, "diagram", "-o", "x.mmd")["wrote"] == ["x.mmd"]
    assert (tmp_path / "x.mmd").read_text().startswith("---\n")
    written = ok(tmp_path, "diagram", "--update", "d")["wrote"]
    assert [Path(w).name for w in written] == list(diagrams.FILES)
