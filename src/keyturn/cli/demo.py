"""``keyturn demo``: the story of the seeds, step by step, on a throwaway store.

A SQLite file in a temporary folder, a simulated clock that the story moves by hand, and a
recording notifier whose messages the story prints, codes included (this is a demonstration: the
person at the terminal plays the key's owner). Each step prints what happened and where the key
now stands in the lifecycle; a refusal reads as the command's own (:mod:`keyturn.cli.failures`),
and a refused login adds the reason only the server's log would hold. The store is never the
operator's: it is created here and thrown away.
"""

from __future__ import annotations

import io
import secrets
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

import attrs

from keyturn import wiring
from keyturn.adapters.clocks import ManualClock
from keyturn.adapters.notifiers import RecordingNotifier
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.core.errors import AuthenticationFailed, KeyturnError
from keyturn.core.lifecycle import State
from keyturn.core.records import ApiKey, IssuedSecret

from .failures import Context, explain

if TYPE_CHECKING:
    from collections.abc import Callable

    from keyturn.core.policy import Policy

    from .app import App

T = TypeVar("T")
OWNER = "alice@example.com"
CLIENT_IP = "203.0.113.7"
_ROW = (State.CREATED, State.SECRET_ACKNOWLEDGED, State.PENDING_2FA, State.ACTIVE, State.DISABLED)


def position(state: State) -> str:
    """The lifecycle as one line, with ``state`` in brackets."""
    parts = [f"[{s.value}]" if s is state else s.value for s in _ROW]
    removed = "[removed]" if state is State.REMOVED else "removed"
    return " -> ".join(parts[:4]) + " <-> " + parts[4] + f"   ({removed})"


@attrs.define
class _Story:
    out: TextIO
    clock: ManualClock
    notifier: RecordingNotifier
    policy: Policy
    printed: int = 0

    def say(self, text: str) -> None:
        print(text, file=self.out)

    def step(self, title: str, call: Callable[[], T]) -> T | None:
        """Run one step: its title, its outcome, the emails it sent, and the key's position."""
        self.say(f"\n[{self.clock.now():%H:%M:%S}] {title}")
        try:
            result = call()
        except KeyturnError as e:
            why = ""
            if isinstance(e, AuthenticationFailed):  # what only the server's log would say
                why = f" (reason, for the server's log only: {e.reason})"
            ctx = Context(self.clock.now(), self.policy, lambda _: None, "the demo store", "demo")
            self.say(f"  refused: {explain(e, ctx).message}{why}")
            return None
        for n in self.notifier.sent[self.printed :]:
            if n.code is not None:
                self.say(f"  email to {n.owner}: your code is {n.code}  (shown: this is a demo)")
            else:
                self.say(f"  email to {n.owner}: {n.subject}")
        self.printed = len(self.notifier.sent)
        key = result.key if isinstance(result, IssuedSecret) else result
        if isinstance(key, ApiKey):
            self.say(f"  state: {position(key.state)}")
        return result


def run_demo(out: TextIO) -> None:
    """Tell the whole story to ``out``."""
    with tempfile.TemporaryDirectory(prefix="keyturn-demo-") as tmp:
        store = SQLiteKeyStore(Path(tmp) / "demo.db")
        try:
            _tell(out, store, tmp)
        finally:
            store.close()


def _tell(out: TextIO, store: SQLiteKeyStore, where: str) -> None:
    clock = ManualClock()
    notifier = RecordingNotifier()
    service = wiring.build_service(
        store=store, notifier=notifier, master_key=secrets.token_bytes(32), clock=clock
    )
    story = _Story(out, clock, notifier, service.policy)
    story.say(f"keyturn demo: a throwaway SQLite store in {where}, and a simulated clock.")
    issued = story.step(
        "Create a key 'demo_bot' for trading",
        lambda: service.create(
            owner=OWNER, name="demo_bot", max_scope="account:read trade:read_write"
        ),
    )
    if issued is None or issued.client_secret is None:
        return
    key, secret = issued.key, issued.client_secret
    story.say(f"  client_id {key.client_id}, client_secret {secret}")
    story.say("  ^ the secret is shown this once; keyturn keeps only a keyed hash of it")
    kid = key.id

    def code() -> str:
        return notifier.last_code(kid)

    story.step(
        "ACTIVATE before ticking 'I saved the secret'",
        lambda: service.request_activation(kid, owner=OWNER),
    )
    story.step("Tick 'I saved the secret'", lambda: service.acknowledge_secret(kid, owner=OWNER))
    story.step(
        "ACTIVATE: a code goes to the owner's email",
        lambda: service.request_activation(kid, owner=OWNER),
    )
    story.step("Enter a wrong code", lambda: service.verify_code(kid, "000000", owner=OWNER))
    clock.advance(timedelta(seconds=30))
    story.step("Ask to resend after 30 s", lambda: service.resend_code(kid, owner=OWNER))
    clock.advance(timedelta(seconds=90))
    story.step("Ask to resend after 2 min", lambda: service.resend_code(kid, owner=OWNER))
    late = code()
    clock.advance(timedelta(minutes=5))
    story.step("Enter that code 5 min later", lambda: service.verify_code(kid, late, owner=OWNER))
    story.step("Request a new code", lambda: service.resend_code(kid, owner=OWNER))
    clock.advance(timedelta(seconds=20))
    story.step("Enter it in time", lambda: service.verify_code(kid, code(), owner=OWNER))
    who = story.step(
        "A trading client authenticates",
        lambda: service.authenticate(key.client_id, secret, source_ip=CLIENT_IP),
    )
    story.say(f"  accepted: key {who.key_id}, scope {who.max_scope}" if who else "")
    story.step("Deactivate", lambda: service.disable(kid, owner=OWNER))
    story.step(
        "The client authenticates again",
        lambda: service.authenticate(key.client_id, secret, source_ip=CLIENT_IP),
    )
    story.step(
        "Someone tries a wrong secret",
        lambda: service.authenticate(key.client_id, "not-the-secret", source_ip=CLIENT_IP),
    )
    story.step("Enable: re-activation needs a code", lambda: service.enable(kid, owner=OWNER))
    story.step("Enter the code", lambda: service.verify_code(kid, code(), owner=OWNER))
    story.step(
        "Edit the scope: an edited key is deactivated",
        lambda: service.edit(kid, owner=OWNER, max_scope="account:read"),
    )
    reset = story.step("Reset the secret", lambda: service.reset_secret(kid, owner=OWNER))
    if reset is not None:
        story.say(f"  new client_secret {reset.client_secret} (shown once; the old one is dead)")
    story.step("Remove the key", lambda: service.remove(kid, owner=OWNER))
    story.say("\nThe key's history (its audit trail):")
    for h in store.history(kid):
        origin = h.from_state.value if h.from_state else "-"
        story.say(f"  v{h.version:<2} {h.at:%H:%M:%S} {h.event:<22} {origin} -> {h.to_state.value}")
    story.say(
        "\nThe store is thrown away. Try it for real:\n"
        "  keyturn --dev create --init --owner you --name bot --scope account:read"
    )


def cmd_demo(app: App) -> None:
    """Tell the story on the terminal, or as ``{"transcript": [lines]}`` with ``--json``."""
    if not app.args.json:
        run_demo(sys.stdout)
        return
    transcript = io.StringIO()
    run_demo(transcript)
    app.emit({"transcript": transcript.getvalue().splitlines()}, "")
