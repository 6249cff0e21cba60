"""``python -m bench.workers [--quick]``: the workers' figures (issue 3 point 7, issue 5).

1. **Commit → notification recorded** at a steady 200 commands/s: an open-loop generator (a
   fixed schedule; late commands are not dropped or spaced out) issues ``Cases.assign_officer``
   commands on the store in this process (one ``OfficerAssigned`` event each, whose only
   notification is the new officer's in-app inbox, stored ``sent`` at insert); the relay and a
   worker (4 threads) run in child processes on real PostgreSQL and Redis. The commit time is
   taken when the command returns (after its save), keyed by (project id, version); after the
   run the worker's ``notifications.created_at`` is joined to it through the event store
   (``notification_id`` → originator id and version). Baselines: a Redis PING and a raw
   PostgreSQL single-row insert transaction (``bench.baseline.raw_inserts``).
2. **Relay throughput on a backlog** of 100,000 events (quick: 20,000), seeded with batched
   saves while no relay runs; then the relay alone until its recorded position reaches the head
   (the messages land in Redis; no worker runs). Then the worker alone (4 threads) until every
   event of the backlog is applied (its ``event_tracking`` row written), for at most 240 s
   (quick: 90 s; the rate is then over what it applied, and a note says so). Baselines: the rate
   of no-op dramatiq messages enqueued from one thread (same broker settings), and the raw
   insert rate of one connection.

Every event of the latency phase is checked afterwards: one without an ``event_tracking`` row,
although the relay's position passed it and the events queue and its dead letters are empty,
was never sent by the relay (reported as "events never applied"). ``--stages`` adds an
observing middleware to the worker of the latency phase and breaks each latency down into
commit → relay send → worker begins → ``created_at``.

The relay and the worker are built exactly as ``workers.processes.run_relay`` / ``run_worker``
build them, except for the broker's namespace, which is the run's own (``ecocase-bench-<run>``;
the CLI has no way to pass one): so they run in processes started here with multiprocessing
(spawn). The run's PostgreSQL schema and the Redis keys of its namespace are removed at the
end, also after a failure, Ctrl-C or SIGTERM. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import multiprocessing.context
import multiprocessing.synchronize
import os
import platform
import queue
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from uuid import UUID

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql
from typing_extensions import override

from application.cases import Acting, Cases, shanghai_now
from application.settings import Settings, load_settings
from application.sqldb import Database, open_database
from application.store import CaseStore
from bench.baseline import PgTarget, RawResult, create_schema, drop_schema, raw_inserts
from bench.redis_db import delete_matching
from bench.report import Row, _grid, fmt
from bench.stats import (
    Latency,
    cpu_delta,
    machine_busy_seconds,
    postgres_cpu,
    tree_cpu_seconds,
)
from domain.actor import Actor, Role, Stamp
from domain.builder import Builder
from domain.officers import OfficerRole
from domain.project import KeyProject
from domain.tiers import Tier
from domain.windows import Window
from interfaces.logs import configure_logging
from workers.actors import EVENTS, RetryPolicy, declare_actors
from workers.broker import BrokerSettings, build_broker
from workers.relay import Relay
from workers.runtime import LazyContext, build_context

CREDIT_CODE = "91330100716105852F"
OFFICER = Actor(sub="bench-officer", name="基准经办", role=Role.OFFICER, unit=Window.XIHU)
# No contact: an OfficerAssigned calls for the new officer's inbox only (no e-mail to send).
BUILDER = Builder(name="杭州基准建设有限公司", credit_code=CREDIT_CODE)
LATENCY_PREFIX = "lat-"  # officer subs of the measured commands
WARMUP_PREFIX = "warm-"
P50_TARGET_MS, P99_TARGET_MS = 50.0, 250.0  # issue 5
STEADY_SHARE = 0.98  # the achieved command rate counts as steady at 98% of the schedule


def _log(message: str) -> None:
    print(f"[bench.workers {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    rate: float  # commands/s of the latency phase
    latency_seconds: float
    warmup_seconds: float
    latency_projects: int
    backlog_events: int
    events_per_project: int  # of the backlog: Registered + (n - 1) OfficerAssigned
    save_batch: int  # projects per save while seeding
    worker_threads: int
    senders: int  # threads issuing the scheduled commands
    baseline_seconds: float
    pings: int
    worker_cap_seconds: float  # the worker phase stops here even if the queue is not empty
    relay_cap_seconds: float

    @classmethod
    def default(cls) -> Plan:
        return cls(200.0, 20.0, 2.0, 400, 100_000, 20, 25, 4, 8, 2.0, 2000, 240.0, 120.0)

    @classmethod
    def quick(cls) -> Plan:
        return cls(200.0, 8.0, 1.0, 200, 20_000, 20, 25, 4, 8, 1.0, 500, 90.0, 60.0)


# --- the relay and the worker, in processes of their own ------------------------------------


@dataclass(frozen=True)
class ChildSpec:
    role: str  # "relay" or "worker"
    settings: Settings
    env: dict[str, str]
    namespace: str
    worker_threads: int
    stages_path: str = ""  # --stages: the worker writes when it began each event here


class StageClock(dramatiq.Middleware):
    """``--stages`` only (an observer the production worker does not have): when the worker
    began each event's message, beside the message's own timestamp (the relay's send, ms)."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int]] = []  # notification id, sent ms, began ns

    @override
    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if message.actor_name == "handle_event" and message.args:
            notice = message.args[0]
            self.seen.append(
                (int(notice["notification_id"]), message.message_timestamp, time.time_ns())
            )

    def dump(self, path: str) -> None:
        Path(path).write_text(json.dumps(self.seen))


def _broker_settings(spec: ChildSpec) -> BrokerSettings:
    """``workers.processes.broker_settings`` with the run's own namespace."""
    return BrokerSettings(
        redis_url=spec.settings.redis_url,
        namespace=spec.namespace,
        worker_threads=spec.worker_threads,
    )


def _child_main(
    spec: ChildSpec,
    ready: multiprocessing.synchronize.Event,
    go: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
) -> None:
    """``run_relay`` / ``run_worker`` of workers/processes.py, stopped by ``stop`` instead of
    SIGTERM, and told by ``go`` when to begin (so that the start of the process, its imports and
    connections are not measured). The context is built before ``go`` (run_relay does so too;
    run_worker builds it on the first message)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us; Ctrl-C is for it
    sys.stdout = sys.stderr  # our log lines must not mix with the parent's table
    configure_logging("console", "WARNING")
    config = _broker_settings(spec)
    broker = build_broker(config)
    clock = StageClock() if spec.stages_path else None
    if clock is not None:
        broker.add_middleware(clock)
    context = LazyContext(lambda: build_context(spec.settings, spec.env))
    actors = declare_actors(broker, context, RetryPolicy())
    ctx = context()
    halt = threading.Event()  # Relay.run wants a threading.Event

    def bridge() -> None:
        stop.wait()
        halt.set()

    threading.Thread(target=bridge, daemon=True, name="bench-stop").start()
    try:
        if spec.role == "relay":
            relay = Relay(ctx.store, ctx.db, actors.publish)
            ready.set()
            go.wait()
            relay.run(halt)
        else:
            worker = dramatiq.Worker(
                broker,
                worker_threads=config.worker_threads,
                worker_timeout=config.worker_timeout_ms,
            )
            ready.set()
            go.wait()
            worker.start()
            halt.wait()
            worker.stop(timeout=10_000)
            if clock is not None:
                clock.dump(spec.stages_path)
    finally:
        context.close()


class Child:
    def __init__(self, spec: ChildSpec) -> None:
        mp = multiprocessing.get_context("spawn")
        self.role = spec.role
        self.ready = mp.Event()
        self.go = mp.Event()
        self.stop_event = mp.Event()
        self.process: multiprocessing.context.SpawnProcess = mp.Process(
            target=_child_main,
            args=(spec, self.ready, self.go, self.stop_event),
            name=f"bench-{spec.role}",
            daemon=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def start(self, timeout: float = 90.0) -> None:
        self.process.start()
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if not self.process.is_alive():
                msg = (
                    f"the {self.role} process exited ({self.process.exitcode}) before it was ready"
                )
                raise RuntimeError(msg)
            if time.monotonic() > deadline:
                msg = f"the {self.role} process was not ready after {timeout:.0f} s"
                raise RuntimeError(msg)

    def begin(self) -> None:
        self.go.set()

    def check(self) -> None:
        if not self.process.is_alive():
            msg = f"the {self.role} process died ({self.process.exitcode})"
            raise RuntimeError(msg)

    def cpu(self) -> float:
        return tree_cpu_seconds(self.pid) if self.pid else 0.0

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.pid is None:
            return
        self.stop_event.set()
        self.go.set()  # a child still waiting for go must get to see stop
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


# --- CPU accounting ---------------------------------------------------------------------------


def _redis_server_pids() -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if Path(entry.path, "comm").read_text().strip() == "redis-server":
                pids.append(int(entry.name))
    return pids


@dataclass
class CpuShare:
    """CPU of one phase, as shares of one core: this process, the children, PostgreSQL
    (the backends of our connections and the shared processes), the Redis server (all its
    clients: it is the system's), and everything else on the machine."""

    wall_s: float
    bench: float
    relay: float | None
    worker: float | None
    postgres: float | None
    redis: float | None
    other: float | None


class CpuMeter:
    def __init__(self, children: Sequence[Child]) -> None:
        self.children = children
        self.redis_pids = _redis_server_pids()

    def _read(self) -> dict[str, Any]:
        pids = [os.getpid(), *(c.pid for c in self.children if c.pid)]
        return {
            "t": time.perf_counter(),
            "bench": time.process_time(),
            "children": {c.role: c.cpu() for c in self.children},
            "postgres": postgres_cpu(pids),
            "redis": sum(tree_cpu_seconds(p) for p in self.redis_pids),
            "machine": machine_busy_seconds(),
        }

    @contextlib.contextmanager
    def measure(self, into: dict[str, CpuShare], name: str) -> Iterator[None]:
        before = self._read()
        yield
        after = self._read()
        wall = after["t"] - before["t"] or 1e-9
        kids = {r: after["children"][r] - before["children"].get(r, 0.0) for r in after["children"]}
        pg = cpu_delta(before["postgres"], after["postgres"])
        rd = after["redis"] - before["redis"] if self.redis_pids else None
        bench = after["bench"] - before["bench"]
        other = None
        if before["machine"] is not None and after["machine"] is not None:
            known = bench + sum(kids.values()) + (pg or 0.0) + (rd or 0.0)
            other = max(0.0, after["machine"] - before["machine"] - known)
        into[name] = CpuShare(
            wall_s=wall,
            bench=bench / wall,
            relay=kids["relay"] / wall if "relay" in kids else None,
            worker=kids["worker"] / wall if "worker" in kids else None,
            postgres=None if pg is None else pg / wall,
            redis=None if rd is None else rd / wall,
            other=None if other is None else other / wall,
        )


def render_cpu(shares: dict[str, CpuShare]) -> str:
    def pct(x: float | None) -> str:
        return "" if x is None else f"{x:.0%}"

    cells = [("phase", "wall s", "bench", "relay", "worker", "postgres", "redis", "other")]
    for name, s in shares.items():
        cells.append(
            (
                name,
                f"{s.wall_s:.1f}",
                pct(s.bench),
                pct(s.relay),
                pct(s.worker),
                pct(s.postgres),
                pct(s.redis),
                pct(s.other),
            )
        )
    return _grid(cells, right=tuple(range(1, 8)))


# --- load average -----------------------------------------------------------------------------


class LoadSampler:
    """The 1-minute load average, every few seconds of the run."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(every):
                return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def wait_for_load(limit: float, max_wait: float) -> tuple[float, float, float]:
    """Waits (at most ``max_wait`` s) until the 1-minute load average is below ``limit``;
    returns the load seen first, the load when it stopped waiting, and the seconds waited."""
    first = os.getloadavg()[0]
    started = time.monotonic()
    load = first
    while load >= limit and time.monotonic() - started < max_wait:
        _log(f"1-minute load {load:.2f} >= {limit:.2f}: waiting for a quieter machine")
        time.sleep(min(10.0, max(0.0, max_wait - (time.monotonic() - started))) or 0.1)
        load = os.getloadavg()[0]
    return first, load, time.monotonic() - started


# --- seeding ----------------------------------------------------------------------------------


def _code(serial: int) -> str:
    return f"2024-330100-44-01-{serial:06d}"


@dataclass
class Seeded:
    projects: list[UUID]
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def seed(
    store: CaseStore, *, first_serial: int, projects: int, events_per_project: int, batch: int
) -> Seeded:
    """Projects with ``events_per_project`` events each (Registered, then OfficerAssigned),
    ``batch`` projects per save (one transaction, all their pending events)."""
    stamp = Stamp(OFFICER, "bench-seed")
    today = shanghai_now().date()
    ids: list[UUID] = []
    started = time.perf_counter()
    for first in range(0, projects, batch):
        aggregates = []
        for i in range(first, min(first + batch, projects)):
            serial = first_serial + i
            project = KeyProject.register(
                name=f"基准测试项目 {serial}",
                project_code=_code(serial),
                builder=BUILDER,
                window=Window.XIHU,
                tiers=(Tier.CITY_KEY,),
                industry="制造业",
                location="杭州市西湖区",
                two_high_one_low=False,
            )
            for j in range(events_per_project - 1):
                project.assign_officer(
                    officer=f"seed-{serial}-{j}",
                    name="基准经办",
                    role=OfficerRole.JOINT,
                    today=today,
                )
            aggregates.append(project)
            ids.append(project.id)
        store.save(*aggregates, stamp=stamp)
    seconds = time.perf_counter() - started
    return Seeded(ids, projects * events_per_project, seconds)


# --- the open-loop generator ------------------------------------------------------------------


@dataclass
class Sent:
    scheduled_ns: int  # perf_counter
    started_ns: int
    done_ns: int
    commit_wall_ns: int  # time.time_ns() when the command returned (its save committed)
    project_id: UUID
    version: int


@dataclass
class Generated:
    planned: int
    sent: list[Sent]
    errors: list[str]
    seconds: float  # from the first scheduled moment to the last command's return

    @property
    def rate(self) -> float:
        return len(self.sent) / self.seconds if self.seconds else 0.0


def open_loop(
    cases: Cases,
    projects: Sequence[UUID],
    *,
    rate: float,
    seconds: float,
    senders: int,
    prefix: str,
) -> Generated:
    """Command k is due at t0 + k/rate, whatever happened to the ones before: a scheduler
    thread (this one) hands each due command to the first free of ``senders`` threads, so a
    slow command delays none of the next."""
    planned = int(rate * seconds)
    due: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
    results: list[Sent | None] = [None] * planned
    errors: list[str] = []
    acting = [Acting(OFFICER, f"bench-{prefix}{k}") for k in range(planned)]

    def send() -> None:
        while True:
            item = due.get()
            if item is None:
                return
            k, scheduled = item
            started = time.perf_counter_ns()
            project_id = projects[k % len(projects)]
            try:
                project = cases.assign_officer(
                    acting[k],
                    project_id,
                    officer=f"{prefix}{k}",
                    name="基准经办",
                    role=OfficerRole.JOINT,
                )
            except Exception as e:  # noqa: BLE001 - counted and reported, the run goes on
                errors.append(f"{type(e).__name__}: {e}"[:300])
                continue
            wall = time.time_ns()
            results[k] = Sent(scheduled, started, time.perf_counter_ns(), wall, project_id,
                              project.version)  # fmt: skip

    threads = [threading.Thread(target=send, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    interval = 1e9 / rate
    t0 = time.perf_counter_ns() + 20_000_000
    for k in range(planned):
        at = t0 + int(k * interval)
        delay = at - time.perf_counter_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
        due.put((k, at))
    for _ in threads:
        due.put(None)
    for t in threads:
        t.join(timeout=120)
    sent = [r for r in results if r is not None]
    last = max((s.done_ns for s in sent), default=t0)
    return Generated(planned, sent, errors, (last - t0) / 1e9)


# --- reading the results back -----------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _wall_ns(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def count_notifications(db: Database, prefix: str) -> int:
    rows = db.query(
        "SELECT count(*) FROM notifications WHERE recipient LIKE %s", (f"officer:{prefix}%",)
    )
    return int(rows[0][0])


def recorded_times(
    db: Database, events_table: str, prefix: str
) -> dict[tuple[UUID, int], tuple[int, int]]:
    """(project id, version) → (notification id, created_at in ns since the epoch) of the
    notifications of the measured commands, joined to their events by notification id."""
    query = sql.SQL(
        "SELECT e.originator_id, e.originator_version, n.created_at, n.notification_id "
        "FROM notifications n JOIN {} e ON e.notification_id = n.notification_id "
        "WHERE n.recipient LIKE %s"
    ).format(sql.Identifier(events_table))
    rows = db.query(query.as_string(None), (f"officer:{prefix}%",))
    return {(UUID(str(r[0])), int(r[1])): (int(r[3]), _wall_ns(r[2])) for r in rows}


def wait_until(probe: Callable[[], bool], timeout: float, interval: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if probe():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --- baselines --------------------------------------------------------------------------------


def redis_ping(url: str, count: int) -> Latency:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.ping()
        samples = []
        for _ in range(count):
            t0 = time.perf_counter_ns()
            client.ping()
            samples.append(time.perf_counter_ns() - t0)
    finally:
        client.close()
    return Latency.of(samples)


def _noop(payload: dict[str, Any]) -> None:  # pragma: no cover - never consumed
    del payload


def enqueue_rate(url: str, namespace: str, seconds: float) -> tuple[float, int]:
    """No-op messages sent from one thread, for ``seconds``, on a broker built like the relay's
    (same settings and middleware), with a payload like the relay's EventNotice."""
    broker = build_broker(BrokerSettings(redis_url=url, namespace=namespace))
    noop = dramatiq.actor(broker=broker, actor_name="bench_noop", queue_name="bench_noop")(_noop)
    payload = {
        "notification_id": 1,
        "project_id": "7f0e3c9a-6f7b-5b0e-9d3c-2f4a1b6c8d9e",
        "version": 2,
        "topic": "ecocase.KeyProject.OfficerAssigned",
    }
    noop.send(payload)  # the scripts loaded, the connection open
    count = 0
    started = time.perf_counter()
    end = started + seconds
    while True:
        payload["notification_id"] = count
        noop.send(payload)
        count += 1
        if count % 50 == 0 and time.perf_counter() >= end:
            break
    elapsed = time.perf_counter() - started
    broker.close()
    return count / elapsed, count


def delete_namespace(url: str, namespace: str) -> int:
    """Every key of the run's namespace (SCAN + DEL, never FLUSH)."""
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        return delete_matching(client, f"{namespace}:*")
    finally:
        client.close()


def queue_length(url: str, namespace: str, queue_name: str) -> int:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return int(client.llen(f"{namespace}:{queue_name}"))
    finally:
        client.close()


# --- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure(Row):
    target: float | None = None
    target_op: str = ""  # "<=" or ">="
    target_label: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        word = "pass" if self.passed else "FAIL"
        return f"{word} ({self.value / self.target:.2f}× target)" if self.target else word

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.value <= self.target if self.target_op == "<=" else self.value >= self.target

    def as_json(self) -> dict[str, Any]:
        data = super().as_json()
        data["verdict"] = self.verdict
        data["passed"] = self.passed
        return data


def render(figures: Sequence[Figure]) -> str:
    cells = [("figure", "value", "baseline", "ratio", "target", "pass/fail")]
    for f in figures:
        baseline = "" if f.baseline is None else f"{fmt(f.baseline, f.unit)} ({f.baseline_label})"
        ratio = "" if f.ratio is None else (f"{f.ratio:.3f}" if f.ratio < 10 else f"{f.ratio:.1f}")
        target = ""
        if f.target is not None:
            sign = "≤" if f.target_op == "<=" else "≥"
            target = f"{sign} {fmt(f.target, f.unit)}" + (
                f" ({f.target_label})" if f.target_label else ""
            )
        cells.append((f.figure, fmt(f.value, f.unit), baseline, ratio, target, f.verdict))
    return _grid(cells, right=(1, 3))


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Run:
    run_id: str
    plan: Plan
    schema: str
    namespace: str
    started: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    backlog: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, CpuShare] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "plan": asdict(self.plan),
            "schema": self.schema,
            "namespace": self.namespace,
            "started": self.started,
            "machine": self.machine,
            "load": self.load,
            "baselines": self.baselines,
            "latency": self.latency,
            "backlog": self.backlog,
            "cpu": {k: asdict(v) for k, v in self.cpu.items()},
            "figures": [f.as_json() for f in self.figures],
            "notes": self.notes,
        }


