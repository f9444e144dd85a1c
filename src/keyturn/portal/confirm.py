"""Confirming an action by a code: the dialog, and the repeated request that carries the code.

When the service raises :class:`~keyturn.ConfirmationRequired` (the policy confirms Create,
Edit or Remove), :func:`confirmed` shows the code dialog, carrying the form's fields so that
the repeated request is the very one the code was sent for. The service checks the code; this
module only keeps two of the seed's rules that the service does not keep for confirmation
codes, per browser session: a new code no sooner than ``resend_after`` after the last one, and
at most ``max_sends`` per ``send_window``. It decides no lifecycle rule.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from keyturn import (
    ChallengeInvalid,
    CodeAttemptsExhausted,
    CodeExpired,
    CodeMismatch,
    Confirmation,
    ConfirmationRequired,
    InvalidInput,
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


#: The most actions whose confirmation sends the cookie remembers (the oldest go first).
MAX_SLOTS: Final = 16
#: The longest ISO 8601 time a dialog carries (``2026-01-01T12:05:00.123456+00:00`` is 32).
MAX_TIME_TEXT: Final = 40


def _sent_times(ctx: Ctx, slot: str) -> list[datetime]:
    window = ctx.now - ctx.service.policy.send_window
    kept = ctx.session.get("sent", {}).get(slot, [])
    times = [datetime.fromtimestamp(t, UTC) for t in kept if isinstance(t, float)]
    return [t for t in times if t > window]


def _remember_send(ctx: Ctx, slot: str, required: ConfirmationRequired) -> None:
    """Add a send to ``slot``, and forget every send of every action that left the window.

    The cookie must stay small whatever the person does: an action's sends count only within
    ``send_window``, so older ones are dropped on each write, and at most :data:`MAX_SLOTS`
    actions are kept.
    """
    at = required.expires_at - ctx.service.policy.code_ttl
    slots = [s for s in ctx.session.get("sent", {}) if s != slot]
    sent = {s: kept for s in slots if (kept := _sent_times(ctx, s))}
    sent[slot] = [*_sent_times(ctx, slot), at]
    recent = sorted(sent, key=lambda s: sent[s][-1])[-MAX_SLOTS:]
    ctx.session.set("sent", {s: [t.timestamp() for t in sent[s]] for s in recent})


def _send_refusal(ctx: Ctx, slot: str, *, resend: bool) -> str | None:
    """Why no confirmation code may go out for ``slot`` now (``None``: it may).

    The send cap (``max_sends`` per ``send_window``) in the words of
    :class:`~keyturn.SendLimitReached`, else the wait of ``resend_after`` after the last code.
    """
    policy, times, now = ctx.service.policy, _sent_times(ctx, slot), ctx.now
    if len(times) >= policy.max_sends:
        capped = times[-policy.max_sends] + policy.send_window
        resend_at = times[-1] + policy.resend_after if resend else now
        if capped > now and capped >= resend_at:
            action = slot.split(":", 1)[0]
            return ctx.problem(
                SendLimitReached(key_id=None, state=None, action=action, available_at=capped)
            ).message
    if resend and times and (wait := seconds_until(times[-1] + policy.resend_after, now)):
        return f"You can request a new code in {wait_text(wait)}."
    return None


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


def _last_challenge(ctx: Ctx, slot: str) -> dict[str, Any]:
    """The dialog's code as it was shown: its challenge and times come back with the form."""
    policy = ctx.service.policy
    expires_at = _carried_expiry(ctx)
    if expires_at is None:  # a form from before the dialog carried it: the session's sends
        times = _sent_times(ctx, slot)
        expires_at = (times[-1] if times else ctx.now - policy.code_ttl) + policy.code_ttl
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
    if confirmation is None and (error := _send_refusal(ctx, slot, resend=resend)):
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
        status, error = ctx.code_refusal(e)
        challenge = _last_challenge(ctx, slot)
        if isinstance(e, CodeExpired):
            challenge["expired"] = True
        elif isinstance(e, CodeAttemptsExhausted | ChallengeInvalid):
            challenge["spent"] = True
        page = await _confirm_dialog(ctx, dialog, challenge, status=status, error=error)
        raise ShowPage(page) from None
