"""One mapping from keyturn's errors to HTTP: a status, a stable code and a person's message.

A web backend that embeds keyturn catches :class:`~keyturn.KeyturnError` and answers with
:func:`http_error`: the status to send, a stable snake_case ``error`` code for programs, a
``message`` to show the person, the structured details (``attempts_left``, ``available_at``,
``challenge_id``...) and, for a wait, a ``Retry-After`` header. The keyturn error's own message
is for developers and logs; ``message`` here says what the person can do next.

The statuses: 422 for bad input, 404 for a key that is not (or not the caller's), 409 for a
request the key's state or a concurrent change refuses, 403 for a code or confirmation the
request still needs or got wrong (RFC 9110: "the client MAY repeat the request with new or
different credentials"), 429 for a code asked for too soon, 423 for a lock only an operator
lifts, 401 for refused API credentials, 503 when the store cannot be used, and 500 for any
other keyturn error (a sealed secret that cannot be opened, say). This module
describes errors already raised and decides nothing; nothing here holds a secret or a code
(errors never carry one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import attrs

from keyturn.core import errors
from keyturn.core.lifecycle import State
from keyturn.web.views import STATE_LABELS, iso, seconds_until

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime


@attrs.frozen
class HttpError:
    """How to answer one keyturn error over HTTP."""

    status: int
    error: str
    message: str
    details: dict[str, Any] = attrs.field(factory=dict)
    retry_after: int | None = None

    def body(self) -> dict[str, Any]:
        """The JSON body: ``error``, ``message`` and the details."""
        return {"error": self.error, "message": self.message, **self.details}

    @property
    def headers(self) -> dict[str, str]:
        """``Retry-After`` (seconds) when the request can succeed after a wait."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


def wait_text(seconds: int) -> str:
    """A wait as a person reads it on a countdown: ``1:05``, ``0:09``."""
    return f"{seconds // 60}:{seconds % 60:02d}"


#: What each action is, in the words of "this key cannot be ... now".
_DOING: Final = {
    "acknowledge_secret": "confirmed as saved",
    "request_activation": "activated",
    "resend_code": "sent a new code",
    "verify_code": "activated with a code",
    "cancel_activation": "left without activating",
    "disable": "deactivated",
    "enable": "activated",
    "edit": "edited",
    "reset_secret": "given a new secret",
    "remove": "removed",
    "unlock_activation": "unlocked",
}

Rule = tuple[int, "Callable[[Any, datetime | None], tuple[str, dict[str, Any]]]"]


def _wait(e: errors.ResendTooEarly | errors.SendLimitReached, now: datetime | None) -> str:
    if now is None:
        return f"at {e.available_at:%H:%M:%S} UTC"
    return f"in {wait_text(seconds_until(e.available_at, now))}"


def _not_allowed(e: errors.ActionNotAllowed, _: datetime | None) -> tuple[str, dict[str, Any]]:
    label = STATE_LABELS[State(e.state)].lower() if e.state in set(State) else str(e.state)
    doing = _DOING.get(str(e.action), "changed that way")
    return f"This API key is {label}: it cannot be {doing} now.", {"state": e.state}


def _mismatch(e: errors.CodeMismatch, _: datetime | None) -> tuple[str, dict[str, Any]]:
    if e.attempts_left:
        text = f"That code is not right. {e.attempts_left} tries left for this code."
    else:
        text = "That code is not right, and this code has no tries left: request a new one."
    return text, {"attempts_left": e.attempts_left}


def _resend(e: errors.ResendTooEarly, now: datetime | None) -> tuple[str, dict[str, Any]]:
    return f"You can request a new code {_wait(e, now)}.", {"available_at": iso(e.available_at)}


def _send_limit(e: errors.SendLimitReached, now: datetime | None) -> tuple[str, dict[str, Any]]:
    text = f"Too many codes were sent recently. You can request another {_wait(e, now)}."
    return text, {"available_at": iso(e.available_at)}


