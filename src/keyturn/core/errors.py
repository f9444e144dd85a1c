"""Every error keyturn raises, under one root: :class:`KeyturnError`.

One piece: one hierarchy, read whole by whoever maps errors to API codes, HTTP statuses and exit
codes; each class is short.

Each error carries structured attributes (``key_id``, ``state``, ``action`` and what is
specific to it) and a message a person can act on. No message, attribute or repr ever holds a
secret or a verification code: errors are built from identifiers and states only, and the
modules that handle secrets never pass them here.

This module must not import anything from keyturn but the state names, so that every layer can
raise these without an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


class KeyturnError(Exception):
    """The root of every error keyturn raises on purpose.

    ``key_id``, ``state`` and ``action`` say where it happened, where known.
    """

    def __init__(
        self,
        message: str,
        *,
        key_id: int | None = None,
        state: str | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.key_id = key_id
        self.state = state
        self.action = action

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidInput(KeyturnError, ValueError):  # noqa: N818 (an input is invalid, not an error of ours)
    """An argument is malformed, of the wrong type, too long or out of range.

    ``field`` names the argument. Nothing was changed.
    """

    def __init__(self, field: str, reason: str, *, action: str | None = None) -> None:
        super().__init__(f"invalid {field}: {reason}", action=action)
        self.field = field
        self.reason = reason


class KeyNotFound(KeyturnError):  # noqa: N818 (reads as the event it reports)
    """No such key for this owner.

    A key that exists but belongs to someone else raises exactly this, with the same message, so
    that a caller cannot learn which ids exist.
    """

    def __init__(self, key_id: object, *, action: str | None = None) -> None:
        shown = key_id if isinstance(key_id, int) else None
        super().__init__(f"no API key with id {key_id!r}", key_id=shown, action=action)


class ActionNotAllowed(KeyturnError):  # noqa: N818
    """The action is not possible in the key's current state."""

    def __init__(self, message: str, *, key_id: int, state: str, action: str) -> None:
        super().__init__(message, key_id=key_id, state=state, action=action)


class QuotaExceeded(KeyturnError):  # noqa: N818
    """The owner already has the most live keys the policy allows."""

    def __init__(self, owner: str, limit: int) -> None:
        super().__init__(
            f"owner {owner!r} already has {limit} live API keys, the most allowed; "
            "remove one before creating another",
            action="create",
        )
        self.owner = owner
        self.limit = limit


class ConcurrentUpdate(KeyturnError):  # noqa: N818
    """Someone else changed the key since it was read; nothing was written. Retry the action."""

    def __init__(self, key_id: int, expected_version: int, *, action: str | None = None) -> None:
        super().__init__(
            f"API key {key_id} was changed by another request "
            f"(expected version {expected_version}); nothing was written, retry",
            key_id=key_id,
            action=action,
        )
        self.expected_version = expected_version


class CodeError(KeyturnError):
    """A verification code was refused. Subclasses say why."""


class CodeMismatch(CodeError):  # noqa: N818
    """The code does not match; the failure was counted.

    ``attempts_left`` is how many more wrong codes this request can bear: the smaller of the
    tries this code has left (``Policy.max_attempts``) and the wrong codes in a row left before
    activation locks (``failures_before_lock``, from ``Policy.max_consecutive_failures``; a new
    code does not reset it).
    """

    def __init__(
        self,
        *,
        key_id: int | None,
        state: str | None,
        action: str,
        attempts_left: int,
        failures_before_lock: int | None = None,
    ) -> None:
        hint = (
            f"{attempts_left} attempt(s) left for this code"
            if attempts_left
            else "no attempts left for this code; request a new one"
        )
        if failures_before_lock == 0:
            hint = "activation is now locked: an operator must unlock it"
        super().__init__(
            f"verification code does not match; {hint}",
            key_id=key_id,
            state=state,
            action=action,
        )
        self.attempts_left = attempts_left
        self.failures_before_lock = failures_before_lock


class CodeExpired(CodeError):  # noqa: N818
    """The code was sent too long ago; a new one must be requested."""

    def __init__(
        self, *, key_id: int | None, state: str | None, action: str, expired_at: datetime
    ) -> None:
        super().__init__(
            f"verification code expired at {expired_at.isoformat()}; request a new code",
            key_id=key_id,
            state=state,
            action=action,
        )
        self.expired_at = expired_at


class CodeAttemptsExhausted(CodeError):  # noqa: N818
    """Too many wrong tries on this code; it is dead and a new one must be requested."""

    def __init__(self, *, key_id: int | None, state: str | None, action: str) -> None:
        super().__init__(
            "too many wrong codes; this code no longer works, request a new one",
            key_id=key_id,
            state=state,
            action=action,
        )


class ResendTooEarly(CodeError):  # noqa: N818
    """A new code was asked for before "resend" opens. ``available_at`` says when it does."""

    def __init__(
        self, *, key_id: int | None, state: str | None, action: str, available_at: datetime
    ) -> None:
        super().__init__(
            f"a new code can be requested from {available_at.isoformat()}",
            key_id=key_id,
            state=state,
            action=action,
        )
        self.available_at = available_at


