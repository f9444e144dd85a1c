"""How ``keyturn serve`` runs the API under uvicorn: the limits that keep its costs bounded.

A server exposed to clients must bound what one client can make it hold or wait for, and must
not believe a forwarded address from anyone it was not told to trust:

* a WebSocket message may be no larger than an HTTP body (:data:`keyturn.api.asgi.MAX_BODY`),
  so uvicorn refuses a bigger one (close code 1009) before it is buffered;
* idle keep-alive connections close after a few seconds, a request body must arrive within
  :attr:`ServerLimits.body_timeout` (the app answers an error otherwise), WebSocket peers that
  stop answering pings are dropped, and at most :attr:`ServerLimits.concurrency` connections and
  requests are served at once (uvicorn answers 503 beyond it);
* ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are read only from the addresses given in
  ``forwarded_allow_ips``; with none given (the default) they are ignored whoever sends them,
  so a client cannot claim a whitelisted address by writing a header.

This module only builds configuration; it needs the ``server`` extra (uvicorn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from keyturn.api.asgi import MAX_BODY

if TYPE_CHECKING:
    import uvicorn


@attrs.frozen(kw_only=True)
class ServerLimits:
    """What one server accepts and waits for (all in seconds or counts)."""

    max_message: int = MAX_BODY
    concurrency: int = 1024
    keep_alive: float = 5.0
    body_timeout: float = 10.0
    ws_ping_interval: float = 20.0
    ws_ping_timeout: float = 20.0


def config(
    app: Any,  # noqa: ANN401 (any ASGI application)
    *,
    host: str,
    port: int,
    forwarded_allow_ips: str | None = None,
    limits: ServerLimits | None = None,
    log_level: str = "warning",
) -> uvicorn.Config:
    """A uvicorn configuration for ``app`` with keyturn's limits.

    ``forwarded_allow_ips`` (comma-separated addresses, or ``*``) names the proxies whose
    forwarded headers are believed; ``None`` believes none.
    """
    import uvicorn  # noqa: PLC0415 (the server extra)

    limits = limits or ServerLimits()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips or "",
        ws_max_size=limits.max_message,
        limit_concurrency=limits.concurrency,
        timeout_keep_alive=int(limits.keep_alive),
        ws_ping_interval=limits.ws_ping_interval,
        ws_ping_timeout=limits.ws_ping_timeout,
    )
