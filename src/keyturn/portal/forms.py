"""What the portal's forms send, as the service's arguments; and what a dialog carries along.

A key's form has a name, one level per Deribit resource (``scope_<resource>``: ``none``,
``read`` or ``read_write``) and an IP whitelist typed as text. This module only reshapes: every
check is the service's (:mod:`keyturn` raises :class:`~keyturn.InvalidInput` naming the field).
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Final

from keyturn import InvalidInput
from keyturn.web.views import RESOURCES as SCOPE_RESOURCES
from keyturn.web.views import scope_view

if TYPE_CHECKING:
    from collections.abc import Mapping

    from keyturn import ApiKey

#: Labels that are not the resource's name, capitalised.
_LABELS: Final = {"block_rfq": "Block RFQ"}
#: Deribit's resources, in the scope's own order, with a person's label for each.
RESOURCES: Final = tuple(
    (r, _LABELS.get(r, r.replace("_", " ").capitalize())) for r in SCOPE_RESOURCES
)
LEVELS: Final = (("none", "No access"), ("read", "Read"), ("read_write", "Read and write"))
MAX_TEXT: Final = 4096

#: The fields a key's form sends, which a confirmation dialog carries to the repeated request:
#: with them, the Create form's one-time ``form_id`` (a reload must not create a second key).
KEY_FIELDS: Final = ("name", *(f"scope_{r}" for r, _ in RESOURCES), "ip_whitelist")
CARRIED: Final = (*KEY_FIELDS, "form_id")
#: A one-time form value, as :func:`new_form_id` makes it.
FORM_ID: Final = re.compile(r"[A-Za-z0-9_-]{22}")


def text(form: Mapping[str, object], name: str) -> str:
    """A text field, stripped; InvalidInput if it is a file or too long."""
    value = form.get(name, "")
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidInput(name, "must be text of at most 4096 characters")
    return value.strip()


def scope_text(form: Mapping[str, object]) -> str:
    """The scope the level fields choose (``account:read trade:read_write``)."""
    chosen = [f"{r}:{text(form, f'scope_{r}') or 'none'}" for r, _ in RESOURCES]
    granted = [token for token in chosen if not token.endswith(":none")]
    if not granted:
        raise InvalidInput("permissions", "needs at least one resource above no access")
    return " ".join(granted)


def key_fields(form: Mapping[str, object]) -> dict[str, str]:
    """The form's key fields as the service's ``name``, ``max_scope`` and ``ip_whitelist``."""
    return {
        "name": text(form, "name"),
        "max_scope": scope_text(form),
        "ip_whitelist": text(form, "ip_whitelist"),
    }


def carried(form: Mapping[str, object]) -> list[tuple[str, str]]:
    """The key fields of ``form`` as hidden inputs for the next step of the same request."""
    return [(name, text(form, name)) for name in CARRIED if name in form]


def new_form_id() -> str:
    """A fresh one-time value for a form that must not act twice (Create)."""
    return secrets.token_urlsafe(16)


def form_id(form: Mapping[str, object]) -> str | None:
    """The form's one-time value, or ``None`` if it has none (or a malformed one)."""
    value = form.get("form_id")
    return value if isinstance(value, str) and FORM_ID.fullmatch(value) else None


def prefilled(key: ApiKey | None) -> dict[str, str]:
    """A key's fields as its edit form shows them (a new key: read access to the account)."""
    if key is None:
        return {"name": "", "ip_whitelist": "", "scope_account": "read"}
    levels = scope_view(key.max_scope)
    return {
        "name": key.name,
        "ip_whitelist": " ".join(str(n) for n in key.ip_whitelist),
        **{f"scope_{r}": levels[r] for r, _ in RESOURCES},
    }
