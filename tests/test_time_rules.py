"""Time rules at their exact boundaries: code expiry, resend, and the send cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from keyturn import (
    CodeExpired,
    KeyService,
    Policy,
    ResendTooEarly,
    SendLimitReached,
    State,
)
from keyturn.adapters.clocks import ManualClock, SystemClock
from keyturn.testing import RecordingNotifier, key_in_state, make_service

US = timedelta(microseconds=1)


def pending_key(service: KeyService) -> int:
    """A new key of alice's, waiting for its code."""
    return key_in_state(service, State.PENDING_2FA).key.id


class TestCodeExpiry:
    def test_code_valid_one_microsecond_before_ttl(
        self, service: KeyService, clock: ManualClock, notifier: RecordingNotifier
    ) -> None:
        """A code entered one microsecond before code_ttl activates the key."""
        key_id = pending_key(service)
        clock.advance(timedelta(minutes=5) - US)
        assert service.verify_code(key_id, notifier.last_code(key_id), owner="alice").enabled

    def test_code_expired_at_exactly_ttl(
        self, service: KeyService, clock: ManualClock, notifier: RecordingNotifier
    ) -> None:
        """A code entered at exactly code_ttl after sending is expired and changes nothing."""
        key_id = pending_key(service)
        before = service.get(key_id, owner="alice")
        clock.advance(timedelta(minutes=5))
        with pytest.raises(CodeExpired) as info:
            service.verify_code(key_id, notifier.last_code(key_id), owner="alice")
        assert info.value.expired_at == before.created_at + timedelta(minutes=5)
        assert service.get(key_id, owner="alice") == before

    def test_configured_ttl_is_exact(self, notifier: RecordingNotifier) -> None:
        """A configured code_ttl of 90 s expires codes at 90 s exactly."""
        clock = ManualClock()
        service = make_service(
            clock=clock, notifier=notifier, policy=Policy(code_ttl=timedelta(seconds=90))
        )
        key_id = pending_key(service)
        clock.advance(timedelta(seconds=90))
        with pytest.raises(CodeExpired):
            service.verify_code(key_id, notifier.last_code(key_id), owner="alice")

    def test_expiry_with_freezegun_and_system_clock(self) -> None:
        """With the system clock, freezegun moves time across the expiry boundary."""
        notifier = RecordingNotifier()
        start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        with freeze_time(start) as frozen:
            service = make_service(clock=SystemClock(), notifier=notifier)
            key_id = pending_key(service)
            frozen.move_to(start + timedelta(minutes=5))
            with pytest.raises(CodeExpired):
                service.verify_code(key_id, notifier.last_code(key_id), owner="alice")
            service.cancel_activation(key_id, owner="alice")
            service.request_activation(key_id, owner="alice")
            frozen.move_to(start + timedelta(minutes=10) - US)
            assert service.verify_code(key_id, notifier.last_code(key_id), owner="alice").enabled


class TestResend:
    def test_resend_refused_one_microsecond_early(
        self, service: KeyService, clock: ManualClock
    ) -> None:
        """Resend one microsecond before resend_after is refused, saying when it opens."""
        key_id = pending_key(service)
        sent_at = clock.now()
        before = service.get(key_id, owner="alice")
        clock.advance(timedelta(minutes=2) - US)
        with pytest.raises(ResendTooEarly) as info:
            service.resend_code(key_id, owner="alice")
        assert info.value.available_at == sent_at + timedelta(minutes=2)
        assert "can be requested from" in str(info.value)
        assert service.get(key_id, owner="alice") == before

    def test_resend_allowed_at_exactly_resend_after(
        self, service: KeyService, clock: ManualClock, notifier: RecordingNotifier
    ) -> None:
        """Resend at exactly resend_after issues a new code and the old one stops working."""
        key_id = pending_key(service)
        old = notifier.last_code(key_id)
        clock.advance(timedelta(minutes=2))
        service.resend_code(key_id, owner="alice")
        new = notifier.last_code(key_id)
        assert new != old
        with pytest.raises(Exception, match="does not match"):
            service.verify_code(key_id, old, owner="alice")
        assert service.verify_code(key_id, new, owner="alice").enabled

    def test_resend_restarts_the_expiry(
        self, service: KeyService, clock: ManualClock, notifier: RecordingNotifier
    ) -> None:
        """A resent code is valid for code_ttl from its own send, not the first one."""
        key_id = pending_key(service)
        clock.advance(timedelta(minutes=4))
        service.resend_code(key_id, owner="alice")
        clock.advance(timedelta(minutes=5) - US)
        assert service.verify_code(key_id, notifier.last_code(key_id), owner="alice").enabled

    def test_resend_boundary_with_freezegun(self) -> None:
        """With the system clock, freezegun proves resend opens at exactly resend_after."""
        start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
        with freeze_time(start) as frozen:
            service = make_service(clock=SystemClock())
            key_id = pending_key(service)
            frozen.move_to(start + timedelta(minutes=2) - US)
            with pytest.raises(ResendTooEarly):
                service.resend_code(key_id, owner="alice")
            frozen.move_to(start + timedelta(minutes=2))
            assert service.resend_code(key_id, owner="alice").sends[-1] == start + timedelta(
                minutes=2
            )


class TestSendCap:
    def test_sixth_send_in_the_window_is_refused(self, notifier: RecordingNotifier) -> None:
        """Five sends fit in the window; the sixth is refused until the oldest leaves it."""
        clock = ManualClock()
        policy = Policy(resend_after=timedelta(minutes=1))
        service = make_service(clock=clock, notifier=notifier, policy=policy)
        key_id = pending_key(service)
        first = clock.now()
        for _ in range(4):
            clock.advance(timedelta(minutes=1))
            service.resend_code(key_id, owner="alice")
        clock.advance(timedelta(minutes=1))
        before = service.get(key_id, owner="alice")
        with pytest.raises(SendLimitReached) as info:
            service.resend_code(key_id, owner="alice")
        assert info.value.available_at == first + timedelta(minutes=10)
        assert service.get(key_id, owner="alice") == before
        clock.set(first + timedelta(minutes=10) - US)
        with pytest.raises(SendLimitReached):
            service.resend_code(key_id, owner="alice")
        clock.advance(US)
        service.resend_code(key_id, owner="alice")

    def test_cancel_and_request_again_sends_no_code_before_the_resend_wait(
        self, service: KeyService, notifier: RecordingNotifier
    ) -> None:
        """Closing the dialog and pressing ACTIVATE again, with the clock stopped, reopens it with the same code."""
        key_id = pending_key(service)
        sent = len(notifier.codes())
        for _ in range(4):
            service.cancel_activation(key_id, owner="alice")
            service.request_activation(key_id, owner="alice")
        assert len(notifier.codes()) == sent
        assert len(service.get(key_id, owner="alice").sends) == 1

    def test_cancel_and_request_again_sends_a_new_code_only_after_the_wait(
        self, service: KeyService, clock: ManualClock, notifier: RecordingNotifier
    ) -> None:
        """At 1:59 after the last send ACTIVATE reopens the dialog with the same code; at 2:00 it sends one."""
        key_id = pending_key(service)
        sent = len(notifier.codes())
        clock.advance(timedelta(minutes=2) - US)
        service.cancel_activation(key_id, owner="alice")
        service.request_activation(key_id, owner="alice")
        assert len(notifier.codes()) == sent
        clock.advance(US)
        service.cancel_activation(key_id, owner="alice")
        service.request_activation(key_id, owner="alice")
        assert len(notifier.codes()) == sent + 1
