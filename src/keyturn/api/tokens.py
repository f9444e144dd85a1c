"""Access and refresh tokens for the API, in the shape of Deribit's ``public/auth`` answer.

A token is ``base64url(claims) "." base64url(HMAC-SHA256(token key, claims))``: the key's id and
client id, the granted scope, the kind and the expiry. Tokens are not stored, so any worker can
check one; what makes them safe to revoke is that :meth:`Tokens.check` re-reads the key on every
call: a key that is no longer active, or whose scope was narrowed, stops its tokens at once.
The scope of a token never exceeds the key's ``max_scope``. Tokens are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs

from keyturn.errors import AuthenticationFailed, InvalidInput
from keyturn.hashing import new_token
from keyturn.records import Principal
from keyturn.scope import Scope

if TYPE_CHECKING:
    from datetime import datetime

    from keyturn.ports import AsyncKeyStore


def narrow(requested: Scope | None, ceiling: Scope) -> Scope:
    """``requested`` cut down to ``ceiling`` resource by resource (all of it when ``None``)."""
    if requested is None:
        return ceiling
    return Scope(tuple((r, min(level, ceiling.level(r))) for r, level in requested.levels))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@attrs.frozen
class Grant:
    """What ``public/auth`` answers."""

    access_token: str = attrs.field(repr=False)
    refresh_token: str = attrs.field(repr=False)
    expires_in: int
    scope: Scope

    def result(self) -> dict[str, Any]:
        """The ``result`` object of Deribit's ``public/auth``."""
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": str(self.scope),
            "enabled_features": [],
        }


@attrs.define(kw_only=True)
class Tokens:
    """Issues and checks tokens under a server-side key."""

    key: bytes = attrs.field(repr=False)
    store: AsyncKeyStore
    access_ttl: timedelta = timedelta(minutes=15)
    refresh_ttl: timedelta = timedelta(days=7)

    def _sign(self, claims: dict[str, Any]) -> str:
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        mac = hmac.new(self.key, body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def grant(self, principal: Principal, requested: Scope | None, now: datetime) -> Grant:
        """Tokens for an authenticated key, with at most the key's scope."""
        scope = narrow(requested, principal.max_scope)
        base = {"k": principal.key_id, "c": principal.client_id, "s": str(scope)}
        stamp = int(now.timestamp())
        access = self._sign(
            {
                **base,
                "t": "access",
                "e": stamp + int(self.access_ttl.total_seconds()),
                "n": new_token(6),
            }
        )
        refresh = self._sign(
            {
                **base,
                "t": "refresh",
                "e": stamp + int(self.refresh_ttl.total_seconds()),
                "n": new_token(6),
            }
        )
        return Grant(access, refresh, int(self.access_ttl.total_seconds()), scope)

    async def check(self, token: object, kind: str, now: datetime) -> Principal:
        """The principal a token speaks for, with its scope; ``AuthenticationFailed`` if none."""
        if not isinstance(token, str) or len(token) > 2048 or token.count(".") != 1:  # noqa: PLR2004
            raise AuthenticationFailed("invalid_token")
        body, mac = token.split(".")
        expected = hmac.new(self.key, body.encode(), hashlib.sha256).digest()
        try:
            valid = hmac.compare_digest(expected, _unb64(mac))
            claims = json.loads(_unb64(body)) if valid else {}
        except (ValueError, TypeError):
            raise AuthenticationFailed("invalid_token") from None
        if not valid or claims.get("t") != kind or claims.get("e", 0) <= now.timestamp():
            raise AuthenticationFailed("invalid_token")
        key = await self.store.get(int(claims["k"]))
        if key is None or key.client_id != claims["c"] or not key.enabled:
            raise AuthenticationFailed("key_not_active")
        try:
            scope = narrow(Scope.parse(claims["s"]), key.max_scope)
        except InvalidInput:
            raise AuthenticationFailed("invalid_token") from None
        return Principal(key_id=key.id, owner=key.owner, client_id=key.client_id, max_scope=scope)
