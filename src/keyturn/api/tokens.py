"""Access and refresh tokens for the API, in the shape of Deribit's ``public/auth`` answer.

One piece: issuing and checking a token share one format and one rule; kept together, a change to
one cannot miss the other.

A token is ``base64url(claims) "." base64url(HMAC-SHA256(token key, claims))``, decoded strictly
(one spelling per token). Every login starts a :class:`~keyturn.core.records.Session` in the store;
its tokens carry the session's id, the key's id and client id, the key's credential generation, the
granted scope, the kind and the expiry. What makes a token die when the lifecycle says so:

* every check reads the session and its key together (one store read, no cache), and admits
  only by :func:`keyturn.core.credentials.refusal`, the rule every credential obeys: the key is
  ``active``, the request's address passes its whitelist, and the key is still at the token's
  generation (a new secret, a disable, a removal, a narrower scope or whitelist move it on);
* a session can be ended (reuse of a refresh token, logout, the close of the WebSocket
  connection its tokens are bound to), which ends all its tokens;
* a token bound to a WebSocket connection (:mod:`keyturn.api.scopes`' ``connection``) names that
  connection, and serves no other connection and no HTTP request;
* a named session (``session:NAME``) has an id derived from its key and name, so a new login
  with the same name ends it and starts it again; every token names the start of its session
  (its ``created_at``), so the tokens of the session it replaced fail;
* a refresh token is single-use: refreshing rotates the session's refresh id by a
  compare-and-swap, and presenting a used one ends the whole session (OAuth 2.1's reuse
  detection); a session has an absolute lifetime however often it is refreshed.

The scope of a token never exceeds the key's ``max_scope``. Tokens are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs

from keyturn._log import get_logger
from keyturn.api.scopes import Lifetime, granted
from keyturn.core import validation
from keyturn.core.credentials import principal_of, refusal
from keyturn.core.errors import AuthenticationFailed, InvalidInput
from keyturn.core.records import Principal, Session
from keyturn.core.scope import Scope
from keyturn.core.time_rules import to_us
from keyturn.crypto.hashing import new_token

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from keyturn.ports import AsyncKeyStore

MAX_TOKEN_LENGTH: Final = 2048
#: Live sessions a key may hold (Deribit's limit); a new login ends the oldest beyond it.
MAX_SESSIONS_PER_KEY: Final = 16
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
DEFAULT_LIFETIME: Final = Lifetime()


def narrow(requested: Scope | None, ceiling: Scope) -> Scope:
    """``requested`` cut down to ``ceiling`` resource by resource (all of it when ``None``)."""
    if requested is None:
        return ceiling
    return Scope(tuple((r, min(level, ceiling.level(r))) for r, level in requested.levels))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Strict unpadded base64url: anything but the one spelling of some bytes is refused."""
    if _BASE64URL.fullmatch(text) is None:
        raise AuthenticationFailed("invalid_token")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise AuthenticationFailed("invalid_token") from None
    if _b64(raw) != text:
        raise AuthenticationFailed("invalid_token")
    return raw


@attrs.frozen
class Grant:
    """What ``public/auth`` answers, and the session it started or continued."""

    access_token: str = attrs.field(repr=False)
    refresh_token: str = attrs.field(repr=False)
    expires_in: int
    scope: Scope
    session_id: str
    lifetime: Lifetime = DEFAULT_LIFETIME
    bound: bool = False

    def result(self) -> dict[str, Any]:
        """The ``result`` object of Deribit's ``public/auth``."""
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": granted(self.scope, self.lifetime),
            "enabled_features": [],
        }


@attrs.frozen
class Claims:
    """What a token says, once its MAC and its shape are checked."""

    kind: str
    session_id: str
    key_id: int
    client_id: str
    generation: int
    scope: str
    expires: int
    refresh_id: str = attrs.field(default="", repr=False)
    connection: str = ""
    name: str = ""
    lifetime: int = 0
    epoch: int | None = None


_OPTIONAL: Final = {"j": "refresh_id", "n": "connection", "m": "name"}


