"""Sealed secrets: AES-GCM under a ring of keys with ids, bound to the key's client id."""

from __future__ import annotations

import pytest

from keyturn.core.errors import InvalidInput
from keyturn.crypto.sealing import SealError, SecretBox, key_id_of

SECRET = "s3cr3t-value-that-must-not-leak-0123456789"


@pytest.fixture(name="box")
def _box() -> SecretBox:
    """A ring with one fresh key."""
    return SecretBox.generate("k1")


class TestSeal:
    def test_round_trip(self, box: SecretBox) -> None:
        """A sealed secret opens to the same secret under the same context."""
        sealed = box.seal(SECRET, context="cid1")
        assert box.open(sealed, context="cid1") == SECRET

    def test_sealed_value_hides_the_secret_and_is_fresh_each_time(self, box: SecretBox) -> None:
        """The sealed text does not contain the secret, and sealing twice gives two values."""
        a, b = box.seal(SECRET, context="c"), box.seal(SECRET, context="c")
        assert SECRET not in a
        assert a != b
        assert key_id_of(a) == "k1"

    def test_another_context_does_not_open(self, box: SecretBox) -> None:
        """A sealed secret copied onto another key (another client id) does not open."""
        sealed = box.seal(SECRET, context="cid1")
        with pytest.raises(SealError, match="another key"):
            box.open(sealed, context="cid2")

    def test_tampering_is_detected(self, box: SecretBox) -> None:
        """Changing one character of the sealed text makes it unopenable."""
        sealed = box.seal(SECRET, context="c")
        i = len(sealed) - 5
        flipped = sealed[:i] + ("A" if sealed[i] != "A" else "B") + sealed[i + 1 :]
        with pytest.raises(SealError):
            box.open(flipped, context="c")

    def test_unknown_ring_key_is_reported_without_the_secret(self, box: SecretBox) -> None:
        """A value sealed under a key the ring lacks raises SealError naming the key id only."""
        other = SecretBox.generate("k9")
        sealed = other.seal(SECRET, context="c")
        with pytest.raises(SealError) as info:
            box.open(sealed, context="c")
        assert "k9" in str(info.value)
        assert SECRET not in str(info.value)
        assert SECRET not in repr(info.value)

    def test_repr_hides_ring_keys(self, box: SecretBox) -> None:
        """The repr of a box shows the current key id, never key bytes."""
        assert repr(box) == "SecretBox(current='k1')"


class TestRotation:
    def test_new_key_seals_and_old_values_still_open(self, box: SecretBox) -> None:
        """After rotation the new key seals; values sealed under the old key still open."""
        old = box.seal(SECRET, context="c")
        rotated = SecretBox({**box.keys, **SecretBox.generate("k2").keys}, "k2")
        assert rotated.needs_reseal(old)
        assert rotated.open(old, context="c") == SECRET
        fresh = rotated.reseal(old, context="c")
        assert key_id_of(fresh) == "k2"
        assert not rotated.needs_reseal(fresh)
        assert rotated.open(fresh, context="c") == SECRET


class TestRing:
    @pytest.mark.parametrize(
        ("keys", "current"),
        [
            ({}, "k1"),
            ({"k1": b"short"}, "k1"),
            ({"bad id!": b"x" * 32}, "bad id!"),
            ({"k1": b"x" * 32}, "k2"),
        ],
    )
    def test_bad_rings_are_refused(self, keys: dict[str, bytes], current: str) -> None:
        """An empty ring, a short key, a bad id or a current id not in the ring is InvalidInput."""
        with pytest.raises(InvalidInput):
            SecretBox(keys, current)
