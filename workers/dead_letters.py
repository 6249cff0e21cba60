"""Dead letters: messages that ran out of retries, kept by the Redis broker for 7 days in the
ZSET ``<namespace>:<queue>.XQ`` and the HASH ``<namespace>:<queue>.XQ.msgs``. dramatiq has no
API for them; ``ecocase dead-letters`` lists them and re-drives them onto their queue."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.message import generate_unique_id

from workers.actors import DELIVERIES, EVENTS, SCANS

QUEUES = (EVENTS, DELIVERIES, SCANS)
RESET = frozenset({"retries", "traceback", "redis_message_id", "dead_message"})


@dataclass(frozen=True)
class DeadLetter:
    queue: str
    message_id: str
    actor: str
    args: tuple[object, ...]
    retries: int
    failed_at: datetime
    error: str


def _client(broker: RedisBroker) -> Any:
    """redis-py types its replies as unions over every protocol version; we read bytes."""
    return broker.client


def _keys(broker: RedisBroker, queue: str) -> tuple[str, str]:
    return f"{broker.namespace}:{queue}.XQ", f"{broker.namespace}:{queue}.XQ.msgs"


def list_dead(broker: RedisBroker, queues: Iterable[str] = QUEUES) -> list[DeadLetter]:
    found: list[DeadLetter] = []
    for queue in queues:
        zset, msgs = _keys(broker, queue)
        client = _client(broker)
        for message_id, score in client.zrange(zset, 0, -1, withscores=True):
            data = client.hget(msgs, message_id)
            if data is None:
                continue
            message = dramatiq.Message.decode(data)
            traceback = str(message.options.get("traceback") or "").strip().splitlines()
            found.append(DeadLetter(
                queue=queue, message_id=message.message_id, actor=message.actor_name,
                args=tuple(message.args), retries=int(message.options.get("retries", 0)),
                failed_at=datetime.fromtimestamp(score / 1000, tz=UTC),
                error=traceback[-1] if traceback else "",
            ))  # fmt: skip
    return found


def redrive(
    broker: RedisBroker,
    message_ids: Iterable[str] | None = None,
    queues: Iterable[str] = QUEUES,
    *,
    before: Callable[[dramatiq.Message[Any]], None] | None = None,
) -> int:
    """Puts dead messages back on their queue with a fresh retry count; None means all.
    Returns how many were re-driven.

    ``message_ids`` are dramatiq's ids, as :func:`list_dead` shows them (the ZSET holds the
    broker's own ``redis_message_id``s). A re-driven message gets a new id: the workers count
    attempts per message id (``message_attempts``), and the old count would give it up at once."""
    wanted = None if message_ids is None else set(message_ids)
    count = 0
    for queue in queues:
        zset, msgs = _keys(broker, queue)
        client = _client(broker)
        for raw_id in client.zrange(zset, 0, -1):
            data = client.hget(msgs, raw_id)
            if data is None:
                continue
            message = dramatiq.Message.decode(data)
            if wanted is not None and message.message_id not in wanted:
                continue
            if before is not None:  # e.g. reopen a dead notification so that it is sent
                before(message)
            options = {k: v for k, v in message.options.items() if k not in RESET}
            # Not message.copy(options=...): copy merges the old options back in (retries too).
            broker.enqueue(replace(message, message_id=generate_unique_id(), options=options))
            client.zrem(zset, raw_id)
            client.hdel(msgs, raw_id)
            count += 1
    return count
