"""An email notifier over SMTP, with the standard library's :mod:`smtplib` and :mod:`email`.

Plain-text messages from two replaceable templates (one for codes, one for news about a key),
plain SMTP, STARTTLS or SMTP over TLS, and optional login. Any SMTP or network failure raises, so
the outbox keeps the notification and the relay retries it. The password and codes are hidden
from repr; nothing is logged here.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

import attrs

from keyturn.core.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable

    from keyturn.core.records import Notification


@attrs.frozen
class MessageTemplate:
    """A subject and a body, formatted with the notification's fields.

    Fields: ``{subject}``, ``{owner}``, ``{key_id}``, ``{key_name}``, ``{code}``,
    ``{expires_at}`` (HH:MM UTC) and ``{minutes}`` (whole minutes until the code expires).
    """

    subject: str
    body: str


CODE_TEMPLATE = MessageTemplate(
    subject="{subject}",
    body=(
        "Your verification code is: {code}\n\n"
        "It expires at {expires_at} UTC. Enter it in the API key dialog to continue.\n"
        "If you did not ask for this code, ignore this email and review your API keys.\n"
    ),
)
EVENT_TEMPLATE = MessageTemplate(
    subject="{subject}",
    body=(
        "{subject}.\n\n"
        "If you did not make this change, disable your API keys and contact support now.\n"
    ),
)


def owner_is_address(owner: str) -> str:
    """The default recipient: the owner id itself, which must then be an email address."""
    if "@" not in owner:
        raise InvalidInput("owner", "is not an email address; give SmtpNotifier an address_of")
    return owner


@attrs.define(kw_only=True)
class SmtpNotifier:
    """Sends each notification as one email.

    ``address_of`` maps an owner to an email address (default: the owner id is one).
    ``security`` is ``"starttls"``, ``"tls"`` (SMTP over TLS) or ``"none"`` (loopback relays only).
    """

    host: str
    sender: str
    port: int = 587
    security: str = attrs.field(default="starttls")
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    timeout: float = 10.0
    address_of: Callable[[str], str] = owner_is_address
    code_template: MessageTemplate = CODE_TEMPLATE
    event_template: MessageTemplate = EVENT_TEMPLATE
    tls_context: ssl.SSLContext | None = attrs.field(default=None, repr=False)

    @security.validator
    def _check_security(self, _: object, value: str) -> None:
        if value not in ("starttls", "tls", "none"):
            raise InvalidInput("security", "must be starttls, tls or none")

    def message(self, n: Notification) -> EmailMessage:
        """The email for ``n``."""
        template = self.code_template if n.code is not None else self.event_template
        minutes = 0
        if n.expires_at is not None:
            minutes = max(0, int((n.expires_at - n.created_at).total_seconds() // 60))
        fields = {
            "subject": n.subject,
            "owner": n.owner,
            "key_id": n.key_id if n.key_id is not None else "",
            "key_name": n.key_name,
            "code": n.code or "",
            "expires_at": f"{n.expires_at:%H:%M}" if n.expires_at else "",
            "minutes": minutes,
        }
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = self.address_of(n.owner)
        msg["Subject"] = template.subject.format(**fields)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(idstring=n.id[:16])
        msg.set_content(template.body.format(**fields))
        return msg

    def deliver(self, notification: Notification) -> None:
        """Send the email; raise on any SMTP or network failure."""
        msg = self.message(notification)
        context = self.tls_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.username is not None:
                smtp.login(self.username, self.password or "")
            smtp.send_message(msg)
