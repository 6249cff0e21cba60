"""The audit trail: a Chinese summary of every event type, one row per notification (never
two), and its filters and pages, on SQLite and on PostgreSQL (a fresh schema)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.audit import (
    AuditRecord,
    AuditTrail,
    audit_record,
    audit_windows,
    decode_cursor,
    encode_cursor,
    summary_zh,
)
from application.cases import Acting, Cases
from application.sqldb import Database
from application.store import CaseStore
from domain import errors
from domain.actor import Actor, Role
from domain.project import KeyProject
from domain.warnings import due_warnings
from domain.windows import Window
from tests import pg
from tests.application.scenario import CASE_EVENTS, work_the_case
from tests.conftest import PROJECT_CODE, SHANGHAI, Clock, register_major_project
from tests.pg import fresh_schema, store_param

CJK = re.compile(r"[\u4e00-\u9fff]")

#: Every event type of KeyProject (what the aggregate defines with @event).
EVENT_TYPES = frozenset(
    {
        "Registered",
        "EarlyInterventionStarted",
        "ProgressCheckScheduled",
        "ProgressCheckOutcomeRecorded",
        "OfficerAssigned",
        "OfficerReleased",
        "LeadHandedOver",
        "HelperDispatched",
        "HelperVisitRecorded",
        "MaterialDeferred",
        "MaterialSupplied",
        "ReminderLetterIssued",
        "RectificationSubmitted",
        "RectificationAccepted",
        "RectificationReturned",
        "ReminderLetterClosed",
        "ViolationReferred",
        "ProjectClosed",
        "AuditNoteAdded",
        "WarningRaised",
    }
)

#: The key facts each summary names (besides being Chinese), from the worked case below.
FACTS: dict[str, tuple[str, ...]] = {
    "Registered": (
        "登记重点项目「杭州湾新材料产业园一期工程」",
        f"项目代码 {PROJECT_CODE}",
        "受理窗口 西湖分局",
        "杭州某新材料有限公司",
        "市重点",
        "“千项万亿”工程项目",
    ),
    "EarlyInterventionStarted": ("提前介入", "可研", "大气、地下水专题"),
    "ProgressCheckScheduled": ("定期调度 C1", "2026-12-05"),
    "ProgressCheckOutcomeRecorded": ("C1", "可研已批复", "下次调度 C2", "2027-01-04"),
    "OfficerAssigned": ("指派",),
    "OfficerReleased": ("expert-07", "专委会换届"),
    "LeadHandedOver": ("主办", "officer-city-lead", "林接任", "officer-city-lead-2", "岗位轮换"),
    "HelperDispatched": ("助企服务员 吴助企", "helper-03", "历史遗留问题较多", "14 天"),
    "HelperVisitRecorded": ("helper-03", "现场帮扶", "危废暂存间未规范设置", "两周内复查"),
    "MaterialDeferred": ("容缺办理", "承诺"),
    "MaterialSupplied": ("M1", "已补交", "原件已核验"),
    "ReminderLetterIssued": (
        "发放温馨提醒函 杭环提〔2026〕12号，问题 2 项，整改期限 2026-12-24",
        "重点问题 1 项",
        "一般问题 1 项",
        "专家评估",
        "现场核查",
    ),
    "RectificationSubmitted": ("提交整改",),
    "RectificationAccepted": ("整改通过",),
    "RectificationReturned": ("问题 L1-I1 整改退回：缺少非正常工况",),
    "ReminderLetterClosed": ("温馨提醒函 L1", "整改闭环"),
    "ViolationReferred": (
        "涉嫌违法",
        "依法处理",
        "未批先建嫌疑",
        "《环境影响评价法》第三十一条",
        "L1-I1",
    ),
    "ProjectClosed": ("结案", "服务事项全部办结"),
    "AuditNoteAdded": ("审计备注", "全过程资料已归档"),
    "WarningRaised": ("预警",),
}

#: Summaries given in full where the wording itself is the contract.
EXACT = {
    "指派主办（许可线）陈主办（officer-city-lead）",
    "指派协办（专委会）周协办（expert-07）",
    "问题 L1-I1 整改退回：缺少非正常工况",
    "问题 L1-I1 提交整改：已补充预测（佐证材料 1 份）",
    "问题 L1-I1 整改通过：同意",
    "问题 L1-I2 整改通过",
    "容缺材料 M1 已补交：原件已核验",
    "安排定期调度 C1，应于 2026-12-05 进行",
    "容缺办理：材料「规划许可证」（市规划和自然资源局）暂缓提交（M1），"
    "理由：缺少其它行政主管部门行政许可材料，承诺 2026-12-28 前补交",
    "容缺办理：材料「节能审查意见」（市发改委）暂缓提交（M2），"
    "理由：对环评结论不产生颠覆性影响，承诺 2027-01-17 前补交",
}

OFFICER = Actor("officer-xihu-01", "王芳", Role.OFFICER, Window.XIHU)


def whole_case(store: CaseStore, clock: Clock) -> list[tuple[int, Any]]:
    """A major project through every command (each event type at least once), then its
    notifications decoded as a worker reads them: (notification id, event)."""
    cases = Cases(store, clock=clock)
    acting = Acting(OFFICER, "req-case")
    project = register_major_project(cases, Acting(OFFICER, "req-register"))
    work_the_case(cases, acting, project.id, clock)
    cases.hand_over_lead(
        acting,
        project.id,
        from_officer="officer-city-lead",
        to_officer="officer-city-lead-2",
        name="林接任",
        reason="岗位轮换",
    )
    clock.advance(timedelta(days=60))  # check C2 and material M2 are now overdue
    current = cases.get(OFFICER, project.id)
    specs = tuple(due_warnings(current, cases.today()))
    assert specs, "the worked case should have warnings due 60 days on"
    assert cases.raise_warnings(Acting(OFFICER, "req-warnings"), project.id, specs) == len(specs)
    cases.close_project(acting, project.id, summary="服务事项全部办结")
    notifications = store.recorder.select_notifications(start=1, limit=1000)
    return [(n.id, store.mapper.to_domain_event(n)) for n in notifications]


@pytest.fixture
def case_events(clock: Clock) -> Iterator[list[tuple[int, Any]]]:
    store = CaseStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        yield whole_case(store, clock)
    finally:
        store.close()


# --- summaries --------------------------------------------------------------------------------
def test_every_event_type_of_the_aggregate_is_in_the_worked_case(
    case_events: list[tuple[int, Any]],
) -> None:
    defined = {
        name
        for name in dir(KeyProject)
        if isinstance(getattr(KeyProject, name), type)
        and issubclass(getattr(KeyProject, name), KeyProject.Event)
        and name not in {"Event", "Created"}
    }
    assert defined == EVENT_TYPES, "a new event type needs its summary (and a line in FACTS)"
    assert {type(e).__name__ for _, e in case_events} == EVENT_TYPES
    assert len(case_events) >= 1 + CASE_EVENTS + 3


def test_every_summary_is_chinese_and_names_the_key_facts(
    case_events: list[tuple[int, Any]],
) -> None:
    seen: set[str] = set()
    for _, event in case_events:
        kind = type(event).__name__
        text = summary_zh(event)
        seen.add(text)
        assert CJK.search(text), f"{kind}: {text!r} is not Chinese"
        assert not text.startswith("记录事件"), f"{kind} fell back to the generic summary"
        assert kind not in text, f"{kind}: the summary should not need the class name"
        for fact in FACTS[kind]:
            assert fact in text, f"{kind}: {fact!r} not in {text!r}"
    missing = EXACT - seen
    assert not missing, f"summaries not produced word for word: {missing}"


def test_warning_summaries_quote_the_warning_in_chinese(
    case_events: list[tuple[int, Any]],
) -> None:
    warnings = [e for _, e in case_events if type(e).__name__ == "WarningRaised"]
    kinds = {str(e.warning.kind) for e in warnings}
    assert "progress_check_overdue" in kinds
    for event in warnings:
        text = summary_zh(event)
        assert event.warning.message in text
    check = next(e for e in warnings if str(e.warning.kind) == "progress_check_overdue")
    assert summary_zh(check).startswith("发出预警（定期调度逾期）：定期调度 C2")


def test_unknown_or_malformed_events_get_a_generic_summary_never_an_error() -> None:
    class Mystery:
        originator_version = 3

    assert summary_zh(Mystery()) == "记录事件 Mystery（第 3 版）"
    assert summary_zh(object()) == "记录事件 object"

    # A known type name whose fields are not what the summary expects (a future version).
    class OfficerAssigned:
        pass

    assert summary_zh(OfficerAssigned()) == "记录事件 OfficerAssigned"

    # Enum values the labels do not know yet are quoted as they are.
    class EarlyInterventionStarted:
        intervention = SimpleNamespace(stage="construction", guidance="指导")

    assert summary_zh(EarlyInterventionStarted()) == (
        "启动提前介入（construction阶段），环评编制指导：指导"
    )


def test_long_free_text_is_clipped_in_the_summary() -> None:
    class ProjectClosed:
        summary = "很长的结案说明" * 100

    text = summary_zh(ProjectClosed())
    assert text.startswith("结案：很长的结案说明")
    assert text.endswith("…")
    assert len(text) < 220


def test_audit_record_carries_the_stamp_project_and_version(
    case_events: list[tuple[int, Any]],
) -> None:
    first_id, registered = case_events[0]
    record = audit_record(first_id, registered, project_code=PROJECT_CODE, window=Window.XIHU)
    assert record == AuditRecord(
        notification_id=first_id,
        recorded_at=registered.timestamp.astimezone(UTC),
        project_id=registered.originator_id,
        project_code=PROJECT_CODE,
        window="xihu",
        version=1,
        kind="Registered",
        actor_sub="officer-xihu-01",
        actor_name="王芳",
        actor_role="officer",
        actor_unit="xihu",
        request_id="req-register",
        summary=summary_zh(registered),
    )
    assert record.recorded_at.utcoffset() == timedelta(0)
    assert type(record.window) is str

    class Unstamped:
        timestamp = datetime(2026, 12, 4, 10, tzinfo=SHANGHAI)
        originator_id = uuid4()
        originator_version = 2

    bare = audit_record(9, Unstamped(), project_code=PROJECT_CODE, window="xihu")
    assert (bare.actor_sub, bare.actor_role, bare.request_id) == (None, None, None)
    assert bare.recorded_at == datetime(2026, 12, 4, 2, tzinfo=UTC)
    assert bare.summary == "记录事件 Unstamped（第 2 版）"


# --- who reads the trail ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "unit", "windows"),
    [
        (Role.AUDITOR, Window.CITY, None),
        (Role.AUDITOR, Window.XIHU, None),
        (Role.ADMIN, Window.GONGSHU, None),
        (Role.SUPERVISOR, Window.CITY, None),
        (Role.SUPERVISOR, Window.XIHU, frozenset({"xihu"})),
        (Role.SUPERVISOR, Window.BINJIANG, frozenset({"binjiang"})),
    ],
)
def test_auditors_admins_and_supervisors_read_the_trail(
    role: Role, unit: Window, windows: frozenset[str] | None
) -> None:
    assert audit_windows(Actor("x", "某人", role, unit)) == windows


@pytest.mark.parametrize("unit", [Window.XIHU, Window.CITY])
def test_officers_may_not_read_the_trail(unit: Window) -> None:
    with pytest.raises(errors.NotAllowed, match="auditors, supervisors and admins"):
        audit_windows(Actor("x", "某人", Role.OFFICER, unit))


# --- the table, on both dialects ----------------------------------------------------------------
@pytest.fixture(params=[store_param("sqlite"), store_param("postgres")])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A workers' database: a SQLite file, or a fresh PostgreSQL schema (dropped afterwards)."""
    if request.param == "sqlite":
        database = Database("sqlite", path=str(tmp_path / "workers.sqlite"))
        try:
            yield database
        finally:
            database.close()
        return
    with fresh_schema() as schema:
        connect = {
            "dbname": pg.DBNAME,
            "host": pg.HOST,
            "port": pg.PORT,
            "user": pg.USER,
            "password": pg.PASSWORD,
        }
        database = Database("postgres", connect=connect, schema=schema)
        try:
            yield database
        finally:
            database.close()