def _claims(doc: object) -> Claims:
    """The claims of a decoded token body, or ``invalid_token`` if they are not all there."""
    if not isinstance(doc, dict):
        raise AuthenticationFailed("invalid_token")
    try:
        claims = Claims(
            kind=doc["t"],
            session_id=doc["i"],
            key_id=doc["k"],
            client_id=doc["c"],
            generation=doc["g"],
            scope=doc["s"],
            expires=doc["e"],
            lifetime=doc.get("x", 0),
            epoch=doc.get("a"),
            **{field: doc.get(short, "") for short, field in _OPTIONAL.items()},
        )
    except KeyError:
        raise AuthenticationFailed("invalid_token") from None
    texts = (claims.kind, claims.session_id, claims.client_id, claims.scope, claims.refresh_id)
    numbers: tuple[object, ...] = (claims.key_id, claims.generation, claims.expires)
    numbers += (claims.lifetime, 0 if claims.epoch is None else claims.epoch)
    if not all(isinstance(t, str) for t in (*texts, claims.connection, claims.name)) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in numbers
    ):
        raise AuthenticationFailed("invalid_token")
    return claims


@attrs.define(kw_only=True)
class Tokens:
    """Issues and checks tokens under a server-side key; sessions live in the store.

    ``max_access_ttl`` caps the lifetime a login may ask for with ``expires:SECONDS``.
    """

    key: bytes = attrs.field(repr=False)
    store: AsyncKeyStore
    access_ttl: timedelta = timedelta(minutes=15)
    max_access_ttl: timedelta = timedelta(hours=1)
    refresh_ttl: timedelta = timedelta(days=7)
    session_ttl: timedelta = timedelta(days=30)
    logger: Any = attrs.field(factory=get_logger)

    def _sign(self, claims: dict[str, Any]) -> str:
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        mac = hmac.new(self.key, body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def _pair(
        self,
        principal: Principal,
        session: Session,
        scope: Scope,
        now: datetime,
        *,
        lifetime: Lifetime,
        connection: str,
    ) -> Grant:
        stamp = int(now.timestamp())
        end = int(session.expires_at.timestamp())
        base: dict[str, Any] = {
            "i": session.id,
            "k": principal.key_id,
            "c": principal.client_id,
            "g": session.generation,
            "s": str(scope),
            "a": to_us(session.created_at),
        }
        ttl = int(self.access_ttl.total_seconds())
        if lifetime.expires is not None:
            ttl = min(lifetime.expires, int(self.max_access_ttl.total_seconds()))
            lifetime = attrs.evolve(lifetime, expires=ttl)
            base["x"] = ttl
        base.update({"n": connection} if connection else {})
        base.update({"m": lifetime.name} if lifetime.name else {})
        access_until = min(stamp + ttl, end)
        access = self._sign({**base, "t": "access", "e": access_until})
        refresh_until = min(stamp + int(self.refresh_ttl.total_seconds()), end)
        refresh = self._sign({**base, "t": "refresh", "e": refresh_until, "j": session.refresh_id})
        expires_in = max(0, access_until - stamp)
        return Grant(access, refresh, expires_in, scope, session.id, lifetime, bool(connection))

    def _named(self, key_id: int, name: str) -> str:
        """The id of the key's session called ``name``: the same for every login that names it."""
        digest = hmac.new(self.key, f"session\0{key_id}\0{name}".encode(), hashlib.sha256)
        return "n." + _b64(digest.digest()[:15])

    async def grant(
        self,
        principal: Principal,
        requested: Scope | None,
        now: datetime,
        *,
        lifetime: Lifetime = DEFAULT_LIFETIME,
        connection: str | None = None,
    ) -> Grant:
        """Start a session for an authenticated key; its tokens have at most the key's scope.

        ``connection`` names the WebSocket connection the login came on (``None`` over HTTP);
        the tokens are bound to it unless the login names a session. A named session replaces
        the key's session of that name.
        """
        name = lifetime.name
        session = Session(
            id=new_token(12) if name is None else self._named(principal.key_id, name),
            key_id=principal.key_id,
            generation=principal.generation,
            refresh_id=new_token(12),
            created_at=now,
            expires_at=now + self.session_ttl,
        )
        # A named session started again replaces its row, ending its earlier tokens at once.
        await self.store.start_session(session, max_per_key=MAX_SESSIONS_PER_KEY, now=now)
        bound = connection if lifetime.name is None else None
        scope = narrow(requested, principal.max_scope)
        return self._pair(principal, session, scope, now, lifetime=lifetime, connection=bound or "")

    def _decode(self, token: object, kind: str, now: datetime, connection: str | None) -> Claims:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
            raise AuthenticationFailed("invalid_token")
        body, mac = token.split(".")
        expected = hmac.new(self.key, body.encode("utf-8", "replace"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise AuthenticationFailed("invalid_token")
        try:
            claims = _claims(json.loads(_unb64(body)))
        except ValueError:
            raise AuthenticationFailed("invalid_token") from None
        if claims.kind != kind or claims.expires <= now.timestamp():
            raise AuthenticationFailed("invalid_token")
        if claims.connection and claims.connection != connection:
            raise AuthenticationFailed("other_connection")
        return claims

    async def _live(
        self, claims: Claims, source_ip: object, now: datetime
    ) -> tuple[Principal, Session]:
        """The session the claims name and who it speaks for, if every rule still admits it."""
        try:
            ip = validation.source_ip(source_ip)
        except InvalidInput:
            raise AuthenticationFailed("ip_not_allowed") from None
        found = await self.store.load_session(claims.session_id)
        if found is None:
            raise AuthenticationFailed("session_ended")
        key, session = found.key, found.session
        if key.id != claims.key_id or key.client_id != claims.client_id:
            raise AuthenticationFailed("invalid_token")
        if not session.live(now) or claims.epoch not in (None, to_us(session.created_at)):
            raise AuthenticationFailed("session_ended")
        if (reason := refusal(key, ip, claims.generation)) is not None:
            raise AuthenticationFailed(reason)
        try:
            scope = narrow(Scope.parse(claims.scope), key.max_scope)
        except InvalidInput:
            raise AuthenticationFailed("invalid_token") from None
        principal = attrs.evolve(
            principal_of(key), max_scope=scope, security_key=found.security_key
        )
        return principal, session

    async def check(
        self, token: object, *, source_ip: object, now: datetime, connection: str | None = None
    ) -> Principal:
        """The principal an access token speaks for, with its scope; else AuthenticationFailed.

        ``connection`` is the WebSocket connection the token came on (``None``: HTTP).
        """
        claims = self._decode(token, "access", now, connection)
        principal, _ = await self._live(claims, source_ip, now)
        return principal

    async def refresh(
        self,
        token: object,
        requested: Scope | None,
        *,
        source_ip: object,
        now: datetime,
        connection: str | None = None,
        expires: int | None = None,
    ) -> Grant:
        """New tokens for a refresh token, which dies; a used one ends its whole session.

        The session keeps its name and its connection; ``expires`` sets a new access lifetime
        (the old one is kept otherwise).
        """
        claims = self._decode(token, "refresh", now, connection)
        principal, session = await self._live(claims, source_ip, now)
        fresh = new_token(12)
        if not await self.store.rotate_session(session.id, expected=claims.refresh_id, new=fresh):
            await self.store.end_session(session.id, now)
            self.logger.warning(
                "refresh_token_reused", key_id=principal.key_id, client_id=principal.client_id
            )
            raise AuthenticationFailed("refresh_token_reused")
        scope = narrow(requested, principal.max_scope) if requested else principal.max_scope
        rotated = attrs.evolve(session, refresh_id=fresh)
        lifetime = Lifetime(
            connection=bool(claims.connection),
            name=claims.name or None,
            expires=expires or claims.lifetime or None,
        )
        return self._pair(
            principal, rotated, scope, now, lifetime=lifetime, connection=claims.connection
        )

    async def end(self, token: object, *, now: datetime, connection: str | None = None) -> bool:
        """End the session of a valid access token (logout); whether it was live."""
        claims = self._decode(token, "access", now, connection)
        return await self.store.end_session(claims.session_id, now)

    async def end_sessions(self, session_ids: Iterable[str], now: datetime) -> None:
        """End these sessions (those bound to a WebSocket connection that closed)."""
        for session_id in session_ids:
            await self.store.end_session(session_id, now)
