"""The dramatiq actors: each stored event becomes its audit record and notifications (once),
each notification is delivered (retried with backoff, then dead), and warning scans run.

Actors are declared on a given broker by :func:`declare_actors` (nothing at import time) and
reach their services through a context built lazily in the worker process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dramatiq
import msgspec
import structlog
from dramatiq.middleware import CurrentMessage

from application.audit import audit_record
from application.notification_rules import Channel, notifications_for
from application.notifications import DeliveryInFlight
from application.warning_scan import scan_warnings
from domain.errors import DomainError
from workers.channels import DeliveryError, PermanentDeliveryError
from workers.messages import EventNotice
from workers.runtime import WorkerContext

log = structlog.get_logger("ecocase.worker")

EVENTS, DELIVERIES, SCANS = "events", "deliveries", "scans"


class EventMissing(Exception):  # noqa: N818 - the name says what happened
    """The notification log has no event at the given position (a poison message)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Retries per actor (milliseconds); tests shorten them."""

    event_retries: int = 10
    event_min_backoff: int = 500
    event_max_backoff: int = 30_000
    delivery_retries: int = 8
    delivery_min_backoff: int = 1_000
    delivery_max_backoff: int = 60_000
    scan_retries: int = 2
    time_limit: int = 60_000


@dataclass(frozen=True)
class Actors:
    handle_event: dramatiq.Actor[..., None]
    deliver: dramatiq.Actor[..., None]
    delivery_exhausted: dramatiq.Actor[..., None]
    scan_warnings: dramatiq.Actor[..., None]

    def publish(self, notices: Sequence[EventNotice]) -> None:
        """The relay's send: one message per stored event."""
        for notice in notices:
            self.handle_event.send(msgspec.to_builtins(notice))


def _message_id() -> str:
    message = CurrentMessage.get_current_message()
    return message.message_id if message is not None else "direct"


