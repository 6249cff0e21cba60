"""The task-queue broker, with settings chosen on purpose (dramatiq's defaults can take many
minutes to bring back a killed worker's message):

- heartbeat_timeout 10 s, and maintenance on a tick instead of on chance: every worker
  process runs one maintenance pass on each of its queues every second (`MaintenanceTick`), so
  a dead worker's unacked messages are requeued 10–11 s after its last call to Redis, however
  busy the machine. dramatiq's own maintenance runs on a random share of broker calls, and
  only for the queue of the call; at 1% a delivery queue was maintained every ~10 s on
  average on an idle worker, with a long tail under load (a killed worker's message came
  back after 31.8 s in one CI run, and not within 40 s in another). Here that share is 0;
- worker_timeout 100 ms: an idle worker picks a new message up in ~0.1 s, not ~1 s;
- prefetch 2 × worker threads (dramatiq's own rule), small so a slow delivery does not hold
  messages other workers could run;
- dead messages kept 7 days in ``<namespace>:<queue>.XQ`` (see ``ecocase dead-letters``).

Without Redis (the embedded default) a StubBroker runs the same actors in-process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage
from redis.exceptions import RedisError
from typing_extensions import override

from workers.messages import MsgspecEncoder

NAMESPACE = "ecocase"
log = structlog.get_logger("ecocase.worker")


@dataclass(frozen=True)
class BrokerSettings:
    redis_url: str | None
    namespace: str = NAMESPACE
    heartbeat_timeout_ms: int = 10_000
    maintenance_chance: int = 0  # per million broker calls: none, the tick does it
    maintenance_every_s: float = 1.0
    dead_message_ttl_ms: int = 7 * 86_400_000
    worker_timeout_ms: int = 100
    worker_threads: int = 4


def build_broker(settings: BrokerSettings) -> dramatiq.Broker:
    """A new broker, made the global one (dramatiq's actors and workers look it up there)."""
    dramatiq.set_encoder(MsgspecEncoder())
    broker: dramatiq.Broker
    if settings.redis_url:
        broker = MaintainedRedisBroker(
            url=settings.redis_url,
            namespace=settings.namespace,
            heartbeat_timeout=settings.heartbeat_timeout_ms,
            maintenance_chance=settings.maintenance_chance,
            dead_message_ttl=settings.dead_message_ttl_ms,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=10,
        )
        broker.add_middleware(MaintenanceTick(settings.maintenance_every_s))
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(LogContext())
    dramatiq.set_broker(broker)
    return broker


class MaintainedRedisBroker(RedisBroker):
    """A RedisBroker whose queue maintenance can be run on purpose (`maintain`).

    Maintenance is the part of dramatiq's dispatch script that, for the queue of the call,
    moves the unacked messages of workers without a heartbeat for `heartbeat_timeout` back to
    the queue, and drops dead letters older than their TTL. dramatiq decides per call, by
    chance, whether a call does it (`_should_do_maintenance`, pinned with dramatiq's exact
    version in the lock; `tests/workers/test_broker_maintenance.py` fails if that changes).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call] # untyped in dramatiq
        self._forcing = threading.local()

    @override
    def _should_do_maintenance(self, command: str) -> int:
        if getattr(self._forcing, "on", False):
            return 1
        return super()._should_do_maintenance(command)

    def maintain(self) -> list[str]:
        """One maintenance pass on every declared queue and delay queue; the queues done."""
        queues = sorted(self.get_declared_queues() | self.get_declared_delay_queues())
        self._forcing.on = True
        try:
            for queue in queues:
                self.do_qsize(queue)  # a read-only command; the pass runs before it
        finally:
            self._forcing.on = False
        return queues


class MaintenanceTick(dramatiq.Middleware):
    """In a worker process, runs `MaintainedRedisBroker.maintain` every `every_s` seconds on a
    thread of its own, from the worker's boot to its shutdown. Each pass also refreshes the
    process's heartbeat, so a live worker whose threads are all busy is never taken for dead."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @override
    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not isinstance(broker, MaintainedRedisBroker):
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(broker,), name="broker-maintenance", daemon=True
        )
        self._thread.start()

    @override
    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self, broker: MaintainedRedisBroker) -> None:
        failing = False
        while not self._stop.wait(self.every_s):
            try:
                broker.maintain()
            except RedisError as error:  # Redis away: the next tick tries again
                if not failing:
                    log.warning("broker maintenance failed", error_type=type(error).__name__)
                failing = True
            else:
                if failing:
                    log.info("broker maintenance resumed")
                failing = False


class LogContext(dramatiq.Middleware):
    """Each job's log lines carry its actor and message id, and nothing of the previous job."""

    @override
    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            job=message.actor_name, message_id=message.message_id
        )

    @override
    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is not None:
            log.warning(
                "job failed", error_type=type(exception).__name__, error=str(exception)[:200]
            )
        structlog.contextvars.clear_contextvars()
