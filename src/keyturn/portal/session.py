"""The portal's own state in the browser: one signed cookie, and the CSRF token in it.

The cookie (``keyturn_portal``) holds a small JSON object signed with itsdangerous under the
portal's key: the signed-in account (reference sign-in only), the CSRF token, a one-time notice
for the next page and the times codes were sent for confirmations. It is ``HttpOnly``,
``SameSite=Lax``, ``Secure`` whenever the request came over HTTPS, scoped to the portal's path,
and expires after ``max_age``. It is signed, not encrypted: nothing secret goes in it (never an
API secret or a code). It has its own name and never touches ``scope["session"]``, so a host
application's session middleware and the portal do not step on each other.

Every form carries the session's CSRF token; a POST without the right one changes nothing.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING, Any, Final

import attrs
from itsdangerous import BadSignature, URLSafeTimedSerializer

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

COOKIE: Final = "keyturn_portal"
CSRF_FIELD: Final = "csrf_token"
MAX_COOKIE: Final = 3500  # browsers keep cookies up to 4 KiB


@attrs.define(eq=False)
class Session:
    """The portal's state for one browser; ``changed`` says whether to send it back."""

    data: dict[str, Any] = attrs.field(factory=dict)
    changed: bool = False

    def get(self, name: str, default: Any = None) -> Any:  # noqa: ANN401 (JSON values)
        """A value, or ``default``."""
        return self.data.get(name, default)

    def set(self, name: str, value: object) -> None:
        """Store a JSON-ready value."""
        if self.data.get(name) != value:
            self.data[name] = value
            self.changed = True

    def pop(self, name: str) -> Any:  # noqa: ANN401 (JSON values)
        """Remove and return a value (``None`` if absent)."""
        if name in self.data:
            self.changed = True
        return self.data.pop(name, None)

    def clear(self) -> None:
        """Forget everything, including the CSRF token (a new one is made on the next form)."""
        self.data = {}
        self.changed = True

    @property
    def csrf_token(self) -> str:
        """This session's CSRF token, made on first use."""
        token = self.data.get(CSRF_FIELD)
        if not isinstance(token, str):
            token = secrets.token_urlsafe(24)
            self.set(CSRF_FIELD, token)
        return token

    def csrf_ok(self, submitted: object) -> bool:
        """Whether ``submitted`` is this session's CSRF token (constant time)."""
        token = self.data.get(CSRF_FIELD)
        return (
            isinstance(token, str)
            and isinstance(submitted, str)
            and hmac.compare_digest(token.encode(), submitted.encode())
        )


@attrs.define
class Sessions:
    """Loads and stores :class:`Session` in the signed cookie."""

    key: bytes = attrs.field(repr=False)
    max_age: int = 12 * 3600
    _serializer: URLSafeTimedSerializer = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._serializer = URLSafeTimedSerializer(self.key, salt="keyturn-portal")

    def load(self, request: Request) -> Session:
        """The request's session; an empty one if the cookie is missing, forged or too old."""
        raw = request.cookies.get(COOKIE)
        if not raw or len(raw) > MAX_COOKIE:
            return Session()
        try:
            data = self._serializer.loads(raw, max_age=self.max_age)
        except BadSignature:
            return Session(changed=True)  # replace the bad cookie
        return Session(data if isinstance(data, dict) else {})

    def save(self, request: Request, response: Response, session: Session) -> None:
        """Send the session back if it changed (or delete the cookie if it is empty)."""
        if not session.changed:
            return
        path = request.scope.get("root_path") or "/"
        secure = request.url.scheme in ("https", "wss")
        if not session.data:
            response.delete_cookie(COOKIE, path=path, secure=secure, httponly=True)
            return
        response.set_cookie(
            COOKIE,
            self._serializer.dumps(session.data),
            max_age=self.max_age,
            path=path,
            secure=secure,
            httponly=True,
            samesite="lax",
        )
