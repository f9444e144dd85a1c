"""Checking credentials against the store, every time: a secret, or a signature.

No cache: a key disabled a moment ago fails on the next call, on every worker. A secret is
compared as a keyed digest in constant time, and an unknown client id costs the same digest as a
known one. A signature (:mod:`keyturn.crypto.signatures`) is checked against the key's public
key, or against an HMAC under its secret opened from its sealed copy; its timestamp must be in
the window and its nonce unused (the store records it atomically, so two workers never both
accept one).
Every refusal, a malformed credential included, is :class:`AuthenticationFailed` with one
message; the reason goes only to the error's ``reason`` and the log. Whether the key may
authenticate is the core's one rule (:func:`keyturn.core.credentials.refusal`). Async source of a
generated twin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NoReturn

from keyturn.core import validation
from keyturn.core.credentials import principal_of, refusal
from keyturn.core.errors import AuthenticationFailed, InvalidInput
from keyturn.crypto import signatures
from keyturn.crypto.sealing import SealError
from keyturn.service._async.security import AsyncSecurityKeys

if TYPE_CHECKING:
    from keyturn.core.records import ApiKey, Principal
    from keyturn.crypto.signatures import SignedRequest

MAX_CREDENTIAL_LENGTH: Final = 256
_DUMMY_DIGEST: Final = "0" * 64
_DUMMY_SECRET: Final = "0" * 43


def _credential(value: object) -> str | None:
    """``value`` if it can be a client id or a secret at all (text a store can hold), else None."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_CREDENTIAL_LENGTH:
        return None
    if not value.isprintable() or not value.isascii():
        return None
    return value


class AsyncCredentials(AsyncSecurityKeys):
    """Authentication (part of :class:`~keyturn.service.AsyncKeyService`)."""

    __slots__ = ()

    async def authenticate(
        self, client_id: object, secret: object, *, source_ip: object
    ) -> Principal:
        """Check credentials: only an ``active`` key, the right secret, a whitelisted address.

        Reads the store on every call (no cache), so a key disabled a moment ago fails now.
        Raises :class:`~keyturn.core.errors.AuthenticationFailed` with one message whatever
        failed, a malformed client id or secret included.
        """
        ip = validation.source_ip(source_ip)
        cid, text = _credential(client_id), _credential(secret)
        if cid is None or text is None:
            self._refuse(cid or "", "invalid_credentials", ip)
        key = await self.store.get_by_client_id(cid)
        digest = key.secret_digest if key is not None and key.secret_digest else _DUMMY_DIGEST
        ok = self.secret_hasher.matches(text, digest)
        good = key if key is not None and key.secret_digest is not None and ok else None
        return self._admit(good, cid, ip)

    async def authenticate_signature(
        self, signed: SignedRequest, *, source_ip: object
    ) -> Principal:
        """Check a signed request (:mod:`~keyturn.crypto.signatures`): signature, window, nonce.

        The signature must match, its timestamp be within the window of the clock, and its
        nonce (the signature itself when the nonce is empty) not have been used before. A key
        with a public key is checked against it; a key with a secret needs the secret sealed (a
        service with a ``secret_box``).
        """
        ip = validation.source_ip(source_ip)
        now = self.clock.now()
        key = await self.store.get_by_client_id(signed.client_id)
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
            fresh = await self.store.use_nonce(key.client_id, once, expires_at=expires, now=now)
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
        self, key: ApiKey | None, client_id: str, ip: validation.IpAddress | None
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

    async def reseal_secrets(self) -> tuple[int, int]:
        """Re-seal every sealed secret (security keys too) not under the box's current key.

        Returns how many were re-sealed and how many still are not under the current key
        (changed meanwhile: run again). Needs every old key still in the ring.
        """
        if self.secret_box is None:
            raise InvalidInput("secret_box", "this service keeps no sealed secrets")
        box, done = self.secret_box, 0
        for key in await self.store.list_keys():
            if key.sealed_secret is not None and box.needs_reseal(key.sealed_secret):
                fresh = box.reseal(key.sealed_secret, context=key.client_id)
                done += await self.store.reseal(key.id, expected=key.sealed_secret, sealed=fresh)
        after = await self.store.list_keys()
        left = sum(
            1 for k in after if k.sealed_secret is not None and box.needs_reseal(k.sealed_secret)
        )
        sk_done, sk_left = await self._reseal_security_keys(box)
        done, left = done + sk_done, left + sk_left
        self.logger.info("secrets_resealed", resealed=done, left=left, key_id_now=box.current)
        return done, left
