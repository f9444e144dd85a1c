"""The portal's pages for an account's API keys: each step of the seed's flow.

The list, Create (confirmed by a code), the "Activate API Key" step that shows the secret once,
the two-factor pop-up, the success pop-up, Activate on an inactive key, Deactivate, Edit (with
its warning), Remove (with a code when the policy asks) and each key's history. Every change goes
through the async service; a refusal is shown in the dialog it came from, in the words of
:func:`keyturn.http_errors.http_error`.

Two rules of the seed that the service does not keep are kept here, per browser session:
"Resend" opens ``resend_after`` after the last code even when the dialog was closed and opened
again (the key's ``sends`` say when that was), and confirmation codes are resent no sooner than
that and no more than ``max_sends`` per ``send_window``.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from keyturn import (
    ActionNotAllowed,
    ActivationLocked,
    ChallengeInvalid,
    CodeAttemptsExhausted,
    CodeExpired,
    CodeMismatch,
    Confirmation,
    ConfirmationRequired,
    InvalidInput,
    QuotaExceeded,
    ResendTooEarly,
    SendLimitReached,
    State,
)
from keyturn.http_errors import wait_text
from keyturn.portal.forms import LEVELS, RESOURCES, carried, key_fields, prefilled
from keyturn.portal.web import ShowPage
from keyturn.views import (
    challenge_view,
    edit_preview,
    history_view,
    issued_view,
    key_view,
    next_send_at,
    seconds_until,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.responses import Response

    from keyturn import ApiKey
    from keyturn.portal.web import Ctx

T = TypeVar("T")

_CODE_REFUSALS = (CodeMismatch, CodeExpired, CodeAttemptsExhausted, ChallengeInvalid)
_SEND_REFUSALS = (ResendTooEarly, SendLimitReached, ActivationLocked)


def _key_id(ctx: Ctx) -> int:
    return int(ctx.request.path_params["key_id"])


async def _key(ctx: Ctx) -> ApiKey:
    return await ctx.service.get(_key_id(ctx), owner=ctx.owner)


def _view(ctx: Ctx, key: ApiKey) -> dict[str, Any]:
    return key_view(key, now=ctx.now, policy=ctx.service.policy)


def _form_values(ctx: Ctx) -> dict[str, str]:
    return {k: v for k, v in ctx.form.items() if isinstance(v, str)}


# --- the list ---------------------------------------------------------------------------------


async def list_page(ctx: Ctx) -> Response:
    """The account's keys, with a pop-up for the last step's outcome if there is one."""
    return await ctx.page("keys.html")


# --- confirmation by code ------------------------------------------------------------------------


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


async def _confirmed(
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
    except (*_CODE_REFUSALS, InvalidInput) as e:
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


# --- create and the secret, shown once ------------------------------------------------------


async def _create_form(ctx: Ctx, *, status: int = 200, error: str | None = None) -> Response:
    values = _form_values(ctx) if ctx.form else prefilled(None)
    return await ctx.page(
        "create.html",
        status=status,
        values=values,
        resources=RESOURCES,
        levels=LEVELS,
        error=error,
    )


async def new_page(ctx: Ctx) -> Response:
    """The Create dialog."""
    return await _create_form(ctx)


async def create(ctx: Ctx) -> Response:
    """Create the key (after its code, if the policy asks) and show its secret, this once."""
    try:
        fields = key_fields(ctx.form)
        dialog = {
            "heading": "Confirm the new API key",
            "what": f"create API key {fields['name']!r}",
        }
        issued = await _confirmed(
            ctx,
            "create",
            dialog,
            lambda c: ctx.service.create(owner=ctx.owner, confirmation=c, **fields),
        )
    except (InvalidInput, QuotaExceeded) as e:
        problem = ctx.problem(e)
        return await _create_form(ctx, status=problem.status, error=problem.message)
    view = issued_view(issued, now=ctx.now, policy=ctx.service.policy)
    return await ctx.page("secret.html", issued=view)


async def saved(ctx: Ctx) -> Response:
    """I have saved the API secret: ACTIVATE sends a code, ACTIVATE LATER leaves it inactive."""
    key_id = _key_id(ctx)
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


# --- activation ----------------------------------------------------------------------------------


def _activation_wait(ctx: Ctx, key: ApiKey) -> int:
    """Seconds before a code may be sent for ``key``.

    The service's limits, and the seed's wait of ``resend_after`` after the last code even if
    its dialog was closed meanwhile (the service lets a new request send at once).
    """
    policy = ctx.service.policy
    at = next_send_at(key, now=ctx.now, policy=policy)
    if key.sends:
        at = max(at, key.sends[-1] + policy.resend_after)
    return seconds_until(at, ctx.now)


async def _activate_dialog(
    ctx: Ctx, key: ApiKey, *, status: int = 200, error: str | None = None
) -> Response:
    return await ctx.page(
        "activate.html",
        status=status,
        key=_view(ctx, key),
        wait=_activation_wait(ctx, key),
        needs_saved=key.state is State.CREATED,
        locked=key.consecutive_failures >= ctx.service.policy.max_consecutive_failures,
        error=error,
    )


async def _send_activation(ctx: Ctx, key: ApiKey) -> Response:
    if wait := _activation_wait(ctx, key):
        error = f"A new code can be sent in {wait_text(wait)}."
        return await _activate_dialog(ctx, key, status=429, error=error)
    try:
        await ctx.service.request_activation(key.id, owner=ctx.owner)
    except (*_SEND_REFUSALS, ActionNotAllowed) as e:
        problem = ctx.problem(e)
        fresh = await ctx.service.get(key.id, owner=ctx.owner)
        return await _activate_dialog(ctx, fresh, status=problem.status, error=problem.message)
    return ctx.redirect(f"/keys/{key.id}/verify")


async def activate_page(ctx: Ctx) -> Response:
    """The Activate pop-up of an inactive key: its details, Activate and Activate Later."""
    key = await _key(ctx)
    if key.state is State.PENDING_2FA:  # a code is out already: enter it
        return ctx.redirect(f"/keys/{key.id}/verify")
    if key.state is State.ACTIVE:
        return ctx.redirect("/")
    return await _activate_dialog(ctx, key)


async def activate(ctx: Ctx) -> Response:
    """Activate: send a code (after "I saved the secret" for a key never acknowledged)."""
    key = await _key(ctx)
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
    view = _view(ctx, key)
    sent = ctx.session.pop("code_sent") == key.id
    return await ctx.page(
        "verify.html", status=status, key=view, code=view["code"], sent=sent, error=error
    )


async def verify_page(ctx: Ctx) -> Response:
    """The two-factor pop-up: enter the code sent by email."""
    key = await _key(ctx)
    if key.state is not State.PENDING_2FA:
        return ctx.redirect("/")
    return await _verify_dialog(ctx, key)


async def verify(ctx: Ctx) -> Response:
    """Check the code: the success pop-up, or the dialog again saying what went wrong."""
    key_id = _key_id(ctx)
    code = ctx.form.get("code")
    try:
        key = await ctx.service.verify_code(
            key_id, code.strip() if isinstance(code, str) else code, owner=ctx.owner
        )
    except (*_CODE_REFUSALS, ActivationLocked, InvalidInput) as e:
        problem = ctx.problem(e)
        key = await _key(ctx)
        if key.state is not State.PENDING_2FA:
            return ctx.redirect("/")
        return await _verify_dialog(ctx, key, status=problem.status, error=problem.message)
    except ActionNotAllowed:
        return ctx.redirect("/")
    ctx.notice("activated", f"API key {key.name!r} is activated.", key_id=key.id)
    return ctx.redirect("/")


async def resend(ctx: Ctx) -> Response:
    """Resend: a new code replaces the last one, from two minutes after it was sent."""
    key_id = _key_id(ctx)
    try:
        await ctx.service.resend_code(key_id, owner=ctx.owner)
    except _SEND_REFUSALS as e:
        problem = ctx.problem(e)
        return await _verify_dialog(
            ctx, await _key(ctx), status=problem.status, error=problem.message
        )
    except ActionNotAllowed:
        return ctx.redirect("/")
    ctx.session.set("code_sent", key_id)
    return ctx.redirect(f"/keys/{key_id}/verify")


async def cancel(ctx: Ctx) -> Response:
    """Closing the two-factor pop-up is ACTIVATE LATER: the key goes back to where it was."""
    with contextlib.suppress(ActionNotAllowed):  # not waiting for a code: nothing to cancel
        await ctx.service.cancel_activation(_key_id(ctx), owner=ctx.owner)
    return ctx.redirect("/")


# --- deactivate, edit, remove, history ------------------------------------------------------------


async def disable_page(ctx: Ctx) -> Response:
    """Deactivate: the key stops working at once; it can be activated again."""
    return await ctx.page("disable.html", key=_view(ctx, await _key(ctx)))


async def disable(ctx: Ctx) -> Response:
    """Deactivate now (with a code first, only if the policy asks)."""
    key = await _key(ctx)
    dialog = {"heading": "Confirm deactivation", "what": f"deactivate API key {key.name!r}"}
    await _confirmed(
        ctx,
        f"disable:{key.id}",
        dialog,
        lambda c: ctx.service.disable(key.id, owner=ctx.owner, confirmation=c),
    )
    ctx.notice("info", f"API key {key.name!r} was deactivated.")
    return ctx.redirect("/")


async def _edit_form(
    ctx: Ctx, key: ApiKey, *, status: int = 200, error: str | None = None
) -> Response:
    values = _form_values(ctx) if ctx.form else prefilled(key)
    policy = ctx.service.policy
    return await ctx.page(
        "edit.html",
        status=status,
        key=_view(ctx, key),
        values=values,
        resources=RESOURCES,
        levels=LEVELS,
        may_deactivate=key.enabled and policy.edit_deactivates,
        error=error,
    )


async def edit_page(ctx: Ctx) -> Response:
    """Edit a key's name, permissions and IP whitelist."""
    return await _edit_form(ctx, await _key(ctx))