class SendLimitReached(CodeError):  # noqa: N818
    """Too many codes were sent for this key recently. ``available_at`` says when one can be."""

    def __init__(
        self, *, key_id: int | None, state: str | None, action: str, available_at: datetime
    ) -> None:
        super().__init__(
            f"too many codes sent recently; the next can be sent from {available_at.isoformat()}",
            key_id=key_id,
            state=state,
            action=action,
        )
        self.available_at = available_at


class ActivationLocked(CodeError):  # noqa: N818
    """Too many consecutive wrong codes over the key's life; an operator must unlock it."""

    def __init__(self, *, key_id: int, state: str, action: str, failures: int) -> None:
        super().__init__(
            f"activation is locked after {failures} consecutive wrong codes; "
            "an operator must unlock this key",
            key_id=key_id,
            state=state,
            action=action,
        )
        self.failures = failures


class ConfirmationRequired(KeyturnError):  # noqa: N818 (an answer to act on, not a failure)
    """The policy wants this action confirmed by a code, and a code was sent.

    Repeat the same call with ``confirmation=Confirmation(challenge_id, code)``. Nothing else was
    changed. This is Deribit's ``security_key_authorization_required`` answer.
    """

    def __init__(
        self,
        *,
        challenge_id: str,
        expires_at: datetime,
        action: str,
        key_id: int | None,
        resend_at: datetime | None = None,
    ) -> None:
        super().__init__(
            f"{action!r} must be confirmed: a code was sent; repeat the request with "
            f"challenge {challenge_id!r} and the code before {expires_at.isoformat()}",
            key_id=key_id,
            action=action,
        )
        self.challenge_id = challenge_id
        self.expires_at = expires_at
        #: When a new code can be asked for this request (``None``: not said).
        self.resend_at = resend_at


class ChallengeInvalid(CodeError):  # noqa: N818
    """The confirmation names no challenge, or one issued for another request, or a used one."""

    def __init__(self, reason: str, *, action: str, key_id: int | None) -> None:
        super().__init__(
            f"confirmation refused: {reason}; repeat the request without a confirmation "
            "to get a new code",
            key_id=key_id,
            action=action,
        )
        self.reason = reason


class SecurityKeyRequired(KeyturnError):  # noqa: N818 (an answer to act on, not a failure)
    """The account has a security key: repeat the same call with the challenge and a code.

    Deribit's ``security_key_authorization_required`` answer. ``challenge`` is valid until
    ``expires_at`` (one minute by default, ``Policy.security_challenge_ttl``) and for this exact
    call only; ``security_keys`` lists ``(type, name)`` of the account's keys. Nothing was changed.
    """

    def __init__(
        self,
        *,
        challenge: str,
        expires_at: datetime,
        call: str,
        security_keys: tuple[tuple[str, str], ...],
    ) -> None:
        super().__init__(
            f"{call!r} needs security-key authorization: repeat the same call with the "
            f"challenge and a code from the authenticator before {expires_at.isoformat()}",
            action=call,
        )
        self.challenge = challenge
        self.expires_at = expires_at
        self.security_keys = security_keys


class SecurityKeyRefused(KeyturnError):  # noqa: N818
    """A security-key authorization was refused; start over with a call without one.

    ``reason`` is Deribit's: ``tfa_code_not_matched``, ``used_tfa_code``, ``challenge_timeout``
    or ``tfa_code_is_required``. The challenge is spent whatever the reason.
    """

    def __init__(self, reason: str, detail: str, *, call: str) -> None:
        super().__init__(
            f"security-key authorization refused ({reason}): {detail}; repeat the call "
            "without authorization_data to get a new challenge",
            action=call,
        )
        self.reason = reason


class SecurityKeyLocked(KeyturnError):  # noqa: N818
    """Too many wrong security-key codes in a row: the account's security key is locked.

    Deribit's ``security_key_authorization_over_limit``. An operator re-enrolls the account's
    authenticator (``keyturn security-key enroll``) to lift it.
    """

    def __init__(self, *, call: str, failures: int) -> None:
        super().__init__(
            f"security-key authorization locked after {failures} wrong codes in a row; "
            "an operator must enroll the authenticator again",
            action=call,
        )
        self.failures = failures


class AuthenticationFailed(KeyturnError):  # noqa: N818
    """Credentials were refused.

    The message is the same whatever went wrong; ``reason`` (for the server's own logs) says which
    of ``invalid_credentials``, ``key_not_active`` and ``ip_not_allowed`` it was.
    """

    def __init__(self, reason: str) -> None:
        super().__init__("invalid credentials", action="authenticate")
        self.reason = reason


class StoreError(KeyturnError):
    """The key store cannot be used: unreachable, or its schema is not one this keyturn knows."""
