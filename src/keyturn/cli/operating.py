"""The commands that run the store, not one key: init, relay, rotate-server-key, security-key.

``init`` is the one command (with ``create --init``) that makes a new store, its server key and
its sealing ring. ``relay`` delivers what waits in the outbox and exits non-zero when a
delivery failed, so cron and monitoring see it. ``rotate-server-key`` re-seals secrets under a
new ring key, and asks before ``--finish`` drops old ones. ``security-key`` enrolls an
account's authenticator. The work is the service's and :mod:`keyturn.adapters.seal_keys`'s.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING, Any

from keyturn import wiring
from keyturn.adapters import seal_keys
from keyturn.adapters.conninfo import is_postgres
from keyturn.core.errors import InvalidInput
from keyturn.crypto.sealing import key_id_of

from . import stores
from .failures import DELIVERY_FAILED, Failure

if TYPE_CHECKING:
    from keyturn.core.records import SecurityKey
    from keyturn.service._sync.relay import RelayReport

    from .app import App


def cmd_init(app: App) -> None:
    """Create the store at ``--db`` (with its server key and ring), or check the one there."""
    fields, text = store_opened(app)
    text += '\nnext: keyturn create --owner OWNER --name NAME --scope "account:read"'
    app.emit(fields, text)


def store_opened(app: App) -> tuple[dict[str, Any], str]:
    """Open the store (creating it, its server key and ring) and say what there is."""
    service = app.service  # opening creates the store, the key file and the ring
    existed = not app.created_store
    where = stores.where(app.target)
    local = not is_postgres(app.target)
    key = "$KEYTURN_SERVER_KEY" if os.environ.get("KEYTURN_SERVER_KEY") else None
    if key is None and local:
        key = f"{app.target}.key"
    ring = seal_keys.ring_path(app.target) if not os.environ.get(seal_keys.ENV_KEYS) else None
    ring_text = str(ring) if ring is not None and ring.exists() else None
    if service.secret_box is not None and ring_text is None:
        ring_text = f"${seal_keys.ENV_KEYS}"
    if existed:
        text = f"the key store at {where} exists already; its schema is up to date"
    else:
        text = f"created the key store at {where}"
        kept = [f for f in (key, ring_text) if f is not None and not f.startswith("$")]
        if kept:
            text += (
                f"\nits server key and sealing ring: {', '.join(kept)} (mode 0600): back them "
                "up, and keep them out of database backups"
            )
    return {"db": where, "created": not existed, "server_key": key, "ring": ring_text}, text


def cmd_relay(app: App) -> None:
    """Deliver what waits; only through a notifier that reaches owners (or the --dev console)."""
    if app.notifier() is None:
        raise InvalidInput("notifier", f"the relay needs one to deliver: {wiring.NOTIFIER_HINT}")
    relay = app.service.relay
    if app.args.once:
        report = relay.run_once()
        counts = _counts(report)
        if report.failed:
            raise _failed(app, report.failed, counts)
        app.emit(counts, ", ".join(f"{k} {v}" for k, v in counts.items()))
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    app.err.say("relaying notifications; Ctrl-C to stop")
    failed = 0
    while not stop.is_set():
        report = relay.run_once()
        if report.failed:
            failed += report.failed
            if not app.args.keep_going:
                raise _failed(app, failed, _counts(report))
            app.err.say(_failed(app, report.failed, {}).message)
        if report.handled == 0:
            stop.wait(app.args.interval)
    if failed:
        raise _failed(app, failed, {})


def _counts(report: RelayReport) -> dict[str, int]:
    return {"delivered": report.delivered, "failed": report.failed, "expired": report.expired}


def _failed(app: App, failed: int, counts: dict[str, int]) -> Failure:
    """A relay's failed deliveries: how many, the errors the notifier raised, what to check."""
    seen = sorted(set(app.delivery_errors))
    why = f" ({', '.join(seen)})" if seen else ""
    return Failure(
        "delivery_failed",
        f"{failed} delivery(ies) failed{why}; they wait in the outbox and are retried with "
        "backoff: check the notifier's settings (KEYTURN_SMTP_*), then run keyturn relay again",
        DELIVERY_FAILED,
        {**counts, "errors": seen},
    )


def cmd_rotate(app: App) -> None:
    """A new sealing key seals from now on; every sealed secret is re-sealed under it.

    ``--finish`` adds no key: it re-seals what is left (keys created by servers still running
    with the old ring) and then drops ring keys no record uses. It asks first.
    """
    target = app.target
    path = seal_keys.ring_path(target)
    in_env = bool(os.environ.get(seal_keys.ENV_KEYS))
    if not app.args.finish:
        if in_env or path is None:
            raise InvalidInput(
                seal_keys.ENV_KEYS,
                "the ring is configured in the environment: put a new id:key first, restart "
                "every server, then run rotate-server-key --finish",
            )
        stores.check(target, create=False)
        if seal_keys.secret_box(target) is not None:
            seal_keys.add_key(path)
    service = app.service
    box = service.secret_box
    if box is None:
        raise InvalidInput(seal_keys.ENV_MODE, "secrets are kept hashed only: nothing to rotate")
    if app.args.finish:
        app.confirm(
            "finish the rotation: ring keys no record uses are dropped, so every server must "
            "have restarted since rotate-server-key"
        )
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
        text += "\nnext: restart every server, then run keyturn rotate-server-key --finish"
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


def cmd_security_key(app: App) -> None:
    """Enroll, show or remove an account's TOTP security key (Deribit's per-call 2FA)."""
    a, service, paint = app.args, app.service, app.out
    if a.do == "enroll":
        enrolled = service.enroll_security_key(a.owner, name=a.name, issuer=a.issuer)
        view = _security_key_view(enrolled.key)
        text = "\n".join(
            (
                f"security key {a.name!r} enrolled for {a.owner}",
                paint("\n  secret (shown this once):", "bold"),
                f"\n      {paint(enrolled.secret, 'bold', 'reverse')}",
                f"\n  uri: {enrolled.uri}\n",
                (
                    "Add it to the authenticator app now (scan the URI as a QR code, or type "
                    "the secret): it cannot be shown again."
                ),
            )
        )
        app.emit({**view, "secret": enrolled.secret, "uri": enrolled.uri}, text)
    elif a.do == "show":
        key = service.security_key(a.owner)
        if key is None:
            text = f"{a.owner} has no security key (keyturn security-key enroll {a.owner})"
            app.emit({"owner": a.owner, "security_key": None}, text)
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
