"""JSON-RPC 2.0 with Deribit's API-key methods, over the key service; no transport here.

:meth:`Rpc.handle` takes a decoded request, the ``Authorization`` header and the client's address,
and returns the response envelope Deribit sends (``jsonrpc``, ``id``, ``result`` or ``error``,
``usIn``, ``usOut``, ``usDiff``, ``testnet``). It never raises for anything a client sends.

How the API maps onto the lifecycle (the README says more):

* ``create_api_key`` creates the key, records the acknowledgement (this answer is the one
  showing of the secret) and enables it directly: an API caller is already authenticated with
  ``account:read_write``. ``enable_api_key`` is the direct-enable edge.
* ``enabled`` is true exactly when the key is ``active``; a key a person left in ``created``,
  ``secret_acknowledged`` or ``pending_2fa`` in the portal shows ``enabled: false``.
* Deribit's security keys: while the caller's account has one enrolled, the calls Deribit
  guards (create, edit, disable, change scope, list) first answer
  ``security_key_authorization_required`` with a challenge; the same call repeated with
  ``authorization_data`` (the TOTP code) and ``challenge`` proceeds
  (:mod:`keyturn.core.security_keys`). Each guarded method checks its own parameters first, so a
  malformed request does not spend a challenge.
* Every call goes to the async service (:class:`~keyturn.service.AsyncKeyService`), which runs the
  same operations as the sync one over async ports.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import time
from typing import TYPE_CHECKING, Any, Final

import attrs

from keyturn import signatures
from keyturn.api import errors
from keyturn.api.errors import RpcError
from keyturn.api.objects import ACCESS_LOG_EVENTS, access_log_entry, key_object
from keyturn.core import validation
from keyturn.core.errors import AuthenticationFailed, KeyturnError, SecurityKeyRequired
from keyturn.core.records import SecurityAnswer
from keyturn.core.scope import Scope
from keyturn.service import UNSET
from keyturn.service._async.credentials import MAX_CREDENTIAL_LENGTH

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from keyturn.api.tokens import Tokens
    from keyturn.core.records import Principal
    from keyturn.service import AsyncKeyService

    _Handler = Callable[["Rpc", Principal, dict[str, Any]], Awaitable[Any]]

#: Scope a key-management call needs: account:read_write (list: account:read).
_READ_WRITE: Final = Scope.parse("account:read_write")
_READ: Final = Scope.parse("account:read")
DEFAULT_KEY_NAME: Final = "api_key"
#: Parameters that answer a security-key challenge; the rest is the call the challenge binds.
_ANSWER_PARAMS: Final = frozenset({"authorization_data", "challenge"})
#: Parameters whose text may hold line breaks: a PEM block, and the data a signature covers.
_MULTILINE_PARAMS: Final = frozenset({"public_key", "data"})


def _param(params: Mapping[str, Any], name: str, kind: type, *, required: bool = False) -> Any:  # noqa: ANN401
    value = params.get(name)
    if value is None:
        if required:
            raise RpcError(errors.INVALID_PARAMS, {"param": name, "reason": "is required"})
        return None
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise RpcError(errors.INVALID_PARAMS, {"param": name, "reason": "must be an integer"})
    if not isinstance(value, kind):
        raise RpcError(
            errors.INVALID_PARAMS, {"param": name, "reason": f"must be a {kind.__name__}"}
        )
    return value


def _method_and_params(request: object) -> tuple[str, dict[str, Any]]:
    """The method and parameters of a request, every text in them checked before any use."""
    if not isinstance(request, dict) or request.get("jsonrpc", "2.0") != "2.0":
        raise RpcError(errors.INVALID_REQUEST)
    method, params = request.get("method"), request.get("params", {})
    if not isinstance(method, str) or not isinstance(params, dict):
        raise RpcError(errors.INVALID_REQUEST)
    validation.texts(params, multiline=_MULTILINE_PARAMS)
    return method, params


def _basic(value: str) -> tuple[str, str]:
    """``client_id`` and ``client_secret`` from a Basic credential; refused as any bad one."""
    try:
        client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
        for field, text in (("client_id", client_id), ("client_secret", secret)):  # no colon: ""
            validation.text(text, field, max_length=MAX_CREDENTIAL_LENGTH, min_length=1)
    except (binascii.Error, UnicodeDecodeError, ValueError):  # InvalidInput is a ValueError
        raise RpcError(errors.INVALID_CREDENTIALS) from None
    return client_id, secret


def now_us() -> int:
    """The time in microseconds since the epoch, as Deribit's ``usIn`` and ``usOut`` count it."""
    return time.time_ns() // 1000


