"""Security keys: Deribit's per-call 2FA with TOTP, through the sync and the async service.

Every test runs on both services and on every store (the ``service`` fixture). The TOTP codes are
computed from the enrolled secret at the manual clock's time, as an authenticator app would.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from keyturn import (
    InvalidInput,
    KeyService,
    Policy,
    SecurityAnswer,
    SecurityKeyEnrollment,
    SecurityKeyLocked,
    SecurityKeyRefused,
    SecurityKeyRequired,
)
from keyturn.adapters.totp import TotpVerifier
from keyturn.core.security_keys import call_digest
from keyturn.crypto.sealing import SecretBox
from keyturn.testing import ManualClock, make_service

CALL = "private/list_api_keys"
PARAMS: dict[str, Any] = {}
TOTP = TotpVerifier()


@pytest.fixture(name="keyturn_policy")
def _policy() -> Policy:
    """The default rules, but three wrong codes in a row lock a security key."""
    return Policy(max_consecutive_failures=3)


@pytest.fixture(name="enrolled")
def _enrolled(service: KeyService) -> SecurityKeyEnrollment:
    """Alice has a TOTP security key."""
    return service.enroll_security_key("alice", name="phone", issuer="Example")


def challenge_for(
    service: KeyService, call: str = CALL, params: dict[str, Any] | None = None
) -> SecurityKeyRequired:
    """The challenge a guarded call of alice's answers with."""
    with pytest.raises(SecurityKeyRequired) as raised:
        service.authorize_call(owner="alice", call=call, params=params or PARAMS)
    return raised.value


def code(enrolled: SecurityKeyEnrollment, clock: ManualClock, steps: int = 0) -> str:
    """The code alice's app shows ``steps`` time steps from now."""
    return TOTP.code_at(enrolled.secret, clock.now() + timedelta(seconds=30 * steps))


def answer(
    service: KeyService, challenge: str, candidate: str, call: str = CALL, **kw: Any
) -> None:
    """Repeat alice's guarded call with an answer."""
    service.authorize_call(
        owner="alice",
        call=call,
        params=kw.get("params", PARAMS),
        answer=SecurityAnswer(challenge, candidate),
    )


def wrong_code(right: str) -> str:
    """A six-digit code that is not ``right``."""
    return str((int(right) + 500_000) % 1_000_000).zfill(6)


def refused(reason: str) -> Any:
    """Expect a refusal for ``reason``."""
    return pytest.raises(SecurityKeyRefused, match=reason)


class TestWithoutSecurityKey:
    def test_calls_pass_and_nothing_is_written(self, service: KeyService) -> None:
        """An account without a security key passes guarded calls, answer or not."""
        service.authorize_call(owner="alice", call=CALL, params=PARAMS)
        service.authorize_call(
            owner="alice", call=CALL, params=PARAMS, answer=SecurityAnswer("x.1.y", "123456")
        )
        assert service.security_key("alice") is None

    def test_removing_a_security_key_lets_calls_pass(
        self, service: KeyService, enrolled: SecurityKeyEnrollment
    ) -> None:
        """After the security key is removed, guarded calls need no answer."""
        assert service.remove_security_key("alice")
        assert not service.remove_security_key("alice")
        service.authorize_call(owner="alice", call=CALL, params=PARAMS)


