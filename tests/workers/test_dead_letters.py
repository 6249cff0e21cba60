"""Dead letters on a real Redis broker (a namespace of its own per test, deleted afterwards): a
message that keeps failing ends in ``<namespace>:<queue>.XQ``, :func:`list_dead` shows it, and
:func:`redrive` puts it back on its queue as a new message with a fresh retry count."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import msgspec
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from typing_extensions import override

from application.audit import AuditTrail
from application.cases import Acting, Cases
from application.notification_rules import Channel, NotificationSpec
from application.notifications import DeliveryState, Notifications
from application.project_index import ProjectIndex
from application.settings import Settings
from application.sqldb import Database, open_database
from application.store import CaseStore
from domain.actor import Actor
from domain.project import project_id_for
from tests.conftest import CREDIT_CODE, PROJECT_CODE, START, register_major_project
from tests.workers import test_channels as channel_tests
from tests.workers.test_channels import SECRET, Receiver
from workers.actors import DELIVERIES, EVENTS, Actors, RetryPolicy, declare_actors
from workers.broker import BrokerSettings, build_broker
from workers.dead_letters import list_dead, redrive
from workers.messages import EventNotice
from workers.runtime import LazyContext, build_context

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("ECOCASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POLICY = RetryPolicy(
    event_retries=3, event_min_backoff=10, event_max_backoff=20,
    delivery_retries=2, delivery_min_backoff=10, delivery_max_backoff=20,
)  # fmt: skip
POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
UNIT = f"unit:{CREDIT_CODE}"

receiver = channel_tests.receiver


class Enqueued(dramatiq.Middleware):
    """Keeps every message the broker enqueues (redrive's output among them)."""

    def __init__(self) -> None:
        self.messages: list[dramatiq.Message[Any]] = []

    @override
    def before_enqueue(
        self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None
    ) -> None:
        self.messages.append(message)


@dataclass
class World:
    broker: RedisBroker
    client: redis.Redis
    namespace: str
    actors: Actors
    enqueued: Enqueued
    store: CaseStore
    db: Database

    def xq(self, queue: str) -> tuple[int, int]:
        """Members of the dead-letter ZSET and of its message HASH."""
        zset = f"{self.namespace}:{queue}.XQ"
        return int(self.client.zcard(zset)), int(self.client.hlen(f"{zset}.msgs"))

    def attempts(self, message_id: str) -> int:
        rows = self.db.query("SELECT attempts FROM message_attempts WHERE message_id = %s",
                             (message_id,))  # fmt: skip
        return int(rows[0][0]) if rows else 0

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            time.sleep(0.02)

    @contextmanager
    def worker(self) -> Iterator[dramatiq.Worker]:
        worker = dramatiq.Worker(self.broker, worker_threads=2, worker_timeout=100)
        worker.start()
        try:
            yield worker
        finally:
            worker.stop(timeout=5_000)


def _redis_client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError as e:
        pytest.fail(f"Redis is required for this test (never skipped) but {REDIS_URL} is "
                    f"unreachable: {e}", pytrace=False)  # fmt: skip
    return client


@pytest.fixture
def open_world(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], World]]:
    """A broker in a fresh namespace with the actors declared on it, over a POPO store."""
    client = _redis_client()
    namespace = f"ecocase-test-{uuid.uuid4().hex}"
    store = CaseStore(env=POPO)
    db = open_database(POPO)
    index = ProjectIndex(store, POPO)
    opened: list[tuple[RedisBroker, LazyContext]] = []

    def open_(env: dict[str, str]) -> World:
        broker = build_broker(BrokerSettings(redis_url=REDIS_URL, namespace=namespace))
        assert isinstance(broker, RedisBroker)
        enqueued = Enqueued()
        broker.add_middleware(enqueued)
        settings = Settings(
            store="popo", data_dir=tmp_path, postgres_dsn_env={}, redis_url=REDIS_URL,
            secret="ecocase-dead-letter-tests-0123456789", log_format="console",
            log_level="WARNING",
        )  # fmt: skip
        context = LazyContext(lambda: build_context(settings, env, store=store, db=db,
                                                    index=index))  # fmt: skip
        opened.append((broker, context))
        actors = declare_actors(broker, context, POLICY)
        return World(broker, client, namespace, actors, enqueued, store, db)

    yield open_
    for broker, context in opened:
        broker.close()
        context.close()
    index.close()
    db.close()
    store.close()
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def _notice(notification_id: int) -> dict[str, Any]:
    """What the relay would send for the registration of PROJECT_CODE."""
    notice = EventNotice(notification_id, str(project_id_for(PROJECT_CODE)), 1,
                         "domain.project:KeyProject.Registered")  # fmt: skip
    return dict(msgspec.to_builtins(notice))


