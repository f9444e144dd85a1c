"""The portal's pages for an account's API keys: each step of the seed's flow.

The list, Create (confirmed by a code), the "Activate API Key" step that shows the secret once,
the two-factor pop-up, the success pop-up, Activate on an inactive key, Deactivate, Edit (with
its warning), Remove (with a code when the policy asks) and each key's history. Every change goes
through the async service; a refusal is shown in the dialog it came from, in the words of
:func:`keyturn.web.http_errors.http_error`.

The activation steps are in :mod:`keyturn.portal.activation`. No lifecycle rule is decided
here: the service decides, and the pages show its answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from keyturn import (
    InvalidInput,
    KeyNotFound,
    QuotaExceeded,
    State,
)
from keyturn.portal.confirm import confirmed
from keyturn.portal.forms import (
    LEVELS,
    RESOURCES,
    carried,
    form_id,
    key_fields,
    new_form_id,
    prefilled,
)
from keyturn.web.views import (
    edit_preview,
    history_view,
    issued_view,
)

if TYPE_CHECKING:
    from starlette.responses import Response

    from keyturn import ApiKey
    from keyturn.portal.web import Ctx


def _form_values(ctx: Ctx) -> dict[str, str]:
    return {k: v for k, v in ctx.form.items() if isinstance(v, str)}


# --- the list ---------------------------------------------------------------------------------


async def list_page(ctx: Ctx) -> Response:
    """The account's keys, with a pop-up for the last step's outcome if there is one."""
    return await ctx.page("keys.html")


# --- create and the secret, shown once ------------------------------------------------------


#: How many Creates the cookie remembers by their one-time form value (for a reload).
REMEMBERED_CREATES: Final = 8


async def _create_form(ctx: Ctx, *, status: int = 200, error: str | None = None) -> Response:
    values = _form_values(ctx) if ctx.form else prefilled(None)
    values["form_id"] = form_id(ctx.form) or new_form_id()
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


async def _created_already(ctx: Ctx, key_id: int) -> Response:
    """A Create sent again (a reload of the secret page): the key exists; no second one."""
    try:
        key = ctx.view(await ctx.service.get(key_id, owner=ctx.owner))
    except KeyNotFound:
        key = None
    return await ctx.page("created.html", created=key)


async def create(ctx: Ctx) -> Response:
    """Create the key (after its code, if the policy asks) and show its secret, this once.

    The form's one-time ``form_id`` is remembered with the key it made, so the same form sent
    again (a reload of the secret page) says the key exists instead of making a second one.
    """
    once = form_id(ctx.form)
    if once is None:
        error = "This form has expired. Check it and press Create again."
        return await _create_form(ctx, status=422, error=error)
    made = {f: k for f, k in ctx.session.get("created", []) if isinstance(k, int)}
    if once in made:
        return await _created_already(ctx, made[once])
    try:
        fields = key_fields(ctx.form)
        dialog = {
            "heading": "Confirm the new API key",
            "what": f"create API key {fields['name']!r}",
        }
        issued = await confirmed(
            ctx,
            dialog,
            lambda c: ctx.service.create(
                owner=ctx.owner,
                confirmation=c,
                name=fields["name"],
                max_scope=fields["max_scope"],
                ip_whitelist=fields["ip_whitelist"],
            ),
        )
    except (InvalidInput, QuotaExceeded) as e:
        problem = ctx.problem(e)
        return await _create_form(ctx, status=problem.status, error=problem.message)
    made[once] = issued.key.id
    ctx.session.set("created", [[f, k] for f, k in made.items()][-REMEMBERED_CREATES:])
    view = issued_view(issued, now=ctx.now, policy=ctx.service.policy)
    return await ctx.page("secret.html", issued=view)


# --- deactivate, edit, remove, history ------------------------------------------------------------


async def disable_page(ctx: Ctx) -> Response:
    """Deactivate: the key stops working at once; it can be activated again."""
    return await ctx.page("disable.html", key=ctx.view(await ctx.key()))


async def disable(ctx: Ctx) -> Response:
    """Deactivate now (with a code first, only if the policy asks)."""
    key = await ctx.key()
    dialog = {"heading": "Confirm deactivation", "what": f"deactivate API key {key.name!r}"}
    await confirmed(
        ctx,
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
        key=ctx.view(key),
        values=values,
        resources=RESOURCES,
        levels=LEVELS,
        may_deactivate=key.enabled and policy.edit_deactivates,
        error=error,
    )


async def edit_page(ctx: Ctx) -> Response:
    """Edit a key's name, permissions and IP whitelist."""
    return await _edit_form(ctx, await ctx.key())


async def edit(ctx: Ctx) -> Response:
    """Save an edit: warn first if it will deactivate the key, then confirm it by code."""
    key = await ctx.key()
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
        return await ctx.page("edit_warning.html", key=ctx.view(key), hidden=carried(ctx.form))
    dialog = {"heading": "Confirm the changes", "what": f"save the changes to API key {key.name!r}"}
    edited = await confirmed(
        ctx,
        dialog,
        lambda c: ctx.service.edit(
            key.id,
            owner=ctx.owner,
            confirmation=c,
            name=fields["name"],
            max_scope=fields["max_scope"],
            ip_whitelist=fields["ip_whitelist"],
        ),
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
    return await ctx.page("remove.html", key=ctx.view(await ctx.key()))


async def remove(ctx: Ctx) -> Response:
    """Remove for good (after its code, if the policy asks)."""
    key = await ctx.key()
    dialog = {"heading": "Confirm removal", "what": f"remove API key {key.name!r} for good"}
    await confirmed(
        ctx,
        dialog,
        lambda c: ctx.service.remove(key.id, owner=ctx.owner, confirmation=c),
    )
    ctx.notice("info", f"API key {key.name!r} was removed.")
    return ctx.redirect("/")


async def history_page(ctx: Ctx) -> Response:
    """A key's history (its access log), newest first."""
    key = await ctx.key()
    entries = [history_view(h) for h in await ctx.service.history(key.id, owner=ctx.owner)]
    return await ctx.page("history.html", key=ctx.view(key), entries=entries[::-1])


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
