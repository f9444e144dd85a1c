"""The numbers and switches of the lifecycle, in one frozen value.

Defaults follow the portal in the seeds (code valid 5 minutes, resend after 2) and the standards in
``domain.md`` (at most 5 wrong tries a code, 100 consecutive failures before an operator
must step in, 5 sends per 10 minutes). This module holds values only: it decides nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import attrs

from keyturn.core.errors import InvalidInput
from keyturn.core.lifecycle import Action

#: Actions that can be made to require a code confirmation (``Policy.confirm``).
CONFIRMABLE: Final = frozenset(
    {Action.CREATE, Action.EDIT, Action.REMOVE, Action.RESET_SECRET, Action.DISABLE}
)


def _positive_duration(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise InvalidInput(attribute.name, "must be a positive timedelta")


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(attribute.name, "must be a whole number of at least 1")


def _actions(value: object) -> frozenset[Action]:
    """Any collection of actions or action names, as a frozenset of confirmable actions."""
    allowed = ", ".join(sorted(CONFIRMABLE))
    if isinstance(value, str) or not isinstance(value, set | frozenset | list | tuple):
        raise InvalidInput("confirm", f"must be a collection of actions among: {allowed}")
    try:
        actions = frozenset(Action(v) for v in value)
    except ValueError:
        raise InvalidInput("confirm", f"must name actions among: {allowed}") from None
    if not actions <= CONFIRMABLE:
        raise InvalidInput("confirm", f"only these actions can be confirmed: {allowed}")
    return actions


def _human(d: timedelta) -> str:
    """``300 s`` -> ``5 min``; whole units only where exact."""
    seconds = d.total_seconds()
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{seconds:g} s"


@attrs.frozen(kw_only=True)
class Policy:
    """How the lifecycle behaves. Every field has a sane default.

    * ``code_ttl``: a code expires this long after it was sent (at exactly ``sent + ttl`` it is
      expired; one microsecond earlier it is not).
    * ``resend_after``: "resend" opens this long after the last send.
    * ``max_sends`` per ``send_window``: codes sent for one key in any sliding window.
    * ``max_attempts``: wrong tries one code survives; after that it is dead.
    * ``max_consecutive_failures``: wrong codes in a row over a key's life (resends do not reset
      it) before activation locks until an operator unlocks it.
    * ``max_keys_per_owner``: live keys an owner may hold.
    * ``direct_enable``: ``enable`` goes straight to ``active`` (for callers authorised by other
      means, like Deribit's ``enable_api_key``) instead of through a code.
    * ``edit_deactivates``: editing scope, whitelist or features of an active key disables it, as
      the portal does.
    * ``confirm``: actions that must be confirmed by a code sent to the owner.
    * ``security_challenge_ttl``: how long a security-key challenge (Deribit's per-call 2FA)
      stays valid: one minute, as Deribit's. A run of ``max_consecutive_failures`` wrong
      security-key codes locks the account's security key.
    """

    code_ttl: timedelta = attrs.field(default=timedelta(minutes=5), validator=_positive_duration)
    resend_after: timedelta = attrs.field(
        default=timedelta(minutes=2), validator=_positive_duration
    )
    max_sends: int = attrs.field(default=5, validator=_positive_int)
    send_window: timedelta = attrs.field(
        default=timedelta(minutes=10), validator=_positive_duration
    )
    max_attempts: int = attrs.field(default=5, validator=_positive_int)
    max_consecutive_failures: int = attrs.field(default=100, validator=_positive_int)
    max_keys_per_owner: int = attrs.field(default=8, validator=_positive_int)
    direct_enable: bool = False
    edit_deactivates: bool = True
    confirm: frozenset[Action] = attrs.field(default=frozenset(), converter=_actions)
    security_challenge_ttl: timedelta = attrs.field(
        default=timedelta(minutes=1), validator=_positive_duration
    )

    def describe(self) -> dict[str, str]:
        """The values that edge labels and messages mention, in a person's words."""
        return {
            "code_ttl": _human(self.code_ttl),
            "resend_after": _human(self.resend_after),
            "max_sends": str(self.max_sends),
            "send_window": _human(self.send_window),
            "max_attempts": str(self.max_attempts),
            "max_consecutive_failures": str(self.max_consecutive_failures),
        }
