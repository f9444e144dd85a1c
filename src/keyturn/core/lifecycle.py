"""The key lifecycle: every state, every action, every edge, defined once.

Everything that decides where a key may go is declared here, in ``_EDGES``, and nowhere else
(after h11's ``_state.py``). :mod:`keyturn.core.machine` builds the one ``transitions`` machine
from these edges and compiles the lookup table the service reads by triggering it;
:mod:`keyturn.diagrams` draws the same machine. Rules of this module:

* A *guard* (:class:`Condition`) is a named fact about a request (``code_accepted``...), named
  once, in :class:`Condition`, and attached to its edges by that name: the machine asks the
  model's method (or attribute) of that name. At most one guard decides between the edges of one
  action from one state, so a route is a guard and the two edges it chooses between.
* A *check* (:class:`Check`) is a named rule that refuses an edge outright (a lock, a time rule,
  a counter), attached to its edges by name too; :mod:`keyturn.core.checks` holds each rule's
  one implementation, and :func:`keyturn.core.decide.decide` runs an edge's checks before taking
  it.
* No I/O, no clock, no policy values here. Labels that mention numbers are templates, filled in
  from a :class:`~keyturn.core.policy.Policy` by whoever draws them.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


class State(enum.StrEnum):
    """Where a key is in its life."""

    CREATED = "created"
    SECRET_ACKNOWLEDGED = "secret_acknowledged"  # noqa: S105 (a state name, not a password)
    PENDING_2FA = "pending_2fa"
    ACTIVE = "active"
    DISABLED = "disabled"
    REMOVED = "removed"


class Action(enum.StrEnum):
    """What a caller can ask of a key. ``create`` brings a key into ``created``."""

    CREATE = "create"
    ACKNOWLEDGE_SECRET = "acknowledge_secret"  # noqa: S105 (an action name)
    REQUEST_ACTIVATION = "request_activation"
    RESEND_CODE = "resend_code"
    VERIFY_CODE = "verify_code"
    CANCEL_ACTIVATION = "cancel_activation"
    DISABLE = "disable"
    ENABLE = "enable"
    EDIT = "edit"
    RESET_SECRET = "reset_secret"  # noqa: S105 (an action name)
    REMOVE = "remove"
    UNLOCK_ACTIVATION = "unlock_activation"


class Condition(enum.StrEnum):
    """The guards: facts about a request that choose between the edges of one action."""

    CODE_ACCEPTED = "code_accepted"
    CAME_FROM_DISABLED = "came_from_disabled"
    DIRECT_ENABLE = "direct_enable"
    EDIT_DEACTIVATES = "edit_deactivates"
    CODE_REUSABLE = "code_reusable"


class Check(enum.StrEnum):
    """The named rules that refuse an edge outright (implemented in :mod:`keyturn.core.checks`)."""

    NOT_LOCKED = "not_locked"
    RESEND_OPEN = "resend_open"
    UNDER_SEND_CAP = "under_send_cap"
    CODE_LIVE = "code_live"
    HAS_SECRET = "has_secret"  # noqa: S105 (a rule's name)


INITIAL: Final = State.CREATED
TERMINAL: Final = frozenset({State.REMOVED})
LIVE_STATES: Final = tuple(s for s in State if s not in TERMINAL)

#: What each action is for, in a person's words (README, ``keyturn`` help, diagrams).
ACTION_DOCS: Final[Mapping[Action, str]] = {
    Action.CREATE: "new key; the secret is handed out in this one answer",
    Action.ACKNOWLEDGE_SECRET: 'the person confirms "I saved the secret"',
    Action.REQUEST_ACTIVATION: "ACTIVATE: a code is sent to the owner",
    Action.RESEND_CODE: "a fresh code replaces the last one",
    Action.VERIFY_CODE: "the owner enters the code",
    Action.CANCEL_ACTIVATION: "the owner closes the code dialog",
    Action.DISABLE: "deactivate, at once",
    Action.ENABLE: "activate at once (direct-enable policy); otherwise as ACTIVATE, by a code",
    Action.EDIT: "change name, scope, IP whitelist or features",
    Action.RESET_SECRET: "a new secret, shown once; the old one stops working at once",
    Action.REMOVE: "permanent; the record stays for audit",
    Action.UNLOCK_ACTIVATION: "an operator clears the wrong-code lock",
}


@attrs.frozen
class Edge:
    """One arrow of the lifecycle.

    ``when``/``unless`` name the condition that must hold (or must not); ``label`` is the arrow's
    caption, a template whose ``{fields}`` are filled from the policy's ``describe()``.
    """

    action: Action
    source: State
    dest: State
    when: Condition | None = None
    unless: Condition | None = None
    label: str = ""
    checks: tuple[Check, ...] = ()

    def config(self, after: Callable[[], None]) -> dict[str, Any]:
        """This edge as ``transitions`` takes a transition: the guard attached by its name.

        ``after`` is called once the machine has taken this edge, so whoever triggers the
        machine learns which edge it was (two edges may share their ends).
        """
        config: dict[str, Any] = {"trigger": self.action.value, "after": after}
        config |= {"source": self.source.value, "dest": self.dest.value}
        for key, guard in (("conditions", self.when), ("unless", self.unless)):
            if guard is not None:
                config[key] = [guard.value]
        return config


def _from_each(
    action: Action,
    sources: tuple[State, ...],
    *,
    to: State | None = None,
    label: str = "",
    checks: tuple[Check, ...] = (),
) -> list[Edge]:
    """Edges of ``action`` from each source; to ``to``, or back to the source itself."""
    return [Edge(action, s, s if to is None else to, label=label, checks=checks) for s in sources]


_Side = tuple[State, str, tuple[Check, ...]]


def _guarded(
    action: Action, source: State, guard: Condition, held: _Side, other: _Side
) -> list[Edge]:
    """The two edges of ``action`` from ``source``: ``held`` if ``guard`` holds, else ``other``."""
    return [
        Edge(action, source, held[0], when=guard, label=held[1], checks=held[2]),
        Edge(action, source, other[0], unless=guard, label=other[1], checks=other[2]),
    ]


_P, _A, _D, _SA = State.PENDING_2FA, State.ACTIVE, State.DISABLED, State.SECRET_ACKNOWLEDGED
_SEND = (Check.NOT_LOCKED, Check.RESEND_OPEN, Check.UNDER_SEND_CAP)  # before any code is sent
_SENT: Final = (_P, "code sent, valid {code_ttl}", _SEND)
_LOCK = (Check.NOT_LOCKED,)
_REOPENED: Final = (_P, "", _LOCK)  # drawn as its twin: only whether a code is sent differs
_CHECKED = (Check.NOT_LOCKED, Check.CODE_LIVE)  # before a code is checked
_BACK: Final = ((_D, "dialog closed", ()), (_SA, "dialog closed", ()))

_EDGES: Final[tuple[Edge, ...]] = (
    Edge(Action.ACKNOWLEDGE_SECRET, State.CREATED, _SA, label="secret saved"),
    *(
        e
        for s in (_SA, _D, _P)
        for e in _guarded(Action.REQUEST_ACTIVATION, s, Condition.CODE_REUSABLE, _REOPENED, _SENT)
    ),
    Edge(
        Action.RESEND_CODE,
        _P,
        _P,
        label="after {resend_after}, max {max_sends} per {send_window}",
        checks=_SEND,
    ),
    *_guarded(
        Action.VERIFY_CODE,
        _P,
        Condition.CODE_ACCEPTED,
        (_A, "right code within {code_ttl}", _CHECKED),
        (_P, "wrong code, max {max_attempts} per code", _CHECKED),
    ),
    *_guarded(Action.CANCEL_ACTIVATION, _P, Condition.CAME_FROM_DISABLED, *_BACK),
    Edge(Action.DISABLE, _A, _D, label="at once"),
    *(
        Edge(Action.ENABLE, s, _A, when=Condition.DIRECT_ENABLE, label="no code", checks=_LOCK)
        for s in (_SA, _D, _P)
    ),
    *_guarded(
        Action.EDIT,
        _A,
        Condition.EDIT_DEACTIVATES,
        (_D, "scope, whitelist or features changed", ()),
        (_A, "", ()),
    ),
    *_guarded(
        Action.EDIT,
        _P,
        Condition.CAME_FROM_DISABLED,
        *((d, "the code ends", ()) for d, _, _ in _BACK),
    ),
    *_from_each(Action.EDIT, (State.CREATED, _SA, _D)),
    *_from_each(Action.RESET_SECRET, LIVE_STATES, checks=(Check.HAS_SECRET,)),
    *_from_each(Action.UNLOCK_ACTIVATION, LIVE_STATES),
    *_from_each(Action.REMOVE, LIVE_STATES, to=State.REMOVED, label="permanent"),
)


def edges() -> tuple[Edge, ...]:
    """Every edge of the lifecycle, in definition order."""
    return _EDGES
