"""Bad input of every kind gets InvalidInput naming the field, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from keyturn import AuthenticationFailed, InvalidInput, KeyService, Policy, Scope, State
from keyturn.core import validation
from keyturn.core.scope import Level
from keyturn.testing import InMemoryKeyStore, key_in_state

GOOD = {"owner": "alice", "name": "k1", "max_scope": "account:read"}

BAD_CREATE = [
    ("owner", None),
    ("owner", ""),
    ("owner", 7),
    ("owner", "a" * 129),
    ("owner", " alice"),
    ("owner", "al\nice"),
    ("name", ""),
    ("name", "x" * 17),
    ("name", "has space"),
    ("name", "naïve"),
    ("name", 12),
    ("name", "dash-ed"),
    ("max_scope", ""),
    ("max_scope", "   "),
    ("max_scope", None),
    ("max_scope", "account"),
    ("max_scope", "account:write"),
    ("max_scope", "bank:read"),
    ("max_scope", "account:read account:none"),
    ("max_scope", "account:read " * 100),
    ("max_scope", ["account:read"]),
    ("ip_whitelist", "300.1.1.1"),
    ("ip_whitelist", "10.0.0.7/24"),
    ("ip_whitelist", "not-an-ip"),
    ("ip_whitelist", 42),
    ("ip_whitelist", [1]),
    ("ip_whitelist", ["10.0.0.1"] * 65),
    ("ip_whitelist", "1" * 5000),
    ("enabled_features", ["teleport"]),
    ("enabled_features", "block_trade_approval"),
    ("enabled_features", [None]),
    ("public_key", "not a pem"),
    ("public_key", 5),
    ("public_key", "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----"),
    ("public_key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
    ("public_key", "x" * 20000),
]


@pytest.mark.parametrize(("field", "value"), BAD_CREATE)
def test_bad_create_input(
    service: KeyService, store: InMemoryKeyStore, field: str, value: Any
) -> None:
    """A malformed create argument raises InvalidInput for that field and stores nothing."""
    with pytest.raises(InvalidInput) as info:
        service.create(**{**GOOD, field: value})
    assert info.value.field == field
    assert store.list_keys() == []


@pytest.mark.parametrize("key_id", [None, "1", 1.0, True, 0, -1, 2**64])
def test_bad_key_id(service: KeyService, key_id: Any) -> None:
    """A key id that is not a positive integer is invalid input, for every action."""
    with pytest.raises(InvalidInput) as info:
        service.acknowledge_secret(key_id, owner="alice")
    assert info.value.field == "id"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "bad name"),
        ("max_scope", "x:y"),
        ("ip_whitelist", "1.2.3"),
        ("enabled_features", ["nope"]),
    ],
)
def test_bad_edit_leaves_key_unchanged(service: KeyService, field: str, value: Any) -> None:
    """A malformed edit raises InvalidInput and leaves the key and its history as they were."""
    key_id = key_in_state(service, State.ACTIVE).key.id
    before = service.get(key_id, owner="alice")
    with pytest.raises(InvalidInput):
        service.edit(key_id, owner="alice", **{field: value})
    assert service.get(key_id, owner="alice") == before
    assert len(service.history(key_id, owner="alice")) == before.version


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [
        (None, "s"),
        ("", "s"),
        ("c", "s" * 257),
        ("c", 5),
        ("c\x00", "s"),
        ("c", "\ud800"),
        ("ça", "s"),
        ("\ud800", "s"),
        ("c", "s\ud800"),
        ("c", "s\x1b"),
    ],
)
def test_malformed_credentials_are_refused_as_credentials(
    service: KeyService, client_id: Any, secret: Any
) -> None:
    """A malformed client id or secret gets the one refusal every credential gets, and reads nothing."""
    with pytest.raises(AuthenticationFailed) as info:
        service.authenticate(client_id, secret, source_ip="1.2.3.4")
    assert (info.value.reason, str(info.value)) == ("invalid_credentials", "invalid credentials")


@pytest.mark.parametrize("ip", [1234, "h" * 256])
def test_a_malformed_peer_is_invalid_input(service: KeyService, ip: Any) -> None:
    """A peer address that is no text (or absurdly long) is a programming error: invalid input naming it."""
    with pytest.raises(InvalidInput) as info:
        service.authenticate("c", "s", source_ip=ip)
    assert info.value.field == "source_ip"


class TestText:
    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (5, "must be a string, not int"),
            ("", "must be a string of 1-8 characters"),
            ("x" * 9, "must be a string of 1-8 characters"),
            ("a\ud800", "holds a lone surrogate, which is not text"),
            ("\udfff", "holds a lone surrogate, which is not text"),
            ("a\x00b", "holds the control character U+0000"),
            ("a\nb", "holds the control character U+000A"),
            ("\x85", "holds the control character U+0085"),
            ("\x7f", "holds the control character U+007F"),
        ],
    )
    def test_refused(self, value: Any, reason: str) -> None:
        """Wrong types, wrong lengths, lone surrogates and control characters are refused, naming the field and the character only."""
        with pytest.raises(InvalidInput) as info:
            validation.text(value, "f", max_length=8, min_length=1)
        assert (info.value.field, info.value.reason) == ("f", reason)

    @pytest.mark.parametrize("value", ["", "é😀١٢", "\u202e\ufeff\uffff", "a b"])
    def test_accepted(self, value: str) -> None:
        """Any other text, non-ASCII and format characters included, passes unchanged."""
        assert validation.text(value, "f") == value

    def test_allow_lets_line_breaks_through(self) -> None:
        """The allow argument names the control characters a field may hold (a PEM's line breaks)."""
        assert validation.text("a\r\n\tb", "f", allow=validation.LINE_BREAKS) == "a\r\n\tb"
        with pytest.raises(InvalidInput):
            validation.text("a\x00", "f", allow=validation.LINE_BREAKS)

    def test_texts_names_the_top_level_parameter(self) -> None:
        """A bad text anywhere in the parameters, a name or a value, is refused naming its top-level parameter."""
        for params, field in (
            ({"ok": "x", "ip_whitelist": ["10.0.0.1", ["\x00"]]}, "ip_whitelist"),
            ({"deep": {"a": [{"b": "\ud800"}]}}, "deep"),
            ({"deep": {"k\x00": 1}}, "deep"),
            ({"\ud800": 1}, "params"),
        ):
            with pytest.raises(InvalidInput) as info:
                validation.texts(params)
            assert info.value.field == field

    def test_texts_multiline_and_depth(self) -> None:
        """Multi-line parameters may hold line breaks; nesting far past the recursion limit is walked without error."""
        validation.texts({"public_key": "-----BEGIN\nx\n"}, multiline={"public_key"})
        with pytest.raises(InvalidInput):
            validation.texts({"name": "a\nb"}, multiline={"public_key"})
        deep: list[Any] = ["ok"]
        for _ in range(100_000):
            deep = [deep]
        validation.texts({"x": deep})


class TestScope:
    def test_canonical_order_and_round_trip(self) -> None:
        """A scope prints in one canonical resource order and parses back equal."""
        scope = Scope.parse("wallet:none  trade:read_write account:read")
        assert str(scope) == "account:read trade:read_write wallet:none"
        assert Scope.parse(str(scope)) == scope

    def test_covers(self) -> None:
        """A scope covers another when every resource is granted at least as high."""
        big = Scope.parse("account:read_write trade:read")
        assert big.covers(Scope.parse("account:read"))
        assert big.covers(Scope.parse("wallet:none"))
        assert not big.covers(Scope.parse("trade:read_write"))
        assert big.level("custody") is Level.NONE


class TestPolicy:
    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("max_attempts", 0),
            ("max_attempts", True),
            ("code_ttl", 5),
            ("resend_after", None),
            ("confirm", "create"),
            ("confirm", {"launch"}),
            ("confirm", {"acknowledge_secret"}),
        ],
    )
    def test_bad_policy_values(self, field: str, value: Any) -> None:
        """A policy value out of range or of the wrong type is refused, naming the field."""
        with pytest.raises(InvalidInput) as info:
            Policy(**{field: value})
        assert info.value.field == field

    def test_confirm_takes_any_collection_of_actions(self) -> None:
        """Confirm accepts a set, list or frozenset of actions or action names."""
        from keyturn.core.lifecycle import Action  # noqa: PLC0415

        expected = frozenset({Action.CREATE, Action.REMOVE})
        assert Policy(confirm={Action.CREATE, Action.REMOVE}).confirm == expected
        assert Policy(confirm=["create", "remove"]).confirm == expected

    def test_describe_speaks_plainly(self) -> None:
        """describe() renders durations the way a person says them."""
        assert Policy().describe()["code_ttl"] == "5 min"
        assert Policy().describe()["resend_after"] == "2 min"
