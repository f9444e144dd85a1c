"""Many processes, one store: races, lost updates and crashes, on SQLite and PostgreSQL.

Workers are forked processes (not threads), each opening its own store on the shared file or
database, as a portal's workers do.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import signal
import sqlite3
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from keyturn import (
    Action,
    CodeMismatch,
    ConfirmationRequired,
    KeyService,
    KeyturnError,
    Policy,
    State,
    wiring,
)
from keyturn.adapters.clocks import ManualClock
from keyturn.adapters.sqlite import SQLiteKeyStore
from keyturn.core.machine import destinations
from keyturn.testing import RecordingNotifier

pytestmark = pytest.mark.slow  # runs keyturn in several processes

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from keyturn.core.records import ApiKey, Notification
    from keyturn.ports import KeyStore

POSTGRES_URL = os.environ.get("KEYTURN_TEST_POSTGRES", "")
SERVER_KEY = bytes(range(32))
CTX = multiprocessing.get_context("fork")
Spec = tuple[str, str, str | None]
RACE_POLICY = Policy(direct_enable=True, resend_after=timedelta(seconds=1))
CONFIRM_POLICY = Policy(confirm=frozenset({Action.REMOVE}))


def open_store(spec: Spec) -> KeyStore:
    """Open the store a spec names, in whichever process calls."""
    kind, where, schema = spec
    if kind == "sqlite":
        return SQLiteKeyStore(where)
    from keyturn.adapters.postgres import PostgresKeyStore  # noqa: PLC0415

    return PostgresKeyStore(where, schema=schema, max_size=2)


def service_for(
    spec: Spec, policy: Policy | None = None, notifier: RecordingNotifier | None = None
) -> KeyService:
    """A service over the shared store, hashing under the shared server key."""
    return wiring.build_service(
        store=open_store(spec),
        notifier=notifier or RecordingNotifier(),
        master_key=SERVER_KEY,
        policy=policy,
    )


@pytest.fixture(
    name="spec",
    params=[
        "sqlite",
        pytest.param(
            "postgres",
            marks=pytest.mark.skipif(not POSTGRES_URL, reason="set KEYTURN_TEST_POSTGRES"),
        ),
    ],
)
def _spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Spec]:
    if request.param == "sqlite":
        yield ("sqlite", str(tmp_path / "shared.db"), None)
        return
    spec: Spec = ("postgres", POSTGRES_URL, f"kt_{uuid.uuid4().hex[:12]}")
    open_store(spec).close()
    yield spec
    store: Any = open_store(spec)
    store.drop_schema()
    store.close()


def run_workers(target: Any, args: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``target(queue, *a)`` in one forked process per ``a``; collect one result each."""
    queue = CTX.Queue()
    procs = [CTX.Process(target=target, args=(queue, *a)) for a in args]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return results


def _attempt(queue: Any, barrier: Any, spec: Spec, call: str, key_id: int, arg: Any) -> None:
    service = service_for(spec, RACE_POLICY)
    barrier.wait()
    try:
        if call == "verify":
            service.verify_code(key_id, arg, owner="alice")
        else:
            getattr(service, call)(key_id, owner="alice")
    except KeyturnError as e:
        queue.put(type(e).__name__)
    else:
        queue.put("ok")
    finally:
        service.store.close()


def _ask_removal(queue: Any, barrier: Any, spec: Spec, key_id: int) -> None:
    """Ask to remove the key under CONFIRM_POLICY; put the challenge id it was shown."""
    service = service_for(spec, CONFIRM_POLICY)
    barrier.wait()
    try:
        service.remove(key_id, owner="alice")
    except ConfirmationRequired as e:
        queue.put(e.challenge_id)
    except KeyturnError as e:
        queue.put(type(e).__name__)
    else:
        queue.put("removed without a code")
    finally:
        service.store.close()


def _pending_key(spec: Spec) -> tuple[int, str]:
    notifier = RecordingNotifier()
    service = service_for(spec, RACE_POLICY, notifier=notifier)
    key_id = service.create(owner="alice", name="race", max_scope="account:read").key.id
    service.acknowledge_secret(key_id, owner="alice")
    service.request_activation(key_id, owner="alice")
    code = notifier.last_code(key_id)
    service.store.close()
    return key_id, code


def assert_history_is_legal(store: KeyStore, key_id: int) -> None:
    """Versions run 1..n, each entry starts where the last ended along a machine edge."""
    key = store.get(key_id)
    assert key is not None
    history = store.history(key_id)
    assert [h.version for h in history] == list(range(1, key.version + 1))
    assert history[0].to_state is State.CREATED
    for before, entry in itertools.pairwise(history):
        assert entry.from_state is before.to_state
        assert entry.to_state in destinations(before.to_state, entry.action), entry
    assert key.state is history[-1].to_state


