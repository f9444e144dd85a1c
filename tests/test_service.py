"""The service's behaviours beyond the state table.

Codes, attempts, locks, ownership, quota, edits, secrets, authentication, confirmations, and an
outside code service.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest

from keyturn import (
    ActionNotAllowed,
    ActivationLocked,
    AuthenticationFailed,
    ChallengeInvalid,
    CodeAttemptsExhausted,
    CodeExpired,
    CodeMismatch,
    Confirmation,
    ConfirmationRequired,
    InvalidInput,
    KeyNotFound,
    KeyService,
    Policy,
    QuotaExceeded,
    State,
)
from keyturn.core.lifecycle import Action
from keyturn.ports import IssuedCode
from keyturn.testing import (
    InMemoryKeyStore,
    ManualClock,
    RecordingNotifier,
    key_in_state,
    make_service,
)


def pending(service: KeyService) -> int:
    """A new key of alice's, waiting for its code."""
    return key_in_state(service, State.PENDING_2FA).key.id


class TestVerification:
    def test_code_is_accepted_once(self, service: KeyService, notifier: RecordingNotifier) -> None:
        """A right code activates the key; entering it again is refused and changes nothing."""
        key_id = pending(service)
        code = notifier.last_code(key_id)
        service.verify_code(key_id, code, owner="alice")
        before = service.get(key_id, owner="alice")
        with pytest.raises(ActionNotAllowed):
            service.verify_code(key_id, code, owner="alice")
        assert service.get(key_id, owner="alice") == before

    def test_code_of_another_key_does_not_work(
        self, service: KeyService, notifier: RecordingNotifier
    ) -> None:
        """A code issued for one key is wrong for another."""
        a = pending(service)
        b = key_in_state(service, State.PENDING_2FA, name="k2").key.id
        with pytest.raises(CodeMismatch):
            service.verify_code(b, notifier.last_code(a), owner="alice")

    def test_wrong_codes_are_counted_and_kill_the_code(
        self, service: KeyService, notifier: RecordingNotifier
    ) -> None:
        """After max_attempts wrong codes even the right code is refused until a new one is sent."""
        key_id = pending(service)
        good = notifier.last_code(key_id)
        lefts = []
        for _ in range(5):
            with pytest.raises(CodeMismatch) as info:
                service.verify_code(key_id, "000000", owner="alice")
            lefts.append(info.value.attempts_left)
        assert lefts == [4, 3, 2, 1, 0]
        with pytest.raises(CodeAttemptsExhausted):
            service.verify_code(key_id, good, owner="alice")
        assert service.get(key_id, owner="alice").state is State.PENDING_2FA

    def test_resend_does_not_reset_the_failure_budget(
        self, clock: ManualClock, notifier: RecordingNotifier
    ) -> None:
        """Wrong codes add up across resends; at the lifetime cap activation locks (NIST)."""
        service = make_service(
            clock=clock,
            notifier=notifier,
            policy=Policy(max_attempts=3, max_consecutive_failures=5),
        )
        key_id = pending(service)
        for _ in range(3):
            with pytest.raises(CodeMismatch):
                service.verify_code(key_id, "000000", owner="alice")
        clock.advance(timedelta(minutes=2))
        service.resend_code(key_id, owner="alice")
        for left in (1, 0):
            with pytest.raises(CodeMismatch) as info:
                service.verify_code(key_id, "000000", owner="alice")
            assert info.value.attempts_left == left
        with pytest.raises(ActivationLocked):
            service.verify_code(key_id, notifier.last_code(key_id), owner="alice")
        clock.advance(timedelta(minutes=2))
        with pytest.raises(ActivationLocked):
            service.resend_code(key_id, owner="alice")

    def test_operator_unlock_clears_the_lock(
        self, clock: ManualClock, notifier: RecordingNotifier
    ) -> None:
        """After an operator unlocks a locked key, a new code can be sent and activates it."""
        service = make_service(
            clock=clock, notifier=notifier, policy=Policy(max_consecutive_failures=2)
        )
        key_id = pending(service)
        for _ in range(2):
            with pytest.raises(CodeMismatch):
                service.verify_code(key_id, "000000", owner="alice")
        service.unlock_activation(key_id, actor="ops:bob")
        assert service.history(key_id, owner="alice")[-1].actor == "ops:bob"
        clock.advance(timedelta(minutes=2))
        service.resend_code(key_id, owner="alice")
        assert service.verify_code(key_id, notifier.last_code(key_id), owner="alice").enabled

    def test_success_resets_consecutive_failures(
        self, service: KeyService, notifier: RecordingNotifier
    ) -> None:
        """A right code clears the consecutive-failure count."""
        key_id = pending(service)
        with pytest.raises(CodeMismatch):
            service.verify_code(key_id, "000000", owner="alice")
        key = service.verify_code(key_id, notifier.last_code(key_id), owner="alice")
        assert key.consecutive_failures == 0
        assert key.pending is None

    @pytest.mark.parametrize(
        "code", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "１２３４５６", " 12345", 123456, None]
    )
    def test_malformed_code_is_refused_and_not_counted(
        self, service: KeyService, code: object
    ) -> None:
        """A malformed code (wrong length, non-ASCII digits, wrong type) is invalid input, not an attempt."""
        key_id = pending(service)
        before = service.get(key_id, owner="alice")
        with pytest.raises(InvalidInput) as info:
            service.verify_code(key_id, code, owner="alice")
        assert info.value.field == "code"
        assert service.get(key_id, owner="alice") == before

    def test_expired_code_then_new_request_works(
        self, service: KeyService, clock: ManualClock, notifier: RecordingNotifier
    ) -> None:
        """After expiry the person requests a new code (resend), which works."""
        key_id = pending(service)
        clock.advance(timedelta(minutes=6))
        with pytest.raises(CodeExpired):
            service.verify_code(key_id, notifier.last_code(key_id), owner="alice")
        service.resend_code(key_id, owner="alice")
        assert service.verify_code(key_id, notifier.last_code(key_id), owner="alice").enabled


