"""JSON-ready views: plain data, exact times and seconds left, and no secret where none belongs."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from keyturn import Action, ActionNotAllowed, ConfirmationRequired, InvalidInput, Policy, State
from keyturn.testing import ManualClock, RecordingNotifier, key_in_state, make_service
from keyturn.web.views import (
    challenge_view,
    code_view,
    edit_preview,
    history_view,
    issued_view,
    key_view,
    seconds_until,
)


@pytest.fixture(name="clock")
def _clock() -> ManualClock:
    return ManualClock()


def test_key_view_is_plain_json_without_secret(clock: ManualClock) -> None:
    """A key's view round-trips through json and holds neither its secret nor its digest."""
    service = make_service(clock=clock)
    issued = key_in_state(service, State.ACTIVE)
    key = service.get(issued.key.id, owner="alice")
    view = key_view(key, now=clock.now(), policy=service.policy)
    assert json.loads(json.dumps(view)) == view
    assert view["state"] == "active"
    assert view["state_label"] == "Active"
    assert view["created_at"] == "2026-01-01T12:00:00+00:00"
    assert view["scope"] == {
        "account": "read",
        "trade": "read_write",
        "wallet": "none",
        "block_trade": "none",
        "block_rfq": "none",
        "custody": "none",
    }
    assert view["code"] is None
    blob = json.dumps(view)
    assert issued.client_secret is not None
    assert issued.client_secret not in blob
    assert key.secret_digest is not None
    assert key.secret_digest not in blob


def test_issued_view_carries_the_secret_once(clock: ManualClock) -> None:
    """The create answer's view is the key's view plus its secret."""
    service = make_service(clock=clock)
    issued = service.create(owner="alice", name="k1", max_scope="account:read")
    view = issued_view(issued, now=clock.now(), policy=service.policy)
    assert view["client_secret"] == issued.client_secret
    assert view["state"] == "created"


def test_code_view_counts_down_exactly(clock: ManualClock) -> None:
    """A pending code shows expiry and resend as ISO times and seconds left, to the second."""
    notifier = RecordingNotifier()
    service = make_service(clock=clock, notifier=notifier)
    key_id = key_in_state(service, State.PENDING_2FA).key.id
    clock.advance(119.5)
    view = code_view(service.get(key_id, owner="alice"), now=clock.now(), policy=service.policy)
    assert view is not None
    assert view["sent_at"] == "2026-01-01T12:00:00+00:00"
    assert view["expires_at"] == "2026-01-01T12:05:00+00:00"
    assert view["resend_at"] == "2026-01-01T12:02:00+00:00"
    assert (view["resend_in"], view["next_send_in"], view["expires_in"]) == (1, 1, 180)
    assert (view["expired"], view["locked"], view["send_limited"]) == (False, False, False)
    assert view["attempts_left"] == 5
    clock.advance(180.5)
    view = code_view(service.get(key_id, owner="alice"), now=clock.now(), policy=service.policy)
    assert view is not None
    assert (view["expires_in"], view["expired"], view["resend_in"]) == (0, True, 0)
    assert notifier.last_code(key_id) not in json.dumps(view)


def test_code_view_reports_the_send_cap(clock: ManualClock) -> None:
    """When the send cap is reached, next_send_in waits for the cap, not only the resend wait."""
    service = make_service(clock=clock, policy=Policy(max_sends=2))
    key_id = key_in_state(service, State.PENDING_2FA).key.id
    clock.advance(minutes=2)
    service.resend_code(key_id, owner="alice")
    view = code_view(service.get(key_id, owner="alice"), now=clock.now(), policy=service.policy)
    assert view is not None
    assert view["send_limited"] is True
    assert view["resend_in"] == 120
    assert view["next_send_in"] == 8 * 60
    assert view["next_send_at"] == "2026-01-01T12:10:00+00:00"