class TestRaces:
    def test_sixteen_processes_same_code(self, spec: Spec) -> None:
        """16 processes enter the right code at once: one succeeds, the key is active once."""
        key_id, code = _pending_key(spec)
        barrier = CTX.Barrier(16)
        results = run_workers(
            _attempt, [(barrier, spec, "verify", key_id, code) for _ in range(16)]
        )
        assert results.count("ok") == 1, results
        assert set(results) - {"ok"} <= {"ActionNotAllowed", "ConcurrentUpdate"}
        store = open_store(spec)
        key = store.get(key_id)
        assert key is not None
        assert key.state is State.ACTIVE
        assert key.pending is None
        events = [h.event for h in store.history(key_id)]
        assert events.count("enabled_api_key") == 1
        assert_history_is_legal(store, key_id)
        store.close()

    def test_concurrent_resends_send_one_code(self, spec: Spec) -> None:
        """16 processes ask to resend at once: exactly one new code is sent."""
        key_id, _ = _pending_key(spec)
        time.sleep(1.1)
        barrier = CTX.Barrier(16)
        results = run_workers(_attempt, [(barrier, spec, "resend_code", key_id, None)] * 16)
        assert results.count("ok") == 1, results
        assert set(results) - {"ok"} <= {"ResendTooEarly", "ConcurrentUpdate"}
        store = open_store(spec)
        assert [h.event for h in store.history(key_id)].count("code_resent") == 1
        store.close()

    def test_concurrent_confirmation_requests_send_one_code(self, spec: Spec) -> None:
        """16 processes ask to remove one key under a confirm policy: one code, one challenge."""
        service = service_for(spec, CONFIRM_POLICY)
        key_id = service.create(owner="alice", name="gone", max_scope="account:read").key.id
        service.store.close()
        barrier = CTX.Barrier(16)
        results = run_workers(_ask_removal, [(barrier, spec, key_id)] * 16)
        assert len(set(results)) == 1, results  # every request was shown the same challenge
        store = open_store(spec)
        sent = store.recent_challenges("alice", since=datetime.now(UTC) - timedelta(hours=1))
        assert [c.id for c in sent] == results[:1]
        key = store.get(key_id)
        assert key is not None
        assert key.state is State.CREATED  # nothing removed without the code
        store.close()

    def test_concurrent_disable_and_enable(self, spec: Spec) -> None:
        """8 disables and 8 direct enables at once leave a legal history and no lost write."""
        service = service_for(spec, Policy(direct_enable=True))
        key_id = service.create(owner="alice", name="flip", max_scope="account:read").key.id
        service.acknowledge_secret(key_id, owner="alice")
        service.request_activation(key_id, owner="alice")
        notifier: Any = service.notifier
        service.verify_code(key_id, notifier.last_code(key_id), owner="alice")
        before = service.get(key_id, owner="alice").version
        service.store.close()
        barrier = CTX.Barrier(16)
        calls = ["disable", "enable"] * 8
        results = run_workers(_attempt, [(barrier, spec, c, key_id, None) for c in calls])
        store = open_store(spec)
        key = store.get(key_id)
        assert key is not None
        assert key.version == before + results.count("ok")
        assert_history_is_legal(store, key_id)
        store.close()


def _random_worker(queue: Any, spec: Spec, worker: int, key_ids: list[int], ops: int) -> None:
    service = service_for(spec, Policy(direct_enable=True))
    rng = random.Random(worker)
    writes: Counter[int] = Counter()
    for i in range(ops):
        key_id = rng.choice(key_ids)
        action = rng.choice(["disable", "enable", "rename", "reset", "wrong_code"])
        try:
            if action == "rename":
                service.edit(key_id, owner="alice", name=f"w{worker}_{i}")
            elif action == "reset":
                service.reset_secret(key_id, owner="alice")
            elif action == "wrong_code":
                service.verify_code(key_id, "999999", owner="alice")
            else:
                getattr(service, action)(key_id, owner="alice")
        except CodeMismatch:
            writes[key_id] += 1
        except KeyturnError:
            continue
        else:
            writes[key_id] += 1
    service.store.close()
    queue.put(dict(writes))


