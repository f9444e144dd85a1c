"""The async service: the same operations over async ports, on every store."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from keyturn import (
    SecurityAnswer,
    SecurityKeyRefused,
    SecurityKeyRequired,
    State,
)
from keyturn.adapters.to_async import AsyncNotifierAdapter, AsyncStore, AsyncVerifierAdapter
from keyturn.adapters.totp import TotpVerifier
from keyturn.crypto.hashing import SecretHasher
from keyturn.crypto.sealing import CodeSeal, SecretBox
from keyturn.service import AsyncKeyService
from keyturn.testing import InMemoryKeyStore, KnownCodeVerifier, ManualClock, RecordingNotifier
from keyturn.testing.blocking import _Blocking
from keyturn.testing.contract import KeyStoreContract

if TYPE_CHECKING:
    from collections.abc import Iterator

    from keyturn.ports import AsyncKeyStore


POSTGRES_URL = os.environ.get("KEYTURN_TEST_POSTGRES", "")
_NO_POSTGRES = pytest.mark.skipif(
    not POSTGRES_URL, reason="set KEYTURN_TEST_POSTGRES to a PostgreSQL URL to run (.ci/run does)"
)


def _service(
    store: AsyncKeyStore, notifier: RecordingNotifier, clock: ManualClock
) -> AsyncKeyService:
    return AsyncKeyService(
        store=store,
        verifier=AsyncVerifierAdapter(KnownCodeVerifier()),
        notifier=AsyncNotifierAdapter(notifier),
        clock=clock,
        secret_hasher=SecretHasher.generate(),
        code_seal=CodeSeal.generate(),
        secret_box=SecretBox.generate(),
        second_factor=TotpVerifier(),
    )


async def _walk_to_active(service: AsyncKeyService, notifier: RecordingNotifier) -> int:
    issued = await service.create(owner="alice", name="k", max_scope="trade:read")
    key_id = issued.key.id
    await service.acknowledge_secret(key_id, owner="alice")
    await service.request_activation(key_id, owner="alice")
    await service.verify_code(key_id, notifier.last_code(key_id), owner="alice")
    return key_id


class TestAsyncService:
    def test_lifecycle_on_the_memory_store(self) -> None:
        """Create, activate, disable, enable and remove through the async service."""
        notifier, clock = RecordingNotifier(), ManualClock()

        async def scenario() -> None:
            service = _service(AsyncStore(InMemoryKeyStore(), threaded=False), notifier, clock)
            key_id = await _walk_to_active(service, notifier)
            assert (await service.disable(key_id, owner="alice")).state is State.DISABLED
            assert (await service.remove(key_id, owner="alice")).state is State.REMOVED
            assert [h.to_state for h in await service.history(key_id, owner="alice")][-1] is (
                State.REMOVED
            )

        asyncio.run(scenario())
        assert len(notifier.sent) >= 5

    def test_relay_loop_stops_when_told(self) -> None:
        """AsyncOutboxRelay.run_forever delivers what is due and returns once stop is set."""
        notifier, clock = RecordingNotifier(), ManualClock()

        async def scenario() -> None:
            service = _service(AsyncStore(InMemoryKeyStore(), threaded=False), notifier, clock)
            service.deliver_inline = False
            await service.create(owner="alice", name="k", max_scope="trade:read")
            assert notifier.sent == []
            stop = asyncio.Event()
            loop = asyncio.create_task(service.relay.run_forever(interval=0.01, stop=stop))
            for _ in range(100):
                if notifier.sent:
                    break
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.wait_for(loop, 5)

        asyncio.run(scenario())
        assert len(notifier.sent) == 1


@_NO_POSTGRES
class TestAsyncPostgres:
    def test_concurrent_verifications_activate_once(self) -> None:
        """Twelve coroutines entering the right code at once on PostgreSQL: one activation."""
        from keyturn.adapters.postgres import AsyncPostgresKeyStore  # noqa: PLC0415

        notifier, clock = RecordingNotifier(), ManualClock()

        async def scenario() -> list[Any]:
            store = await AsyncPostgresKeyStore.open(
                POSTGRES_URL, schema=f"kt_{uuid.uuid4().hex[:12]}", max_size=6
            )
            try:
                service = _service(store, notifier, clock)
                issued = await service.create(owner="alice", name="k", max_scope="trade:read")
                key_id = issued.key.id
                await service.acknowledge_secret(key_id, owner="alice")
                await service.request_activation(key_id, owner="alice")
                code = notifier.last_code(key_id)
                results = await asyncio.gather(
                    *(service.verify_code(key_id, code, owner="alice") for _ in range(12)),
                    return_exceptions=True,
                )
                history = await service.history(key_id, owner="alice")
                assert [h.event for h in history].count("enabled_api_key") == 1
                return results
            finally:
                await store.drop_schema()
                await store.aclose()

        results = asyncio.run(scenario())
        assert sum(1 for r in results if not isinstance(r, BaseException)) == 1

    def test_one_totp_code_passes_once_across_concurrent_calls(self) -> None:
        """Eight coroutines answering their own challenges with one TOTP code: one passes."""
        from keyturn.adapters.postgres import AsyncPostgresKeyStore  # noqa: PLC0415

        clock = ManualClock()

        async def scenario() -> list[Any]:
            store = await AsyncPostgresKeyStore.open(
                POSTGRES_URL, schema=f"kt_{uuid.uuid4().hex[:12]}", max_size=6
            )
            try:
                service = _service(store, RecordingNotifier(), clock)
                enrolled = await service.enroll_security_key("alice")
                code = TotpVerifier().code_at(enrolled.secret, clock.now())
                challenges = []
                for _ in range(8):
                    try:
                        await service.authorize_call(owner="alice", call="c", params={})
                    except SecurityKeyRequired as e:
                        challenges.append(e.challenge)
                return await asyncio.gather(
                    *(
                        service.authorize_call(
                            owner="alice", call="c", params={}, answer=SecurityAnswer(ch, code)
                        )
                        for ch in challenges
                    ),
                    return_exceptions=True,
                )
            finally:
                await store.drop_schema()
                await store.aclose()

        results = asyncio.run(scenario())
        assert len(results) == 8
        assert results.count(None) == 1
        refusals = [r for r in results if isinstance(r, SecurityKeyRefused)]
        assert [r.reason for r in refusals] == ["used_tfa_code"] * 7


@_NO_POSTGRES
class TestAsyncPostgresContract(KeyStoreContract):
    @pytest.fixture
    def store(self) -> Iterator[Any]:
        """The async PostgreSQL store in its own schema, driven through blocking calls."""
        from keyturn.adapters.postgres import AsyncPostgresKeyStore  # noqa: PLC0415

        loop = asyncio.new_event_loop()
        schema = f"kt_{uuid.uuid4().hex[:12]}"
        pg = loop.run_until_complete(AsyncPostgresKeyStore.open(POSTGRES_URL, schema=schema))
        try:
            yield _Blocking(pg, loop)
        finally:
            loop.run_until_complete(pg.drop_schema())
            loop.run_until_complete(pg.aclose())
            loop.close()
