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

import attrs
import pytest

from keyturn import (
    ConcurrentUpdate,
    Confirmation,
    ConfirmationRequired,
    KeyService,
    Policy,
    ResendTooEarly,
    SendLimitReached,
)
from keyturn.core.lifecycle import Action
from keyturn.crypto.hashing import new_token
from keyturn.service import WRITE_ATTEMPTS
from keyturn.testing import InMemoryKeyStore, RecordingNotifier, make_service

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from keyturn.core.records import Challenge, Notification
    from keyturn.testing import ManualClock


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


class _RacedStore(InMemoryKeyStore):
    """A store where another request stores its challenge just before each of ours.

    ``races`` times, ``add_challenge`` first stores a competitor for the same action and key,
    as a concurrent worker would, and then applies ours against it; ``same_request`` makes the
    competitor the same request as ours, else another one.
    """

    def __init__(self, races: int, *, same_request: bool) -> None:
        super().__init__()
        self.races = races
        self.same_request = same_request

    def add_challenge(
        self,
        challenge: Challenge,
        notifications: Sequence[Notification],
        *,
        claim: bool = False,
        seen: tuple[datetime, int] | None = None,
    ) -> None:
        """Let a competitor in first while ``races`` lasts, then store ours as asked."""
        if self.races > 0:
            self.races -= 1
            digest = challenge.request_digest if self.same_request else "another request"
            rival = attrs.evolve(challenge, id=new_token(), request_digest=digest)
            super().add_challenge(rival, [])
        super().add_challenge(challenge, notifications, claim=claim, seen=seen)


def _raced_service(races: int, *, same_request: bool) -> tuple[KeyService, RecordingNotifier]:
    notifier = RecordingNotifier()
    service = make_service(
        store=_RacedStore(races, same_request=same_request),
        notifier=notifier,
        policy=Policy(confirm=frozenset({Action.CREATE})),
    )
    return service, notifier


def test_a_request_that_lost_the_race_is_shown_the_winners_challenge() -> None:
    """When a concurrent same request stored its challenge first, ours is not stored or sent."""
    service, notifier = _raced_service(1, same_request=True)
    asked = ask_create(service)
    store = service.store
    assert isinstance(store, _RacedStore)
    (stored,) = store.recent_challenges("alice", since=asked.expires_at - timedelta(days=1))
    assert asked.challenge_id == stored.id  # the winner's, shown again
    assert notifier.codes() == []  # the loser sent nothing (the winner's worker sends its own)


def test_a_different_request_that_lost_the_race_waits_for_resend() -> None:
    """When another request for the same action won the race, ours waits for "resend"."""
    service, notifier = _raced_service(1, same_request=False)
    with pytest.raises(ResendTooEarly):
        service.create(owner="alice", name="k1", max_scope="account:read")
    assert notifier.codes() == []


class _AlwaysConflicting(InMemoryKeyStore):
    """A store that refuses every challenge as if another request had just stored one."""

    calls = 0

    def add_challenge(
        self,
        challenge: Challenge,
        notifications: Sequence[Notification],
        *,
        claim: bool = False,
        seen: tuple[datetime, int] | None = None,
    ) -> None:
        """Count the call and refuse it."""
        self.calls += 1
        raise ConcurrentUpdate(0, 0, action="confirm")


def test_a_store_that_always_conflicts_ends_in_concurrent_update() -> None:
    """A conflict on every attempt gives up after WRITE_ATTEMPTS with ConcurrentUpdate, unsent."""
    store, notifier = _AlwaysConflicting(), RecordingNotifier()
    policy = Policy(confirm=frozenset({Action.CREATE}))
    service = make_service(store=store, notifier=notifier, policy=policy)
    with pytest.raises(ConcurrentUpdate):
        service.create(owner="alice", name="k1", max_scope="account:read")
    assert store.calls == WRITE_ATTEMPTS
    assert notifier.codes() == []
