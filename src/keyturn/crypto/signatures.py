r"""Deribit's signature credentials: what is signed, how it is checked, and the time window.

Two places carry a signature: the ``client_signature`` grant of ``public/auth`` and the HTTP
header ``Authorization: deri-hmac-sha256 id=<client_id>,ts=<ms>,sig=<sig>,nonce=<nonce>``. Both
sign ``StringToSign = ts "\n" nonce "\n" data``; for the header, ``data`` is the request itself:
``UPPER(method) "\n" uri_with_query "\n" body "\n"``.

* A key with a secret signs with ``hex(HMAC-SHA256(client_secret, StringToSign))``: exactly 64
  lower-case hex digits.
* A key registered with a public key signs with its private key: Ed25519, or RSA (2048 bits or
  more) with PKCS#1 v1.5 and SHA-256; the signature is sent in base64url without padding.

Only those canonical spellings are accepted, so one signature has one text; where the signature
itself is the single-use value (an empty nonce), that value is computed from its decoded bytes.

A signature is good for :data:`WINDOW` either side of the server's clock, and its nonce only
once (the store remembers it until the window has passed). This module is pure: no I/O, no
clock (``now`` comes in), no logging. Comparisons are constant time.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from typing import Final

import attrs
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from keyturn.core import validation
from keyturn.core.errors import InvalidInput

#: How far a signature's timestamp may be from the server's clock, either way.
WINDOW: Final = timedelta(seconds=60)
HEADER_SCHEME: Final = "deri-hmac-sha256"
MIN_RSA_BITS: Final = 2048
MAX_NONCE_LENGTH: Final = 256
MAX_SIGNATURE_LENGTH: Final = 1024
MAX_DATA_LENGTH: Final = 64 * 1024
_MAX_TIMESTAMP_DIGITS: Final = 19  # 2**63 milliseconds
_HEADER_FIELD: Final = re.compile(r"\s*([a-z]+)=([^,]*)\s*")
_HEX_SIGNATURE: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@attrs.frozen
class SignedRequest:
    """The fields a signature comes with, checked for type and size only."""

    client_id: str
    timestamp: int
    nonce: str
    data: str = attrs.field(repr=False)
    signature: str = attrs.field(repr=False)

    @property
    def message(self) -> bytes:
        """The bytes that were signed: Deribit's ``StringToSign``."""
        return string_to_sign(self.timestamp, self.nonce, self.data)


def signed_request(
    client_id: object, timestamp: object, nonce: object, data: object, signature: object
) -> SignedRequest:
    """The fields of a signature, or :class:`InvalidInput` naming the first bad one."""
    if isinstance(timestamp, str) and len(timestamp) <= _MAX_TIMESTAMP_DIGITS:
        timestamp = int(timestamp) if timestamp.isascii() and timestamp.isdigit() else None
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp < 2**63:
        raise InvalidInput("timestamp", "must be milliseconds since the Unix epoch")
    return SignedRequest(
        client_id=validation.text(client_id, "client_id", max_length=256, min_length=1),
        timestamp=timestamp,
        nonce=validation.text(nonce, "nonce", max_length=MAX_NONCE_LENGTH),
        data=validation.text(
            data, "data", max_length=MAX_DATA_LENGTH, allow=validation.LINE_BREAKS
        ),
        signature=validation.text(
            signature, "signature", max_length=MAX_SIGNATURE_LENGTH, min_length=1
        ),
    )


def parse_header(value: str, *, request_data: str) -> SignedRequest:
    """The fields of a ``deri-hmac-sha256`` credential (the text after the scheme)."""
    fields: dict[str, str] = {}
    for part in value.split(","):
        match = _HEADER_FIELD.fullmatch(part)
        if match is None or match.group(1) in fields:
            raise InvalidInput("authorization", "must be id=...,ts=...,sig=...,nonce=...")
        fields[match.group(1)] = match.group(2)
    if set(fields) != {"id", "ts", "sig", "nonce"}:
        raise InvalidInput("authorization", "must carry exactly id, ts, sig and nonce")
    if not fields["nonce"]:
        raise InvalidInput("nonce", "must not be empty in a signature header")
    return signed_request(fields["id"], fields["ts"], fields["nonce"], request_data, fields["sig"])


