"""``python -m bench.read_models``: how fast the read models rebuild, and how fast a long
project loads with and without snapshots (issue 4 point 6; targets of issue 5).

On PostgreSQL, in a fresh schema per size that this run creates and drops (also on failure or
Ctrl-C):

1. **Seed** N events fast: projects of :data:`EVENTS_PER_PROJECT` events each (registration,
   reminder letters through the whole rectification loop, deferred materials supplied, audit
   notes), built as aggregates (:mod:`bench.seed`) and saved 10 at a time, so that one save
   records about 1,000 events, in two processes. Seeding goes through a CaseStore with
   snapshotting off (snapshots are not in the notification log, so they do not change what a
   rebuild reads).
2. **Live views**, as a running service has them: the project list and the supervision view
   caught up (``process_available``), the audit trail filled as the worker would.
3. **Baseline**: reading the whole notification log in batches and decoding every event, with
   nothing applied: the ceiling of any replay.
4. **Rebuild**: ``application.rebuild.rebuild`` — the replay of the whole store into fresh
   tables of all three read models (a second fresh schema, dropped by the rebuild), then the
   comparison with the live views. The replay's events/s is the figure of issue 5. Steps 3
   and 4 run :data:`REBUILD_RUNS` times, interleaved, and the table gives the median of each
   (the machine's speed drifts by a fifth and more from one minute to the next).
5. **Load**: one project of exactly 1,000 events saved 50 at a time through the ordinary
   CaseStore (so snapshots at 50, 100, ..., 1,000); the median of 20 loads after one warm-up:
   at its head (the snapshot at 1,000 alone), at version 999 (the snapshot at 950 and 49
   events: the worst case of a 1,000-event history), and through a CaseStore with snapshotting
   disabled (all 1,000 events replayed); the stores keep no projects in memory
   (``ECOCASE_PROJECT_CACHE=0``), so that every load reads the store.

``--events N`` (default 100,000) sets the size; ``--full`` also runs 1,000,000.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from application.audit import AuditTrail
from application.project_index import ProjectIndex
from application.rebuild import BATCH, RebuildReport, rebuild
from application.settings import load_settings
from application.sqldb import open_database
from application.store import SNAPSHOT_INTERVAL, CaseStore
from application.supervision import Supervision
from bench.baseline import PgTarget, create_schema, drop_schema
from bench.seed import ACTOR, Shape, fill, new_project, seed_parallel
from bench.table import Row, at_least, at_most, render_text
from domain.actor import Stamp
from domain.builder import Builder, Contact

EVENTS_PER_PROJECT = 100
LONG_PROJECT_EVENTS = 1_000
LOADS = 20
REBUILD_RUNS = 3  # read + decode, then rebuild: the median of each
FULL_EVENTS = 1_000_000
TARGET_REBUILD = 50_000.0  # events/s (issue 5)
TARGET_LOAD_MS = 20.0  # a 1,000-event project (issue 5)

BUILDER = Builder(
    name="杭州某新材料有限公司",
    credit_code="91330100716105852F",
    contact=Contact(name="李四", phone="0571-85085326", email="lisi@example.cn"),
)
SHAPE = Shape(BUILDER, EVENTS_PER_PROJECT)


def _log(text: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def store_env(target: PgTarget, schema: str, **extra: str) -> dict[str, str]:
    """The case store's persistence environment exactly as the service builds it from its
    settings (its recorder, pool sizes, …), on the run's schema."""
    settings = load_settings({
        "ECOCASE_STORE": "postgres", "ECOCASE_SECRET": "bench-only-not-a-secret",
        "POSTGRES_DBNAME": target.dbname, "POSTGRES_HOST": target.host,
        "POSTGRES_PORT": str(target.port), "POSTGRES_USER": target.user,
        "POSTGRES_PASSWORD": target.password, "POSTGRES_SCHEMA": schema,
    })  # fmt: skip
    return {**settings.store_env(), **extra}


