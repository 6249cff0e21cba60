"""The broker's maintenance on a tick, on a real Redis (a namespace of its own per test, deleted
afterwards): a dead worker's unacked message comes back only by a maintenance pass, and the
worker process runs one every `maintenance_every_s`, so the requeue does not depend on chance.

"Dead" is a broker that fetched a message and then made no more calls to Redis, which is what
a SIGKILL leaves (`test_faults.py` kills real processes)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator

import dramatiq
import pytest
import redis
from dramatiq.broker import MessageProxy

from workers.broker import BrokerSettings, MaintainedRedisBroker, MaintenanceTick, build_broker

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("ECOCASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HEARTBEAT_MS = 300
QUEUE = "chores"


@pytest.fixture
def namespace() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as e:
        pytest.fail(f"Redis is required for this test (never skipped) but {REDIS_URL} is "
                    f"unreachable: {e}", pytrace=False)  # fmt: skip
    name = f"ecocase-test-{uuid.uuid4().hex}"
    yield name
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _broker(namespace: str, every_s: float = 1.0) -> MaintainedRedisBroker:
    broker = build_broker(BrokerSettings(redis_url=REDIS_URL, namespace=namespace,
                                         heartbeat_timeout_ms=HEARTBEAT_MS,
                                         maintenance_every_s=every_s))  # fmt: skip
    assert isinstance(broker, MaintainedRedisBroker)
    broker.declare_queue(QUEUE)
    return broker


def _taken_by_a_worker_that_dies(namespace: str) -> str:
    """A message enqueued and fetched, never acked, by a broker that then falls silent."""
    dying = _broker(namespace)
    try:
        sent = dying.enqueue(dramatiq.Message(queue_name=QUEUE, actor_name="chore", args=(),
                                              kwargs={}, options={}))  # fmt: skip
        consumer = dying.consume(QUEUE, prefetch=1, timeout=100)
        taken = next(consumer)
        assert isinstance(taken, MessageProxy)
        assert taken.message_id == sent.message_id
        return sent.message_id
    finally:
        dying.close()


def _poll(broker: MaintainedRedisBroker, seconds: float) -> list[str]:
    consumer = broker.consume(QUEUE, prefetch=1, timeout=50)
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = next(consumer)
        if message is not None:
            got.append(message.message_id)
            consumer.ack(message)
    consumer.close()
    return got


def test_a_dead_workers_message_comes_back_only_by_a_maintenance_pass(namespace: str) -> None:
    message_id = _taken_by_a_worker_that_dies(namespace)
    live = _broker(namespace)
    try:
        assert live.maintain() == [QUEUE, f"{QUEUE}.DQ"]
        assert _poll(live, 0.1) == [], "within the heartbeat timeout the worker is not dead yet"

        time.sleep(HEARTBEAT_MS / 1000 + 0.1)
        assert _poll(live, 0.5) == [], "no call of the live broker maintains by chance"

        live.maintain()
        assert _poll(live, 0.3) == [message_id], "the pass requeued the dead worker's message"
    finally:
        live.close()


def test_a_worker_process_runs_a_maintenance_pass_every_tick(namespace: str) -> None:
    message_id = _taken_by_a_worker_that_dies(namespace)
    live = _broker(namespace, every_s=0.1)
    done: list[str] = []
    handled = threading.Event()

    def chore() -> None:
        message = dramatiq.middleware.CurrentMessage.get_current_message()
        assert message is not None
        done.append(message.message_id)
        handled.set()

    dramatiq.actor(broker=live, queue_name=QUEUE, actor_name="chore")(chore)
    worker = dramatiq.Worker(live, worker_threads=1, worker_timeout=50)
    worker.start()
    started = time.monotonic()
    try:
        ticks = [m for m in live.middleware if isinstance(m, MaintenanceTick)]
        assert len(ticks) == 1
        assert ticks[0].running
        assert handled.wait(5), "the tick requeued the message and the live worker ran it"
        took = time.monotonic() - started
        assert done == [message_id]
        assert took < HEARTBEAT_MS / 1000 + 1.0, f"requeued {took:.2f} s after the worker start"
    finally:
        worker.stop(timeout=5_000)
        live.close()
    assert not ticks[0].running, "the tick stops with the worker"
