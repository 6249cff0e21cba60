"""Seeding a store fast, with valid events.

A project's events form a hash chain that ``CaseStore._record`` computes when they are saved,
so the seed builds :class:`KeyProject` aggregates with the domain's own commands (registration,
reminder letters through the rectification loop, deferred materials supplied, audit notes) and
saves many of them per ``CaseStore.save(*projects, stamp=...)``: one transaction of about
1,000 events. Snapshotting is off while seeding (snapshots are not in the notification log, and
projects of fewer than 50 events would have none anyway).

:func:`seed_parallel` runs several seeding processes side by side (each project is independent
of the others, so only the inserts themselves take turns); :func:`catch_up_views` brings the
project list and the supervision view up to the store's head, one process each, as a running
service would have them.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

from application.project_index import ProjectIndex
from application.store import CaseStore
from application.supervision import Supervision
from domain.actor import Actor, Role, Stamp
from domain.builder import Builder
from domain.letters import FoundIn, IssueSpec, Severity
from domain.materials import DeferralReason
from domain.project import KeyProject
from domain.tiers import Tier
from domain.windows import WINDOWS, Window

ACTOR = Actor("bench-seeder", "基准测试", Role.ADMIN, WINDOWS[0].code)
TODAY = date(2026, 12, 4)
EVENTS_PER_SAVE = 1_000
VIEW_BATCH = 2_000


@dataclass(frozen=True)
class Shape:
    """What the seeded projects look like. ``window``/``tiers`` None: spread over the 16
    windows and mixed tiers (the read-model bench); the HTTP bench wants every project in the
    token's window and major (a city-key project), so that any command applies to any."""

    builder: Builder
    events_per_project: int
    window: Window | None = None
    tiers: tuple[Tier, ...] | None = None


def new_project(n: int, shape: Shape) -> KeyProject:
    return KeyProject.register(
        name=f"基准项目{n}",
        project_code=f"2024-330100-44-01-{n:06d}",
        builder=shape.builder,
        window=shape.window or WINDOWS[n % len(WINDOWS)].code,
        tiers=shape.tiers or ((Tier.CITY_KEY,) if n % 3 else (Tier.DISTRICT_KEY,)),
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


def open_store(env: Mapping[str, str], attempts: int = 6) -> CaseStore:
    """A CaseStore, tried again when its construction meets another one's: eventsourcing
    9.5.6 runs ``CREATE OR REPLACE FUNCTION`` every time a store is constructed, and two
    processes doing that at the same moment can fail with "tuple concurrently updated"."""
    for attempt in range(attempts):
        try:
            return CaseStore(env=dict(env))
        except Exception as e:
            causes = f"{e} {e.__cause__} {e.__context__}"
            if "concurrently updated" not in causes or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError  # pragma: no cover - the loop returns or raises


def seed_projects(
    env: Mapping[str, str], shape: Shape, first_serial: int, projects: int
) -> tuple[list[str], int]:
    """``projects`` projects numbered from ``first_serial``, saved about EVENTS_PER_SAVE
    events at a time; their ids (as strings) and the events recorded."""
    store = open_store({**env, "IS_SNAPSHOTTING_ENABLED": "n", "ECOCASE_PROJECT_CACHE": "0"})
    per_save = max(1, EVENTS_PER_SAVE // shape.events_per_project)
    ids: list[str] = []
    recorded = 0
    try:
        for first in range(first_serial, first_serial + projects, per_save):
            batch = []
            for n in range(first, min(first + per_save, first_serial + projects)):
                project = new_project(n, shape)
                fill(project, shape.events_per_project, n)
                recorded += project.version
                batch.append(project)
                ids.append(str(project.id))
            store.save(*batch, stamp=Stamp(ACTOR, f"bench-seed-{first}"))
    finally:
        store.close()
    return ids, recorded


@dataclass(frozen=True)
class Seeded:
    ids: list[str]  # project ids, in serial order
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _spawn_pool(processes: int) -> ProcessPoolExecutor:
    # spawn, not fork: the parent holds connection pools and threads
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))


def seed_parallel(
    env: Mapping[str, str], shape: Shape, *, first_serial: int, projects: int, processes: int
) -> Seeded:
    """:func:`seed_projects` split over ``processes`` processes (chunks of 1,000 projects)."""
    started = time.perf_counter()
    chunk = 1_000
    starts = list(range(first_serial, first_serial + projects, chunk))
    counts = [min(chunk, first_serial + projects - s) for s in starts]
    env = dict(env)
    if processes <= 1:
        parts = [seed_projects(env, shape, s, c) for s, c in zip(starts, counts, strict=True)]
    else:
        with _spawn_pool(processes) as pool:
            parts = list(pool.map(seed_projects, [env] * len(starts), [shape] * len(starts),
                                  starts, counts))  # fmt: skip
    ids = [i for part, _ in parts for i in part]
    return Seeded(ids, sum(n for _, n in parts), time.perf_counter() - started)


def catch_up_view(env: Mapping[str, str], view: str) -> int:
    """Brings one live read model ("index" or "supervision") up to the store's head."""
    store = open_store(env)
    model = ProjectIndex(store, env) if view == "index" else Supervision(store, env)
    try:
        return model.process_available(limit=VIEW_BATCH)
    finally:
        model.close()
        store.close()


def catch_up_views(env: Mapping[str, str], *, parallel: bool = True) -> float:
    """The project list and the supervision view caught up, side by side; the seconds."""
    started = time.perf_counter()
    views: Sequence[str] = ("index", "supervision")
    env = dict(env)
    if parallel:
        with _spawn_pool(len(views)) as pool:
            list(pool.map(catch_up_view, [env] * len(views), views))
    else:
        for view in views:
            catch_up_view(env, view)
    return time.perf_counter() - started
