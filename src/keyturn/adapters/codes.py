"""The default code verifier: numeric codes from :mod:`secrets`, kept only as keyed hashes.

A code is ``length`` ASCII digits (6 by default; about 20 bits, the floor OWASP ASVS sets). What
is stored is ``salt:HMAC-SHA256(server key, salt | subject | code)``: the code cannot be read back,
a code for one subject cannot check for another, and a re-issued identical code still gets a new
reference. Candidates are compared in constant time. This module never logs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import attrs

from keyturn.core.errors import InvalidInput
from keyturn.crypto.hashing import MIN_KEY_BYTES
from keyturn.ports import IssuedCode

_DIGITS = frozenset("0123456789")


def _check_key(key: object) -> bytes:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise InvalidInput("code_key", f"must be at least {MIN_KEY_BYTES} random bytes")
    return key


def _check_length(_: object, __: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 6 <= value <= 12:  # noqa: PLR2004
        raise InvalidInput("length", "codes must be 6 to 12 digits")


def is_ascii_code(candidate: object, length: int) -> bool:
    """Whether ``candidate`` is exactly ``length`` ASCII digits (no other Unicode digits)."""
    return isinstance(candidate, str) and len(candidate) == length and _DIGITS.issuperset(candidate)


@attrs.frozen
class HmacCodeVerifier:
    """Issues random numeric codes and checks them against their keyed hash."""

    key: bytes = attrs.field(repr=False, converter=_check_key)
    length: int = attrs.field(default=6, validator=_check_length)

    @classmethod
    def generate(cls, length: int = 6) -> HmacCodeVerifier:
        """A verifier with a fresh random key."""
        return cls(secrets.token_bytes(32), length)

    def _mac(self, salt: str, subject: str, code: str) -> str:
        msg = f"{salt}\x00{subject}\x00{code}".encode()
        return hmac.new(self.key, msg, hashlib.sha256).hexdigest()

    def issue(self, *, subject: str, owner: str) -> IssuedCode:  # noqa: ARG002 (keyturn delivers)
        """A fresh code for keyturn to deliver, and its keyed reference."""
        code = "".join(secrets.choice("0123456789") for _ in range(self.length))
        salt = secrets.token_hex(8)
        return IssuedCode(ref=f"{salt}:{self._mac(salt, subject, code)}", code=code)

    def check(self, *, subject: str, ref: str, candidate: str) -> bool:
        """Whether ``candidate`` was issued as ``ref`` for ``subject``, in constant time."""
        salt, _, mac = ref.partition(":")
        expected = self._mac(salt, subject, candidate if isinstance(candidate, str) else "")
        return hmac.compare_digest(expected, mac) and self.is_well_formed(candidate)

    def is_well_formed(self, candidate: str) -> bool:
        """Exactly ``length`` ASCII digits."""
        return is_ascii_code(candidate, self.length)
