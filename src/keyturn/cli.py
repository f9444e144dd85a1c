"""The ``keyturn`` command: operate a key store from a terminal or a script.

Parses arguments, wires a service through :mod:`keyturn.wiring`, calls it, and prints the answer
as text or ``--json``. Errors are one line on stderr, never a traceback, with an exit code that
says what kind of failure it was (:data:`EXIT_CODES`). No lifecycle rule lives here.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import io
import json
import logging
import os
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import structlog

from keyturn import diagrams, wiring
from keyturn.adapters import seal_keys
from keyturn.adapters.clocks import SystemClock
from keyturn.adapters.notifiers import UnconfiguredNotifier
from keyturn.core.errors import InvalidInput, KeyNotFound, KeyturnError, StoreError
from keyturn.core.lifecycle import ACTION_DOCS, Action, State
from keyturn.core.policy import Policy
from keyturn.crypto.sealing import key_id_of
from keyturn.service import UNSET

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from keyturn.core.records import ApiKey, HistoryEntry, IssuedSecret, SecurityKey
    from keyturn.ports import Notifier
    from keyturn.service import KeyService

OK: Final = 0
REFUSED: Final = 1
BAD_INPUT: Final = 2
INFRASTRUCTURE: Final = 3

#: Exit codes, as the README documents them.
EXIT_CODES: Final = {
    OK: "success",
    REFUSED: "refused by the lifecycle (wrong state, wrong or expired code, quota, unknown key)",
    BAD_INPUT: "bad input or usage",
    INFRASTRUCTURE: "the store, the notifier or a file could not be used",
}


def key_view(key: ApiKey, now: datetime | None = None) -> dict[str, Any]:
    """A key as plain data for ``--json``: no secret, no digest, no code."""
    view: dict[str, Any] = {
        "id": key.id,
        "owner": key.owner,
        "name": key.name,
        "state": key.state.value,
        "enabled": key.enabled,
        "client_id": key.client_id,
        "fingerprint": key.fingerprint,
        "max_scope": str(key.max_scope),
        "ip_whitelist": [str(n) for n in key.ip_whitelist],
        "enabled_features": list(key.enabled_features),
        "version": key.version,
        "created_at": key.created_at.isoformat(),
        "updated_at": key.updated_at.isoformat(),
    }
    if key.pending is not None:
        p = key.pending
        view["code"] = {
            "expires_at": p.expires_at.isoformat(),
            "resend_at": p.resend_at.isoformat(),
            "wrong_attempts": p.attempts,
        }
        if now is not None:
            view["code"]["expires_in_s"] = max(0.0, (p.expires_at - now).total_seconds())
            view["code"]["resend_in_s"] = max(0.0, (p.resend_at - now).total_seconds())
    return view


def _history_view(h: HistoryEntry) -> dict[str, Any]:
    return {
        "version": h.version,
        "at": h.at.isoformat(),
        "action": h.action.value,
        "event": h.event,
        "from_state": h.from_state.value if h.from_state else None,
        "to_state": h.to_state.value,
        "actor": h.actor,
        "detail": h.detail,
    }


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _print_key(key: ApiKey, now: datetime) -> None:
    v = key_view(key, now)
    for field in ("id", "name", "owner", "state", "client_id", "fingerprint", "max_scope"):
        print(f"{field:>16}: {v[field]}")
    print(f"{'ip_whitelist':>16}: {' '.join(v['ip_whitelist']) or '(any address)'}")
    print(f"{'enabled_features':>16}: {' '.join(v['enabled_features']) or '-'}")
    if "code" in v:
        left, resend = v["code"]["expires_in_s"], v["code"]["resend_in_s"]
        print(f"{'code':>16}: valid {left:.0f} s more, resend in {resend:.0f} s")


class _App:
    """One invocation: the parsed arguments and the service they wire."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.clock = SystemClock()
        self._service: KeyService | None = None

    @property
    def service(self) -> KeyService:
        if self._service is None:
            notifier = _notifier(self.args)
            self._service = wiring.build_service(
                store=wiring.open_store(self.args.db),
                notifier=notifier or UnconfiguredNotifier(),
                master_key=wiring.server_key(self.args.db),
                clock=self.clock,
                secret_box=seal_keys.secret_box(wiring.database(self.args.db)),
            )
            self._service.deliver_inline = notifier is not None
        return self._service

    def note_outbox(self) -> None:
        """Without a notifier nothing was sent: say what waits, and how to deliver it."""
        store = self.service.store
        if self.service.deliver_inline or not isinstance(store, _Backlog):
            return
        waiting = store.pending_notifications()
        if waiting:
            print(
                f"{waiting} notification(s) wait in the outbox, none sent: no notifier is "
                "configured (deliver them with keyturn relay --notifier smtp, or set "
                "KEYTURN_NOTIFIER; --dev shows codes here)",
                file=sys.stderr,
            )

    def close(self) -> None:
        if self._service is not None:
            self._service.store.close()

    @property
    def actor(self) -> str:
        return self.args.actor or f"cli:{getpass.getuser()}"

    def owner_of(self, key_id: int) -> str:
        """The owner to act as: ``--owner``, else the key's own (the CLI is an operator tool)."""
        if self.args.owner:
            return str(self.args.owner)
        key = self.service.store.get(key_id)
        if key is None:
            raise KeyNotFound(key_id)
        return key.owner

    def emit(self, data: Any, text: str) -> None:  # noqa: ANN401
        print(json.dumps(data, indent=2) if self.args.json else text)

    def emit_key(self, key: ApiKey, verb: str) -> None:
        self.note_outbox()
        now = self.clock.now()
        if self.args.json:
            self.emit(key_view(key, now), "")
            return
        print(f"key {key.id} {verb}: now {key.state.value}")
        _print_key(key, now)

    def emit_secret(self, issued: IssuedSecret, verb: str) -> None:
        self.note_outbox()
        key = issued.key
        if self.args.json:
            self.emit({**key_view(key), "client_secret": issued.client_secret}, "")
            return
        print(f"key {key.id} {verb}: now {key.state.value}")
        _print_key(key, self.clock.now())
        if issued.client_secret is not None:
            print(f"\n   client_secret: {issued.client_secret}")
            print(
                "\nSave this secret now: it is shown this once and cannot be shown again."
                f"\nThen confirm with: keyturn ack {key.id}",
            )