class TestOwnership:
    def test_other_owner_sees_unknown_key(self, service: KeyService) -> None:
        """Acting on another owner's key raises exactly what an unknown key raises."""
        key_id = key_in_state(service, State.CREATED).key.id
        with pytest.raises(KeyNotFound) as theirs:
            service.acknowledge_secret(key_id, owner="mallory")
        with pytest.raises(KeyNotFound) as missing:
            service.acknowledge_secret(key_id + 100, owner="mallory")
        assert str(theirs.value).replace(str(key_id), "N") == str(missing.value).replace(
            str(key_id + 100), "N"
        )
        assert service.get(key_id, owner="alice").state is State.CREATED

    def test_list_shows_only_own_live_keys(self, service: KeyService) -> None:
        """list_keys returns the owner's live keys; removed ones only when asked."""
        a = key_in_state(service, State.ACTIVE).key.id
        r = key_in_state(service, State.REMOVED, name="gone").key.id
        key_in_state(service, State.CREATED, owner="bob")
        assert [k.id for k in service.list_keys(owner="alice")] == [a]
        assert [k.id for k in service.list_keys(owner="alice", include_removed=True)] == [a, r]

    def test_quota_is_per_owner_and_counts_live_keys(self, service: KeyService) -> None:
        """The ninth live key of an owner is refused; removing one makes room."""
        ids = [key_in_state(service, State.CREATED, name=f"k{i}").key.id for i in range(8)]
        with pytest.raises(QuotaExceeded, match="remove one"):
            service.create(owner="alice", name="k9", max_scope="account:read")
        service.create(owner="bob", name="k9", max_scope="account:read")
        service.remove(ids[0], owner="alice")
        service.create(owner="alice", name="k9", max_scope="account:read")


class TestEdit:
    def test_scope_edit_disables_active_key(self, service: KeyService) -> None:
        """Changing the scope of an active key disables it (the portal's rule)."""
        key_id = key_in_state(service, State.ACTIVE).key.id
        key = service.edit(key_id, owner="alice", max_scope="account:read")
        assert key.state is State.DISABLED
        assert str(key.max_scope) == "account:read"
        assert service.history(key_id, owner="alice")[-1].event == "changed_scope"

    def test_name_edit_keeps_active_key_active(self, service: KeyService) -> None:
        """Renaming an active key leaves it active."""
        key_id = key_in_state(service, State.ACTIVE).key.id
        key = service.edit(key_id, owner="alice", name="renamed")
        assert (key.state, key.name) == (State.ACTIVE, "renamed")

    def test_policy_can_keep_edited_keys_active(self) -> None:
        """With edit_deactivates off, a whitelist edit leaves an active key active."""
        service = make_service(policy=Policy(edit_deactivates=False))
        key_id = key_in_state(service, State.ACTIVE).key.id
        key = service.edit(key_id, owner="alice", ip_whitelist=["192.0.2.0/24"])
        assert key.state is State.ACTIVE
        assert [str(n) for n in key.ip_whitelist] == ["192.0.2.0/24"]

    def test_edit_that_changes_nothing_writes_nothing(self, service: KeyService) -> None:
        """An edit to the values the key already has returns it unchanged, with no history."""
        key = key_in_state(service, State.ACTIVE).key
        before = service.get(key.id, owner="alice")
        after = service.edit(key.id, owner="alice", name=key.name, max_scope=str(key.max_scope))
        assert after == before
        assert len(service.history(key.id, owner="alice")) == before.version

    def test_several_fields_are_one_event(self, service: KeyService) -> None:
        """Changing several fields at once is one history entry naming them all."""
        key_id = key_in_state(service, State.CREATED).key.id
        service.edit(
            key_id,
            owner="alice",
            name="n2",
            enabled_features=["block_trade_approval"],
            ip_whitelist="10.0.0.1; 2001:db8::/32",
        )
        last = service.history(key_id, owner="alice")[-1]
        assert (last.event, last.detail) == (
            "edited_api_key",
            "fields=name,ip_whitelist,enabled_features",
        )


