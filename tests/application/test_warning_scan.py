"""The early-warning scan over every open project, on POPO, SQLite and PostgreSQL: raises each
due warning once, as the scheduler's system actor; runs again (and twice at once) raising
nothing new; ``Cases.raise_warnings`` saves nothing when nothing is new."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Snapshot

from application import warning_scan
from application.cases import Acting, Cases
from application.project_index import ProjectIndex
from application.store import CaseStore
from application.warning_scan import SYSTEM_ACTOR, scan_warnings
from domain import errors
from domain.actor import Actor, Role
from domain.helper_service import HelperReason
from domain.intervention import Stage
from domain.letters import FoundIn, IssueSpec, Severity
from domain.materials import DeferralReason
from domain.project import KeyProject
from domain.warnings import RaisedWarning, WarningKind, due_warnings
from domain.windows import Window
from tests.conftest import SHANGHAI, START, Clock, register_major_project
from tests.pg import DURABLE_STORES

# START is Friday 2026-12-04 in Hangzhou; no PRC holiday falls in the days below.
FRI_DEC_4 = date(2026, 12, 4)
TUE_DEC_8 = date(2026, 12, 8)
SAT_DEC_12 = date(2026, 12, 12)

ISSUE = IssueSpec(Severity.KEY, FoundIn.EXPERT_REVIEW, "大气预测因子不全", "补充VOCs预测")
OFFICER = Actor("officer-xihu-01", "王芳", Role.OFFICER, Window.XIHU)


def code(n: int) -> str:
    return f"2024-330100-44-01-{n:06d}"


def on(clock: Clock, day: date) -> None:
    clock.set(datetime.combine(day, time(9, 0), tzinfo=SHANGHAI))


@pytest.fixture
def open_index(
    store: CaseStore, store_env: dict[str, str]
) -> Iterator[Callable[[CaseStore | None], ProjectIndex]]:
    """ProjectIndexes on the store's backend, closed at teardown before the store goes."""
    opened: list[ProjectIndex] = []

    def open_(on: CaseStore | None = None) -> ProjectIndex:
        opened.append(ProjectIndex(on or store, store_env))
        return opened[-1]

    yield open_
    for index in reversed(opened):
        index.close()


@pytest.fixture
def index(open_index: Callable[[CaseStore | None], ProjectIndex]) -> ProjectIndex:
    return open_index(None)


def letter_and_material(cases: Cases, n: int) -> UUID:
    """Project n: letter L1 due Fri 12-11, material M1 promised Tue 12-08 (set up on 12-04)."""
    acting = Acting(OFFICER, f"req-setup-{n}")
    project_id = register_major_project(cases, acting, code(n)).id
    cases.issue_reminder_letter(
        acting,
        project_id,
        letter_no=f"杭环提〔2026〕{n}号",
        deadline=date(2026, 12, 11),
        issues=(ISSUE,),
    )
    cases.defer_material(
        acting,
        project_id,
        material="规划许可证",
        department="市规划和自然资源局",
        reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
        promised_by=TUE_DEC_8,
    )
    return project_id


def check_and_helper(cases: Cases, n: int) -> UUID:
    """Project n: progress check C1 due Mon 12-07, helper h-1 visiting every 3 days (12-07)."""
    acting = Acting(OFFICER, f"req-setup-{n}")
    project_id = register_major_project(cases, acting, code(n)).id
    cases.start_early_intervention(acting, project_id, stage=Stage.FEASIBILITY, guidance="指导")
    cases.schedule_progress_check(acting, project_id, due_on=date(2026, 12, 7))
    cases.dispatch_helper(
        acting,
        project_id,
        helper="h-1",
        name="吴助企",
        reason=HelperReason.LEGACY_ISSUES,
        visit_every_days=3,
    )
    return project_id


def closed_with_an_overdue_material(cases: Cases, n: int) -> UUID:
    acting = Acting(OFFICER, f"req-setup-{n}")
    project_id = register_major_project(cases, acting, code(n)).id
    cases.defer_material(
        acting,
        project_id,
        material="节能审查意见",
        department="市发改委",
        reason=DeferralReason.NOT_DECISIVE,
        promised_by=FRI_DEC_4,
    )
    cases.close_project(acting, project_id, summary="审批完成，结案")
    return project_id


