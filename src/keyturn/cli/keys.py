"""The commands that move a key through its lifecycle, from ``create`` to ``remove``.

Each reads the key first (to act as its owner, and to say afterwards what changed), calls one
service method, and answers: what happened, the key's new state, and what to do next
(:mod:`keyturn.cli.guidance`). ``create`` and ``reset`` show the secret once, set apart;
``remove`` asks first. The lifecycle's rules are the service's: nothing is decided here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from keyturn.core.errors import InvalidInput
from keyturn.core.lifecycle import Action, State
from keyturn.service import UNSET
from keyturn.web import views

from .guidance import DONE, code_outcome, edit_outcome, next_steps
from .operating import store_opened
from .output import key_fields, secret_block

if TYPE_CHECKING:
    from keyturn.core.records import ApiKey, IssuedSecret

    from .app import App

#: The commands that take only a key id, and the action each runs (its service method's name).
SIMPLE: Final = {
    "ack": Action.ACKNOWLEDGE_SECRET,
    "activate": Action.REQUEST_ACTIVATION,
    "resend": Action.RESEND_CODE,
    "cancel": Action.CANCEL_ACTIVATION,
    "disable": Action.DISABLE,
    "enable": Action.ENABLE,
    "remove": Action.REMOVE,
}
_SENDS_CODES: Final = (Action.REQUEST_ACTIVATION, Action.ENABLE, Action.RESEND_CODE)


def say_next(app: App, key: ApiKey, *, queued: bool = False) -> None:
    """The ``next:`` lines for ``key`` as it is now (first the relay, if its code waits)."""
    steps = next_steps(key, app.clock.now(), app.service.policy)
    if queued:
        steps.insert(0, f"keyturn relay --once --notifier smtp delivers the code to {key.owner}")
    paint = app.out
    for n, step in enumerate(steps):
        app.out.say(f"{paint('next:', 'bold') if n == 0 else '     '} {paint(step, 'cyan')}")


def report(app: App, action: Action, before: ApiKey | None, after: ApiKey) -> None:
    """Answer an action: what happened and the key's state, or the key as JSON."""
    app.note_outbox()
    now, policy = app.clock.now(), app.service.policy
    if app.args.json:
        app.emit(views.key_view(after, now=now, policy=policy), "")
        return
    if action in _SENDS_CODES and after.state is State.PENDING_2FA:
        queued = not app.service.deliver_inline
        what = code_outcome(before, after, now, queued=queued)
        if action is Action.ENABLE:
            what = f"enabling goes through a code: {what}"
    elif action is Action.EDIT and before is not None:
        what = edit_outcome(before, after)
    elif action is Action.ENABLE:
        what = "enabled"
    else:
        what = DONE.get(action, action.value)
    app.out.say(f"key {after.id}: {what} (now {app.out.state(after.state)})")
    say_next(app, after, queued="waits in the outbox" in what)


def show_issued(app: App, issued: IssuedSecret, headline: str) -> None:
    """Answer a create or a reset: the key, its secret set apart (shown this once), next steps."""
    app.note_outbox()
    now, policy = app.clock.now(), app.service.policy
    if app.args.json:
        app.emit(views.issued_view(issued, now=now, policy=policy), "")
        return
    key, paint = issued.key, app.out
    paint.say(f"{headline} (now {paint.state(key.state)})")
    paint.say(key_fields(key, paint))
    if issued.client_secret is None:
        paint.say("\nThis key signs with its public key: it has no secret.")
    else:
        paint.say(secret_block("client_secret (shown this once):", issued.client_secret, paint))
        paint.say(paint("Save this secret now: it cannot be shown again.", "bold", "yellow"))
    say_next(app, key)


def cmd_create(app: App) -> None:
    """A new key; its secret is shown this once."""
    a = app.args
    pem = Path(a.public_key_file).read_text() if a.public_key_file else None
    if a.init:
        _, opened = store_opened(app)
        if app.created_store:  # say what --init made, as init does
            app.err.say(opened)
    issued = app.service.create(
        owner=a.owner,
        name=a.name,
        max_scope=a.scope,
        ip_whitelist=" ".join(a.ip or []),
        enabled_features=a.feature or [],
        public_key=pem,
        actor=app.actor,
    )
    key = issued.key
    show_issued(app, issued, f"key {key.id} {key.name!r} created for {key.owner}")


def cmd_simple(app: App) -> None:
    """ack, activate, resend, cancel, disable, enable, remove: one action on one key."""
    action = SIMPLE[app.args.command]
    key_id = app.args.id
    before = app.read_key(key_id)
    owner = app.owner_of(key_id)
    if action is Action.REMOVE and before is not None and before.state is not State.REMOVED:
        app.confirm(
            f"remove key {key_id} ({before.name!r} of {before.owner}) for good: no one can use "
            "or restore it, its history stays"
        )
    after = getattr(app.service, action.value)(key_id, owner=owner, actor=app.actor)
    report(app, action, before, after)


def cmd_verify(app: App) -> None:
    """Enter the code sent for a key."""
    key_id = app.args.id
    before = app.read_key(key_id)
    after = app.service.verify_code(
        key_id, app.args.code, owner=app.owner_of(key_id), actor=app.actor
    )
    report(app, Action.VERIFY_CODE, before, after)


def cmd_edit(app: App) -> None:
    """Change a key's name, scope, IP whitelist or features."""
    a = app.args
    if a.clear_ip and a.ip:
        raise InvalidInput("ip_whitelist", "give --ip or --clear-ip, not both")
    whitelist: object = UNSET
    if a.ip is not None:
        whitelist = " ".join(a.ip)
    elif a.clear_ip:
        whitelist = ""
    features: object = UNSET
    if a.feature is not None or a.clear_features:
        features = [] if a.clear_features else a.feature
    before = app.read_key(a.id)
    after = app.service.edit(
        a.id,
        owner=app.owner_of(a.id),
        actor=app.actor,
        name=a.name if a.name is not None else UNSET,
        max_scope=a.scope if a.scope is not None else UNSET,
        ip_whitelist=whitelist,
        enabled_features=features,
    )
    report(app, Action.EDIT, before, after)


def cmd_reset(app: App) -> None:
    """A new secret, shown this once; the old one stops working at once."""
    key_id = app.args.id
    issued = app.service.reset_secret(key_id, owner=app.owner_of(key_id), actor=app.actor)
    show_issued(app, issued, f"key {key_id}: {DONE[Action.RESET_SECRET]}")


def cmd_unlock(app: App) -> None:
    """Clear the lock that too many wrong codes put on a key's activation."""
    key_id = app.args.id
    before = app.read_key(key_id)
    after = app.service.unlock_activation(key_id, actor=app.actor)
    report(app, Action.UNLOCK_ACTIVATION, before, after)
