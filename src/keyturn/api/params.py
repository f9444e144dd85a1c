"""Each method's declared parameters, and the one rule that reads them from JSON or a query string.

A method declares its parameters once (:class:`Param`: a name, a :class:`Kind`, whether it is
required). The same declaration checks a JSON-RPC request's ``params`` and turns a GET query
string into them, so a parameter means the same over POST, GET and WebSocket:

* ``STR``: a string. In a query, the text exactly as written (``name=123`` is ``"123"``).
* ``INT``, ``BOOL``, ``NUMBER``: a JSON value of that type (``true`` is no integer). In a query,
  the text read as JSON (``id=3``, ``enabled=false``, ``interval=10.5``).
* ``STR_LIST``: a list of strings. In a query, one value that reads as a JSON array
  (``ip_whitelist=["10.0.0.0/8"]``), or the key repeated, one element each
  (``ip_whitelist=a&ip_whitelist=b``, also spelt ``ip_whitelist[]=a``); an empty value is none.
* ``CODE``: a code of digits, as a string or as a JSON number (a query reads ``123456`` as text).
* ``TIMESTAMP``: milliseconds as an integer or as a string of digits, as clients send it.

``null``, or a parameter left out, is "not given": refused where a value is required, the
method's default otherwise. A parameter of the wrong type is ``-32602 Invalid params``. What a
value *means* (a well-formed scope, name or address) is checked by the method, not here.
Parameters a method does not declare are passed on unchecked (JSON) or as their text (query,
a list of texts if repeated); no method reads them. A declared single value given twice in a
query is refused. This module does no I/O.
"""

from __future__ import annotations

import enum
import json
from typing import TYPE_CHECKING, Any, Final

import attrs

from keyturn.api import errors
from keyturn.api.errors import RpcError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


class Kind(enum.Enum):
    """What a parameter holds (see the module's docstring for how each is read)."""

    STR = "str"
    INT = "int"
    BOOL = "bool"
    NUMBER = "number"
    STR_LIST = "str_list"
    CODE = "code"
    TIMESTAMP = "timestamp"

    @property
    def described(self) -> str:
        """What a value of this kind must be, as an error says it."""
        return _DESCRIBED[self]


_DESCRIBED: Final = {
    Kind.STR: "a string",
    Kind.INT: "an integer",
    Kind.BOOL: "a boolean",
    Kind.NUMBER: "a number",
    Kind.STR_LIST: "a list of strings",
    Kind.CODE: "a string",
    Kind.TIMESTAMP: "an integer",
}


@attrs.frozen
class Param:
    """One declared parameter of a method."""

    name: str
    kind: Kind
    required: bool = False


#: The credential a private call may carry in its parameters (Deribit's WebSocket way).
ACCESS_TOKEN: Final = Param("access_token", Kind.STR)
#: The answer to a security-key challenge, declared by every guarded method.
SECURITY_ANSWER: Final = (Param("authorization_data", Kind.CODE), Param("challenge", Kind.STR))
_LIST_SUFFIX: Final = "[]"


def _refuse(name: str, reason: str) -> RpcError:
    return RpcError(errors.INVALID_PARAMS, {"param": name, "reason": reason})


def _typed(param: Param, value: object) -> object:
    """``value`` if it is of the parameter's kind (a code or timestamp made uniform)."""
    kind = param.kind
    is_int = isinstance(value, int) and not isinstance(value, bool)
    fits = {
        Kind.STR: isinstance(value, str),
        Kind.INT: is_int,
        Kind.BOOL: isinstance(value, bool),
        Kind.NUMBER: is_int or isinstance(value, float),
        Kind.STR_LIST: isinstance(value, list) and all(isinstance(v, str) for v in value),
        Kind.CODE: isinstance(value, str) or is_int,
        Kind.TIMESTAMP: isinstance(value, str) or is_int,
    }[kind]
    if not fits:
        raise _refuse(param.name, f"must be {kind.described}")
    if kind is Kind.CODE and is_int:
        return str(value)
    return value


def check(declared: Iterable[Param], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with every declared one checked; ``None`` ones dropped (not given)."""
    out = {name: value for name, value in params.items() if value is not None}
    for param in declared:
        value = out.get(param.name)
        if value is None:
            if param.required:
                raise _refuse(param.name, "is required")
            continue
        out[param.name] = _typed(param, value)
    return out


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def from_query(declared: Iterable[Param], pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The parameters a query string's ``pairs`` carry, read by each one's declared kind."""
    kinds = {p.name: p.kind for p in declared}
    values: dict[str, list[str]] = {}
    for raw_name, text in pairs:
        name = raw_name
        if name.endswith(_LIST_SUFFIX) and kinds.get(name[: -len(_LIST_SUFFIX)]) is Kind.STR_LIST:
            name = name[: -len(_LIST_SUFFIX)]
        values.setdefault(name, []).append(text)
    out: dict[str, Any] = {}
    for name, texts in values.items():
        kind = kinds.get(name)
        if kind is Kind.STR_LIST:
            read = _json(texts[0]) if len(texts) == 1 else None
            out[name] = read if isinstance(read, list) else [t for t in texts if t]
            continue
        if len(texts) > 1:
            if kind is not None:
                raise _refuse(name, "is given more than once")
            out[name] = texts  # read by no method
            continue
        text = texts[0]
        out[name] = text if kind in (None, Kind.STR, Kind.CODE) else _json(text)
    return out