@runtime_checkable
class _Backlog(Protocol):
    """A store that can count what waits in its outbox (every store keyturn ships)."""

    def pending_notifications(self) -> int:
        """How many notifications wait for delivery."""
        ...


def _notifier(args: argparse.Namespace) -> Notifier | None:
    """The notifier to deliver through, or ``None`` when none is configured and not ``--dev``.

    The console shows codes only to the person at this terminal, so it is used in ``--dev``
    only. Without a notifier, messages stay in the outbox for ``keyturn relay`` with a real one.
    """
    if args.dev or wiring.configured_notifier(args.notifier):
        return wiring.notifier_from_env(args.notifier, dev=bool(args.dev))
    return None


# --- commands --------------------------------------------------------------------------------


def _cmd_create(app: _App) -> None:
    a = app.args
    pem = Path(a.public_key_file).read_text() if a.public_key_file else None
    issued = app.service.create(
        owner=a.owner,
        name=a.name,
        max_scope=a.scope,
        ip_whitelist=" ".join(a.ip or []),
        enabled_features=a.feature or [],
        public_key=pem,
        actor=a.actor or a.owner,
    )
    app.emit_secret(issued, "created")


_SIMPLE: Final = {
    "ack": (Action.ACKNOWLEDGE_SECRET, "acknowledge_secret", "secret acknowledged"),
    "activate": (Action.REQUEST_ACTIVATION, "request_activation", "activation requested"),
    "resend": (Action.RESEND_CODE, "resend_code", "code resent"),
    "cancel": (Action.CANCEL_ACTIVATION, "cancel_activation", "activation cancelled"),
    "disable": (Action.DISABLE, "disable", "disabled"),
    "enable": (Action.ENABLE, "enable", "enabled"),
    "remove": (Action.REMOVE, "remove", "removed"),
}


