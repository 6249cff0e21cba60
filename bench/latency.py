"""Commit → notification recorded, through HTTP, at a steady rate (open loop).

Command *k* is due at t0 + k/rate whatever happened to the ones before (a late answer delays
none of the next: each command is its own task, on the first idle connection of its server,
and a new connection is opened when none is idle). Command *k* goes to API *k mod n* and is
``POST /projects/{id}/officers`` on project *k* of its list (one ``OfficerAssigned`` event,
whose only notification is the new officer's in-app inbox, ``officer:<prefix><k>``; the seeded
builders have no contact, so no e-mail). The 201 answer's ETag is the new version.

Afterwards the notifications are joined to their events through the store's events table
(``notification_id`` → originator id and version) and latency = ``notifications.created_at``
(the worker's clock, taken just before its transaction; one machine, one clock) − the moment
the request was sent: an upper bound, since the commit lies between the request's departure and
its answer. The same from the moment the 201 arrived (a lower bound) is kept beside it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from bench.baseline import PgTarget
from bench.http_load import Connection, HttpError
from bench.server import Server
from bench.stats import Latency

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Sent:
    due_ns: int  # perf_counter
    started_ns: int
    done_ns: int
    sent_wall_ns: int  # time.time_ns() before the request was written
    answered_wall_ns: int  # time.time_ns() when the 201 was in
    project_id: str
    version: int


@dataclass
class Generated:
    planned: int
    sent: list[Sent]
    errors: list[str]
    seconds: float  # from the first due moment to the last answer

    @property
    def rate(self) -> float:
        return len(self.sent) / self.seconds if self.seconds else 0.0


class _Pool:
    """Idle keep-alive connections to one server; a new one when none is idle."""

    def __init__(self, server: Server, token: str) -> None:
        self.server, self.token = server, token
        self.idle: list[Connection] = []
        self.all: list[Connection] = []

    def take(self) -> Connection:
        if self.idle:
            return self.idle.pop()
        conn = Connection(self.server.host, self.server.port, self.token)
        self.all.append(conn)
        return conn

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.all))


async def open_loop(
    servers: Sequence[Server], token: str, projects: Sequence[str], *, rate: float,
    seconds: float, prefix: str,
) -> Generated:  # fmt: skip
    planned = int(rate * seconds)
    pools = [_Pool(s, token) for s in servers]
    results: list[Sent | None] = [None] * planned
    errors: list[str] = []
    loop = asyncio.get_running_loop()

    async def send(k: int, due: int) -> None:
        pool = pools[k % len(pools)]
        project = projects[k % len(projects)]
        body = msgspec.json.encode({"officer": f"{prefix}{k}", "name": "基准经办",
                                    "role": "joint"})  # fmt: skip
        conn = pool.take()
        started, wall = time.perf_counter_ns(), time.time_ns()
        try:
            answer = await conn.request("POST", f"/projects/{project}/officers", body)
        except (HttpError, OSError, asyncio.IncompleteReadError) as e:
            errors.append(f"{type(e).__name__}: {e}"[:300])
            await conn.close()
            pool.idle.append(conn)
            return
        answered = time.time_ns()
        pool.idle.append(conn)
        if answer.status != 201:
            errors.append(f"{answer.status} {answer.body[:200]!r}")
            return
        version = int(answer.headers.get("etag", "0").strip('"W/'))
        results[k] = Sent(due, started, time.perf_counter_ns(), wall, answered, project, version)

    tasks = []
    t0 = time.perf_counter_ns() + 20_000_000
    interval = 1e9 / rate
    try:
        for k in range(planned):
            due = t0 + int(k * interval)
            delay = due - time.perf_counter_ns()
            if delay > 0:
                await asyncio.sleep(delay / 1e9)
            tasks.append(loop.create_task(send(k, due)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*(p.close() for p in pools))
    sent = [r for r in results if r is not None]
    last = max((s.done_ns for s in sent), default=t0)
    return Generated(planned, sent, errors, (last - t0) / 1e9)


# --- reading the results back -----------------------------------------------------------------


def _wall_ns(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def count_notifications(target: PgTarget, schema: str, prefix: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE recipient LIKE %s").format(
        sql.Identifier(schema, "notifications")
    )
    with target.connect() as conn:
        row = conn.execute(query, (f"officer:{prefix}%",)).fetchone()
    return int(row[0]) if row else 0


def wait_for_notifications(
    target: PgTarget, schema: str, prefix: str, expected: int, *, timeout: float, quiet: float
) -> int:
    """Polls until ``expected`` notifications of ``prefix`` are recorded, the count stops
    moving for ``quiet`` seconds, or ``timeout`` passes; the last count."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while True:
        try:
            now = count_notifications(target, schema, prefix)
        except psycopg.errors.UndefinedTable:  # the worker has not created its tables yet
            now = 0
        if now >= expected:
            return now
        if now != last:
            last, since = now, time.monotonic()
        if time.monotonic() - since >= quiet or time.monotonic() >= deadline:
            return now
        time.sleep(0.05)


