"""Confirming an action by a code: the dialog, and the repeated request that carries the code.

When the service raises :class:`~keyturn.ConfirmationRequired` (the policy confirms Create,
Edit or Remove), :func:`confirmed` shows the code dialog, carrying the form's fields so that
the repeated request is the very one the code was sent for. The service checks the code and keeps
the seed's time rules for confirmation codes as for activation codes (the core's
:func:`~keyturn.core.confirmations.live_challenge`): asking again before "resend" opens gets the
live code back, a refusal says when a new one can be sent. This module decides no rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from keyturn import (
    ChallengeInvalid,
    CodeAttemptsExhausted,
    CodeExpired,
    CodeMismatch,
    Confirmation,
    ConfirmationRequired,
    InvalidInput,
    ResendTooEarly,
    SendLimitReached,
)
from keyturn.portal.forms import carried
from keyturn.portal.web import ShowPage
from keyturn.web.http_errors import wait_text
from keyturn.web.views import challenge_view, seconds_until

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.responses import Response

    from keyturn.portal.web import Ctx

T = TypeVar("T")

CODE_REFUSALS = (CodeMismatch, CodeExpired, CodeAttemptsExhausted, ChallengeInvalid)


#: The longest ISO 8601 time a dialog carries (``2026-01-01T12:05:00.123456+00:00`` is 32).
MAX_TIME_TEXT: Final = 40


async def _confirm_dialog(
    ctx: Ctx,
    dialog: dict[str, str],
    challenge: dict[str, Any],
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    hidden = carried(ctx.form)
    if ctx.form.get("accept_deactivate") == "yes":
        hidden.append(("accept_deactivate", "yes"))
    return await ctx.page(
        "confirm.html",
        status=status,
        dialog=dialog,
        challenge=challenge,
        hidden=hidden,
        action=ctx.request.url.path,
        error=error,
    )


def _carried_expiry(ctx: Ctx) -> datetime | None:
    """The expiry of the code the dialog was shown for, as the dialog carries it back.

    Only for showing the countdowns again (the service checks the code and its expiry); a
    value that is not a time within one ``code_ttl`` from now is ignored.
    """
    value = ctx.form.get("expires_at")
    if not isinstance(value, str) or len(value) > MAX_TIME_TEXT:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    if at.tzinfo is None or at > ctx.now + ctx.service.policy.code_ttl:
        return None
    return at


def _last_challenge(ctx: Ctx) -> dict[str, Any]:
    """The dialog's code as it was shown: its challenge and times come back with the form.

    A form that carries no valid expiry shows the code as expired (it may be).
    """
    policy = ctx.service.policy
    expires_at = _carried_expiry(ctx) or ctx.now
    sent_at = expires_at - policy.code_ttl
    return {
        "challenge_id": ctx.form.get("challenge_id", ""),
        "expires_at": expires_at.isoformat(),
        "expires_in": seconds_until(expires_at, ctx.now, round_up=False),
        "expired": ctx.now >= expires_at,
        "resend_in": seconds_until(sent_at + policy.resend_after, ctx.now),
    }


async def confirmed(
    ctx: Ctx,
    dialog: dict[str, str],
    call: Callable[[Confirmation | None], Awaitable[T]],
) -> T:
    """Run ``call``; if the policy wants a code, show the code dialog and run it again with it.

    Returns the call's answer, or raises :class:`ShowPage` with the code dialog (saying what
    went wrong, if anything did). Resend asks again without a code: before "resend" opens the
    service answers with the live challenge, and the dialog says how long to wait.
    """
    challenge_id, code = ctx.form.get("challenge_id"), ctx.form.get("code")
    resend = "resend" in ctx.form
    confirmation = None
    if isinstance(challenge_id, str) and challenge_id and not resend:
        confirmation = Confirmation(challenge_id, code.strip() if isinstance(code, str) else "")
    try:
        return await call(confirmation)
    except ConfirmationRequired as e:
        view = challenge_view(e, now=ctx.now, policy=ctx.service.policy)
        if resend and e.challenge_id == challenge_id and view["resend_in"]:
            wait = f"You can request a new code in {wait_text(view['resend_in'])}."
            page = await _confirm_dialog(ctx, dialog, view, status=429, error=wait)
            raise ShowPage(page) from None
        raise ShowPage(await _confirm_dialog(ctx, dialog, view)) from None
    except (ResendTooEarly, SendLimitReached) as e:
        problem = ctx.problem(e)
        challenge = _last_challenge(ctx)
        page = await _confirm_dialog(ctx, dialog, challenge, status=429, error=problem.message)
        raise ShowPage(page) from None
    except (*CODE_REFUSALS, InvalidInput) as e:
        if isinstance(e, InvalidInput) and e.field != "code":
            raise
        status, error = ctx.code_refusal(e)
        challenge = _last_challenge(ctx)
        if isinstance(e, CodeExpired):
            challenge["expired"] = True
        elif isinstance(e, CodeAttemptsExhausted | ChallengeInvalid):
            challenge["spent"] = True
        page = await _confirm_dialog(ctx, dialog, challenge, status=status, error=error)
        raise ShowPage(page) from None
