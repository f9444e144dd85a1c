"""Secrets the server must be able to use again: sealed with AES-256-GCM under a key ring.

A signature scheme (``deri-hmac-sha256``, the ``client_signature`` grant) makes the server
recompute an HMAC keyed with the client's secret, so a keyed hash is not enough: the secret is
kept sealed. A sealed secret is ``<key id>:<base64url(nonce || ciphertext || tag)>``. The key id
says which key of the ring sealed it, so the ring can be rotated: seal with the newest, open with
any, and re-seal old records (``keyturn rotate-server-key``). The associated data binds a sealed
secret to the key's client id, so a sealed value copied onto another record does not open.

Nothing here does I/O, logs, or shows a secret or a ring key in a repr or an error.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import TYPE_CHECKING, Final

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyturn.core.errors import InvalidInput, KeyturnError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from keyturn.core.records import Notification

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
_KEY_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
_AAD_PREFIX: Final = b"keyturn/sealed-secret/v1\x00"


class SealError(KeyturnError):
    """A sealed secret cannot be opened: its ring key is gone, or the value was tampered with."""

    def __init__(self, reason: str, *, key_id: int | None = None) -> None:
        super().__init__(f"cannot open the sealed secret: {reason}", key_id=key_id)
        self.reason = reason


def _check_ring(keys: Mapping[str, bytes]) -> dict[str, bytes]:
    if not keys:
        raise InvalidInput("keys", "the ring needs at least one key")
    for key_id, key in keys.items():
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
            raise InvalidInput("keys", "key ids are 1-32 letters, digits, '_' or '-'")
        if not isinstance(key, bytes) or len(key) != KEY_BYTES:
            raise InvalidInput("keys", f"every ring key must be {KEY_BYTES} random bytes")
    return dict(keys)


def key_id_of(sealed: str) -> str:
    """The id of the ring key that sealed ``sealed``."""
    return sealed.partition(":")[0]


@attrs.frozen
class SecretBox:
    """Seals and opens client secrets under a ring of AES-256 keys; ``current`` seals."""

    keys: dict[str, bytes] = attrs.field(repr=False, converter=_check_ring)
    current: str = attrs.field()

    @current.validator
    def _current_in_ring(self, _: object, value: str) -> None:
        if value not in self.keys:
            raise InvalidInput("current", "must be the id of a key in the ring")

    @classmethod
    def generate(cls, key_id: str = "k1") -> SecretBox:
        """A box with one fresh random key (tests, throwaway stores)."""
        return cls({key_id: secrets.token_bytes(KEY_BYTES)}, key_id)

    def seal(self, secret: str, *, context: str) -> str:
        """``secret`` sealed under the current key, bound to ``context`` (the client id)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        box = AESGCM(self.keys[self.current])
        sealed = box.encrypt(nonce, secret.encode(), _AAD_PREFIX + context.encode())
        return f"{self.current}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, *, context: str, key_id: int | None = None) -> str:
        """The secret inside ``sealed``; :class:`SealError` if it cannot be opened."""
        ring_id, sep, body = sealed.partition(":")
        key = self.keys.get(ring_id)
        if not sep or key is None:
            raise SealError(f"no ring key {ring_id[:32]!r}", key_id=key_id)
        try:
            raw = base64.urlsafe_b64decode(body)
            plain = AESGCM(key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], _AAD_PREFIX + context.encode()
            )
            return plain.decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise SealError("damaged or bound to another key", key_id=key_id) from None

    def needs_reseal(self, sealed: str) -> bool:
        """Whether ``sealed`` was sealed under a key other than the current one."""
        return key_id_of(sealed) != self.current

    def reseal(self, sealed: str, *, context: str) -> str:
        """``sealed`` opened and sealed again under the current key."""
        return self.seal(self.open(sealed, context=context), context=context)


#: The ring id of the one key codes are sealed under; it also marks a value as sealed.
_SEALED_CODE: Final = "oc1"


@attrs.frozen
class CodeSeal:
    """Seals the codes the outbox holds: AES-256-GCM, bound to the notification's id.

    The key comes from the server key (``wiring.derive(server_key, "outbox-codes")``), so every
    worker and relay sharing a database opens what any of them sealed. A sealed code is
    ``oc1:<base64url>``; a value without that prefix is a code queued before codes were sealed,
    and is delivered as it is.
    """

    _box: SecretBox = attrs.field(alias="box", repr=False)

    @classmethod
    def from_key(cls, key: bytes) -> CodeSeal:
        """A seal under ``key`` (32 bytes)."""
        return cls(box=SecretBox({_SEALED_CODE: key}, _SEALED_CODE))

    @classmethod
    def generate(cls) -> CodeSeal:
        """A seal under a fresh random key (tests, throwaway stores)."""
        return cls(box=SecretBox.generate(_SEALED_CODE))

    def seal_code(self, notification: Notification) -> Notification:
        """``notification`` with its code sealed; one without a code as it is."""
        if notification.code is None:
            return notification
        sealed = self._box.seal(notification.code, context=_context(notification))
        return attrs.evolve(notification, code=sealed)

    def open_code(self, notification: Notification) -> Notification:
        """``notification`` with its code opened for delivery (a legacy plain code as it is).

        Raises :class:`~keyturn.crypto.sealing.SealError` for a value sealed under another server
        key or moved from another notification.
        """
        code = notification.code
        if code is None or not code.startswith(f"{_SEALED_CODE}:"):
            return notification
        opened = self._box.open(code, context=_context(notification))
        return attrs.evolve(notification, code=opened)


def _context(notification: Notification) -> str:
    return f"outbox/{notification.id}"
