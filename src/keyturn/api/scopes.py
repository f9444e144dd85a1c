"""``public/auth``'s ``scope``: the resource scopes and Deribit's session scopes, read and reported.

Besides ``resource:level`` tokens (:class:`~keyturn.core.scope.Scope`), Deribit's ``scope``
takes values that say how the tokens live:

* ``connection``: the tokens serve only the WebSocket connection that asked for them, and die
  with it. It is the default when no ``session:NAME`` is given. Over HTTP, where a connection
  ends with its answer, it binds nothing (Deribit's own HTTP tokens serve later requests).
* ``session:NAME``: a named session of the key; a new login with the same name replaces it,
  ending its tokens. NAME is 1-64 letters, digits, ``_``, ``-`` or ``.``.
* ``expires:SECONDS``: the access token's lifetime, at least 1 and at most the server's maximum
  (a longer one is cut to it).
* ``mainaccount``: reported for every key (keyturn has no subaccounts); accepted and ignored.

The answer reports the granted scope as Deribit does: every token, sorted. This module only
parses and formats; it does no I/O.
"""

from __future__ import annotations

import re
from typing import Final

import attrs

from keyturn.core.errors import InvalidInput
from keyturn.core.scope import Scope

CONNECTION: Final = "connection"
MAIN_ACCOUNT: Final = "mainaccount"
_SESSION_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
_SECONDS: Final = re.compile(r"[0-9]{1,10}", re.ASCII)


@attrs.frozen
class Lifetime:
    """How a login's tokens live: bound to the connection, named, and the access lifetime."""

    connection: bool = False
    name: str | None = None
    expires: int | None = None


@attrs.frozen
class Requested:
    """What ``public/auth``'s ``scope`` asks for."""

    resources: Scope | None = None
    lifetime: Lifetime = attrs.field(factory=Lifetime)


def _refuse(reason: str) -> InvalidInput:
    return InvalidInput("scope", reason)


def parse(text: str | None) -> Requested:
    """The resource scope and session values of a ``scope`` parameter (``None``: none given)."""
    if text is None:
        return Requested()
    resource_tokens: list[str] = []
    connection, name, expires = False, None, None
    for token in text.split():
        kind, _, value = token.partition(":")
        if token == CONNECTION:
            connection = True
        elif token == MAIN_ACCOUNT:
            pass
        elif kind == "session":
            if name is not None or _SESSION_NAME.fullmatch(value) is None:
                raise _refuse("session:NAME takes one name of 1-64 letters, digits, _ - or .")
            name = value
        elif kind == "expires":
            if expires is not None or _SECONDS.fullmatch(value) is None or int(value) < 1:
                raise _refuse("expires:SECONDS takes one whole number of seconds, at least 1")
            expires = int(value)
        else:
            resource_tokens.append(token)
    if connection and name is not None:
        raise _refuse("connection and session:NAME exclude each other")
    resources = Scope.parse(" ".join(resource_tokens), field="scope") if resource_tokens else None
    return Requested(resources, Lifetime(connection=connection, name=name, expires=expires))


def granted(resources: Scope, lifetime: Lifetime) -> str:
    """The ``scope`` a ``public/auth`` answer reports: resources and session values, sorted."""
    tokens = str(resources).split()
    tokens.append(CONNECTION if lifetime.name is None else f"session:{lifetime.name}")
    if lifetime.expires is not None:
        tokens.append(f"expires:{lifetime.expires}")
    tokens.append(MAIN_ACCOUNT)
    return " ".join(sorted(tokens))
