"""``keyturn serve``: the Deribit-compatible API and the portal over HTTP, on one store.

The API at ``/api/v2`` and ``/ws/api/v2`` runs under :data:`keyturn.wiring.API_POLICY`, the
portal at ``/portal/`` under its own policy, both on the async service over ``--db`` (which
must exist, unless ``--dev``). Needs the ``server`` extra. The options and the command are kept
together here; what is served is :mod:`keyturn.api` and :mod:`keyturn.portal`'s.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from keyturn import wiring
from keyturn.adapters.notifiers import UnconfiguredNotifier
from keyturn.core.errors import InvalidInput, StoreError

from . import stores

if TYPE_CHECKING:
    import argparse

    from .app import App

HELP = "serve the Deribit-compatible API and the portal over HTTP (extra: server)"


def add_arguments(sv: argparse.ArgumentParser) -> None:
    """``serve``'s own options."""
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default 127.0.0.1: this machine only)",
    )
    sv.add_argument("--port", type=int, default=8000, help="the port to listen on (default 8000)")
    sv.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="believe X-Forwarded-For only from these proxy addresses (comma-separated, or *); "
        "by default no forwarded header is believed",
    )
    sv.add_argument(
        "--expose-dev-mailbox",
        action="store_true",
        help="with --dev on a --host that is not a loopback address: serve the mailbox, and "
        "every account's codes in it, to whoever reaches the server (refused otherwise)",
    )
    sv.add_argument(
        "--testnet",
        action="store_true",
        help="answer testnet: true in every API answer (a server for trying clients out)",
    )


def cmd_serve(app: App) -> None:
    """The Deribit API at /api and /ws, and the portal at /portal, on one store.

    ``--dev`` runs on ``--db`` or the SQLite default (never ``$KEYTURN_DB``) and keeps what the
    notifier sends in a mailbox the portal shows at ``/portal/dev/mailbox``: every account's
    codes, to whoever reaches the server, so only on a loopback address unless
    ``--expose-dev-mailbox`` says otherwise. Without a notifier (and without ``--dev``) the
    portal's sign-in cannot send its codes: it says so, and so does the startup.
    """
    import ipaddress  # noqa: PLC0415 (serve's own concern)

    args = app.args
    try:  # reachable only from this machine: 127.0.0.0/8, ::1, localhost
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if args.dev and not loopback and not args.expose_dev_mailbox:
        raise InvalidInput(
            "host",
            f"--dev shows every account's codes at /portal/dev/mailbox, so it serves on a "
            f"loopback address only (127.0.0.1, ::1), not {args.host}; add "
            "--expose-dev-mailbox to serve it there anyway",
        )
    try:
        import uvicorn  # noqa: PLC0415

        from keyturn.portal import PORTAL_POLICY, DevMailbox, build_portal, build_site  # noqa: PLC0415
    except ImportError:
        msg = "keyturn serve needs the server extra: pip install 'keyturn[server]'"
        raise StoreError(msg) from None
    from keyturn.adapters.to_async import AsyncNotifierAdapter  # noqa: PLC0415
    from keyturn.api import server  # noqa: PLC0415

    db = (args.db or wiring.DEFAULT_DB) if args.dev else args.db
    stores.check(wiring.database(db), create=bool(args.dev))
    master_key = wiring.server_key(db)
    secret_box = wiring.secret_box(db)
    chosen = app.notifier()
    forward = AsyncNotifierAdapter(chosen) if chosen is not None else None
    mailbox = DevMailbox(forward=forward) if args.dev else None
    notifier = mailbox or forward or AsyncNotifierAdapter(UnconfiguredNotifier())

    async def serve() -> None:
        store = await wiring.open_async_store(db)
        api_service, portal_service = (
            wiring.build_async_service(
                store=store,
                notifier=notifier,
                master_key=master_key,
                policy=policy,
                secret_box=secret_box,
            )
            for policy in (wiring.API_POLICY, PORTAL_POLICY)
        )
        if chosen is None:
            api_service.deliver_inline = portal_service.deliver_inline = False
            app.err.say(
                "no notifier is configured: notifications wait in the outbox for "
                "keyturn relay --notifier smtp (or set KEYTURN_NOTIFIER); the portal's sign-in "
                "cannot send its codes, so nobody can sign in to it (it says so)"
            )
        portal = build_portal(
            service=portal_service,
            secret_key=wiring.derive(master_key, "portal"),
            mailbox=mailbox,
            sends_codes=mailbox is not None or chosen is not None,
        )
        api = wiring.build_api(api_service, master_key, testnet=args.testnet)
        site = build_site(api=api, portal=portal)
        config = server.config(
            site,
            host=args.host,
            port=args.port,
            forwarded_allow_ips=args.forwarded_allow_ips,
        )
        where = f"http://{args.host}:{args.port}"
        app.err.say(f"serving the API on {where}/api/v2 and the portal on {where}/portal/")
        if mailbox is not None:
            app.err.say(f"development mode: the mailbox is at {where}/portal/dev/mailbox")
            if not loopback:
                app.err.say(
                    f"warning: {args.host} is not a loopback address: anyone who reaches this "
                    "server can read every account's codes in the mailbox"
                )
        try:
            await uvicorn.Server(config).serve()
        finally:
            await store.aclose()

    asyncio.run(serve())
