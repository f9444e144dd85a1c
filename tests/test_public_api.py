"""The public surface: __all__ sorted, complete and importable."""

from __future__ import annotations

import pytest

import keyturn
import keyturn.testing


def test_all_is_sorted_and_importable() -> None:
    """keyturn.__all__ is sorted and every name in it exists."""
    assert keyturn.__all__ == sorted(keyturn.__all__)
    for name in keyturn.__all__:
        assert hasattr(keyturn, name)


def test_every_error_is_exported() -> None:
    """Every error class defined in keyturn.core.errors is part of the public API."""
    from keyturn.core import errors  # noqa: PLC0415

    defined = {
        n
        for n, v in vars(errors).items()
        if isinstance(v, type) and issubclass(v, errors.KeyturnError)
    }
    assert defined <= set(keyturn.__all__)


def test_testing_all_is_sorted_and_importable() -> None:
    """keyturn.testing.__all__ is sorted and every name exists."""
    assert keyturn.testing.__all__ == sorted(keyturn.testing.__all__)
    for name in keyturn.testing.__all__:
        assert hasattr(keyturn.testing, name)


@pytest.mark.slow
def test_optional_dependencies_stay_optional() -> None:
    """Importing keyturn, its testing kit, its CLI and its stores loads no optional extra."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = (
        "import sys, keyturn, keyturn.testing, keyturn.cli, keyturn.wiring, "
        "keyturn.adapters.sqlite, keyturn.diagrams; "
        "print(sorted({m.split('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run(  # noqa: S603 (our interpreter)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(done.stdout.strip("[]\n").replace("'", "").split(", "))
    optional = {
        "psycopg",
        "psycopg_pool",
        "uvicorn",
        "websockets",
        "pygraphviz",
        "graphviz",
        "playwright",
        "aiosmtpd",
        "statemachine",
        "httpx",
        "jsonschema",
        "pytest",
        "pyotp",
    }
    assert loaded & optional == set()
    assert {"transitions", "attrs", "structlog"} <= loaded


@pytest.mark.slow
def test_without_pyotp_security_keys_are_refused_not_broken() -> None:
    """Without pyotp a service still works; enrolling a security key says what to install."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    code = (
        "import sys; sys.modules['pyotp'] = None\n"
        "from keyturn import InvalidInput\n"
        "from keyturn.testing import make_service\n"
        "s = make_service()\n"
        "assert s.second_factor is None\n"
        "s.create(owner='a', name='k', max_scope='trade:read')\n"
        "s.authorize_call(owner='a', call='c', params={})\n"
        "try:\n"
        "    s.enroll_security_key('a')\n"
        "except InvalidInput as e:\n"
        "    print(e.message)\n"
    )
    done = subprocess.run(  # noqa: S603 (our interpreter)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "keyturn[totp]" in done.stdout
