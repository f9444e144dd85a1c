"""Input checks for everything a caller hands the service.

Text (what every store and codec can hold), names, owners, IP whitelists, features, public keys,
key ids.

Each function takes ``object`` (callers are untyped: HTTP, a terminal) and returns the value in
its canonical form, or raises :class:`~keyturn.core.errors.InvalidInput` naming the field. They run
before anything is read or written, so bad input never changes a record. No I/O here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import ipaddress
import re
from typing import TYPE_CHECKING, Final

from keyturn.core.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9_]{1,16}", re.ASCII)
MAX_OWNER_LENGTH: Final = 128
MAX_WHITELIST_ENTRIES: Final = 64
MAX_PUBLIC_KEY_LENGTH: Final = 16_384
FEATURES: Final = frozenset({"restricted_block_trades", "block_trade_approval"})
#: The longest text a field may hold when no rule of its own says less (the API's body limit).
MAX_TEXT: Final = 64 * 1024
#: The control characters a multi-line text (a PEM block, signed data) may hold.
LINE_BREAKS: Final = "\t\n\r"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_PEM = re.compile(
    r"-----BEGIN PUBLIC KEY-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END PUBLIC KEY-----", re.ASCII
)
_WHITELIST_SEPARATORS = re.compile(r"[\s;,]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def text(
    value: object, field: str, *, max_length: int = MAX_TEXT, min_length: int = 0, allow: str = ""
) -> str:
    """Text every store and codec can hold, of ``min_length`` to ``max_length`` characters.

    Refused: a lone surrogate (UTF-8, and so SQLite, PostgreSQL, HMAC and JSON, cannot encode
    one) and any control character (PostgreSQL cannot store NUL, and none belongs in an id, a
    token, a code or a name) but those in ``allow``. The reason names the character, never the
    value.
    """
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}")
    if not min_length <= len(value) <= max_length:
        raise InvalidInput(field, f"must be a string of {min_length}-{max_length} characters")
    if _SURROGATE.search(value) is not None:
        raise InvalidInput(field, "holds a lone surrogate, which is not text")
    for match in _CONTROL.finditer(value):
        if match.group() not in allow:
            raise InvalidInput(field, f"holds the control character U+{ord(match.group()):04X}")
    return value


def texts(params: Mapping[str, object], *, multiline: Collection[str] = ()) -> None:
    """Check with :func:`text` every name and string in ``params``, however deeply nested.

    An error names the top-level parameter the bad text is in. Parameters in ``multiline`` may
    hold line breaks and tabs. The walk is iterative, so nesting depth cannot exhaust the stack.
    """
    for field, top in params.items():
        text(field, "params", max_length=256)
        allow = LINE_BREAKS if field in multiline else ""
        stack = [top]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                text(item, field, allow=allow)
            elif isinstance(item, dict):
                for name in item:
                    text(name, field)
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)


def key_id(value: object) -> int:
    """A key id: a positive integer (``True`` is not one)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("id", f"must be an integer, not {type(value).__name__}")
    if value < 1 or value > 2**63 - 1:
        raise InvalidInput("id", "must be a positive 64-bit integer")
    return value


def owner(value: object) -> str:
    """An owner (account) identifier: 1-128 printable characters."""
    if not isinstance(value, str):
        raise InvalidInput("owner", f"must be a string, not {type(value).__name__}")
    if not 0 < len(value) <= MAX_OWNER_LENGTH or not value.isprintable() or value.strip() != value:
        raise InvalidInput(
            "owner", f"must be 1-{MAX_OWNER_LENGTH} printable characters without outer spaces"
        )
    return value


def actor(value: object) -> str:
    """Who acts (recorded in history): the same rules as an owner."""
    try:
        return owner(value)
    except InvalidInput as e:
        raise InvalidInput("actor", e.reason) from None


def name(value: object) -> str:
    """A key name: letters, digits and underscores, at most 16 (Deribit's rule)."""
    if not isinstance(value, str):
        raise InvalidInput("name", f"must be a string, not {type(value).__name__}")
    if NAME_PATTERN.fullmatch(value) is None:
        raise InvalidInput("name", "must be 1-16 ASCII letters, digits or underscores")
    return value


