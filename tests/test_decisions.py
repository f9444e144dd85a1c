"""The pure core, driven without any port: decide(), its needs, its checks and its changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from keyturn import Policy, State
from keyturn.core import changes, checks, commands
from keyturn.core.commands import CheckCode, Decision, SendCode
from keyturn.core.decide import create, decide
from keyturn.core.errors import (
    ActionNotAllowed,
    ActivationLocked,
    CodeExpired,
    CodeMismatch,
    InvalidInput,
    ResendTooEarly,
    SendLimitReached,
)
from keyturn.core.lifecycle import Check
from keyturn.core.records import ApiKey
from keyturn.core.scope import Scope
from keyturn.core.validation import ip_whitelist
from keyturn.ports import IssuedCode

if TYPE_CHECKING:
    from keyturn.core.commands import Command, Need
    from keyturn.core.records import Change

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DIRECT = Policy(direct_enable=True)
PORTAL = Policy()


def key(state: State = State.ACTIVE, **fields: Any) -> ApiKey:
    """A stored key at version 4, credential generation 2."""
    base = ApiKey(
        id=7,
        owner="alice",
        client_id="c1",
        name="k",
        max_scope=Scope.parse("account:read trade:read_write"),
        ip_whitelist=(),
        enabled_features=(),
        state=state,
        version=4,
        created_at=T0,
        updated_at=T0,
        fingerprint="f",
        generation=2,
    )
    return attrs.evolve(base, **fields)


def run(
    k: ApiKey,
    command: Command,
    *,
    at: datetime = T0,
    policy: Policy = PORTAL,
    answer: IssuedCode | bool | None = None,
) -> Decision | Need:
    """One call of decide, with plain ids."""
    return decide(k, command, now=at, policy=policy, new_id=lambda: "n", answer=answer)


def done(outcome: Decision | Need) -> Change:
    """The change of a decision that writes one."""
    assert isinstance(outcome, Decision)
    assert outcome.change is not None
    return outcome.change


def activated(k: ApiKey, *, at: datetime = T0, policy: Policy = PORTAL) -> ApiKey:
    """``k`` after ACTIVATE, its code issued at ``at``."""
    need = run(k, commands.RequestActivation("a"), at=at, policy=policy)
    assert isinstance(need, SendCode)
    issued = IssuedCode(ref="ref", code="123456")
    return done(run(k, commands.RequestActivation("a"), at=at, policy=policy, answer=issued)).key


WAITING = key(State.SECRET_ACKNOWLEDGED)


class TestNeeds:
    def test_a_code_is_asked_for_before_it_is_sent(self) -> None:
        """ACTIVATE first asks the shell for a code for this key and owner; with it, the key waits in pending_2fa."""
        need = run(WAITING, commands.RequestActivation("a"))
        assert need == SendCode("activation:7", "alice")
        pending = activated(WAITING)
        assert pending.state is State.PENDING_2FA
        assert pending.pending is not None
        assert pending.sends == (T0,)

    def test_a_check_is_asked_for_before_a_code_is_judged(self) -> None:
        """Verify first asks the shell to check the candidate against the live code's reference."""
        need = run(activated(WAITING), commands.Verify("a", "654321"))
        assert isinstance(need, CheckCode)
        assert (need.subject, need.ref, need.candidate) == ("activation:7", "ref", "654321")

    def test_checks_run_before_any_need(self) -> None:
        """An expired code is refused before the verifier is asked anything."""
        late = T0 + PORTAL.code_ttl
        with pytest.raises(CodeExpired):
            run(activated(WAITING), commands.Verify("a", "654321"), at=late)

    def test_a_wrong_code_is_counted_then_refused(self) -> None:
        """A mismatch is a change that counts the failure, with the refusal to raise after it."""
        outcome = run(activated(WAITING), commands.Verify("a", "1"), answer=False)
        assert isinstance(outcome, Decision)
        assert outcome.change is not None
        assert outcome.change.key.consecutive_failures == 1
        assert isinstance(outcome.refusal, CodeMismatch)
        assert outcome.refusal.attempts_left == 4
        assert outcome.refusal.failures_before_lock == 99


