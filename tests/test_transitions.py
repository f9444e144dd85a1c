"""Every state x action pair, through the service.

Allowed ones land where the table says; refused ones raise ActionNotAllowed and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from keyturn import ActionNotAllowed, KeyService, State
from keyturn.core.lifecycle import Action
from keyturn.testing import RecordingNotifier, key_in_state

Perform = Callable[[KeyService, int, RecordingNotifier], Any]

PERFORM: dict[Action, Perform] = {
    Action.ACKNOWLEDGE_SECRET: lambda s, k, n: s.acknowledge_secret(k, owner="alice"),
    Action.REQUEST_ACTIVATION: lambda s, k, n: s.request_activation(k, owner="alice"),
    Action.RESEND_CODE: lambda s, k, n: s.resend_code(k, owner="alice"),
    Action.VERIFY_CODE: lambda s, k, n: s.verify_code(
        k, n.last_code(k) if n.codes(k) else "999999", owner="alice"
    ),
    Action.CANCEL_ACTIVATION: lambda s, k, n: s.cancel_activation(k, owner="alice"),
    Action.DISABLE: lambda s, k, n: s.disable(k, owner="alice"),
    Action.ENABLE: lambda s, k, n: s.enable(k, owner="alice"),
    Action.EDIT: lambda s, k, n: s.edit(k, owner="alice", max_scope="account:read"),
    Action.RESET_SECRET: lambda s, k, n: s.reset_secret(k, owner="alice"),
    Action.REMOVE: lambda s, k, n: s.remove(k, owner="alice"),
    Action.UNLOCK_ACTIVATION: lambda s, k, n: s.unlock_activation(k, actor="operator"),
}

C, A, P, ON, OFF, R = (
    State.CREATED,
    State.SECRET_ACKNOWLEDGED,
    State.PENDING_2FA,
    State.ACTIVE,
    State.DISABLED,
    State.REMOVED,
)

#: The oracle, written out by hand from the issue: (state, action) -> state after, default policy.
EXPECTED: dict[tuple[State, Action], State] = {
    (C, Action.ACKNOWLEDGE_SECRET): A,
    (A, Action.REQUEST_ACTIVATION): P,
    (OFF, Action.REQUEST_ACTIVATION): P,
    (P, Action.REQUEST_ACTIVATION): P,  # "Activate" on a key waiting for its code reopens it
    (P, Action.RESEND_CODE): P,
    (P, Action.VERIFY_CODE): ON,
    (P, Action.CANCEL_ACTIVATION): A,
    (ON, Action.DISABLE): OFF,
    (OFF, Action.ENABLE): P,
    (A, Action.ENABLE): P,
    (P, Action.ENABLE): P,  # without direct enable, enable is ACTIVATE: it reopens the dialog
    (C, Action.EDIT): C,
    (A, Action.EDIT): A,
    (P, Action.EDIT): A,  # an edit ends the pending code: back to where activation began
    (ON, Action.EDIT): OFF,
    (OFF, Action.EDIT): OFF,
    **{(s, Action.RESET_SECRET): s for s in (C, A, P, ON, OFF)},
    **{(s, Action.UNLOCK_ACTIVATION): s for s in (C, A, P, ON, OFF)},
    **{(s, Action.REMOVE): R for s in (C, A, P, ON, OFF)},
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("action", list(PERFORM))
def test_state_action_pair(
    service: KeyService, notifier: RecordingNotifier, clock: Any, state: State, action: Action
) -> None:
    """An allowed pair moves the key to the expected state; a refused one raises and writes nothing."""
    key_id = key_in_state(service, state).key.id
    clock.advance(timedelta(minutes=2))
    before = service.get(key_id, owner="alice")
    history = service.history(key_id, owner="alice")
    expected = EXPECTED.get((state, action))
    if expected is None:
        with pytest.raises(ActionNotAllowed) as info:
            PERFORM[action](service, key_id, notifier)
        assert info.value.key_id == key_id
        assert info.value.state == state.value
        assert info.value.action == action.value
        assert service.get(key_id, owner="alice") == before
        assert service.history(key_id, owner="alice") == history
    else:
        PERFORM[action](service, key_id, notifier)
        after = service.get(key_id, owner="alice")
        assert after.state is expected
        assert after.version == before.version + 1


def test_refusal_message_says_what_is_needed(service: KeyService) -> None:
    """A refused action's message names the state it needs and the next step to take."""
    key_id = key_in_state(service, State.CREATED).key.id
    with pytest.raises(ActionNotAllowed, match="acknowledge the secret first"):
        service.request_activation(key_id, owner="alice")


def test_cancel_returns_to_disabled_when_reactivating(service: KeyService) -> None:
    """Cancelling re-activation of a disabled key returns it to disabled, not to acknowledged."""
    key_id = key_in_state(service, State.DISABLED).key.id
    service.enable(key_id, owner="alice")
    assert service.cancel_activation(key_id, owner="alice").state is State.DISABLED


def test_cancel_after_request_from_disabled_survives_resend(
    service: KeyService, clock: Any
) -> None:
    """A resend keeps where activation started: cancelling afterwards still returns to disabled."""
    key_id = key_in_state(service, State.DISABLED).key.id
    service.request_activation(key_id, owner="alice")
    clock.advance(timedelta(minutes=2))
    service.resend_code(key_id, owner="alice")
    assert service.cancel_activation(key_id, owner="alice").state is State.DISABLED
