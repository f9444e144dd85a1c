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
from keyturn.core.errors import AuthenticationFailed, InvalidInput
from keyturn.core.records import ApiKey, Principal
from keyturn.crypto.sealing import SealError
from keyturn.effects import STORE

if TYPE_CHECKING:
    from keyturn.crypto.hashing import SecretHasher
    from keyturn.crypto.sealing import SecretBox
    from keyturn.effects import Op
    from keyturn.ports import Clock
    from keyturn.signatures import SignedRequest

MAX_CREDENTIAL_LENGTH: Final = 256
_DUMMY_DIGEST: Final = "0" * 64
_DUMMY_SECRET: Final = "0" * 43


def refusal(
    key: ApiKey, ip: validation.IpAddress | None, generation: int | None = None
) -> str | None:
    """Why ``key`` may not authenticate a request from ``ip`` now, or ``None`` if it may.

    The one rule every credential obeys (secret, signature, token, WebSocket session): only an
    ``active`` key, only from an address its whitelist lets through, and, for a credential
    issued earlier (a token), only while the key is still at the ``generation`` it was issued
    under (a new secret, a disable, a narrower scope or whitelist move it on).
    """
    if not key.enabled:
        return "key_not_active"
    if key.ip_whitelist and (ip is None or not any(ip in net for net in key.ip_whitelist)):
        return "ip_not_allowed"
    if generation is not None and generation != key.generation:
        return "credential_revoked"
    return None


def principal_of(key: ApiKey) -> Principal:
    """Who a key speaks for, at its present generation."""
    return Principal(
        key_id=key.id,
        owner=key.owner,
        client_id=key.client_id,
        max_scope=key.max_scope,
        generation=key.generation,
    )


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
        for field, value in (("client_id", client_id), ("client_secret", secret)):
            if not isinstance(value, str) or not value or len(value) > MAX_CREDENTIAL_LENGTH:
                raise InvalidInput(field, f"must be a string of 1-{MAX_CREDENTIAL_LENGTH} chars")
        assert isinstance(client_id, str)  # noqa: S101 (narrowing after the loop above)
        assert isinstance(secret, str)  # noqa: S101
        ip = validation.source_ip(source_ip)
        key: ApiKey | None = yield STORE.get_by_client_id(client_id)
        digest = key.secret_digest if key is not None and key.secret_digest else _DUMMY_DIGEST
        ok = self.secret_hasher.matches(secret, digest)
        good = key if key is not None and key.secret_digest is not None and ok else None
        return self._admit(good, client_id, ip)

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
            once = signed.nonce or signatures.single_use_value(
                signed.signature, public_key=key.public_key is not None
            )
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
        ip: validation.IpAddress | None,
    ) -> Principal:
        """The principal of a key whose credentials matched, if it may authenticate now.

        An unknown peer address (``None``) passes only a key without an IP whitelist.
        """
        if key is None:
            self._refuse(client_id, "invalid_credentials", ip)
        if (reason := refusal(key, ip)) is not None:
            self._refuse(client_id, reason, ip)
        return principal_of(key)

    def _refuse(self, client_id: str, reason: str, ip: validation.IpAddress | None) -> NoReturn:
        shown = "unknown" if ip is None else str(ip)
        self.logger.info(
            "authentication_failed", client_id=client_id[:16], reason=reason, source_ip=shown
        )
        raise AuthenticationFailed(reason)