def test_no_lost_updates(spec: Spec) -> None:
    """8 processes x 40 random actions: each key's version is exactly the writes that succeeded."""
    service = service_for(spec, Policy(direct_enable=True))
    key_ids = [
        service.create(owner="alice", name=f"k{i}", max_scope="account:read").key.id
        for i in range(4)
    ]
    start = {k: service.get(k, owner="alice").version for k in key_ids}
    service.store.close()
    results = run_workers(_random_worker, [(spec, w, key_ids, 40) for w in range(8)])
    total: Counter[int] = Counter()
    for r in results:
        total.update(r)
    store = open_store(spec)
    for key_id in key_ids:
        key = store.get(key_id)
        assert key is not None
        assert key.version == start[key_id] + total[key_id]
        assert_history_is_legal(store, key_id)
    assert sum(total.values()) > 40
    store.close()


class _SlowNotifier(RecordingNotifier):
    """Takes a while to deliver, as a mail server does: a kill often lands mid-delivery."""

    def deliver(self, notification: Notification) -> None:
        """Wait 20 ms, then record."""
        time.sleep(0.02)
        super().deliver(notification)


def _crash_worker(spec: Spec, ready: Any, seed: int) -> None:
    notifier = _SlowNotifier()
    service = service_for(spec, Policy(direct_enable=True), notifier=notifier)
    rng = random.Random(seed)
    owners = [f"owner{seed}_{i}" for i in range(3)]
    ready.set()
    while True:
        owner = rng.choice(owners)
        keys = service.list_keys(owner=owner)
        try:
            if not keys or rng.random() < 0.2:
                service.create(owner=owner, name="c", max_scope="account:read")
                continue
            key = rng.choice(keys)
            _crash_step(service, notifier, rng, key)
        except (KeyturnError, LookupError):
            continue


def _crash_step(
    service: KeyService, notifier: RecordingNotifier, rng: random.Random, key: ApiKey
) -> None:
    """Move ``key`` one step along its lifecycle."""
    me = key.owner
    if key.state is State.CREATED:
        service.acknowledge_secret(key.id, owner=me)
    elif key.state is State.SECRET_ACKNOWLEDGED:
        service.request_activation(key.id, owner=me)
    elif key.state is State.PENDING_2FA:
        service.verify_code(key.id, notifier.last_code(key.id), owner=me)
    elif key.state is State.ACTIVE:
        service.disable(key.id, owner=me)
    elif key.state is State.DISABLED:
        rng.choice([service.enable, service.remove])(key.id, owner=me)


@pytest.mark.parametrize("kills", [12])
def test_crash_with_sigkill(spec: Spec, kills: int) -> None:
    """SIGKILL mid-action, many times: the store opens, histories are legal, outbox drains."""
    rng = random.Random(7)
    recovered = 0
    for round_ in range(kills):
        ready = CTX.Event()
        proc = CTX.Process(target=_crash_worker, args=(spec, ready, round_))
        proc.start()
        assert ready.wait(30)
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(proc.pid or 0, signal.SIGKILL)
        proc.join()
        store = open_store(spec)
        if spec[0] == "sqlite":
            with sqlite3.connect(spec[1]) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = store.list_keys()
        for key in keys:
            assert_history_is_legal(store, key.id)
        clock = ManualClock()
        clock.set(clock.now().replace(year=2100))
        relay = wiring.build_service(
            store=store, notifier=RecordingNotifier(), master_key=SERVER_KEY, clock=clock
        ).relay
        while report := relay.run_once():
            if not report.handled:
                break
            recovered += report.delivered + report.expired
        assert store.pending_notifications() == 0  # type: ignore[attr-defined]
        store.close()
    store = open_store(spec)
    assert len(store.list_keys()) > kills
    store.close()
    assert recovered >= 1, "no kill landed between a commit and its delivery"


def _relay_worker(queue: Any, spec: Spec, barrier: Any) -> None:
    notifier = RecordingNotifier()
    service = service_for(spec, notifier=notifier)
    service.relay.batch = 5
    barrier.wait()
    while service.relay.run_once().handled:
        pass
    service.store.close()
    queue.put([n.id for n in notifier.sent])


def test_two_relays_deliver_each_message_once(spec: Spec) -> None:
    """Two relay processes draining one outbox at once deliver every message exactly once."""
    store = open_store(spec)
    service = wiring.build_service(store=store, notifier=RecordingNotifier(), master_key=SERVER_KEY)
    service.deliver_inline = False
    for i in range(60):
        service.create(owner=f"o{i % 10}", name=f"k{i}", max_scope="account:read")
    pending: Any = store
    assert pending.pending_notifications() == 60
    store.close()
    barrier = CTX.Barrier(2)
    first, second = run_workers(_relay_worker, [(spec, barrier), (spec, barrier)])
    assert not set(first) & set(second)
    assert len(first) + len(second) == 60
    after: Any = open_store(spec)
    assert after.pending_notifications() == 0
    after.close()
