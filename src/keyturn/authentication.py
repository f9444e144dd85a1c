"""Checking credentials against the store, every time: a secret, or a signature.

No cache: a key disabled a moment ago fails on the next call, on every worker. A secret is
compared as a keyed digest in constant time, and an unknown client id costs the same digest as a
known one. A signature (:mod:`keyturn.signatures`) is checked against the key's public key, or
against an HMAC under its secret opened from its sealed copy; its timestamp must be in the window
and its nonce unused (the store records it atomically, so two workers never both accept one).
Every failure has one message; the reason goes only to the error's ``reason`` and the log.
Both checks are operations that yield their store calls (:mod:`keyturn.effects`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, NoReturn

import attrs

from keyturn import signatures, validation
from keyturn.effects import STORE
from keyturn.errors import AuthenticationFailed
from keyturn.records import ApiKey, Principal
from keyturn.sealing import SealError

if TYPE_CHECKING:
    from keyturn.effects import Op
    from keyturn.hashing import SecretHasher
    from keyturn.ports import Clock
    from keyturn.sealing import SecretBox
    from keyturn.signatures import SignedRequest

MAX_CREDENTIAL_LENGTH: Final = 256
_DUMMY_DIGEST: Final = "0" * 64
_DUMMY_SECRET: Final = "0" * 43


@attrs.define(kw_only=True)
class Authenticator:
    """Authenticates API clients against a key store."""

    secret_hasher: SecretHasher
    clock: Clock
    logger: Any
    secret_box: SecretBox | None = None

    def authenticate(
        self, client_id: object, secret: object, *, source_ip: object
    ) -> Op[Principal]:
        """The principal for these credentials, or :class:`AuthenticationFailed`."""
        limit = MAX_CREDENTIAL_LENGTH
        cid = validation.text(client_id, "client_id", max_length=limit, min_length=1)
        checked = validation.text(secret, "client_secret", max_length=limit, min_length=1)
        ip = validation.source_ip(source_ip)
        key: ApiKey | None = yield STORE.get_by_client_id(cid)
        digest = key.secret_digest if key is not None and key.secret_digest else _DUMMY_DIGEST
        ok = self.secret_hasher.matches(checked, digest)
        good = key if key is not None and key.secret_digest is not None and ok else None
        return self._admit(good, cid, ip)

    def authenticate_signature(self, signed: SignedRequest, *, source_ip: object) -> Op[Principal]:
        """The principal for a signed request, or :class:`AuthenticationFailed`.

        The signature must match, its timestamp be within the window of the clock, and its
        nonce (the signature itself when the nonce is empty) not have been used before.
        """
        ip = validation.source_ip(source_ip)
        now = self.clock.now()
        key: ApiKey | None = yield STORE.get_by_client_id(signed.client_id)
        if key is None:  # the same HMAC as for a known id, so timing does not tell them apart
            signatures.hmac_matches(_DUMMY_SECRET, signed.message, signed.signature)
        ok = key is not None and self._signature_matches(key, signed)
        if ok and not signatures.in_window(signed.timestamp, now):
            self._refuse(signed.client_id, "timestamp_out_of_window", ip)
        if ok and key is not None:
            once = signed.nonce or "sig:" + signed.signature[:128]
            expires = signatures.nonce_expiry(signed.timestamp)
            fresh = yield STORE.use_nonce(key.client_id, once, expires_at=expires, now=now)
            if not fresh:
                self._refuse(signed.client_id, "nonce_reused", ip)
        return self._admit(key if ok else None, signed.client_id, ip)

    def _signature_matches(self, key: ApiKey, signed: SignedRequest) -> bool:
        if key.public_key is not None:
            return signatures.public_key_matches(key.public_key, signed.message, signed.signature)
        secret = _DUMMY_SECRET
        if key.sealed_secret is not None and self.secret_box is not None:
            try:
                secret = self.secret_box.open(
                    key.sealed_secret, context=key.client_id, key_id=key.id
                )
            except SealError as e:
                log = self.logger.error  # no traceback: the reason says what failed
                log("sealed_secret_unreadable", key_id=key.id, reason=e.reason)
                return False
        matched = signatures.hmac_matches(secret, signed.message, signed.signature)
        return matched and secret is not _DUMMY_SECRET

    def _admit(
        self,
        key: ApiKey | None,
        client_id: str,
        ip: validation.IpAddress,
    ) -> Principal:
        """The principal of a key whose credentials matched, if it may authenticate now."""
        if key is None:
            self._refuse(client_id, "invalid_credentials", ip)
        if not key.enabled:
            self._refuse(client_id, "key_not_active", ip)
        if key.ip_whitelist and not any(ip in net for net in key.ip_whitelist):
            self._refuse(client_id, "ip_not_allowed", ip)
        return Principal(
            key_id=key.id, owner=key.owner, client_id=key.client_id, max_scope=key.max_scope
        )

    def _refuse(self, client_id: str, reason: str, ip: validation.IpAddress) -> NoReturn:
        self.logger.info(
            "authentication_failed", client_id=client_id[:16], reason=reason, source_ip=str(ip)
        )
        raise AuthenticationFailed(reason)
