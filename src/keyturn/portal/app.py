"""Building the portal, and the site ``keyturn serve`` runs: the API beside the portal.

:func:`build_portal` makes the portal's Starlette application over an
:class:`~keyturn.service.AsyncKeyService`. Mounted by a host application under a prefix, it takes
``account_of``: a function (sync or async) naming the signed-in account of a request, or
``None``; the host's own login guards it. Without ``account_of`` it brings its reference
sign-in (an email address and a code sent to it). :func:`build_site` puts the Deribit API and
the portal on one ASGI application. This module only wires: it answers no request itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from keyturn import Action, InvalidInput, Policy
from keyturn.adapters.codes import HmacCodeVerifier
from keyturn.portal import activation, keys, signin
from keyturn.portal.guard import BODY_TIMEOUT, Guard
from keyturn.portal.session import Sessions
from keyturn.portal.signin import SignInCodes
from keyturn.portal.web import Portal
from keyturn.wiring import derive

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

    from keyturn.portal.mailbox import DevMailbox
    from keyturn.portal.web import AccountOf
    from keyturn.ports import AsyncNotifier
    from keyturn.service import AsyncKeyService

#: The seed's rules: creating, editing and removing a key are confirmed by a code sent to the
#: owner; deactivating is immediate; activating always goes through a code.
PORTAL_POLICY: Final = Policy(confirm={Action.CREATE, Action.EDIT, Action.REMOVE})
MIN_KEY_BYTES: Final = 32


def build_portal(
    *,
    service: AsyncKeyService,
    secret_key: bytes,
    account_of: AccountOf | None = None,
    login_url: str | None = None,
    mailbox: DevMailbox | None = None,
    sign_in_notifier: AsyncNotifier | None = None,
    title: str = "API keys",
    body_timeout: float = BODY_TIMEOUT,
    sends_codes: bool = True,
) -> ASGIApp:
    """The portal as an ASGI application over ``service``.

    ``secret_key`` (at least 32 random bytes, e.g. ``wiring.derive(server_key, "portal")``)
    signs the portal's cookie. ``account_of(request)`` names the signed-in account, or
    ``None`` (then ``login_url``, if given, is where the person is sent). Without it the
    reference sign-in runs, sending codes through ``sign_in_notifier`` (default: the
    service's notifier) at once; ``sends_codes=False`` says that no notifier reaches people
    (``keyturn serve`` without one), and the sign-in page then says that codes cannot be sent
    instead of offering a sign-in nobody can finish. ``mailbox`` shows what was sent at
    ``/dev/mailbox``: development only.
    Run the service under :data:`PORTAL_POLICY` (or your own) for the seed's confirmations.
    Every answer carries the portal's security headers, and a request body is refused past
    64 KiB (413) or ``body_timeout`` seconds (408): :class:`~keyturn.portal.guard.Guard`.
    """
    if not isinstance(secret_key, bytes) or len(secret_key) < MIN_KEY_BYTES:
        raise InvalidInput("secret_key", f"must be at least {MIN_KEY_BYTES} random bytes")
    sign_in = None
    if account_of is None:
        sign_in = SignInCodes(
            verifier=HmacCodeVerifier(derive(secret_key, "portal/sign-in")),
            notifier=sign_in_notifier if sign_in_notifier is not None else service.notifier,
            clock=service.clock,
            policy=service.policy,
            logger=service.logger,
            can_send=sends_codes,
        )
    portal = Portal(
        service=service,
        sessions=Sessions(derive(secret_key, "portal/session")),
        account_of=account_of,
        sign_in=sign_in,
        mailbox=mailbox,
        login_url=login_url,
        title=title,
    )
    page, post = portal.endpoint, ["POST"]
    routes: list[Route | Mount] = [
        Route("/", page(keys.list_page)),
        Route("/new", page(keys.new_page)),
        Route("/new", page(keys.create), methods=post),
        Route("/keys/{key_id:int}/saved", page(activation.saved), methods=post),
        Route("/keys/{key_id:int}/activate", page(activation.activate_page)),
        Route("/keys/{key_id:int}/activate", page(activation.activate), methods=post),
        Route("/keys/{key_id:int}/verify", page(activation.verify_page)),
        Route("/keys/{key_id:int}/verify", page(activation.verify), methods=post),
        Route("/keys/{key_id:int}/resend", page(activation.resend), methods=post),
        Route("/keys/{key_id:int}/cancel", page(activation.cancel), methods=post),
        Route("/keys/{key_id:int}/disable", page(keys.disable_page)),
        Route("/keys/{key_id:int}/disable", page(keys.disable), methods=post),
        Route("/keys/{key_id:int}/edit", page(keys.edit_page)),
        Route("/keys/{key_id:int}/edit", page(keys.edit), methods=post),
        Route("/keys/{key_id:int}/remove", page(keys.remove_page)),
        Route("/keys/{key_id:int}/remove", page(keys.remove), methods=post),
        Route("/keys/{key_id:int}/history", page(keys.history_page)),
        Route("/dev/mailbox", page(keys.mailbox_page, public=True)),
        Route("/signout", page(signin.signout, public=True), methods=post),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static")),
    ]
    if sign_in is not None:
        routes += [
            Route("/signin", page(signin.signin_page, public=True)),
            Route("/signin", page(signin.signin_start, public=True), methods=post),
            Route("/signin/code", page(signin.signin_finish, public=True), methods=post),
            Route("/signin/restart", page(signin.signin_restart, public=True), methods=post),
        ]
    return Guard(Starlette(routes=routes), body_timeout=body_timeout)


def build_site(
    *, api: Callable[..., Awaitable[None]], portal: ASGIApp, prefix: str = "/portal"
) -> ASGIApp:
    """One ASGI application: the API at ``/api`` and ``/ws``, the portal at ``prefix``.

    ``/`` leads to the portal. The API sees its requests unchanged (full paths), so it is the
    same application ``keyturn serve`` ran before the portal existed.
    """

    async def home(_: Request) -> RedirectResponse:
        return RedirectResponse(prefix + "/", status_code=307)

    site = Starlette(routes=[Route("/", home), Mount(prefix, app=portal)])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        to_api = path == "/api" or path.startswith(("/api/", "/ws/"))
        if scope["type"] in ("http", "websocket") and to_api:
            await api(scope, receive, send)
        else:
            await site(scope, receive, send)

    return app
