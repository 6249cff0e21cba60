"""What a suite run measured (:class:`Results`), and the rows of its table with the targets of
issue 5 (:func:`build_rows`): a pure function, so that a measurement that is missing (a phase
that failed, a server that never started) gives rows that say so and FAIL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.baseline import RawResult
from bench.http_load import LoadResult
from bench.latency import LatencyResult
from bench.phases import Split
from bench.read_models import (
    LoadFigures,
    RebuildFigures,
    differences_row,
    load_rows,
    rebuild_rows,
)
from bench.stats import Memory
from bench.table import Row, at_most, ratio_at_least, ratio_at_most, reference

# Phase names (keys of Point.phases).
LIVE = "GET /health/live, 16 clients"
WINDOWS = "GET /windows, 16 clients"
CMD1 = "commands, 1 client"
CMD16 = "commands, 16 clients"
READ16 = "GET /projects/{id}, 16 clients"
READ_HOT = "GET /projects/{id} of cached projects, 16 clients"
FLOOR_KIND = "framework floor"  # the Point of bench.floor_app's command phases
FLOOR_DB_KIND = "framework floor + PostgreSQL"  # the Point of the floor with its database work
FLOOR_STEP, FLOOR_DB_STEP = FLOOR_KIND, FLOOR_DB_KIND  # their steps (keys of Results.errors)

GROWTH_BOUND = 1.25  # issue 5: the cost of a command does not grow with the store
MEMORY_MB = 150.0  # issue 5: each API or worker process
P50_MS, P99_MS = 50.0, 250.0  # issue 5: commit → notification recorded
STEADY = 0.98  # the open loop's achieved rate counts as steady at 98% of the schedule


@dataclass
class Point:
    """The HTTP phases on one server with the store at one size."""

    size: int  # the store's nominal size (events seeded before the phases)
    kind: str  # granian or uvicorn
    head_start: int | None = None
    head_end: int | None = None
    phases: dict[str, LoadResult] = field(default_factory=dict)
    read_projects: int = 0  # the distinct projects GET /projects/{id} read (cold)
    hot_projects: int = 0  # the distinct projects of the cached reads (the commands' ones)
    error: str | None = None

    def rate(self, phase: str) -> float | None:
        r = self.phases.get(phase)
        return r.rate if r is not None and r.requests else None

    def us_per_request(self, phase: str) -> float | None:
        r = self.phases.get(phase)
        return r.server_cpu_s / r.requests * 1e6 if r is not None and r.requests else None


@dataclass
class Results:
    quick: bool
    sizes: tuple[int, ...]
    kinds: tuple[str, ...]
    raw: dict[str, RawResult] = field(default_factory=dict)  # the faster of raw_rates'
    raw_rates: dict[str, list[float]] = field(default_factory=dict)  # at the start, at the end
    seeding: list[dict[str, Any]] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    latency: dict[str, LatencyResult] = field(default_factory=dict)  # "single", "scale-out"
    scale_out: Split | None = None  # commands, 16 clients over 2 APIs
    # bench.floor_app's command phases (CMD1, CMD16), beside the smallest store's real ones
    floor: Point | None = None
    floor_body_bytes: int | None = None  # the size of its answers
    # the floor with the least database work (bench/floor_db.py): LIVE, CMD1, CMD16, READ16
    floor_db: Point | None = None
    floor_view_bytes: int | None = None  # the size of its views (GET /projects/{id} answers)
    floor_db_inserted: int | None = None  # the rows in its inserts' table after its phases
    floor_db_created: int | None = None  # its commands answered 201 (warm-up included)
    floors_only: bool = False  # ``--only floors``: the baselines and the floors, nothing else
    memory: dict[str, list[Memory]] = field(default_factory=dict)  # role → readings
    rebuild: RebuildFigures | None = None
    loads: LoadFigures | None = None
    errors: dict[str, str] = field(default_factory=dict)  # step → what went wrong

    @property
    def largest(self) -> int:
        return max(self.sizes)

    def add_raw(self, key: str, r: RawResult) -> RawResult:
        """One more run of the raw baseline ``key`` ("1", "8"); the baseline is the fastest
        run (returned)."""
        self.raw_rates.setdefault(key, []).append(r.rate)
        if key not in self.raw or r.rate > self.raw[key].rate:
            self.raw[key] = r
        return self.raw[key]

    def point(self, size: int, kind: str) -> Point | None:
        return next((p for p in self.points if p.size == size and p.kind == kind), None)


def size_label(size: int) -> str:
    return f"{size // 1_000_000}M" if size >= 1_000_000 else f"{size // 1_000}k"


def _raw(results: Results, key: str) -> RawResult | None:
    return results.raw.get(key)


def _rate(r: RawResult | None) -> float | None:
    return r.rate if r is not None else None


def baseline_rows(results: Results) -> list[Row]:
    raw1, raw8 = _raw(results, "1"), _raw(results, "8")
    sec = "baselines"
    threads = raw8.threads if raw8 else 8
    rows = [
        Row("raw insert tx/s, 1 connection (autocommit, psycopg 3)", _rate(raw1), "/s",
            section=sec),
        Row(f"raw insert tx/s, {threads} threads × 1 connection", _rate(raw8), "/s", section=sec),
        Row("raw insert latency p50, 1 connection", raw1.latency.p50_ms if raw1 else None,
            "ms", section=sec),
        Row("raw insert latency p99, 1 connection", raw1.latency.p99_ms if raw1 else None,
            "ms", section=sec),
    ]  # fmt: skip
    for s in results.seeding:
        if not s["events"] and not s.get("error"):
            continue  # the phases before had already brought the store to this size
        rows.append(Row(f"seeding to {s['size']:,} events: {s['events']:,} events, batched "
                        f"saves, {s['processes']} processes", s["rate"], "ev/s", section=sec,
                        note=s.get("error", "")))  # fmt: skip
    return rows


def point_rows(results: Results, size: int, kind: str) -> list[Row]:
    p = results.point(size, kind) or Point(size, kind, error="not run")
    raw1, raw8 = _raw(results, "1"), _raw(results, "8")
    prefix = f"[{kind}] " if len(results.kinds) > 1 else ""
    during = ""
    if p.head_start is not None and p.head_end is not None:
        during = f" ({p.head_start:,} → {p.head_end:,} during the phases)"
    sec = (f"{kind}, " if prefix else "") + f"store of {size_label(size)} events{during}"
    note = p.error or ""
    live, windows = p.rate(LIVE), p.rate(WINDOWS)
    rows = [
        Row(f"{prefix}commands/s, 1 client", p.rate(CMD1), "/s", _rate(raw1),
            "raw insert, 1 conn", ratio_at_least(0.60, "issue 5"), note, sec),
        Row(f"{prefix}commands/s, 16 clients", p.rate(CMD16), "/s", _rate(raw8),
            f"raw insert, {raw8.threads if raw8 else 8} threads", ratio_at_least(0.40, "issue 5"),
            note, sec),
        Row(f"{prefix}server CPU per command, 1 client", p.us_per_request(CMD1), "µs",
            note=note, section=sec),
        Row(f"{prefix}server CPU per command, 16 clients", p.us_per_request(CMD16), "µs",
            note=note, section=sec),
        Row(f"{prefix}GET /health/live req/s, 16 clients (trivial GET)", live, "/s", note=note,
            section=sec),
        Row(f"{prefix}GET /projects/{{id}} req/s, 16 clients, the {p.hot_projects:,} projects "
            "just written (in the API's cache)",
            p.rate(READ_HOT), "/s", live, "GET /health/live, same server",
            ratio_at_least(0.50, "issue 5"), note, sec),
        Row(f"{prefix}GET /projects/{{id}} req/s, 16 clients, {p.read_projects:,} projects "
            "not read before (each a query)",
            p.rate(READ16), "/s", live, "GET /health/live, same server",
            ratio_at_least(0.50, "issue 5"), note, sec),
        Row(f"{prefix}GET /projects/{{id}} req/s, 16 clients, {p.read_projects:,} projects",
            p.rate(READ16), "/s", windows, "GET /windows (token, no DB), same server", note=note,
            section=sec),
    ]  # fmt: skip
    smallest = min(results.sizes)
    if size != smallest:
        rows += growth_rows(results, p, smallest, prefix, sec)
    return rows


def growth_rows(results: Results, p: Point, smallest: int, prefix: str, sec: str) -> list[Row]:
    """The cost of a command at this size against the smallest store, same server."""
    base = results.point(smallest, p.kind) or Point(smallest, p.kind, error="not run")
    at = f"at {size_label(smallest)} events"
    bound = f"≤ {GROWTH_BOUND}× the cost {at}"
    note = p.error or base.error or ""
    rows = []
    for phase, clients in ((CMD16, "16 clients"), (CMD1, "1 client")):
        rows += [
            Row(f"{prefix}command cost: commands/s, {clients}", p.rate(phase), "/s",
                base.rate(phase), at, ratio_at_least(1 / GROWTH_BOUND, bound), note, sec),
            Row(f"{prefix}command cost: server CPU µs/command, {clients}",
                p.us_per_request(phase), "µs", base.us_per_request(phase), at,
                ratio_at_most(GROWTH_BOUND, bound), note, sec),
        ]  # fmt: skip
    return rows


def floor_rows(results: Results) -> list[Row]:
    """The framework floor (``bench/floor_app.py``): the same command load against the
    service's HTTP stack with no store behind it, and the real commands against it. Measured,
    never a target: it says how much of issue 5's ratios the framework alone leaves."""
    smallest = min(results.sizes)
    floor = results.floor or Point(smallest, FLOOR_KIND)
    real = results.point(smallest, results.kinds[0]) or Point(smallest, results.kinds[0],
                                                              error="not run")  # fmt: skip
    raw1, raw8 = _raw(results, "1"), _raw(results, "8")
    threads = raw8.threads if raw8 else 8
    size = (f", answers of {results.floor_body_bytes / 1024:.1f} KiB"
            if results.floor_body_bytes else "")  # fmt: skip
    sec = (f"framework floor: granian + Litestar + auth + request id, JSON body in, fixed "
           f"answer out{size}, no store (beside the {size_label(smallest)} store's "
           "phases)")  # fmt: skip
    note = floor.error or results.errors.get(FLOOR_STEP, "") or (
        "" if results.floor else "not run")  # fmt: skip
    real_note = real.error or note
    what = "framework floor: POST /projects/{id}/deferred-materials, no store"
    at = f"{results.kinds[0]}, store of {size_label(smallest)}"
    return [
        Row(f"{what}, 1 client", floor.rate(CMD1), "/s", _rate(raw1),
            "raw insert, 1 conn (commands need ≥ 0.60)", note=note, section=sec),
        Row(f"{what}, 16 clients", floor.rate(CMD16), "/s", _rate(raw8),
            f"raw insert, {threads} threads (commands need ≥ 0.40)", note=note, section=sec),
        Row("framework floor: server CPU per request, 1 client", floor.us_per_request(CMD1),
            "µs", note=note, section=sec),
        Row("framework floor: server CPU per request, 16 clients",
            floor.us_per_request(CMD16), "µs", note=note, section=sec),
        Row(f"commands/s, 1 client ({at}) against the floor", real.rate(CMD1), "/s",
            floor.rate(CMD1), "framework floor, 1 client", note=real_note, section=sec),
        Row(f"commands/s, 16 clients ({at}) against the floor", real.rate(CMD16), "/s",
            floor.rate(CMD16), "framework floor, 16 clients", note=real_note, section=sec),
        Row(f"server CPU per command, 1 client ({at}) against the floor",
            real.us_per_request(CMD1), "µs", floor.us_per_request(CMD1),
            "framework floor, 1 client", note=real_note, section=sec),
        Row(f"server CPU per command, 16 clients ({at}) against the floor",
            real.us_per_request(CMD16), "µs", floor.us_per_request(CMD16),
            "framework floor, 16 clients", note=real_note, section=sec),
    ]  # fmt: skip


