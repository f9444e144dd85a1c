"""The public surface: __all__ sorted, complete and importable."""

from __future__ import annotations

import keyturn
import keyturn.testing


def test_all_is_sorted_and_importable() -> None:
    """keyturn.__all__ is sorted and every name in it exists."""
    assert keyturn.__all__ == sorted(keyturn.__all__)
    for name in keyturn.__all__:
        assert hasattr(keyturn, name)


def test_every_error_is_exported() -> None:
    """Every error class defined in keyturn.errors is part of the public API."""
    from keyturn import errors  # noqa: PLC0415

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
