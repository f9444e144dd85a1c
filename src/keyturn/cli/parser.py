"""The command line's grammar: every command, every option and its help, in lifecycle order.

One table (:data:`GROUPS`) lists the commands in the order an operator meets them, grouped;
``keyturn --help`` shows it as it is, and each command's parser is built from the same rows.
Help for a rule (a name, a scope, a feature) is written from the core's own constants, so it
cannot drift from what is accepted. A usage error raises :class:`~keyturn.cli.failures.Failure`
instead of exiting, so it is one line (or JSON) like every other failure. Parsing only: nothing
here runs a command.
"""

from __future__ import annotations

import argparse
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Final, NoReturn

from keyturn import wiring
from keyturn.core.lifecycle import ACTION_DOCS, Action
from keyturn.core.policy import Policy

from . import demo, drawing, keys, operating, options, reading, serve
from .failures import EXIT_CODES, usage
from .output import json_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from .app import App


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised as a one-line failure."""

    def error(self, message: str) -> NoReturn:
        """Raise the usage error rather than print usage and exit."""
        raise usage(f"{message} (keyturn {self._command()}--help shows the usage)")

    def _command(self) -> str:
        words = self.prog.split()[1:]
        return "".join(f"{w} " for w in words)


_TTL: Final = int(Policy().code_ttl.total_seconds() // 60)

#: Every command, in the order an operator meets them: (group, [(name, help, options, run)]).
GROUPS: Final[list[tuple[str, list[tuple[str, str, Any, Callable[[App], None]]]]]] = [
    (
        "start",
        [
            (
                "init",
                "create the store at --db, its server key and ring",
                options.nothing,
                operating.cmd_init,
            )
        ],
    ),
    (
        "a key's lifecycle, in order",
        [
            ("create", ACTION_DOCS[Action.CREATE], options.create, keys.cmd_create),
            ("ack", "confirm the secret was saved (I saved it)", options.key_id, keys.cmd_simple),
            (
                "activate",
                f"ACTIVATE: send the owner a code, valid {_TTL} min",
                options.key_id,
                keys.cmd_simple,
            ),
            ("resend", "send a new code in place of the last", options.key_id, keys.cmd_simple),
            ("verify", "enter the code: the key becomes active", options.verify, keys.cmd_verify),
            ("cancel", "close the code dialog without activating", options.key_id, keys.cmd_simple),
            ("disable", "deactivate the key, at once", options.key_id, keys.cmd_simple),
            (
                "enable",
                "activate again (by a code sent to the owner)",
                options.key_id,
                keys.cmd_simple,
            ),
            ("edit", ACTION_DOCS[Action.EDIT], options.edit, keys.cmd_edit),
            (
                "reset",
                "a new secret, shown once; the old one stops working",
                options.key_id,
                keys.cmd_reset,
            ),
            (
                "unlock",
                "clear the lock that too many wrong codes set",
                options.key_id,
                keys.cmd_unlock,
            ),
            ("remove", "remove for good (asks first; --yes)", options.remove, keys.cmd_simple),
        ],
    ),
    (
        "reading",
        [
            ("list", "list keys as a table", options.listing, reading.cmd_list),
            (
                "show",
                "one key with its history and what can be done next",
                options.key_id,
                reading.cmd_show,
            ),
        ],
    ),
    (
        "delivery and secrets",
        [
            (
                "relay",
                "deliver the notifications waiting in the outbox",
                options.relay,
                operating.cmd_relay,
            ),
            (
                "rotate-server-key",
                "seal secrets under a new ring key",
                options.rotate,
                operating.cmd_rotate,
            ),
            (
                "security-key",
                "an account's TOTP key for per-call 2FA",
                options.security_key,
                operating.cmd_security_key,
            ),
        ],
    ),
    (
        "serving and learning",
        [
            ("serve", serve.HELP, serve.add_arguments, serve.cmd_serve),
            ("diagram", "draw the lifecycle", options.diagram, drawing.cmd_diagram),
            ("demo", "the whole story on a throwaway store", options.nothing, demo.cmd_demo),
        ],
    ),
]


def _common(*, top: bool) -> Parser:
    """Options every command takes, before or after its name.

    A subcommand's copy has no defaults (``SUPPRESS``), so it cannot overwrite a value given
    before the command name (``keyturn --dev activate 1``).
    """
    common = Parser(add_help=False)
    g = common.add_argument_group("options every command takes")
    default: Any = None if top else argparse.SUPPRESS
    flag: Any = False if top else argparse.SUPPRESS
    g.add_argument(
        "--db",
        default=default,
        help="the store: a SQLite file or a postgresql:// URL (default: $KEYTURN_DB, else "
        "./keyturn.db); it must exist, except for init and create --init",
    )
    g.add_argument(
        "--json", action="store_true", default=flag, help="answer in JSON, errors included"
    )
    g.add_argument(
        "--dev",
        action="store_true",
        default=flag,
        help="development: show the codes sent on this terminal (and in --json)",
    )
    g.add_argument(
        "--actor", default=default, help="who acts, recorded in history (default: cli:$USER)"
    )
    g.add_argument(
        "--notifier",
        default=default,
        choices=wiring.NOTIFIERS,
        help="how owners are told: smtp (KEYTURN_SMTP_*), log, console (--dev only); default "
        "$KEYTURN_NOTIFIER, else none: messages wait in the outbox for a relay",
    )
    g.add_argument(
        "-v", "--verbose", action="store_true", default=flag, help="log every event to stderr"
    )
    return common


def _overview() -> str:
    width = max(len(name) for _, rows in GROUPS for name, *_ in rows)
    lines = ["Operate trading API keys: create, show the secret once, activate by code."]
    for title, rows in GROUPS:
        lines.append(f"\n{title}:")
        lines += [f"  {name:<{width}}  {help_}" for name, help_, *_ in rows]
    return "\n".join(lines)


def build(*, json: bool = False) -> Parser:
    """The ``keyturn`` parser, with every command (``json``: ``--version`` answers in JSON)."""
    common = _common(top=False)
    codes = "\n".join(f"  {c:>3}  {w}" for c, w in EXIT_CODES.items())
    p = Parser(
        prog="keyturn",
        usage="keyturn [OPTIONS] COMMAND [ARGUMENTS]",
        description=_overview(),
        epilog=f"exit codes:\n{codes}\n\nkeyturn COMMAND --help says more about each command.",
        parents=[_common(top=True)],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    shown = version("keyturn")
    text = json_text({"version": shown}) if json else f"keyturn {shown}"
    p.add_argument("--version", action="version", version=text)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS)
    for _, rows in GROUPS:
        for name, help_, declare, run in rows:
            s = sub.add_parser(name, prog=f"keyturn {name}", description=help_, parents=[common])
            declare(s)
            s.set_defaults(run=run, creates_store=name == "init")
    return p
