"""``python -m bench``: one run, one table.

1. Raw baseline: single-row insert transactions/s from psycopg 3, one connection and 8 threads.
2. For each ASGI server (``--server uvicorn`` and ``--server granian``, one worker each) on a
   fresh schema: GET /health and GET /windows (trivial GETs), projects registered in batches,
   commands that append one event each (POST /projects/{id}/deferred-materials) with 1 and 16
   clients, and GET /projects/{id} with 16 clients.
3. The table, the CPU breakdown, which server won; ``--json PATH`` writes everything.

Every schema this run creates is dropped at the end, on failure too; every server it starts
is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import msgspec

from bench.baseline import PgTarget, RawResult, create_schema, drop_schema, raw_inserts
from bench.http_load import Connection, LoadResult, RequestFactory, run_load
from bench.report import Row, noisy, render_cpu, render_markdown, render_table
from bench.server import Server, server_env
from bench.stats import load_average, wait_until_quiet

SERVERS = ("uvicorn", "granian")
CREDIT_CODE = "91330100716105852F"
WINDOW = "xihu"
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """How long each phase runs (seconds) and how much data it uses."""

    raw_seconds: float
    trivial_seconds: float
    command_seconds: float
    read_seconds: float
    warmup_seconds: float
    projects: int  # registered per server; a multiple of ``clients``
    clients: int = 16
    raw_threads: int = 8
    max_requests: int = 500_000  # per phase, on top of the time bound

    @classmethod
    def default(cls) -> Plan:
        return cls(3.0, 4.0, 8.0, 6.0, 1.0, projects=480)

    @classmethod
    def quick(cls) -> Plan:
        return cls(1.5, 2.0, 4.0, 3.0, 0.5, projects=240)


@dataclass
class Seeding:
    projects: int
    seconds: float
    rate: float
    batch: int


@dataclass
class ServerRun:
    kind: str
    command: list[str]
    identified_as: str | None = None
    schema: str = ""
    phases: dict[str, LoadResult] = field(default_factory=dict)
    seeding: Seeding | None = None
    events_expected: int | None = None
    events_recorded: int | None = None
    # the projects' mean version (events per project) after each phase: a command replays
    # every event of its project (until the snapshot at 50), so its cost grows with this
    mean_version: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    def rate(self, phase: str) -> float | None:
        r = self.phases.get(phase)
        return r.rate if r is not None else None

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "phases"}
        data["phases"] = {k: v.as_json() for k, v in self.phases.items()}
        return data


# Phase names (keys of ServerRun.phases).
HEALTH = "GET /health, 16 clients"
WINDOWS = "GET /windows, 16 clients"
CMD1 = "commands, 1 client"
CMD16 = "commands, 16 clients"
READ16 = "GET /projects/{id}, 16 clients"
COMPARED = (CMD1, CMD16, READ16, HEALTH, WINDOWS)


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the HTTP phases ------------------------------------------------------------------------


def _register_body(i: int) -> bytes:
    return msgspec.json.encode(
        {
            "name": f"基准测试项目 {i}",
            "project_code": f"2024-330100-44-01-{i:06d}",
            "builder": {"name": "杭州基准建设有限公司", "credit_code": CREDIT_CODE},
            "window": WINDOW,
            "tiers": ["city_key"],
            "industry": "制造业",
            "location": "杭州市西湖区",
            "two_high_one_low": False,
        }
    )


async def seed_projects(
    host: str, port: int, token: str, *, count: int, batch: int, timeout: float = 120.0
) -> tuple[list[str], Seeding]:
    """Register ``count`` projects, ``batch`` concurrent requests at a time (one connection
    each); their ids, in order."""
    conns = [Connection(host, port, token) for _ in range(batch)]
    ids: list[str] = []
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    try:
        for first in range(1, count + 1, batch):
            if time.monotonic() > deadline:
                msg = f"seeding {count} projects took over {timeout:.0f}s"
                raise RuntimeError(msg)
            numbers = range(first, min(first + batch, count + 1))
            answers = await asyncio.gather(
                *(
                    conns[k].request("POST", "/projects", _register_body(i))
                    for k, i in enumerate(numbers)
                )
            )
            for answer in answers:
                if answer.status != 201:
                    msg = f"POST /projects: {answer.status} {answer.body[:300]!r}"
                    raise RuntimeError(msg)
                ids.append(str(msgspec.json.decode(answer.body)["id"]))
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    seconds = time.perf_counter() - started
    return ids, Seeding(count, seconds, count / seconds, batch)


def commands(ids: Sequence[str], clients: int) -> RequestFactory:
    """POST /projects/{id}/deferred-materials: one MaterialDeferred event per command. Client
    ``c`` writes to projects c, c+clients, c+2·clients, …: clients never share a project, and
    every project gets about the same number of events."""
    promised_by = (date.today() + timedelta(days=365)).isoformat()
    encode = msgspec.json.encode

    def make(client: int, seq: int, number: int) -> tuple[str, str, bytes | None]:
        project = ids[(client + clients * seq) % len(ids)]
        body = encode(
            {
                "material": f"排污许可证申请材料 {number}",
                "department": "杭州市生态环境局",
                "reason": "other_department_permit",
                "promised_by": promised_by,
            }
        )
        return "POST", f"/projects/{project}/deferred-materials", body

    return make


def reads(ids: Sequence[str], clients: int) -> RequestFactory:
    def make(client: int, seq: int, number: int) -> tuple[str, str, bytes | None]:  # noqa: ARG001
        return "GET", f"/projects/{ids[(client + clients * seq) % len(ids)]}", None

    return make


def fixed(method: str, path: str) -> RequestFactory:
    def make(client: int, seq: int, number: int) -> tuple[str, str, bytes | None]:  # noqa: ARG001
        return method, path, None

    return make


class Session:
    """One running server and what has been measured on it so far."""

    def __init__(self, server: Server, run: ServerRun, plan: Plan, token: str) -> None:
        self.server, self.run, self.plan, self.token = server, run, plan, token
        self.ids: list[str] = []
        self.appended = 0  # events appended by commands (warm-up included)

    async def phase(
        self,
        name: str,
        clients: int,
        seconds: float,
        factory: RequestFactory,
        expect: frozenset[int],
    ) -> LoadResult:
        result = await run_load(
            name,
            host=self.server.host,
            port=self.server.port,
            token=self.token,
            clients=clients,
            seconds=seconds,
            factory=factory,
            expect=expect,
            server_pid=self.server.pid,
            max_requests=self.plan.max_requests,
        )
        _log(
            f"  {self.server.kind} {name}: {result.rate:,.0f}/s, p50 {result.latency.p50_ms:.2f}"
            f" ms, p99 {result.latency.p99_ms:.2f} ms, errors {result.errors}, "
            f"client CPU {result.client_cpu_share:.0%}"
            + (f", other CPU {result.other_share:.0%}" if result.noisy else "")
        )
        if result.errors:
            _log(f"  errors, e.g. {result.error_samples[:2]}")
        return result

    def _count(self, label: str, result: LoadResult) -> None:
        self.appended += result.statuses.get(201, 0)
        self.run.mean_version[label] = (len(self.ids) + self.appended) / len(self.ids)

    async def step(self, step: str) -> None:
        plan, n, run = self.plan, self.plan.clients, self.run
        ok, created = frozenset({200}), frozenset({201})
        if step == "up":
            await self.server.wait_healthy()
            run.identified_as = self.server.identified_as
            _log(
                f"{self.server.kind} is up on port {self.server.port} (Server: {run.identified_as})"
            )
        elif step == "warm-up":
            await self.phase(step, n, plan.warmup_seconds, fixed("GET", "/health"), ok)
        elif step == HEALTH:
            run.phases[step] = await self.phase(
                step, n, plan.trivial_seconds, fixed("GET", "/health"), ok
            )
        elif step == WINDOWS:
            run.phases[step] = await self.phase(
                step, n, plan.trivial_seconds, fixed("GET", "/windows"), ok
            )
        elif step == "seed":
            self.ids, run.seeding = await seed_projects(
                self.server.host, self.server.port, self.token, count=plan.projects, batch=n
            )
            run.mean_version["registered"] = 1.0
            _log(
                f"  {self.server.kind} registered {len(self.ids)} projects "
                f"in {run.seeding.seconds:.1f}s"
            )
        elif step == "warm-up commands":
            warm = await self.phase(step, n, plan.warmup_seconds, commands(self.ids, n), created)
            self._count("warm-up", warm)
        elif step in (CMD1, CMD16):
            clients = 1 if step == CMD1 else n
            run.phases[step] = await self.phase(
                step, clients, plan.command_seconds, commands(self.ids, clients), created
            )
            self._count(step, run.phases[step])
        elif step == READ16:
            run.phases[step] = await self.phase(step, n, plan.read_seconds, reads(self.ids, n), ok)
        elif step == "check":
            await self.check()

    async def check(self) -> None:
        """The store holds exactly the events the answers promised."""
        conn = Connection(self.server.host, self.server.port, None)
        try:
            answer = await conn.request("GET", "/health", auth=False)
        finally:
            await conn.close()
        self.run.events_expected = len(self.ids) + self.appended
        self.run.events_recorded = msgspec.json.decode(answer.body)["store"]["max_notification_id"]
        if self.run.events_expected != self.run.events_recorded:
            _log(
                f"  WARNING {self.server.kind}: {self.run.events_recorded} events recorded, "
                f"{self.run.events_expected} expected"
            )


#: The steps, each run on every server before the next begins (in an order shuffled anew for
#: every step), so that noise from elsewhere on the machine falls on both servers alike rather
#: than on whichever runs second.
STEPS = ("up", "warm-up", HEALTH, WINDOWS, "seed", "warm-up commands", CMD1, CMD16, READ16, "check")


async def bench_servers(sessions: list[Session], seed: int) -> dict[str, list[str]]:
    """Every step on every server; returns the order in which the servers ran each step."""
    shuffle = random.Random(seed).shuffle
    orders: dict[str, list[str]] = {}
    for step in STEPS:
        order = list(sessions)
        shuffle(order)
        orders[step] = [s.server.kind for s in order]
        for session in order:
            if session.run.error is not None:
                continue
            try:
                await session.step(step)
            except (RuntimeError, OSError, KeyError, msgspec.DecodeError, TimeoutError) as e:
                session.run.error = f"{type(e).__name__}: {e}"
                _log(f"{session.server.kind} FAILED at {step}: {session.run.error}")
    return orders


# --- the table ------------------------------------------------------------------------------


def build_rows(
    raw1: RawResult, raw8: RawResult, rawtx: RawResult | None, runs: list[ServerRun]
) -> list[Row]:
    raw1_label = "raw insert, 1 conn"
    raw8_label = f"raw insert, {raw8.threads} conns"
    rows = [
        Row("raw insert tx/s, 1 connection (autocommit)", raw1.rate, "/s"),
        Row(f"raw insert tx/s, {raw8.threads} threads × 1 connection", raw8.rate, "/s"),
        Row("raw insert latency p50, 1 connection", raw1.latency.p50_ms, "ms"),
        Row("raw insert latency p99, 1 connection", raw1.latency.p99_ms, "ms"),
        Row(f"raw insert latency p50, {raw8.threads} connections", raw8.latency.p50_ms, "ms"),
        Row(f"raw insert latency p99, {raw8.threads} connections", raw8.latency.p99_ms, "ms"),
    ]
    if rawtx is not None:
        rows.insert(
            1,
            Row(
                "raw insert tx/s, 1 connection (BEGIN/INSERT/COMMIT)",
                rawtx.rate,
                "/s",
                raw1.rate,
                raw1_label,
            ),
        )
    for run in runs:
        k = f"[{run.kind}]"
        p = run.phases
        health, windows = p.get(HEALTH), p.get(WINDOWS)
        if health is not None:
            rows.append(Row(f"{k} GET /health req/s, 16 clients (trivial GET)", health.rate, "/s"))
        if windows is not None:
            rows.append(
                Row(f"{k} GET /windows req/s, 16 clients (token, no DB)", windows.rate, "/s")
            )
        if run.seeding is not None:
            rows.append(
                Row(
                    f"{k} register POST /projects/s, batches of {run.seeding.batch}",
                    run.seeding.rate,
                    "/s",
                    raw8.rate,
                    raw8_label,
                )
            )
        for phase, raw, label in ((CMD1, raw1, raw1_label), (CMD16, raw8, raw8_label)):
            r = p.get(phase)
            if r is None:
                continue
            rows += [
                Row(f"{k} {phase}: commands/s", r.rate, "/s", raw.rate, label),
                Row(f"{k} {phase}: p50", r.latency.p50_ms, "ms", raw.latency.p50_ms, label),
                Row(f"{k} {phase}: p99", r.latency.p99_ms, "ms", raw.latency.p99_ms, label),
            ]
        read = p.get(READ16)
        if read is not None:
            if health is not None:
                rows.append(
                    Row(
                        f"{k} GET /projects/{{id}} req/s, 16 clients",
                        read.rate,
                        "/s",
                        health.rate,
                        "GET /health",
                    )
                )
            if windows is not None:
                rows.append(
                    Row(
                        f"{k} GET /projects/{{id}} req/s, 16 clients",
                        read.rate,
                        "/s",
                        windows.rate,
                        "GET /windows",
                    )
                )
            rows.append(Row(f"{k} GET /projects/{{id}}: p50", read.latency.p50_ms, "ms"))
            rows.append(Row(f"{k} GET /projects/{{id}}: p99", read.latency.p99_ms, "ms"))
    return rows


def verdict(runs: list[ServerRun]) -> tuple[str | None, str]:
    """Which server won: the geometric mean of granian/uvicorn over the throughput figures
    both measured, leaving out the figures during which something else used the CPU."""
    by_kind = {r.kind: r for r in runs if r.error is None}
    if "uvicorn" not in by_kind or "granian" not in by_kind:
        return None, "uvicorn and granian were not both measured: no comparison"
    u, g = by_kind["uvicorn"], by_kind["granian"]
    clean: list[tuple[str, float]] = []
    noisy: list[tuple[str, float]] = []
    for phase in COMPARED:
        pu, pg = u.phases.get(phase), g.phases.get(phase)
        if pu is None or pg is None or not pu.rate or not pg.rate:
            continue
        (noisy if pu.noisy or pg.noisy else clean).append((phase, pg.rate / pu.rate))
    ratios = clean or noisy
    if not ratios:
        return None, "no figure measured on both servers"
    geo = math.exp(sum(math.log(x) for _, x in ratios) / len(ratios))
    winner = "granian" if geo > 1 else "uvicorn"
    lead = geo if geo > 1 else 1 / geo
    detail = ", ".join(f"{phase} {x:.2f}" for phase, x in ratios)
    text = (
        f"winner: {winner}, {100 * (lead - 1):.1f}% faster (geometric mean of granian/uvicorn "
        f"over {len(ratios)} throughput figures: {detail})"
    )
    if clean and noisy:
        text += "; left out as noisy: " + ", ".join(f"{p} {x:.2f}" for p, x in noisy)
    if not clean:
        text += "; UNRELIABLE: something else used the CPU during every compared phase"
    if lead < 1.05:
        text += "; within 5%: a tie on this machine, as far as these figures can tell"
    return winner, text


# --- main -----------------------------------------------------------------------------------


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop  # noqa: PLC0415 - optional, a cheaper client loop when present
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _token(secret: str) -> str:
    from domain.actor import Role  # noqa: PLC0415 - the service's code, only when needed
    from domain.windows import Window  # noqa: PLC0415
    from interfaces.auth import issue_token  # noqa: PLC0415

    return issue_token(
        secret,
        sub="bench-officer",
        name="基准测试员",
        role=Role.OFFICER,
        unit=Window(WINDOW),
        hours=2,
    )


def _loadavg(load: tuple[float, float, float] | None) -> str:
    return "n/a" if load is None else " ".join(f"{x:.2f}" for x in load)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
    raise KeyboardInterrupt


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="shorter phases (about a minute)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write every result as JSON")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    p.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated ASGI servers to measure (default: uvicorn,granian)",
    )
    p.add_argument(
        "--skip-raw-tx",
        action="store_true",
        help="skip the BEGIN/INSERT/COMMIT variant of the raw baseline",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to SECONDS for the machine to be idle (default: do not wait)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address the servers listen on")
    p.add_argument("--dbname", default=env.get("POSTGRES_DBNAME", "test"))
    p.add_argument("--db-host", default=env.get("POSTGRES_HOST", "127.0.0.1"))
    p.add_argument("--db-port", type=int, default=int(env.get("POSTGRES_PORT", "5432")))
    p.add_argument("--db-user", default=env.get("POSTGRES_USER", "postgres"))
    p.add_argument("--db-password", default=env.get("POSTGRES_PASSWORD", ""))
    args = p.parse_args(argv)
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        p.error(f"unknown servers {sorted(unknown)}; choose from {SERVERS}")
    return args


@dataclass
class Measured:
    """Everything one run measured."""

    run_id: str
    quick: bool
    pg_version: str
    plan: Plan
    raw: dict[str, RawResult] = field(default_factory=dict)
    runs: list[ServerRun] = field(default_factory=list)
    seconds: float = 0.0
    load_before: tuple[float, float, float] | None = None
    load_after: tuple[float, float, float] | None = None
    order_seed: int = field(default_factory=lambda: secrets.randbelow(2**32))
    step_orders: dict[str, list[str]] = field(default_factory=dict)

    @property
    def phases(self) -> list[tuple[str, LoadResult]]:
        return [(f"{r.kind}: {name}", res) for r in self.runs for name, res in r.phases.items()]


def _raw_baseline(m: Measured, target: PgTarget, schema: str, *, with_tx: bool) -> None:
    plan = m.plan
    variants: list[tuple[str, int, bool]] = [("1", 1, False)]
    if with_tx:
        variants.append(("1tx", 1, True))
    variants.append(("8", plan.raw_threads, False))
    for key, threads, explicit in variants:
        r = raw_inserts(
            target, schema, threads=threads, seconds=plan.raw_seconds, explicit_transaction=explicit
        )
        m.raw[key] = r
        _log(
            f"{r.label}: {r.rate:,.0f} tx/s, p50 {r.latency.p50_ms:.2f} ms, "
            f"p99 {r.latency.p99_ms:.2f} ms"
        )


def measure(args: argparse.Namespace, target: PgTarget) -> Measured:
    """The whole run. Every schema it creates is dropped and every server stopped, whatever
    happens."""
    m = Measured(
        run_id=f"{datetime.now():%Y%m%d_%H%M%S}_{secrets.token_hex(3)}",
        quick=args.quick,
        pg_version=target.server_version(),
        plan=Plan.quick() if args.quick else Plan.default(),
        load_before=load_average(),
    )
    secret = secrets.token_urlsafe(32)
    token = _token(secret)
    created: list[str] = []
    log_dir = Path(tempfile.mkdtemp(prefix="ecocase-bench-"))
    started = time.perf_counter()
    _log(
        f"PostgreSQL {m.pg_version} at {target.host}:{target.port}/{target.dbname}; "
        f"run {m.run_id}{' (quick)' if args.quick else ''}"
    )

    def fresh_schema(suffix: str) -> str:
        schema = f"ecocase_bench_{m.run_id}_{suffix}"
        create_schema(target, schema)
        created.append(schema)
        return schema

    try:
        _raw_baseline(m, target, fresh_schema("raw"), with_tx=not args.skip_raw_tx)
        servers: list[Server] = []
        sessions: list[Session] = []
        try:
            for kind in args.servers:
                schema = fresh_schema(kind)
                env = server_env(target, schema, secret)
                server = Server(kind, args.host, env, log_dir / f"{kind}.log")
                run = ServerRun(kind, server.command, schema=schema)
                m.runs.append(run)
                _log(f"starting {' '.join(server.command)} (schema {schema})")
                servers.append(server)
                server.start()
                sessions.append(Session(server, run, m.plan, token))
            m.step_orders = _run_async(bench_servers(sessions, m.order_seed))
        finally:
            for server in servers:
                server.stop()
    finally:
        for schema in created:
            try:
                drop_schema(target, schema)
            except Exception as e:  # noqa: BLE001 - report it, go on dropping the others
                _log(f"could not drop schema {schema}: {e!r}")
    m.seconds = time.perf_counter() - started
    m.load_after = load_average()
    if all(r.error is None for r in m.runs):
        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        _log(f"server logs kept in {log_dir}")
    return m


@dataclass(frozen=True)
class Summary:
    rows: list[Row]
    winner: str | None
    verdict: str
    noisy: list[str]  # phases during which something else used the CPU


def report(m: Measured, *, markdown: bool) -> Summary:
    """Prints the tables."""
    rows = build_rows(m.raw["1"], m.raw["8"], m.raw.get("1tx"), m.runs)
    winner, verdict_text = verdict(m.runs)
    print()
    print(
        f"ecocase bench, {datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores, "
        f"PostgreSQL {m.pg_version}, Python {platform.python_version()}, "
        f"{'quick' if m.quick else 'default'} run in {m.seconds:.0f}s"
    )
    print()
    print(render_table(rows))
    print()
    print(f"CPU per phase (share of one core; the machine has {os.cpu_count()}):")
    print(render_cpu(list(m.raw.values()), m.phases))
    print()
    loads = f"load average {_loadavg(m.load_before)} before, {_loadavg(m.load_after)} after"
    busy = noisy(list(m.raw.values()), m.phases)
    if busy:
        print(f"WARNING: something else used the CPU during {'; '.join(busy)} ({loads}):")
        print("         the figures of those phases are low; rerun on a quiet machine.")
    else:
        print(f"machine quiet during every phase (other CPU <= 15% of a core; {loads})")
    for run in m.runs:
        if run.error:
            print(f"{run.kind}: FAILED: {run.error}")
        else:
            means = ", ".join(f"{k} {v:.1f}" for k, v in run.mean_version.items())
            print(
                f"{run.kind}: answered as Server: {run.identified_as}; events recorded "
                f"{run.events_recorded}, expected {run.events_expected}; events per project "
                f"after {means}"
            )
    print(verdict_text)
    if markdown:
        print()
        print(render_markdown(rows))
    return Summary(rows, winner, verdict_text, busy)


def write_json(path: Path, m: Measured, summary: Summary) -> None:
    document = {
        "run_id": m.run_id,
        "date": datetime.now().isoformat(timespec="seconds"),
        "quick": m.quick,
        "seconds": m.seconds,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": m.pg_version,
            "platform": platform.platform(),
            "load_average_before": m.load_before,
            "load_average_after": m.load_after,
        },
        "plan": asdict(m.plan),
        "order_seed": m.order_seed,
        "step_orders": m.step_orders,
        "raw": {k: v.as_json() for k, v in m.raw.items()},
        "servers": [r.as_json() for r in m.runs],
        "rows": [r.as_json() for r in summary.rows],
        "noisy_phases": summary.noisy,
        "winner": summary.winner,
        "verdict": summary.verdict,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults written to {path}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    target = PgTarget(args.dbname, args.db_host, args.db_port, args.db_user, args.db_password)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if args.wait_quiet > 0:
        busy = wait_until_quiet(args.wait_quiet)
        _log(f"machine busy {busy:.0%} of a core before the run")
    m = measure(args, target)
    summary = report(m, markdown=args.markdown)
    if args.json:
        write_json(args.json, m, summary)
    failed = any(r.error for r in m.runs) or any(
        r.events_expected != r.events_recorded for r in m.runs
    )
    return 1 if failed else 0