def _origin(error: BaseException) -> str:
    """Where ``error`` was raised (module, function, line): no value, no message."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "unknown"
    frame = tb.tb_frame
    return f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_name}:{tb.tb_lineno}"


@attrs.frozen
class _Credential:
    """What a private call authenticates with: its header, its peer and what it signed."""

    authorization: str | None = attrs.field(repr=False)
    client_ip: str
    request_data: str | None = attrs.field(repr=False)


@attrs.define(kw_only=True)
class Rpc:
    """Deribit's API-key methods over a :class:`~keyturn.service.AsyncKeyService`."""

    service: AsyncKeyService
    tokens: Tokens
    testnet: bool = False

    async def handle(
        self,
        request: object,
        authorization: str | None,
        client_ip: str,
        request_data: str | None = None,
        *,
        us_in: int | None = None,
    ) -> dict[str, Any]:
        """The response envelope for one decoded JSON-RPC request; it never raises.

        ``request_data`` is what a ``deri-hmac-sha256`` header signs (method, URI and body of
        the HTTP request; :func:`keyturn.signatures.request_data`); ``None`` where there is no
        such header (WebSocket). ``us_in`` is when the request arrived (default: now).
        """
        us_in = now_us() if us_in is None else us_in
        try:
            method, params = _method_and_params(request)
            result = await self._call(method, params, authorization, client_ip, request_data)
        except RpcError as e:
            return self.refuse(e, us_in=us_in, request=request)
        except KeyturnError as e:
            refusal = errors.from_keyturn(e)
            if refusal.code == errors.INTERNAL_ERROR[0]:
                return self.fail(e, us_in=us_in, request=request)
            return self.refuse(refusal, us_in=us_in, request=request)
        except Exception as e:  # noqa: BLE001 (the edge: no request may take the server down)
            return self.fail(e, us_in=us_in, request=request)
        return self._envelope({"result": result}, us_in, request)

    def refuse(self, error: RpcError, *, us_in: int, request: object = None) -> dict[str, Any]:
        """The envelope of an error answer (with the request's ``id`` where it has one)."""
        return self._envelope({"error": error.body()}, us_in, request)

    def fail(self, error: BaseException, *, us_in: int, request: object = None) -> dict[str, Any]:
        """Log an unexpected failure (its type and origin only) and answer ``-32603``.

        The answer goes out even if the application's logging fails too.
        """
        method = request.get("method") if isinstance(request, dict) else None
        with contextlib.suppress(Exception):
            self.service.logger.error(
                "request_failed",
                error_type=type(error).__name__,
                origin=_origin(error),
                method=method if isinstance(method, str) and method in _METHODS else None,
            )
        return self.refuse(RpcError(errors.INTERNAL_ERROR), us_in=us_in, request=request)

    def _envelope(self, body: dict[str, Any], us_in: int, request: object) -> dict[str, Any]:
        """Deribit's envelope around a ``result`` or an ``error``."""
        us_out = now_us()
        envelope: dict[str, Any] = {"jsonrpc": "2.0"}
        request_id = request.get("id") if isinstance(request, dict) else None
        if isinstance(request_id, int | str) and not isinstance(request_id, bool):
            envelope["id"] = request_id
        return {
            **envelope,
            **body,
            "usIn": us_in,
            "usOut": us_out,
            "usDiff": us_out - us_in,
            "testnet": self.testnet,
        }

    async def _call(
        self,
        method: str,
        params: dict[str, Any],
        authorization: str | None,
        client_ip: str,
        request_data: str | None,
    ) -> Any:  # noqa: ANN401
        if method == "public/auth":
            return await self._auth(params, client_ip)
        handler = _PRIVATE.get(method)
        if handler is None:
            raise RpcError(errors.METHOD_NOT_FOUND, {"method": method[:64]})
        need, run = handler
        credential = _Credential(authorization, client_ip, request_data)
        return await self._private(run, need, params, credential)

    # --- authentication -----------------------------------------------------------------

    async def _auth(self, params: dict[str, Any], client_ip: str) -> dict[str, Any]:
        grant_type = _param(params, "grant_type", str, required=True)
        scope_text = _param(params, "scope", str)
        requested = Scope.parse(scope_text, field="scope") if scope_text else None
        now = self.service.clock.now()
        if grant_type == "client_credentials":
            principal = await self.service.authenticate(
                _param(params, "client_id", str, required=True),
                _param(params, "client_secret", str, required=True),
                source_ip=client_ip,
            )
        elif grant_type == "client_signature":
            signed = signatures.signed_request(
                _param(params, "client_id", str, required=True),
                _param(params, "timestamp", int, required=True),
                _param(params, "nonce", str) or "",
                _param(params, "data", str) or "",
                _param(params, "signature", str, required=True),
            )
            principal = await self.service.authenticate_signature(signed, source_ip=client_ip)
        elif grant_type == "refresh_token":
            token = _param(params, "refresh_token", str, required=True)
            try:
                grant = await self.tokens.refresh(token, requested, source_ip=client_ip, now=now)
            except AuthenticationFailed:
                raise RpcError(errors.INVALID_CREDENTIALS) from None
            return grant.result()
        else:
            raise RpcError(
                errors.INVALID_ARGUMENTS,
                {
                    "param": "grant_type",
                    "reason": "supported: client_credentials, client_signature, refresh_token",
                },
            )
        return (await self.tokens.grant(principal, requested, now)).result()

    async def _principal(self, credential: _Credential) -> Principal:
        authorization, client_ip = credential.authorization, credential.client_ip
        if not authorization:
            raise RpcError(errors.AUTHORIZATION_REQUIRED)
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == signatures.HEADER_SCHEME:
            if credential.request_data is None:
                raise RpcError(
                    errors.AUTHORIZATION_REQUIRED, {"reason": "signature headers need HTTP"}
                )
            signed = signatures.parse_header(value, request_data=credential.request_data)
            return await self.service.authenticate_signature(signed, source_ip=client_ip)
        if scheme.lower() == "bearer":
            try:
                return await self.tokens.check(
                    value.strip(), source_ip=client_ip, now=self.service.clock.now()
                )
            except AuthenticationFailed:
                raise RpcError(errors.UNAUTHORIZED) from None
        if scheme.lower() == "basic":
            client_id, secret = _basic(value)
            return await self.service.authenticate(client_id, secret, source_ip=client_ip)
        raise RpcError(errors.AUTHORIZATION_REQUIRED, {"reason": "unsupported scheme"})

    async def _private(
        self,
        run: Callable[[Rpc, Principal, dict[str, Any]], Awaitable[Any]],
        need: Scope,
        params: dict[str, Any],
        credential: _Credential,
    ) -> Any:  # noqa: ANN401
        principal = await self._principal(credential)
        if not principal.max_scope.covers(need):
            raise RpcError(errors.FORBIDDEN, {"reason": f"needs scope {need}"})
        try:
            return await run(self, principal, params)
        except SecurityKeyRequired as e:
            return {
                "security_key_authorization_required": True,
                "security_keys": [{"type": kind, "name": name} for kind, name in e.security_keys],
                "challenge": e.challenge,
            }

    async def _guard(self, principal: Principal, call: str, params: dict[str, Any]) -> None:
        """Deribit's security-key check for a guarded call, once its parameters are checked."""
        code = params.get("authorization_data")
        if isinstance(code, int) and not isinstance(code, bool):
            code = str(code)  # a GET query decodes 123456 as a number
        challenge = _param(params, "challenge", str)
        if code is not None and not isinstance(code, str):
            raise RpcError(
                errors.INVALID_PARAMS, {"param": "authorization_data", "reason": "must be a string"}
            )
        answer = None if challenge is None else SecurityAnswer(challenge, code or "")
        await self.service.authorize_call(
            owner=principal.owner,
            call=call,
            params={k: v for k, v in params.items() if k not in _ANSWER_PARAMS},
            answer=answer,
            enrolled=principal.security_key,
        )

    # --- the methods ------------------------------------------------------------------

    async def _managed(self, principal: Principal, params: dict[str, Any]) -> int:
        """The key id of the call, refused if the key's scope exceeds the caller's."""
        key_id: int = _param(params, "id", int, required=True)
        key = await self.service.get(key_id, owner=principal.owner)
        if not principal.max_scope.covers(key.max_scope):
            raise RpcError(errors.SCOPE_EXCEEDED)
        return key_id

    def _scope_within(self, principal: Principal, text: str) -> str:
        if not principal.max_scope.covers(Scope.parse(text)):
            raise RpcError(errors.SCOPE_EXCEEDED)
        return text

    def _actor(self, principal: Principal) -> str:
        return f"api:{principal.client_id}"

    async def create_api_key(self, principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
        """Create, acknowledge (this answer shows the secret) and enable a key, in one write."""
        scope = self._scope_within(principal, _param(params, "max_scope", str, required=True))
        name = validation.name(_param(params, "name", str) or DEFAULT_KEY_NAME)
        public_key = _param(params, "public_key", str)
        features = _param(params, "enabled_features", list)
        validation.public_key(public_key)
        validation.enabled_features(features)
        await self._guard(principal, "private/create_api_key", params)
        issued = await self.service.create(
            owner=principal.owner,
            name=name,
            max_scope=scope,
            public_key=public_key,
            enabled_features=features,
            actor=self._actor(principal),
            enable=True,
        )
        return key_object(issued.key, issued.client_secret)

    async def edit_api_key(self, principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
        """Change scope (required), name, features, whitelist, and enable or disable: one write."""
        key_id = await self._managed(principal, params)
        scope = self._scope_within(principal, _param(params, "max_scope", str, required=True))
        name = _param(params, "name", str)
        features = _param(params, "enabled_features", list)
        whitelist = _param(params, "ip_whitelist", list)
        enabled = _param(params, "enabled", bool)
        if name is not None:
            validation.name(name)
        validation.enabled_features(features)
        validation.ip_whitelist(whitelist)
        await self._guard(principal, "private/edit_api_key", params)
        key = await self.service.edit(
            key_id,
            owner=principal.owner,
            actor=self._actor(principal),
            max_scope=scope,
            name=UNSET if name is None else name,
            enabled_features=UNSET if features is None else features,
            ip_whitelist=UNSET if whitelist is None else whitelist,
            enabled=enabled,
        )
        return key_object(key)

    async def enable_api_key(self, principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
        """Enable a key directly (the caller is authorised by its token)."""
        key_id = await self._managed(principal, params)
        key = await self.service.enable(key_id, owner=principal.owner, actor=self._actor(principal))
        return key_object(key)

    async def disable_api_key(self, principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
        """Disable a key; its tokens and credentials fail from the next request on."""
        key_id = await self._managed(principal, params)
        await self._guard(principal, "private/disable_api_key", params)
        key = await self.service.disable(
            key_id, owner=principal.owner, actor=self._actor(principal)
        )
        return key_object(key)

    async def list_api_keys(
        self,
        principal: Principal,
        params: dict[str, Any],
    ) -> list[dict[str, Any]]:
        """The caller's live keys, with fingerprints in place of secrets."""
        await self._guard(principal, "private/list_api_keys", params)
        return [key_object(k) for k in await self.service.list_keys(owner=principal.owner)]

    async def remove_api_key(self, principal: Principal, params: dict[str, Any]) -> str:
        """Remove a key for good."""
        key_id = await self._managed(principal, params)
        await self.service.remove(key_id, owner=principal.owner, actor=self._actor(principal))
        return "ok"

    async def reset_api_key(self, principal: Principal, params: dict[str, Any]) -> dict[str, Any]:
        """A new secret, in this answer only; the old one stops working at once."""
        key_id = await self._managed(principal, params)
        issued = await self.service.reset_secret(
            key_id, owner=principal.owner, actor=self._actor(principal)
        )
        return key_object(issued.key, issued.client_secret)

    async def change_api_key_name(
        self, principal: Principal, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Rename a key."""
        key_id = await self._managed(principal, params)
        name = _param(params, "name", str, required=True)
        key = await self.service.edit(
            key_id, owner=principal.owner, actor=self._actor(principal), name=name
        )
        return key_object(key)

    async def change_scope_in_api_key(
        self, principal: Principal, params: dict[str, Any]
    ) -> dict[str, Any]:
        """Change a key's scope."""
        key_id = await self._managed(principal, params)
        scope = self._scope_within(principal, _param(params, "max_scope", str, required=True))
        await self._guard(principal, "private/change_scope_in_api_key", params)
        key = await self.service.edit(
            key_id, owner=principal.owner, actor=self._actor(principal), max_scope=scope
        )
        return key_object(key)

    async def get_access_log(
        self, principal: Principal, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The key events of the caller's keys, newest first (``offset``, ``count`` up to 10000).

        One indexed read of one page, however long the account's history.
        """
        offset = _param(params, "offset", int)
        count = _param(params, "count", int)
        events = await self.service.access_log(
            owner=principal.owner,
            events=ACCESS_LOG_EVENTS,
            offset=0 if offset is None else offset,
            limit=10 if count is None else count,
        )
        return [access_log_entry(e.client_id, e.entry) for e in events]


_PRIVATE: Final[dict[str, tuple[Scope, _Handler]]] = {
    "private/create_api_key": (_READ_WRITE, Rpc.create_api_key),
    "private/edit_api_key": (_READ_WRITE, Rpc.edit_api_key),
    "private/enable_api_key": (_READ_WRITE, Rpc.enable_api_key),
    "private/disable_api_key": (_READ_WRITE, Rpc.disable_api_key),
    "private/list_api_keys": (_READ, Rpc.list_api_keys),
    "private/remove_api_key": (_READ_WRITE, Rpc.remove_api_key),
    "private/reset_api_key": (_READ_WRITE, Rpc.reset_api_key),
    "private/change_api_key_name": (_READ_WRITE, Rpc.change_api_key_name),
    "private/change_scope_in_api_key": (_READ_WRITE, Rpc.change_scope_in_api_key),
    "private/get_access_log": (_READ, Rpc.get_access_log),
}
_METHODS: Final = frozenset({"public/auth", *_PRIVATE})