def raised_keys(cases: Cases, project_id: UUID) -> list[str]:
    return list(cases.get(SYSTEM_ACTOR, project_id).warnings)


def warning_events(cases: Cases, project_id: UUID) -> list[RaisedWarning]:
    found = []
    for entry in cases.history(SYSTEM_ACTOR, project_id):
        if entry.type == "WarningRaised":
            warning = entry.data["warning"]
            assert isinstance(warning, RaisedWarning)
            found.append(warning)
    return found


def test_the_scan_raises_each_due_warning_once_as_the_days_pass(
    cases: Cases, index: ProjectIndex, clock: Clock, store: CaseStore
) -> None:
    assert clock() == START
    a = letter_and_material(cases, 1)
    b = check_and_helper(cases, 2)
    closed = closed_with_an_overdue_material(cases, 3)
    closed_version = cases.get(SYSTEM_ACTOR, closed).version

    # Fri 12-04: the material is due Tue 12-08 (2 working days); the letter 12-11 is 5 away.
    assert scan_warnings(cases, index, request_id="scan-1") == 1
    assert raised_keys(cases, a) == ["material:M1:due_soon"]
    assert raised_keys(cases, b) == []
    versions = {p: cases.get(SYSTEM_ACTOR, p).version for p in (a, b, closed)}
    notifications = store.recorder.max_notification_id()
    assert scan_warnings(cases, index, request_id="scan-1-again") == 0
    assert {p: cases.get(SYSTEM_ACTOR, p).version for p in (a, b, closed)} == versions
    assert store.recorder.max_notification_id() == notifications

    # Tue 12-08: the letter has 3 working days left; the check and the visit (12-07) are late;
    # the material is due today, and its due-soon warning was already raised.
    on(clock, TUE_DEC_8)
    assert scan_warnings(cases, index, request_id="scan-2") == 3
    assert raised_keys(cases, a) == ["material:M1:due_soon", "letter:L1:due_soon"]
    assert raised_keys(cases, b) == ["check:C1:overdue", "helper:h-1:overdue:2026-12-07"]

    # Sat 12-12: the letter and the material are past; b has nothing new.
    on(clock, SAT_DEC_12)
    assert scan_warnings(cases, index, request_id="scan-3") == 2
    assert scan_warnings(cases, index, request_id="scan-3-again") == 0
    assert raised_keys(cases, a) == [
        "material:M1:due_soon",
        "letter:L1:due_soon",
        "letter:L1:overdue",
        "material:M1:overdue",
    ]
    assert len(raised_keys(cases, b)) == 2

    # The closed case got none and did not move.
    assert raised_keys(cases, closed) == []
    assert cases.get(SYSTEM_ACTOR, closed).version == closed_version

    # Read back from the store, typed, with the day each was raised.
    project = cases.get(SYSTEM_ACTOR, a)
    overdue = project.warnings["letter:L1:overdue"]
    assert overdue.kind is WarningKind.RECTIFICATION_OVERDUE
    assert (overdue.subject_id, overdue.due_on, overdue.raised_on) == (
        "L1",
        date(2026, 12, 11),
        SAT_DEC_12,
    )
    assert overdue.message == (
        "温馨提醒函 杭环提〔2026〕1号 的整改期限 2026-12-11 已过，尚有 1 个问题未完成整改"
    )
    assert project.warnings["material:M1:due_soon"].raised_on == FRI_DEC_4


def test_the_history_shows_each_warning_raised_by_the_system_actor(
    cases: Cases, index: ProjectIndex, clock: Clock
) -> None:
    a = letter_and_material(cases, 1)
    on(clock, TUE_DEC_8)
    assert scan_warnings(cases, index, request_id="scan-0900") == 2
    history = cases.history(OFFICER, a)
    raised = [e for e in history if e.type == "WarningRaised"]
    assert [e.version for e in raised] == [history[-2].version, history[-1].version]
    for entry in raised:
        assert entry.stamp is not None
        assert entry.stamp.actor == SYSTEM_ACTOR
        assert entry.stamp.actor.role is Role.ADMIN
        assert entry.stamp.request_id == "scan-0900"
    assert [w.key for w in warning_events(cases, a)] == [
        "letter:L1:due_soon",
        "material:M1:due_soon",
    ]
    assert warning_events(cases, a)[1].message == (
        "容缺材料「规划许可证」（市规划和自然资源局）承诺于 2026-12-08 前补交，还剩 0 个工作日"
    )


