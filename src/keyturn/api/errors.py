"""Deribit's error codes, and how keyturn's errors map onto them.

Messages and ``data`` are built from identifiers, fields and states only: never a secret, a code
or a token.
"""

from __future__ import annotations

from typing import Any, Final

from keyturn.core.errors import (
    ActionNotAllowed,
    AuthenticationFailed,
    ChallengeInvalid,
    CodeError,
    CodeExpired,
    ConcurrentUpdate,
    InvalidInput,
    KeyNotFound,
    KeyturnError,
    QuotaExceeded,
    SecurityKeyLocked,
    SecurityKeyRefused,
)

PARSE_ERROR: Final = (-32700, "Parse error")
INVALID_REQUEST: Final = (-32600, "Invalid Request")
METHOD_NOT_FOUND: Final = (-32601, "Method not found")
INVALID_PARAMS: Final = (-32602, "Invalid params")
INTERNAL_ERROR: Final = (-32603, "Internal error")
AUTHORIZATION_REQUIRED: Final = (10000, "authorization_required")
MUST_BE_WEBSOCKET: Final = (10030, "must_be_websocket_request")
INVALID_ARGUMENTS: Final = (11029, "invalid_arguments")
BAD_REQUEST: Final = (11050, "bad_request")
#: Deribit's unhandled-failure code; keyturn answers it only when ``public/test`` asks for one.
INTERNAL_SERVER_ERROR: Final = (11094, "internal_server_error")
SECURITY_KEY_OVER_LIMIT: Final = (12998, "security_key_authorization_over_limit")
INVALID_CREDENTIALS: Final = (13004, "invalid_credentials")
UNAUTHORIZED: Final = (13009, "unauthorized")
NOT_FOUND: Final = (13020, "not_found")
FORBIDDEN: Final = (13021, "forbidden")
SCOPE_EXCEEDED: Final = (13403, "scope_exceeded")
SECURITY_KEY_ERROR: Final = (13668, "security_key_authorization_error")


class RpcError(Exception):
    """A JSON-RPC error answer: Deribit's code and message, and optional ``data``."""

    def __init__(self, error: tuple[int, str], data: Any = None) -> None:  # noqa: ANN401
        super().__init__(error[1])
        self.code, self.message = error
        self.data = data

    def body(self) -> dict[str, Any]:
        """The ``error`` member of the response."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def _code_reason(error: CodeError) -> str:
    """Deribit's 13668 reason for a refused confirmation code."""
    if isinstance(error, CodeExpired):
        return "challenge_timeout"
    if isinstance(error, ChallengeInvalid) and "already used" in error.reason:
        return "used_tfa_code"
    return "tfa_code_not_matched"


#: Fields that carry a secret or a proof: one that cannot be right is answered as a wrong one.
SECRET_FIELDS: Final = frozenset({"client_secret", "refresh_token", "signature"})


def from_keyturn(error: KeyturnError) -> RpcError:
    """The Deribit error for a keyturn error.

    A malformed secret, token or signature is ``invalid_credentials`` like a wrong one: the
    answer describes no secret's shape, and every refused credential looks the same.
    """
    if isinstance(error, InvalidInput):
        described = RpcError(INVALID_ARGUMENTS, {"param": error.field, "reason": error.reason})
        return RpcError(INVALID_CREDENTIALS) if error.field in SECRET_FIELDS else described
    if isinstance(error, SecurityKeyRefused):
        return RpcError(SECURITY_KEY_ERROR, {"reason": error.reason})
    if isinstance(error, CodeError):
        return RpcError(SECURITY_KEY_ERROR, {"reason": _code_reason(error)})
    if isinstance(error, ActionNotAllowed | QuotaExceeded | ConcurrentUpdate):
        return RpcError(BAD_REQUEST, {"reason": error.message})
    simple = (
        (KeyNotFound, NOT_FOUND),
        (AuthenticationFailed, INVALID_CREDENTIALS),
        (SecurityKeyLocked, SECURITY_KEY_OVER_LIMIT),
    )
    for kind, answer in simple:
        if isinstance(error, kind):
            return RpcError(answer)
    return RpcError(INTERNAL_ERROR)
