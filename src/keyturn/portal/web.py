"""The portal's request plumbing: who is signed in, the cookie, CSRF, and rendering a page.

Every endpoint runs through :meth:`Portal.endpoint`: it loads the signed cookie, asks who the
account is (the host application's ``account_of``, or the reference sign-in), refuses a POST
whose CSRF token is wrong before anything else happens, turns any keyturn error the handler did
not handle into a page with the status :func:`keyturn.web.http_errors.http_error` gives. The
security headers and the body limits are :mod:`keyturn.portal.guard`'s, around the whole
application. No lifecycle rule lives here.
"""

from __future__ import annotations

import inspect
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlencode

import attrs
import jinja2
from starlette.datastructures import UploadFile
from starlette.responses import HTMLResponse, RedirectResponse, Response

from keyturn import CodeExpired, KeyturnError
from keyturn.portal.session import CSRF_FIELD, Session, Sessions
from keyturn.web.http_errors import http_error, wait_text
from keyturn.web.views import key_view

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from starlette.requests import Request

    from keyturn import ApiKey
    from keyturn.portal.mailbox import DevMailbox
    from keyturn.portal.signin import SignInCodes
    from keyturn.service import AsyncKeyService
    from keyturn.web.http_errors import HttpError

    AccountOf = Callable[[Request], str | Awaitable[str | None] | None]
    Handler = Callable[["Ctx"], Awaitable[Response]]

MAX_FIELDS: Final = 64


def local_path(value: str) -> bool:
    r"""Whether ``value`` is a path on this site (``/keys/1``), never another site's address.

    ``//host/x`` and ``/\host/x`` are read by browsers as another host; control characters
    and spaces have no place in a path.
    """
    return (
        value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and all(c.isprintable() and not c.isspace() for c in value)
    )


def _when(value: str | datetime) -> str:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{when:%Y-%m-%d %H:%M} UTC"