class TestSecretsAndAuthentication:
    def test_authenticate_only_when_active(self, service: KeyService) -> None:
        """Authenticate fails for every state but active, and succeeds when active."""
        issued = key_in_state(service, State.PENDING_2FA)
        with pytest.raises(AuthenticationFailed) as info:
            service.authenticate(issued.key.client_id, issued.client_secret, source_ip="1.2.3.4")
        assert info.value.reason == "key_not_active"
        service.verify_code(issued.key.id, service.notifier.last_code(), owner="alice")  # type: ignore[attr-defined]
        who = service.authenticate(issued.key.client_id, issued.client_secret, source_ip="1.2.3.4")
        assert (who.key_id, who.owner) == (issued.key.id, "alice")
        service.disable(issued.key.id, owner="alice")
        with pytest.raises(AuthenticationFailed):
            service.authenticate(issued.key.client_id, issued.client_secret, source_ip="1.2.3.4")

    def test_wrong_secret_and_unknown_client_fail_alike(self, service: KeyService) -> None:
        """A wrong secret and an unknown client id fail with the same message."""
        issued = key_in_state(service, State.ACTIVE)
        with pytest.raises(AuthenticationFailed) as wrong:
            service.authenticate(issued.key.client_id, "x" * 43, source_ip="1.2.3.4")
        with pytest.raises(AuthenticationFailed) as unknown:
            service.authenticate("nobody00", issued.client_secret, source_ip="1.2.3.4")
        assert str(wrong.value) == str(unknown.value) == "invalid credentials"

    def test_whitelist_is_enforced(self, service: KeyService) -> None:
        """An active key with a whitelist authenticates only from listed addresses and ranges."""
        issued = key_in_state(service, State.ACTIVE)
        service.edit(issued.key.id, owner="alice", ip_whitelist="10.1.0.0/16 ::1")
        service.enable(issued.key.id, owner="alice")
        service.verify_code(issued.key.id, service.notifier.last_code(), owner="alice")  # type: ignore[attr-defined]
        for ip in ("10.1.2.3", "::1"):
            service.authenticate(issued.key.client_id, issued.client_secret, source_ip=ip)
        with pytest.raises(AuthenticationFailed) as info:
            service.authenticate(issued.key.client_id, issued.client_secret, source_ip="10.2.0.1")
        assert info.value.reason == "ip_not_allowed"

    @pytest.mark.parametrize("peer", ["testclient", None, "/run/app.sock", "1.2.3"])
    def test_peer_without_an_address_passes_only_keys_without_a_whitelist(
        self, service: KeyService, peer: str | None
    ) -> None:
        """A peer that is no IP address (a test client, a Unix socket) cannot match a whitelist."""
        issued = key_in_state(service, State.ACTIVE)
        principal = service.authenticate(issued.key.client_id, issued.client_secret, source_ip=peer)
        assert principal.key_id == issued.key.id
        service.edit(issued.key.id, owner="alice", ip_whitelist="0.0.0.0/0 ::/0")
        service.enable(issued.key.id, owner="alice")
        service.verify_code(issued.key.id, service.notifier.last_code(), owner="alice")  # type: ignore[attr-defined]
        with pytest.raises(AuthenticationFailed) as info:
            service.authenticate(issued.key.client_id, issued.client_secret, source_ip=peer)
        assert info.value.reason == "ip_not_allowed"
        service.authenticate(issued.key.client_id, issued.client_secret, source_ip="10.0.0.1")

    def test_reset_secret_replaces_it_at_once(self, service: KeyService) -> None:
        """After a reset the old secret fails and the new one, handed out once, works."""
        issued = key_in_state(service, State.ACTIVE)
        fresh = service.reset_secret(issued.key.id, owner="alice")
        assert fresh.client_secret not in (None, issued.client_secret)
        assert fresh.key.fingerprint != issued.key.fingerprint
        with pytest.raises(AuthenticationFailed):
            service.authenticate(issued.key.client_id, issued.client_secret, source_ip="::1")
        service.authenticate(issued.key.client_id, fresh.client_secret, source_ip="::1")

    def test_secret_is_stored_only_as_keyed_digest(
        self, service: KeyService, store: InMemoryKeyStore
    ) -> None:
        """The stored key holds a 64-hex digest, not the secret, and its repr shows neither."""
        issued = service.create(owner="alice", name="k", max_scope="account:read")
        secret = issued.client_secret
        assert secret is not None
        assert len(secret) >= 43
        stored = store.get(issued.key.id)
        assert stored is not None
        assert secret not in repr(attrs.asdict(stored))
        assert stored.secret_digest is not None
        assert len(stored.secret_digest) == 64
        assert stored.secret_digest not in repr(stored)
        assert secret not in repr(issued)

    def test_public_key_keys_have_no_secret(self, service: KeyService) -> None:
        """A key created with a public key gets no secret, an MD5 fingerprint, and no reset."""
        pem = (
            "-----BEGIN PUBLIC KEY-----\n"
            "MCowBQYDK2VwAyEApajFN0CSwIaaiIRPiFbiYYvpsLQLSccSLLsKPe984sc=\n"
            "-----END PUBLIC KEY-----"
        )
        issued = service.create(owner="alice", name="ed", max_scope="trade:read", public_key=pem)
        assert issued.client_secret is None
        assert len(issued.key.fingerprint) == 32
        with pytest.raises(InvalidInput, match="public key"):
            service.reset_secret(issued.key.id, owner="alice")


