"""keyturn records as Deribit's JSON objects (the ``api_key`` and ``access_log`` schemas).

``client_secret`` carries the secret only in the answer that hands it out (create and reset);
everywhere else it carries the key's fingerprint, because keyturn never keeps a secret it could
show again (Deribit's own examples of ``list_api_keys`` show secrets; we deliberately do not).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from keyturn.core.time_rules import to_us

if TYPE_CHECKING:
    from keyturn.core.records import ApiKey, HistoryEntry

#: The history events that Deribit's access log knows.
ACCESS_LOG_EVENTS: Final = frozenset(
    {
        "new_api_key",
        "removed_api_key",
        "changed_scope",
        "changed_whitelist",
        "disabled_api_key",
        "enabled_api_key",
        "reset_api_key",
    }
)


def key_object(key: ApiKey, secret: str | None = None) -> dict[str, Any]:
    """The key as Deribit's ``api_key`` object; ``enabled`` is true exactly when ``active``."""
    out: dict[str, Any] = {
        "id": key.id,
        "timestamp": to_us(key.updated_at) // 1000,
        "client_id": key.client_id,
        "client_secret": secret if secret is not None else key.fingerprint,
        "max_scope": str(key.max_scope),
        "default": False,
        "enabled": key.enabled,
        "name": key.name,
        "enabled_features": list(key.enabled_features),
        "ip_whitelist": [str(n) for n in key.ip_whitelist],
    }
    if key.public_key is not None:
        out["public_key"] = key.public_key
    return out


def access_log_entry(client_id: str, entry: HistoryEntry) -> dict[str, Any]:
    """One history entry as Deribit's ``access_log`` object (newest first in a listing).

    keyturn does not record the caller's address or place, so ``ip``, ``country`` and ``city``
    are empty strings.
    """
    return {
        "id": entry.key_id * 1_000_000 + entry.version,
        "timestamp": to_us(entry.at) // 1000,
        "log": entry.event,
        "ip": "",
        "country": "",
        "city": "",
        "data": client_id,
    }