class TestChallenge:
    def test_first_call_gets_a_one_minute_challenge(
        self, service: KeyService, enrolled: SecurityKeyEnrollment, clock: ManualClock
    ) -> None:
        """The first guarded call answers with a challenge valid for one minute, naming the key."""
        required = challenge_for(service)
        assert required.expires_at == clock.now() + timedelta(minutes=1)
        assert required.security_keys == (("tfa", "phone"),)
        assert enrolled.key.name == "phone"

    def test_right_code_passes_once(
        self, service: KeyService, enrolled: SecurityKeyEnrollment, clock: ManualClock
    ) -> None:
        """The right code with the challenge passes, and the account remembers its step."""
        answer(service, challenge_for(service).challenge, code(enrolled, clock))
        stored = service.security_key("alice")
        assert stored is not None
        assert stored.failures == 0
        assert stored.last_step == TOTP._totp(enrolled.secret).timecode(clock.now())

    def test_a_challenge_is_spent_by_its_first_answer(
        self, service: KeyService, enrolled: SecurityKeyEnrollment, clock: ManualClock
    ) -> None:
        """A wrong code spends the challenge: the right code with it afterwards is refused."""
        challenge = challenge_for(service).challenge
        with refused("tfa_code_not_matched"):
            answer(service, challenge, wrong_code(code(enrolled, clock)))
        with refused("used_tfa_code"):
            answer(service, challenge, code(enrolled, clock))

    def test_a_used_code_is_refused_with_a_new_challenge(
        self, service: KeyService, enrolled: SecurityKeyEnrollment, clock: ManualClock
    ) -> None:
        """A code accepted once is refused again, and so is an older step's code."""
        answer(service, challenge_for(service).challenge, code(enrolled, clock))
        with refused("used_tfa_code"):
            answer(service, challenge_for(service).challenge, code(enrolled, clock))
        with refused("used_tfa_code"):
            answer(service, challenge_for(service).challenge, code(enrolled, clock, -1))
        answer(service, challenge_for(service).challenge, code(enrolled, clock, 1))

    def test_expiry_is_exact(
        self, service: KeyService, enrolled: SecurityKeyEnrollment, clock: ManualClock
    ) -> None:
        """A challenge is good until one microsecond before its minute is up, not at it."""
        late = challenge_for(service).challenge
        in_time = challenge_for(service).challenge
        clock.advance(timedelta(minutes=1) - timedelta(microseconds=1))
        answer(service, in_time, code(enrolled, clock))
        clock.advance(microseconds=1)
        with refused("challenge_timeout"):
            answer(service, late, code(enrolled, clock, 1))

    @pytest.mark.parametrize(
        ("call", "params", "owner"),
        [
            ("private/create_api_key", PARAMS, "alice"),
            (CALL, {"extra": 1}, "alice"),
            (CALL, PARAMS, "bob"),
        ],
    )
    def test_a_challenge_answers_only_its_own_call(
        self,
        service: KeyService,
        enrolled: SecurityKeyEnrollment,
        clock: ManualClock,
        call: str,
        params: dict[str, Any],
        owner: str,
    ) -> None:
        """Another call, other parameters or another owner cannot use the challenge (or spend it)."""
        service.enroll_security_key("bob")
        challenge = challenge_for(service).challenge
        with refused("tfa_code_not_matched"):
            service.authorize_call(
                owner=owner,
                call=call,
                params=params,
                answer=SecurityAnswer(challenge, code(enrolled, clock)),
            )
        answer(service, challenge, code(enrolled, clock))

    @pytest.mark.parametrize(
        "forged", ["no-dots", "a.b.c", "a.123.", "a.123." + "0" * 64, ".1.x", "a.１２.x"]
    )
    def test_forged_challenges_are_refused(
        self, service: KeyService, enrolled: SecurityKeyEnrollment, clock: ManualClock, forged: str
    ) -> None:
        """A challenge this server did not issue is refused without counting a failure."""
        with refused("tfa_code_not_matched"):
            answer(service, forged, code(enrolled, clock))
        stored = service.security_key("alice")
        assert stored is not None
        assert stored.failures == 0

    def test_a_challenge_without_a_code(
        self, service: KeyService, enrolled: SecurityKeyEnrollment
    ) -> None:
        """A challenge sent back without a code is tfa_code_is_required."""
        with refused("tfa_code_is_required"):
            answer(service, challenge_for(service).challenge, "")

    @pytest.mark.parametrize(
        ("challenge", "candidate"),
        [
            (None, "123456"),
            ("", "123456"),
            ("c" * 201, "123456"),
            ("ok", "12a456"),
            ("ok", "１２３４５６"),
            ("ok", "1234567"),
            ("ok", "1" * 500),
            ("ok", 123456),
        ],
    )
    def test_malformed_answers_spend_nothing(
        self,
        service: KeyService,
        enrolled: SecurityKeyEnrollment,
        clock: ManualClock,
        challenge: object,
        candidate: object,
    ) -> None:
        """A malformed answer is InvalidInput and spends neither the challenge nor a try."""
        real = challenge_for(service).challenge
        bad = SecurityAnswer(real if challenge == "ok" else challenge, candidate)  # type: ignore[arg-type]
        before = service.security_key("alice")
        with pytest.raises(InvalidInput):
            service.authorize_call(owner="alice", call=CALL, params=PARAMS, answer=bad)
        assert service.security_key("alice") == before
        answer(service, real, code(enrolled, clock))

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"owner": "", "call": CALL}, "owner"),
            ({"owner": "alice", "call": ""}, "call"),
            ({"owner": "alice", "call": "c" * 65}, "call"),
            ({"owner": "alice", "call": 3}, "call"),
            ({"owner": "alice", "call": CALL, "answer": "123456"}, "answer"),
        ],
    )
    def test_bad_arguments_are_typed_errors(
        self, service: KeyService, enrolled: SecurityKeyEnrollment, kwargs: Any, field: str
    ) -> None:
        """Wrong types and sizes are InvalidInput naming the argument."""
        with pytest.raises(InvalidInput) as raised:
            service.authorize_call(params=PARAMS, **kwargs)
        assert raised.value.field == field

    def test_codes_within_one_step_of_now_pass(
        self, service: KeyService, enrolled: SecurityKeyEnrollment, clock: ManualClock
    ) -> None:
        """A code one step old passes (clock drift); two steps old does not."""
        with refused("tfa_code_not_matched"):
            answer(service, challenge_for(service).challenge, code(enrolled, clock, -2))
        answer(service, challenge_for(service).challenge, code(enrolled, clock, -1))