class TestDirectEnable:
    def test_direct_enable_policy_skips_the_code(self) -> None:
        """With direct_enable, enable takes a disabled key straight to active."""
        service = make_service(policy=Policy(direct_enable=True))
        key_id = key_in_state(service, State.DISABLED).key.id
        assert service.enable(key_id, owner="alice").state is State.ACTIVE


class TestNotifications:
    def test_owner_is_told_of_every_change(
        self, service: KeyService, notifier: RecordingNotifier
    ) -> None:
        """The owner gets news of creation, activation, disabling, edits, reset and removal."""
        key_id = key_in_state(service, State.DISABLED).key.id
        service.edit(key_id, owner="alice", name="k2")
        service.reset_secret(key_id, owner="alice")
        service.remove(key_id, owner="alice")
        assert notifier.events(key_id) == [
            "API key 'k1' was created",
            "API key 'k1' was activated",
            "API key 'k1' was disabled",
            "API key 'k2' was renamed",
            "API key 'k2' was given a new secret",
            "API key 'k2' was removed",
        ]


class TestConfirmations:
    @pytest.fixture(name="confirming")
    def _confirming(self, clock: ManualClock, notifier: RecordingNotifier) -> KeyService:
        return make_service(
            clock=clock,
            notifier=notifier,
            policy=Policy(confirm=frozenset({Action.CREATE, Action.EDIT, Action.REMOVE})),
        )

    def test_create_needs_a_code_and_runs_once(
        self, confirming: KeyService, notifier: RecordingNotifier
    ) -> None:
        """Create answers ConfirmationRequired; repeating it with the code creates one key, once."""
        with pytest.raises(ConfirmationRequired) as info:
            confirming.create(owner="alice", name="k1", max_scope="account:read")
        assert confirming.list_keys(owner="alice") == []
        proof = Confirmation(info.value.challenge_id, notifier.last_code())
        confirming.create(owner="alice", name="k1", max_scope="account:read", confirmation=proof)
        with pytest.raises(ChallengeInvalid, match="already used"):
            confirming.create(
                owner="alice", name="k1", max_scope="account:read", confirmation=proof
            )
        assert len(confirming.list_keys(owner="alice")) == 1

    def test_code_confirms_only_its_own_request(
        self, confirming: KeyService, notifier: RecordingNotifier
    ) -> None:
        """A code sent to confirm one edit does not confirm a different edit."""
        key_id = self._confirmed_key(confirming, notifier)
        with pytest.raises(ConfirmationRequired) as info:
            confirming.edit(key_id, owner="alice", name="asked")
        proof = Confirmation(info.value.challenge_id, notifier.last_code())
        with pytest.raises(ChallengeInvalid, match="differs"):
            confirming.edit(key_id, owner="alice", name="other", confirmation=proof)
        with pytest.raises(ChallengeInvalid, match="another request"):
            confirming.remove(key_id, owner="alice", confirmation=proof)
        assert (
            confirming.edit(key_id, owner="alice", name="asked", confirmation=proof).name == "asked"
        )

    def test_wrong_and_expired_confirmation_codes(
        self, confirming: KeyService, notifier: RecordingNotifier, clock: ManualClock
    ) -> None:
        """A wrong code is counted; an expired one is refused; the key stays unchanged."""
        key_id = self._confirmed_key(confirming, notifier)
        with pytest.raises(ConfirmationRequired) as info:
            confirming.remove(key_id, owner="alice")
        cid = info.value.challenge_id
        with pytest.raises(CodeMismatch) as wrong:
            confirming.remove(key_id, owner="alice", confirmation=Confirmation(cid, "000000"))
        assert wrong.value.attempts_left == 4
        clock.advance(timedelta(minutes=5))
        with pytest.raises(CodeExpired):
            confirming.remove(
                key_id, owner="alice", confirmation=Confirmation(cid, notifier.last_code())
            )
        assert confirming.get(key_id, owner="alice").state is State.CREATED

    def test_challenge_of_another_owner_is_unknown(
        self, confirming: KeyService, notifier: RecordingNotifier
    ) -> None:
        """Another owner cannot use someone's challenge, even with the right code."""
        with pytest.raises(ConfirmationRequired) as info:
            confirming.create(owner="alice", name="k1", max_scope="account:read")
        proof = Confirmation(info.value.challenge_id, notifier.last_code())
        with pytest.raises(ChallengeInvalid, match="no such challenge"):
            confirming.create(owner="bob", name="k1", max_scope="account:read", confirmation=proof)

    @classmethod
    def _confirmed_key(cls, service: KeyService, notifier: RecordingNotifier) -> int:
        """A key created through its confirmation code."""
        proof = cls._confirm_create(service, notifier)
        issued = service.create(
            owner="alice", name="k1", max_scope="account:read", confirmation=proof
        )
        return issued.key.id

    @staticmethod
    def _confirm_create(service: KeyService, notifier: RecordingNotifier) -> Confirmation:
        with pytest.raises(ConfirmationRequired) as info:
            service.create(owner="alice", name="k1", max_scope="account:read")
        return Confirmation(info.value.challenge_id, notifier.last_code())


