"""``python -m bench.read_models``: how fast the read models rebuild, and how fast a long
project loads with and without snapshots (issue 4 point 6; targets of issue 5).

On PostgreSQL, in a fresh schema per size that this run creates and drops (also on failure or
Ctrl-C):

1. **Seed** N events fast: projects of :data:`EVENTS_PER_PROJECT` events each (registration,
   reminder letters through the whole rectification loop, deferred materials supplied, audit
   notes), built as aggregates and saved :data:`PROJECTS_PER_SAVE` at a time, so that one save
   records about 1,000 events. Seeding goes through a CaseStore with snapshotting off (snapshots
   are not in the notification log, so they do not change what a rebuild reads).
2. **Live views**, as a running service has them: the project list and the supervision view
   caught up (``process_available``), the audit trail filled as the worker would.
3. **Baseline**: reading the whole notification log in batches and decoding every event, with
   nothing applied: the ceiling of any replay.
4. **Rebuild**: ``application.rebuild.rebuild`` — the replay of the whole store into fresh
   tables of all three read models (a second fresh schema, dropped by the rebuild), then the
   comparison with the live views. The replay's events/s is the figure of issue 5.
5. **Load**: one project of exactly 1,000 events saved 50 at a time through the ordinary
   CaseStore (so snapshots at 50, 100, ..., 1,000); the median of 20 loads after one warm-up:
   at its head (the snapshot at 1,000 alone), at version 999 (the snapshot at 950 and 49
   events: the worst case of a 1,000-event history), and through a CaseStore with snapshotting
   disabled (all 1,000 events replayed).

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
from datetime import date, datetime, timedelta
from uuid import UUID

from application.audit import AuditTrail
from application.project_index import ProjectIndex
from application.rebuild import BATCH, RebuildReport, rebuild
from application.sqldb import open_database
from application.store import SNAPSHOT_INTERVAL, CaseStore
from application.supervision import Supervision
from bench.baseline import PgTarget, create_schema, drop_schema
from domain.actor import Actor, Role, Stamp
from domain.builder import Builder, Contact
from domain.letters import FoundIn, IssueSpec, Severity
from domain.materials import DeferralReason
from domain.project import KeyProject
from domain.tiers import Tier
from domain.windows import WINDOWS

EVENTS_PER_PROJECT = 100
PROJECTS_PER_SAVE = 10  # about 1,000 events per save
LONG_PROJECT_EVENTS = 1_000
LOADS = 20
FULL_EVENTS = 1_000_000
TARGET_REBUILD = 50_000.0  # events/s (issue 5)
TARGET_LOAD_MS = 20.0  # a 1,000-event project (issue 5)

ACTOR = Actor("bench-seeder", "基准测试", Role.ADMIN, WINDOWS[0].code)
TODAY = date(2026, 12, 4)
BUILDER = Builder(
    name="杭州某新材料有限公司",
    credit_code="91330100716105852F",
    contact=Contact(name="李四", phone="0571-85085326", email="lisi@example.cn"),
)


def _log(text: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def store_env(target: PgTarget, schema: str, **extra: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": target.dbname,
        "POSTGRES_HOST": target.host,
        "POSTGRES_PORT": str(target.port),
        "POSTGRES_USER": target.user,
        "POSTGRES_PASSWORD": target.password,
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        **extra,
    }


# --- seeding ---------------------------------------------------------------------------------
def new_project(n: int) -> KeyProject:
    return KeyProject.register(
        name=f"基准项目{n}",
        project_code=f"2024-330100-44-01-{n:06d}",
        builder=BUILDER,
        window=WINDOWS[n % len(WINDOWS)].code,
        tiers=(Tier.CITY_KEY,) if n % 3 else (Tier.DISTRICT_KEY,),
        industry="新材料制造",
        location="杭州市西湖区三墩镇",
        two_high_one_low=n % 7 == 0,
    )


def letter_loop(p: KeyProject, serial: str, *, close: bool) -> int:
    """A reminder letter of two issues, both rectified and accepted, then (``close``) closed:
    6 events, or 5 with the letter left open."""
    letter = p.issue_reminder_letter(
        letter_no=f"杭环提〔2026〕{serial}号",
        deadline=TODAY + timedelta(days=15),
        issues=(
            IssueSpec(Severity.KEY, FoundIn.EXPERT_REVIEW, "大气预测因子不全", "补充VOCs预测"),
            IssueSpec(Severity.GENERAL, FoundIn.SITE_INSPECTION, "围挡破损", "修复围挡"),
        ),
        today=TODAY,
    )
    for issue in (f"{letter}-I1", f"{letter}-I2"):
        p.submit_rectification(
            letter_id=letter, issue_id=issue, summary="已整改", evidence=("附件.pdf",), today=TODAY
        )
        p.accept_rectification(letter_id=letter, issue_id=issue, comment="同意", today=TODAY)
    if not close:
        return 5
    p.close_reminder_letter(letter_id=letter, today=TODAY)
    return 6


def fill(p: KeyProject, events: int, serial: int) -> None:
    """Adds events to ``p`` until it is at version ``events``: reminder letters through the
    rectification loop (every third left open, so that the supervision view has open ones),
    deferred materials supplied, audit notes."""
    done, step = p.version, 0
    while done < events:
        left, step = events - done, step + 1
        if step % 8 == 1 and left >= 6:  # the version makes the letter number unique
            done += letter_loop(p, f"{serial}-{done}", close=step % 24 != 1)
        elif step % 8 in (3, 6) and left >= 2:
            material = p.defer_material(
                material="规划许可证", department="市规划和自然资源局",
                reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
                promised_by=TODAY + timedelta(days=20), today=TODAY,
            )  # fmt: skip
            p.supply_material(material_id=material, note="原件已核验", today=TODAY)
            done += 2
        else:
            p.add_audit_note(note=f"审计备注 {serial}-{done}：全过程资料已归档", today=TODAY)
            done += 1


def seed(env: dict[str, str], events: int) -> tuple[int, float]:
    """About ``events`` events in projects of EVENTS_PER_PROJECT; returns (events, seconds)."""
    store = CaseStore(env={**env, "IS_SNAPSHOTTING_ENABLED": "n"})
    started, recorded, n = time.perf_counter(), 0, 0
    try:
        while recorded < events:
            batch: list[KeyProject] = []
            while len(batch) < PROJECTS_PER_SAVE and recorded < events:
                n += 1
                project = new_project(n)
                fill(project, min(EVENTS_PER_PROJECT, events - recorded), n)
                recorded += project.version
                batch.append(project)
            store.save(*batch, stamp=Stamp(ACTOR, f"bench-seed-{n}"))
            if n % 200 == 0:
                rate = recorded / (time.perf_counter() - started)
                _log(f"  seeded {recorded:,}/{events:,} events ({rate:,.0f} /s)")
    finally:
        store.close()
    return recorded, time.perf_counter() - started


def seed_long_project(env: dict[str, str]) -> UUID:
    """A project of exactly LONG_PROJECT_EVENTS events, saved SNAPSHOT_INTERVAL at a time
    through the ordinary store, so that it has a snapshot every SNAPSHOT_INTERVAL events."""
    store = CaseStore(env=env)
    try:
        project = new_project(999_999)
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
    """Median ms: at the head with snapshots, at version 999 with snapshots, without."""
    with_snapshots = CaseStore(env=env)
    without = CaseStore(env={**env, "IS_SNAPSHOTTING_ENABLED": "n"})
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


# --- the table -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    figure: str
    value: str
    baseline: str = ""
    target: str = ""
    verdict: str = ""


def check(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def render(figures: Sequence[Figure]) -> str:
    head = ("figure", "value", "baseline", "target", "")
    rows = [(f.figure, f.value, f.baseline, f.target, f.verdict) for f in figures]
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    lines = [(head), tuple("-" * w for w in widths), *rows]
    return "\n".join(
        "  ".join(c.ljust(w) if i in (0, 4) else c.rjust(w)
                  for i, (c, w) in enumerate(zip(line, widths, strict=True))).rstrip()
        for line in lines
    )  # fmt: skip


def measure_size(target: PgTarget, run: str, events: int) -> list[Figure]:
    schema = f"ecocase_bench_rm_{run}_{events}"
    create_schema(target, schema)
    try:
        env = store_env(target, schema)
        _log(f"{events:,} events: seeding in schema {schema}")
        seeded, seed_s = seed(env, events)
        _log(f"  seeded {seeded:,} events in {seed_s:.1f} s; building the live views")
        live_s = build_live_views(env)
        _log(f"  live views built in {live_s:.1f} s; baseline read + decode")
        read, read_s = read_and_decode(env)
        _log(f"  read + decode {read / read_s:,.0f} ev/s; rebuilding")
        report = run_rebuild(env)
        n = f"{seeded:,}"
        figures = [
            Figure(f"seed {n} events (batched saves, ~1,000 events each)",
                   f"{seeded / seed_s:,.0f} ev/s", "", "", f"{seed_s:.1f} s"),
            Figure(f"rebuild all read models, {n} events (replay)",
                   f"{report.events_per_second:,.0f} ev/s",
                   f"{read / read_s:,.0f} ev/s read+decode",
                   f">= {TARGET_REBUILD:,.0f} ev/s",
                   check(report.events_per_second >= TARGET_REBUILD)),
        ]  # fmt: skip
        figures += [
            Figure(f"  {m.name}: applying (the 3 side by side)",
                   f"{m.events_per_second:,.0f} ev/s", "", "", f"{m.seconds:.1f} s")
            for m in report.models
        ]  # fmt: skip
        figures.append(
            Figure("  read + decode during the replay (overlapped)",
                   f"{report.events / report.read_seconds:,.0f} ev/s", "", "",
                   f"{report.read_seconds:.1f} s")
        )  # fmt: skip
        figures.append(
            Figure(f"rebuild + compare with live views, {n} events", f"{report.seconds:.1f} s",
                   "", "equal", check(report.equal))
        )  # fmt: skip
        return figures
    finally:
        drop_schema(target, schema)


def measure_loads(target: PgTarget, run: str) -> list[Figure]:
    schema = f"ecocase_bench_rm_{run}_load"
    create_schema(target, schema)
    try:
        env = store_env(target, schema)
        _log(f"load: a {LONG_PROJECT_EVENTS:,}-event project in schema {schema}")
        project_id = seed_long_project(env)
        head, worst, replay = load_times(env, project_id)
        limit = f"<= {TARGET_LOAD_MS:.0f} ms"
        return [
            Figure(f"load {LONG_PROJECT_EVENTS:,}-event project, snapshots (v1000: snapshot only)",
                   f"{head:.2f} ms", f"{replay:.2f} ms no snapshots", limit,
                   check(head <= TARGET_LOAD_MS)),
            Figure("  same at v999 (snapshot v950 + 49 events: worst case)",
                   f"{worst:.2f} ms", f"{replay:.2f} ms no snapshots", limit,
                   check(worst <= TARGET_LOAD_MS)),
            Figure(f"load {LONG_PROJECT_EVENTS:,}-event project, no snapshots (replay all)",
                   f"{replay:.2f} ms", "", "reference", ""),  # the service loads with them
        ]  # fmt: skip
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
    figures: list[Figure] = []
    for size in sizes:
        figures += measure_size(target, run, size)
    figures += measure_loads(target, run)
    print(
        f"bench.read_models {date.today()} · PostgreSQL {target.server_version()} · "
        f"{platform.python_implementation()} {platform.python_version()} · "
        f"{os.cpu_count()} CPUs · batch {BATCH} · {time.perf_counter() - started:.0f} s"
    )
    print(render(figures))
    return 0 if all(f.verdict != "FAIL" for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