def recorded_times(
    target: PgTarget, schema: str, events_table: str, prefix: str
) -> dict[tuple[str, int], int]:
    """(project id, version) → created_at (ns since the epoch) of the notifications of
    ``prefix``, joined to their events by notification id."""
    query = sql.SQL(
        "SELECT e.originator_id, e.originator_version, n.created_at FROM {} n "
        "JOIN {} e ON e.notification_id = n.notification_id WHERE n.recipient LIKE %s"
    ).format(sql.Identifier(schema, "notifications"), sql.Identifier(schema, events_table))
    with target.connect() as conn:
        rows = conn.execute(query, (f"officer:{prefix}%",)).fetchall()
    return {(str(r[0]), int(r[1])): _wall_ns(r[2]) for r in rows}


def unapplied(target: PgTarget, schema: str, events_table: str, after: int, upto: int) -> int:
    """Events in (after, upto] without an event_tracking row: never applied by a worker."""
    query = sql.SQL(
        "SELECT count(*) FROM {} e WHERE e.notification_id > %s AND e.notification_id <= %s "
        "AND NOT EXISTS (SELECT 1 FROM {} t WHERE t.notification_id = e.notification_id)"
    ).format(sql.Identifier(schema, events_table), sql.Identifier(schema, "event_tracking"))
    with target.connect() as conn:
        row = conn.execute(query, (after, upto)).fetchone()
    return int(row[0]) if row else 0


@dataclass
class LatencyResult:
    """One measured phase: the commands, and their notifications' latencies."""

    apis: int
    workers: int
    rate: float  # scheduled commands/s
    planned: int
    completed: int
    errors: list[str]
    achieved_rate: float
    recorded: int  # notifications of the measured commands found
    from_sent: Latency  # created_at − request sent (upper bound)
    from_answer: Latency  # created_at − 201 received (lower bound)
    command: Latency  # the HTTP command as the client saw it
    issue_delay: Latency  # how late the commands left
    unapplied: int | None = None  # events of the phase no worker applied
    cpu: dict[str, float] = field(default_factory=dict)  # shares of one core while measuring
    series: list[tuple[float, float]] = field(default_factory=list)  # (s since start, ms)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def summarise(
    gen: Generated, times: dict[tuple[str, int], int], *, apis: int, workers: int, rate: float
) -> LatencyResult:
    found = [(s, times[s.project_id, s.version]) for s in gen.sent
             if (s.project_id, s.version) in times]  # fmt: skip
    first_due = min((s.due_ns for s in gen.sent), default=0)
    return LatencyResult(
        apis=apis, workers=workers, rate=rate, planned=gen.planned, completed=len(gen.sent),
        errors=gen.errors[:20], achieved_rate=gen.rate, recorded=len(found),
        from_sent=Latency.of(at - s.sent_wall_ns for s, at in found),
        from_answer=Latency.of(at - s.answered_wall_ns for s, at in found),
        command=Latency.of(s.done_ns - s.started_ns for s in gen.sent),
        issue_delay=Latency.of(max(0, s.started_ns - s.due_ns) for s in gen.sent),
        series=[(round((s.due_ns - first_due) / 1e9, 4), round((at - s.sent_wall_ns) / 1e6, 3))
                for s, at in found],
    )  # fmt: skip