def floor_db_rows(results: Results) -> list[Row]:
    """The framework floor with the least database work each request must do
    (``bench/floor_db.py``): a command is one durable insert, a read of an uncached project one
    select by primary key. Measured floors, not the service: issue 5's targets stand beside
    them as references (the verdict says whether the floor leaves room for the target), and
    the real server's figures are set against them: its commands at the smallest store (as
    the framework floor's), its reads at the first store whose reads missed its cache as the
    floor's do (see :func:`cold_point`)."""
    smallest = min(results.sizes)
    kind = results.kinds[0]
    floor = results.floor_db or Point(smallest, FLOOR_DB_KIND)
    real = results.point(smallest, kind) or Point(smallest, kind, error="not run")
    reader = cold_point(results, floor.read_projects)
    raw1, raw8 = _raw(results, "1"), _raw(results, "8")
    threads = raw8.threads if raw8 else 8
    view = (f"views of {results.floor_view_bytes / 1024:.1f} KiB, "
            if results.floor_view_bytes else "")  # fmt: skip
    sec = (f"measured floors, not the service: the framework floor + the least PostgreSQL "
           f"work (a command = one durable insert; a read = one select by primary key, "
           f"{view}{floor.read_projects:,} rows; a pool as the service's; beside the "
           f"{size_label(smallest)} store's phases)")  # fmt: skip
    note = floor.error or results.errors.get(FLOOR_DB_STEP, "") or (
        "" if results.floor_db else "not run")  # fmt: skip
    real_note, reader_note = real.error or note, reader.error or note
    issue = "issue 5, for the service"
    cmd = "floor + one durable insert: POST /projects/{id}/deferred-materials"
    get = f"floor + one PK select: GET /projects/{{id}}, 16 clients, {floor.read_projects:,} rows"
    at = f"{kind}, store of {size_label(smallest)}"
    read_at = f"{kind}, store of {size_label(reader.size)}"
    cold = f"{reader.read_projects:,} projects" if reader.read_projects else "projects"
    if 0 < reader.read_projects < floor.read_projects:  # a small store only: few projects
        cold += " (most answered from the API's cache)"
    live = f"GET /health/live of the real server ({read_at})"
    rows = [
        Row(f"{cmd}, 1 client", floor.rate(CMD1), "/s", _rate(raw1), "raw insert, 1 conn",
            reference(ratio_at_least(0.60, issue)), note, sec),
        Row(f"{cmd}, 16 clients", floor.rate(CMD16), "/s", _rate(raw8),
            f"raw insert, {threads} threads", reference(ratio_at_least(0.40, issue)), note, sec),
        Row("floor GET /health/live req/s, 16 clients (trivial GET)", floor.rate(LIVE), "/s",
            reader.rate(LIVE), live, note=note, section=sec),
        Row(get, floor.rate(READ16), "/s", floor.rate(LIVE), "floor GET /health/live, same server",
            reference(ratio_at_least(0.50, issue)), note, sec),
        Row(get, floor.rate(READ16), "/s", reader.rate(LIVE), live, note=note, section=sec),
        Row("floor + one durable insert: rows committed (counted afterwards)",
            results.floor_db_inserted, "", results.floor_db_created,
            "its commands answered 201, warm-up included", note=note, section=sec),
    ]  # fmt: skip
    for phase, what in ((CMD1, f"{cmd}, 1 client"), (CMD16, f"{cmd}, 16 clients"),
                        (READ16, "floor + one PK select: GET /projects/{id}")):  # fmt: skip
        rows += [
            Row(f"{what}: server CPU per request", floor.us_per_request(phase), "µs", note=note,
                section=sec),
            Row(f"{what}: PostgreSQL CPU per request", _pg_us_per_request(floor, phase), "µs",
                note=note, section=sec),
        ]  # fmt: skip
    rows += [
        Row(f"commands/s, 16 clients ({at}) against the floor + one insert", real.rate(CMD16),
            "/s", floor.rate(CMD16), "floor + one insert, 16 clients", note=real_note,
            section=sec),
        Row(f"server CPU per command, 16 clients ({at}) against the floor + one insert",
            real.us_per_request(CMD16), "µs", floor.us_per_request(CMD16),
            "floor + one insert, 16 clients", note=real_note, section=sec),
        Row(f"GET /projects/{{id}} req/s, {cold} not read before ({read_at}) against the floor "
            "+ one PK select", reader.rate(READ16), "/s", floor.rate(READ16),
            "floor + one PK select", note=reader_note, section=sec),
        Row(f"server CPU per GET /projects/{{id}} not read before ({read_at}) against the "
            "floor + one PK select", reader.us_per_request(READ16), "µs",
            floor.us_per_request(READ16), "floor + one PK select", note=reader_note,
            section=sec),
    ]  # fmt: skip
    return rows