def test_challenge_view_of_a_confirmation(clock: ManualClock) -> None:
    """A confirmation that was sent is described with its id, expiry and resend time."""
    service = make_service(clock=clock, policy=Policy(confirm={Action.CREATE}))
    with pytest.raises(ConfirmationRequired) as info:
        service.create(owner="alice", name="k1", max_scope="account:read")
    clock.advance(30)
    view = challenge_view(info.value, now=clock.now(), policy=service.policy)
    assert view["challenge_id"] == info.value.challenge_id
    assert (view["action"], view["key_id"]) == ("create", None)
    assert (view["expires_in"], view["resend_in"]) == (270, 90)


def test_history_view(clock: ManualClock) -> None:
    """Each history entry is plain data, oldest first."""
    service = make_service(clock=clock)
    key_id = key_in_state(service, State.SECRET_ACKNOWLEDGED).key.id
    views = [history_view(h) for h in service.history(key_id, owner="alice")]
    assert [(v["event"], v["from_state"], v["to_state"]) for v in views] == [
        ("new_api_key", None, "created"),
        ("secret_acknowledged", "created", "secret_acknowledged"),
    ]
    assert [(v["from_label"], v["to_label"]) for v in views] == [
        (None, "Created, not activated"),
        ("Created, not activated", "Not activated"),
    ]


class TestEditPreview:
    def test_scope_change_of_an_active_key_deactivates(self, clock: ManualClock) -> None:
        """Changing an active key's scope would deactivate it; renaming it would not."""
        service = make_service(clock=clock)
        key = service.get(key_in_state(service, State.ACTIVE).key.id, owner="alice")
        now, policy = clock.now(), service.policy
        scoped = edit_preview(key, now=now, policy=policy, max_scope="account:read_write")
        assert scoped == {"changes": ["max_scope"], "deactivates": True}
        renamed = edit_preview(key, now=now, policy=policy, name="other")
        assert renamed == {"changes": ["name"], "deactivates": False}
        same = edit_preview(key, now=now, policy=policy, ip_whitelist="")
        assert same == {"changes": [], "deactivates": False}

    def test_policy_and_state_are_respected(self, clock: ManualClock) -> None:
        """No warning when the policy keeps edited keys active, or when the key is not active."""
        service = make_service(clock=clock)
        active = service.get(key_in_state(service, State.ACTIVE).key.id, owner="alice")
        keep = Policy(edit_deactivates=False)
        preview = edit_preview(active, now=clock.now(), policy=keep, ip_whitelist="10.0.0.0/8")
        assert preview["deactivates"] is False
        idle = service.get(key_in_state(service, State.DISABLED).key.id, owner="alice")
        preview = edit_preview(idle, now=clock.now(), policy=service.policy, max_scope="trade:read")
        assert preview == {"changes": ["max_scope"], "deactivates": False}

    def test_bad_input_and_removed_keys_are_refused(self, clock: ManualClock) -> None:
        """A malformed field is InvalidInput and a removed key ActionNotAllowed; nothing is written."""
        service = make_service(clock=clock)
        key = service.get(key_in_state(service, State.ACTIVE).key.id, owner="alice")
        with pytest.raises(InvalidInput):
            edit_preview(key, now=clock.now(), policy=service.policy, name="bad name\x00")
        service.remove(key.id, owner="alice")
        gone = service.get(key.id, owner="alice")
        with pytest.raises(ActionNotAllowed):
            edit_preview(gone, now=clock.now(), policy=service.policy, name="x")
        assert len(service.history(key.id, owner="alice")) == gone.version


def test_seconds_until_rounds_as_asked(clock: ManualClock) -> None:
    """Waits round up, expiries round down, and the past is zero."""
    now = clock.now()
    assert seconds_until(now + timedelta(seconds=1.2), now) == 2
    assert seconds_until(now + timedelta(seconds=1.8), now, round_up=False) == 1
    assert seconds_until(now - timedelta(seconds=5), now) == 0