def ip_whitelist(value: object) -> tuple[IpNetwork, ...]:
    """IPv4/IPv6 addresses and CIDR ranges; a string may separate them by space, ``;`` or ``,``.

    Empty means any address. Ranges must be written at their network address (``10.0.0.0/24``,
    not ``10.0.0.7/24``). The result is sorted and without duplicates.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        if len(value) > MAX_WHITELIST_ENTRIES * 50:
            raise InvalidInput("ip_whitelist", "too long")
        entries: list[object] = [e for e in _WHITELIST_SEPARATORS.split(value) if e]
    elif isinstance(value, list | tuple):
        entries = list(value)
    else:
        raise InvalidInput("ip_whitelist", "must be a list of addresses or a separated string")
    if len(entries) > MAX_WHITELIST_ENTRIES:
        raise InvalidInput("ip_whitelist", f"at most {MAX_WHITELIST_ENTRIES} entries")
    networks: set[IpNetwork] = set()
    for entry in entries:
        if not isinstance(entry, str) or len(entry) > 49:  # noqa: PLR2004 (longest IPv6 CIDR)
            raise InvalidInput("ip_whitelist", "each entry must be an address or CIDR string")
        try:
            networks.add(ipaddress.ip_network(entry.strip(), strict=True))
        except ValueError:
            raise InvalidInput(
                "ip_whitelist", f"{entry[:49]!r} is not an IP address or a CIDR range"
            ) from None
    return tuple(sorted(networks, key=lambda n: (n.version, n)))


def enabled_features(value: object) -> tuple[str, ...]:
    """Deribit's on-key features, sorted and without duplicates."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple | set | frozenset):
        raise InvalidInput("enabled_features", "must be a list of feature names")
    out: set[str] = set()
    for f in value:
        if not isinstance(f, str) or f not in FEATURES:
            shown = f[:40] if isinstance(f, str) else type(f).__name__
            raise InvalidInput(
                "enabled_features",
                f"{shown!r} is not one of {', '.join(sorted(FEATURES))}",
            )
        out.add(f)
    return tuple(sorted(out))


def public_key(value: object) -> tuple[str, str] | None:
    """A PEM ``PUBLIC KEY`` block; returns it normalised, with its MD5 fingerprint (Deribit's).

    The key must be Ed25519, or RSA of 2048 bits or more: anything else could never verify a
    signature, so it is refused here rather than at the first login.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("public_key", f"must be a PEM string, not {type(value).__name__}")
    if len(value) > MAX_PUBLIC_KEY_LENGTH:
        raise InvalidInput("public_key", f"longer than {MAX_PUBLIC_KEY_LENGTH} characters")
    match = _PEM.fullmatch(value.strip())
    if match is None:
        raise InvalidInput("public_key", "must be a PEM block 'BEGIN PUBLIC KEY'")
    body = "".join(match.group(1).split())
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("public_key", "the PEM body is not valid base64") from None
    if len(der) < 32:  # noqa: PLR2004 (an Ed25519 SubjectPublicKeyInfo is 44 bytes)
        raise InvalidInput("public_key", "the PEM body is too short to be a public key")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    pem = "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"
    from keyturn.crypto.signatures import load_public_key  # noqa: PLC0415 (cryptography only when used)

    load_public_key(pem)
    return pem, hashlib.md5(der, usedforsecurity=False).hexdigest()


MAX_PEER_LENGTH: Final = 255


def source_ip(value: object) -> IpAddress | None:
    """The address a request came from, or ``None`` for a peer whose address is unknown.

    What an ASGI or WSGI server reports as the peer: an IP address, ``None`` (a Unix socket),
    or a name that is no address (Starlette's test client says ``"testclient"``). A peer that is
    not an address can match no IP whitelist, so only keys without one accept it.
    """
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_PEER_LENGTH:
        raise InvalidInput("source_ip", f"must be an address string of at most {MAX_PEER_LENGTH}")
    return _address(value)


@functools.lru_cache(maxsize=4096)
def _address(value: str) -> IpAddress | None:
    """``value`` parsed as an IP address (``None`` if it is none), once per distinct peer.

    Every request names its peer, and a few peers make most requests; addresses are immutable,
    so the parsed one is shared. The cache is bounded: a flood of new peers only evicts.
    """
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def page(offset: object, limit: object, *, most: int) -> tuple[int, int]:
    """A page of a listing: ``offset`` at least 0, ``limit`` from 1 to ``most``."""
    for field, value, low, high in (("offset", offset, 0, 2**31), ("count", limit, 1, most)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(field, f"must be a whole number from {low} to {high}")
    return offset, limit  # type: ignore[return-value]