def _environment(target: PgTarget, schema: str, redis_url: str) -> dict[str, str]:
    return {
        "ECOCASE_STORE": "postgres",
        "POSTGRES_DBNAME": target.dbname,
        "POSTGRES_HOST": target.host,
        "POSTGRES_PORT": str(target.port),
        "POSTGRES_USER": target.user,
        "POSTGRES_PASSWORD": target.password,
        "POSTGRES_SCHEMA": schema,  # pool sizes, database functions: the service's defaults
        "ECOCASE_REDIS_URL": redis_url,
        "ECOCASE_SECRET": secrets.token_urlsafe(32),
        "ECOCASE_LOG_LEVEL": "WARNING",
        "ECOCASE_LOG_FORMAT": "console",
    }


def _clean_environ() -> None:
    """The stores read os.environ beside their own settings (``ECOCASE_POSTGRES_SCHEMA`` would
    win over ours): the caller's ECOCASE_*/POSTGRES_* go, for this process and its children."""
    for key in list(os.environ):
        if key.startswith(("ECOCASE_", "POSTGRES_")):
            del os.environ[key]


@dataclass
class Rig:
    """What every phase works with: the run, the settings and environment of the relay and
    the worker, the bench's own store and workers' database."""

    run: Run
    settings: Settings
    env: dict[str, str]
    store: CaseStore
    db: Database
    stages: bool = False

    @property
    def url(self) -> str:
        return self.settings.redis_url or ""

    @property
    def recorder(self) -> PostgresApplicationRecorder:
        recorder = self.store.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            raise TypeError(recorder)
        return recorder

    def child(self, role: str, stages_path: str = "") -> Child:
        return Child(ChildSpec(role, self.settings, self.env, self.run.namespace,
                               self.run.plan.worker_threads, stages_path))  # fmt: skip