def cold_point(results: Results, projects: int) -> Point:
    """The real server's point (first server) whose cold reads are most like the floor's: the
    smallest store whose GET /projects/{id} went to at least ``projects`` projects (at the
    smallest store they go to the few the commands left, which the API's cache soon holds
    all of), else the one that read the most projects; a point saying "not run" if none."""
    kind = results.kinds[0]
    points = sorted((p for p in results.points if p.kind == kind), key=lambda p: p.size)
    if not points:
        return Point(max(results.sizes), kind, error="not run")
    wide = [p for p in points if projects and p.read_projects >= projects]
    return wide[0] if wide else max(points, key=lambda p: (p.read_projects, p.size))


def _pg_us_per_request(p: Point, phase: str) -> float | None:
    """PostgreSQL's CPU (the backends of the server's connections, and the shared processes:
    WAL writer, …) over the phase ÷ its requests."""
    r = p.phases.get(phase)
    if r is None or not r.requests or r.postgres_cpu_s is None:
        return None
    return r.postgres_cpu_s / r.requests * 1e6


def latency_rows(results: Results, key: str, sec: str, *, targets: bool) -> list[Row]:
    lat = results.latency.get(key)
    single = results.latency.get("single")
    raw1 = _raw(results, "1")
    note = results.errors.get("latency single" if key == "single" else "scale-out", "")
    if lat is None:
        note = note or "not run"
    what = "commit → notification"
    if targets:
        base_p50 = raw1.latency.p50_ms if raw1 else None
        base_p99 = raw1.latency.p99_ms if raw1 else None
        base_label = "raw insert, 1 conn"
        t50, t99 = at_most(P50_MS, "issue 5"), at_most(P99_MS, "issue 5")
    else:
        base_p50 = single.from_sent.p50_ms if single else None
        base_p99 = single.from_sent.p99_ms if single else None
        base_label, t50, t99 = "1 API + 1 worker", None, None
    recorded = lat.recorded if lat else None
    return [
        Row(f"{what} p50, from the request sent (upper bound)", lat.from_sent.p50_ms
            if lat and recorded else None, "ms", base_p50, base_label, t50, note, sec),
        Row(f"{what} p99, from the request sent (upper bound)", lat.from_sent.p99_ms
            if lat and recorded else None, "ms", base_p99, base_label, t99, note, sec),
        Row(f"{what} p50, from the 201 answer (lower bound)", lat.from_answer.p50_ms
            if lat and recorded else None, "ms", note=note, section=sec),
        Row(f"{what} p99, from the 201 answer (lower bound)", lat.from_answer.p99_ms
            if lat and recorded else None, "ms", note=note, section=sec),
        Row("command (HTTP) p50 during the phase", lat.command.p50_ms if lat and
            lat.completed else None, "ms", note=note, section=sec),
        Row("commands/s achieved (open loop)", lat.achieved_rate if lat else None, "/s",
            lat.rate if lat else None, "scheduled",
            ratio_at_least(STEADY, "steady") if targets else None, note, sec),
        Row("notifications recorded of the measured commands", recorded, "",
            lat.completed if lat else None, "commands answered 201",
            ratio_at_least(1.0, "all") if targets else None, note, sec),
        Row("events of the phase never applied by a worker", lat.unapplied if lat else None,
            "events", target=at_most(0, "issue 3: none lost") if targets else None, note=note,
            section=sec),
    ]  # fmt: skip


