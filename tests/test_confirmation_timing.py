"""Codes sent to confirm an action keep the activation code's time rules, on every store.

Asking again for the same request before "resend" opens gets the live challenge back and sends
nothing; another request for the same action and key waits for "resend"; at most ``max_sends``
codes go out per ``send_window`` for one action and key. These are the core's rules
(:func:`keyturn.core.confirmations.live_challenge`), so they hold for every caller of the
service, whatever browser session or process it comes from.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from keyturn import (
    Confirmation,
    ConfirmationRequired,
    KeyService,
    Policy,
    ResendTooEarly,
    SendLimitReached,
)
from keyturn.core.lifecycle import Action

if TYPE_CHECKING:
    from keyturn.testing import ManualClock, RecordingNotifier


@pytest.fixture(name="keyturn_policy")
def _policy() -> Policy:
    """Create and edit are confirmed by code; three codes per ten minutes."""
    return Policy(confirm=frozenset({Action.CREATE, Action.EDIT}), max_sends=3)


def ask_create(service: KeyService, name: str = "k1") -> ConfirmationRequired:
    """Ask to create a key without a code: the challenge the service answers with."""
    with pytest.raises(ConfirmationRequired) as info:
        service.create(owner="alice", name=name, max_scope="account:read")
    return info.value


def test_the_same_request_before_resend_gets_its_live_challenge(
    service: KeyService, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """At 1:59 the same create gets the same challenge and no new code; at 2:00 a new one."""
    first = ask_create(service)
    codes = notifier.codes()
    assert first.resend_at == clock.now() + timedelta(minutes=2)
    clock.advance(timedelta(seconds=119))
    again = ask_create(service)
    assert (again.challenge_id, again.expires_at) == (first.challenge_id, first.expires_at)
    assert notifier.codes() == codes
    clock.advance(timedelta(seconds=1))
    third = ask_create(service)
    assert third.challenge_id != first.challenge_id
    assert len(notifier.codes()) == len(codes) + 1
    proof = Confirmation(third.challenge_id, notifier.last_code())
    service.create(owner="alice", name="k1", max_scope="account:read", confirmation=proof)
    assert [k.name for k in service.list_keys(owner="alice")] == ["k1"]


def test_another_request_waits_for_resend(
    service: KeyService, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """A different create a minute after the first is refused until 2:00; nothing is sent."""
    started = clock.now()
    ask_create(service, name="k1")
    codes = notifier.codes()
    clock.advance(timedelta(minutes=1))
    with pytest.raises(ResendTooEarly) as info:
        service.create(owner="alice", name="k2", max_scope="account:read")
    assert info.value.available_at == started + timedelta(minutes=2)
    assert info.value.action == "create"
    assert notifier.codes() == codes
    clock.advance(timedelta(minutes=1))
    assert ask_create(service, name="k2").challenge_id


def test_a_used_challenge_does_not_hold_the_next_request(
    service: KeyService, notifier: RecordingNotifier
) -> None:
    """Once a code confirmed its request, the next request gets its own code at once."""
    first = ask_create(service, name="k1")
    proof = Confirmation(first.challenge_id, notifier.last_code())
    service.create(owner="alice", name="k1", max_scope="account:read", confirmation=proof)
    assert ask_create(service, name="k2").challenge_id != first.challenge_id


def test_codes_are_capped_per_action_and_key(
    service: KeyService, notifier: RecordingNotifier, clock: ManualClock
) -> None:
    """The 4th create code in 10 minutes waits for the 1st to leave the window; edits count apart."""
    started = clock.now()
    for _ in range(3):
        ask_create(service)
        clock.advance(timedelta(minutes=2))
    codes = notifier.codes()
    with pytest.raises(SendLimitReached) as info:
        service.create(owner="alice", name="k1", max_scope="account:read")
    assert info.value.available_at == started + timedelta(minutes=10)
    assert notifier.codes() == codes
    clock.set(started + timedelta(minutes=10))
    last = ask_create(service)
    key = service.create(
        owner="alice",
        name="k1",
        max_scope="account:read",
        confirmation=Confirmation(last.challenge_id, notifier.last_code()),
    ).key
    with pytest.raises(ConfirmationRequired):
        service.edit(key.id, owner="alice", name="k2")