@pytest.fixture
def trail(db: Database) -> AuditTrail:
    return AuditTrail(db)


T0 = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)  # 10:00 in Hangzhou
P1, P2, P3 = (UUID(int=n) for n in (1, 2, 3))


def make(
    n: int,
    *,
    at: datetime | None = None,
    project: UUID = P1,
    window: str = "xihu",
    actor: str | None = "officer-xihu-01",
) -> AuditRecord:
    return AuditRecord(
        notification_id=n,
        recorded_at=at or T0 + timedelta(minutes=n),
        project_id=project,
        project_code=f"2024-330100-44-01-{project.int:06d}",
        window=window,
        version=n,
        kind="AuditNoteAdded",
        actor_sub=actor,
        actor_name="王芳" if actor else None,
        actor_role="officer" if actor else None,
        actor_unit=window if actor else None,
        request_id=f"req-{n}" if actor else None,
        summary=f"添加审计备注：第 {n} 条",
    )


def put(trail: AuditTrail, *records: AuditRecord) -> list[bool]:
    with trail.db.transaction() as cursor:
        return [trail.record(cursor, r) for r in records]


def ids(records: list[AuditRecord]) -> list[int]:
    return [r.notification_id for r in records]


def test_a_record_is_stored_exactly_once(trail: AuditTrail) -> None:
    record = make(7)
    assert put(trail, record) == [True]
    assert put(trail, record) == [False]
    assert put(trail, replace(record, summary="另一个摘要")) == [False]  # the id decides
    assert trail.count() == 1
    assert trail.query()[0] == [record]