MEMORY_ROLES = (
    ("api", "API process serving requests (granian's worker)"),
    ("api-main", "`ecocase serve` main process"),
    ("worker", "`ecocase worker` process"),
    ("relay", "`ecocase relay` process"),
)


def memory_rows(results: Results) -> list[Row]:
    sec = f"memory, store of {size_label(results.largest)} events"
    rows = []
    for role, label in MEMORY_ROLES:
        found = results.memory.get(role, [])
        note = "" if found else results.errors.get("latency single", "not read")
        count = f" (max of {len(found)} readings)" if len(found) > 1 else ""
        rss = max((m.rss_mb for m in found), default=None)
        hwm = max((m.hwm_mb for m in found), default=None)
        limit = at_most(MEMORY_MB, "issue 5")
        rows += [
            Row(f"{label}: VmRSS{count}", rss, "MB", target=limit, note=note, section=sec),
            Row(f"{label}: VmHWM (peak){count}", hwm, "MB", target=limit, note=note,
                section=sec),
        ]  # fmt: skip
    return rows


def scale_out_rows(results: Results) -> list[Row]:
    sec = (f"scale-out, store of {size_label(results.largest)} events: 2 APIs + 1 relay + "
           "2 workers, one PostgreSQL, one Redis")  # fmt: skip
    single = results.point(results.largest, results.kinds[0])
    split = results.scale_out
    note = results.errors.get("scale-out", "") or ("" if split else "not run")
    rows = [
        Row("commands/s, 16 clients over 2 APIs (8 each)", split.rate if split else None, "/s",
            single.rate(CMD16) if single else None, "1 API, same store", note=note,
            section=sec),
        Row("server CPU per command, 2 APIs", split.server_us_per_request if split else None,
            "µs", single.us_per_request(CMD16) if single else None, "1 API, same store",
            note=note, section=sec),
    ]  # fmt: skip
    return rows + latency_rows(results, "scale-out", sec, targets=False)


