"""Who a private call speaks for: the one credential it carries, checked as every credential is.

A call has exactly one credential, taken in this order:

1. the ``access_token`` parameter (Deribit's way over WebSocket; also accepted over HTTP);
2. over HTTP, the ``Authorization`` header: ``Bearer``, ``Basic`` or ``deri-hmac-sha256``;
3. over WebSocket, the connection's own session: the last successful ``public/auth`` on it.

A token in the parameters is the credential for that call alone: a connection authenticated as
one account never lends its session to a call that carries another token, valid or not. A call
carrying both an ``access_token`` and an ``Authorization`` header is refused, so no call is ever
read as two callers. Whatever carries a token, the same checks apply
(:meth:`keyturn.api.tokens.Tokens.check`: key active, current credential generation, session
live, IP whitelist, and a token bound to a connection only on that connection). This module
decides nothing else and never logs a credential.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from keyturn.api import errors
from keyturn.api.errors import RpcError
from keyturn.core import validation
from keyturn.core.errors import AuthenticationFailed
from keyturn.crypto import signatures
from keyturn.service._async.credentials import MAX_CREDENTIAL_LENGTH

if TYPE_CHECKING:
    from keyturn.api.rpc import Call, Rpc
    from keyturn.core.records import Principal


def _basic(value: str) -> tuple[str, str]:
    """``client_id`` and ``client_secret`` from a Basic credential; refused as any bad one."""
    try:
        client_id, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
        for field, text in (("client_id", client_id), ("client_secret", secret)):  # no colon: ""
            validation.text(text, field, max_length=MAX_CREDENTIAL_LENGTH, min_length=1)
    except (binascii.Error, UnicodeDecodeError, ValueError):  # InvalidInput is a ValueError
        raise RpcError(errors.INVALID_CREDENTIALS) from None
    return client_id, secret


async def bearer(rpc: Rpc, call: Call, token: str) -> Principal:
    """The principal an access token speaks for on this call (13009 if it may not)."""
    connection = call.connection.id if call.connection is not None else None
    try:
        return await rpc.tokens.check(
            token, source_ip=call.client_ip, now=rpc.service.clock.now(), connection=connection
        )
    except AuthenticationFailed:
        raise RpcError(errors.UNAUTHORIZED) from None


def token_of(call: Call, token: str | None) -> str | None:
    """The access token a WebSocket call uses: its own, else its connection's (or ``None``)."""
    if token is not None:
        return token
    return call.connection.token if call.connection is not None else None


async def principal(rpc: Rpc, call: Call, token: str | None) -> Principal:
    """Who the call speaks for, by its one credential (see the module's docstring)."""
    if token is not None and call.authorization:
        reason = "give one credential: the Authorization header or access_token, not both"
        raise RpcError(errors.INVALID_ARGUMENTS, {"param": "access_token", "reason": reason})
    if call.authorization:
        return await _header(rpc, call, call.authorization)
    token = token_of(call, token)
    if token is None:
        raise RpcError(errors.AUTHORIZATION_REQUIRED)
    return await bearer(rpc, call, token)


async def _header(rpc: Rpc, call: Call, authorization: str) -> Principal:
    """The principal an HTTP ``Authorization`` header speaks for."""
    scheme, _, value = authorization.strip().partition(" ")
    service, client_ip = rpc.service, call.client_ip
    if scheme.lower() == signatures.HEADER_SCHEME:
        if call.request_data is None:
            raise RpcError(errors.AUTHORIZATION_REQUIRED, {"reason": "signature headers need HTTP"})
        signed = signatures.parse_header(value, request_data=call.request_data)
        return await service.authenticate_signature(signed, source_ip=client_ip)
    if scheme.lower() == "bearer":
        return await bearer(rpc, call, value.strip())
    if scheme.lower() == "basic":
        client_id, secret = _basic(value)
        return await service.authenticate(client_id, secret, source_ip=client_ip)
    raise RpcError(errors.AUTHORIZATION_REQUIRED, {"reason": "unsupported scheme"})
