"""The commands that read keys and change nothing: ``list`` and ``show``.

``list`` is a table of keys (every owner's: the command is an operator's tool); ``show`` is one
key with its pending code's times, its history and what can be done with it next. Times are
UTC, and say so. Neither ever prints a secret, a digest or a code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyturn.web import views

from .keys import say_next
from .output import clock, duration, key_fields, table

if TYPE_CHECKING:
    from .app import App


def cmd_list(app: App) -> None:
    """A table of keys, live ones unless ``--all``."""
    keys = app.service.store.list_keys(app.args.owner)
    if not app.args.all:
        keys = [k for k in keys if k.live]
    now, policy = app.clock.now(), app.service.policy
    if app.args.json:
        app.emit([views.key_view(k, now=now, policy=policy) for k in keys], "")
        return
    if not keys:
        hint = "" if app.args.all else "; removed keys are listed with --all"
        app.out.say(f"no keys{hint} (keyturn create makes one)")
        return
    rows = [["ID", "NAME", "STATE", "OWNER", "CLIENT_ID", "SCOPE", "UPDATED (UTC)"]]
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
    app.out.say(table(rows, app.out))


def cmd_show(app: App) -> None:
    """One key: its fields, its code's times, its history, and what can be done next."""
    key_id = app.args.id
    key = app.service.get(key_id, owner=app.owner_of(key_id))
    history = app.service.store.history(key.id)
    now, policy = app.clock.now(), app.service.policy
    if app.args.json:
        view = views.key_view(key, now=now, policy=policy)
        app.emit({**view, "history": [views.history_view(h) for h in history]}, "")
        return
    out = app.out
    out.say(key_fields(key, out))
    code = views.code_view(key, now=now, policy=policy)
    if code is not None and key.pending is not None and not code["expired"]:
        left, until = duration(code["expires_in"]), clock(key.pending.expires_at, now)
        out.say(
            f"{'code':>16}: valid {left} more (until {until}), {code['attempts_left']} tries left"
        )
    elif code is not None:
        out.say(f"{'code':>16}: expired")
    rows = [["V", "AT (UTC)", "EVENT", "FROM", "TO", "ACTOR", "DETAIL"]]
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
    out.say("\nhistory:")
    out.say(table(rows, out))
    say_next(app, key)