def build_rows(results: Results) -> list[Row]:
    rows = baseline_rows(results)
    if results.floors_only:
        return rows + floor_rows(results) + floor_db_rows(results)
    for size in results.sizes:
        for kind in results.kinds:
            rows += point_rows(results, size, kind)
        if size == min(results.sizes):
            rows += floor_rows(results) + floor_db_rows(results)
    big = size_label(results.largest)
    rows += latency_rows(
        results, "single",
        f"store of {big} events: 1 API + 1 relay + 1 worker, commands at 200/s", targets=True,
    )  # fmt: skip
    rows += memory_rows(results)
    rows += scale_out_rows(results)
    sec = f"read models, store of {big} events"
    rebuilt, loads = results.rebuild, results.loads
    note = results.errors.get("rebuild", "") or ("" if rebuilt else "not run")
    load_note = results.errors.get("loads", "") or ("" if loads else "not run")
    events = rebuilt.events if rebuilt else results.largest
    rows += [
        Row(r.figure, r.value, r.unit, r.baseline, r.baseline_label, r.target, r.note, sec)
        for r in (*rebuild_rows(rebuilt, events, note), differences_row(rebuilt, note),
                  *load_rows(loads, load_note))
    ]  # fmt: skip
    return rows


def phase_list(results: Results) -> Sequence[tuple[str, LoadResult]]:
    """Every HTTP phase, labelled, for the CPU table."""
    out: list[tuple[str, LoadResult]] = []
    floor = [(f"{p.kind}: {name}", r) for p in (results.floor, results.floor_db)
             if p is not None for name, r in p.phases.items()]  # fmt: skip
    smallest = min(results.sizes)
    for p in results.points:
        if floor and p.size > smallest:  # after the smallest store's phases
            out, floor = out + floor, []
        for name, r in p.phases.items():
            out.append((f"{p.kind} {size_label(p.size)}: {name}", r))
    out += floor
    if results.scale_out is not None:
        n = len(results.scale_out.parts)
        out.append((f"scale-out: commands over {n} APIs",
                    results.scale_out.combined(f"commands, 16 clients over {n} APIs")))  # fmt: skip
    return out
