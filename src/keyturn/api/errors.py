"""Deribit's error codes, and how keyturn's errors map onto them.

Messages and ``data`` are built from identifiers, fields and states only: never a secret, a code
or a token.
"""

from __future__ import annotations

from typing import Any, Final

from keyturn.errors import (
    ActionNotAllowed,
    AuthenticationFailed,
    ChallengeInvalid,
    CodeError,
    CodeExpired,
    CodeMismatch,
    ConcurrentUpdate,
    InvalidInput,
    KeyNotFound,
    KeyturnError,
    QuotaExceeded,
)

PARSE_ERROR: Final = (-32700, "Parse error")
INVALID_REQUEST: Final = (-32600, "Invalid Request")
METHOD_NOT_FOUND: Final = (-32601, "Method not found")
INVALID_PARAMS: Final = (-32602, "Invalid params")
INTERNAL_ERROR: Final = (-32603, "Internal error")
AUTHORIZATION_REQUIRED: Final = (10000, "authorization_required")
INVALID_ARGUMENTS: Final = (11029, "invalid_arguments")
BAD_REQUEST: Final = (11050, "bad_request")
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


def from_keyturn(error: KeyturnError) -> RpcError:
    """The Deribit error for a keyturn error."""
    if isinstance(error, InvalidInput):
        return RpcError(INVALID_ARGUMENTS, {"param": error.field, "reason": error.reason})
    if isinstance(error, KeyNotFound):
        return RpcError(NOT_FOUND)
    if isinstance(error, AuthenticationFailed):
        return RpcError(INVALID_CREDENTIALS)
    if isinstance(error, CodeError):
        reason = "tfa_code_not_matched"
        if isinstance(error, CodeExpired):
            reason = "challenge_timeout"
        elif isinstance(error, ChallengeInvalid) and "already used" in error.reason:
            reason = "used_tfa_code"
        elif not isinstance(error, CodeMismatch):
            reason = "tfa_code_not_matched"
        return RpcError(SECURITY_KEY_ERROR, {"reason": reason})
    if isinstance(error, ActionNotAllowed | QuotaExceeded | ConcurrentUpdate):
        return RpcError(BAD_REQUEST, {"reason": error.message})
    return RpcError(INTERNAL_ERROR)