def _cmd_simple(app: _App) -> None:
    _, method, verb = _SIMPLE[app.args.command]
    key_id = app.args.id
    key = getattr(app.service, method)(key_id, owner=app.owner_of(key_id), actor=app.actor)
    app.emit_key(key, verb)


def _cmd_verify(app: _App) -> None:
    key_id = app.args.id
    key = app.service.verify_code(
        key_id, app.args.code, owner=app.owner_of(key_id), actor=app.actor
    )
    app.emit_key(key, "verified")


def _cmd_edit(app: _App) -> None:
    a = app.args
    if a.clear_ip and a.ip:
        raise InvalidInput("ip_whitelist", "give --ip or --clear-ip, not both")
    whitelist: object = UNSET
    if a.ip is not None:
        whitelist = " ".join(a.ip)
    elif a.clear_ip:
        whitelist = ""
    key = app.service.edit(
        a.id,
        owner=app.owner_of(a.id),
        actor=app.actor,
        name=a.name if a.name is not None else UNSET,
        max_scope=a.scope if a.scope is not None else UNSET,
        ip_whitelist=whitelist,
        enabled_features=a.feature if a.feature is not None else UNSET,
    )
    app.emit_key(key, "edited")


def _cmd_reset(app: _App) -> None:
    key_id = app.args.id
    issued = app.service.reset_secret(key_id, owner=app.owner_of(key_id), actor=app.actor)
    app.emit_secret(issued, "given a new secret")


def _cmd_list(app: _App) -> None:
    keys = app.service.store.list_keys(app.args.owner)
    if not app.args.all:
        keys = [k for k in keys if k.live]
    if app.args.json:
        app.emit([key_view(k) for k in keys], "")
        return
    if not keys:
        print("no keys")
        return
    rows = [["ID", "NAME", "STATE", "OWNER", "CLIENT_ID", "SCOPE", "UPDATED"]]
    rows += [
        [
            str(k.id),
            k.name,
            k.state.value,
            k.owner,
            k.client_id,
            str(k.max_scope),
            f"{k.updated_at:%Y-%m-%d %H:%M:%S}",
        ]
        for k in keys
    ]
    print(_table(rows))


def _cmd_show(app: _App) -> None:
    key_id = app.args.id
    key = app.service.get(key_id, owner=app.owner_of(key_id))
    history = app.service.store.history(key.id)
    if app.args.json:
        app.emit(
            {**key_view(key, app.clock.now()), "history": [_history_view(h) for h in history]}, ""
        )
        return
    _print_key(key, app.clock.now())
    print("\nhistory:")
    rows = [["V", "AT", "EVENT", "FROM", "TO", "ACTOR", "DETAIL"]]
    rows += [
        [
            str(h.version),
            f"{h.at:%Y-%m-%d %H:%M:%S}",
            h.event,
            h.from_state.value if h.from_state else "-",
            h.to_state.value,
            h.actor,
            h.detail,
        ]
        for h in history
    ]
    print(_table(rows))


def _cmd_relay(app: _App) -> None:
    """Deliver what waits; only through a notifier that reaches owners (or the --dev console)."""
    if _notifier(app.args) is None:
        raise InvalidInput("notifier", f"the relay needs one to deliver: {wiring.NOTIFIER_HINT}")
    relay = app.service.relay
    if app.args.once:
        report = relay.run_once()
        app.emit(
            {"delivered": report.delivered, "failed": report.failed, "expired": report.expired},
            f"delivered {report.delivered}, failed {report.failed}, expired {report.expired}",
        )
        return
    print("relaying notifications; Ctrl-C to stop", file=sys.stderr)
    relay.run_forever(interval=app.args.interval)


#: The policies ``keyturn diagram --policy`` draws under: the library's default, or the API's.
_DIAGRAM_POLICIES: Final = {"default": Policy(), "api": wiring.API_POLICY}