def test_raise_warnings_saves_nothing_when_nothing_is_new(
    cases: Cases, store: CaseStore, clock: Clock
) -> None:
    a = letter_and_material(cases, 1)
    on(clock, SAT_DEC_12)
    acting = Acting(SYSTEM_ACTOR, "req-raise")
    specs = tuple(due_warnings(cases.get(SYSTEM_ACTOR, a), cases.today()))
    assert len(specs) == 2
    assert cases.raise_warnings(acting, a, specs) == 2
    version = cases.get(SYSTEM_ACTOR, a).version
    events = len(store.recorder.select_events(a))
    notifications = store.recorder.max_notification_id()
    assert cases.raise_warnings(acting, a, specs) == 0
    assert cases.raise_warnings(acting, a, ()) == 0
    assert cases.get(SYSTEM_ACTOR, a).version == version
    assert len(store.recorder.select_events(a)) == events
    assert store.recorder.max_notification_id() == notifications


def test_raise_warnings_records_only_the_new_ones_and_with_expected_version_checks_it(
    cases: Cases, clock: Clock
) -> None:
    b = check_and_helper(cases, 2)
    on(clock, TUE_DEC_8)
    check, helper = due_warnings(cases.get(SYSTEM_ACTOR, b), cases.today())
    acting = Acting(SYSTEM_ACTOR, "req-raise")
    assert cases.raise_warnings(acting, b, (check,)) == 1
    version = cases.get(SYSTEM_ACTOR, b).version
    assert cases.raise_warnings(acting, b, (check, helper)) == 1
    assert cases.get(SYSTEM_ACTOR, b).version == version + 1
    with pytest.raises(errors.VersionMismatch):
        cases.raise_warnings(Acting(SYSTEM_ACTOR, "req-stale", expected_version=1), b, (check,))


def test_raise_warnings_checks_access(cases: Cases, clock: Clock) -> None:
    a = letter_and_material(cases, 1)
    on(clock, SAT_DEC_12)
    specs = tuple(due_warnings(cases.get(SYSTEM_ACTOR, a), cases.today()))
    auditor = Actor("auditor-city-01", "赵敏", Role.AUDITOR, Window.CITY)
    other_window = Actor("officer-binjiang-01", "钱明", Role.OFFICER, Window.BINJIANG)
    for actor in (auditor, other_window):
        with pytest.raises(errors.NotAllowed):
            cases.raise_warnings(Acting(actor, "req-x"), a, specs)
    assert raised_keys(cases, a) == []


def test_the_scan_pages_through_every_open_project(
    cases: Cases, index: ProjectIndex, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warning_scan, "MAX_LIMIT", 2)
    projects = [letter_and_material(cases, n) for n in range(1, 6)]
    on(clock, SAT_DEC_12)
    assert scan_warnings(cases, index, request_id="scan-paged") == 10
    for project_id in projects:
        assert raised_keys(cases, project_id) == ["letter:L1:overdue", "material:M1:overdue"]


def test_the_scan_uses_the_window_it_is_given(
    cases: Cases, index: ProjectIndex, clock: Clock
) -> None:
    a = letter_and_material(cases, 1)
    assert scan_warnings(cases, index, request_id="scan-wide", soon_working_days=5) == 2
    assert raised_keys(cases, a) == ["letter:L1:due_soon", "material:M1:due_soon"]


def test_a_project_closed_after_its_warnings_gets_no_more(
    cases: Cases, index: ProjectIndex, clock: Clock
) -> None:
    b = check_and_helper(cases, 2)
    on(clock, TUE_DEC_8)
    assert scan_warnings(cases, index, request_id="scan-1") == 2
    cases.close_project(Acting(OFFICER, "req-close"), b, summary="结案")
    version = cases.get(SYSTEM_ACTOR, b).version
    on(clock, date(2026, 12, 31))
    assert scan_warnings(cases, index, request_id="scan-2") == 0
    assert cases.get(SYSTEM_ACTOR, b).version == version