def test_a_record_is_written_in_the_callers_transaction(trail: AuditTrail) -> None:
    class CrashError(Exception):
        pass

    def record_then_crash() -> None:
        with trail.db.transaction() as cursor:
            assert trail.record(cursor, make(1))
            raise CrashError

    with pytest.raises(CrashError):
        record_then_crash()
    assert trail.count() == 0
    with trail.db.transaction() as cursor:
        assert trail.record(cursor, make(1))
        assert not trail.record(cursor, make(1))  # also within one transaction
    assert trail.count() == 1


def test_records_come_back_as_they_went_in(trail: AuditTrail) -> None:
    shanghai = make(1, at=datetime(2026, 12, 4, 10, 0, 0, 123456, tzinfo=SHANGHAI))
    bare = make(2, actor=None)
    put(trail, shanghai, bare)
    got = trail.query()[0]
    assert got == [replace(shanghai, recorded_at=datetime(2026, 12, 4, 2, 0, 0, 123456, UTC)), bare]
    assert all(r.recorded_at.utcoffset() == timedelta(0) for r in got)
    with pytest.raises(ValueError, match="time zone"), trail.db.transaction() as cursor:
        trail.record(cursor, make(3, at=datetime(2026, 12, 4, 10)))


def test_setting_up_twice_keeps_the_rows(db: Database, trail: AuditTrail) -> None:
    put(trail, make(1))
    again = AuditTrail(db)
    assert again.count() == 1


