"""The TOTP second factor (pyotp): RFC 6238 codes, the drift window, shapes and settings."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyturn import InvalidInput
from keyturn.adapters.totp import TotpVerifier

#: RFC 6238 appendix B: the SHA-1 seed, and the 8-digit codes at some of its test times.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
]


@pytest.mark.parametrize(("unix", "expected"), RFC_VECTORS)
def test_rfc_6238_vectors(unix: int, expected: str) -> None:
    """The verifier computes and accepts RFC 6238's published SHA-1 codes."""
    totp = TotpVerifier(digits=8)
    when = datetime.fromtimestamp(unix, UTC)
    assert totp.code_at(RFC_SECRET, when) == expected
    assert totp.match(RFC_SECRET, expected, when) == unix // 30


def test_window_is_one_step_either_side() -> None:
    """Codes of the steps next to now match, with their step; two steps away do not."""
    totp = TotpVerifier()
    secret = totp.new_secret()
    now = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)
    step = int(now.timestamp()) // 30
    for offset in (-1, 0, 1):
        shown = totp.code_at(secret, now + timedelta(seconds=30 * offset))
        assert totp.match(secret, shown, now) == step + offset
    for offset in (-2, 2):
        far = totp.code_at(secret, now + timedelta(seconds=30 * offset))
        near = {totp.code_at(secret, now + timedelta(seconds=30 * o)) for o in (-1, 0, 1)}
        if far not in near:
            assert totp.match(secret, far, now) is None


def test_window_zero_accepts_only_the_current_step() -> None:
    """With valid_window=0 only the current step's code matches."""
    totp = TotpVerifier(valid_window=0)
    secret = totp.new_secret()
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert totp.match(secret, totp.code_at(secret, now), now) is not None
    previous = totp.code_at(secret, now - timedelta(seconds=30))
    if previous != totp.code_at(secret, now):
        assert totp.match(secret, previous, now) is None


@pytest.mark.parametrize("candidate", ["", "12345", "1234567", "12a456", "１２３４５６", " 123456"])
def test_malformed_codes_never_match(candidate: str) -> None:
    """Anything but exactly six ASCII digits is not well formed and matches nothing."""
    totp = TotpVerifier()
    assert not totp.is_well_formed(candidate)
    assert totp.match(totp.new_secret(), candidate, datetime.now(UTC)) is None


def test_secrets_are_fresh_160_bit_base32() -> None:
    """New secrets are 32 base32 characters (160 bits) and never repeat."""
    totp = TotpVerifier()
    made = {totp.new_secret() for _ in range(200)}
    assert len(made) == 200
    for secret in made:
        assert len(base64.b32decode(secret)) == 20


def test_provisioning_uri_names_account_and_issuer() -> None:
    """The otpauth URI carries the secret, the account and the issuer, for an app's QR scan."""
    totp = TotpVerifier()
    uri = totp.provisioning_uri(
        "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", account="alice", issuer="Example"
    )
    assert (
        uri == "otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Example"
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"digits": 7}, "digits"),
        ({"digits": True}, "digits"),
        ({"interval": 5}, "interval"),
        ({"interval": "30"}, "interval"),
        ({"valid_window": 3}, "valid_window"),
        ({"valid_window": -1}, "valid_window"),
    ],
)
def test_bad_settings_are_typed_errors(kwargs: Any, field: str) -> None:
    """Out-of-range settings are InvalidInput naming the setting."""
    with pytest.raises(InvalidInput) as raised:
        TotpVerifier(**kwargs)
    assert raised.value.field == field
