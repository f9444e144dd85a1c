"""The shipped pytest plugin gives users keyturn_* fixtures with no configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

pytest_plugins = ["pytester"]


def test_fixtures_are_available(pytester: pytest.Pytester) -> None:
    """A user's test can take keyturn_service and drive a key to active with no setup."""
    pytester.makepyfile(
        """
        from datetime import timedelta
        from keyturn import State

        def test_activate(keyturn_service, keyturn_notifier, keyturn_clock):
            issued = keyturn_service.create(owner="o", name="k", max_scope="account:read")
            keyturn_service.acknowledge_secret(issued.key.id, owner="o")
            keyturn_service.request_activation(issued.key.id, owner="o")
            keyturn_clock.advance(timedelta(minutes=1))
            code = keyturn_notifier.last_code(issued.key.id)
            key = keyturn_service.verify_code(issued.key.id, code, owner="o")
            assert key.state is State.ACTIVE
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_policy_fixture_can_be_overridden(pytester: pytest.Pytester) -> None:
    """Overriding keyturn_policy in a conftest changes the service's rules."""
    pytester.makeconftest(
        """
        import pytest
        from keyturn import Policy

        @pytest.fixture
        def keyturn_policy():
            return Policy(direct_enable=True)
        """
    )
    pytester.makepyfile(
        """
        from keyturn import State
        from keyturn.testing import key_in_state

        def test_direct(keyturn_service):
            key_id = key_in_state(keyturn_service, State.DISABLED).key.id
            assert keyturn_service.enable(key_id, owner="alice").state is State.ACTIVE
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