@attrs.define
class OutsideCodeService:
    """A test double of a verifier that sends and checks codes itself (like Twilio Verify)."""

    sent: dict[str, tuple[str, str]] = attrs.field(factory=dict)
    counter: int = 0

    def issue(self, *, subject: str, owner: str) -> IssuedCode:
        """Send a code to the owner from the outside service; keyturn gets only its sid."""
        self.counter += 1
        sid = f"VE{self.counter:04d}"
        self.sent[sid] = (owner, f"{700000 + self.counter}")
        return IssuedCode(ref=sid, code=None)

    def check(self, *, subject: str, ref: str, candidate: str) -> bool:
        """Ask the outside service whether the code matches."""
        return ref in self.sent and self.sent[ref][1] == candidate

    def is_well_formed(self, candidate: str) -> bool:
        """Six ASCII digits."""
        return candidate.isascii() and candidate.isdigit() and len(candidate) == 6


class TestOutsideVerifier:
    def test_outside_service_sends_and_checks_codes(self) -> None:
        """A verifier that delivers codes itself fits the port: keyturn sends no code, checks work."""
        outside = OutsideCodeService()
        notifier = RecordingNotifier()
        service = make_service(verifier=outside, notifier=notifier)
        issued = service.create(owner="alice", name="k", max_scope="account:read")
        service.acknowledge_secret(issued.key.id, owner="alice")
        service.request_activation(issued.key.id, owner="alice")
        assert notifier.codes() == []
        ((sid, (owner, code)),) = outside.sent.items()
        assert owner == "alice"
        with pytest.raises(CodeMismatch):
            service.verify_code(issued.key.id, "000000", owner="alice")
        assert service.verify_code(issued.key.id, code, owner="alice").enabled
        assert sid.startswith("VE")