def settle(count: Callable[[], int], expected: int, *, timeout: float, quiet: float) -> int:
    """Polls ``count`` until it reaches ``expected``, stops moving for ``quiet`` seconds (what
    is missing then is not coming), or ``timeout`` passes; the last count."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while True:
        now = count()
        if now >= expected:
            return now
        if now != last:
            last, since = now, time.monotonic()
        if time.monotonic() - since >= quiet or time.monotonic() >= deadline:
            return now
        time.sleep(0.05)


def unapplied(db: Database, events_table: str, after: int, upto: int) -> list[int]:
    """Notification ids in (after, upto] that have no event_tracking row: events the worker
    never applied."""
    query = sql.SQL(
        "SELECT e.notification_id FROM {} e WHERE e.notification_id > %s "
        "AND e.notification_id <= %s AND NOT EXISTS "
        "(SELECT 1 FROM event_tracking t WHERE t.notification_id = e.notification_id) "
        "ORDER BY 1"
    ).format(sql.Identifier(events_table))
    return [int(r[0]) for r in db.query(query.as_string(None), (after, upto))]


def dead_letters(url: str, namespace: str) -> int:
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        return int(client.zcard(f"{namespace}:{EVENTS}.XQ"))
    finally:
        client.close()


def _generate(
    rig: Rig, cases: Cases, projects: Sequence[UUID], children: Sequence[Child]
) -> tuple[Generated, Generated]:
    """The warm-up and the measured commands, and the wait for their notifications."""
    plan, db = rig.run.plan, rig.db
    _log(f"latency: warm-up, {plan.warmup_seconds:.0f} s at {plan.rate:.0f} commands/s")
    warm = open_loop(cases, projects, rate=plan.rate, seconds=plan.warmup_seconds,
                     senders=plan.senders, prefix=WARMUP_PREFIX)  # fmt: skip
    settle(lambda: count_notifications(db, WARMUP_PREFIX), len(warm.sent), timeout=30, quiet=3)
    for c in children:
        c.check()
    _log(f"latency: measuring, {plan.latency_seconds:.0f} s at {plan.rate:.0f} commands/s")
    label = f"commands at {plan.rate:.0f}/s + relay + worker"
    with CpuMeter(children).measure(rig.run.cpu, label):
        gen = open_loop(cases, projects, rate=plan.rate, seconds=plan.latency_seconds,
                        senders=plan.senders, prefix=LATENCY_PREFIX)  # fmt: skip
    settle(lambda: count_notifications(db, LATENCY_PREFIX), len(gen.sent), timeout=60, quiet=5)
    for c in children:
        c.check()
    return warm, gen


def stages(
    path: str, sent: Sequence[Sent], times: dict[tuple[UUID, int], tuple[int, int]]
) -> dict[str, Any]:
    """``--stages``: each measured command's way, from the worker's StageClock: commit → the
    relay's send (the message's timestamp, whole ms) → the worker begins the message → the
    notification's created_at (taken just before the worker's transaction)."""
    try:
        seen = json.loads(Path(path).read_text())
    finally:
        with contextlib.suppress(OSError):
            Path(path).unlink()
    began: dict[int, tuple[int, int]] = {}
    for notification_id, sent_ms, began_ns in seen:
        began.setdefault(int(notification_id), (int(sent_ms) * 1_000_000, int(began_ns)))
    relay, queued, handled = [], [], []
    for s in sent:
        recorded = times.get((s.project_id, s.version))
        if recorded is None or recorded[0] not in began:
            continue
        sent_ns, began_ns = began[recorded[0]]
        relay.append(sent_ns - s.commit_wall_ns)
        queued.append(began_ns - sent_ns)
        handled.append(recorded[1] - began_ns)
    return {
        "events": len(relay),
        "commit → relay sends (ms resolution)": asdict(Latency.of(relay)),
        "relay sends → worker begins": asdict(Latency.of(queued)),
        "worker begins → created_at": asdict(Latency.of(handled)),
    }


def render_stages(data: dict[str, Any]) -> str:
    cells: list[tuple[str, ...]] = [("stage", "p50", "p90", "p99", "max")]
    for name, lat in data.items():
        if isinstance(lat, dict):
            cells.append((name, *(f"{lat[k]:.1f} ms" for k in ("p50_ms", "p90_ms", "p99_ms",
                                                                "max_ms"))))  # fmt: skip
    return _grid(cells, right=(1, 2, 3, 4))


def measure_latency(rig: Rig) -> None:
    run, plan, db, recorder = rig.run, rig.run.plan, rig.db, rig.recorder
    cases = Cases(rig.store)
    before = recorder.max_notification_id() or 0
    projects = seed(rig.store, first_serial=1, projects=plan.latency_projects,
                    events_per_project=1, batch=plan.save_batch).projects  # fmt: skip
    _log(f"latency: {len(projects)} projects registered; starting the relay and the worker")
    stages_path = str(Path(tempfile.gettempdir(), f"{run.namespace}-stages.json"))
    children = [rig.child("relay"), rig.child("worker", stages_path if rig.stages else "")]
    observer = Relay.observer(rig.store, db)

    def tracked() -> int:
        return int(db.query("SELECT count(*) FROM event_tracking")[0][0])

    try:
        for c in children:
            c.start()
        for c in children:
            c.begin()
        head = recorder.max_notification_id() or 0
        if settle(tracked, head, timeout=60, quiet=10) < head:
            msg = "the registrations were not processed within 60 s"
            raise RuntimeError(msg)
        warm, gen = _generate(rig, cases, projects, children)
        times = recorded_times(db, recorder.events_table_name, LATENCY_PREFIX)
    finally:
        for c in children:
            c.stop()
    head = recorder.max_notification_id() or 0
    latencies = [
        times[s.project_id, s.version][1] - s.commit_wall_ns
        for s in gen.sent
        if (s.project_id, s.version) in times
    ]
    if rig.stages:
        run.latency["stages"] = stages(stages_path, gen.sent, times)
    first_due = min((s.scheduled_ns for s in gen.sent), default=0)
    run.latency["series"] = [  # (seconds since the first due moment, latency in ms), for --json
        (round((s.scheduled_ns - first_due) / 1e9, 4),
         round((times[s.project_id, s.version][1] - s.commit_wall_ns) / 1e6, 3))
        for s in gen.sent
        if (s.project_id, s.version) in times
    ]  # fmt: skip
    run.latency |= {
        "event": "OfficerAssigned (Cases.assign_officer, role joint) → inbox officer:<sub>",
        "planned": gen.planned,
        "completed": len(gen.sent),
        "errors": gen.errors[:20],
        "error_count": len(gen.errors),
        "seconds": gen.seconds,
        "achieved_rate": gen.rate,
        "notifications_missing": len(gen.sent) - len(latencies),
        "negative_latencies": sum(1 for x in latencies if x < 0),
        "commit_to_notification": asdict(Latency.of(latencies)),
        "command_latency": asdict(Latency.of([s.done_ns - s.started_ns for s in gen.sent])),
        "issue_delay": asdict(
            Latency.of([max(0, s.started_ns - s.scheduled_ns) for s in gen.sent])
        ),
        "warmup_commands": len(warm.sent),
        "events_per_project_end": 1 + (len(warm.sent) + len(gen.sent)) / len(projects),
        "phase_events": head - before,
        "relay_position_at_end": observer.position(),
        "head_at_end": head,
        "unapplied_events": unapplied(db, recorder.events_table_name, before, head),
        "queued_at_end": queue_length(rig.url, run.namespace, EVENTS),
        "dead_letters": dead_letters(rig.url, run.namespace),
    }
    run.notes += _latency_notes(run.latency)


def _latency_notes(lat: dict[str, Any]) -> list[str]:
    notes = []
    position, head, skipped = (
        lat["relay_position_at_end"],
        lat["head_at_end"],
        lat["unapplied_events"],
    )
    if position != head:
        notes.append(f"latency phase: the relay stopped at {position}, head {head}")
    if skipped:
        ids = ", ".join(map(str, skipped[:10])) + (" …" if len(skipped) > 10 else "")
        why = (
            "the relay skipped them (never sent: its position passed them, and the events queue "
            "and its dead letters are empty)"
            if position >= head and not lat["queued_at_end"] and not lat["dead_letters"]
            else f"{lat['queued_at_end']} still queued, {lat['dead_letters']} dead letters"
        )
        notes.append(
            f"latency phase: {len(skipped)} of {lat['phase_events']:,} events were never "
            f"applied (notification ids {ids}): {why}"
        )
    if lat["notifications_missing"]:
        notes.append(
            f"latency phase: {lat['notifications_missing']} measured commands' notifications "
            "were never recorded; the percentiles are over the recorded ones"
        )
    if lat["errors"]:
        notes.append(f"{lat['error_count']} commands failed, e.g. {lat['errors'][0]}")
    if lat["negative_latencies"]:
        notes.append(
            f"{lat['negative_latencies']} notifications carry a created_at before their command "
            "returned (the commit time is taken when the call returns in the bench's process; "
            "a sender thread can get the GIL back after the worker has recorded)"
        )
    return notes


def _relay_backlog(rig: Rig, start: int, head: int) -> dict[str, Any]:
    run, plan = rig.run, rig.run.plan
    observer = Relay.observer(rig.store, rig.db)
    if queue_length(rig.url, run.namespace, EVENTS):
        msg = "the events queue is not empty before the relay starts"
        raise RuntimeError(msg)
    enq, enq_count = enqueue_rate(rig.url, run.namespace, plan.baseline_seconds)
    run.baselines |= {"enqueue_rate": enq, "enqueue_messages": enq_count}
    _log(f"backlog: baseline no-op enqueue {enq:,.0f}/s; starting the relay")
    relay = rig.child("relay")
    try:
        relay.start()
        with CpuMeter([relay]).measure(run.cpu, f"relay alone on {head - start:,} events"):
            t0 = time.perf_counter()
            relay.begin()
            caught_up = wait_until(lambda: observer.position() >= head, plan.relay_cap_seconds,
                                   0.02)  # fmt: skip
            seconds = time.perf_counter() - t0
        relay.check()
        relayed = observer.position() - start
    finally:
        relay.stop()
    queued = queue_length(rig.url, run.namespace, EVENTS)
    _log(f"backlog: relay {relayed:,} events in {seconds:.1f} s; {queued:,} queued")
    if not caught_up:
        run.notes.append(f"the relay did not catch up within {plan.relay_cap_seconds:.0f} s")
    return {"relay_caught_up": caught_up, "relayed": relayed, "relay_seconds": seconds,
            "relay_rate": relayed / seconds, "queued_after_relay": queued}  # fmt: skip


def _work_backlog(rig: Rig, start: int, expected: int) -> dict[str, Any]:
    run, plan = rig.run, rig.run.plan

    def applied() -> int:
        rows = rig.db.query("SELECT count(*) FROM event_tracking WHERE notification_id > %s",
                            (start,))  # fmt: skip
        return int(rows[0][0])

    worker = rig.child("worker")
    progress: list[tuple[float, int]] = []
    _log(f"backlog: starting the worker ({plan.worker_threads} threads)")
    try:
        worker.start()
        label = f"worker alone ({plan.worker_threads} threads)"
        with CpuMeter([worker]).measure(run.cpu, label):
            t0 = time.perf_counter()
            worker.begin()
            done, last_change, last = 0, t0, 0
            while True:
                time.sleep(0.25)
                now = time.perf_counter()
                done = applied()
                progress.append((round(now - t0, 2), done))
                if done != last:
                    last, last_change = done, now
                if done >= expected or now - t0 >= plan.worker_cap_seconds:
                    break
                if now - last_change > 10:  # nothing moves: what is left is not coming
                    break
                if len(progress) % 40 == 0:
                    _log(f"backlog: worker {done:,}/{expected:,}")
                    worker.check()
            seconds = time.perf_counter() - t0
    finally:
        worker.stop()
    left = queue_length(rig.url, run.namespace, EVENTS)
    if done < expected:
        run.notes.append(
            f"the worker was stopped after {seconds:.0f} s with {expected - done:,} events left "
            f"({left:,} still queued): its rate is over the {done:,} it applied; at that rate "
            f"the backlog takes {expected / max(done / seconds, 1e-9):.0f} s"
        )
    return {"worker_threads": plan.worker_threads, "worker_applied": done,
            "worker_seconds": seconds, "worker_rate": done / seconds,
            "worker_finished": done >= expected, "queue_left": left,
            "worker_progress": progress}  # fmt: skip


def measure_backlog(rig: Rig) -> None:
    run, plan, recorder = rig.run, rig.run.plan, rig.recorder
    observer = Relay.observer(rig.store, rig.db)
    start = recorder.max_notification_id() or 0
    if observer.position() != start:
        msg = f"the relay's position {observer.position()} is not the head {start}"
        raise RuntimeError(msg)
    projects = plan.backlog_events // plan.events_per_project
    _log(f"backlog: seeding {projects * plan.events_per_project:,} events ({projects:,} "
         f"projects × {plan.events_per_project}, {plan.save_batch} projects per save)")  # fmt: skip
    seeded = seed(rig.store, first_serial=100_001, projects=projects,
                  events_per_project=plan.events_per_project, batch=plan.save_batch)  # fmt: skip
    head = recorder.max_notification_id() or 0
    _log(f"backlog: {head - start:,} events seeded in {seeded.seconds:.1f} s")
    run.backlog = {"events": head - start, "projects": projects,
                   "events_per_project": plan.events_per_project,
                   "seed_seconds": seeded.seconds, "seed_rate": seeded.rate}  # fmt: skip
    run.backlog |= _relay_backlog(rig, start, head)
    run.backlog |= _work_backlog(rig, start, run.backlog["relayed"])
    if run.backlog["worker_finished"]:
        skipped = unapplied(rig.db, recorder.events_table_name, start, head)
        run.backlog["unapplied_events"] = skipped
        if skipped:
            run.notes.append(f"backlog: {len(skipped)} events never applied")


def build_figures(run: Run) -> list[Figure]:
    b, lat, bl = run.baselines, run.latency, run.backlog
    raw_p50, raw_p99 = b["raw_insert_latency"]["p50_ms"], b["raw_insert_latency"]["p99_ms"]
    c2n, cmd, rate = lat["commit_to_notification"], lat["command_latency"], run.plan.rate
    raw_label = "raw insert tx p50, 1 conn"
    figures = [
        Figure("commit → notification p50", c2n["p50_ms"], "ms", raw_p50, raw_label,
               target=P50_TARGET_MS, target_op="<=", target_label="issue 5"),
        Figure("commit → notification p90", c2n["p90_ms"], "ms", raw_p50, raw_label),
        Figure("commit → notification p99", c2n["p99_ms"], "ms", raw_p99,
               "raw insert tx p99", target=P99_TARGET_MS, target_op="<=",
               target_label="issue 5"),
        Figure("commit → notification max", c2n["max_ms"], "ms", raw_p99, "raw insert tx p99"),
        Figure("commands/s achieved (open loop)", lat["achieved_rate"], "/s", rate,
               "scheduled", target=rate * STEADY_SHARE, target_op=">=",
               target_label="steady: 98%"),
        Figure("command (Cases call) p50", cmd["p50_ms"], "ms", raw_p50, raw_label),
        Figure("events never applied, latency phase", len(lat["unapplied_events"]), "events",
               target=0, target_op="<=", target_label="issue 3: none lost"),
        Figure("baseline: Redis PING p50", b["redis_ping"]["p50_ms"], "ms"),
        Figure("baseline: raw insert tx p50, 1 conn", raw_p50, "ms"),
    ]  # fmt: skip
    if bl:
        enq = b["enqueue_rate"]
        figures += [
            Figure("seeding (batched saves), events/s", bl["seed_rate"], "/s"),
            Figure(f"relay alone on {bl['events']:,} events, events/s", bl["relay_rate"], "/s",
                   enq, "no-op enqueue/s, 1 thread", target=rate, target_op=">=",
                   target_label="keep up with 200/s"),
            Figure(f"worker alone ({bl['worker_threads']} threads), events/s",
                   bl["worker_rate"], "/s", b["raw_insert_rate"], "raw insert tx/s, 1 conn",
                   target=rate, target_op=">=", target_label="keep up with 200/s"),
            Figure("baseline: no-op enqueue/s, 1 thread", enq, "/s"),
        ]  # fmt: skip
    return figures


def print_report(run: Run) -> None:
    m, load = run.machine, run.load
    print(f"ecocase workers benchmark, {run.started}, {m['host']}: {m['cpus']} CPUs, "
          f"Python {m['python']}, PostgreSQL {m['postgres']}, Redis {m['redis']}")  # fmt: skip
    print(f"1-minute load average: {load['at_start']:.2f} at start, "
          f"{load['when_measuring_began']:.2f} when measuring began (waited "
          f"{load['waited_s']:.0f} s), {load['at_end']:.2f} at the end; during the run "
          f"{load['during_min']:.2f}–{load['during_max']:.2f}, "
          f"mean {load['during_mean']:.2f}")  # fmt: skip
    store_env = m.get("store_env", {})
    print(f"store: eventsourcing on PostgreSQL, POSTGRES_ENABLE_DB_FUNCTIONS="
          f"{store_env.get('POSTGRES_ENABLE_DB_FUNCTIONS', '(unset)')}; relay and worker: "
          f"{run.plan.worker_threads} worker threads, Redis namespace {run.namespace}")  # fmt: skip
    print()
    print(render(run.figures))
    print()
    print("CPU, share of one core (the machine has 2 cores: 200%):")
    print(render_cpu(run.cpu))
    lat = run.latency
    if "stages" in lat:
        print()
        print(f"--stages: where the commit → notification time goes ({lat['stages']['events']:,}"
              " measured events; the worker ran with an observing middleware):")  # fmt: skip
        print(render_stages(lat["stages"]))
    print()
    print(f"latency phase: {lat['event']}; {lat['completed']:,}/{lat['planned']:,} commands, "
          f"{run.plan.senders} sender threads, issue delay p99 "
          f"{lat['issue_delay']['p99_ms']:.2f} ms; {lat['events_per_project_end']:.1f} events "
          "per project at the end")  # fmt: skip
    if run.backlog:
        bl = run.backlog
        print(f"backlog: {bl['events']:,} events ({bl['projects']:,} projects × "
              f"{bl['events_per_project']}); relay {bl['relay_seconds']:.1f} s; worker "
              f"{bl['worker_applied']:,} events in {bl['worker_seconds']:.1f} s")  # fmt: skip
    for note in run.notes:
        print(f"note: {note}")
    sys.stdout.flush()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    raise SystemExit(128 + signum)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.workers",
        description="The workers' benchmark: commit → notification latency at 200 commands/s, "
        "relay and worker throughput on a backlog (see bench/README.md).",
    )
    parser.add_argument("--quick", action="store_true", help="8 s latency, 20,000-event backlog")
    parser.add_argument("--json", type=Path, help="write every result here")
    parser.add_argument("--skip-backlog", action="store_true", help="only the latency phase")
    parser.add_argument("--stages", action="store_true",
                        help="also break the latency down (adds an observing middleware to the "
                        "worker of the latency phase)")  # fmt: skip
    parser.add_argument(
        "--load-limit",
        type=float,
        default=1.0,
        help="wait until the 1-minute load average is below this (1.0)",
    )
    parser.add_argument(
        "--max-wait", type=float, default=300.0, help="wait at most this many seconds for it (300)"
    )
    parser.add_argument("--dbname", default="test")
    parser.add_argument("--db-host", default="127.0.0.1")
    parser.add_argument("--db-port", type=int, default=5432)
    parser.add_argument("--db-user", default="postgres")
    parser.add_argument("--db-password", default="")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")  # fmt: skip
    return parser.parse_args(argv)


def _logging_to_stderr() -> None:
    """The project's logging, at WARNING, on stderr: stdout is the table's."""
    configure_logging("console", "WARNING")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


def _machine(target: PgTarget, redis_url: str) -> dict[str, Any]:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        redis_version = str(client.info("server").get("redis_version", "?"))
    finally:
        client.close()
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgres": target.server_version(),
        "redis": redis_version,
        "date": date.today().isoformat(),
    }


def _measure(
    run: Run, target: PgTarget, redis_url: str, *, backlog: bool, with_stages: bool
) -> None:
    env = _environment(target, run.schema, redis_url)
    settings = load_settings(env)
    run.machine["store_env"] = {
        k: v for k, v in settings.store_env().items() if "PASSWORD" not in k
    }
    plan = run.plan
    raw: RawResult = raw_inserts(target, run.schema, threads=1, seconds=plan.baseline_seconds)
    ping = redis_ping(redis_url, plan.pings)
    run.baselines = {
        "raw_insert_latency": asdict(raw.latency),
        "raw_insert_rate": raw.rate,
        "raw_insert_transactions": raw.transactions,
        "redis_ping": asdict(ping),
    }
    _log(f"baselines: raw insert tx p50 {raw.latency.p50_ms:.2f} ms ({raw.rate:,.0f}/s), "
         f"Redis PING p50 {ping.p50_ms:.3f} ms")  # fmt: skip
    store = CaseStore(env=settings.store_env())
    try:
        db = open_database(settings.store_env())
        try:
            rig = Rig(run, settings, env, store, db, stages=with_stages)
            measure_latency(rig)
            if backlog:
                measure_backlog(rig)
        finally:
            db.close()
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    plan = Plan.quick() if args.quick else Plan.default()
    signal.signal(signal.SIGTERM, _on_sigterm)
    _clean_environ()
    _logging_to_stderr()
    run_id = secrets.token_hex(4)
    target = PgTarget(args.dbname, args.db_host, args.db_port, args.db_user, args.db_password)
    run = Run(run_id, plan, f"ecocase_bench_{run_id}_workers", f"ecocase-bench-{run_id}")
    first, load, waited = wait_for_load(args.load_limit, args.max_wait)
    run.load = {"at_start": first, "when_measuring_began": load, "waited_s": round(waited, 1),
                "limit": args.load_limit}  # fmt: skip
    if load >= args.load_limit:
        run.notes.append(f"the load was still {load:.2f} (≥ {args.load_limit}) after "
                         f"{args.max_wait:.0f} s of waiting: measured anyway")  # fmt: skip
    run.started = datetime.now(tz=UTC).isoformat(timespec="seconds")
    run.machine = _machine(target, args.redis_url)
    _log(f"run {run_id}: schema {run.schema}, Redis namespace {run.namespace}, load {load:.2f}")
    sampler = LoadSampler()
    sampler.start()
    status = 0
    create_schema(target, run.schema)
    try:
        _measure(run, target, args.redis_url, backlog=not args.skip_backlog,
                 with_stages=args.stages)  # fmt: skip
        run.figures = build_figures(run)
    except Exception as e:  # noqa: BLE001 - reported; the clean-up below runs either way
        _log(f"failed: {type(e).__name__}: {e}")
        run.notes.append(f"failed: {type(e).__name__}: {e}")
        status = 1
    finally:
        sampler.stop()
        try:
            drop_schema(target, run.schema)
        finally:
            deleted = delete_namespace(args.redis_url, run.namespace)
            _log(f"clean-up: schema {run.schema} dropped, {deleted} Redis keys deleted")
    end_load = os.getloadavg()[0]
    samples = sampler.samples or [end_load]
    run.load |= {"at_end": end_load, "during_min": min(samples), "during_max": max(samples),
                 "during_mean": sum(samples) / len(samples), "samples": samples}  # fmt: skip
    if run.figures:
        print_report(run)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(run.as_json(), ensure_ascii=False, indent=2, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