class TestActivationAcrossTheDialog:
    def test_closing_and_reopening_keeps_the_live_code(self) -> None:
        """ACTIVATE after closing the dialog reopens it with the live code: no new code before 2 minutes."""
        closed = done(run(activated(WAITING), commands.Cancel("a"))).key
        assert closed.state is State.SECRET_ACKNOWLEDGED
        later = T0 + timedelta(seconds=30)
        reopened = done(run(closed, commands.RequestActivation("a"), at=later))
        assert reopened.key.state is State.PENDING_2FA
        assert reopened.key.pending == closed.pending
        assert reopened.history[0].event == "activation_reopened"
        assert reopened.notifications == ()

    def test_the_resend_wait_holds_across_close_and_request(self) -> None:
        """Four close-and-ACTIVATE rounds with the clock stopped send one code in all."""
        k = activated(WAITING)
        for _ in range(4):
            k = done(run(k, commands.Cancel("a"))).key
            outcome = run(k, commands.RequestActivation("a"))
            assert isinstance(outcome, Decision), "no new code may be asked for"
            k = done(outcome).key
        assert k.sends == (T0,)

    def test_activate_on_a_pending_key_reopens_the_dialog(self) -> None:
        """A key left waiting for its code can use Activate: the live code is kept, or after 2 minutes a new one is sent."""
        pending = activated(WAITING)
        assert isinstance(run(pending, commands.RequestActivation("a")), Decision)
        after = T0 + PORTAL.resend_after
        assert isinstance(run(pending, commands.RequestActivation("a"), at=after), SendCode)

    def test_a_dead_code_waits_for_the_resend_rule(self) -> None:
        """With the code out of tries, ACTIVATE sends a new code only once the resend wait is over."""
        sent = activated(WAITING)
        assert sent.pending is not None
        dead_code = attrs.evolve(sent.pending, attempts=5)
        dead = attrs.evolve(sent, state=State.SECRET_ACKNOWLEDGED, pending=dead_code)
        with pytest.raises(ResendTooEarly) as raised:
            run(dead, commands.RequestActivation("a"), at=T0 + timedelta(seconds=119))
        assert raised.value.available_at == T0 + PORTAL.resend_after
        assert isinstance(
            run(dead, commands.RequestActivation("a"), at=T0 + PORTAL.resend_after), SendCode
        )

    def test_the_send_cap_holds(self) -> None:
        """A sixth code in ten minutes is refused, whatever the resend wait says."""
        sends = tuple(T0 + timedelta(minutes=i) for i in range(5))
        busy = key(State.SECRET_ACKNOWLEDGED, sends=sends)
        with pytest.raises(SendLimitReached):
            run(busy, commands.RequestActivation("a"), at=T0 + timedelta(minutes=9))

    def test_an_edit_while_a_code_is_pending_ends_the_code(self) -> None:
        """Editing a key that waits for its code ends the code and returns the key to where activation began."""
        pending = activated(WAITING)
        edit = changes.Edit(max_scope=Scope.parse("account:read_write"))
        edited = done(run(pending, commands.Edit("a", edit))).key
        assert edited.state is State.SECRET_ACKNOWLEDGED
        assert edited.pending is not None
        assert edited.pending.ended
        with pytest.raises(ResendTooEarly):  # the wait still holds: the edit opens no code storm
            run(edited, commands.RequestActivation("a"))

    def test_a_code_entered_right_ends_the_wait(self) -> None:
        """After a successful activation, disabling and activating again sends a code at once."""
        active = done(run(activated(WAITING), commands.Verify("a", "1"), answer=True)).key
        off = done(run(active, commands.Disable("a"))).key
        assert isinstance(run(off, commands.RequestActivation("a")), SendCode)

    def test_locked_activation_sends_nothing(self) -> None:
        """After 100 wrong codes in a row, no code is sent and none is checked."""
        locked = key(State.SECRET_ACKNOWLEDGED, consecutive_failures=100)
        with pytest.raises(ActivationLocked):
            run(locked, commands.RequestActivation("a"))


class TestHints:
    @pytest.mark.parametrize(
        ("state", "command", "says"),
        [
            (State.ACTIVE, commands.RequestActivation("a"), "already active"),
            (State.ACTIVE, commands.Enable("a"), "already active"),
            (State.CREATED, commands.RequestActivation("a"), "acknowledge the secret first"),
            (State.DISABLED, commands.Disable("a"), "already disabled"),
            (State.SECRET_ACKNOWLEDGED, commands.Verify("a", "1"), "request activation"),
            (State.PENDING_2FA, commands.Disable("a"), "not active yet"),
            (State.REMOVED, commands.Enable("a"), "removed"),
        ],
    )
    def test_a_refusal_names_what_would_make_it_possible(
        self, state: State, command: Command, says: str
    ) -> None:
        """The hint fits the state the key is really in."""
        with pytest.raises(ActionNotAllowed, match=says):
            run(key(state), command)


