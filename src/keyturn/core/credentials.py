"""Who a credential may speak for: the one rule every credential obeys.

A secret, a signature, a token and a WebSocket session are all admitted by :func:`refusal`, and
what they speak for is :func:`principal_of` the key. Pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyturn.core.records import Principal

if TYPE_CHECKING:
    from keyturn.core.records import ApiKey
    from keyturn.core.validation import IpAddress


def refusal(key: ApiKey, ip: IpAddress | None, generation: int | None = None) -> str | None:
    """Why ``key`` may not authenticate a request from ``ip`` now, or ``None`` if it may.

    The one rule every credential obeys (secret, signature, token, WebSocket session): only an
    ``active`` key, only from an address its whitelist lets through, and, for a credential
    issued earlier (a token), only while the key is still at the ``generation`` it was issued
    under (a new secret, a disable, a narrower scope or whitelist move it on).
    """
    if not key.enabled:
        return "key_not_active"
    if key.ip_whitelist and (ip is None or not any(ip in net for net in key.ip_whitelist)):
        return "ip_not_allowed"
    if generation is not None and generation != key.generation:
        return "credential_revoked"
    return None


def principal_of(key: ApiKey) -> Principal:
    """Who a key speaks for, at its present generation."""
    return Principal(
        key_id=key.id,
        owner=key.owner,
        client_id=key.client_id,
        max_scope=key.max_scope,
        generation=key.generation,
    )
