"""One mapping from keyturn's errors to HTTP statuses and messages a person can act on."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

import pytest

import keyturn
from keyturn.core import errors
from keyturn.crypto.sealing import SealError
from keyturn.web.http_errors import RULES, http_error, wait_text

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _every_error() -> list[tuple[errors.KeyturnError, int, str]]:
    later = NOW + timedelta(seconds=119)
    return [
        (errors.InvalidInput("name", "must be 1-16 letters"), 422, "invalid_input"),
        (errors.KeyNotFound(7), 404, "key_not_found"),
        (
            errors.ActionNotAllowed("x", key_id=1, state="created", action="disable"),
            409,
            "action_not_allowed",
        ),
        (errors.QuotaExceeded("alice", 8), 409, "quota_exceeded"),
        (errors.ConcurrentUpdate(1, 3), 409, "concurrent_update"),
        (
            errors.CodeMismatch(
                key_id=1, state="pending_2fa", action="verify_code", attempts_left=3
            ),
            403,
            "code_mismatch",
        ),
        (
            errors.CodeExpired(key_id=1, state="pending_2fa", action="verify_code", expired_at=NOW),
            403,
            "code_expired",
        ),
        (
            errors.CodeAttemptsExhausted(key_id=1, state="pending_2fa", action="verify_code"),
            403,
            "code_attempts_exhausted",
        ),
        (
            errors.ResendTooEarly(
                key_id=1, state="pending_2fa", action="resend_code", available_at=later
            ),
            429,
            "resend_too_early",
        ),
        (
            errors.SendLimitReached(
                key_id=1, state="pending_2fa", action="resend_code", available_at=later
            ),
            429,
            "send_limit_reached",
        ),
        (
            errors.ActivationLocked(
                key_id=1, state="pending_2fa", action="verify_code", failures=100
            ),
            423,
            "activation_locked",
        ),
        (
            errors.ConfirmationRequired(
                challenge_id="c1",
                expires_at=NOW + timedelta(minutes=5),
                action="create",
                key_id=None,
            ),
            403,
            "confirmation_required",
        ),
        (errors.ChallengeInvalid("used", action="remove", key_id=1), 403, "challenge_invalid"),
        (
            errors.SecurityKeyRequired(
                challenge="ch", expires_at=NOW, call="c", security_keys=(("tfa", "phone"),)
            ),
            403,
            "security_key_required",
        ),
        (errors.SecurityKeyRefused("used_tfa_code", "d", call="c"), 403, "security_key_refused"),
        (errors.SecurityKeyLocked(call="c", failures=100), 423, "security_key_locked"),
        (errors.AuthenticationFailed("ip_not_allowed"), 401, "authentication_failed"),
        (errors.StoreError("down"), 503, "store_error"),
    ]


@pytest.mark.parametrize(("error", "status", "code"), _every_error())
def test_status_and_code(error: errors.KeyturnError, status: int, code: str) -> None:
    """Each error maps to its documented status and a stable snake_case code."""
    answer = http_error(error, now=NOW)
    assert (answer.status, answer.error) == (status, code)
    assert answer.body()["message"] == answer.message
    assert answer.message.endswith(".")


class HomeMadeError(errors.KeyturnError):
    """An application's own error, which no rule names."""


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (SealError("the ring has no key k9", key_id=3), "seal_error"),
        (HomeMadeError("boom"), "home_made_error"),
    ],
)
def test_an_error_without_a_rule_is_500_under_its_own_name(
    error: errors.KeyturnError, code: str
) -> None:
    """An error no rule names is a 500 coded by its own class name, with the generic message."""
    answer = http_error(error, now=NOW)
    assert (answer.status, answer.error) == (500, code)
    assert answer.message == "Something went wrong. Try again later."
    assert str(error) not in repr(answer.body())


def test_every_public_error_has_its_own_rule() -> None:
    """Every exported error that is raised has its own rule, not the generic 500 answer."""
    exported = {
        v
        for v in vars(keyturn).values()
        if inspect.isclass(v) and issubclass(v, errors.KeyturnError)
    }
    assert exported - {errors.CodeError} <= set(RULES)  # CodeError is only a base class
    assert {type(e) for e, _, _ in _every_error()} == exported - {
        errors.KeyturnError,
        errors.CodeError,
    }


def test_messages_tell_the_person_what_to_do() -> None:
    """Wrong, expired and early codes say the tries left, to request a new one, and the wait."""
    wrong = errors.CodeMismatch(
        key_id=1, state="pending_2fa", action="verify_code", attempts_left=2
    )
    assert http_error(wrong).message == "That code is not right. 2 tries left for this code."
    assert http_error(wrong).body()["attempts_left"] == 2
    spent = errors.CodeMismatch(
        key_id=1, state="pending_2fa", action="verify_code", attempts_left=0
    )
    assert "request a new one" in http_error(spent).message
    expired = errors.CodeExpired(
        key_id=1, state="pending_2fa", action="verify_code", expired_at=NOW
    )
    assert http_error(expired).message == "The code expired, request a new one."
    early = errors.ResendTooEarly(
        key_id=1,
        state="pending_2fa",
        action="resend_code",
        available_at=NOW + timedelta(seconds=61),
    )
    answer = http_error(early, now=NOW)
    assert answer.message == "You can request a new code in 1:01."
    assert answer.headers == {"Retry-After": "61"}
    assert http_error(early).message == "You can request a new code at 12:01:01 UTC."
    refused = errors.ActionNotAllowed("x", key_id=4, state="disabled", action="disable")
    assert (
        http_error(refused).message == "This API key is deactivated: it cannot be deactivated now."
    )
    assert http_error(refused).body() == {
        "error": "action_not_allowed",
        "message": "This API key is deactivated: it cannot be deactivated now.",
        "key_id": 4,
        "state": "disabled",
    }


def test_confirmation_answer_carries_the_challenge() -> None:
    """A confirmation request says where to send the code back and how long it is valid."""
    required = errors.ConfirmationRequired(
        challenge_id="c1", expires_at=NOW + timedelta(minutes=5), action="remove", key_id=3
    )
    assert http_error(required, now=NOW).body() == {
        "error": "confirmation_required",
        "message": "We sent you a code. Enter it to confirm.",
        "key_id": 3,
        "challenge_id": "c1",
        "expires_at": "2026-01-01T12:05:00+00:00",
        "expires_in": 300,
    }


def test_wait_text() -> None:
    """Waits read as minutes and seconds."""
    assert [wait_text(s) for s in (0, 9, 65, 600)] == ["0:00", "0:09", "1:05", "10:00"]