def _confirm(e: errors.ConfirmationRequired, now: datetime | None) -> tuple[str, dict[str, Any]]:
    details: dict[str, Any] = {"challenge_id": e.challenge_id, "expires_at": iso(e.expires_at)}
    if now is not None:
        details["expires_in"] = seconds_until(e.expires_at, now, round_up=False)
    return "We sent you a code. Enter it to confirm.", details


def _security(e: errors.SecurityKeyRequired, _: datetime | None) -> tuple[str, dict[str, Any]]:
    details = {
        "challenge": e.challenge,
        "expires_at": iso(e.expires_at),
        "security_keys": [{"type": t, "name": n} for t, n in e.security_keys],
    }
    return "Enter the code your authenticator app shows to confirm.", details


def _fixed(text: str) -> Callable[[Any, datetime | None], tuple[str, dict[str, Any]]]:
    return lambda _e, _now: (text, {})


#: The one table: the first class in an error's MRO found here decides its answer.
RULES: Final[dict[type[errors.KeyturnError], Rule]] = {
    errors.InvalidInput: (
        422,
        lambda e, _: (f"Check the {e.field.replace('_', ' ')}: it {e.reason}.", {"field": e.field}),
    ),
    errors.KeyNotFound: (404, _fixed("There is no such API key.")),
    errors.ActionNotAllowed: (409, _not_allowed),
    errors.QuotaExceeded: (
        409,
        lambda e, _: (
            f"You already have {e.limit} API keys, the most allowed. Remove one to create another.",
            {"limit": e.limit},
        ),
    ),
    errors.ConcurrentUpdate: (
        409,
        _fixed("The key was changed by another request at the same moment. Try again."),
    ),
    errors.CodeMismatch: (403, _mismatch),
    errors.CodeExpired: (
        403,
        lambda e, _: ("The code expired, request a new one.", {"expired_at": iso(e.expired_at)}),
    ),
    errors.CodeAttemptsExhausted: (
        403,
        _fixed("Too many wrong codes: this code no longer works. Request a new one."),
    ),
    errors.ChallengeInvalid: (
        403,
        _fixed("This confirmation can no longer be used. Start again to get a new code."),
    ),
    errors.ResendTooEarly: (429, _resend),
    errors.SendLimitReached: (429, _send_limit),
    errors.ActivationLocked: (
        423,
        lambda e, _: (
            (
                f"Activation is locked after {e.failures} wrong codes in a row. "
                "Contact support to unlock this key."
            ),
            {"failures": e.failures},
        ),
    ),
    errors.ConfirmationRequired: (403, _confirm),
    errors.SecurityKeyRequired: (403, _security),
    errors.SecurityKeyRefused: (
        403,
        lambda e, _: (
            "The authenticator code was refused. Start again with a new code.",
            {"reason": e.reason},
        ),
    ),
    errors.SecurityKeyLocked: (
        423,
        _fixed("Your security key is locked after too many wrong codes. Contact support."),
    ),
    errors.AuthenticationFailed: (401, _fixed("Invalid credentials.")),
    errors.StoreError: (503, _fixed("The service cannot reach its storage. Try again later.")),
    errors.KeyturnError: (500, _fixed("Something went wrong. Try again later.")),
}


def http_error(error: errors.KeyturnError, *, now: datetime | None = None) -> HttpError:
    """How to answer ``error``; with ``now``, waits are counted down (``in 1:59``).

    ``error`` is the stable code: the class name, in snake_case, of the error's rule
    (``code_mismatch``), or of the error itself when no rule names it or a base of it but
    :class:`~keyturn.KeyturnError` (``seal_error``, answered 500).
    """
    cls = next(c for c in type(error).__mro__ if c in RULES)
    name = type(error).__name__ if cls is errors.KeyturnError else cls.__name__
    status, describe = RULES[cls]
    message, details = describe(error, now)
    if error.key_id is not None:
        details = {"key_id": error.key_id, **details}
    retry_after = None
    if isinstance(error, errors.ResendTooEarly | errors.SendLimitReached) and now is not None:
        retry_after = max(1, seconds_until(error.available_at, now))
    return HttpError(status, _snake(name), message, details, retry_after)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
