"""Confirming an action by a code: the dialog, and the repeated request that carries the code.

When the service raises :class:`~keyturn.ConfirmationRequired` (the policy confirms Create,
Edit or Remove), :func:`confirmed` shows the code dialog, carrying the form's fields so that
the repeated request is the very one the code was sent for. The service checks the code; this
module only keeps two of the seed's rules that the service does not keep for confirmation
codes, per browser session: a new code no sooner than ``resend_after`` after the last one, and
at most ``max_sends`` per ``send_window``. It decides no lifecycle rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from keyturn import (
    ChallengeInvalid,
    CodeAttemptsExhausted,
    CodeExpired,
    CodeMismatch,
    Confirmation,
    ConfirmationRequired,
    InvalidInput,
)
from keyturn.http_errors import wait_text
from keyturn.portal.forms import carried
from keyturn.portal.web import ShowPage
from keyturn.views import challenge_view, seconds_until

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.responses import Response

    from keyturn.portal.web import Ctx

T = TypeVar("T")

CODE_REFUSALS = (CodeMismatch, CodeExpired, CodeAttemptsExhausted, ChallengeInvalid)


def _sent_times(ctx: Ctx, slot: str) -> list[datetime]:
    window = ctx.now - ctx.service.policy.send_window
    kept = ctx.session.get("sent", {}).get(slot, [])
    return [t for t in map(datetime.fromisoformat, kept) if t > window]


def _remember_send(ctx: Ctx, slot: str, required: ConfirmationRequired) -> None:
    sent = dict(ctx.session.get("sent", {}))
    at = required.expires_at - ctx.service.policy.code_ttl
    sent[slot] = [t.isoformat() for t in (*_sent_times(ctx, slot), at)]
    ctx.session.set("sent", sent)


def _send_wait(ctx: Ctx, slot: str, *, resend: bool) -> int:
    """Seconds before another confirmation code may go out for ``slot`` (0: now)."""
    policy, times = ctx.service.policy, _sent_times(ctx, slot)
    at = ctx.now
    if resend and times:
        at = max(at, times[-1] + policy.resend_after)
    if len(times) >= policy.max_sends:
        at = max(at, times[-policy.max_sends] + policy.send_window)
    return seconds_until(at, ctx.now)


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


def _last_challenge(ctx: Ctx, slot: str) -> dict[str, Any]:
    times, policy = _sent_times(ctx, slot), ctx.service.policy
    sent_at = times[-1] if times else ctx.now - policy.code_ttl
    expires_at = sent_at + policy.code_ttl
    return {
        "challenge_id": ctx.form.get("challenge_id", ""),
        "expires_in": seconds_until(expires_at, ctx.now, round_up=False),
        "expired": ctx.now >= expires_at,
        "resend_in": seconds_until(sent_at + policy.resend_after, ctx.now),
    }


async def confirmed(
    ctx: Ctx,
    slot: str,
    dialog: dict[str, str],
    call: Callable[[Confirmation | None], Awaitable[T]],
) -> T:
    """Run ``call``; if the policy wants a code, show the code dialog and run it again with it.

    Returns the call's answer, or raises :class:`ShowPage` with the code dialog (saying what
    went wrong, if anything did).
    """
    challenge_id, code = ctx.form.get("challenge_id"), ctx.form.get("code")
    resend = "resend" in ctx.form
    confirmation = None
    if isinstance(challenge_id, str) and challenge_id and not resend:
        confirmation = Confirmation(challenge_id, code.strip() if isinstance(code, str) else "")
    if confirmation is None and (wait := _send_wait(ctx, slot, resend=resend)):
        error = f"You can request a new code in {wait_text(wait)}."
        challenge = _last_challenge(ctx, slot)
        raise ShowPage(await _confirm_dialog(ctx, dialog, challenge, status=429, error=error))
    try:
        return await call(confirmation)
    except ConfirmationRequired as e:
        _remember_send(ctx, slot, e)
        view = challenge_view(e, now=ctx.now, policy=ctx.service.policy)
        raise ShowPage(await _confirm_dialog(ctx, dialog, view)) from None
    except (*CODE_REFUSALS, InvalidInput) as e:
        if isinstance(e, InvalidInput) and e.field != "code":
            raise
        problem = ctx.problem(e)
        challenge = _last_challenge(ctx, slot)
        if isinstance(e, CodeExpired | CodeAttemptsExhausted | ChallengeInvalid):
            challenge["expired"] = True
        page = await _confirm_dialog(
            ctx, dialog, challenge, status=problem.status, error=problem.message
        )
        raise ShowPage(page) from None