def declare_actors(  # noqa: PLR0915 - each actor sits beside its options
    broker: dramatiq.Broker, context: Callable[[], WorkerContext],
    policy: RetryPolicy = RetryPolicy(),
) -> Actors:  # fmt: skip
    def guard(limit: int) -> bool:
        """False when this message has been tried more than ``limit`` times, counting attempts
        whose worker died (dramatiq's retry count misses those)."""
        message_id = _message_id()
        tracking = context().tracking
        attempts = tracking.count_attempt(message_id)
        if attempts > limit + 1:
            log.error("message given up after repeated attempts", message_id=message_id,
                      attempts=attempts)  # fmt: skip
            tracking.forget(message_id)  # acked now: it is not delivered again
            return False
        return True

    def handle_event(payload: dict[str, Any]) -> None:
        notice = msgspec.convert(payload, EventNotice)
        structlog.contextvars.bind_contextvars(project_id=notice.project_id,
                                               notification_id=notice.notification_id)  # fmt: skip
        if not guard(policy.event_retries):
            return
        ctx = context()
        found = ctx.store.recorder.select_notifications(start=notice.notification_id, limit=1)
        if not found or found[0].id != notice.notification_id:
            raise EventMissing(f"no event at notification {notice.notification_id}")
        event = ctx.store.mapper.to_domain_event(found[0])
        project = ctx.store.project_after(event)
        specs = notifications_for(event, project, webhook_targets=ctx.webhook_targets)
        now = datetime.now(tz=UTC)
        # One transaction; a redelivered event inserts nothing (every row is written with
        # ON CONFLICT DO NOTHING), and its notifications still undelivered come back from
        # add() as for a first delivery. When every notification is an inbox one, add()
        # reads nothing, so the whole transaction goes in one round trip (db.writes()).
        inbox_only = all(spec.channel is Channel.INBOX for spec in specs)
        with ctx.db.writes() if inbox_only else ctx.db.transaction() as cursor:
            ctx.tracking.mark_applied(cursor, notice.notification_id)
            ctx.tracking.forget_attempts(cursor, _message_id())
            ctx.audit.insert(cursor, audit_record(
                notice.notification_id, event, project_code=project.project_code,
                window=str(project.window),
            ))  # fmt: skip
            keys = ctx.notifications.add(
                cursor, notification_id=notice.notification_id, project_id=project.id,
                window=str(project.window), specs=specs, now=now,
            )  # fmt: skip
        for key in keys:
            actors.deliver.send(key)

    def deliver(key: str) -> None:
        structlog.contextvars.bind_contextvars(notification=key)
        ctx = context()
        delivered_or_given_up(key)
        ctx.tracking.forget(_message_id())  # done; a DeliveryError raised above is retried

    def delivered_or_given_up(key: str) -> None:
        """One delivery attempt of ``key``; returns when the message is done (sent, dead,
        nothing to send, or sent again later as a new message), raises DeliveryError for a
        retry of this message."""
        ctx = context()
        if not guard(policy.delivery_retries):
            ctx.notifications.mark_dead(key, "given up after repeated attempts",
                                        datetime.now(tz=UTC))  # fmt: skip
            return
        try:
            notification = ctx.notifications.start_attempt(key)
        except DeliveryInFlight as busy:
            # another attempt (perhaps of a worker that died) holds the lease: come back when
            # it runs out, as a new message, so the wait does not use up this one's retries
            actors.deliver.send_with_options(
                args=(key,), delay=int(busy.wait.total_seconds() * 1000) + 100
            )
            return
        if notification is None:  # already sent or dead: a redelivery does nothing
            return
        channel = ctx.channels.get(notification.channel)
        if channel is None:
            ctx.notifications.mark_dead(key, f"no {notification.channel} channel configured",
                                        datetime.now(tz=UTC))  # fmt: skip
            return
        try:
            channel.send(notification)
        except PermanentDeliveryError as e:
            ctx.notifications.mark_dead(key, str(e)[:500], datetime.now(tz=UTC))
            return
        except DeliveryError as e:
            ctx.notifications.mark_failed(key, str(e)[:500], datetime.now(tz=UTC))
            raise
        ctx.notifications.mark_sent(key, datetime.now(tz=UTC))

    def delivery_exhausted(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
        key = str(message.get("args", [""])[0])
        notifications = context().notifications
        last = notifications.get(key)
        cause = f"; last error: {last.last_error}" if last and last.last_error else ""
        notifications.mark_dead(
            key, f"retries exhausted ({retry_info.get('retries')}){cause}", datetime.now(tz=UTC)
        )

    def scan(_: Any = None) -> None:
        ctx = context()
        raised = scan_warnings(ctx.cases, ctx.index, request_id=_message_id())
        log.info("warning scan done", raised=raised)

    actors = Actors(
        handle_event=dramatiq.actor(
            broker=broker, actor_name="handle_event", queue_name=EVENTS,
            max_retries=policy.event_retries, min_backoff=policy.event_min_backoff,
            max_backoff=policy.event_max_backoff, time_limit=policy.time_limit,
            throws=(DomainError,),
        )(handle_event),
        deliver=dramatiq.actor(
            broker=broker, actor_name="deliver", queue_name=DELIVERIES,
            max_retries=policy.delivery_retries, min_backoff=policy.delivery_min_backoff,
            max_backoff=policy.delivery_max_backoff, time_limit=policy.time_limit,
            throws=(PermanentDeliveryError,), on_retry_exhausted="delivery_exhausted",
        )(deliver),
        delivery_exhausted=dramatiq.actor(
            broker=broker, actor_name="delivery_exhausted",
            queue_name=DELIVERIES, max_retries=3,
        )(delivery_exhausted),
        scan_warnings=dramatiq.actor(
            broker=broker, actor_name="scan_warnings", queue_name=SCANS,
            max_retries=policy.scan_retries, time_limit=10 * policy.time_limit,
            throws=(DomainError,),
        )(scan),
    )  # fmt: skip
    return actors
