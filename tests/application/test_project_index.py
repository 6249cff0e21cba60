"""The project list read model: filters, pagination, access, and exactly-once tracking on
POPO, SQLite and PostgreSQL (a fresh schema per test)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from application import follower, project_index, project_index_storage
from application.cases import Acting, Cases
from application.project_index import ProjectIndex, ProjectSummary, encode_cursor
from application.project_index_storage import Batch, Fold, MemoryStorage
from application.sqldb import TrackingConflictError
from application.store import CaseStore
from domain.actor import Actor, Role
from domain.builder import Builder, Contact
from domain.errors import InvalidInput
from domain.letters import FoundIn, IssueSpec, Severity
from domain.officers import OfficerRole
from domain.tiers import Tier
from domain.windows import Window
from tests import pg
from tests.conftest import CREDIT_CODE, Clock

XIHU = Actor("officer-xihu-01", "王芳", Role.OFFICER, Window.XIHU)
ADMIN = Actor("admin-01", "管理员", Role.ADMIN, Window.CITY)
MAJOR = (Tier.CITY_KEY, Tier.QIANXIANG_WANYI)
DISTRICT = (Tier.DISTRICT_KEY,)


def code(n: int) -> str:
    return f"2024-330100-44-01-{n:06d}"


def register(
    cases: Cases,
    n: int,
    *,
    window: Window = Window.XIHU,
    tiers: tuple[Tier, ...] = MAJOR,
    actor: Actor = XIHU,
) -> UUID:
    project = cases.register(
        Acting(actor, f"req-{n}"),
        name=f"重点项目{n}",
        project_code=code(n),
        builder=Builder(
            name="杭州某新材料有限公司",
            credit_code=CREDIT_CODE,
            contact=Contact(name="李四", phone="0571-85085326", email="lisi@example.cn"),
        ),
        window=window,
        tiers=tiers,
        industry="新材料制造",
        location="杭州市西湖区三墩镇",
        two_high_one_low=False,
    )
    return project.id


def issue_letter(cases: Cases, project_id: UUID, clock: Clock, letter_no: str) -> str:
    _, letter_id = cases.issue_reminder_letter(
        Acting(ADMIN, "req-letter"),
        project_id,
        letter_no=letter_no,
        deadline=clock().date() + timedelta(days=10),
        issues=(IssueSpec(Severity.KEY, FoundIn.DOCUMENT_REVIEW, "缺少附图", "补充附图"),),
    )
    return letter_id


def close_letter(cases: Cases, project_id: UUID, letter_id: str) -> None:
    acting = Acting(ADMIN, "req-close-letter")
    issue_id = f"{letter_id}-I1"
    cases.submit_rectification(
        acting, project_id, letter_id, issue_id, summary="已补充", evidence=("附图.pdf",)
    )
    cases.accept_rectification(acting, project_id, letter_id, issue_id, comment=None)
    cases.close_reminder_letter(acting, project_id, letter_id)


def assign(cases: Cases, project_id: UUID, officer: str, role: OfficerRole) -> None:
    cases.assign_officer(
        Acting(ADMIN, "req-assign"), project_id, officer=officer, name="张三", role=role
    )


def everything(index: ProjectIndex) -> list[ProjectSummary]:
    return index.list(readable_windows=None, limit=200)[0]


def ids(items: list[ProjectSummary]) -> list[UUID]:
    return [s.id for s in items]


@pytest.fixture
def open_index(
    store: CaseStore, store_env: dict[str, str]
) -> Iterator[Callable[[CaseStore | None], ProjectIndex]]:
    """Opens ProjectIndexes on the store's backend (another on the same view storage, as another
    process would); all are closed at teardown, before the store and its schema go."""
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


# --- the rows and the filters ------------------------------------------------------------


def test_an_empty_store_gives_an_empty_list(index: ProjectIndex) -> None:
    assert index.process_available() == 0
    assert index.position() == 0
    assert index.catch_up(timeout=0.1)
    assert index.list(readable_windows=None) == ([], None)


def test_each_event_updates_the_summary(index: ProjectIndex, cases: Cases, clock: Clock) -> None:
    pid = register(cases, 1)
    assert index.process_available() == 1
    (row,) = everything(index)
    assert (row.id, row.name, row.project_code, row.window) == (pid, "重点项目1", code(1), "xihu")
    assert row.tiers == ("city_key", "qianxiang_wanyi")
    assert (row.status, row.is_major, row.open_letters, row.officers) == ("open", True, 0, ())
    assert row.version == 1
    assert row.registered_at == row.updated_at
    assert row.registered_at.utcoffset() == timedelta(0)

    first = issue_letter(cases, pid, clock, "杭环提〔2026〕1号")
    issue_letter(cases, pid, clock, "杭环提〔2026〕2号")
    assign(cases, pid, "officer-a", OfficerRole.LEAD)
    assign(cases, pid, "officer-b", OfficerRole.JOINT)
    index.process_available()
    (row,) = everything(index)
    assert (row.open_letters, row.officers, row.version) == (2, ("officer-a", "officer-b"), 5)

    close_letter(cases, pid, first)  # three events: submitted, accepted, closed
    cases.release_officer(Acting(ADMIN, "req"), pid, "officer-a", reason="调岗")
    index.process_available()
    (row,) = everything(index)
    assert (row.open_letters, row.officers, row.version) == (1, ("officer-b",), 9)
    assert row.updated_at > row.registered_at
    assert row.updated_at == cases.store.get_project(pid).modified_on
    assert row.version == cases.store.get_project(pid).version
    assert index.position() == cases.store.recorder.max_notification_id()


def test_filters_by_window_tier_and_status(index: ProjectIndex, cases: Cases) -> None:
    xihu_major = register(cases, 1)
    xihu_district = register(cases, 2, tiers=DISTRICT)
    binjiang = register(cases, 3, window=Window.BINJIANG, tiers=(Tier.PROVINCIAL_KEY,), actor=ADMIN)
    cases.close_project(Acting(XIHU, "req-close"), xihu_district, summary="办结")
    index.process_available()

    def listed(**filters: Any) -> list[UUID]:
        return ids(index.list(readable_windows=None, **filters)[0])

    assert listed() == [xihu_major, xihu_district, binjiang]
    assert listed(window="xihu") == [xihu_major, xihu_district]
    assert listed(window="binjiang") == [binjiang]
    assert listed(window="city") == []
    assert listed(tier="district_key") == [xihu_district]
    assert listed(tier="city_key") == [xihu_major]
    assert listed(tier="provincial_key") == [binjiang]
    assert listed(status="closed") == [xihu_district]
    assert listed(status="open") == [xihu_major, binjiang]
    assert listed(window="xihu", status="open", tier="qianxiang_wanyi") == [xihu_major]
    assert listed(window="binjiang", status="closed") == []
    (closed,) = index.list(readable_windows=None, status="closed")[0]
    assert (closed.is_major, closed.status, closed.version) == (False, "closed", 2)


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"window": "atlantis"}, "window"),
        ({"tier": "global_key"}, "tier"),
        ({"status": "pending"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": True}, "limit"),
        ({"cursor": "not a cursor!"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": "W10"}, "cursor"),  # base64 of "[]"
        ({"cursor": "WyIyMDI2LTEyLTA0VDEwOjAwOjAwIiwgIngiXQ"}, "cursor"),  # ["2026-...", "x"]
    ],
)
def test_bad_filters_are_invalid_input(
    index: ProjectIndex, filters: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        index.list(readable_windows=None, **filters)
    assert raised.value.field == field


def test_pages_follow_registration_order_with_a_stable_cursor(
    index: ProjectIndex, cases: Cases
) -> None:
    registered = [register(cases, n) for n in range(1, 8)]
    index.process_available()

    page1, cursor1 = index.list(readable_windows=None, limit=3)
    assert cursor1 is not None
    register(cases, 8)  # registered later: it sorts last and does not shift the pages
    index.process_available()
    page2, cursor2 = index.list(readable_windows=None, limit=3, cursor=cursor1)
    assert cursor2 is not None
    assert index.list(readable_windows=None, limit=3, cursor=cursor1) == (page2, cursor2)
    page3, cursor3 = index.list(readable_windows=None, limit=3, cursor=cursor2)
    assert cursor3 is None

    pages = page1 + page2 + page3
    assert [len(page1), len(page2), len(page3)] == [3, 3, 2]
    assert ids(pages)[:7] == registered
    assert len(set(ids(pages))) == 8
    assert pages == sorted(pages, key=lambda s: (s.registered_at, s.id))
    assert pages == everything(index)
    # A page that ends exactly at the last project has no next cursor.
    assert index.list(readable_windows=None, limit=2, cursor=encode_cursor(pages[5]))[1] is None


def test_readable_windows_and_assigned_officers(index: ProjectIndex, cases: Cases) -> None:
    xihu = register(cases, 1)
    binjiang = register(cases, 2, window=Window.BINJIANG, actor=ADMIN)
    other = register(cases, 3, window=Window.BINJIANG, actor=ADMIN)
    assign(cases, binjiang, "officer-xihu-01", OfficerRole.JOINT)
    index.process_available()

    def readable(windows: frozenset[str] | None, sub: str | None, **filters: Any) -> list[UUID]:
        return ids(index.list(readable_windows=windows, reader_sub=sub, **filters)[0])

    assert readable(None, None) == [xihu, binjiang, other]
    assert readable(frozenset({"xihu"}), None) == [xihu]
    assert readable(frozenset({"xihu"}), "officer-xihu-01") == [xihu, binjiang]
    assert readable(frozenset({"xihu"}), "officer-xihu-01", window="binjiang") == [binjiang]
    assert readable(frozenset({"xihu"}), "someone-else") == [xihu]
    assert readable(frozenset({"binjiang"}), None) == [binjiang, other]
    assert readable(frozenset({"xihu", "binjiang"}), None) == [xihu, binjiang, other]
    assert readable(frozenset(), "officer-xihu-01") == [binjiang]
    assert readable(frozenset(), None) == []
    # What domain.access.readable_windows gives: Window members (StrEnum) work as their values.
    assert readable(frozenset({Window.XIHU}), None, window=Window.XIHU, tier=Tier.CITY_KEY) == [
        xihu
    ]

    cases.release_officer(Acting(ADMIN, "req"), binjiang, "officer-xihu-01", reason="调岗")
    index.process_available()
    assert readable(frozenset({"xihu"}), "officer-xihu-01") == [xihu]


# --- exactly once ------------------------------------------------------------------------


def notifications_from(store: CaseStore, start: int) -> Batch:
    found = store.recorder.select_notifications(start=start, limit=1000)
    return [(n.id, store.mapper.to_domain_event(n)) for n in found]


def test_reprocessing_applied_positions_changes_nothing(
    index: ProjectIndex, cases: Cases, clock: Clock
) -> None:
    pid = register(cases, 1)
    issue_letter(cases, pid, clock, "杭环提〔2026〕1号")
    assert index.process_available() == 2
    before = everything(index)
    storage = index._storage  # its storage: apply an old batch again, on purpose
    assert storage.apply(notifications_from(cases.store, 1), project_index.summarise) == 0
    assert storage.apply(notifications_from(cases.store, 2), project_index.summarise) == 0
    assert everything(index) == before
    assert index.position() == 2

    issue_letter(cases, pid, clock, "杭环提〔2026〕2号")
    # A batch that overlaps what was applied applies only the new event.
    assert storage.apply(notifications_from(cases.store, 1), project_index.summarise) == 1
    (row,) = everything(index)
    assert (row.open_letters, row.version) == (2, 3)
    assert index.process_available() == 0
    assert everything(index) == [row]


@pytest.mark.parametrize("store_env", pg.DURABLE_STORES, indirect=True)
def test_a_second_index_on_the_same_view_applies_nothing_twice(
    open_index: Callable[[CaseStore | None], ProjectIndex], cases: Cases, clock: Clock
) -> None:
    first = open_index(None)
    pid = register(cases, 1)
    issue_letter(cases, pid, clock, "杭环提〔2026〕1号")
    assert first.process_available() == 2
    second = open_index(None)
    assert second.position() == 2
    assert second.process_available() == 0
    assert everything(second) == everything(first)
    (row,) = everything(second)
    assert row.open_letters == 1


@pytest.mark.parametrize("store_env", pg.DURABLE_STORES, indirect=True)
def test_racing_indexes_apply_each_event_once(
    open_index: Callable[[CaseStore | None], ProjectIndex], cases: Cases, clock: Clock
) -> None:
    pids = [register(cases, n) for n in range(1, 6)]
    for n, pid in enumerate(pids):
        issue_letter(cases, pid, clock, f"杭环提〔2026〕{n}号")
    racers = [open_index(None) for _ in range(3)]
    applied: list[int] = []
    barrier = threading.Barrier(len(racers))

    def race(index: ProjectIndex) -> None:
        barrier.wait()
        applied.append(sum(index._process_batch(2) for _ in range(10)))

    threads = [threading.Thread(target=race, args=(r,)) for r in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(applied) == 10
    assert all(s.open_letters == 1 and s.version == 2 for s in everything(racers[0]))


def test_a_failing_batch_rolls_back_rows_and_position(
    index: ProjectIndex, cases: Cases, clock: Clock
) -> None:
    pid = register(cases, 1)
    index.process_available()
    issue_letter(cases, pid, clock, "杭环提〔2026〕1号")
    register(cases, 2)

    def crash_on_second(row: ProjectSummary | None, event: Any) -> ProjectSummary | None:
        if event.originator_version == 1:
            raise RuntimeError("crash between events")
        return project_index.summarise(row, event)

    storage = index._storage  # its storage: crash in the middle of a batch
    with pytest.raises(RuntimeError, match="crash between events"):
        storage.apply(notifications_from(cases.store, 2), crash_on_second)
    assert index.position() == 1
    (row,) = everything(index)
    assert (row.open_letters, row.version) == (0, 1)
    assert index.process_available() == 2
    assert [s.open_letters for s in everything(index)] == [1, 0]


@pytest.mark.parametrize("store_env", pg.DURABLE_STORES, indirect=True)
def test_a_restarted_index_resumes_from_its_recorded_position(
    open_index: Callable[[CaseStore | None], ProjectIndex],
    open_store: Callable[[], CaseStore],
    cases: Cases,
    clock: Clock,
) -> None:
    first = open_index(None)
    first.start(poll_interval=0.01)
    pid = register(cases, 1)
    issue_letter(cases, pid, clock, "杭环提〔2026〕1号")
    assert first.catch_up(timeout=10)
    first.stop()  # the process goes down; more is recorded meanwhile
    issue_letter(cases, pid, clock, "杭环提〔2026〕2号")
    register(cases, 2)

    restarted = open_index(open_store())  # a new process: its own store and index
    assert restarted.position() == 2
    assert restarted.process_available() == 2
    assert [(s.open_letters, s.version) for s in everything(restarted)] == [(2, 3), (0, 1)]


def test_one_batch_of_many_projects_writes_every_row(
    index: ProjectIndex, cases: Cases, clock: Clock
) -> None:
    pids = [register(cases, n, window=w, tiers=t, actor=ADMIN) for n, w, t in (
        (1, Window.XIHU, DISTRICT), (2, Window.BINJIANG, MAJOR), (3, Window.XIHU, MAJOR),
    )]  # fmt: skip
    issue_letter(cases, pids[0], clock, "杭环提〔2026〕1号")
    assign(cases, pids[1], "officer-binjiang-01", OfficerRole.LEAD)
    issue_letter(cases, pids[2], clock, "杭环提〔2026〕2号")
    issue_letter(cases, pids[2], clock, "杭环提〔2026〕3号")
    batch = notifications_from(cases.store, 0)
    assert index._storage.apply(batch, project_index.summarise) == 7  # one batch, on purpose
    folded = MemoryStorage()
    folded.apply(batch, project_index.summarise)
    assert index._storage.snapshot() == folded.snapshot()  # every column of every row
    assert index.position() == 7
    assert [(s.open_letters, s.officers) for s in everything(index)] == [
        (1, ()), (0, ("officer-binjiang-01",)), (2, ()),
    ]  # fmt: skip


@pytest.mark.parametrize("store_env", [pg.store_param("postgres")], indirect=True)
def test_a_position_moved_while_a_batch_is_folded_writes_nothing_and_resumes_there(
    index: ProjectIndex, cases: Cases, store_env: dict[str, str]
) -> None:
    register(cases, 1)
    register(cases, 2)
    third = register(cases, 3)
    moved: list[int] = []

    def fold_while_another_applies(row: ProjectSummary | None, event: Any) -> Any:
        if not moved:  # another process applies events 1 and 2 meanwhile
            pg.move_tracking_position(store_env, "project_index_tracking", 2)
            moved.append(2)
        return project_index.summarise(row, event)

    storage = index._storage  # its storage: a batch that another process overtakes
    assert storage.apply(notifications_from(cases.store, 0), fold_while_another_applies) == 1
    assert index.position() == 3
    assert ids(everything(index)) == [third]  # the overtaken fold of events 1 to 3 wrote nothing


@pytest.mark.parametrize("store_env", [pg.store_param("postgres")], indirect=True)
def test_a_position_that_keeps_moving_raises_and_writes_nothing(
    index: ProjectIndex, cases: Cases, store_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(project_index_storage, "ATTEMPTS", 1)  # one overtaken attempt is all
    register(cases, 1)
    register(cases, 2)

    def fold_while_another_applies(row: ProjectSummary | None, event: Any) -> Any:
        pg.move_tracking_position(store_env, "project_index_tracking", 1)
        return project_index.summarise(row, event)

    storage = index._storage  # its storage: a batch that another process overtakes
    with pytest.raises(TrackingConflictError, match="kept moving"):
        storage.apply(notifications_from(cases.store, 0), fold_while_another_applies)
    assert index.position() == 1  # where the other process put it
    assert everything(index) == []


@pytest.mark.parametrize("store_env", pg.DURABLE_STORES, indirect=True)
def test_a_follower_overtaken_by_another_process_applies_only_what_is_left(
    open_index: Callable[[CaseStore | None], ProjectIndex], cases: Cases, clock: Clock
) -> None:
    first, other = open_index(None), open_index(None)
    pid = register(cases, 1)
    assert first.process_available() == 1
    issue_letter(cases, pid, clock, "杭环提〔2026〕1号")
    register(cases, 2)
    assert other.process_available() == 2  # the other process applies events 2 and 3
    issue_letter(cases, pid, clock, "杭环提〔2026〕2号")
    assert first._process_batch(10) == 1  # event 4 only
    assert first._process_batch(10) == 0
    assert first.position() == other.position() == 4
    assert [(s.open_letters, s.version) for s in everything(first)] == [(2, 3), (0, 1)]


# --- following the store -----------------------------------------------------------------


def test_the_follower_picks_up_new_events(index: ProjectIndex, cases: Cases, clock: Clock) -> None:
    index.start(poll_interval=0.01)
    index.start()  # already following: nothing more
    pid = register(cases, 1)
    assert index.catch_up(timeout=10)
    assert ids(everything(index)) == [pid]
    issue_letter(cases, pid, clock, "杭环提〔2026〕1号")
    register(cases, 2)
    assert index.catch_up(timeout=10)
    assert [s.open_letters for s in everything(index)] == [1, 0]
    index.stop()
    index.stop()


def test_the_follower_logs_failures_and_retries(
    index: ProjectIndex,
    cases: Cases,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(follower, "RETRY_PAUSE", 0.01)
    storage = index._storage  # its storage: fail for a while
    real_apply = storage.apply
    failing = threading.Event()
    failing.set()

    def apply(batch: Batch, fold: Fold) -> int:
        if failing.is_set():
            raise ConnectionError("view storage unreachable")
        return real_apply(batch, fold)

    monkeypatch.setattr(storage, "apply", apply)
    caplog.set_level(logging.ERROR, logger="ecocase.projection")
    index.start(poll_interval=0.01)
    register(cases, 1)
    assert not index.catch_up(timeout=0.3)
    failures = [r for r in caplog.records if r.name == "ecocase.projection"]
    assert len(failures) >= 2
    assert all(r.exc_info and r.exc_info[0] is ConnectionError for r in failures)
    failing.clear()
    assert index.catch_up(timeout=10)
    assert len(everything(index)) == 1


def test_catch_up_without_a_follower_applies_itself(index: ProjectIndex, cases: Cases) -> None:
    register(cases, 1)
    register(cases, 2)
    assert index.catch_up(timeout=5)
    assert index.position() == 2
    assert len(everything(index)) == 2


# --- storage layout ----------------------------------------------------------------------


@pytest.mark.parametrize("store_env", [pg.store_param("sqlite")], indirect=True)
def test_sqlite_view_is_a_separate_file_beside_the_store(
    index: ProjectIndex, cases: Cases, store_env: dict[str, str]
) -> None:
    register(cases, 1)
    index.process_available()
    path = Path(store_env["SQLITE_DBNAME"]).with_suffix(".project_index.sqlite")
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT position FROM project_index_tracking").fetchall() == [(1,)]
        assert db.execute("SELECT project_code FROM project_index").fetchall() == [(code(1),)]
    with sqlite3.connect(store_env["SQLITE_DBNAME"]) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "project_index" not in tables


@pytest.mark.parametrize("store_env", [pg.store_param("postgres")], indirect=True)
def test_postgres_view_lives_in_the_store_schema(
    index: ProjectIndex, cases: Cases, store_env: dict[str, str]
) -> None:
    register(cases, 1)
    index.process_available()
    schema = store_env["POSTGRES_SCHEMA"]
    with pg.connect() as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        position = conn.execute(
            f'SELECT position FROM "{schema}".project_index_tracking'  # noqa: S608
        ).fetchall()
    assert {"project_index", "project_index_tracking"} <= {t[0] for t in tables}
    assert position == [(1,)]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "items",
    [(), ("city_key",), ("officer-xihu-01", "officer-xihu-02", "张伟"), ("",), ("a,b", '"{x}"')],
)
def test_a_text_array_sent_as_bytes_in_a_binary_copy_reads_back_as_the_tuple(
    items: tuple[str, ...],
) -> None:
    """The bulk load sends text[] columns as ready bytes (``text_array``): PostgreSQL's
    ``array_recv`` takes them as the array, element for element."""
    with pg.connect() as conn:
        conn.execute("CREATE TEMP TABLE arrays (n int, a text[] NOT NULL)")
        with conn.cursor() as cur, cur.copy("COPY arrays FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(("int4", "bytea"))
            copy.write_row((1, project_index_storage.text_array(items)))
        row = conn.execute(
            "SELECT a, a = %s::text[], array_lower(a, 1) FROM arrays", (list(items),)
        ).fetchone()
    # the same array as PostgreSQL makes of the list (dimensions and lower bound included)
    assert row == (list(items), True, 1 if items else None)