class TestLock:
    def test_wrong_codes_in_a_row_lock_until_enrolled_again(
        self, service: KeyService, enrolled: SecurityKeyEnrollment, clock: ManualClock
    ) -> None:
        """Three wrong codes in a row lock the security key; enrolling again lifts the lock."""
        wrong = wrong_code(code(enrolled, clock))
        for _ in range(3):
            with refused("tfa_code_not_matched"):
                answer(service, challenge_for(service).challenge, wrong)
        with pytest.raises(SecurityKeyLocked):
            challenge_for(service)
        fresh = service.enroll_security_key("alice")
        answer(service, challenge_for(service).challenge, code(fresh, clock))

    def test_a_right_code_resets_the_count(
        self, service: KeyService, enrolled: SecurityKeyEnrollment, clock: ManualClock
    ) -> None:
        """Wrong codes separated by a right one never lock."""
        wrong = wrong_code(code(enrolled, clock))
        for _ in range(2):
            with refused("tfa_code_not_matched"):
                answer(service, challenge_for(service).challenge, wrong)
        answer(service, challenge_for(service).challenge, code(enrolled, clock))
        for _ in range(2):
            with refused("tfa_code_not_matched"):
                answer(service, challenge_for(service).challenge, wrong)
        stored = service.security_key("alice")
        assert stored is not None
        assert stored.failures == 2


class TestEnrollment:
    def test_the_secret_is_handed_out_once_and_kept_sealed(
        self, service: KeyService, enrolled: SecurityKeyEnrollment
    ) -> None:
        """Enrollment returns the secret and its otpauth URI; the store keeps it sealed only."""
        assert len(enrolled.secret) == 32
        assert enrolled.uri.startswith("otpauth://totp/Example:alice?secret=")
        stored = service.security_key("alice")
        assert stored is not None
        assert enrolled.secret not in stored.sealed_secret
        assert enrolled.secret not in repr(enrolled)
        assert enrolled.secret not in repr(stored)
        assert stored.kind == "tfa"

    def test_enrolling_again_replaces_the_secret(
        self, service: KeyService, enrolled: SecurityKeyEnrollment, clock: ManualClock
    ) -> None:
        """A new enrollment replaces the secret: the old app's codes no longer pass."""
        fresh = service.enroll_security_key("alice")
        assert fresh.secret != enrolled.secret
        with refused("tfa_code_not_matched"):
            answer(service, challenge_for(service).challenge, code(enrolled, clock))

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"name": "bad name!"}, "name"),
            ({"name": 3}, "name"),
            ({"issuer": ""}, "issuer"),
            ({"issuer": "x" * 65}, "issuer"),
        ],
    )
    def test_bad_enrollments_write_nothing(
        self, service: KeyService, kwargs: Any, field: str
    ) -> None:
        """A bad name or issuer is InvalidInput, and no security key is stored."""
        with pytest.raises(InvalidInput) as raised:
            service.enroll_security_key("alice", **kwargs)
        assert raised.value.field == field
        assert service.security_key("alice") is None


def test_security_keys_need_a_secret_box() -> None:
    """A service keeping hashes only cannot enroll a security key, and says why."""
    service = make_service(sealed=False)
    with pytest.raises(InvalidInput, match="secret_box"):
        service.enroll_security_key("alice")
    assert service.security_key("alice") is None


def test_rotation_reseals_security_keys() -> None:
    """Turning the sealing key re-seals security keys too; their codes pass under the new key only."""
    old = SecretBox.generate("k1")
    service = make_service(secret_box=old)
    enrolled = service.enroll_security_key("alice")
    rotated = SecretBox({**old.keys, **SecretBox.generate("k2").keys}, "k2")
    after = make_service(store=service.store, secret_box=rotated, clock=service.clock)
    assert after.reseal_secrets() == (1, 0)
    only_new = SecretBox({"k2": rotated.keys["k2"]}, "k2")
    final = make_service(store=service.store, secret_box=only_new, clock=service.clock)
    stored = final.security_key("alice")
    assert stored is not None
    assert stored.sealed_secret.startswith("k2:")
    clock = final.clock
    assert isinstance(clock, ManualClock)
    answer(final, challenge_for(final).challenge, code(enrolled, clock))


def test_call_digest_refuses_what_json_cannot_say() -> None:
    """Parameters that are not JSON-like (or nested past any sense) are InvalidInput, not a crash."""
    with pytest.raises(InvalidInput):
        call_digest(CALL, {1: "x", "a": 2})  # type: ignore[dict-item]
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InvalidInput):
        call_digest(CALL, {"deep": deep})
    assert call_digest(CALL, {"a": 1, "b": 2}) == call_digest(CALL, {"b": 2, "a": 1})