def test_filters(trail: AuditTrail) -> None:
    put(
        trail,
        make(1, project=P1, window="xihu", actor="a"),
        make(2, project=P2, window="gongshu", actor="b"),
        make(3, project=P1, window="xihu", actor="b"),
        make(4, project=P3, window="binjiang", actor=None),
        make(5, project=P2, window="gongshu", actor="a"),
    )
    assert ids(trail.query()[0]) == [1, 2, 3, 4, 5]
    assert ids(trail.query(project=P1)[0]) == [1, 3]
    assert ids(trail.query(actor="a")[0]) == [1, 5]
    assert ids(trail.query(actor="b", project=P2)[0]) == [2]
    assert ids(trail.query(windows=frozenset({"xihu", "binjiang"}))[0]) == [1, 3, 4]
    assert ids(trail.query(windows=frozenset({"xihu"}), actor="a")[0]) == [1]
    assert trail.query(windows=frozenset())[0] == []
    assert trail.query(project=uuid4())[0] == []
    # since inclusive, until exclusive; any offset names the same moment
    assert ids(trail.query(since=T0 + timedelta(minutes=2))[0]) == [2, 3, 4, 5]
    assert ids(trail.query(until=T0 + timedelta(minutes=2))[0]) == [1]
    at_10_02 = datetime(2026, 12, 4, 10, 2, tzinfo=SHANGHAI)
    window = trail.query(since=at_10_02, until=at_10_02 + timedelta(minutes=2))[0]
    assert ids(window) == [2, 3]


def test_moments_without_offset_are_refused(trail: AuditTrail) -> None:
    naive = datetime(2026, 12, 4, 10)
    with pytest.raises(errors.InvalidInput) as since:
        trail.query(since=naive)
    assert since.value.field == "since"
    with pytest.raises(errors.InvalidInput) as until:
        trail.iter_all(until=naive)
    assert until.value.field == "until"


