"""Why a command failed: one exit code per kind of refusal, one line, one JSON object.

Every failure becomes a :class:`Failure`: a stable ``error`` code (the snake_case name of the
keyturn error, as :mod:`keyturn.web.http_errors` names it, or one of the command's own), a message
saying what happened and what to do next, the exit code (:data:`EXIT_CODES`, documented in the
README) and the error's structured details. The command prints it as one line on stderr, or as
``{"error", "message", "exit", ...}`` with ``--json``; never a traceback. Nothing here changes
a key: the next steps are read from the key as it is.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, Final

import attrs

from keyturn import diagrams
from keyturn.core import errors
from keyturn.web.http_errors import http_error

from .guidance import next_steps
from .output import when

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from keyturn.core.policy import Policy
    from keyturn.core.records import ApiKey

OK: Final = 0
REFUSED: Final = 1
USAGE: Final = 2
STORE: Final = 3
NOT_FOUND: Final = 4
CODE_REFUSED: Final = 5
TOO_EARLY: Final = 6
LOCKED: Final = 7
QUOTA: Final = 8
DELIVERY_FAILED: Final = 9
NO_STORE: Final = 10
INTERRUPTED: Final = 130
CLOSED_PIPE: Final = 141

#: Exit codes, as the README documents them.
EXIT_CODES: Final = {
    OK: "success",
    REFUSED: "refused: the key's state does not allow it, a concurrent change, or answered no",
    USAGE: "bad input or usage (also: --yes needed without a terminal)",
    STORE: "the store, a file or Graphviz could not be used",
    NOT_FOUND: "no such key (or not this owner's)",
    CODE_REFUSED: "the code was wrong, expired or used up",
    TOO_EARLY: "too early: a new code can be sent later (see available_at)",
    LOCKED: "locked after too many wrong codes: an operator must unlock",
    QUOTA: "the owner has the most live keys allowed",
    DELIVERY_FAILED: "relay: a delivery failed (it is retried later)",
    NO_STORE: "no key store at --db: create one with keyturn init",
    INTERRUPTED: "interrupted (Ctrl-C)",
    CLOSED_PIPE: "the reader of the output went away (a closed pipe, as when piped to head)",
}

#: The exit code of each keyturn error: the first class in its MRO found here decides.
_EXIT_OF: Final[dict[type[Exception], int]] = {
    errors.InvalidInput: USAGE,
    errors.KeyNotFound: NOT_FOUND,
    errors.ActionNotAllowed: REFUSED,
    errors.ConcurrentUpdate: REFUSED,
    errors.CodeMismatch: CODE_REFUSED,
    errors.CodeExpired: CODE_REFUSED,
    errors.CodeAttemptsExhausted: CODE_REFUSED,
    errors.ChallengeInvalid: CODE_REFUSED,
    errors.ResendTooEarly: TOO_EARLY,
    errors.SendLimitReached: TOO_EARLY,
    errors.ActivationLocked: LOCKED,
    errors.SecurityKeyLocked: LOCKED,
    errors.QuotaExceeded: QUOTA,
    errors.StoreError: STORE,
    errors.KeyturnError: REFUSED,
}


class Failure(Exception):  # noqa: N818 (what the command answers, not an error class of ours)
    """A command's failure, ready to print: code, message, exit code and details."""

    def __init__(
        self, error: str, message: str, exit_code: int, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.exit = exit_code
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        """The ``--json`` answer: ``error``, ``message``, ``exit``, then the details."""
        return {"error": self.error, "message": self.message, "exit": self.exit, **self.details}


def usage(message: str) -> Failure:
    """Bad usage of the command itself (argparse's errors, a missing ``--yes``)."""
    return Failure("usage", message, USAGE)


def no_store(where: str, *, hint: str) -> Failure:
    """There is no key store at ``where``: say so, and how to create one."""
    return Failure(
        "store_missing",
        f"no key store at {where}: create one with keyturn init{hint} (or create --init), "
        "or check --db and $KEYTURN_DB",
        NO_STORE,
        {"db": where},
    )


#: The inputs whose rules the commands' --help explains.
_DOCUMENTED: Final = frozenset(
    {"name", "max_scope", "ip_whitelist", "enabled_features", "code", "owner", "public_key"}
)


@attrs.frozen
class Context:
    """What a message about a key needs: the clock's now, the policy, and a way to read a key."""

    now: datetime
    policy: Policy
    read_key: Callable[[int], ApiKey | None]
    store: str
    command: str


def explain(error: Exception, ctx: Context | None) -> Failure:
    """The :class:`Failure` for ``error``, with next steps from the key's state where known."""
    if isinstance(error, Failure):
        return error
    if isinstance(error, errors.KeyturnError):
        return _keyturn(error, ctx)
    if isinstance(error, diagrams.GraphvizMissingError):
        return Failure("graphviz_missing", str(error), STORE)
    if isinstance(error, OSError):
        message = str(error)
        if error.strerror:
            message = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
        return Failure("file_error", message, STORE)
    if isinstance(error, sqlite3.Error):
        return Failure("store_error", f"the SQLite key store failed: {error}", STORE)
    raise error


def _keyturn(error: errors.KeyturnError, ctx: Context | None) -> Failure:
    exit_code = next(code for cls, code in _EXIT_OF.items() if isinstance(error, cls))
    answer = http_error(error, now=None if ctx is None else ctx.now)
    details = {k: v for k, v in answer.details.items() if k not in ("challenge", "challenge_id")}
    message = error.message
    if ctx is not None:
        message = _message(error, ctx)
    return Failure(answer.error, message, exit_code, details)


def _message(error: errors.KeyturnError, ctx: Context) -> str:
    """The error's message in the command's words, ending with what to do next."""
    now, e = ctx.now, error
    if isinstance(e, errors.KeyNotFound):
        return f"{e.message} in {ctx.store}; keyturn list --all shows the keys there"
    if isinstance(e, errors.ResendTooEarly):
        wait = when(e.available_at, now)
        text = f"too early for a new code for key {e.key_id}: one can be sent {wait}"
    elif isinstance(e, errors.SendLimitReached):
        p = ctx.policy
        window = int(p.send_window.total_seconds() // 60)
        text = (
            f"too many codes were sent for key {e.key_id} (at most {p.max_sends} in {window} "
            f"min): the next can be sent {when(e.available_at, now)}"
        )
    elif isinstance(e, errors.CodeExpired):
        text = f"the code expired {when(e.expired_at, now)}"
    elif isinstance(e, errors.InvalidInput):
        if e.field not in _DOCUMENTED:
            return e.message
        return f"{e.message} (keyturn {ctx.command} --help says what is accepted)"
    elif isinstance(e, errors.QuotaExceeded):
        return f"{e.message}: keyturn list --owner {e.owner}, then keyturn remove ID"
    else:
        text = e.message
    key = ctx.read_key(e.key_id) if e.key_id is not None else None
    steps = next_steps(key, now, ctx.policy) if key is not None else []
    if isinstance(e, errors.ResendTooEarly | errors.SendLimitReached):
        steps = [s for s in steps if s.startswith("keyturn verify")]  # the wait is said already
    return f"{text}. Next: " + "; or ".join(steps) if steps else text