def environment() -> jinja2.Environment:
    """The templates, autoescaped, with the portal's filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _when
    env.filters["wait"] = wait_text
    env.filters["detail"] = _detail
    env.tests["spent"] = _spent
    return env


#: The fields of a key in a person's words, for a history line's detail.
FIELD_LABELS: Final = {
    "name": "name",
    "max_scope": "permissions",
    "ip_whitelist": "IP whitelist",
    "enabled_features": "features",
}


def _detail(detail: str) -> str:
    """A history line's detail as a person reads it; a detail of another kind as it is.

    ``fields=max_scope,ip_whitelist`` reads ``changed: permissions, IP whitelist``.
    """
    kind, _, fields = detail.partition("=")
    if kind != "fields" or not fields:
        return detail
    return "changed: " + ", ".join(FIELD_LABELS.get(f, f) for f in fields.split(","))


def _spent(code: Mapping[str, Any]) -> bool:
    """Whether a code can no longer be entered: expired, out of tries, or refused for good."""
    return bool(code.get("expired") or code.get("spent") or code.get("attempts_left") == 0)


class ShowPage(Exception):  # noqa: N818 (not an error: a page to show instead of the answer)
    """Raised by a step that must show a page (a code dialog) instead of going on."""

    def __init__(self, response: Response) -> None:
        super().__init__("show a page")
        self.response = response


@attrs.define(kw_only=True)
class Portal:
    """The portal's settings and services; its endpoints are built from it."""

    service: AsyncKeyService
    sessions: Sessions
    account_of: AccountOf | None = None
    sign_in: SignInCodes | None = None
    mailbox: DevMailbox | None = None
    login_url: str | None = None
    title: str = "API keys"
    env: jinja2.Environment = attrs.field(factory=environment)

    async def account(self, request: Request, session: Session) -> str | None:
        """The signed-in account: the host's answer, or the reference sign-in's session."""
        if self.account_of is None:
            who = session.get("account")
            return who if isinstance(who, str) else None
        answer = self.account_of(request)
        who = await answer if inspect.isawaitable(answer) else answer
        if session.get("who") != who:  # another account, or none: a new session, a new token
            session.clear()
            if who is not None:
                session.set("who", who)
        return who if isinstance(who, str) and who else None

    def endpoint(self, handler: Handler, *, public: bool = False) -> Callable[..., Any]:
        """A Starlette endpoint running ``handler`` with the portal's checks around it."""

        async def run(request: Request) -> Response:
            session = self.sessions.load(request)
            ctx = Ctx(portal=self, request=request, session=session)
            ctx.account = await self.account(request, session)
            response = await self._answer(ctx, handler, public=public)
            self.sessions.save(request, response, session)
            return response

        return run

    async def _answer(self, ctx: Ctx, handler: Handler, *, public: bool) -> Response:
        if ctx.request.method == "POST":
            form = await ctx.request.form(max_files=0, max_fields=MAX_FIELDS)
            ctx.form = {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
            if not ctx.session.csrf_ok(ctx.form.get(CSRF_FIELD)):
                text = "This form expired or came from another site. Reload the page and try again."
                return await ctx.page("message.html", status=403, heading="Not sent", text=text)
        if ctx.account is None and not public:
            return ctx.not_signed_in()
        try:
            return await handler(ctx)
        except ShowPage as shown:
            return shown.response
        except KeyturnError as e:
            problem = ctx.problem(e)
            return await ctx.page(
                "message.html", status=problem.status, heading="Not done", text=problem.message
            )


@attrs.define(kw_only=True)
class Ctx:
    """One request as a handler sees it."""

    portal: Portal
    request: Request
    session: Session
    account: str | None = None
    form: dict[str, Any] = attrs.field(factory=dict)

    @property
    def service(self) -> AsyncKeyService:
        """The service the portal runs on."""
        return self.portal.service

    @property
    def now(self) -> datetime:
        """The service's time (a test's manual clock, in tests)."""
        return self.service.clock.now()

    @property
    def owner(self) -> str:
        """The signed-in account (endpoints that are not public have one)."""
        if self.account is None:
            msg = "no account is signed in"
            raise RuntimeError(msg)
        return self.account

    @property
    def key_id(self) -> int:
        """The key the request's path names."""
        return int(self.request.path_params["key_id"])

    async def key(self) -> ApiKey:
        """The key the request's path names, if it is the account's (else KeyNotFound)."""
        return await self.service.get(self.key_id, owner=self.owner)

    def view(self, key: ApiKey) -> dict[str, Any]:
        """``key`` as the templates see it."""
        return key_view(key, now=self.now, policy=self.service.policy)

    def url(self, path: str = "/") -> str:
        """``path`` under the portal's mount point."""
        return (self.request.scope.get("root_path") or "").rstrip("/") + path

    def redirect(self, path: str = "/") -> Response:
        """See the page at ``path`` (after a POST: 303)."""
        return RedirectResponse(self.url(path), status_code=303)

    def notice(self, kind: str, message: str, **extra: object) -> None:
        """A message for the next page shown (a success pop-up, a warning)."""
        self.session.set("notice", {"kind": kind, "message": message, **extra})

    def problem(self, error: KeyturnError) -> HttpError:
        """How to tell the person about ``error`` now."""
        return http_error(error, now=self.now)

    def code_refusal(self, error: KeyturnError) -> tuple[int, str | None]:
        """The status and error line of a code dialog refusing ``error``.

        An expired code has no error line: the dialog's own note says it, once.
        """
        problem = self.problem(error)
        return problem.status, None if isinstance(error, CodeExpired) else problem.message

    def not_signed_in(self) -> Response:
        """Sign in first: the reference sign-in page, the host's login page, or 401."""
        if self.portal.sign_in is not None:
            return self.redirect("/signin")
        login_url = self.portal.login_url
        if login_url is not None:
            url = self.request.url
            back = url.path + (f"?{url.query}" if url.query else "")
            if self.request.method == "GET" and local_path(back):
                login_url += ("&" if "?" in login_url else "?") + urlencode({"next": back})
            return RedirectResponse(login_url, status_code=303)
        return HTMLResponse("Sign in first.", status_code=401)

    async def keys(self) -> list[dict[str, Any]]:
        """The account's live keys, as views."""
        if self.account is None:
            return []
        keys = await self.service.list_keys(owner=self.account)
        now, policy = self.now, self.service.policy
        return [key_view(k, now=now, policy=policy) for k in keys]

    async def page(self, template: str, *, status: int = 200, **values: Any) -> Response:  # noqa: ANN401
        """``template`` rendered over the account's list of keys."""
        notice = self.session.pop("notice") if template == "keys.html" else None
        context = {
            "root": self.url(""),
            "title": self.portal.title,
            "account": self.account,
            "csrf": self.session.csrf_token,
            "dev": self.portal.mailbox is not None,
            "reference_sign_in": self.portal.sign_in is not None,
            "sends_codes": self.portal.sign_in is None or self.portal.sign_in.can_send,
            "confirms": {a.value for a in self.service.policy.confirm},
            "keys": await self.keys(),
            "notice": notice,
            "error": None,
            **values,
        }
        body = self.portal.env.get_template(template).render(context)
        return HTMLResponse(body, status_code=status)
