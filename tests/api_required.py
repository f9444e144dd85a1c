"""A pytest plugin: with ``KEYTURN_REQUIRE_API_TESTS=1`` (CI) an API test that skips fails.

The API tests (``test_api*.py``) need the ``test`` extra (uvicorn, websockets, the Deribit
client) and, for their PostgreSQL cases, a server; a fresh clone has all of it, and CI must
never pass with any of them skipped. Elsewhere a skip stays a skip.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Generator

REQUIRED = "KEYTURN_REQUIRE_API_TESTS"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Turn the skip of an API test into a failure that says why, where it is required."""
    del call
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    api_test = item.path.name.startswith("test_api")
    if not (report.skipped and api_test and os.environ.get(REQUIRED) == "1"):
        return
    if hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"{REQUIRED}=1, but this API test was skipped: {reason}"
