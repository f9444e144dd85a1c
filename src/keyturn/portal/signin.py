"""The reference portal's sign-in: an email address, and a one-time code sent to it.

One piece: the sign-in's rules, the codes it holds and its two pages' handlers are one flow that
nothing else uses.

The account is the email address (lower-cased). A code is made by
:class:`~keyturn.adapters.codes.HmacCodeVerifier` and delivered as a
:class:`~keyturn.Notification` through the portal's notifier (the development mailbox, or
email), at once: a sign-in code does not wait in the outbox, so without a notifier that
reaches people there is no sign-in, and the page says so. The rules are the key's: valid
``code_ttl``, a new one after ``resend_after``, at most ``max_sends`` per ``send_window`` and
``max_attempts`` wrong tries per code; and one client address may have codes sent to at most
``max_addresses_per_client`` addresses per ``send_window``. Only the code's keyed hash is kept,
in this process's memory (bounded; expired entries go first): the reference sign-in is for one
server process. An application with its own login passes ``account_of`` to the portal
instead, and none of this runs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

import attrs

from keyturn import (
    CodeAttemptsExhausted,
    CodeExpired,
    CodeMismatch,
    InvalidInput,
    KeyturnError,
    Notification,
    NotificationKind,
    SendLimitReached,
)
from keyturn.web.views import seconds_until

if TYPE_CHECKING:
    from datetime import datetime

    from starlette.responses import Response

    from keyturn import Policy
    from keyturn.adapters.codes import HmacCodeVerifier
    from keyturn.portal.web import Ctx
    from keyturn.ports import AsyncNotifier, Clock

#: An ASCII address (internationalised ones are out of the reference sign-in's scope).
EMAIL: Final = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}",
    re.ASCII,
)
ACTION: Final = "sign_in"


def email_address(value: object) -> str:
    """An email address to sign in with, lower-cased; InvalidInput if it is not one."""
    if not isinstance(value, str) or len(value) > 128 or not EMAIL.fullmatch(value.strip()):  # noqa: PLR2004
        raise InvalidInput("email", "must be an email address like name@example.com")
    return value.strip().lower()


class CodeNotSent(KeyturnError):  # noqa: N818 (reads as the event it reports)
    """A sign-in code could not be sent: no notifier reaches people, or it failed (``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the sign-in code could not be sent: {reason}", action=ACTION)
        self.reason = reason


@attrs.define
class _Pending:
    ref: str = attrs.field(repr=False)
    sent_at: datetime
    attempts: int = 0


@attrs.define(kw_only=True)
class SignInCodes:
    """Sends sign-in codes and checks them, under the service's policy.

    ``can_send`` is ``False`` when no notifier reaches people (``keyturn serve`` without one):
    then nothing is sent and the pages say so.
    """

    verifier: HmacCodeVerifier
    notifier: AsyncNotifier
    clock: Clock
    policy: Policy
    logger: Any
    can_send: bool = True
    max_pending: int = 10_000
    max_addresses_per_client: int = 5
    _pending: dict[str, _Pending] = attrs.field(factory=dict, repr=False)
    _sends: dict[str, list[datetime]] = attrs.field(factory=dict, repr=False)
    _clients: dict[str, dict[str, datetime]] = attrs.field(factory=dict, repr=False)

    def timing(self, email: str) -> dict[str, Any] | None:
        """The pending code's times for the dialog, or ``None`` if none was sent."""
        pending = self._pending.get(email)
        if pending is None:
            return None
        now, policy = self.clock.now(), self.policy
        expires_at = pending.sent_at + policy.code_ttl
        return {
            "expires_in": seconds_until(expires_at, now, round_up=False),
            "expired": now >= expires_at,
            "resend_in": seconds_until(pending.sent_at + policy.resend_after, now),
            "attempts_left": max(0, policy.max_attempts - pending.attempts),
        }

    async def send(self, email: str, *, client: str | None, resend: bool = False) -> bool:
        """Send a code to ``email``; ``False`` if the last one is too recent to replace.

        ``client`` is the address of the client asking. A first request while a code is still
        young keeps that code (a reload sends nothing). Raises
        :class:`~keyturn.SendLimitReached` past ``max_sends`` in ``send_window`` for the
        address, or past ``max_addresses_per_client`` addresses for the client, and
        :class:`CodeNotSent` when the notifier cannot deliver (the code is then forgotten).
        """
        if not self.can_send:
            raise CodeNotSent("no notifier is configured")
        now, policy = self.clock.now(), self.policy
        pending = self._pending.get(email)
        if pending is not None and now < pending.sent_at + policy.resend_after:
            return not resend
        sends = [t for t in self._sends.get(email, []) if t > now - policy.send_window]
        if len(sends) >= policy.max_sends:
            at = sends[-policy.max_sends] + policy.send_window
            raise SendLimitReached(key_id=None, state=None, action=ACTION, available_at=at)
        addresses = self._addresses_of(client or "", email, now)
        self._forget_expired(now)
        issued = self.verifier.issue(subject=f"sign-in:{email}", owner=email)
        self._pending[email] = _Pending(issued.ref, now)
        self._sends[email] = [*sends, now]
        addresses[email] = now
        try:
            await self.notifier.deliver(
                Notification(
                    id=f"sign-in:{issued.ref[:16]}",
                    owner=email,
                    key_id=None,
                    key_name="",
                    kind=NotificationKind.CODE,
                    subject="Your sign-in code",
                    created_at=now,
                    code=issued.code,
                    expires_at=now + policy.code_ttl,
                )
            )
        except Exception as e:  # noqa: BLE001 (whatever the notifier raised, nothing went out)
            del self._pending[email]
            self.logger.warning("sign_in_code_not_sent", owner=email, error=type(e).__name__)
            raise CodeNotSent(type(e).__name__) from None
        return True

    def _addresses_of(self, client: str, email: str, now: datetime) -> dict[str, datetime]:
        """The addresses ``client`` had codes sent to within the window.

        A new one past ``max_addresses_per_client`` is refused (:class:`~keyturn.SendLimitReached`).
        """
        window = now - self.policy.send_window
        recent = {e: t for e, t in self._clients.pop(client, {}).items() if t > window}
        self._clients[client] = recent  # the most recent client last: the first to keep
        if email not in recent and len(recent) >= self.max_addresses_per_client:
            at = sorted(recent.values())[-self.max_addresses_per_client] + self.policy.send_window
            raise SendLimitReached(key_id=None, state=None, action=ACTION, available_at=at)
        while len(self._clients) > self.max_pending:
            del self._clients[next(iter(self._clients))]
        return recent

    def check(self, email: str, code: object) -> None:
        """Pass if ``code`` is the live code sent to ``email``; it is then used up.

        Raises :class:`~keyturn.CodeMismatch` (counted), :class:`~keyturn.CodeExpired` or
        :class:`~keyturn.CodeAttemptsExhausted`.
        """
        if not isinstance(code, str) or not self.verifier.is_well_formed(code.strip()):
            raise InvalidInput("code", "must be the 6 digits we sent you")
        now, policy = self.clock.now(), self.policy
        pending = self._pending.get(email)
        if pending is None or pending.attempts >= policy.max_attempts:
            raise CodeAttemptsExhausted(key_id=None, state=None, action=ACTION)
        if now >= pending.sent_at + policy.code_ttl:
            raise CodeExpired(
                key_id=None, state=None, action=ACTION, expired_at=pending.sent_at + policy.code_ttl
            )
        subject = f"sign-in:{email}"
        if not self.verifier.check(subject=subject, ref=pending.ref, candidate=code.strip()):
            pending.attempts += 1
            left = max(0, policy.max_attempts - pending.attempts)
            raise CodeMismatch(key_id=None, state=None, action=ACTION, attempts_left=left)
        del self._pending[email]

    def _forget_expired(self, now: datetime) -> None:
        if len(self._pending) < self.max_pending:
            return
        for email, pending in list(self._pending.items()):
            if now >= pending.sent_at + self.policy.code_ttl:
                del self._pending[email]
        while len(self._pending) >= self.max_pending:
            del self._pending[next(iter(self._pending))]


# --- the pages -------------------------------------------------------------------------------


def _codes(ctx: Ctx) -> SignInCodes:
    codes = ctx.portal.sign_in
    if codes is None:
        msg = "the reference sign-in is off: the host application signs people in"
        raise RuntimeError(msg)
    return codes


#: What the sign-in says when no notifier reaches people.
NO_NOTIFIER: Final = (
    "Sign-in codes cannot be sent: this server has no way to send email. "
    "Its operator must start it with a notifier (keyturn serve --notifier smtp)."
)
NOT_SENT: Final = "We could not send the code: email is not working right now. Try again later."


async def _not_sent(ctx: Ctx) -> Response:
    text = NOT_SENT if _codes(ctx).can_send else NO_NOTIFIER
    return await ctx.page("signin.html", status=503, error=text)


async def signin_page(ctx: Ctx) -> Response:
    """The email form, or the code dialog if a code was sent to this browser's address."""
    if ctx.account is not None:
        return ctx.redirect("/")
    if not _codes(ctx).can_send:
        return await ctx.page("signin.html", error=NO_NOTIFIER)
    email = ctx.session.get("signin_email")
    timing = _codes(ctx).timing(email) if isinstance(email, str) else None
    if timing is None:
        return await ctx.page("signin.html")
    return await ctx.page("signin_code.html", email=email, code=timing)


async def signin_start(ctx: Ctx) -> Response:
    """Send a code to the address given (or again, for "Resend")."""
    codes = _codes(ctx)
    resend = "resend" in ctx.form
    client = ctx.request.client.host if ctx.request.client else None
    try:
        email = email_address(ctx.session.get("signin_email") if resend else ctx.form.get("email"))
        sent = await codes.send(email, client=client, resend=resend)
    except CodeNotSent:
        return await _not_sent(ctx)
    except (InvalidInput, SendLimitReached) as e:
        problem = ctx.problem(e)
        email = ctx.session.get("signin_email")
        timing = codes.timing(email) if resend and isinstance(email, str) else None
        if timing is None:
            return await ctx.page("signin.html", status=problem.status, error=problem.message)
        return await ctx.page(
            "signin_code.html",
            status=problem.status,
            email=email,
            code=timing,
            error=problem.message,
        )
    ctx.session.set("signin_email", email)
    if not sent:
        timing = codes.timing(email)
        wait = timing["resend_in"] if timing else 0
        error = f"You can request a new code in {wait // 60}:{wait % 60:02d}."
        return await ctx.page("signin_code.html", status=429, email=email, code=timing, error=error)
    return ctx.redirect("/signin")


async def signin_finish(ctx: Ctx) -> Response:
    """Check the code; on success the browser is signed in (with a fresh CSRF token)."""
    codes = _codes(ctx)
    email = ctx.session.get("signin_email")
    if not isinstance(email, str):
        return ctx.redirect("/signin")
    try:
        codes.check(email, ctx.form.get("code"))
    except (InvalidInput, CodeMismatch, CodeExpired, CodeAttemptsExhausted) as e:
        status, error = ctx.code_refusal(e)
        timing = codes.timing(email)
        if timing is None:  # no code is pending: the form to ask for one
            return await ctx.page("signin.html", status=status, error=error)
        return await ctx.page(
            "signin_code.html", status=status, email=email, code=timing, error=error
        )
    ctx.session.clear()  # a new session: nothing from before the sign-in carries over
    ctx.session.set("account", email)
    return ctx.redirect("/")


async def signin_restart(ctx: Ctx) -> Response:
    """Use another address: back to the email form."""
    ctx.session.pop("signin_email")
    return ctx.redirect("/signin")


async def signout(ctx: Ctx) -> Response:
    """Forget the browser's session."""
    ctx.session.clear()
    return ctx.redirect("/signin" if ctx.portal.sign_in is not None else "/")