class TestGeneration:
    def test_a_new_secret_moves_the_generation(self) -> None:
        """reset_secret ends every credential issued before it."""
        secret = commands.NewSecret(digest="d", fingerprint="f2", sealed=None)
        assert done(run(key(), commands.ResetSecret("a", secret))).key.generation == 3

    def test_a_public_key_has_no_secret_to_reset(self) -> None:
        """The has-a-secret check refuses a reset for a key registered with a public key."""
        secret = commands.NewSecret(digest="d", fingerprint="f2", sealed=None)
        with pytest.raises(InvalidInput, match="public key"):
            run(key(public_key="PEM"), commands.ResetSecret("a", secret))

    @pytest.mark.parametrize("command", [commands.Disable("a"), commands.Remove("a")])
    def test_leaving_active_moves_the_generation(self, command: Command) -> None:
        """Disabling or removing an active key ends its credentials; enabling again brings none back."""
        left = done(run(key(), command)).key
        assert left.generation == 3
        if left.state is State.DISABLED:
            back = done(run(left, commands.Enable("a"), policy=DIRECT)).key
            assert (back.state, back.generation) == (State.ACTIVE, 3)

    @pytest.mark.parametrize(
        ("fields", "moves"),
        [
            ({"max_scope": Scope.parse("account:read")}, True),
            ({"max_scope": Scope.parse("account:read trade:read_write wallet:read")}, False),
            ({"ip_whitelist": ip_whitelist("10.0.0.0/8")}, True),
            ({"name": "renamed"}, False),
        ],
        ids=["narrower-scope", "wider-scope", "whitelist-from-any", "rename"],
    )
    def test_an_edit_moves_the_generation_only_when_it_narrows(
        self, fields: dict[str, Any], moves: bool
    ) -> None:
        """A narrower scope or whitelist ends credentials; a wider scope or a rename does not."""
        command = commands.Edit("a", changes.Edit(**fields))
        edited = done(run(key(), command, policy=Policy(edit_deactivates=False))).key
        assert (edited.generation == 3) is moves

    @pytest.mark.parametrize(
        ("before", "after", "narrows"),
        [
            ("10.0.0.0/8", "10.0.0.0/16", True),
            ("10.0.0.0/16", "10.0.0.0/8", False),
            ("10.0.0.0/8", "", False),
            ("10.0.0.0/8 2001:db8::/32", "10.0.0.0/8", True),
            ("10.0.0.0/8 2001:db8::/32", "2001::/16 10.0.0.0/7", False),
        ],
    )
    def test_whitelist_narrowing_is_by_address_coverage(
        self, before: str, after: str, narrows: bool
    ) -> None:
        """A whitelist narrows when some address it let through is no longer let through."""
        old = key(ip_whitelist=ip_whitelist(before))
        new = attrs.evolve(old, ip_whitelist=ip_whitelist(after))
        assert changes.narrows(old, new) is narrows


class TestChain:
    def test_an_edit_with_enabled_is_one_change(self) -> None:
        """Edit then enable keep the first expected version, every history entry and every notice."""
        off = key(State.DISABLED)
        command = commands.Edit("a", changes.Edit(name="renamed"), enabled=True)
        both = done(run(off, command, policy=DIRECT))
        assert both.expected_version == off.version
        assert both.key.state is State.ACTIVE
        assert [h.event for h in both.history] == ["changed_name", "enabled_api_key"]

    def test_an_edit_that_cannot_enable_refuses_whole(self) -> None:
        """Without direct enable, edit with enabled=true is refused before anything is built."""
        command = commands.Edit("a", changes.Edit(name="renamed"), enabled=True)
        with pytest.raises(ActionNotAllowed):
            run(key(State.DISABLED), command)

    def test_create_and_enable_is_one_change(self) -> None:
        """create(enable=True) acknowledges and enables in the same change; without the policy it is refused."""
        draft = key(State.CREATED, id=0, version=0, generation=0)
        change = create(draft, actor="a", now=T0, policy=DIRECT, new_id=lambda: "n", enable=True)
        assert [h.event for h in change.history] == [
            "new_api_key",
            "secret_acknowledged",
            "enabled_api_key",
        ]
        with pytest.raises(ActionNotAllowed):
            create(draft, actor="a", now=T0, policy=PORTAL, new_id=lambda: "n", enable=True)

    def test_a_step_that_does_not_follow_is_refused(self) -> None:
        """A step decided from another version of the key cannot be chained."""
        off = done(run(key(), commands.Disable("a")))
        with pytest.raises(ValueError, match="previous one left"):
            changes.chain(off, off)


def test_every_check_has_its_rule() -> None:
    """Each check named on an edge has exactly one implementation."""
    assert set(Check) == checks.CHECKED
