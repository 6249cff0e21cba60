"""``python -m bench [--full]``: every benchmark of issue 5 in one run, one table.

1. **Baselines**: raw single-row insert transactions from psycopg 3 (1 connection, 8 threads).
2. **One store, grown**: a fresh schema seeded (batched saves of valid hash-chained projects,
   two processes) to 10k events, then to 100k (and 1M with ``--full``); at each size the live
   project list and supervision view are caught up, then ``ecocase serve`` (granian, one
   worker, ``ECOCASE_EMBEDDED_WORKERS=no``) runs the HTTP phases: GET /health/live and
   GET /windows (16 clients), commands (1 and 16 clients), GET /projects/{id} (16 clients)
   over many projects. The command cost (rate, server CPU µs per command) at each size is
   compared with the smallest store.
3. **At the largest size, production shape**: the same API plus ``ecocase relay`` and
   ``ecocase worker`` on a Redis database of the run's own: commit → notification recorded at
   a steady 200 commands/s; then VmRSS/VmHWM of every process. Then **scale-out**: a second
   API and a second worker: commands with 16 clients split over both APIs, and the latency
   again.
4. **Read models**: the rebuild of all read models over the largest store, and a 1,000-event
   project's load time (own schema).

Every schema and Redis key the run creates is removed at the end and every process it starts
is stopped, also after a failure, Ctrl-C or SIGTERM. See bench/README.md.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from types import FrameType
from uuid import uuid4

from psycopg import sql

from bench import document, read_models
from bench.baseline import PgTarget, create_schema, drop_schema, raw_inserts
from bench.floor_app import DEFAULT_BODY_BYTES
from bench.floor_db import DEFAULT_VIEW_BYTES, create_tables, inserted
from bench.http_load import LoadResult, RequestFactory
from bench.latency import (
    LatencyResult,
    open_loop,
    recorded_times,
    summarise,
    unapplied,
    wait_for_notifications,
)
from bench.phases import (
    CREATED,
    OK,
    Split,
    commands,
    fixed,
    officer_token,
    phase,
    reads,
    run_async,
    split_commands,
)
from bench.redis_db import RedisDb
from bench.rows import (
    CMD1,
    CMD16,
    FLOOR_DB_KIND,
    FLOOR_DB_STEP,
    FLOOR_KIND,
    FLOOR_STEP,
    LIVE,
    READ16,
    READ_HOT,
    WINDOWS,
    Point,
    Results,
    build_rows,
)
from bench.seed import Shape, catch_up_views, seed_parallel
from bench.server import FloorServer, Process, Server, server_env
from bench.stats import CpuMeter, load_average, memory, wait_until_quiet
from bench.table import failures
from domain.builder import Builder
from domain.tiers import Tier
from domain.windows import Window

SERVERS = ("granian", "uvicorn")
RESULTS = Path(__file__).resolve().parent / "results" / "latest.md"
# No contact: an OfficerAssigned then calls for the new officer's inbox only (no e-mail).
BUILDER = Builder(name="杭州基准建设有限公司", credit_code="91330100716105852F")


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]  # the store's sizes, in events
    per_project: int = 10  # events of each seeded project
    raw_seconds: float = 3.0
    trivial_seconds: float = 3.0
    cmd1_seconds: float = 6.0
    cmd16_seconds: float = 8.0
    read_seconds: float = 5.0
    warmup_seconds: float = 1.0
    command_projects: int = 480  # a multiple of 16
    read_projects: int = 4_000
    latency_rate: float = 200.0
    latency_seconds: float = 12.0
    latency_warmup: float = 2.0
    seed_processes: int = 2
    clients: int = 16
    raw_threads: int = 8

    @classmethod
    def quick(cls) -> Plan:
        return cls(sizes=(10_000, 100_000))

    @classmethod
    def full(cls) -> Plan:
        return cls(sizes=(10_000, 100_000, 1_000_000), trivial_seconds=4.0, cmd1_seconds=8.0,
                   cmd16_seconds=10.0, read_seconds=6.0, latency_seconds=20.0)  # fmt: skip


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class ProjectPool:
    """The seeded projects no command has touched yet, handed out at random (so that the
    projects of a phase are spread over the whole store). ``take`` hands them out for good;
    ``peek`` only looks (reads change nothing)."""

    def __init__(self, seed: int) -> None:
        self._fresh: list[str] = []
        self._used: list[str] = []
        self._random = random.Random(seed)

    def add(self, ids: Sequence[str]) -> None:
        self._fresh += ids

    def peek(self, n: int) -> list[str]:
        return self._random.sample(self._fresh, min(n, len(self._fresh)))

    def take(self, n: int) -> list[str]:
        """``n`` fresh projects; when too few are left, touched ones make up the rest."""
        self._random.shuffle(self._fresh)
        taken, self._fresh = self._fresh[:n], self._fresh[n:]
        if len(taken) < n and self._used:
            taken += [self._random.choice(self._used) for _ in range(n - len(taken))]
        self._used += taken
        return taken


class Suite:
    def __init__(self, args: argparse.Namespace, plan: Plan) -> None:
        self.args, self.plan = args, plan
        self.target = PgTarget(args.dbname, args.db_host, args.db_port, args.db_user,
                               args.db_password)  # fmt: skip
        self.run_id = f"{datetime.now():%Y%m%d_%H%M%S}_{secrets.token_hex(3)}"
        self.secret = secrets.token_urlsafe(32)
        self.token = officer_token(self.secret)
        self.schema = f"ecocase_bench_{self.run_id}_store"
        self.schemas: list[str] = []
        self.results = Results(quick=not args.full, sizes=plan.sizes, kinds=tuple(args.servers),
                               floors_only=args.only == "floors")  # fmt: skip
        self.redis = RedisDb(args.redis_url, self.run_id)
        self.log_dir = Path(tempfile.mkdtemp(prefix="ecocase-bench-"))
        self.pool = ProjectPool(secrets.randbelow(2**32))
        self.shape = Shape(BUILDER, plan.per_project, window=Window.XIHU,
                           tiers=(Tier.CITY_KEY,))  # fmt: skip
        self.next_serial = 1
        self.events_table = "ecocase_events"
        self.processes: list[Process] = []
        self.api: Server | None = None  # kept running from the largest store's HTTP phases
        self.worker: Process | None = None  # kept running from the latency phase
        self.env: dict[str, str] = {}
        self.seconds = 0.0
        self.redis_version = "?"

    # --- plumbing --------------------------------------------------------------------------

    def attempt(self, step: str, fn: Callable[[], object]) -> bool:
        """Runs one step; a failure is recorded (its rows then say so) and the run goes on."""
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - reported in the table; later steps still run
            self.results.errors[step] = f"{type(e).__name__}: {str(e)[:300]}"
            _log(f"{step} FAILED: {type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stderr)
            return False
        return True

    def fresh_schema(self, name: str) -> str:
        create_schema(self.target, name)
        self.schemas.append(name)
        return name

    def head(self) -> int:
        query = sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
            sql.Identifier(self.schema, self.events_table)
        )
        with self.target.connect() as conn:
            row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0

    def start(self, process: Process) -> Process:
        self.processes.append(process)
        process.start()
        return process

    def server(self, kind: str, name: str) -> Server:
        server = Server(kind, self.args.host, self.env, self.log_dir / f"{name}.log", name=name)
        self.start(server)
        return server

    def ecocase(self, command: str, name: str) -> Process:
        """``ecocase relay`` or ``ecocase worker``, logging at INFO (a few lines: the bench
        waits for their "… started") while the API logs at WARNING (INFO is a line per
        request)."""
        env = {**self.env, "ECOCASE_LOG_LEVEL": "INFO"}
        return self.start(Process(name, [command], env, self.log_dir / f"{name}.log"))

    def ready(self, processes: Sequence[Process], timeout: float = 120.0) -> None:
        """Waits until each relay and worker has logged that it started (its imports and
        connections done: on a busy machine that takes several seconds)."""
        for process in processes:
            needle = "relay started" if process.args == ["relay"] else "worker started"
            if not process.wait_for_log(needle, timeout):
                _log(f"  {process.name} did not log '{needle}' within {timeout:.0f} s; going on")

    def stop(self, process: Process | None) -> None:
        if process is not None:
            process.stop()

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            try:
                process.stop()
            except Exception as e:  # noqa: BLE001 - go on stopping the others
                _log(f"could not stop {process.name}: {e!r}")
        self.processes.clear()
        self.api = None

    def clean_up(self) -> None:
        self.stop_all()
        for schema in self._schemas_left():
            try:
                drop_schema(self.target, schema)
            except Exception as e:  # noqa: BLE001 - report it, go on dropping the others
                _log(f"could not drop schema {schema}: {e!r}")
        try:
            deleted = self.redis.release()
        except Exception as e:  # noqa: BLE001 - reported
            _log(f"could not clean Redis up: {e!r}")
        else:
            _log(f"clean-up: schemas dropped, {deleted} Redis keys deleted")

    def _schemas_left(self) -> list[str]:
        """The run's schemas, and any a rebuild left behind (``<schema>_rebuild_<time>``)."""
        names = [*self.schemas, f"ecocase_bench_rm_{self.run_id}_load"]
        try:
            with self.target.connect() as conn:
                rows = conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)",
                    (f"ecocase_bench_{self.run_id}_",),
                ).fetchall()
        except Exception:  # noqa: BLE001 - then drop what we know of
            rows = []
        return list(dict.fromkeys(names + [str(r[0]) for r in rows]))

    # --- the steps -------------------------------------------------------------------------

    def run(self) -> Results:
        started = time.perf_counter()
        try:
            self.attempt("raw baseline", self.raw_baseline)
            if self.results.floors_only:
                self.env = server_env(self.target, self.schema, self.secret, None)
                self.floors()
            else:
                self.everything()
            if self.results.raw:
                self.attempt("raw baseline again", partial(self.raw_baseline, again=True))
        finally:
            self.clean_up()
            self.seconds = time.perf_counter() - started
        if self.results.errors or self.args.keep_logs:
            _log(f"process logs kept in {self.log_dir}")
        else:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        return self.results

    def everything(self) -> None:
        """Every step after the raw baselines (``run`` cleans up after them)."""
        self.fresh_schema(self.schema)
        self.env = server_env(self.target, self.schema, self.secret, None)
        if self.attempt("redis", self.claim_redis):
            self.env = server_env(self.target, self.schema, self.secret, self.redis.url)
        _log(f"run {self.run_id}: schema {self.schema}, Redis {self.env['ECOCASE_REDIS_URL']}")
        for size in self.plan.sizes:
            if not self.attempt(f"seeding to {size:,}", partial(self.grow, size)):
                break
            for kind in self.results.kinds:
                keep = size == self.results.largest and kind == self.results.kinds[0]
                self.attempt(f"HTTP phases {kind} {size:,}",
                             partial(self.point, size, kind, keep=keep))  # fmt: skip
            if size == min(self.plan.sizes):
                self.floors()
        if self.api is not None and self.redis.db is not None:
            self.attempt("latency single", self.pipeline)
            self.attempt("scale-out", self.scale_out)
        else:
            why = "no Redis" if self.redis.db is None else "the largest store's API failed"
            self.results.errors.setdefault("latency single", f"not run: {why}")
            self.results.errors.setdefault("scale-out", f"not run: {why}")
        self.stop_all()
        if self.results.seeding:
            self.attempt("rebuild", self.rebuild)
        self.attempt("loads", self.loads)

    def claim_redis(self) -> None:
        self.redis_version = self.redis.server_version()
        self.redis.claim()

    def raw_baseline(self, *, again: bool = False) -> None:
        """The raw inserts, at the start and ``again`` at the end of the run: each baseline is
        the faster of the two, so that a slow spell of the machine while one was measured does
        not flatter every ratio to it (one run's was at half the rates of the others)."""
        schema = self.fresh_schema(f"ecocase_bench_{self.run_id}_raw{'_again' if again else ''}")
        for key, threads in (("1", 1), ("8", self.plan.raw_threads)):
            r = raw_inserts(self.target, schema, threads=threads, seconds=self.plan.raw_seconds)
            baseline = self.results.add_raw(key, r)
            _log(f"{r.label}: {r.rate:,.0f} tx/s, p50 {r.latency.p50_ms:.2f} ms"
                 + (f" (the baseline: {baseline.rate:,.0f})" if again else ""))  # fmt: skip
        drop_schema(self.target, schema)

    def grow(self, size: int) -> None:
        env = read_models.store_env(self.target, self.schema)
        if self.next_serial == 1:
            from application.store import CaseStore  # noqa: PLC0415 - the tables, once

            store = CaseStore(env=env)
            self.events_table = getattr(store.recorder, "events_table_name", self.events_table)
            store.close()
        missing = size - self.head()
        entry: dict[str, object] = {"size": size, "events": 0, "processes": 0, "rate": None}
        self.results.seeding.append(entry)
        if missing <= 0:
            return
        projects = math.ceil(missing / self.plan.per_project)
        _log(f"seeding {projects:,} projects × {self.plan.per_project} events (to {size:,})")
        entry["error"] = "failed"  # until it is done
        seeded = seed_parallel(env, self.shape, first_serial=self.next_serial,
                               projects=projects, processes=self.plan.seed_processes)  # fmt: skip
        del entry["error"]
        self.next_serial += projects
        self.pool.add(seeded.ids)
        views = catch_up_views(env)
        entry |= {"events": seeded.events, "seconds": seeded.seconds, "rate": seeded.rate,
                  "processes": self.plan.seed_processes, "views_seconds": views,
                  "head": self.head()}  # fmt: skip
        _log(f"  {seeded.events:,} events in {seeded.seconds:.1f} s ({seeded.rate:,.0f} ev/s); "
             f"live views caught up in {views:.1f} s")  # fmt: skip

    def point(self, size: int, kind: str, *, keep: bool) -> None:
        p = Point(size, kind)
        self.results.points.append(p)
        server = self.server(kind, f"api-{kind}-{size}")
        try:
            run_async(self._http_phases(server, p))
        except Exception as e:
            p.error = f"{type(e).__name__}: {str(e)[:200]}"
            raise
        finally:
            if keep and p.error is None:
                self.api = server
            else:
                server.stop()

    async def _http_phases(self, server: Server, p: Point) -> None:
        plan, n = self.plan, self.plan.clients
        await server.wait_healthy()
        _log(f"{server.name} up on port {server.port} (Server: {server.identified_as})")
        cmd_ids = self.pool.take(plan.command_projects)
        read_ids = self.pool.peek(plan.read_projects) or cmd_ids  # a tiny store: no others
        p.read_projects = len(read_ids)
        if not cmd_ids:
            msg = "no seeded project to send commands to"
            raise RuntimeError(msg)

        async def run(name: str, clients: int, seconds: float, factory: RequestFactory,
                      expect: frozenset[int], *, keep: bool = True) -> None:  # fmt: skip
            await self._phase(server, p, name, clients=clients, seconds=seconds,
                              factory=factory, expect=expect, keep=keep)  # fmt: skip

        await run("warm-up", n, plan.warmup_seconds, fixed("GET", "/health/live"), OK, keep=False)
        await run(LIVE, n, plan.trivial_seconds, fixed("GET", "/health/live"), OK)
        await run(WINDOWS, n, plan.trivial_seconds, fixed("GET", "/windows"), OK)
        p.head_start = self.head()
        await run("warm-up commands", n, plan.warmup_seconds, commands(cmd_ids, n), CREATED,
                  keep=False)  # fmt: skip
        await run(CMD1, 1, plan.cmd1_seconds, commands(cmd_ids, 1), CREATED)
        await run(CMD16, n, plan.cmd16_seconds, commands(cmd_ids, n), CREATED)
        # the projects just written: in this API's cache, as an officer's open cases are
        await run(READ_HOT, n, plan.read_seconds, reads(cmd_ids, n), OK)
        p.hot_projects = len(cmd_ids)
        # projects not read since the API started: each needs a query
        await run(READ16, n, plan.read_seconds, reads(read_ids, n), OK)
        p.head_end = self.head()
        server.check()

    async def _phase(self, server: Server, p: Point, name: str, *, clients: int,
                     seconds: float, factory: RequestFactory, expect: frozenset[int],
                     keep: bool = True) -> LoadResult:  # fmt: skip
        r = await phase(server, self.token, name, clients=clients, seconds=seconds,
                        factory=factory, expect=expect)  # fmt: skip
        if keep:
            p.phases[name] = r
        _log(f"  {name}: {r.rate:,.0f}/s, p50 {r.latency.p50_ms:.2f} ms, errors {r.errors}"
             + (f" e.g. {r.error_samples[0]}" if r.error_samples else "")
             + (f", other CPU {r.other_share:.0%}" if r.noisy else ""))  # fmt: skip
        return r

    def floors(self) -> None:
        """The framework floor, then the floor with its database work (each a step of its
        own: the first needs no database)."""
        self.attempt(FLOOR_STEP, self.floor)
        self.attempt(FLOOR_DB_STEP, self.floor_db)

    def floor(self) -> None:
        """The framework floor (``bench/floor_app.py``): the command phases of the smallest
        store, the same load, against the service's HTTP stack with no store behind it. Its
        answers are as large as the smaller of the real commands' (a project's view grows
        with its deferred materials: the 16-client phase's answers are the larger), so that
        the floor is not slowed by larger answers than the real ones."""
        size = min(self.plan.sizes)
        body = self.results.floor_body_bytes = self._floor_body_bytes()
        p = self.results.floor = Point(size, FLOOR_KIND)
        server = FloorServer(self.args.host, self.env, self.log_dir / "floor.log",
                             body_bytes=body)  # fmt: skip
        self.start(server)
        try:
            run_async(self._floor_phases(server, p))
        except Exception as e:
            p.error = f"{type(e).__name__}: {str(e)[:200]}"
            raise
        finally:
            server.stop()

    def _floor_body_bytes(self) -> int:
        real = self.results.point(min(self.plan.sizes), self.results.kinds[0])
        sizes = [_answer_bytes(real.phases.get(name)) for name in (CMD1, CMD16)] if real else []
        return min((x for x in sizes if x), default=DEFAULT_BODY_BYTES)

    def floor_db(self) -> None:
        """The framework floor with the least database work (``bench/floor_db.py``): in a
        schema of the run's own (dropped afterwards), a table for the commands' inserts and
        one of ``read_projects`` pre-encoded views of the size of the real cold reads'
        answers; then, against ``python -m bench.floor_app --schema``, the real server's
        order of phases: GET /health/live, the commands (1 and 16 clients, one durable
        insert each), GET /projects/{id} over the views (one select by primary key each)."""
        plan = self.plan
        size = min(plan.sizes)
        real = self.results.point(size, self.results.kinds[0])
        view = _answer_bytes(real.phases.get(READ16)) if real else None
        self.results.floor_view_bytes = view = view or DEFAULT_VIEW_BYTES
        body = self.results.floor_body_bytes or self._floor_body_bytes()
        p = self.results.floor_db = Point(size, FLOOR_DB_KIND)
        schema = self.fresh_schema(f"ecocase_bench_{self.run_id}_floor")
        try:
            started = time.perf_counter()
            ids = [str(i) for i in create_tables(self.target, schema, views=plan.read_projects,
                                                 view_bytes=view)]  # fmt: skip
            _log(f"framework floor + PostgreSQL: {len(ids):,} views of {view:,} bytes in "
                 f"{time.perf_counter() - started:.1f} s")  # fmt: skip
            p.read_projects = len(ids)
            server = FloorServer(self.args.host, self.env, self.log_dir / "floor-db.log",
                                 body_bytes=body, schema=schema, name=FLOOR_DB_KIND)  # fmt: skip
            self.start(server)
            try:
                run_async(self._floor_db_phases(server, p, ids))
            except Exception as e:
                p.error = f"{type(e).__name__}: {str(e)[:200]}"
                raise
            finally:
                server.stop()
            self.results.floor_db_inserted = inserted(self.target, schema)
        finally:
            drop_schema(self.target, schema)

    async def _floor_db_phases(self, server: Server, p: Point, ids: list[str]) -> None:
        plan, n = self.plan, self.plan.clients
        await server.wait_healthy()
        _log(f"{server.name} up on port {server.port}")
        cmd_ids = ids[: plan.command_projects]

        async def run(name: str, clients: int, seconds: float, factory: RequestFactory,
                      expect: frozenset[int], *, keep: bool = True) -> int:  # fmt: skip
            r = await self._phase(server, p, name, clients=clients, seconds=seconds,
                                  factory=factory, expect=expect, keep=keep)  # fmt: skip
            return r.statuses.get(201, 0)

        await run("warm-up", n, plan.warmup_seconds, fixed("GET", "/health/live"), OK, keep=False)
        await run(LIVE, n, plan.trivial_seconds, fixed("GET", "/health/live"), OK)
        created = await run("warm-up commands", n, plan.warmup_seconds, commands(cmd_ids, n),
                            CREATED, keep=False)  # fmt: skip
        created += await run(CMD1, 1, plan.cmd1_seconds, commands(cmd_ids, 1), CREATED)
        created += await run(CMD16, n, plan.cmd16_seconds, commands(cmd_ids, n), CREATED)
        self.results.floor_db_created = created
        await run(READ16, n, plan.read_seconds, reads(ids, n), OK)
        server.check()

    async def _floor_phases(self, server: Server, p: Point) -> None:
        plan, n = self.plan, self.plan.clients
        await server.wait_healthy()
        _log(f"{server.name} up on port {server.port} (answers of "
             f"{self.results.floor_body_bytes:,} bytes)")  # fmt: skip
        # projects as the real phases write to (the floor reads none of them)
        ids = self.pool.peek(plan.command_projects) or [str(uuid4()) for _ in range(n)]
        for name, clients, seconds in (("warm-up commands", n, plan.warmup_seconds),
                                       (CMD1, 1, plan.cmd1_seconds),
                                       (CMD16, n, plan.cmd16_seconds)):  # fmt: skip
            await self._phase(server, p, name, clients=clients, seconds=seconds,
                              factory=commands(ids, clients), expect=CREATED,
                              keep=name != "warm-up commands")  # fmt: skip
        server.check()

    def set_relay_position(self) -> int:
        """The relay starts at the store's head: the seeded history and the events of the
        throughput phases count as relayed (a worker does not apply them)."""
        head = self.head()
        table = sql.Identifier(self.schema, "relay_position")
        with self.target.connect() as conn:
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (name TEXT PRIMARY KEY, "
                                 "position BIGINT NOT NULL)").format(table))  # fmt: skip
            conn.execute(sql.SQL("INSERT INTO {} (name, position) VALUES ('relay', %s) ON "
                                 "CONFLICT (name) DO UPDATE SET position = excluded.position")
                         .format(table), (head,))  # fmt: skip
        return head

    def latency(self, servers: list[Server], key: str, workers: list[Process]) -> LatencyResult:
        plan = self.plan
        prefix = f"{'ab'[len(self.results.latency)]}{self.run_id[-6:]}-"
        warm_ids = self.pool.take(int(plan.latency_rate * plan.latency_warmup))
        ids = self.pool.take(int(plan.latency_rate * plan.latency_seconds))
        _log(f"latency ({key}): warm-up {plan.latency_warmup:.0f} s at {plan.latency_rate:.0f}/s")
        warm = run_async(open_loop(servers, self.token, warm_ids, rate=plan.latency_rate,
                                   seconds=plan.latency_warmup, prefix=f"w{prefix}"))  # fmt: skip
        wait_for_notifications(self.target, self.schema, f"w{prefix}", len(warm.sent),
                               timeout=90, quiet=15)  # fmt: skip
        for process in [*servers, *workers]:
            process.check()
        before = self.head()
        _log(f"latency ({key}): {plan.latency_seconds:.0f} s at {plan.latency_rate:.0f}/s")
        meter = CpuMeter({"api": servers, "worker": workers,
                          "relay": [p for p in self.processes if p.name.startswith("relay")
                                    and p.running]})  # fmt: skip
        gen = run_async(open_loop(servers, self.token, ids, rate=plan.latency_rate,
                                  seconds=plan.latency_seconds, prefix=f"m{prefix}"))  # fmt: skip
        cpu = meter.shares()
        wait_for_notifications(self.target, self.schema, f"m{prefix}", len(gen.sent),
                               timeout=90, quiet=10)  # fmt: skip
        times = recorded_times(self.target, self.schema, self.events_table, f"m{prefix}")
        result = summarise(gen, times, apis=len(servers), workers=len(workers),
                           rate=plan.latency_rate)  # fmt: skip
        result.unapplied = unapplied(self.target, self.schema, self.events_table, before,
                                     self.head())  # fmt: skip
        result.cpu = cpu
        self.results.latency[key] = result
        _log(f"  {result.completed:,}/{result.planned:,} commands, {len(gen.errors)} errors, "
             f"{result.recorded:,} notifications; p50 {result.from_sent.p50_ms:.1f} ms, "
             f"p99 {result.from_sent.p99_ms:.1f} ms; {result.unapplied} unapplied; CPU "
             + ", ".join(f"{k} {v:.0%}" for k, v in cpu.items()))  # fmt: skip
        if gen.errors:
            _log(f"  errors, e.g. {gen.errors[0]}")
        return result

    def read_memory(self, servers: list[Server], workers: list[Process], relay: Process) -> None:
        found = self.results.memory
        for s in servers:
            m, main = s.serving_memory(), memory(s.pid)
            if m is not None:
                found.setdefault("api", []).append(m)
            if main is not None and (m is None or m.pid != main.pid):
                found.setdefault("api-main", []).append(main)
        for role, processes in (("worker", workers), ("relay", [relay])):
            for w in processes:
                m = memory(w.pid)
                if m is not None:
                    found.setdefault(role, []).append(m)

    def relay_from_head(self) -> None:
        """Before a relay starts: the read models it follows (the project list, the
        supervision view) caught up with the commands of the phases before, and its position
        moved to the head, so that neither is replayed while the latency is measured."""
        seconds = catch_up_views(read_models.store_env(self.target, self.schema))
        head = self.set_relay_position()
        _log(f"  read models caught up in {seconds:.1f} s; the relay starts at {head:,}")

    def pipeline(self) -> None:
        assert self.api is not None
        self.relay_from_head()
        relay, worker = self.ecocase("relay", "relay"), self.ecocase("worker", "worker-1")
        self.ready([relay, worker])
        try:
            self.latency([self.api], "single", [worker])
            self.read_memory([self.api], [worker], relay)
        finally:
            relay.stop()
        self.worker = worker

    def scale_out(self) -> None:
        assert self.api is not None
        second = self.server(self.results.kinds[0], "api-2")
        worker1 = self.worker or self.ecocase("worker", "worker-1b")
        worker2 = self.ecocase("worker", "worker-2")
        run_async(second.wait_healthy())
        self.ready([worker1, worker2])
        ids = self.pool.take(self.plan.command_projects)
        servers = [self.api, second]

        async def both() -> Split:
            await split_commands(servers, self.token, ids, self.plan.clients,
                                 self.plan.warmup_seconds)  # fmt: skip
            return await split_commands(servers, self.token, ids, self.plan.clients,
                                        self.plan.cmd16_seconds)  # fmt: skip

        _log("scale-out: commands, 16 clients over 2 APIs")
        split = run_async(both())
        self.results.scale_out = split
        _log(f"  {split.rate:,.0f}/s, {split.errors} errors")
        self.relay_from_head()
        relay = self.ecocase("relay", "relay-2")
        self.ready([relay])
        workers = [worker1, worker2]
        self.latency(servers, "scale-out", workers)
        self.read_memory(servers, workers, relay)

    def rebuild(self) -> None:
        env = read_models.store_env(self.target, self.schema)
        _log(f"rebuild: all read models over {self.head():,} events")
        self.results.rebuild = read_models.rebuild_figures(env)

    def loads(self) -> None:
        self.results.loads = read_models.load_figures(self.target, self.run_id)