def request_data(method: str, uri: str, body: str) -> str:
    r"""What the header's signature covers: ``UPPER(method) \n uri_with_query \n body \n``."""
    return f"{method.upper()}\n{uri}\n{body}\n"


def string_to_sign(timestamp: int, nonce: str, data: str) -> bytes:
    r"""Deribit's ``StringToSign``: ``ts \n nonce \n data``, UTF-8."""
    return f"{timestamp}\n{nonce}\n{data}".encode()


def hmac_signature(secret: str, message: bytes) -> str:
    """``hex(HMAC-SHA256(secret, message))``: what a client with a secret sends."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def hmac_matches(secret: str, message: bytes, signature: str) -> bool:
    """Whether ``signature`` is the HMAC of ``message`` under ``secret`` (constant time).

    Only the canonical spelling (64 lower-case hex digits) can match.
    """
    expected = hmac_signature(secret, message)
    canonical = _HEX_SIGNATURE.fullmatch(signature) is not None
    return hmac.compare_digest(expected, signature if canonical else "") and canonical


def load_public_key(pem: str) -> Ed25519PublicKey | RSAPublicKey:
    """The key in ``pem``, if it is Ed25519 or RSA of at least 2048 bits; else InvalidInput."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise InvalidInput("public_key", "is not a readable PEM public key") from None
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise InvalidInput(
                "public_key", f"RSA keys need at least {MIN_RSA_BITS} bits, not {key.key_size}"
            )
        return key
    raise InvalidInput("public_key", "must be an Ed25519 or RSA public key")


@functools.lru_cache(maxsize=1024)
def _stored_public_key(pem: str) -> Ed25519PublicKey | RSAPublicKey:
    """A stored key's parsed public key, kept across requests (public keys are not secrets)."""
    return load_public_key(pem)


def _signature_bytes(signature: str) -> bytes | None:
    """The bytes of an unpadded base64url signature, or ``None`` if it is not spelled so.

    Strict: no padding, no spaces, no other alphabet, and no spare bits set in the last
    character, so that exactly one text decodes to given bytes.
    """
    if _BASE64URL.fullmatch(signature) is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != signature:
        return None
    return raw


def single_use_value(signature: str, *, public_key: bool) -> str:
    """What makes a signature single-use when its nonce is empty: a digest of its bytes.

    ``public_key`` says how it is spelled (base64url for a public-key signature, hex for an
    HMAC). Call it only for a signature that matched, so its spelling is canonical.
    """
    raw = _signature_bytes(signature) if public_key else bytes.fromhex(signature)
    return "sig:" + hashlib.sha256(raw or b"").hexdigest()


def public_key_matches(pem: str, message: bytes, signature: str) -> bool:
    """Whether ``signature`` (unpadded base64url) is the key's signature of ``message``."""
    raw = _signature_bytes(signature)
    if raw is None:
        return False
    key = _stored_public_key(pem)
    try:
        if isinstance(key, Ed25519PublicKey):
            key.verify(raw, message)
        else:
            key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def in_window(timestamp_ms: int, now: datetime) -> bool:
    """Whether a signature stamped ``timestamp_ms`` is within :data:`WINDOW` of ``now``."""
    now_ms = (now - _EPOCH) // timedelta(milliseconds=1)
    return abs(now_ms - timestamp_ms) <= WINDOW // timedelta(milliseconds=1)


def nonce_expiry(timestamp_ms: int) -> datetime:
    """Until when a nonce used at ``timestamp_ms`` must be remembered: the window's end."""
    return _EPOCH + timedelta(milliseconds=timestamp_ms) + WINDOW