class _RacingStore(InMemoryKeyStore):
    """A memory store whose next ``losses`` applies lose a race to another writer."""

    def __init__(self, losses: int) -> None:
        super().__init__()
        self.losses = losses

    def apply(self, change: Any, *, claim: bool = False) -> None:
        if self.losses:
            self.losses -= 1
            from keyturn import ConcurrentUpdate  # noqa: PLC0415

            raise ConcurrentUpdate(change.key.id, change.expected_version)
        super().apply(change, claim=claim)


class TestEdgeCases:
    def test_lost_race_is_retried(self) -> None:
        """A write that loses a race is re-decided and retried, and then succeeds."""
        store = _RacingStore(0)
        service = make_service(store=store)
        key_id = key_in_state(service, State.ACTIVE).key.id
        store.losses = 3
        assert service.disable(key_id, owner="alice").state is State.DISABLED

    def test_retries_run_out(self) -> None:
        """After WRITE_ATTEMPTS lost races ConcurrentUpdate reaches the caller; nothing changed."""
        from keyturn import ConcurrentUpdate  # noqa: PLC0415
        from keyturn.service import WRITE_ATTEMPTS  # noqa: PLC0415

        store = _RacingStore(0)
        service = make_service(store=store)
        key_id = key_in_state(service, State.ACTIVE).key.id
        store.losses = WRITE_ATTEMPTS
        with pytest.raises(ConcurrentUpdate, match="retry"):
            service.disable(key_id, owner="alice")
        assert service.get(key_id, owner="alice").state is State.ACTIVE

    def test_unlock_unknown_key(self, service: KeyService) -> None:
        """Unlocking a key that does not exist is KeyNotFound."""
        with pytest.raises(KeyNotFound):
            service.unlock_activation(404, actor="ops")

    def test_direct_enable_is_refused_while_locked(self, notifier: RecordingNotifier) -> None:
        """Under direct enable, a key locked by wrong codes is not enabled until unlocked."""
        service = make_service(
            notifier=notifier, policy=Policy(direct_enable=True, max_consecutive_failures=1)
        )
        key_id = key_in_state(service, State.DISABLED).key.id
        service.request_activation(key_id, owner="alice")
        with pytest.raises(CodeMismatch):
            service.verify_code(key_id, "000000", owner="alice")
        service.cancel_activation(key_id, owner="alice")
        with pytest.raises(ActivationLocked):
            service.enable(key_id, owner="alice")
        service.unlock_activation(key_id, actor="ops")
        assert service.enable(key_id, owner="alice").state is State.ACTIVE


class TestConfirmationInput:
    @pytest.fixture(name="confirming")
    def _confirming(self, notifier: RecordingNotifier) -> KeyService:
        return make_service(notifier=notifier, policy=Policy(confirm={Action.REMOVE}))

    @pytest.mark.parametrize("proof", ["123456", ("id", "123456"), 7])
    def test_confirmation_of_wrong_type(self, confirming: KeyService, proof: Any) -> None:
        """A confirmation that is not a Confirmation is invalid input; the key stays."""
        key_id = confirming.create(owner="alice", name="k", max_scope="account:read").key.id
        with pytest.raises(InvalidInput):
            confirming.remove(key_id, owner="alice", confirmation=proof)
        assert confirming.get(key_id, owner="alice").state is State.CREATED

    def test_oversized_challenge_id(self, confirming: KeyService) -> None:
        """An oversized challenge id names no challenge."""
        key_id = confirming.create(owner="alice", name="k", max_scope="account:read").key.id
        with pytest.raises(ChallengeInvalid, match="no such challenge"):
            confirming.remove(key_id, owner="alice", confirmation=Confirmation("x" * 500, "123456"))

    def test_challenge_attempts_run_out(
        self, confirming: KeyService, notifier: RecordingNotifier
    ) -> None:
        """After max_attempts wrong codes a challenge is dead, even for the right code."""
        key_id = confirming.create(owner="alice", name="k", max_scope="account:read").key.id
        with pytest.raises(ConfirmationRequired) as info:
            confirming.remove(key_id, owner="alice")
        cid = info.value.challenge_id
        for _ in range(5):
            with pytest.raises(CodeMismatch):
                confirming.remove(key_id, owner="alice", confirmation=Confirmation(cid, "000000"))
        with pytest.raises(CodeAttemptsExhausted):
            confirming.remove(
                key_id, owner="alice", confirmation=Confirmation(cid, notifier.last_code())
            )
        assert confirming.get(key_id, owner="alice").state is State.CREATED