def _answer_bytes(r: LoadResult | None) -> int | None:
    """The mean size of a phase's answers (bodies), in bytes."""
    answers = sum(r.statuses.values()) if r is not None else 0
    return round(r.bytes_received / answers) if r is not None and answers else None


# --- main -----------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    raise KeyboardInterrupt


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument(
        "--full",
        action="store_true",
        help="add the 1M-event store; write the results document (--results)",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="write every result as JSON")
    p.add_argument("--markdown", type=Path, metavar="PATH", help="write the table as Markdown")
    p.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        metavar="PATH",
        help="where --full writes its results document (default %(default)s)",
    )
    p.add_argument(
        "--servers",
        default="granian",
        help="comma-separated ASGI servers (default granian; granian,uvicorn)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to SECONDS for the machine to be idle",
    )
    p.add_argument("--host", default="127.0.0.1", help="address the APIs listen on")
    p.add_argument("--dbname", default=env.get("POSTGRES_DBNAME", "test"))
    p.add_argument("--db-host", default=env.get("POSTGRES_HOST", "127.0.0.1"))
    p.add_argument("--db-port", type=int, default=int(env.get("POSTGRES_PORT", "5432")))
    p.add_argument("--db-user", default=env.get("POSTGRES_USER", "postgres"))
    p.add_argument("--db-password", default=env.get("POSTGRES_PASSWORD", ""))
    p.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379",
        help="the Redis server; the run claims a free database (15…1) of it",
    )
    p.add_argument("--sizes", help=argparse.SUPPRESS)  # e.g. 2000,5000: trying the suite out
    p.add_argument(
        "--only",
        choices=("floors",),
        help="floors: the raw baselines and the framework floors only (about 1 min; no store, "
        "no Redis: the rows against the real server say not measured)",
    )
    p.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    args = p.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(args.servers) - set(SERVERS)
    if unknown or not args.servers:
        p.error(f"unknown servers {sorted(unknown)}; choose from {SERVERS}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = Plan.full() if args.full else Plan.quick()
    if args.sizes:
        plan = replace(plan, sizes=tuple(int(x) for x in args.sizes.split(",")))
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Ctrl-C stops the run (and cleans up) even when started in the background of a script,
    # where the shell leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.wait_quiet > 0:
        busy = wait_until_quiet(args.wait_quiet)
        _log(f"machine busy {busy:.0%} of a core before the run")
    if args.only == "floors":
        plan = replace(plan, sizes=plan.sizes[:1])
    suite = Suite(args, plan)
    load_before = load_average()
    results = suite.run()
    rows = build_rows(results)
    doc = document.Document(results, rows, plan_json=document.jsonable(plan),
                            seconds=suite.seconds, load_before=load_before,
                            load_after=load_average(), target=suite.target,
                            argv=list(sys.argv[1:] if argv is None else argv),
                            redis_version=suite.redis_version)  # fmt: skip
    print(doc.text())
    if args.json:
        doc.write_json(args.json)
    if args.markdown:
        doc.write_markdown(args.markdown)
    if args.full and not args.sizes and not args.only:
        doc.write_markdown(args.results, full_document=True)
    if results.errors:
        return 2
    return 1 if failures(rows) else 0