def _cmd_diagram(app: _App) -> None:
    a = app.args
    if a.update is not None:
        folder = Path(a.update)
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in diagrams.render_all().items():
            if isinstance(content, bytes):
                (folder / name).write_bytes(content)
            else:
                (folder / name).write_text(content)
            print(f"wrote {folder / name}", file=sys.stderr)
        return
    policy = _DIAGRAM_POLICIES[a.policy]
    highlight: State | None = None
    note = ""
    if a.key is not None:
        key = app.service.get(a.key, owner=app.owner_of(a.key))
        highlight = key.state
        if key.pending is not None:
            now = app.clock.now()
            left = max(0, int((key.pending.expires_at - now).total_seconds()))
            resend = max(0, int((key.pending.resend_at - now).total_seconds()))
            note = f"code valid {left} s more, resend in {resend} s"
    if a.format == "mermaid":
        out = diagrams.mermaid(policy, highlight=highlight, note=note)
    else:
        out = diagrams.dot(policy, highlight=highlight, note=note)
        if a.format == "svg":
            out = diagrams.svg(out)
    if a.output:
        Path(a.output).write_text(out)
        print(f"wrote {a.output}", file=sys.stderr)
    elif app.args.json:
        app.emit({"format": a.format, "key": a.key, "policy": a.policy, "diagram": out}, "")
    else:
        sys.stdout.write(out)


