"""The supervision read model (整改闭环督办): one row per reminder letter, overdue and working
days on the day it is read, the per-window summary, who may read it, and exactly-once tracking
on POPO, SQLite and PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from application import follower, supervision_storage
from application.cases import Acting, Cases
from application.sqldb import Database, TrackingConflictError
from application.store import CaseStore
from application.supervision import (
    LetterRow,
    Supervision,
    WindowSummary,
    fold,
    supervision_windows,
)
from application.supervision_storage import (
    Batch,
    Fold,
    ProjectRectifications,
    SupervisionStorage,
)
from domain import errors
from domain.actor import Actor, Role
from domain.builder import Builder, Contact
from domain.letters import FoundIn, IssueSpec, Severity
from domain.officers import OfficerRole
from domain.tiers import Tier
from domain.windows import WINDOWS, Window
from tests import pg
from tests.conftest import CREDIT_CODE, SHANGHAI, Clock

ADMIN = Actor("admin-01", "管理员", Role.ADMIN, Window.CITY)
ALL_CODES = [str(w.code) for w in WINDOWS]


def code(n: int) -> str:
    return f"2024-330100-44-01-{n:06d}"


def register(cases: Cases, n: int, window: Window = Window.XIHU) -> UUID:
    project = cases.register(
        Acting(ADMIN, f"req-{n}"),
        name=f"重点项目{n}",
        project_code=code(n),
        builder=Builder(
            name="杭州某新材料有限公司",
            credit_code=CREDIT_CODE,
            contact=Contact(name="李四", phone="0571-85085326", email="lisi@example.cn"),
        ),
        window=window,
        tiers=(Tier.CITY_KEY,),
        industry="新材料制造",
        location="杭州市西湖区三墩镇",
        two_high_one_low=False,
    )
    return project.id


def issue(cases: Cases, pid: UUID, letter_no: str, deadline: date, issues: int = 1) -> str:
    specs = tuple(
        IssueSpec(
            Severity.KEY if n == 0 else Severity.GENERAL,
            FoundIn.DOCUMENT_REVIEW if n == 0 else FoundIn.SITE_INSPECTION,
            f"问题{n + 1}",
            f"要求{n + 1}",
        )
        for n in range(issues)
    )
    _, letter_id = cases.issue_reminder_letter(
        Acting(ADMIN, "req-letter"), pid, letter_no=letter_no, deadline=deadline, issues=specs
    )
    return letter_id


def rectify(cases: Cases, pid: UUID, letter_id: str, issue_id: str) -> None:
    cases.submit_rectification(
        Acting(ADMIN, "req-rectify"), pid, letter_id, issue_id, summary="已整改", evidence=("a",)
    )
    cases.accept_rectification(Acting(ADMIN, "req-accept"), pid, letter_id, issue_id, comment=None)


def close(cases: Cases, pid: UUID, letter_id: str, issues: int = 1) -> None:
    for n in range(1, issues + 1):
        rectify(cases, pid, letter_id, f"{letter_id}-I{n}")
    cases.close_reminder_letter(Acting(ADMIN, "req-close"), pid, letter_id)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=SHANGHAI)


def letters(view: Supervision, today: date, **filters: Any) -> list[LetterRow]:
    return view.rectifications(readable_windows=None, today=today, **filters)


def by_window(lines: list[WindowSummary]) -> dict[str, WindowSummary]:
    return {line.window: line for line in lines}


@pytest.fixture
def open_view(store: CaseStore, store_env: dict[str, str]) -> Iterator[Callable[..., Supervision]]:
    """Opens Supervision views on the store's backend (another on the same storage, as another
    process would); all are closed at teardown, before the store and its schema go."""
    opened: list[Supervision] = []

    def open_(on: CaseStore | None = None, **kwargs: Any) -> Supervision:
        opened.append(Supervision(on or store, store_env, **kwargs))
        return opened[-1]

    yield open_
    for view in reversed(opened):
        view.close()


@pytest.fixture
def view(open_view: Callable[..., Supervision]) -> Supervision:
    return open_view()


TODAY = date(2026, 12, 4)  # the clock fixture's day, a Friday


# --- the rows -----------------------------------------------------------------------------------


def test_an_empty_store_gives_no_letters_and_zero_lines(view: Supervision) -> None:
    assert view.process_available() == 0
    assert view.position() == 0
    assert view.catch_up(timeout=0.1)
    assert letters(view, TODAY) == []
    lines = view.summary(readable_windows=None, today=TODAY)
    assert [line.window for line in lines] == ALL_CODES
    assert all(
        (s.issued, s.open, s.overdue, s.closed, s.closure_rate, s.median_days_to_close)
        == (0, 0, 0, 0, None, None)
        for s in lines
    )


def test_a_letter_row_follows_the_rectification_loop(
    view: Supervision, cases: Cases, clock: Clock
) -> None:
    pid = register(cases, 1)
    cases.assign_officer(Acting(ADMIN, "r"), pid, officer="o-1", name="张三", role=OfficerRole.LEAD)
    letter_id = issue(cases, pid, "杭环温提〔2026〕1号", date(2026, 12, 11), issues=2)
    view.process_available()
    (row,) = letters(view, TODAY)
    assert (row.project_id, row.project_code, row.project_name) == (pid, code(1), "重点项目1")
    assert (row.window, row.window_name) == ("xihu", "西湖分局")
    assert (row.letter_id, row.letter_no) == (letter_id, "杭环温提〔2026〕1号")
    assert (row.issued_on, row.deadline, row.status, row.closed_on) == (
        TODAY,
        date(2026, 12, 11),
        "open",
        None,
    )
    assert [(i.id, i.severity, i.found_in, i.status) for i in row.issues] == [
        ("L1-I1", "key", "document_review", "open"),
        ("L1-I2", "general", "site_inspection", "open"),
    ]
    assert (row.overdue, row.working_days_left, row.days_overdue, row.days_to_close) == (
        False,
        5,  # Mon 7 to Fri 11 December
        0,
        None,
    )
    assert (row.standing, row.open_issues) == ("open", 2)

    acting = Acting(ADMIN, "r")
    cases.submit_rectification(acting, pid, letter_id, "L1-I1", summary="改", evidence=())
    view.process_available()
    assert [i.status for i in letters(view, TODAY)[0].issues] == ["submitted", "open"]
    cases.return_rectification(acting, pid, letter_id, "L1-I1", reason="证据不足")
    view.process_available()
    assert [i.status for i in letters(view, TODAY)[0].issues] == ["returned", "open"]
    cases.submit_rectification(acting, pid, letter_id, "L1-I1", summary="再改", evidence=())
    cases.accept_rectification(acting, pid, letter_id, "L1-I1", comment=None)
    view.process_available()
    assert [i.status for i in letters(view, TODAY)[0].issues] == ["accepted", "open"]
    assert letters(view, TODAY)[0].open_issues == 1

    clock.set(at(date(2026, 12, 10)))
    rectify(cases, pid, letter_id, "L1-I2")
    cases.close_reminder_letter(acting, pid, letter_id)
    view.process_available()
    (row,) = letters(view, date(2026, 12, 20))
    assert (row.status, row.standing, row.closed_on, row.days_to_close) == (
        "closed",
        "closed",
        date(2026, 12, 10),
        6,
    )
    assert (row.overdue, row.working_days_left, row.days_overdue) == (False, None, None)
    assert [i.status for i in row.issues] == ["accepted", "accepted"]
    assert view.position() == cases.store.recorder.max_notification_id()


def test_overdue_and_working_days_follow_the_prc_calendar(
    view: Supervision, cases: Cases, clock: Clock
) -> None:
    clock.set(at(date(2026, 9, 28)))  # Monday after the Mid-Autumn holiday
    pid = register(cases, 1)
    issue(cases, pid, "杭环温提〔2026〕1号", date(2026, 10, 12))  # after National Day
    view.process_available()
    (row,) = letters(view, date(2026, 9, 28))
    # 29, 30 Sep, 8, 9, 10 (a 调休 Saturday) and 12 Oct: the holiday week does not count.
    assert row.working_days_left == 6
    (row,) = letters(view, date(2026, 10, 12))  # due today: not overdue yet
    assert (row.overdue, row.working_days_left, row.days_overdue) == (False, 0, 0)
    (row,) = letters(view, date(2026, 10, 13))
    assert (row.overdue, row.standing, row.working_days_left, row.days_overdue) == (
        True,
        "overdue",
        0,
        1,
    )
    (row,) = letters(view, date(2026, 10, 19))
    assert row.days_overdue == 5  # 13 to 16 and 19 October


def test_filters_by_status_window_and_reader(view: Supervision, cases: Cases, clock: Clock) -> None:
    xihu = register(cases, 1)
    gongshu = register(cases, 2, Window.GONGSHU)
    issue(cases, xihu, "西湖-1", date(2026, 12, 8))
    issue(cases, xihu, "西湖-2", date(2026, 12, 30))
    done = issue(cases, gongshu, "拱墅-1", date(2026, 12, 9))
    issue(cases, gongshu, "拱墅-2", date(2026, 12, 7))
    close(cases, gongshu, done)
    view.process_available()
    today = date(2026, 12, 10)  # 西湖-1 and 拱墅-2 are overdue

    def listed(**filters: Any) -> list[str]:
        return [r.letter_no for r in letters(view, today, **filters)]

    # Open first, by deadline (the overdue at the top), then closed.
    assert listed() == ["拱墅-2", "西湖-1", "西湖-2", "拱墅-1"]
    assert listed(status="open") == ["拱墅-2", "西湖-1", "西湖-2"]
    assert listed(status="overdue") == ["拱墅-2", "西湖-1"]
    assert listed(status="closed") == ["拱墅-1"]
    assert listed(window="xihu") == ["西湖-1", "西湖-2"]
    assert listed(window=Window.GONGSHU, status="overdue") == ["拱墅-2"]
    assert listed(window="city") == []
    assert [r.standing for r in letters(view, today)] == ["overdue", "overdue", "open", "closed"]

    def read(windows: frozenset[str], **filters: Any) -> list[str]:
        rows = view.rectifications(readable_windows=windows, today=today, **filters)
        return [r.letter_no for r in rows]

    assert read(frozenset({"xihu"})) == ["西湖-1", "西湖-2"]
    assert read(frozenset({Window.GONGSHU}), status="closed") == ["拱墅-1"]
    assert read(frozenset()) == []
    with pytest.raises(errors.NotAllowed):
        read(frozenset({"xihu"}), window="gongshu")


@pytest.mark.parametrize(
    ("filters", "field"),
    [({"window": "atlantis"}, "window"), ({"status": "pending"}, "status")],
)
def test_bad_filters_are_invalid_input(
    view: Supervision, filters: dict[str, Any], field: str
) -> None:
    with pytest.raises(errors.InvalidInput) as raised:
        view.rectifications(readable_windows=None, today=TODAY, **filters)
    assert raised.value.field == field
    if "window" in filters:
        with pytest.raises(errors.InvalidInput):
            view.summary(readable_windows=None, today=TODAY, **filters)


# --- the summary --------------------------------------------------------------------------------


def test_the_summary_counts_rates_and_days_to_close(
    view: Supervision, cases: Cases, clock: Clock
) -> None:
    xihu, binjiang = register(cases, 1), register(cases, 2, Window.BINJIANG)
    first = issue(cases, xihu, "西湖-1", date(2026, 12, 31))
    second = issue(cases, xihu, "西湖-2", date(2026, 12, 31))
    third = issue(cases, xihu, "西湖-3", date(2026, 12, 31))
    issue(cases, xihu, "西湖-4", date(2026, 12, 7))  # overdue on the 10th
    issue(cases, binjiang, "滨江-1", date(2026, 12, 8))  # overdue on the 10th
    clock.set(at(date(2026, 12, 6)))
    close(cases, xihu, first)  # 2 days
    clock.set(at(date(2026, 12, 9)))
    close(cases, xihu, second)  # 5 days
    clock.set(at(date(2026, 12, 15)))
    close(cases, xihu, third)  # 11 days
    view.process_available()

    lines = by_window(view.summary(readable_windows=None, today=date(2026, 12, 10)))
    assert list(lines) == ALL_CODES
    x = lines["xihu"]
    # On the 10th the third letter is closed already: the view holds what was recorded.
    assert (x.window_name, x.issued, x.open, x.overdue, x.closed) == ("西湖分局", 4, 1, 1, 3)
    assert x.closure_rate == 0.75
    assert (x.mean_days_to_close, x.median_days_to_close) == (6.0, 5.0)
    b = lines["binjiang"]
    assert (b.issued, b.open, b.overdue, b.closed, b.closure_rate) == (1, 1, 1, 0, 0.0)
    assert (b.mean_days_to_close, b.median_days_to_close) == (None, None)
    assert lines["city"] == WindowSummary("city", "杭州市生态环境局", 0, 0, 0, 0, None, None, None)

    _, total = view.summary_with_total(readable_windows=None, today=date(2026, 12, 10))
    assert (total.window, total.window_name) == ("all", "合计")
    assert (total.issued, total.open, total.overdue, total.closed) == (5, 2, 2, 3)
    assert (total.closure_rate, total.median_days_to_close) == (0.6, 5.0)
    # An even count of closed letters gives the mean of the middle two.
    clock.set(at(date(2026, 12, 18)))
    close(cases, binjiang, "L1")  # 14 days
    view.process_available()
    _, total = view.summary_with_total(readable_windows=None, today=date(2026, 12, 20))
    assert (total.median_days_to_close, total.mean_days_to_close) == (8.0, 8.0)


def test_the_summary_is_per_readable_window(view: Supervision, cases: Cases) -> None:
    pid = register(cases, 1)
    issue(cases, pid, "西湖-1", date(2026, 12, 31))
    issue(cases, pid, "西湖-2", date(2026, 12, 31))
    issue(cases, pid, "西湖-3", date(2026, 12, 31))
    close(cases, pid, "L1")
    view.process_available()

    (line,) = view.summary(readable_windows=frozenset({"xihu"}), today=TODAY)
    assert (line.window, line.issued, line.closed, line.closure_rate) == ("xihu", 3, 1, 0.3333)
    assert line.median_days_to_close == 0.0  # closed the day it was issued
    two = view.summary(readable_windows=frozenset({"gongshu", "xihu"}), today=TODAY)
    assert [s.window for s in two] == ["gongshu", "xihu"]  # in the notice's order
    (only,) = view.summary(readable_windows=None, window="xihu", today=TODAY)
    assert only == line
    assert view.summary(readable_windows=frozenset(), today=TODAY) == []
    with pytest.raises(errors.NotAllowed):
        view.summary(readable_windows=frozenset({"xihu"}), window="city", today=TODAY)


@pytest.mark.parametrize(
    ("actor", "windows"),
    [
        (Actor("s-1", "刘洋", Role.SUPERVISOR, Window.XIHU), frozenset({"xihu"})),
        (Actor("s-2", "孙丽", Role.SUPERVISOR, Window.CITY), None),
        (Actor("a-1", "赵敏", Role.AUDITOR, Window.CITY), None),
        (Actor("a-2", "钱审", Role.AUDITOR, Window.XIHU), None),
        (ADMIN, None),
    ],
)
def test_who_supervises_which_windows(actor: Actor, windows: frozenset[str] | None) -> None:
    assert supervision_windows(actor) == windows


def test_officers_do_not_read_supervision() -> None:
    with pytest.raises(errors.NotAllowed):
        supervision_windows(Actor("o-1", "王芳", Role.OFFICER, Window.XIHU))


# --- exactly once -------------------------------------------------------------------------------


def notifications_from(store: CaseStore, start: int) -> Batch:
    found = store.recorder.select_notifications(start=start, limit=1000)
    return [(n.id, store.mapper.to_domain_event(n)) for n in found]


def test_reprocessing_applied_positions_changes_nothing(view: Supervision, cases: Cases) -> None:
    pid = register(cases, 1)
    issue(cases, pid, "西湖-1", date(2026, 12, 31))
    assert view.process_available() == 2
    before, checksum = letters(view, TODAY), view.checksum()
    storage = view._storage  # its storage: apply old batches again, on purpose
    assert storage.apply(notifications_from(cases.store, 1), fold) == 0
    assert storage.apply(notifications_from(cases.store, 2), fold) == 0
    assert letters(view, TODAY) == before
    assert view.checksum() == checksum
    assert view.position() == 2

    issue(cases, pid, "西湖-2", date(2026, 12, 31))
    # A batch that overlaps what was applied applies only the new event.
    assert storage.apply(notifications_from(cases.store, 1), fold) == 1
    assert [r.letter_no for r in letters(view, TODAY)] == ["西湖-1", "西湖-2"]
    assert view.process_available() == 0
    assert view.position() == 3


def test_events_outside_the_loop_write_nothing(view: Supervision, cases: Cases) -> None:
    pid = register(cases, 1)
    issue(cases, pid, "西湖-1", date(2026, 12, 31))
    view.process_available()
    (row,) = view.rows()
    cases.assign_officer(
        Acting(ADMIN, "r"), pid, officer="o-1", name="张三", role=OfficerRole.JOINT
    )
    cases.add_audit_note(Acting(ADMIN, "r"), pid, note="抽查")
    assert view.process_available() == 2
    assert view.rows() == [row]  # same version: the row was not rewritten
    assert view.position() == 4


@pytest.mark.parametrize("store_env", pg.DURABLE_STORES, indirect=True)
def test_a_second_view_on_the_same_storage_applies_nothing_twice(
    open_view: Callable[..., Supervision], cases: Cases
) -> None:
    first = open_view()
    pid = register(cases, 1)
    issue(cases, pid, "西湖-1", date(2026, 12, 31))
    assert first.process_available() == 2
    second = open_view()
    assert second.position() == 2
    assert second.process_available() == 0
    assert letters(second, TODAY) == letters(first, TODAY)
    assert second.checksum() == first.checksum()


@pytest.mark.parametrize("store_env", pg.DURABLE_STORES, indirect=True)
def test_racing_views_apply_each_event_once(
    open_view: Callable[..., Supervision], cases: Cases
) -> None:
    pids = [register(cases, n) for n in range(1, 6)]
    for n, pid in enumerate(pids):
        issue(cases, pid, f"杭环温提〔2026〕{n}号", date(2026, 12, 31))
    racers = [open_view() for _ in range(3)]
    applied: list[int] = []
    barrier = threading.Barrier(len(racers))

    def race(view: Supervision) -> None:
        barrier.wait()
        applied.append(sum(view._process_batch(2) for _ in range(10)))

    threads = [threading.Thread(target=race, args=(r,)) for r in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(applied) == 10
    rows = letters(racers[0], TODAY)
    assert len(rows) == 5
    assert all(len(r.issues) == 1 and r.status == "open" for r in rows)


def test_a_failing_batch_rolls_back_rows_and_position(view: Supervision, cases: Cases) -> None:
    pid = register(cases, 1)
    view.process_available()
    issue(cases, pid, "西湖-1", date(2026, 12, 31))
    other = register(cases, 2)

    def crash_on_second(state: ProjectRectifications | None, event: Any) -> Any:
        if event.originator_id == other:
            raise RuntimeError("crash between events")
        return fold(state, event)

    with pytest.raises(RuntimeError, match="crash between events"):
        view._storage.apply(notifications_from(cases.store, 1), crash_on_second)
    assert view.position() == 1
    assert letters(view, TODAY) == []
    assert view.process_available() == 2
    issue(cases, other, "西湖-2", date(2026, 12, 31))
    assert view.process_available() == 1
    assert [r.project_id for r in letters(view, TODAY)] == [pid, other]


@pytest.mark.parametrize("store_env", pg.DURABLE_STORES, indirect=True)
def test_a_restarted_view_resumes_from_its_recorded_position(
    open_view: Callable[..., Supervision],
    open_store: Callable[[], CaseStore],
    cases: Cases,
) -> None:
    first = open_view()
    first.start(poll_interval=0.01)
    pid = register(cases, 1)
    issue(cases, pid, "西湖-1", date(2026, 12, 31))
    assert first.catch_up(timeout=10)
    first.stop()  # the process goes down; more is recorded meanwhile
    close(cases, pid, "L1")
    issue(cases, pid, "西湖-2", date(2026, 12, 31))

    restarted = open_view(open_store())  # a new process: its own store and view
    assert restarted.position() == 2
    assert restarted.process_available() == 4
    assert [(r.letter_no, r.status) for r in letters(restarted, TODAY)] == [
        ("西湖-2", "open"),
        ("西湖-1", "closed"),
    ]


def test_a_rebuild_into_fresh_tables_equals_the_live_view(
    open_view: Callable[..., Supervision], cases: Cases, clock: Clock
) -> None:
    live = open_view()
    live.start(poll_interval=0.01)
    for n, window in enumerate([Window.XIHU, Window.GONGSHU, Window.CITY], start=1):
        pid = register(cases, n, window)
        issue(cases, pid, f"函-{n}-1", date(2026, 12, 31), issues=2)
        issue(cases, pid, f"函-{n}-2", clock.now.date() + timedelta(days=3))
        clock.advance(timedelta(days=n))
        close(cases, pid, "L1", issues=2)
    assert live.catch_up(timeout=10)
    rebuilt = open_view(prefix="supervision_rebuild")
    assert rebuilt.position() == 0
    assert rebuilt.process_available(limit=7) == cases.store.recorder.max_notification_id()
    assert rebuilt.checksum() == live.checksum()
    assert rebuilt.rows() == live.rows()
    assert len(live.rows()) == 6
    with pytest.raises(ValueError, match="prefix"):
        open_view(prefix="Robert'); DROP TABLE x;--")


def test_one_batch_of_many_projects_and_letters_writes_every_row(
    view: Supervision, cases: Cases, clock: Clock
) -> None:
    for n, window in enumerate([Window.XIHU, Window.GONGSHU, Window.CITY], start=1):
        pid = register(cases, n, window)
        issue(cases, pid, f"函-{n}-1", date(2026, 12, 31), issues=2)
        issue(cases, pid, f"函-{n}-2", clock.now.date() + timedelta(days=3))
    close(cases, pid, "L1", issues=2)
    batch = notifications_from(cases.store, 0)
    applied = view._storage.apply(batch, fold)  # its storage: all of it in one batch, on purpose
    assert applied == len(batch) == view.position()
    folded = SupervisionStorage(Database("sqlite", path=":memory:"))
    try:
        folded.apply(batch, fold)
        assert view._storage.snapshot() == folded.snapshot()  # every column of every row
    finally:
        folded.close()
    assert len(view.rows()) == 6
    assert [r.status for r in view.rows() if r.project_code == code(3)] == ["closed", "open"]


@pytest.mark.parametrize("store_env", [pg.store_param("postgres")], indirect=True)
def test_a_position_moved_while_a_batch_is_folded_writes_nothing_and_resumes_there(
    view: Supervision, cases: Cases, store_env: dict[str, str]
) -> None:
    first = register(cases, 1)
    issue(cases, first, "西湖-1", date(2026, 12, 31))
    second = register(cases, 2)
    issue(cases, second, "西湖-2", date(2026, 12, 31))
    moved: list[int] = []

    def fold_while_another_applies(state: ProjectRectifications | None, event: Any) -> Any:
        if not moved:  # another process applies events 1 and 2 meanwhile
            pg.move_tracking_position(store_env, "supervision_tracking", 2)
            moved.append(2)
        return fold(state, event)

    storage = view._storage  # its storage: a batch that another process overtakes
    assert storage.apply(notifications_from(cases.store, 0), fold_while_another_applies) == 2
    assert view.position() == 4
    # The overtaken fold of events 1 to 4 wrote nothing: the first project has no row.
    assert [r.letter_no for r in letters(view, TODAY)] == ["西湖-2"]


@pytest.mark.parametrize("store_env", [pg.store_param("postgres")], indirect=True)
def test_a_position_that_keeps_moving_raises_and_writes_nothing(
    view: Supervision, cases: Cases, store_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervision_storage, "ATTEMPTS", 1)  # one overtaken attempt is all
    pid = register(cases, 1)
    issue(cases, pid, "西湖-1", date(2026, 12, 31))

    def fold_while_another_applies(state: ProjectRectifications | None, event: Any) -> Any:
        pg.move_tracking_position(store_env, "supervision_tracking", 1)
        return fold(state, event)

    storage = view._storage  # its storage: a batch that another process overtakes
    with pytest.raises(TrackingConflictError, match="kept moving"):
        storage.apply(notifications_from(cases.store, 0), fold_while_another_applies)
    assert view.position() == 1  # where the other process put it
    assert storage.snapshot() == (1, [], [])


@pytest.mark.parametrize("store_env", pg.DURABLE_STORES, indirect=True)
def test_a_follower_overtaken_by_another_process_applies_only_what_is_left(
    open_view: Callable[..., Supervision], cases: Cases
) -> None:
    first, other = open_view(), open_view()
    pid = register(cases, 1)
    assert first.process_available() == 1
    issue(cases, pid, "西湖-1", date(2026, 12, 31))
    assert other.process_available() == 1  # the other process applies event 2
    issue(cases, pid, "西湖-2", date(2026, 12, 31))
    assert first._process_batch(10) == 1  # event 3 only
    assert first._process_batch(10) == 0
    assert first.position() == other.position() == 3
    assert [r.letter_no for r in letters(first, TODAY)] == ["西湖-1", "西湖-2"]


# --- following the store ------------------------------------------------------------------------


def test_the_follower_picks_up_new_events(view: Supervision, cases: Cases) -> None:
    view.start(poll_interval=0.01)
    view.start()  # already following: nothing more
    pid = register(cases, 1)
    issue(cases, pid, "西湖-1", date(2026, 12, 31))
    assert view.catch_up(timeout=10)
    assert [r.letter_no for r in letters(view, TODAY)] == ["西湖-1"]
    view.stop()
    view.stop()


def test_the_follower_logs_failures_and_retries(
    view: Supervision,
    cases: Cases,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(follower, "RETRY_PAUSE", 0.01)
    storage = view._storage  # its storage: fail for a while
    real_apply = storage.apply
    failing = threading.Event()
    failing.set()

    def apply(batch: Batch, fold: Fold) -> int:
        if failing.is_set():
            raise ConnectionError("view storage unreachable")
        return real_apply(batch, fold)

    monkeypatch.setattr(storage, "apply", apply)
    caplog.set_level(logging.ERROR, logger="ecocase.projection")
    view.start(poll_interval=0.01)
    register(cases, 1)
    assert not view.catch_up(timeout=0.3)
    failures = [r for r in caplog.records if r.name == "ecocase.projection"]
    assert len(failures) >= 2
    assert all(r.exc_info and r.exc_info[0] is ConnectionError for r in failures)
    failing.clear()
    assert view.catch_up(timeout=10)


# --- storage layout -----------------------------------------------------------------------------


@pytest.mark.parametrize("store_env", [pg.store_param("sqlite")], indirect=True)
def test_sqlite_view_is_a_separate_file_beside_the_store(
    view: Supervision, cases: Cases, store_env: dict[str, str]
) -> None:
    pid = register(cases, 1)
    issue(cases, pid, "西湖-1", date(2026, 12, 31))
    view.process_available()
    path = Path(store_env["SQLITE_DBNAME"]).with_suffix(".supervision.sqlite")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT position FROM supervision_tracking").fetchall() == [(2,)]
        assert db.execute("SELECT letter_no, deadline FROM supervision_letters").fetchall() == [
            ("西湖-1", "2026-12-31")
        ]


@pytest.mark.parametrize("store_env", [pg.store_param("postgres")], indirect=True)
def test_postgres_view_lives_in_the_store_schema(
    view: Supervision, cases: Cases, store_env: dict[str, str]
) -> None:
    pid = register(cases, 1)
    issue(cases, pid, "西湖-1", date(2026, 12, 31))
    view.process_available()
    schema = store_env["POSTGRES_SCHEMA"]
    with pg.connect() as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        rows = conn.execute(
            f'SELECT project_id, deadline FROM "{schema}".supervision_letters'  # noqa: S608
        ).fetchall()
    assert {"supervision_letters", "supervision_projects", "supervision_tracking"} <= {
        t[0] for t in tables
    }
    assert rows == [(pid, date(2026, 12, 31))]


AWKWARD_TEXTS = ["大气预测因子不全", 'a "quoted" \\ path', "tab\tnew\nline\r\x00\x1f\x7f",
                 "\u2028\u2029\ufeff", "emoji 🌿 and \U0010ffff", ""]  # fmt: skip


@pytest.mark.parametrize("text", AWKWARD_TEXTS)
def test_the_issues_column_is_the_text_json_dumps_gave_it(text: str) -> None:
    """``issues_json`` (msgspec) writes the very text the column had from ``json.dumps``
    (compact, non-ASCII as it is), so rows written before and after compare equal as text."""
    import json  # noqa: PLC0415 - the reference, here only

    issues = [["L1-I1", "key", "expert_review", text, "open"], ["L1-I2", text, "", "x", "y"]]
    expected = json.dumps(issues, ensure_ascii=False, separators=(",", ":"))
    assert supervision_storage.issues_json(issues) == expected
    assert supervision_storage.issues_json(iter(issues)) == expected
