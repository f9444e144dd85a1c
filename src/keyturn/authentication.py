"""Checking credentials: client id, secret and source address, against the store, every time.

No cache: a key disabled a moment ago fails on the next call, on every worker. The secret is
compared as a keyed digest in constant time, and an unknown client id costs the same digest as a
known one. Every failure has one message; the reason goes only to the error's ``reason`` and the
log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import attrs

from keyturn import validation
from keyturn.errors import AuthenticationFailed, InvalidInput
from keyturn.records import Principal

if TYPE_CHECKING:
    from keyturn.hashing import SecretHasher
    from keyturn.ports import KeyStore

MAX_CREDENTIAL_LENGTH: Final = 256
_DUMMY_DIGEST: Final = "0" * 64


@attrs.define(kw_only=True)
class Authenticator:
    """Authenticates API clients against a key store."""

    store: KeyStore
    secret_hasher: SecretHasher
    logger: Any

    def authenticate(self, client_id: object, secret: object, *, source_ip: object) -> Principal:
        """The principal for these credentials, or :class:`AuthenticationFailed`."""
        for field, value in (("client_id", client_id), ("client_secret", secret)):
            if not isinstance(value, str) or not value or len(value) > MAX_CREDENTIAL_LENGTH:
                raise InvalidInput(field, f"must be a string of 1-{MAX_CREDENTIAL_LENGTH} chars")
        assert isinstance(client_id, str)  # noqa: S101 (narrowing after the loop above)
        assert isinstance(secret, str)  # noqa: S101
        ip = validation.source_ip(source_ip)
        key = self.store.get_by_client_id(client_id)
        digest = key.secret_digest if key is not None and key.secret_digest else _DUMMY_DIGEST
        ok = self.secret_hasher.matches(secret, digest)
        reason = None
        if key is None or key.secret_digest is None or not ok:
            reason = "invalid_credentials"
        elif not key.enabled:
            reason = "key_not_active"
        elif key.ip_whitelist and not any(ip in net for net in key.ip_whitelist):
            reason = "ip_not_allowed"
        if reason is not None or key is None:
            self.logger.info(
                "authentication_failed",
                client_id=client_id[:16],
                reason=reason,
                source_ip=str(ip),
            )
            raise AuthenticationFailed(reason or "invalid_credentials")
        return Principal(
            key_id=key.id, owner=key.owner, client_id=key.client_id, max_scope=key.max_scope
        )
