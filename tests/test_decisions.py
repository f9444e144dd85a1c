"""The pure core's credential rules, driven without any port: generations and chained steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from keyturn import Policy, State
from keyturn.core import decisions
from keyturn.core.errors import ActionNotAllowed
from keyturn.core.records import ApiKey
from keyturn.core.scope import Scope
from keyturn.validation import ip_whitelist

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DIRECT = Policy(direct_enable=True)


def active(whitelist: str = "", scope: str = "account:read trade:read_write") -> ApiKey:
    """A stored active key at version 4, credential generation 2."""
    return ApiKey(
        id=7,
        owner="alice",
        client_id="c1",
        name="k",
        max_scope=Scope.parse(scope),
        ip_whitelist=ip_whitelist(whitelist),
        enabled_features=(),
        state=State.ACTIVE,
        version=4,
        created_at=T0,
        updated_at=T0,
        fingerprint="f",
        generation=2,
    )


def edit(key: ApiKey, **fields: object) -> ApiKey:
    """The key after an edit of ``fields`` (under the API's policy: it stays active)."""
    change = decisions.edited(
        key,
        decisions.Edit(**fields),  # type: ignore[arg-type]
        now=T0,
        policy=Policy(edit_deactivates=False),
        actor="a",
        notification_id="n",
    )
    assert change is not None
    return change.key


class TestGeneration:
    def test_a_new_secret_moves_the_generation(self) -> None:
        """reset_secret ends every credential issued before it."""
        change = decisions.secret_reset(
            active(),
            secret_digest="d",
            fingerprint="f2",
            sealed_secret=None,
            now=T0,
            actor="a",
            notification_id="n",
        )
        assert change.key.generation == 3

    @pytest.mark.parametrize("step", ["disable", "remove"])
    def test_leaving_active_moves_the_generation(self, step: str) -> None:
        """Disabling or removing an active key ends its credentials; enabling again does not bring them back."""
        key = active()
        left = getattr(decisions, f"{step}d")(key, now=T0, actor="a", notification_id="n").key
        assert left.generation == 3
        if step == "disable":
            back = decisions.enabled_directly(
                left, now=T0, policy=DIRECT, actor="a", notification_id="n"
            ).key
            assert back.state is State.ACTIVE
            assert back.generation == 3

    @pytest.mark.parametrize(
        ("fields", "moves"),
        [
            ({"max_scope": Scope.parse("account:read")}, True),
            ({"max_scope": Scope.parse("account:read trade:read_write wallet:read")}, False),
            ({"ip_whitelist": ip_whitelist("10.0.0.0/8")}, True),
            ({"name": "renamed"}, False),
        ],
        ids=["narrower-scope", "wider-scope", "whitelist-from-any", "rename"],
    )
    def test_an_edit_moves_the_generation_only_when_it_narrows(
        self, fields: dict[str, object], moves: bool
    ) -> None:
        """A narrower scope or whitelist ends credentials; a wider scope or a rename does not."""
        assert (edit(active(), **fields).generation == 3) is moves

    @pytest.mark.parametrize(
        ("before", "after", "narrows"),
        [
            ("10.0.0.0/8", "10.0.0.0/16", True),
            ("10.0.0.0/16", "10.0.0.0/8", False),
            ("10.0.0.0/8", "", False),
            ("10.0.0.0/8 2001:db8::/32", "10.0.0.0/8", True),
            ("10.0.0.0/8 2001:db8::/32", "2001::/16 10.0.0.0/7", False),
        ],
    )
    def test_whitelist_narrowing_is_by_address_coverage(
        self, before: str, after: str, narrows: bool
    ) -> None:
        """A whitelist narrows when some address it let through is no longer let through."""
        key = active(before)
        assert (
            decisions.narrows(key, attrs.evolve(key, ip_whitelist=ip_whitelist(after))) is narrows
        )

    def test_a_new_key_starts_at_generation_zero(self) -> None:
        """Creation does not count as a change of credentials."""
        fresh = attrs.evolve(active(), id=0, version=0, state=State.CREATED, generation=0)
        assert decisions.created(fresh, now=T0, actor="a", notification_id="n").key.generation == 0


class TestChain:
    def test_chained_steps_are_one_change(self) -> None:
        """Chained steps keep the first expected version, every history entry and every notice."""
        key = active()
        off = decisions.disabled(key, now=T0, actor="a", notification_id="n1")
        on = decisions.enabled_directly(
            off.key, now=T0 + timedelta(seconds=1), policy=DIRECT, actor="a", notification_id="n2"
        )
        both = decisions.chain(off, on)
        assert both.expected_version == key.version
        assert both.key == on.key
        assert [h.event for h in both.history] == ["disabled_api_key", "enabled_api_key"]
        assert [n.id for n in both.notifications] == ["n1", "n2"]

    def test_a_step_that_does_not_follow_is_refused(self) -> None:
        """A step decided from another version of the key cannot be chained."""
        key = active()
        off = decisions.disabled(key, now=T0, actor="a", notification_id="n1")
        with pytest.raises(ValueError, match="previous one left"):
            decisions.chain(off, off)

    def test_direct_enable_needs_the_policy(self) -> None:
        """Without the direct-enable policy an enable is refused, not turned into a code request."""
        off = decisions.disabled(active(), now=T0, actor="a", notification_id="n").key
        with pytest.raises(ActionNotAllowed, match="through a code"):
            decisions.enabled_directly(off, now=T0, policy=Policy(), actor="a", notification_id="n")
