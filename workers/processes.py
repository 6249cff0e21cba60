"""The worker processes: ``ecocase worker``, ``ecocase relay``, ``ecocase scheduler``, and the
embedded set that ``ecocase serve`` runs in-process when no Redis is configured."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dramatiq
import psycopg
import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from dramatiq.brokers.stub import StubBroker

from application.project_index import ProjectIndex
from application.settings import Settings
from application.sqldb import Database
from application.store import CaseStore
from application.supervision import Supervision
from workers.actors import Actors, RetryPolicy, declare_actors
from workers.broker import BrokerSettings, build_broker
from workers.relay import Relay
from workers.runtime import LazyContext, build_context

log = structlog.get_logger("ecocase.workers")

SCAN_EVERY_S = 300  # warning scans; the thresholds are in days, so minutes are plenty


def broker_settings(settings: Settings, env: Mapping[str, str]) -> BrokerSettings:
    return BrokerSettings(
        redis_url=settings.redis_url,
        worker_threads=int(env.get("ECOCASE_WORKER_THREADS", "4")),
    )


def _until_signalled() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def run_worker(settings: Settings, env: Mapping[str, str]) -> None:
    """The dramatiq worker: consumes events, deliveries and scans until SIGTERM."""
    config = broker_settings(settings, env)
    broker = build_broker(config)
    context = LazyContext(lambda: build_context(settings, env))
    declare_actors(broker, context, _policy(env))
    worker = dramatiq.Worker(broker, worker_threads=config.worker_threads,
                             worker_timeout=config.worker_timeout_ms)  # fmt: skip
    stop = _until_signalled()
    worker.start()
    log.info("worker started", threads=config.worker_threads, broker=type(broker).__name__)
    stop.wait()
    worker.stop(timeout=10_000)
    context.close()


def run_relay(settings: Settings, env: Mapping[str, str]) -> None:
    """The outbox relay: from the event store to the queue, until SIGTERM."""
    broker = build_broker(broker_settings(settings, env))
    context = LazyContext(lambda: build_context(settings, env))
    actors = declare_actors(broker, context, _policy(env))
    ctx = context()
    relay = Relay(ctx.store, ctx.db, actors.publish)
    followers = [] if settings.projections_in_api else read_model_followers(ctx.store, settings)
    for follower in followers:
        follower.start()
    log.info("relay started", position=relay.position(), lag=relay.lag(),
             read_models=[f.name for f in followers])  # fmt: skip
    try:
        relay.run(_until_signalled())
    finally:
        for follower in followers:
            follower.close()
        context.close()


def read_model_followers(store: CaseStore, settings: Settings) -> list[ProjectIndex | Supervision]:
    """The project list and the supervision view, when `ecocase serve` does not follow them."""
    return [ProjectIndex(store, settings.store_env()), Supervision(store, settings.store_env())]


def run_scheduler(settings: Settings, env: Mapping[str, str]) -> None:
    """Enqueues the warning scan every few minutes; exactly one runs (a second one waits)."""
    broker = build_broker(broker_settings(settings, env))
    actors = declare_actors(broker, LazyContext(lambda: build_context(settings, env)))
    stop = _until_signalled()
    every = int(env.get("ECOCASE_SCAN_EVERY_S", str(SCAN_EVERY_S)))
    with single_instance(settings, "scheduler", stop):
        if stop.is_set():
            return
        scheduler = BackgroundScheduler(timezone="Asia/Shanghai")
        scheduler.add_job(actors.scan_warnings.send, "interval", seconds=every,
                          id="scan_warnings", max_instances=1, coalesce=True)  # fmt: skip
        scheduler.start()
        actors.scan_warnings.send()  # once at start, so a restart does not wait a period
        log.info("scheduler started", every_s=every)
        stop.wait()
        scheduler.shutdown(wait=False)


@contextmanager
def single_instance(settings: Settings, name: str, stop: threading.Event) -> Iterator[None]:
    """Holds a lock for the life of the process: a PostgreSQL advisory lock (on its own
    session) or, on the embedded default, a file lock in the data folder. A second instance
    waits until the first is gone, then takes over."""
    if settings.store == "postgres":
        pg = settings.postgres_dsn_env
        conn = psycopg.connect(
            dbname=pg.get("POSTGRES_DBNAME", ""), host=pg.get("POSTGRES_HOST", "127.0.0.1"),
            port=pg.get("POSTGRES_PORT", "5432"), user=pg.get("POSTGRES_USER", ""),
            password=pg.get("POSTGRES_PASSWORD", ""), autocommit=True,
        )  # fmt: skip
        key = f"ecocase.{pg.get('POSTGRES_SCHEMA', 'public')}.{name}"
        try:
            while not stop.is_set():
                row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
                if row and row[0]:
                    break
                log.info("another instance holds the lock; waiting", lock=key)
                stop.wait(5)
            yield
        finally:
            conn.close()  # the session ends, and its advisory lock with it
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(settings.data_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while not stop.is_set():
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                log.info("another instance holds the lock; waiting", lock=name)
                stop.wait(5)
        yield
    finally:
        os.close(fd)


def _policy(env: Mapping[str, str]) -> RetryPolicy:
    """Retry settings; ECOCASE_RETRY_SCALE < 1 shortens every backoff (fault tests)."""
    scale = float(env.get("ECOCASE_RETRY_SCALE", "1"))
    base = RetryPolicy()
    if scale == 1:
        return base
    return RetryPolicy(
        event_retries=base.event_retries,
        event_min_backoff=max(10, int(base.event_min_backoff * scale)),
        event_max_backoff=max(20, int(base.event_max_backoff * scale)),
        delivery_retries=base.delivery_retries,
        delivery_min_backoff=max(10, int(base.delivery_min_backoff * scale)),
        delivery_max_backoff=max(20, int(base.delivery_max_backoff * scale)),
        scan_retries=base.scan_retries,
        time_limit=base.time_limit,
    )


class EmbeddedWorkers:
    """The relay, a worker and the warning scans inside the API process, on an in-process
    broker: what ``ecocase serve`` runs when no Redis is configured."""

    def __init__(self, settings: Settings, env: Mapping[str, str], *, store: CaseStore,
                 db: Database, index: ProjectIndex) -> None:  # fmt: skip
        config = BrokerSettings(redis_url=None)  # in-process, whatever the environment says
        broker = build_broker(config)
        if not isinstance(broker, StubBroker):  # pragma: no cover - build_broker's contract
            raise TypeError(broker)
        self.broker = broker
        self.context = LazyContext(lambda: build_context(settings, env, store=store, db=db,
                                                         index=index))  # fmt: skip
        self.actors: Actors = declare_actors(self.broker, self.context, _policy(env))
        self.relay = Relay(store, db, self.actors.publish)
        self.worker = dramatiq.Worker(self.broker, worker_threads=2,
                                      worker_timeout=config.worker_timeout_ms)  # fmt: skip
        self._stop = threading.Event()
        self._relay_thread = threading.Thread(target=self.relay.run, args=(self._stop,),
                                              daemon=True, name="relay")  # fmt: skip
        self._scheduler = BackgroundScheduler(timezone="Asia/Shanghai")
        self._scan_every = int(env.get("ECOCASE_SCAN_EVERY_S", str(SCAN_EVERY_S)))

    def start(self) -> None:
        self.worker.start()
        self._relay_thread.start()
        self._scheduler.add_job(
            self.actors.scan_warnings.send, "interval", seconds=self._scan_every,
            max_instances=1, coalesce=True,
        )  # fmt: skip
        self._scheduler.start()

    def stop(self) -> None:
        self._stop.set()
        self._scheduler.shutdown(wait=False)
        self._relay_thread.join(timeout=5)
        self.worker.stop(timeout=5_000)
        self.context.close()

    def join(self, timeout_s: float = 10.0) -> bool:
        """Waits until everything stored has been relayed and processed (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.relay.lag() == 0:
                left_ms = max(1, int((deadline - time.monotonic()) * 1000))
                try:
                    for queue in sorted(self.broker.queues):
                        self.broker.join(queue, timeout=left_ms, fail_fast=False)
                except dramatiq.errors.QueueJoinTimeout:
                    return False
                self.worker.join()
                if self.relay.lag() == 0 and self._idle() and self._idle():  # twice: see _idle
                    return True
            time.sleep(0.02)
        return False

    def _idle(self) -> bool:
        """No message queued, delayed or in progress on any queue. A message counts until it
        is acked, after its retry or follow-up messages are enqueued (``qsize`` would miss one
        a consumer has taken, e.g. a retry waiting out its backoff); one move from a delay
        queue back to its queue can fall between two reads, hence the caller's second look."""
        return not any(q.unfinished_tasks for q in self.broker.queues.values())


__all__: list[Any] = ["EmbeddedWorkers", "run_relay", "run_scheduler", "run_worker"]
