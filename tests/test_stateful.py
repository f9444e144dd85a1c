"""Random sequences of actions and clock jumps, checked against an independent model.

After every step: a key is active only after a valid, unexpired, unused code for it was verified
since it was last deactivated; a secret is handed out once per create/reset; no two codes of one
key work at once; authenticate succeeds only for active keys with their current secret.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from keyturn import (
    AuthenticationFailed,
    CodeMismatch,
    KeyService,
    KeyturnError,
    Policy,
    State,
)
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.testing import InMemoryKeyStore, ManualClock, RecordingNotifier, make_service

if TYPE_CHECKING:
    from keyturn.ports import KeyStore

POLICY = Policy(max_attempts=3, max_consecutive_failures=7)


@attrs.define
class Model:
    """What the test expects of one key, kept apart from the service."""

    key_id: int
    client_id: str
    secret: str | None
    code: str | None = None
    sent_at: datetime | None = None
    attempts: int = 0
    failures: int = 0
    old_codes: list[str] = attrs.field(factory=list)
    verified_since_deactivation: bool = False
    ended: bool = False


class Lifecycle(RuleBasedStateMachine):
    """Drives one service with random actions; checks it against the model after each."""

    keys = Bundle("keys")

    def make_store(self) -> KeyStore:
        """The store this machine runs on."""
        return InMemoryKeyStore()

    def __init__(self) -> None:
        """A fresh service over fakes."""
        super().__init__()
        self.clock = ManualClock()
        self.notifier = RecordingNotifier()
        self.service: KeyService = make_service(
            store=self.make_store(), clock=self.clock, notifier=self.notifier, policy=POLICY
        )
        self.models: dict[int, Model] = {}
        self.secrets_seen: list[str] = []

    def _state(self, m: Model) -> State:
        return self.service.get(m.key_id, owner="alice").state

    def _try(self, call: object) -> bool:
        try:
            call()  # type: ignore[operator]
        except KeyturnError:
            return False
        return True

    def _code_sent(self, m: Model) -> None:
        if m.code is not None:
            m.old_codes.append(m.code)
        m.code = self.notifier.last_code(m.key_id)
        m.sent_at = self.clock.now()
        m.attempts = 0
        m.ended = False

    def _reusable(self, m: Model) -> bool:
        """Whether the model's last code is live and its resend wait not over: ACTIVATE keeps it."""
        if m.code is None or m.ended or m.sent_at is None or m.attempts >= POLICY.max_attempts:
            return False
        return self.clock.now() < m.sent_at + POLICY.resend_after

    def _activate(self, m: Model, call: object) -> None:
        """ACTIVATE (or enable through a code): the live code is kept, or a new one is sent."""
        reuse = self._reusable(m)
        if not self._try(call):
            return
        fresh = self.notifier.last_code(m.key_id) != m.code
        assert fresh is not reuse, m
        if fresh:
            self._code_sent(m)

    @initialize(target=keys)
    def first_key(self) -> Model:
        """Every run starts with one key."""
        return self._new_key()

    @precondition(lambda self: len(self.models) < 6)
    @rule(target=keys)
    def create(self) -> Model:
        """Create a key; its secret is new and handed out here."""
        return self._new_key()

    def _new_key(self) -> Model:
        issued = self.service.create(owner="alice", name="k", max_scope="account:read")
        assert issued.client_secret not in self.secrets_seen
        assert issued.client_secret is not None
        self.secrets_seen.append(issued.client_secret)
        m = Model(issued.key.id, issued.key.client_id, issued.client_secret)
        self.models[m.key_id] = m
        return m

    @rule(m=keys)
    def acknowledge(self, m: Model) -> None:
        """Acknowledge the secret."""
        self._try(lambda: self.service.acknowledge_secret(m.key_id, owner="alice"))

    @rule(m=keys)
    def request_activation(self, m: Model) -> None:
        """ACTIVATE: the dialog opens with the live code, or a new one once the wait is over."""
        self._activate(m, lambda: self.service.request_activation(m.key_id, owner="alice"))

    @rule(m=keys)
    def resend(self, m: Model) -> None:
        """Ask for a new code."""
        if self._try(lambda: self.service.resend_code(m.key_id, owner="alice")):
            self._code_sent(m)

    @rule(m=keys)
    def enable(self, m: Model) -> None:
        """Re-activate a key (through a code, as ACTIVATE does)."""
        self._activate(m, lambda: self.service.enable(m.key_id, owner="alice"))

    @rule(m=keys)
    def verify_right_code(self, m: Model) -> None:
        """Enter the latest code: accepted exactly when the model says it must be."""
        if m.code is None:
            return
        state = self._state(m)
        assert m.sent_at is not None
        should = (
            state is State.PENDING_2FA
            and not m.ended
            and self.clock.now() < m.sent_at + POLICY.code_ttl
            and m.attempts < POLICY.max_attempts
            and m.failures < POLICY.max_consecutive_failures
        )
        ok = self._try(lambda: self.service.verify_code(m.key_id, m.code, owner="alice"))
        assert ok == should, (state, m)
        event(f"right code {'accepted' if ok else 'refused'}")
        if ok:
            m.verified_since_deactivation = True
            m.failures = 0
            m.old_codes.append(m.code)
            m.code = None

    @rule(m=keys, wrongs=st.lists(st.integers(0, 99999), min_size=1, max_size=4))
    def verify_wrong_codes(self, m: Model, wrongs: list[int]) -> None:
        """Enter one to four wrong codes: never accepted; counted when a live code was waiting."""
        for wrong in wrongs:
            candidate = f"9{wrong:05d}"
            if candidate == m.code:
                continue
            before = self.service.get(m.key_id, owner="alice")
            try:
                self.service.verify_code(m.key_id, candidate, owner="alice")
            except CodeMismatch:
                m.attempts += 1
                m.failures += 1
                event("wrong code counted")
            except KeyturnError:
                assert self.service.get(m.key_id, owner="alice") == before
            else:
                raise AssertionError("a wrong code was accepted")

    @rule(m=keys)
    def verify_old_code(self, m: Model) -> None:
        """An earlier code of the key never works: only one code is live at a time."""
        if not m.old_codes:
            return
        old = m.old_codes[-1]
        if old == m.code:
            return
        try:
            self.service.verify_code(m.key_id, old, owner="alice")
        except CodeMismatch:
            m.attempts += 1
            m.failures += 1
        except KeyturnError:
            pass
        else:
            raise AssertionError("an old code was accepted")

    @rule(m=keys)
    def activate_now(self, m: Model) -> None:
        """Walk the portal's happy path from wherever the key is: ack, request, right code."""
        self.acknowledge(m)
        if self._state(m) in (State.SECRET_ACKNOWLEDGED, State.DISABLED):
            self.request_activation(m)
        self.verify_right_code(m)

    @rule(m=keys)
    def cancel(self, m: Model) -> None:
        """Close the code dialog: the code stays live, to be used when the dialog reopens."""
        self._try(lambda: self.service.cancel_activation(m.key_id, owner="alice"))

    @rule(m=keys)
    def disable(self, m: Model) -> None:
        """Deactivate."""
        if self._try(lambda: self.service.disable(m.key_id, owner="alice")):
            m.verified_since_deactivation = False

    @rule(m=keys, scope=st.sampled_from(["account:read", "trade:read", "wallet:read_write"]))
    def edit_scope(self, m: Model, scope: str) -> None:
        """Change the scope; an active key is disabled by it, a code waiting for entry ends."""
        before = self._state(m)
        changed = self.service.get(m.key_id, owner="alice").version
        if not self._try(lambda: self.service.edit(m.key_id, owner="alice", max_scope=scope)):
            return
        after = self.service.get(m.key_id, owner="alice")
        if before is State.ACTIVE and after.state is State.DISABLED:
            m.verified_since_deactivation = False
        if before is State.PENDING_2FA and after.version != changed:
            assert after.state is not State.PENDING_2FA
            m.ended = True

    @rule(m=keys)
    def reset(self, m: Model) -> None:
        """A new secret, handed out once."""
        try:
            issued = self.service.reset_secret(m.key_id, owner="alice")
        except KeyturnError:
            return
        assert issued.client_secret not in self.secrets_seen
        assert issued.client_secret is not None
        self.secrets_seen.append(issued.client_secret)
        m.secret = issued.client_secret

    @rule(m=consumes(keys))
    def remove(self, m: Model) -> None:
        """Remove the key for good."""
        self.service.remove(m.key_id, owner="alice")
        m.verified_since_deactivation = False
        m.code = None

    @rule(seconds=st.integers(0, 400))
    def wait(self, seconds: int) -> None:
        """Let time pass."""
        self.clock.advance(timedelta(seconds=seconds))

    @rule()
    def unlock_all(self) -> None:
        """An operator unlocks every key."""
        for m in self.models.values():
            if self._try(lambda m=m: self.service.unlock_activation(m.key_id, actor="ops")):
                m.failures = 0

    @invariant()
    def active_only_after_a_valid_code(self) -> None:
        """Every active key had a right code verified since it was last deactivated."""
        for m in self.models.values():
            if self._state(m) is State.ACTIVE:
                assert m.verified_since_deactivation

    @invariant()
    def authenticate_only_when_active(self) -> None:
        """Authenticate succeeds exactly for active keys with their current secret."""
        for m in self.models.values():
            try:
                self.service.authenticate(m.client_id, m.secret, source_ip="192.0.2.1")
            except AuthenticationFailed:
                ok = False
            else:
                ok = True
                event("authenticated")
            assert ok == (self._state(m) is State.ACTIVE)

    @invariant()
    def at_most_one_pending_code(self) -> None:
        """A key waiting for its code holds one code that can be entered; a removed key holds none."""
        for m in self.models.values():
            key = self.service.get(m.key_id, owner="alice")
            if key.state is State.PENDING_2FA:
                assert key.pending is not None
                assert not key.pending.ended
            if key.state is State.REMOVED:
                assert key.pending is None

    @invariant()
    def versions_match_history(self) -> None:
        """Every key's version equals the number of entries in its history."""
        for m in self.models.values():
            key = self.service.get(m.key_id, owner="alice")
            assert len(self.service.history(m.key_id, owner="alice")) == key.version

    def teardown(self) -> None:
        """Close the store."""
        self.service.store.close()


class LifecycleOnSQLite(Lifecycle):
    """The same random walks on a SQLite file (durability off: a fresh file per example)."""

    def make_store(self) -> KeyStore:
        """A SQLite store in a new temporary folder, removed at teardown."""
        self.folder = Path(tempfile.mkdtemp(prefix="keyturn-stateful-"))
        return SQLiteKeyStore(self.folder / "keys.db", synchronous="OFF")

    def teardown(self) -> None:
        """Close the store and remove its folder."""
        super().teardown()
        shutil.rmtree(self.folder, ignore_errors=True)


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLifecycleOnSQLite = LifecycleOnSQLite.TestCase
TestLifecycleOnSQLite.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
