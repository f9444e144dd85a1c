"""The activation steps: the secret's checkbox, the Activate pop-up, the two-factor pop-up.

"I have saved the API secret" with ACTIVATE or ACTIVATE LATER; Activate on an inactive key (its
details, and the checkbox again for a key never acknowledged); the code dialog with its
countdowns, Resend and the success pop-up; closing it is ACTIVATE LATER (``cancel_activation``).
Every rule is the service's (ACTIVATE before the resend wait is over reopens the dialog on the
code already sent; a new code waits for the resend wait and the send cap); these pages show its
answers.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from keyturn import (
    ActionNotAllowed,
    ActivationLocked,
    InvalidInput,
    ResendTooEarly,
    SendLimitReached,
    State,
)
from keyturn.portal.confirm import CODE_REFUSALS
from keyturn.web.views import activation_wait

if TYPE_CHECKING:
    from starlette.responses import Response

    from keyturn import ApiKey
    from keyturn.portal.web import Ctx

_SEND_REFUSALS = (ResendTooEarly, SendLimitReached, ActivationLocked)


async def saved(ctx: Ctx) -> Response:
    """I have saved the API secret: ACTIVATE sends a code, ACTIVATE LATER leaves it inactive."""
    key_id = ctx.key_id
    if ctx.form.get("saved") != "on":
        ctx.notice("warning", "The key was not activated: confirm that you saved the secret.")
        return ctx.redirect("/")
    key = await ctx.service.acknowledge_secret(key_id, owner=ctx.owner)
    if ctx.form.get("do") == "activate":
        return await _send_activation(ctx, key)
    ctx.notice(
        "info", f"API key {key.name!r} was created and is not active. Activate it when ready."
    )
    return ctx.redirect("/")


async def _activate_dialog(
    ctx: Ctx, key: ApiKey, *, status: int = 200, error: str | None = None
) -> Response:
    return await ctx.page(
        "activate.html",
        status=status,
        key=ctx.view(key),
        wait=activation_wait(key, now=ctx.now, policy=ctx.service.policy),
        needs_saved=key.state is State.CREATED,
        locked=key.consecutive_failures >= ctx.service.policy.max_consecutive_failures,
        error=error,
    )


async def _send_activation(ctx: Ctx, key: ApiKey) -> Response:
    """ACTIVATE: the service reopens the dialog on a live code, sends a new one, or says why not."""
    try:
        await ctx.service.request_activation(key.id, owner=ctx.owner)
    except (*_SEND_REFUSALS, ActionNotAllowed) as e:
        problem = ctx.problem(e)
        fresh = await ctx.service.get(key.id, owner=ctx.owner)
        return await _activate_dialog(ctx, fresh, status=problem.status, error=problem.message)
    return ctx.redirect(f"/keys/{key.id}/verify")


async def activate_page(ctx: Ctx) -> Response:
    """The Activate pop-up of an inactive key: its details, Activate and Activate Later."""
    key = await ctx.key()
    if key.state is State.PENDING_2FA:  # a code is out already: enter it
        return ctx.redirect(f"/keys/{key.id}/verify")
    if key.state is State.ACTIVE:
        return ctx.redirect("/")
    return await _activate_dialog(ctx, key)


async def activate(ctx: Ctx) -> Response:
    """Activate: send a code (after "I saved the secret" for a key never acknowledged)."""
    key = await ctx.key()
    if key.state is State.PENDING_2FA:
        return ctx.redirect(f"/keys/{key.id}/verify")
    if key.state is State.CREATED:
        if ctx.form.get("saved") != "on":
            error = "Tick “I have saved the API secret” first."
            return await _activate_dialog(ctx, key, status=422, error=error)
        key = await ctx.service.acknowledge_secret(key.id, owner=ctx.owner)
    return await _send_activation(ctx, key)


async def _verify_dialog(
    ctx: Ctx, key: ApiKey, *, status: int = 200, error: str | None = None
) -> Response:
    view = ctx.view(key)
    sent = ctx.session.pop("code_sent") == key.id
    return await ctx.page(
        "verify.html", status=status, key=view, code=view["code"], sent=sent, error=error
    )


async def verify_page(ctx: Ctx) -> Response:
    """The two-factor pop-up: enter the code sent by email."""
    key = await ctx.key()
    if key.state is not State.PENDING_2FA:
        return ctx.redirect("/")
    return await _verify_dialog(ctx, key)


async def verify(ctx: Ctx) -> Response:
    """Check the code: the success pop-up, or the dialog again saying what went wrong."""
    key_id = ctx.key_id
    code = ctx.form.get("code")
    try:
        key = await ctx.service.verify_code(
            key_id, code.strip() if isinstance(code, str) else code, owner=ctx.owner
        )
    except (*CODE_REFUSALS, ActivationLocked, InvalidInput) as e:
        status, error = ctx.code_refusal(e)
        key = await ctx.key()
        if key.state is not State.PENDING_2FA:
            return ctx.redirect("/")
        return await _verify_dialog(ctx, key, status=status, error=error)
    except ActionNotAllowed:
        return ctx.redirect("/")
    ctx.notice("activated", f"API key {key.name!r} is activated.", key_id=key.id)
    return ctx.redirect("/")


async def resend(ctx: Ctx) -> Response:
    """Resend: a new code replaces the last one, from two minutes after it was sent."""
    key_id = ctx.key_id
    try:
        await ctx.service.resend_code(key_id, owner=ctx.owner)
    except _SEND_REFUSALS as e:
        problem = ctx.problem(e)
        return await _verify_dialog(
            ctx, await ctx.key(), status=problem.status, error=problem.message
        )
    except ActionNotAllowed:
        return ctx.redirect("/")
    ctx.session.set("code_sent", key_id)
    return ctx.redirect(f"/keys/{key_id}/verify")


async def cancel(ctx: Ctx) -> Response:
    """Closing the two-factor pop-up is ACTIVATE LATER: the key goes back to where it was."""
    with contextlib.suppress(ActionNotAllowed):  # not waiting for a code: nothing to cancel
        await ctx.service.cancel_activation(ctx.key_id, owner=ctx.owner)
    return ctx.redirect("/")
