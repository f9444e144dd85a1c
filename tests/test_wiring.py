"""The one place adapters are wired: what keyturn.wiring builds from a database string."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

from keyturn import wiring
from keyturn.adapters.notifiers import LoggingNotifier
from keyturn.crypto.signatures import signed_request
from keyturn.testing import RecordingNotifier
from keyturn.testing.signing import signature_params

if TYPE_CHECKING:
    import pytest


class TestSecretBox:
    def test_a_sqlite_service_built_as_the_readme_does_seals_secrets(
        self, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """build_service with secret_box=wiring.secret_box(db) seals secrets under <db>.seal, so signatures work."""
        for name in ("KEYTURN_SEAL_KEYS", "KEYTURN_SECRETS", "KEYTURN_SERVER_KEY"):
            monkeypatch.delenv(name, raising=False)
        db = str(tmp_path / "keys.db")
        notifier = RecordingNotifier()
        service = wiring.build_service(
            store=wiring.open_store(db),
            notifier=notifier,
            master_key=wiring.server_key(db),
            secret_box=wiring.secret_box(db),
        )
        try:
            issued = service.create(owner="bob", name="mm_desk", max_scope="trade:read_write")
            key = service.acknowledge_secret(issued.key.id, owner="bob")
            key = service.request_activation(key.id, owner="bob")
            service.verify_code(key.id, notifier.last_code(key.id), owner="bob")
            assert issued.client_secret is not None
            assert (issued.key.sealed_secret or "").startswith("k1:")
            assert pathlib.Path(db + ".seal").stat().st_mode & 0o777 == 0o600
            p = signature_params(key.client_id, issued.client_secret)
            signed = signed_request(
                p["client_id"], p["timestamp"], p["nonce"], p["data"], p["signature"]
            )
            assert service.authenticate_signature(signed, source_ip=None).key_id == key.id
        finally:
            service.store.close()

    def test_without_a_ring_secrets_are_only_hashed(
        self, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """wiring.secret_box is None with KEYTURN_SECRETS=hashed, and a service without it seals nothing."""
        monkeypatch.setenv("KEYTURN_SECRETS", "hashed")
        db = str(tmp_path / "keys.db")
        assert wiring.secret_box(db) is None
        service = wiring.build_service(
            store=wiring.open_store(db), notifier=LoggingNotifier(), master_key=b"k" * 32
        )
        try:
            made = service.create(owner="bob", name="n", max_scope="trade:read").key
            assert made.sealed_secret is None
            assert not pathlib.Path(db + ".seal").exists()
        finally:
            service.store.close()
