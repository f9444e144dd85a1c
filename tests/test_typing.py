"""Port calls are typed: mypy rejects a misspelt or misused call, sync and async alike.

The service calls its ports as plain methods of ``typing.Protocol`` classes, so a wrong call is
a type error before it is a runtime one. Each case below is a small module of deliberate misuse,
checked with mypy in the project's own configuration (``strict``); each must be rejected with
the error named.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs mypy as a process

ROOT = Path(__file__).parent.parent
HEADER = """
from __future__ import annotations

from keyturn.core.records import Change
from keyturn.ports import AsyncKeyStore, AsyncCodeVerifier, KeyStore, Notifier
from keyturn.service import AsyncKeyService, KeyService
"""

CASES = {
    "misspelt_store_method": (
        "def f(store: KeyStore) -> None:\n    store.gett(3)\n",
        'has no attribute "gett"',
    ),
    "unknown_keyword": (
        "def f(store: KeyStore) -> None:\n    store.get(3, bogus=True)\n",
        'Unexpected keyword argument "bogus"',
    ),
    "wrong_argument_type": (
        "def f(store: KeyStore) -> None:\n    store.get('3')\n",
        'Argument 1 to "get" of "KeyStore" has incompatible type "str"',
    ),
    "async_call_not_awaited_used_as_value": (
        (
            "async def f(store: AsyncKeyStore) -> None:\n"
            "    key = store.get(3)\n"
            "    print(key.owner)\n"
        ),
        'has no attribute "owner"',
    ),
    "async_misspelt": (
        "async def f(store: AsyncKeyStore) -> None:\n    await store.aply(None)\n",
        'has no attribute "aply"',
    ),
    "verifier_keywords_required": (
        "async def f(v: AsyncCodeVerifier) -> None:\n    await v.issue('s', 'o')\n",
        'Too many positional arguments for "issue"',
    ),
    "notifier_wrong_argument": (
        "def f(n: Notifier, c: Change) -> None:\n    n.deliver(c)\n",
        'incompatible type "Change"; expected "Notification"',
    ),
    "service_method_misspelt": (
        "def f(s: KeyService) -> None:\n    s.verify(1, '123456', owner='a')\n",
        'has no attribute "verify"',
    ),
    "async_service_store_misused": (
        "async def f(s: AsyncKeyService) -> None:\n    await s.store.insert(None)\n",
        'Missing named argument "max_live_per_owner"',
    ),
}


def _mypy(source: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """mypy, in the project's configuration, on ``source`` as a module of its own."""
    module = folder / "misuse.py"
    module.write_text(HEADER + textwrap.dedent(source))
    return subprocess.run(  # noqa: S603 (the project's own interpreter and checker)
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(folder / "cache"),
            str(module),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_mypy_rejects_a_misused_port_call(case: str, tmp_path: Path) -> None:
    """Each deliberate misuse of a port or service call is a mypy error, with the message named."""
    source, expected = CASES[case]
    done = _mypy(source, tmp_path)
    assert done.returncode == 1, done.stdout
    assert expected in done.stdout, done.stdout


def test_correct_calls_pass(tmp_path: Path) -> None:
    """The same calls, written right, pass mypy: the cases fail for their misuse alone."""
    source = """
        async def f(store: AsyncKeyStore, v: AsyncCodeVerifier, s: KeyService) -> None:
            key = await store.get(3)
            issued = await v.issue(subject="s", owner="o")
            s.verify_code(1, "123456", owner="a")
            print(key, issued)
    """
    done = _mypy(source, tmp_path)
    assert done.returncode == 0, done.stdout


def test_generated_sync_code_is_current() -> None:
    """Every blocking module is what scripts/unasync.py writes from its async source today."""
    done = subprocess.run(  # noqa: S603 (the project's own script)
        [sys.executable, str(ROOT / "scripts/unasync.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