def test_warnings_survive_a_snapshot(
    cases: Cases,
    store: CaseStore,
    clock: Clock,
    open_store: Callable[[], CaseStore],
    store_kind: str,
) -> None:
    b = check_and_helper(cases, 2)
    on(clock, TUE_DEC_8)
    specs = tuple(due_warnings(cases.get(SYSTEM_ACTOR, b), cases.today()))
    cases.raise_warnings(Acting(SYSTEM_ACTOR, "req-raise"), b, specs)
    replayed = cases.get(SYSTEM_ACTOR, b)
    store.take_snapshot(b)
    reader = store if store_kind == "popo" else open_store()
    assert reader.snapshots is not None
    (snapshot,) = reader.snapshots.get(b)
    assert isinstance(snapshot, Snapshot)
    from_snapshot = snapshot.mutate(None)
    assert isinstance(from_snapshot, KeyProject)
    assert from_snapshot.warnings == replayed.warnings
    (helper,) = (w for w in from_snapshot.warnings.values() if w.subject_id == "h-1")
    assert helper.kind is WarningKind.HELPER_VISIT_OVERDUE
    assert helper.due_on == date(2026, 12, 7)


# --- two scans at once --------------------------------------------------------------------


@pytest.mark.parametrize("store_env", DURABLE_STORES, indirect=True)
def test_two_scans_at_once_raise_each_warning_exactly_once(
    cases: Cases,
    clock: Clock,
    open_store: Callable[[], CaseStore],
    open_index: Callable[[CaseStore | None], ProjectIndex],
) -> None:
    """Two schedulers, as two processes would be: each its own store and index."""
    projects = [letter_and_material(cases, n) for n in range(1, 6)]
    projects += [check_and_helper(cases, n) for n in range(6, 11)]
    on(clock, SAT_DEC_12)
    scanners = []
    for _ in range(2):
        store = open_store()
        scanners.append((Cases(store, clock=clock), open_index(store)))
    start = threading.Barrier(len(scanners))

    def scan(n: int) -> int:
        scanner_cases, scanner_index = scanners[n]
        scanner_index.catch_up()
        start.wait()
        return scan_warnings(scanner_cases, scanner_index, request_id=f"scan-{n}")

    with ThreadPoolExecutor(len(scanners)) as pool:
        results = list(pool.map(scan, range(len(scanners))))

    expected = 5 * 2 + 5 * 2  # letter + material overdue; check + helper overdue
    assert sum(results) == expected
    raised: Counter[str] = Counter()
    for project_id in projects:
        keys = [w.key for w in warning_events(cases, project_id)]
        assert len(keys) == len(set(keys)) == 2
        raised.update(f"{project_id}:{k}" for k in keys)
    assert len(raised) == expected
    assert set(raised.values()) == {1}
    assert [scan_warnings(c, i, request_id="scan-after") for c, i in scanners] == [0, 0]


def test_the_system_actor_is_the_schedulers_admin() -> None:
    assert (SYSTEM_ACTOR.sub, SYSTEM_ACTOR.name) == ("ecocase-scheduler", "预警服务")
    assert (SYSTEM_ACTOR.role, SYSTEM_ACTOR.unit) == (Role.ADMIN, Window.CITY)


@pytest.mark.parametrize("store_env", DURABLE_STORES, indirect=True)
def test_two_raises_that_race_to_save_record_the_warnings_once(
    cases: Cases,
    clock: Clock,
    open_store: Callable[[], CaseStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both writers load the same version and computed the same warnings; both reach the save
    together. One wins; the other's save conflicts, its retry finds every key raised and it
    saves nothing."""
    a = letter_and_material(cases, 1)
    on(clock, SAT_DEC_12)
    specs = tuple(due_warnings(cases.get(SYSTEM_ACTOR, a), cases.today()))
    assert len(specs) == 2
    both_loaded = threading.Barrier(2, timeout=10)
    writers = []
    for _ in range(2):
        store = open_store()
        save = store.save
        first = [True]

        def save_together(
            *args: object, _save: Any = save, _first: list[bool] = first, **kwargs: Any
        ) -> Any:
            if _first[0]:
                _first[0] = False
                both_loaded.wait()
            return _save(*args, **kwargs)

        monkeypatch.setattr(store, "save", save_together)
        writers.append(Cases(store, clock=clock))

    def write(n: int) -> int:
        return writers[n].raise_warnings(Acting(SYSTEM_ACTOR, f"req-{n}"), a, specs)

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(write, range(2)))
    assert results == [0, 2]
    assert [w.key for w in warning_events(cases, a)] == [
        "letter:L1:overdue",
        "material:M1:overdue",
    ]
