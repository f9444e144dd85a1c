"""One run of the command: its arguments, the service they wire, and how it answers.

:class:`App` opens the store only when a command first needs it (``diagram`` without ``--key``
needs none), and only as :mod:`keyturn.cli.stores` allows; it wires the service through
:mod:`keyturn.wiring`, chooses the notifier (``--dev`` shows codes here and keeps them for the
JSON answer), names the actor (``cli:$USER`` unless ``--actor``), asks before a permanent step,
and prints an answer as text or JSON. No lifecycle rule lives here.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from keyturn import wiring
from keyturn.adapters.clocks import SystemClock
from keyturn.adapters.console import ConsoleNotifier
from keyturn.adapters.notifiers import UnconfiguredNotifier
from keyturn.core import validation
from keyturn.core.errors import KeyNotFound
from keyturn.core.policy import Policy
from keyturn.core.records import NotificationKind

from . import output, stores
from .failures import REFUSED, Context, Failure, usage

if TYPE_CHECKING:
    import argparse

    from keyturn.core.records import ApiKey, Notification
    from keyturn.ports import Notifier
    from keyturn.service import KeyService


@runtime_checkable
class _Backlog(Protocol):
    """A store that can count what waits in its outbox (every store keyturn ships)."""

    def pending_notifications(self) -> int:
        """How many notifications wait for delivery."""
        ...


@attrs.define
class DevConsole:
    """``--dev``: every message printed on this terminal, codes included, and kept for JSON."""

    clock: SystemClock
    codes: list[dict[str, Any]] = attrs.field(factory=list)

    def deliver(self, notification: Notification) -> None:
        """Print the message (stderr), and keep its code for the ``--json`` answer."""
        n, now = notification, self.clock.now()
        if n.kind is NotificationKind.CODE and n.code is not None:
            self.codes.append({"owner": n.owner, "key_id": n.key_id, "code": n.code})
            # a code for no key (a sign-in, an action to confirm) says what it is by its subject
            what = f"code sent for key {n.key_id}" if n.key_id is not None else f"{n.subject} sent"
            valid = f", valid until {output.clock(n.expires_at, now)}" if n.expires_at else ""
            line = f"notify {n.owner}: {what}{valid}; code: {n.code} [--dev: shown here only]"
        else:
            line = f"notify {n.owner}: {n.subject}"
        print(line, file=sys.stderr, flush=True)


class App:
    """One invocation: the parsed arguments, the service they wire, and the answer's form."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.clock = SystemClock()
        self.out = output.stdout()
        self.err = output.stderr()
        self.target = wiring.database(args.db)
        self.dev = DevConsole(self.clock) if args.dev else None
        #: The errors the notifier raised while this run delivered (``notification_failed``).
        self.delivery_errors: list[str] = []
        self._service: KeyService | None = None
        #: Whether opening the service created the store (``init``, ``create --init``).
        self.created_store = False

    @property
    def creates_store(self) -> bool:
        """Whether this command may create the store it opens (``init``, ``create --init``)."""
        return bool(getattr(self.args, "creates_store", False) or getattr(self.args, "init", False))

    @property
    def service(self) -> KeyService:
        """The service over ``--db``, opened (and checked) on first use."""
        if self._service is None:
            self.created_store = not stores.check(self.target, create=self.creates_store)
            notifier = self.notifier()
            self._service = wiring.build_service(
                store=wiring.open_store(self.target),
                notifier=notifier or UnconfiguredNotifier(),
                master_key=wiring.server_key(self.target),
                clock=self.clock,
                secret_box=wiring.secret_box(self.target),
            )
            self._service.deliver_inline = notifier is not None
        return self._service

    def notifier(self) -> Notifier | None:
        """The notifier to deliver through, or ``None`` when none is configured and not ``--dev``.

        The console shows codes only to the person at this terminal, so it is used in ``--dev``
        only. Without a notifier, messages stay in the outbox for ``keyturn relay``.
        """
        if not (self.args.dev or wiring.configured_notifier(self.args.notifier)):
            return None
        chosen = wiring.notifier_from_env(self.args.notifier, dev=bool(self.args.dev))
        if isinstance(chosen, ConsoleNotifier) and self.dev is not None:
            return self.dev
        return chosen

    def close(self) -> None:
        """Close the store, if it was opened."""
        if self._service is not None:
            self._service.store.close()

    @property
    def actor(self) -> str:
        """Who acts, for the history: ``--actor``, else ``cli:$USER``."""
        return str(self.args.actor or f"cli:{getpass.getuser()}")

    def read_key(self, key_id: int) -> ApiKey | None:
        """The key with this id, whoever owns it (the command is an operator's tool)."""
        return self.service.store.get(validation.key_id(key_id))

    def owner_of(self, key_id: int) -> str:
        """The owner to act as: ``--owner``, else the key's own."""
        if getattr(self.args, "owner", None):
            return str(self.args.owner)
        key = self.read_key(key_id)
        if key is None:
            raise KeyNotFound(key_id)
        return key.owner

    def context(self) -> Context:
        """What a failure's message needs (the store is read only if it is open already)."""
        policy = self._service.policy if self._service is not None else Policy()
        return Context(
            now=self.clock.now(),
            policy=policy,
            read_key=self._peek,
            store=stores.where(self.target),
            command=str(getattr(self.args, "command", "")),
        )

    def _peek(self, key_id: int) -> ApiKey | None:
        if self._service is None:
            return None
        try:
            return self._service.store.get(key_id)
        except Exception:  # noqa: BLE001 (a message's extra detail must not hide the error)
            return None

    def confirm(self, what: str) -> None:
        """Go on with ``what`` only after ``--yes``, or a yes from the person at the terminal."""
        if getattr(self.args, "yes", False):
            return
        if not sys.stdin.isatty():
            raise usage(f"{what}: add --yes to confirm it (there is no terminal to ask on)")
        question = f"{what[0].upper()}{what[1:]}. Go on? [y/N] "
        print(self.err(question, "bold"), end="", file=sys.stderr, flush=True)
        try:
            answer = input().strip().lower()
        except EOFError:
            answer = ""
        if answer not in ("y", "yes"):
            raise Failure("not_confirmed", "not confirmed: nothing was changed", REFUSED)

    def emit(self, data: Any, text: str) -> None:  # noqa: ANN401 (any JSON value)
        """Print ``data`` as JSON with ``--json`` (plus ``dev_codes`` in ``--dev``), else text."""
        if not self.args.json:
            self.out.say(text)
            return
        if self.dev is not None and isinstance(data, dict):
            data = {**data, "dev_codes": self.dev.codes}
        self.out.say(output.json_text(data))

    def note_outbox(self) -> None:
        """Say what waits in the outbox and how to deliver it, if anything was not sent."""
        service = self._service
        if service is None or not isinstance(service.store, _Backlog):
            return
        waiting = service.store.pending_notifications()
        if not waiting:
            return
        if service.deliver_inline:
            why = "for keyturn relay to deliver"
        else:
            why = (
                "none sent: no notifier is configured (deliver them with keyturn relay "
                "--notifier smtp, or set KEYTURN_NOTIFIER; --dev shows codes here)"
            )
        self.err.say(f"{waiting} notification(s) wait in the outbox, {why}")
