"""``public/auth``: a login by secret, signature or refresh token, and the tokens it answers.

* ``client_credentials`` (``client_id``, ``client_secret``) and ``client_signature``
  (``client_id``, ``timestamp`` in milliseconds, as a number or a string of digits, ``nonce``,
  ``data``, ``signature``) start a session; ``refresh_token`` continues one.
* ``scope`` takes resource scopes, cut down to the key's ``max_scope``, and Deribit's session
  values (:mod:`keyturn.api.scopes`): over WebSocket the tokens are bound to the connection
  unless the login names a session, and the connection's own session becomes this one.
* ``state`` (any text up to 256 characters) is echoed back in the answer.

The checks themselves are the service's (:meth:`~keyturn.service.AsyncKeyService.authenticate`)
and :class:`~keyturn.api.tokens.Tokens`'. Nothing here logs a credential.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from keyturn.api import errors, scopes
from keyturn.api.errors import RpcError
from keyturn.api.params import Kind, Param
from keyturn.api.rpc import Method
from keyturn.core import validation
from keyturn.core.errors import AuthenticationFailed
from keyturn.crypto import signatures

if TYPE_CHECKING:
    from keyturn.api.rpc import Context
    from keyturn.api.tokens import Grant
    from keyturn.core.records import Principal

MAX_STATE_LENGTH: Final = 256
_GRANT_TYPES: Final = "client_credentials, client_signature, refresh_token"


def _required(params: dict[str, Any], name: str) -> Any:  # noqa: ANN401
    value = params.get(name)
    if value is None:
        raise RpcError(errors.INVALID_PARAMS, {"param": name, "reason": "is required"})
    return value


async def _login(ctx: Context, params: dict[str, Any], grant_type: str) -> Principal:
    """Who a secret or a signature proves to be."""
    service, client_ip = ctx.rpc.service, ctx.call.client_ip
    client_id = _required(params, "client_id")
    if grant_type == "client_credentials":
        secret = _required(params, "client_secret")
        return await service.authenticate(client_id, secret, source_ip=client_ip)
    signed = signatures.signed_request(
        client_id,
        _required(params, "timestamp"),
        params.get("nonce", ""),
        params.get("data", ""),
        _required(params, "signature"),
    )
    return await service.authenticate_signature(signed, source_ip=client_ip)


async def auth(ctx: Context, params: dict[str, Any]) -> dict[str, Any]:
    """Deribit's ``public/auth``: tokens for a new session, or for the next turn of one."""
    grant_type = params["grant_type"]
    state = params.get("state")
    if state is not None:
        validation.text(state, "state", max_length=MAX_STATE_LENGTH)
    requested = scopes.parse(params.get("scope"))
    tokens, now = ctx.rpc.tokens, ctx.rpc.service.clock.now()
    connection = ctx.call.connection
    here = connection.id if connection is not None else None
    grant: Grant
    if grant_type in ("client_credentials", "client_signature"):
        principal = await _login(ctx, params, grant_type)
        lifetime = requested.lifetime
        grant = await tokens.grant(
            principal, requested.resources, now, lifetime=lifetime, connection=here
        )
    elif grant_type == "refresh_token":
        token = _required(params, "refresh_token")
        try:
            grant = await tokens.refresh(
                token,
                requested.resources,
                source_ip=ctx.call.client_ip,
                now=now,
                connection=here,
                expires=requested.lifetime.expires,
            )
        except AuthenticationFailed:
            raise RpcError(errors.INVALID_CREDENTIALS) from None
    else:
        reason = f"supported: {_GRANT_TYPES}"
        raise RpcError(errors.INVALID_ARGUMENTS, {"param": "grant_type", "reason": reason})
    if connection is not None:
        connection.adopt(grant)
    result = grant.result()
    return result if state is None else {**result, "state": state}


_STR: Final = Kind.STR
METHODS: Final = (
    Method(
        "public/auth",
        auth,
        (
            Param("grant_type", _STR, required=True),
            *(Param(n, _STR) for n in ("client_id", "client_secret", "refresh_token")),
            Param("timestamp", Kind.TIMESTAMP),
            *(Param(n, _STR) for n in ("nonce", "data", "signature", "scope", "state")),
        ),
    ),
)
