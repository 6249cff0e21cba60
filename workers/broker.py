"""The task-queue broker, with settings chosen on purpose (dramatiq's defaults can take many
minutes to bring back a killed worker's message):

- heartbeat_timeout 10 s and maintenance on 1% of broker calls: an idle worker polls every
  100 ms on each of its 3 queues (30 calls/s), so maintenance runs about every 3 s even when
  idle, and a dead worker's unacked messages are requeued within about 10–14 s (at 10% it ran
  for about a third of all messages under load, for no earlier requeue);
- worker_timeout 100 ms: an idle worker picks a new message up in ~0.1 s, not ~1 s;
- prefetch 2 × worker threads (dramatiq's own rule), small so a slow delivery does not hold
  messages other workers could run;
- dead messages kept 7 days in ``<namespace>:<queue>.XQ`` (see ``ecocase dead-letters``).

Without Redis (the embedded default) a StubBroker runs the same actors in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage
from typing_extensions import override

from workers.messages import MsgspecEncoder

NAMESPACE = "ecocase"
log = structlog.get_logger("ecocase.worker")


@dataclass(frozen=True)
class BrokerSettings:
    redis_url: str | None
    namespace: str = NAMESPACE
    heartbeat_timeout_ms: int = 10_000
    maintenance_chance: int = 10_000  # per million broker calls: 1%
    dead_message_ttl_ms: int = 7 * 86_400_000
    worker_timeout_ms: int = 100
    worker_threads: int = 4


def build_broker(settings: BrokerSettings) -> dramatiq.Broker:
    """A new broker, made the global one (dramatiq's actors and workers look it up there)."""
    dramatiq.set_encoder(MsgspecEncoder())
    broker: dramatiq.Broker
    if settings.redis_url:
        broker = RedisBroker(  # type: ignore[no-untyped-call] # untyped __init__ in dramatiq
            url=settings.redis_url,
            namespace=settings.namespace,
            heartbeat_timeout=settings.heartbeat_timeout_ms,
            maintenance_chance=settings.maintenance_chance,
            dead_message_ttl=settings.dead_message_ttl_ms,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=10,
        )
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(LogContext())
    dramatiq.set_broker(broker)
    return broker


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
