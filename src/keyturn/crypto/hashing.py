"""Secret material: generating secrets and ids, and keyed hashes of secrets.

A key's secret is 256 random bits from :mod:`secrets`. It needs no slow password hash: an
HMAC-SHA256 under a server-side key (a pepper kept out of the database) is safe and costs about a
microsecond, so it can run on every request. Comparisons are constant time. Nothing here logs,
raises with, or returns in a repr any secret.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import secrets
import string
from typing import Final

import attrs

from keyturn.core.errors import InvalidInput

SECRET_BYTES: Final = 32
CLIENT_ID_LENGTH: Final = 8
MIN_KEY_BYTES: Final = 32
_CLIENT_ID_ALPHABET: Final = string.ascii_letters + string.digits


def new_secret() -> str:
    """A fresh client secret: 256 bits, URL-safe base64 (43 characters, like Deribit's)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def new_client_id() -> str:
    """A fresh public client id: 8 letters and digits (about 47 bits)."""
    return "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(CLIENT_ID_LENGTH))


def new_token(nbytes: int = 16) -> str:
    """An opaque, unguessable random identifier (challenge ids)."""
    return secrets.token_urlsafe(nbytes)


_ID_PREFIX = [secrets.token_hex(6)]
_ID_COUNTER = itertools.count(1)


def _reseed_ids() -> None:
    _ID_PREFIX[0] = secrets.token_hex(6)


os.register_at_fork(after_in_child=_reseed_ids)


def new_id() -> str:
    """A unique, not secret identifier (notification ids).

    A random per-process prefix and a counter; the prefix is reseeded in a forked child, so two
    processes never share one.
    """
    return f"{_ID_PREFIX[0]}{next(_ID_COUNTER):x}"


def _check_key(key: object, field: str) -> bytes:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise InvalidInput(field, f"must be at least {MIN_KEY_BYTES} random bytes")
    return key


def _check_secret_key(key: object) -> bytes:
    return _check_key(key, "secret_key")


@attrs.frozen
class SecretHasher:
    """Keyed digests of client secrets, under a server-side key that never leaves the process.

    ``fingerprint`` is a short public digest, safe to show where Deribit would show the secret.
    """

    key: bytes = attrs.field(repr=False, converter=_check_secret_key)

    @classmethod
    def generate(cls) -> SecretHasher:
        """A hasher with a fresh random key (tests, throwaway stores)."""
        return cls(secrets.token_bytes(32))

    def digest(self, secret: str) -> str:
        """The keyed digest to store for ``secret``."""
        return hmac.digest(self.key, secret.encode(), "sha256").hex()

    def matches(self, secret: str, digest: str) -> bool:
        """Whether ``secret`` has ``digest``, compared in constant time."""
        return hmac.compare_digest(self.digest(secret), digest)

    def fingerprint(self, secret: str) -> str:
        """A short identifier of the secret, for display; reveals nothing usable."""
        mac = hmac.new(self.key, b"fingerprint\x00" + secret.encode(), hashlib.sha256)
        return "sha256:" + mac.hexdigest()[:16]
