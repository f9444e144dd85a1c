"""What a refused action says: why the key's state does not allow it, and what would.

One table, keyed by state and action, so that a hint is right for the state the key is really
in ("the key is already active", not "acknowledge the secret first"). Pure text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from keyturn.core.errors import ActionNotAllowed
from keyturn.core.lifecycle import Action, State
from keyturn.core.machine import sources_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from keyturn.core.policy import Policy
    from keyturn.core.records import ApiKey

_WAITING_FOR_CODE: Final = "a code is on its way: enter it, resend it, or close the dialog"
_NEEDS_ACTIVATION: Final = "request activation to get a code"

_HINTS: Final[Mapping[tuple[State, Action], str]] = {
    (State.CREATED, Action.REQUEST_ACTIVATION): "acknowledge the secret first",
    (State.CREATED, Action.ENABLE): "acknowledge the secret first",
    (State.CREATED, Action.VERIFY_CODE): "acknowledge the secret, then request activation",
    (State.CREATED, Action.RESEND_CODE): "acknowledge the secret, then request activation",
    (State.SECRET_ACKNOWLEDGED, Action.VERIFY_CODE): _NEEDS_ACTIVATION,
    (State.SECRET_ACKNOWLEDGED, Action.RESEND_CODE): _NEEDS_ACTIVATION,
    (State.DISABLED, Action.VERIFY_CODE): _NEEDS_ACTIVATION,
    (State.DISABLED, Action.RESEND_CODE): _NEEDS_ACTIVATION,
    (State.DISABLED, Action.DISABLE): "the key is already disabled",
    (State.PENDING_2FA, Action.ENABLE): _WAITING_FOR_CODE,
    (State.PENDING_2FA, Action.DISABLE): "the key is not active yet; close the code dialog",
    (State.ACTIVE, Action.REQUEST_ACTIVATION): "the key is already active",
    (State.ACTIVE, Action.ENABLE): "the key is already active",
    (State.ACTIVE, Action.VERIFY_CODE): "the key is already active",
    (State.ACTIVE, Action.RESEND_CODE): "the key is already active",
    (State.ACTIVE, Action.CANCEL_ACTIVATION): "the key is already active",
}


def not_allowed(key: ApiKey, action: Action, policy: Policy | None = None) -> ActionNotAllowed:
    """The error for ``action`` on ``key`` in its state, saying what would make it possible."""
    if key.state is State.REMOVED:
        hint = "the key was removed"
    elif (key.state, action) in _HINTS:
        hint = _HINTS[key.state, action]
    elif action is Action.ACKNOWLEDGE_SECRET:
        hint = "the secret was acknowledged already"
    elif action is Action.CANCEL_ACTIVATION:
        hint = "no activation is under way"
    elif action is Action.DISABLE:
        hint = "only an active key can be disabled"
    else:
        hint = "it needs " + " or ".join(repr(s.value) for s in sources_of(action))
    if action is Action.ENABLE and policy is not None and not policy.direct_enable:
        hint += " (under this policy a key is enabled through a code)"
    return ActionNotAllowed(
        f"cannot {action.value} API key {key.id}: it is {key.state.value!r}; {hint}",
        key_id=key.id,
        state=key.state.value,
        action=action.value,
    )
