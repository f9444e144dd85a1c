"""What a client does to sign, for tests of code that embeds keyturn's API.

These build Deribit's signature credentials the way a client following Deribit's documentation
would (see :mod:`keyturn.crypto.signatures` for the rules): an HMAC header or ``client_signature``
parameters from a secret, or an Ed25519/RSA signature from a private key. Keys generated here are
throwaway test keys.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from keyturn.crypto.hashing import new_token
from keyturn.crypto.signatures import HEADER_SCHEME, hmac_signature, request_data, string_to_sign

if TYPE_CHECKING:
    PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def now_ms() -> int:
    """The current time in milliseconds since the epoch, as a client stamps it."""
    return time.time_ns() // 1_000_000


def ed25519_key() -> ed25519.Ed25519PrivateKey:
    """A fresh Ed25519 private key."""
    return ed25519.Ed25519PrivateKey.generate()


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA private key of ``bits`` bits."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def public_pem(key: PrivateKey) -> str:
    """The PEM ``PUBLIC KEY`` block to register with ``create_api_key``."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign(credential: str | PrivateKey, message: bytes) -> str:
    """The signature a client sends: hex HMAC for a secret, base64url for a private key."""
    if isinstance(credential, str):
        return hmac_signature(credential, message)
    if isinstance(credential, ed25519.Ed25519PrivateKey):
        raw = credential.sign(message)
    else:
        raw = credential.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def signature_params(
    client_id: str,
    credential: str | PrivateKey,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
    data: str = "",
) -> dict[str, Any]:
    """``public/auth`` parameters for the ``client_signature`` grant."""
    ts = now_ms() if timestamp is None else timestamp
    nonce = new_token(8) if nonce is None else nonce
    return {
        "grant_type": "client_signature",
        "client_id": client_id,
        "timestamp": ts,
        "nonce": nonce,
        "data": data,
        "signature": sign(credential, string_to_sign(ts, nonce, data)),
    }


def signature_header(
    client_id: str,
    credential: str | PrivateKey,
    *,
    method: str,
    uri: str,
    body: str = "",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> str:
    """An ``Authorization`` value: ``deri-hmac-sha256 id=...,ts=...,sig=...,nonce=...``."""
    ts = now_ms() if timestamp is None else timestamp
    nonce = new_token(8) if nonce is None else nonce
    sig = sign(credential, string_to_sign(ts, nonce, request_data(method, uri, body)))
    return f"{HEADER_SCHEME} id={client_id},ts={ts},sig={sig},nonce={nonce}"