def test_pages_follow_the_cursor_to_the_end(trail: AuditTrail) -> None:
    put(trail, *(make(n, window="xihu" if n % 3 else "gongshu") for n in range(1, 12)))
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        page, cursor = trail.query(limit=4, cursor=cursor, windows=frozenset({"xihu"}))
        seen += ids(page)
        pages += 1
        assert len(page) <= 4
        if cursor is None:
            break
    assert seen == [n for n in range(1, 12) if n % 3]
    assert pages == 2  # 8 records in pages of 4: the look-ahead row says the second is last
    exact, last = trail.query(limit=11)
    assert len(exact) == 11
    assert last is None  # a page that takes in the last record has no next cursor


@pytest.mark.parametrize("limit", [0, -1, 1001, 10**6])
def test_a_bad_limit_is_refused(trail: AuditTrail, limit: int) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        trail.query(limit=limit)
    assert refused.value.field == "limit"


@pytest.mark.parametrize("limit", [1, 1000])
def test_the_limits_edges_are_accepted(trail: AuditTrail, limit: int) -> None:
    put(trail, make(1), make(2))
    assert len(trail.query(limit=limit)[0]) == min(limit, 2)


@pytest.mark.parametrize("cursor", ["", "garbage!", "eyJhZnRlciI6LTF9", "eyJiIjoxfQ", "bnVsbA"])
def test_a_bad_cursor_is_refused(trail: AuditTrail, cursor: str) -> None:
    with pytest.raises(errors.InvalidInput) as refused:
        trail.query(cursor=cursor)
    assert refused.value.field == "cursor"
    with pytest.raises(errors.InvalidInput):
        trail.iter_all(cursor=cursor)


def test_the_cursor_is_opaque_and_round_trips() -> None:
    cursor = encode_cursor(42)
    assert "42" not in cursor
    assert decode_cursor(cursor) == 42


def test_iter_all_gives_every_match_in_batches(trail: AuditTrail) -> None:
    put(trail, *(make(n, project=P1 if n % 2 else P2) for n in range(1, 10)))
    everything = list(trail.iter_all(batch=2))
    assert ids(everything) == list(range(1, 10))
    assert everything == trail.query(limit=1000)[0]
    assert ids(list(trail.iter_all(project=P2, batch=2))) == [2, 4, 6, 8]
    assert ids(list(trail.iter_all(project=P2, batch=4))) == [2, 4, 6, 8]  # exact multiple
    after_third = trail.query(limit=3)[1]
    assert ids(list(trail.iter_all(cursor=after_third, batch=3))) == [4, 5, 6, 7, 8, 9]
    assert list(trail.iter_all(windows=frozenset())) == []


def test_real_events_are_recorded_once_each(
    trail: AuditTrail, case_events: list[tuple[int, Any]]
) -> None:
    with trail.db.transaction() as cursor:
        assert all(trail.record_event(cursor, n, e) for n, e in case_events)
    with trail.db.transaction() as cursor:  # a worker that re-processes its last batch
        assert not any(trail.record_event(cursor, n, e) for n, e in case_events)
    records = list(trail.iter_all())
    assert len(records) == len(case_events) == trail.count()
    assert [r.kind for r in records] == [type(e).__name__ for _, e in case_events]
    assert {(r.project_code, r.window) for r in records} == {(PROJECT_CODE, "xihu")}
    assert [r.version for r in records] == list(range(1, len(records) + 1))
    assert {r.request_id for r in records} == {"req-register", "req-case", "req-warnings"}
    assert all(r.summary == summary_zh(e) for r, (_, e) in zip(records, case_events, strict=True))
    project_id = case_events[0][1].originator_id
    with trail.db.transaction() as cursor:
        assert trail.known_project(cursor, project_id) == (PROJECT_CODE, "xihu")
        assert trail.known_project(cursor, uuid4()) is None


def test_an_event_of_an_unknown_project_needs_its_facts(
    trail: AuditTrail, case_events: list[tuple[int, Any]]
) -> None:
    n, later = case_events[3]
    with pytest.raises(LookupError, match="no registration"), trail.db.transaction() as cursor:
        trail.record_event(cursor, n, later)
    record = audit_record(n, later, project_code=PROJECT_CODE, window="xihu")
    assert put(trail, record) == [True]