# --- seeding ---------------------------------------------------------------------------------
def seed(env: dict[str, str], events: int) -> tuple[int, float]:
    """About ``events`` events in projects of EVENTS_PER_PROJECT (spread over the windows,
    mixed tiers), by batched saves in two processes; returns (events, seconds)."""
    projects = max(1, events // EVENTS_PER_PROJECT)
    done = seed_parallel(env, SHAPE, first_serial=1, projects=projects, processes=2)
    return done.events, done.seconds


def seed_long_project(env: dict[str, str]) -> UUID:
    """A project of exactly LONG_PROJECT_EVENTS events, saved SNAPSHOT_INTERVAL at a time
    through the ordinary store, so that it has a snapshot every SNAPSHOT_INTERVAL events."""
    store = CaseStore(env=env)
    try:
        project = new_project(999_999, SHAPE)
        while project.version < LONG_PROJECT_EVENTS:
            fill(project, min(project.version + SNAPSHOT_INTERVAL, LONG_PROJECT_EVENTS), 999_999)
            store.save(project, stamp=Stamp(ACTOR, "bench-long"))
        assert store.snapshots is not None
        versions = [s.originator_version for s in store.snapshots.get(project.id)]
        assert versions[-1] == LONG_PROJECT_EVENTS, versions
        return project.id
    finally:
        store.close()


# --- live views, baseline, rebuild -----------------------------------------------------------
def build_live_views(env: dict[str, str]) -> float:
    """The live project list and supervision view caught up, the audit trail filled."""
    started = time.perf_counter()
    store = CaseStore(env=env)
    index, view, db = ProjectIndex(store, env), Supervision(store, env), open_database(env)
    try:
        index.process_available(limit=BATCH)
        view.process_available(limit=BATCH)
        trail, facts, position = AuditTrail(db), dict[UUID, tuple[str, str]](), 0
        while found := store.recorder.select_notifications(
            start=position, limit=BATCH, inclusive_of_start=False
        ):
            with db.transaction() as cursor:
                trail.record_events(
                    cursor, [(n.id, store.mapper.to_domain_event(n)) for n in found], facts=facts
                )
            position = found[-1].id
    finally:
        index.close()
        view.close()
        db.close()
        store.close()
    return time.perf_counter() - started


def read_and_decode(env: dict[str, str]) -> tuple[int, float]:
    """Reads every notification in batches and decodes it, applying nothing."""
    store = CaseStore(env=env)
    try:
        started, position, count = time.perf_counter(), 0, 0
        while found := store.recorder.select_notifications(
            start=position, limit=BATCH, inclusive_of_start=False
        ):
            for n in found:
                store.mapper.to_domain_event(n)
            count += len(found)
            position = found[-1].id
        return count, time.perf_counter() - started
    finally:
        store.close()


def run_rebuild(env: dict[str, str]) -> RebuildReport:
    store = CaseStore(env=env)
    last = [0.0]

    def progress(done: int, total: int, rate: float) -> None:
        if time.monotonic() - last[0] > 5 or done == total:
            last[0] = time.monotonic()
            _log(f"  rebuild {done:,}/{total:,} events, {rate:,.0f} ev/s")

    try:
        return rebuild(env, store, progress=progress)
    finally:
        store.close()


# --- loading ---------------------------------------------------------------------------------
def median_ms(load: Callable[[], object]) -> float:
    load()  # warm-up: connections, decoder structs, statement preparation
    times = []
    for _ in range(LOADS):
        t0 = time.perf_counter()
        load()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def load_times(env: dict[str, str], project_id: UUID) -> tuple[float, float, float]:
    """Median ms: at the head with snapshots, at version 999 with snapshots, without. The
    stores keep no projects in memory (``ECOCASE_PROJECT_CACHE=0``), so that every load
    reads the store."""
    cold = {**env, "ECOCASE_PROJECT_CACHE": "0"}
    with_snapshots = CaseStore(env=cold)
    without = CaseStore(env={**cold, "IS_SNAPSHOTTING_ENABLED": "n"})
    try:
        assert with_snapshots.snapshots is not None
        assert without.snapshots is None
        assert with_snapshots.get_project(project_id).version == LONG_PROJECT_EVENTS
        assert without.get_project(project_id) == with_snapshots.get_project(project_id)
        head = median_ms(lambda: with_snapshots.get_project(project_id))
        worst = median_ms(lambda: with_snapshots.get_project(project_id, LONG_PROJECT_EVENTS - 1))
        replay = median_ms(lambda: without.get_project(project_id))
        return head, worst, replay
    finally:
        with_snapshots.close()
        without.close()


# --- the figures -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RebuildFigures:
    events: int  # in the store
    read_decode_rates: tuple[float, ...]  # events/s of each read + decode, nothing applied
    reports: tuple[RebuildReport, ...]  # each rebuild, in the order run

    @property
    def read_decode_rate(self) -> float:
        return statistics.median(self.read_decode_rates)

    @property
    def rates(self) -> tuple[float, ...]:
        return tuple(r.events_per_second for r in self.reports)

    @property
    def report(self) -> RebuildReport:
        """The rebuild of the median rate."""
        return sorted(self.reports, key=lambda r: r.events_per_second)[len(self.reports) // 2]

    @property
    def differences(self) -> int:
        """The rows differing from the live ones in the rebuild that had the most."""
        return max(sum(m.difference_count for m in r.models) for r in self.reports)


def rebuild_figures(env: dict[str, str], runs: int = REBUILD_RUNS) -> RebuildFigures:
    """The baseline (read + decode) and the rebuild of every read model, ``runs`` times each,
    interleaved, on a seeded store whose live views are caught up: the machine's speed drifts
    by a fifth and more within a minute, so one run of each can land on a slow spell."""
    events, decode_rates, reports = 0, list[float](), list[RebuildReport]()
    for n in range(1, runs + 1):
        events, read_s = read_and_decode(env)
        decode_rates.append(events / read_s)
        _log(f"  read + decode {decode_rates[-1]:,.0f} ev/s; rebuilding ({n} of {runs})")
        reports.append(run_rebuild(env))
    return RebuildFigures(events, tuple(decode_rates), tuple(reports))


def rebuild_rows(f: RebuildFigures | None, events: int, note: str = "") -> list[Row]:
    """The rebuild figure of issue 5 (``None``: not measured), then its parts."""
    target = at_least(TARGET_REBUILD, "issue 5")
    if f is None:
        label = f"rebuild all read models, {events:,} events (replay)"
        return [Row(label, None, "ev/s", None, "read + decode, nothing applied", target, note)]
    r = f.report
    median = "" if len(f.reports) == 1 else f", median of {len(f.reports)}"
    label = f"rebuild all read models, {events:,} events (replay{median})"
    rows = [Row(label, r.events_per_second, "ev/s", f.read_decode_rate,
                f"read + decode, nothing applied{median}", target)]  # fmt: skip
    rows += [Row(f"  {m.name}: applying (the 3 side by side)", m.events_per_second, "ev/s")
             for m in r.models]  # fmt: skip
    rows.append(Row("  read + decode during the replay (overlapped)",
                    r.events / r.read_seconds if r.read_seconds else None, "ev/s"))  # fmt: skip
    return rows


def differences_row(f: RebuildFigures | None, note: str = "") -> Row:
    """Rows of the rebuilt read models that differ from the live ones (the audit trail's lag
    behind the worker is not a difference)."""
    count = None if f is None else f.differences
    return Row("rebuilt read models: rows differing from the live ones", count, "rows",
               target=at_most(0, "equal"), note=note)  # fmt: skip


@dataclass(frozen=True)
class LoadFigures:
    head_ms: float  # median load at v1000: the snapshot at 1,000 alone
    worst_ms: float  # at v999: the snapshot at 950 and 49 events
    replay_ms: float  # without snapshots: all 1,000 events replayed


def load_rows(f: LoadFigures | None, note: str = "") -> list[Row]:
    replay = None if f is None else f.replay_ms
    limit, base = at_most(TARGET_LOAD_MS, "issue 5"), "no snapshots (replay all)"
    return [
        Row(f"load a {LONG_PROJECT_EVENTS:,}-event project (at v1000: snapshot only)",
            None if f is None else f.head_ms, "ms", replay, base, limit, note),
        Row("  the same at v999 (snapshot v950 + 49 events: worst case)",
            None if f is None else f.worst_ms, "ms", replay, base, limit, note),
    ]  # fmt: skip


def measure_size(target: PgTarget, run: str, events: int) -> list[Row]:
    schema = f"ecocase_bench_rm_{run}_{events}"
    create_schema(target, schema)
    try:
        env = store_env(target, schema)
        _log(f"{events:,} events: seeding in schema {schema}")
        seeded, seed_s = seed(env, events)
        _log(f"  seeded {seeded:,} events in {seed_s:.1f} s; building the live views")
        live_s = build_live_views(env)
        _log(f"  live views built in {live_s:.1f} s; baseline read + decode")
        f = rebuild_figures(env)
        rows = [Row(f"seed {seeded:,} events (batched saves, ~1,000 events each)",
                    seeded / seed_s, "ev/s")]  # fmt: skip
        rows += rebuild_rows(f, seeded)
        rows.append(Row(f"rebuild + compare with live views, {seeded:,} events",
                        f.report.seconds, "s"))  # fmt: skip
        rows.append(differences_row(f))
        return rows
    finally:
        drop_schema(target, schema)


def load_figures(target: PgTarget, run: str) -> LoadFigures:
    """A 1,000-event project in a fresh schema of its own (dropped at the end)."""
    schema = f"ecocase_bench_rm_{run}_load"
    create_schema(target, schema)
    try:
        env = store_env(target, schema)
        _log(f"load: a {LONG_PROJECT_EVENTS:,}-event project in schema {schema}")
        project_id = seed_long_project(env)
        return LoadFigures(*load_times(env, project_id))
    finally:
        drop_schema(target, schema)


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    p = argparse.ArgumentParser(prog="python -m bench.read_models", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--events", type=int, default=100_000, help="events to seed (default 100,000)")
    p.add_argument("--full", action="store_true", help=f"also {FULL_EVENTS:,} events")
    p.add_argument("--dbname", default=env.get("POSTGRES_DBNAME", "test"))
    p.add_argument("--db-host", default=env.get("POSTGRES_HOST", "127.0.0.1"))
    p.add_argument("--db-port", type=int, default=int(env.get("POSTGRES_PORT", "5432")))
    p.add_argument("--db-user", default=env.get("POSTGRES_USER", "postgres"))
    p.add_argument("--db-password", default=env.get("POSTGRES_PASSWORD", ""))
    args = p.parse_args(argv)
    target = PgTarget(args.dbname, args.db_host, args.db_port, args.db_user, args.db_password)
    run = datetime.now().strftime("%Y%m%d%H%M%S")
    sizes = [args.events] + ([FULL_EVENTS] if args.full and args.events != FULL_EVENTS else [])
    started = time.perf_counter()
    rows: list[Row] = []
    for size in sizes:
        rows += measure_size(target, run, size)
    loads = load_figures(target, run)
    rows += load_rows(loads)
    rows.append(Row(f"load a {LONG_PROJECT_EVENTS:,}-event project, no snapshots (replay all)",
                    loads.replay_ms, "ms"))  # fmt: skip
    print(
        f"bench.read_models {date.today()} · PostgreSQL {target.server_version()} · "
        f"{platform.python_implementation()} {platform.python_version()} · "
        f"{os.cpu_count()} CPUs · batch {BATCH} · {time.perf_counter() - started:.0f} s"
    )
    print(render_text(rows))
    return 0 if all(r.passed is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