def _cmd_serve(app: _App) -> None:
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
    master_key = wiring.server_key(db)
    secret_box = seal_keys.secret_box(wiring.database(db))
    chosen = _notifier(args)
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
            print(
                "no notifier is configured: notifications wait in the outbox for "
                "keyturn relay --notifier smtp (or set KEYTURN_NOTIFIER); the portal's sign-in "
                "cannot send its codes, so nobody can sign in to it (it says so)",
                file=sys.stderr,
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
        print(
            f"serving the API on {where}/api/v2 and the portal on {where}/portal/", file=sys.stderr
        )
        if mailbox is not None:
            print(
                f"development mode: the mailbox is at {where}/portal/dev/mailbox", file=sys.stderr
            )
            if not loopback:
                print(
                    f"warning: {args.host} is not a loopback address: anyone who reaches this "
                    "server can read every account's codes in the mailbox",
                    file=sys.stderr,
                )
        try:
            await uvicorn.Server(config).serve()
        finally:
            await store.aclose()

    asyncio.run(serve())


def _cmd_rotate(app: _App) -> None:
    """A new sealing key seals from now on; every sealed secret is re-sealed under it.

    ``--finish`` adds no key: it re-seals what is left (keys created by servers still running
    with the old ring) and then drops ring keys no record uses.
    """
    target = wiring.database(app.args.db)
    path = seal_keys.ring_path(target)
    in_env = bool(os.environ.get(seal_keys.ENV_KEYS))
    if not app.args.finish:
        if in_env or path is None:
            raise InvalidInput(
                seal_keys.ENV_KEYS,
                "the ring is configured in the environment: put a new id:key first, restart "
                "every server, then run rotate-server-key --finish",
            )
        if seal_keys.secret_box(target) is not None:
            seal_keys.add_key(path)
    service = app.service
    box = service.secret_box
    if box is None:
        raise InvalidInput(seal_keys.ENV_MODE, "secrets are kept hashed only: nothing to rotate")
    done, left = service.reseal_secrets()
    in_use = {key_id_of(k.sealed_secret) for k in service.store.list_keys() if k.sealed_secret}
    in_use |= {key_id_of(k.sealed_secret) for k in service.store.list_security_keys()}
    dropped: list[str] = []
    if app.args.finish and left == 0 and path is not None and not in_env:
        dropped = seal_keys.prune(path, in_use)
    text = f"sealing key now {box.current}: re-sealed {done}, left under older keys {left}"
    if dropped:
        text += f"; dropped ring keys {', '.join(dropped)}"
    elif not app.args.finish:
        text += "; restart every server, then run: keyturn rotate-server-key --finish"
    app.emit(
        {
            "current": box.current,
            "resealed": done,
            "left": left,
            "in_use": sorted(in_use),
            "dropped": dropped,
        },
        text,
    )


def _cmd_security_key(app: _App) -> None:
    """Enroll, show or remove an account's TOTP security key (Deribit's per-call 2FA)."""
    a, service = app.args, app.service
    if a.do == "enroll":
        enrolled = service.enroll_security_key(a.owner, name=a.name, issuer=a.issuer)
        view = _security_key_view(enrolled.key)
        app.emit(
            {**view, "secret": enrolled.secret, "uri": enrolled.uri},
            f"security key {a.name!r} enrolled for {a.owner}\n\n   secret: {enrolled.secret}"
            f"\n   uri:    {enrolled.uri}\n\nAdd it to the authenticator app now (scan the URI "
            "as a QR code, or type the secret): it is shown this once.",
        )
    elif a.do == "show":
        key = service.security_key(a.owner)
        if key is None:
            app.emit({"owner": a.owner, "security_key": None}, f"{a.owner} has no security key")
            return
        view = _security_key_view(key)
        app.emit(view, "\n".join(f"{k:>11}: {v}" for k, v in view.items()))
    else:
        removed = service.remove_security_key(a.owner)
        text = "removed" if removed else "none to remove"
        app.emit({"owner": a.owner, "removed": removed}, f"security key of {a.owner}: {text}")


def _security_key_view(key: SecurityKey) -> dict[str, Any]:
    return {
        "owner": key.owner,
        "name": key.name,
        "type": key.kind,
        "enrolled": key.created_at.isoformat(),
        "failures": key.failures,
    }


def _cmd_demo(app: _App) -> None:
    from keyturn.demo import run_demo  # noqa: PLC0415

    if not app.args.json:
        run_demo(sys.stdout)
        return
    transcript = io.StringIO()
    run_demo(transcript)
    app.emit({"transcript": transcript.getvalue().splitlines()}, "")


# --- parsing ---------------------------------------------------------------------------------


def _common(*, top: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after its name.

    A subcommand's copy has no defaults (``SUPPRESS``), so it cannot overwrite a value given
    before the command name (``keyturn --dev activate 1``).
    """
    common = argparse.ArgumentParser(add_help=False)
    default: Any = None if top else argparse.SUPPRESS
    flag: Any = False if top else argparse.SUPPRESS
    common.add_argument(
        "--db",
        default=default,
        help="SQLite file or postgresql:// URL (default: $KEYTURN_DB, else ./keyturn.db)",
    )
    common.add_argument("--json", action="store_true", default=flag, help="print JSON")
    common.add_argument(
        "--dev", action="store_true", default=flag, help="development: show codes sent"
    )
    common.add_argument(
        "--actor", default=default, help="who acts, recorded in history (default: cli:$USER)"
    )
    common.add_argument(
        "--notifier",
        default=default,
        choices=wiring.NOTIFIERS,
        help="how owners are told: smtp (KEYTURN_SMTP_*), log, console (--dev only); default "
        "$KEYTURN_NOTIFIER, else none: messages wait in the outbox for a relay",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", default=flag, help="log every event to stderr"
    )
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common(top=False)
    p = argparse.ArgumentParser(
        prog="keyturn",
        description="Operate trading API keys: create, show the secret once, activate by code.",
        epilog="exit codes: " + "; ".join(f"{c} {w}" for c, w in EXIT_CODES.items()),
        parents=[_common(top=True)],
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, parents=[common])

    c = add("create", ACTION_DOCS[Action.CREATE])
    c.add_argument("--owner", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--scope", required=True, help='e.g. "account:read trade:read_write"')
    c.add_argument("--ip", action="append", help="whitelisted address or CIDR range (repeatable)")
    c.add_argument("--feature", action="append", help="enabled feature (repeatable)")
    c.add_argument("--public-key-file", help="PEM public key: the key signs, it has no secret")
    c.set_defaults(run=_cmd_create)
    for name, (action, _, _) in _SIMPLE.items():
        s = add(name, ACTION_DOCS[action])
        s.add_argument("id", type=int)
        s.add_argument("--owner", help="act as this owner (default: the key's owner)")
        s.set_defaults(run=_cmd_simple)
    v = add("verify", ACTION_DOCS[Action.VERIFY_CODE])
    v.add_argument("id", type=int)
    v.add_argument("code")
    v.add_argument("--owner")
    v.set_defaults(run=_cmd_verify)
    e = add("edit", ACTION_DOCS[Action.EDIT])
    e.add_argument("id", type=int)
    e.add_argument("--owner")
    e.add_argument("--name")
    e.add_argument("--scope")
    e.add_argument("--ip", action="append")
    e.add_argument("--clear-ip", action="store_true", help="allow any address")
    e.add_argument("--feature", action="append")
    e.set_defaults(run=_cmd_edit)
    r = add("reset", ACTION_DOCS[Action.RESET_SECRET])
    r.add_argument("id", type=int)
    r.add_argument("--owner")
    r.set_defaults(run=_cmd_reset)
    ls = add("list", "list keys as a table")
    ls.add_argument("--owner")
    ls.add_argument("--all", action="store_true", help="include removed keys")
    ls.set_defaults(run=_cmd_list)
    sh = add("show", "one key with its history")
    sh.add_argument("id", type=int)
    sh.add_argument("--owner")
    sh.set_defaults(run=_cmd_show)
    rl = add("relay", "deliver pending notifications")
    rl.add_argument("--once", action="store_true", help="one pass, then exit")
    rl.add_argument("--interval", type=float, default=1.0, help="seconds between idle passes")
    rl.set_defaults(run=_cmd_relay)
    d = add("diagram", "draw the lifecycle")
    d.add_argument("--format", choices=["mermaid", "dot", "svg"], default="mermaid")
    d.add_argument(
        "--policy",
        choices=list(_DIAGRAM_POLICIES),
        default="default",
        help="draw the edges a policy decides (enable, edit) as under this policy: the "
        "library's default, or the API's (keyturn serve: enable is direct, edits keep a key "
        "active)",
    )
    d.add_argument("--key", type=int, help="highlight this key's state")
    d.add_argument("--owner")
    d.add_argument("-o", "--output", help="write to this file")
    d.add_argument(
        "--update",
        metavar="DIR",
        help="regenerate every committed diagram in DIR (Mermaid, DOT, SVG, PNG; default policy)",
    )
    d.set_defaults(run=_cmd_diagram)
    sv = add("serve", "serve the Deribit-compatible API and the portal over HTTP (extra: server)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
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
    sv.set_defaults(run=_cmd_serve)
    rk = add("rotate-server-key", "seal client secrets under a new key; --finish retires old")
    rk.add_argument(
        "--finish",
        action="store_true",
        help="add no key: re-seal what is left, then drop ring keys no record uses",
    )
    rk.set_defaults(run=_cmd_rotate)
    sk = add("security-key", "an account's TOTP security key for per-call 2FA on the API")
    sk.add_argument("do", choices=["enroll", "show", "remove"])
    sk.add_argument("owner")
    sk.add_argument("--name", default="authenticator", help="the key's name (enroll)")
    sk.add_argument("--issuer", default="keyturn", help="shown in the authenticator app (enroll)")
    sk.set_defaults(run=_cmd_security_key)
    dm = add("demo", "walk the whole lifecycle on a throwaway store with a simulated clock")
    dm.set_defaults(run=_cmd_demo)
    return p


def _exit_code(error: Exception) -> int:
    if isinstance(error, InvalidInput):
        return BAD_INPUT
    if isinstance(error, StoreError | diagrams.GraphvizMissingError | OSError | sqlite3.Error):
        return INFRASTRUCTURE
    return REFUSED


def _configure_logging(verbose: bool) -> None:
    """The command is an application, so it (not the library) decides where events go.

    psycopg's pool logs each failed connection attempt; the command reports the outcome itself
    (one line), so those show only with ``-v``.
    """
    logging.getLogger("psycopg").setLevel(logging.WARNING if verbose else logging.CRITICAL)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.INFO if verbose else logging.WARNING
        ),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit code."""
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    app = _App(args)
    try:
        args.run(app)
    except (KeyturnError, diagrams.GraphvizMissingError, OSError, sqlite3.Error) as e:
        message = e.message if isinstance(e, KeyturnError) else str(e)
        if isinstance(e, OSError) and e.strerror:
            message = f"{e.strerror}: {e.filename}" if e.filename else e.strerror
        print(f"keyturn: {message}", file=sys.stderr)
        return _exit_code(e)
    except KeyboardInterrupt:
        return 130
    finally:
        app.close()
    return OK
