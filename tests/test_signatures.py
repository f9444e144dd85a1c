"""Signature credentials: the signed string, the window, nonces, keys, and the service's checks."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from structlog.testing import capture_logs

from keyturn import AuthenticationFailed, InvalidInput, State
from keyturn.crypto import signatures
from keyturn.crypto.sealing import SecretBox
from keyturn.testing import key_in_state, make_service
from keyturn.testing.signing import (
    ed25519_key,
    public_pem,
    rsa_key,
    sign,
    signature_params,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from keyturn import KeyService
    from keyturn.testing import ManualClock

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


def signed(
    client_id: str, credential: object, ts: int, nonce: str = "n1", data: str = ""
) -> signatures.SignedRequest:
    """A SignedRequest as the client_signature grant would carry it."""
    p = signature_params(client_id, credential, timestamp=ts, nonce=nonce, data=data)  # type: ignore[arg-type]
    return signatures.signed_request(
        p["client_id"], p["timestamp"], p["nonce"], p["data"], p["signature"]
    )


class TestWhatIsSigned:
    def test_string_to_sign_is_deribits(self) -> None:
        """StringToSign is ts, nonce and data joined by newlines."""
        assert signatures.string_to_sign(1, "ab", "x") == b"1\nab\nx"

    def test_request_data_is_deribits(self) -> None:
        """RequestData is the upper-cased verb, the URI with query and the body, each newline-ended."""
        assert signatures.request_data("get", "/api/v2/private/x?a=1", "") == (
            "GET\n/api/v2/private/x?a=1\n\n"
        )

    def test_hmac_is_hex_hmac_sha256_of_the_secret(self) -> None:
        """The HMAC signature is hex HMAC-SHA256 keyed with the client secret."""
        msg = signatures.string_to_sign(T0_MS, "n", "")
        expected = hmac.new(b"secret", msg, hashlib.sha256).hexdigest()
        assert signatures.hmac_signature("secret", msg) == expected
        assert signatures.hmac_matches("secret", msg, expected)
        assert not signatures.hmac_matches("secret", msg, expected[:-1] + "0")

    @pytest.mark.parametrize(
        "respell",
        [str.upper, lambda s: f" {s}", lambda s: f"{s} ", lambda s: s[:10].upper() + s[10:]],
    )
    def test_only_lower_case_hex_matches(self, respell: Callable[[str], str]) -> None:
        """The HMAC signature is accepted only as 64 lower-case hex digits: one text per signature."""
        msg = signatures.string_to_sign(T0_MS, "n", "")
        expected = hmac.new(b"secret", msg, hashlib.sha256).hexdigest()
        assert not signatures.hmac_matches("secret", msg, respell(expected))


class TestWindow:
    @pytest.mark.parametrize(
        ("offset_ms", "ok"),
        [(0, True), (60_000, True), (-60_000, True), (60_001, False), (-60_001, False)],
    )
    def test_sixty_seconds_either_way_exactly(self, offset_ms: int, ok: bool) -> None:
        """A timestamp is good up to and including 60 s from the clock, either way."""
        assert signatures.in_window(T0_MS + offset_ms, T0) is ok


class TestParsing:
    def test_header_fields_are_read(self) -> None:
        """A well-formed header yields its id, timestamp, nonce and signature."""
        s = signatures.parse_header("id=abc,ts=5,sig=ff,nonce=xy", request_data="GET\n/\n\n")
        assert (s.client_id, s.timestamp, s.nonce, s.signature) == ("abc", 5, "xy", "ff")

    @pytest.mark.parametrize(
        "value",
        [
            "id=abc,ts=5,sig=ff",
            "id=abc,ts=5,sig=ff,nonce=",
            "id=abc,ts=x,sig=ff,nonce=n",
            "id=abc,ts=5,sig=ff,nonce=n,extra=1",
            "id=abc,id=abd,ts=5,sig=ff,nonce=n",
            "garbage",
            "id=,ts=5,sig=ff,nonce=n",
        ],
    )
    def test_malformed_headers_are_invalid_input(self, value: str) -> None:
        """Missing, empty, repeated, extra or mistyped fields are InvalidInput."""
        with pytest.raises(InvalidInput):
            signatures.parse_header(value, request_data="")

    @pytest.mark.parametrize(
        ("field", "args"),
        [
            ("client_id", (5, 1, "", "", "s")),
            ("timestamp", ("c", -1, "", "", "s")),
            ("timestamp", ("c", True, "", "", "s")),
            ("nonce", ("c", 1, "n" * 300, "", "s")),
            ("data", ("c", 1, "", 7, "s")),
            ("signature", ("c", 1, "", "", "")),
        ],
    )
    def test_bad_grant_fields_name_the_field(self, field: str, args: tuple[object, ...]) -> None:
        """Each bad client_signature field is InvalidInput naming that field."""
        with pytest.raises(InvalidInput) as info:
            signatures.signed_request(*args)
        assert info.value.field == field


class TestPublicKeys:
    def test_ed25519_and_rsa_2048_verify(self) -> None:
        """Ed25519 and RSA-2048 signatures verify against their public keys, and only theirs."""
        msg = b"1\nn\n"
        for key in (ed25519_key(), rsa_key(2048)):
            pem = public_pem(key)
            assert signatures.public_key_matches(pem, msg, sign(key, msg))
            assert not signatures.public_key_matches(pem, msg + b"x", sign(key, msg))
            assert not signatures.public_key_matches(pem, msg, "not base64 !!")

    def test_short_rsa_and_other_key_types_are_refused(self) -> None:
        """RSA under 2048 bits and non-Ed25519 curves are refused when loaded."""
        with pytest.raises(InvalidInput, match="2048"):
            signatures.load_public_key(public_pem(rsa_key(1024)))
        ec_pem = public_pem(ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="Ed25519 or RSA"):
            signatures.load_public_key(ec_pem)

    def test_create_refuses_a_short_rsa_key_and_writes_nothing(self, service: KeyService) -> None:
        """Creating a key with a 1024-bit RSA public key is InvalidInput; no key is stored."""
        with pytest.raises(InvalidInput, match="2048"):
            service.create(
                owner="alice",
                name="r",
                max_scope="trade:read",
                public_key=public_pem(rsa_key(1024)),
            )
        assert service.list_keys(owner="alice") == []


def _active_public_key_key(service: KeyService, pem: str) -> tuple[int, str]:
    issued = service.create(owner="alice", name="pk", max_scope="trade:read", public_key=pem)
    key_id = issued.key.id
    service.acknowledge_secret(key_id, owner="alice")
    service.request_activation(key_id, owner="alice")
    notifier = service.notifier
    service.verify_code(key_id, notifier.last_code(key_id), owner="alice")  # type: ignore[attr-defined]
    return key_id, issued.key.client_id


class TestServiceSignatures:
    def test_hmac_signature_of_a_sealed_secret_authenticates(self, service: KeyService) -> None:
        """A key whose secret is sealed authenticates with an HMAC signature over the window."""
        issued = key_in_state(service, State.ACTIVE)
        cid, secret = issued.key.client_id, issued.client_secret
        principal = service.authenticate_signature(
            signed(cid, secret, T0_MS), source_ip="127.0.0.1"
        )
        assert principal.key_id == issued.key.id

    def test_wrong_signature_fails(self, service: KeyService) -> None:
        """A signature made with another secret is refused as invalid credentials."""
        cid = key_in_state(service, State.ACTIVE).key.client_id
        with pytest.raises(AuthenticationFailed) as info:
            service.authenticate_signature(signed(cid, "other", T0_MS), source_ip="127.0.0.1")
        assert info.value.reason == "invalid_credentials"

    def test_nonce_is_single_use(self, service: KeyService) -> None:
        """The same nonce is refused the second time, even with a fresh timestamp."""
        issued = key_in_state(service, State.ACTIVE)
        cid, secret = issued.key.client_id, issued.client_secret
        service.authenticate_signature(signed(cid, secret, T0_MS, "once"), source_ip="127.0.0.1")
        with pytest.raises(AuthenticationFailed) as info:
            service.authenticate_signature(
                signed(cid, secret, T0_MS + 1, "once"), source_ip="127.0.0.1"
            )
        assert info.value.reason == "nonce_reused"
        service.authenticate_signature(
            signed(cid, secret, T0_MS + 2, "twice"), source_ip="127.0.0.1"
        )

    def test_window_boundary_on_the_service_clock(
        self, service: KeyService, clock: ManualClock
    ) -> None:
        """Signed at T0: accepted at T0+60 s exactly, refused at T0+60.001 s."""
        issued = key_in_state(service, State.ACTIVE)
        cid, secret = issued.key.client_id, issued.client_secret
        clock.set(T0 + timedelta(seconds=60))
        service.authenticate_signature(signed(cid, secret, T0_MS, "a"), source_ip="127.0.0.1")
        clock.set(T0 + timedelta(seconds=60, milliseconds=1))
        with pytest.raises(AuthenticationFailed) as info:
            service.authenticate_signature(signed(cid, secret, T0_MS, "b"), source_ip="127.0.0.1")
        assert info.value.reason == "timestamp_out_of_window"

    def test_a_disabled_key_fails_at_once(self, service: KeyService) -> None:
        """A correctly signed request of a disabled key is refused."""
        issued = key_in_state(service, State.DISABLED)
        with pytest.raises(AuthenticationFailed) as info:
            service.authenticate_signature(
                signed(issued.key.client_id, issued.client_secret, T0_MS), source_ip="127.0.0.1"
            )
        assert info.value.reason == "key_not_active"

    def test_hash_only_service_refuses_secret_signatures(self) -> None:
        """Without a secret box nothing is sealed, so a secret's signature cannot be checked."""
        service = make_service(sealed=False)
        issued = key_in_state(service, State.ACTIVE)
        assert service.get(issued.key.id, owner="alice").sealed_secret is None
        with pytest.raises(AuthenticationFailed):
            service.authenticate_signature(
                signed(issued.key.client_id, issued.client_secret, T0_MS), source_ip="127.0.0.1"
            )

    def test_reset_switches_signatures_to_the_new_secret(self, service: KeyService) -> None:
        """After a reset the old secret's signature fails and the new one's succeeds."""
        issued = key_in_state(service, State.ACTIVE)
        cid = issued.key.client_id
        fresh = service.reset_secret(issued.key.id, owner="alice").client_secret
        with pytest.raises(AuthenticationFailed):
            service.authenticate_signature(
                signed(cid, issued.client_secret, T0_MS, "1"), source_ip="127.0.0.1"
            )
        service.authenticate_signature(signed(cid, fresh, T0_MS, "2"), source_ip="127.0.0.1")

    def test_remove_erases_the_sealed_secret(self, service: KeyService) -> None:
        """A removed key keeps its record but not its sealed secret."""
        issued = key_in_state(service, State.ACTIVE)
        service.remove(issued.key.id, owner="alice")
        assert service.get(issued.key.id, owner="alice").sealed_secret is None

    @pytest.mark.parametrize("kind", ["ed25519", "rsa"])
    def test_public_key_signs_and_has_no_secret_login(self, service: KeyService, kind: str) -> None:
        """A key registered with a public key authenticates by signature only."""
        private = ed25519_key() if kind == "ed25519" else rsa_key(2048)
        key_id, cid = _active_public_key_key(service, public_pem(private))
        principal = service.authenticate_signature(
            signed(cid, private, T0_MS, "x", "data"), source_ip="::1"
        )
        assert principal.key_id == key_id
        other = ed25519_key()
        with pytest.raises(AuthenticationFailed):
            service.authenticate_signature(signed(cid, other, T0_MS, "y"), source_ip="::1")
        with pytest.raises(AuthenticationFailed):
            service.authenticate(cid, "anything", source_ip="::1")

    def test_an_unknown_client_id_costs_an_hmac_too(
        self, service: KeyService, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An unknown client id is refused after the same HMAC a known one gets (no timing tell)."""
        issued = key_in_state(service, State.ACTIVE)
        calls: list[str] = []
        real = signatures.hmac_matches

        def counting(secret: str, message: bytes, signature: str) -> bool:
            calls.append(signature)
            return real(secret, message, signature)

        monkeypatch.setattr(signatures, "hmac_matches", counting)
        with pytest.raises(AuthenticationFailed) as info:
            service.authenticate_signature(signed("nosuchid", "x", T0_MS), source_ip="::1")
        assert info.value.reason == "invalid_credentials"
        with pytest.raises(AuthenticationFailed):
            service.authenticate_signature(
                signed(issued.key.client_id, "x", T0_MS, "n2"), source_ip="::1"
            )
        assert len(calls) == 2

    def test_a_stored_public_key_is_parsed_once(self, service: KeyService) -> None:
        """Repeated signatures of one public-key key reuse its parsed key."""
        private = ed25519_key()
        _, cid = _active_public_key_key(service, public_pem(private))
        signatures._stored_public_key.cache_clear()
        for nonce in ("a", "b", "c"):
            service.authenticate_signature(signed(cid, private, T0_MS, nonce), source_ip="::1")
        info = signatures._stored_public_key.cache_info()
        assert (info.misses, info.hits) == (1, 2)


class TestResealing:
    def test_rotation_reseals_every_secret_and_logins_keep_working(self) -> None:
        """After adding a ring key, reseal_secrets moves every sealed secret to it."""
        old = SecretBox.generate("k1")
        service = make_service(secret_box=old)
        issued = [key_in_state(service, State.ACTIVE, name=f"k{i}") for i in range(3)]
        rotated = SecretBox({**old.keys, **SecretBox.generate("k2").keys}, "k2")
        after = make_service(store=service.store, secret_box=rotated, clock=service.clock)
        assert after.reseal_secrets() == (3, 0)
        assert after.reseal_secrets() == (0, 0)
        only_new = SecretBox({"k2": rotated.keys["k2"]}, "k2")
        final = make_service(store=service.store, secret_box=only_new, clock=service.clock)
        for i, one in enumerate(issued):
            final.authenticate_signature(
                signed(one.key.client_id, one.client_secret, T0_MS, f"r{i}"), source_ip="127.0.0.1"
            )

    def test_hash_only_service_has_nothing_to_reseal(self) -> None:
        """reseal_secrets on a service without a box is InvalidInput."""
        with pytest.raises(InvalidInput):
            make_service(sealed=False).reseal_secrets()


def test_signature_flow_leaks_no_secret() -> None:
    """Sealing, signing and failing logins put no secret in logs, reprs or errors."""
    with capture_logs() as logs:
        service = make_service()
        issued = key_in_state(service, State.ACTIVE)
        secret = issued.client_secret
        assert secret is not None
        stored = service.get(issued.key.id, owner="alice")
        req = signed(issued.key.client_id, secret, T0_MS)
        service.authenticate_signature(req, source_ip="127.0.0.1")
        with pytest.raises(AuthenticationFailed) as info:
            service.authenticate_signature(req, source_ip="127.0.0.1")
    seen = (
        repr(logs) + repr(stored) + repr(info.value) + str(info.value) + repr(req) + repr(service)
    )
    assert secret not in seen
    assert stored.sealed_secret is not None
    assert stored.sealed_secret not in seen
    assert secret not in stored.sealed_secret