async def edit(ctx: Ctx) -> Response:
    """Save an edit: warn first if it will deactivate the key, then confirm it by code."""
    key = await _key(ctx)
    try:
        fields = key_fields(ctx.form)
        preview = edit_preview(key, now=ctx.now, policy=ctx.service.policy, **fields)
    except InvalidInput as e:
        problem = ctx.problem(e)
        return await _edit_form(ctx, key, status=problem.status, error=problem.message)
    if not preview["changes"]:
        ctx.notice("info", f"Nothing to save: API key {key.name!r} is unchanged.")
        return ctx.redirect("/")
    if preview["deactivates"] and ctx.form.get("accept_deactivate") != "yes":
        return await ctx.page("edit_warning.html", key=_view(ctx, key), hidden=carried(ctx.form))
    dialog = {"heading": "Confirm the changes", "what": f"save the changes to API key {key.name!r}"}
    edited = await _confirmed(
        ctx,
        f"edit:{key.id}",
        dialog,
        lambda c: ctx.service.edit(key.id, owner=ctx.owner, confirmation=c, **fields),
    )
    if edited.state is State.DISABLED and key.enabled:
        ctx.notice(
            "warning",
            f"The changes to API key {key.name!r} were saved and the key was deactivated. "
            "Activate it again to use it.",
        )
    else:
        ctx.notice("info", f"The changes to API key {key.name!r} were saved.")
    return ctx.redirect("/")


