"""The default code verifier: random digits, kept only as keyed hashes, bound to a subject."""

from __future__ import annotations

import pytest

from keyturn import InvalidInput
from keyturn.adapters.codes import HmacCodeVerifier


@pytest.fixture(name="verifier")
def _verifier() -> HmacCodeVerifier:
    return HmacCodeVerifier.generate()


def test_issued_code_checks_and_ref_hides_it(verifier: HmacCodeVerifier) -> None:
    """An issued code checks against its reference, which does not contain the code."""
    issued = verifier.issue(subject="activation:1", owner="alice")
    assert issued.code is not None
    assert len(issued.code) == 6
    assert issued.code.isdigit()
    assert issued.code not in issued.ref
    assert issued.code not in repr(issued)
    assert verifier.check(subject="activation:1", ref=issued.ref, candidate=issued.code)


def test_code_is_bound_to_its_subject(verifier: HmacCodeVerifier) -> None:
    """A code does not check for another subject, nor under another server key."""
    issued = verifier.issue(subject="activation:1", owner="alice")
    assert issued.code is not None
    assert not verifier.check(subject="activation:2", ref=issued.ref, candidate=issued.code)
    other = HmacCodeVerifier.generate()
    assert not other.check(subject="activation:1", ref=issued.ref, candidate=issued.code)


def test_wrong_candidates_fail(verifier: HmacCodeVerifier) -> None:
    """Wrong, malformed and non-ASCII candidates do not check."""
    issued = verifier.issue(subject="s", owner="alice")
    assert issued.code is not None
    wrong = f"{(int(issued.code) + 1) % 10**6:06d}"
    for candidate in (wrong, "", issued.code + "0", "١٢٣٤٥٦"):
        assert not verifier.check(subject="s", ref=issued.ref, candidate=candidate)


def test_codes_vary(verifier: HmacCodeVerifier) -> None:
    """Two hundred codes are not all alike (they come from secrets, not a counter)."""
    codes = {verifier.issue(subject="s", owner="a").code for _ in range(200)}
    assert len(codes) > 150


def test_configurable_length() -> None:
    """Length is configurable from 6 to 12 digits; shorter is refused."""
    issued = HmacCodeVerifier.generate(length=8).issue(subject="s", owner="a")
    assert issued.code is not None
    assert len(issued.code) == 8
    with pytest.raises(InvalidInput):
        HmacCodeVerifier.generate(length=4)


def test_short_server_key_is_refused() -> None:
    """A server key under 32 bytes is refused."""
    with pytest.raises(InvalidInput):
        HmacCodeVerifier(b"short")


def test_repr_hides_the_server_key() -> None:
    """The verifier's repr does not show its key."""
    key = b"k" * 32
    assert repr(key) not in repr(HmacCodeVerifier(key))