def test_an_event_message_that_keeps_failing_is_dead_listed_and_redriven(
    open_world: Callable[[dict[str, str]], World], officer: Actor
) -> None:
    w = open_world({})
    started = datetime.now(tz=UTC)
    with w.worker():
        # The log has no event 1 yet: handle_event fails every time (EventMissing).
        poison = w.actors.handle_event.send(_notice(1))
        w.wait_for(lambda: w.xq(EVENTS) == (1, 1), "the message to be dead-lettered")

        assert w.attempts(poison.message_id) == POLICY.event_retries + 1
        (dead,) = list_dead(w.broker)
        assert (dead.queue, dead.message_id, dead.actor) == (EVENTS, poison.message_id,
                                                             "handle_event")  # fmt: skip
        assert dead.args == (_notice(1),)
        assert dead.retries == POLICY.event_retries
        assert dead.error == "workers.actors.EventMissing: no event at notification 1"
        assert started - timedelta(seconds=1) <= dead.failed_at <= datetime.now(tz=UTC)
        assert list_dead(w.broker, queues=[DELIVERIES]) == []

        # The event is recorded now; re-driven, the message is handled.
        cases = Cases(w.store)
        project = register_major_project(cases, Acting(officer, "req-redrive"))
        assert w.store.recorder.max_notification_id() == 1
        w.enqueued.messages.clear()
        assert redrive(w.broker, ["not-a-dead-message-id"]) == 0
        assert w.xq(EVENTS) == (1, 1)
        assert redrive(w.broker, [dead.message_id]) == 1

        assert w.xq(EVENTS) == (0, 0)
        (again, *_) = w.enqueued.messages
        assert (again.queue_name, again.actor_name, again.args) == (EVENTS, "handle_event",
                                                                    (_notice(1),))  # fmt: skip
        assert again.message_id != poison.message_id, "attempts are counted afresh"
        assert "retries" not in again.options
        assert "traceback" not in again.options
        trail = AuditTrail(w.db)
        w.wait_for(lambda: trail.count() == 1, "the re-driven message to be handled")
        (record,) = trail.iter_all()
        assert (record.notification_id, record.project_id, record.kind) == (
            1, project.id, "Registered",
        )  # fmt: skip
        # handled (the old id's count would have given it up at once), and its count forgotten
        assert w.attempts(again.message_id) == 0
    assert list_dead(w.broker) == []


def test_redrive_by_id_moves_only_that_message(
    open_world: Callable[[dict[str, str]], World],
) -> None:
    w = open_world({})
    with w.worker():
        first = w.actors.handle_event.send(_notice(7))
        second = w.actors.handle_event.send(_notice(8))
        w.wait_for(lambda: w.xq(EVENTS) == (2, 2), "both messages to be dead-lettered")
        assert {d.message_id for d in list_dead(w.broker)} == {first.message_id,
                                                               second.message_id}  # fmt: skip

        assert redrive(w.broker, [second.message_id]) == 1
        (left,) = list_dead(w.broker)
        assert left.message_id == first.message_id
        # Still poison: the re-driven one is tried again, with all its retries, and dies again.
        w.wait_for(lambda: w.xq(EVENTS) == (2, 2), "the re-driven message to die again")
    redriven = {d.message_id for d in list_dead(w.broker)} - {first.message_id}
    (new_id,) = redriven
    assert new_id != second.message_id
    assert w.attempts(new_id) == POLICY.event_retries + 1
    assert {d.retries for d in list_dead(w.broker)} == {POLICY.event_retries}

    assert redrive(w.broker) == 2  # None: every dead message
    assert w.xq(EVENTS) == (0, 0)


def test_a_dead_delivery_is_sent_once_redriven(
    open_world: Callable[[dict[str, str]], World], receiver: Receiver
) -> None:
    receiver.answers = [500] * 100  # the receiver is down
    env = {"ECOCASE_WEBHOOK_ZHELIBAN_URL": f"{receiver.url}/zlb",
           "ECOCASE_WEBHOOK_SECRET": SECRET.decode()}  # fmt: skip
    w = open_world(env)
    notifications = Notifications(w.db)
    spec = NotificationSpec(UNIT, Channel.WEBHOOK, "zheliban", "温馨提醒函", "请于期限前整改。")
    with w.db.transaction() as cursor:
        (key,) = notifications.add(cursor, notification_id=42, project_id=uuid.uuid4(),
                                   window="xihu", specs=[spec], now=START)  # fmt: skip
    tries = POLICY.delivery_retries + 1

    with w.worker():
        message = w.actors.deliver.send(key)
        w.wait_for(lambda: w.xq(DELIVERIES) == (1, 1), "the delivery to be dead-lettered")
        w.wait_for(
            lambda: (n := notifications.get(key)) is not None and n.state is DeliveryState.DEAD,
            "the notification to be marked dead",
        )
        dead_row = notifications.get(key)
        assert dead_row is not None
        assert dead_row.attempts == tries
        assert dead_row.last_error == (
            f"retries exhausted ({POLICY.delivery_retries}); "
            "last error: webhook zheliban: HTTP 500 '{\"status\": 500}'"
        )  # the cause of the last failure is kept
        (dead,) = list_dead(w.broker)
        assert (dead.queue, dead.message_id, dead.actor, dead.args) == (
            DELIVERIES, message.message_id, "deliver", (key,),
        )  # fmt: skip
        assert dead.retries == POLICY.delivery_retries
        assert dead.error.startswith("workers.channels.DeliveryError: webhook zheliban: HTTP 500")
        assert len(receiver.requests) == tries

        receiver.answers = []  # back up
        reopened: list[str] = []

        def reopen(m: dramatiq.Message[Any]) -> None:  # what `ecocase dead-letters` does
            reopened.append(m.message_id)
            notifications.reopen(str(m.args[0]), datetime.now(tz=UTC))

        assert redrive(w.broker, [dead.message_id], before=reopen) == 1
        assert reopened == [dead.message_id]
        assert w.xq(DELIVERIES) == (0, 0)
        w.wait_for(
            lambda: (n := notifications.get(key)) is not None and n.state is DeliveryState.SENT,
            "the re-driven delivery to be sent",
        )
    sent = notifications.get(key)
    assert sent is not None
    assert sent.attempts == tries + 1
    assert len(receiver.requests) == tries + 1
    assert all(r.signed for r in receiver.requests)
    assert list_dead(w.broker) == []