async def remove_page(ctx: Ctx) -> Response:
    """Remove: permanent; a code confirms it when the policy says so."""
    return await ctx.page("remove.html", key=_view(ctx, await _key(ctx)))


async def remove(ctx: Ctx) -> Response:
    """Remove for good (after its code, if the policy asks)."""
    key = await _key(ctx)
    dialog = {"heading": "Confirm removal", "what": f"remove API key {key.name!r} for good"}
    await _confirmed(
        ctx,
        f"remove:{key.id}",
        dialog,
        lambda c: ctx.service.remove(key.id, owner=ctx.owner, confirmation=c),
    )
    ctx.notice("info", f"API key {key.name!r} was removed.")
    return ctx.redirect("/")


async def history_page(ctx: Ctx) -> Response:
    """A key's history (its access log), newest first."""
    key = await _key(ctx)
    entries = [history_view(h) for h in await ctx.service.history(key.id, owner=ctx.owner)]
    return await ctx.page("history.html", key=_view(ctx, key), entries=entries[::-1])


async def mailbox_page(ctx: Ctx) -> Response:
    """The development mailbox (``--dev`` only): every message the notifier sent."""
    mailbox = ctx.portal.mailbox
    if mailbox is None:
        return await ctx.page("message.html", status=404, heading="Not found", text="No such page.")
    messages = [
        {
            "to": m.owner,
            "subject": m.subject,
            "code": m.code,
            "at": m.created_at,
            "expires_at": m.expires_at,
        }
        for m in mailbox.messages
    ]
    return await ctx.page("mailbox.html", messages=messages)
