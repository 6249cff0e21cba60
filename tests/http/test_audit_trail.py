"""GET /audit/trail end to end: who reads it, its filters and pages, and its exports (CSV for
Excel, JSON lines), which hold the same rows as the JSON pages.

The app is ``create_app``'s, with ``app.state.audit`` holding the AuditTrail. The trail is fed
here as the audit worker feeds it: every notification of the case store, recorded once.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from application.settings import Settings
from domain.actor import Role
from domain.windows import Window
from interfaces.app import create_app
from interfaces.http_audit import (
    CSV_COLUMNS,
    AuditEntry,
    csv_lines,
    parse_moment,
)
from tests.conftest import SHANGHAI, Clock
from tests.http.support import (
    AUDITOR,
    BINJIANG_SUPERVISOR,
    CITY_SUPERVISOR,
    GONGSHU_OFFICER,
    XIHU_OFFICER,
    XIHU_SUPERVISOR,
    Api,
    Persona,
    assert_problem,
    populate,
    token_for,
)
from tests.pg import DURABLE_STORES

ADMIN = Persona("admin-01", "系统管理员", Role.ADMIN, Window.GONGSHU)
CITY_OFFICER = Persona("officer-city-01", "钱进", Role.OFFICER, Window.CITY)
TRAIL = "/audit/trail"


@pytest.fixture
def client(app_settings: Settings, clock: Clock) -> Iterator[TestClient[Litestar]]:
    """The app as create_app builds it: on the embedded default its own relay and worker
    record every event in the trail that GET /audit/trail serves."""
    app = create_app(app_settings, clock=clock, configure_logs=False)
    with TestClient(app) as test_client:
        yield test_client


def feed(client: TestClient[Litestar]) -> int:
    """Waits until the embedded workers have recorded every stored event, then records them
    all once more by hand, as a redelivering worker would; returns how many the second pass
    added (each event is recorded once, so 0) and checks the trail holds one per event."""
    app: Any = client.app
    assert app.state.workers.join(timeout_s=20), "the embedded workers did not catch up"
    store, trail = app.state.cases.store, app.state.audit
    notifications = store.recorder.select_notifications(start=1, limit=10_000)
    with trail.db.transaction() as cursor:
        again: int = sum(
            trail.record_event(cursor, n.id, store.mapper.to_domain_event(n)) for n in notifications
        )
    assert trail.count() == len(notifications)
    return again


def trail_json(
    api: Api,
    as_: Persona = AUDITOR,
    query: Mapping[str, str | int] | None = None,
    **params: str | int,
) -> list[dict[str, Any]]:
    """Every record the persona reads, following the pages (``query`` for the parameters
    whose names are Python keywords, ``from``)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        sent = {**(query or {}), **params, **({"cursor": cursor} if cursor else {})}
        r = api.get(TRAIL, as_=as_, params=sent)
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


@pytest.fixture
def world(api: Api, client: TestClient[Litestar]) -> dict[str, Any]:
    """A populated Xihu project, a Gongshu project with a reminder letter, both in the trail."""
    xihu = populate(api)
    gongshu = api.register(as_=GONGSHU_OFFICER, window=Window.GONGSHU)["id"]
    api.write(
        gongshu,
        "deferred-materials",
        {
            "material": "排水许可",
            "department": "市城管局",
            "reason": "not_decisive",
            "promised_by": "2026-12-28",
        },
        as_=GONGSHU_OFFICER,
    )
    assert feed(client) == 0
    total: int = client.app.state.audit.count()
    return {"xihu": xihu.id, "gongshu": gongshu, "total": total}


def as_text(value: Any) -> str:
    return "" if value is None else str(value)


# --- who reads it ------------------------------------------------------------------------------
@pytest.mark.parametrize("persona", [AUDITOR, ADMIN, CITY_SUPERVISOR])
def test_auditors_admins_and_the_city_supervisor_read_every_window(
    api: Api, world: dict[str, Any], persona: Persona
) -> None:
    items = trail_json(api, persona)
    assert len(items) == world["total"]
    assert {i["project_id"] for i in items} == {world["xihu"], world["gongshu"]}
    assert [i["notification_id"] for i in items] == sorted(i["notification_id"] for i in items)


def test_a_supervisor_reads_their_own_window_only(api: Api, world: dict[str, Any]) -> None:
    xihu = trail_json(api, XIHU_SUPERVISOR)
    assert xihu
    assert {i["window"] for i in xihu} == {"xihu"}
    assert {i["window_name"] for i in xihu} == {"西湖分局"}
    assert {i["project_id"] for i in xihu} == {world["xihu"]}
    assert trail_json(api, XIHU_SUPERVISOR, project=world["gongshu"]) == []
    assert trail_json(api, BINJIANG_SUPERVISOR) == []
    r = api.get(TRAIL, as_=XIHU_SUPERVISOR, params={"format": "jsonl"})
    assert r.status_code == 200
    assert [json.loads(line) for line in r.text.splitlines()] == xihu


@pytest.mark.parametrize("persona", [XIHU_OFFICER, GONGSHU_OFFICER, CITY_OFFICER])
@pytest.mark.parametrize("fmt", ["json", "csv", "jsonl"])
def test_officers_are_refused(api: Api, world: dict[str, Any], persona: Persona, fmt: str) -> None:
    body = assert_problem(api.get(TRAIL, as_=persona, params={"format": fmt}), 403, "not_allowed")
    assert "auditors, supervisors and admins" in body["detail"]


def test_without_a_token_it_is_401(api: Api) -> None:
    assert_problem(api.get(TRAIL, as_=None), 401, "not_authenticated")


# --- what a record says --------------------------------------------------------------------------
def test_records_say_who_did_what_to_which_project_when(api: Api, world: dict[str, Any]) -> None:
    items = trail_json(api, project=world["xihu"])
    first = items[0]
    assert first["kind"] == "Registered"
    assert first["version"] == 1
    assert first["project_code"]
    assert first["summary"].startswith("登记重点项目「杭州湾新材料产业园一期工程」")
    assert "受理窗口 西湖分局" in first["summary"]
    assert (first["actor_sub"], first["actor_name"], first["actor_role"], first["actor_unit"]) == (
        XIHU_OFFICER.sub,
        XIHU_OFFICER.name,
        "officer",
        "xihu",
    )
    assert first["request_id"].startswith("req-")
    recorded = datetime.fromisoformat(first["recorded_at"])
    assert recorded.utcoffset() == timedelta(hours=8)  # Asia/Shanghai
    assert [i["version"] for i in items] == list(range(1, len(items) + 1))
    kinds = [i["kind"] for i in items]
    assert kinds[:3] == ["Registered", "EarlyInterventionStarted", "ProgressCheckScheduled"]
    letter = next(i for i in items if i["kind"] == "ReminderLetterIssued")
    assert "发放温馨提醒函 杭环温提〔2026〕1号，问题 2 项，整改期限 2026-12-31" in letter["summary"]
    lead = next(i for i in items if i["kind"] == "OfficerAssigned")
    assert lead["summary"] == "指派主办（许可线）张伟（officer-xihu-02）"


# --- filters and pages ---------------------------------------------------------------------------
def test_filter_by_project_and_actor(api: Api, world: dict[str, Any]) -> None:
    everything = trail_json(api)
    gongshu = trail_json(api, project=world["gongshu"])
    assert gongshu == [i for i in everything if i["project_id"] == world["gongshu"]]
    assert len(gongshu) == 2
    by_actor = trail_json(api, actor=GONGSHU_OFFICER.sub)
    assert by_actor == gongshu
    assert trail_json(api, actor="nobody") == []
    assert trail_json(api, actor=XIHU_OFFICER.sub, project=world["gongshu"]) == []


def test_filter_by_time(api: Api, world: dict[str, Any]) -> None:
    everything = trail_json(api)
    moments = [datetime.fromisoformat(i["recorded_at"]) for i in everything]
    pivot = moments[len(moments) // 2]
    after = trail_json(api, query={"from": pivot.isoformat()})
    assert after == [i for i, m in zip(everything, moments, strict=True) if m >= pivot]
    before = trail_json(api, to=pivot.isoformat())
    assert before == [i for i, m in zip(everything, moments, strict=True) if m < pivot]
    assert len(after) + len(before) == len(everything)
    # a time without an offset is Hangzhou time; the same moment in UTC selects the same
    naive = pivot.astimezone(SHANGHAI).replace(tzinfo=None).isoformat()
    assert trail_json(api, query={"from": naive}) == after
    in_utc = pivot.astimezone(UTC).isoformat()
    assert trail_json(api, query={"from": in_utc}) == after
    # an unescaped "+08:00" arrives as " 08:00" and still means +08:00
    raw = pivot.astimezone(SHANGHAI).isoformat()
    r = api.client.get(
        f"{TRAIL}?from={raw}&limit=1000",
        headers={"Authorization": f"Bearer {token_for(AUDITOR)}"},
    )
    assert "+" in str(r.request.url)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == after
    # bare dates: from the start of the day, to its end
    day = moments[0].astimezone(SHANGHAI).date()
    whole_day = trail_json(api, query={"from": day.isoformat(), "to": day.isoformat()})
    assert whole_day == everything
    assert (
        trail_json(api, query={"from": (day + timedelta(days=1)).isoformat(), "to": str(day)}) == []
    )


def test_pages_follow_the_cursor(api: Api, world: dict[str, Any]) -> None:
    everything = trail_json(api, limit=1000)
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api.get(TRAIL, as_=AUDITOR, params=params).json()
        assert len(body["items"]) <= 3
        seen += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    assert pages == -(-len(everything) // 3)
    first = api.get(TRAIL, as_=AUDITOR).json()
    assert len(first["items"]) == len(everything)  # default limit 100 takes them all
    assert first["next_cursor"] is None


# --- exports -------------------------------------------------------------------------------------
def test_csv_export_holds_the_same_rows_as_json(api: Api, world: dict[str, Any]) -> None:
    everything = trail_json(api, limit=2)
    r = api.get(TRAIL, as_=AUDITOR, params={"format": "csv", "limit": 2})  # limit: pages only
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert ".csv" in r.headers["content-disposition"]
    assert r.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8 Chinese
    text = r.content.decode("utf-8-sig")
    assert "登记重点项目" in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1:] == [[as_text(i[c]) for c in CSV_COLUMNS] for i in everything]


def test_jsonl_export_holds_the_same_rows_as_json(api: Api, world: dict[str, Any]) -> None:
    everything = trail_json(api)
    r = api.get(TRAIL, as_=CITY_SUPERVISOR, params={"format": "jsonl"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.text.endswith("\n")
    assert [json.loads(line) for line in r.text.splitlines()] == everything


def test_exports_take_the_filters(api: Api, world: dict[str, Any]) -> None:
    gongshu = trail_json(api, project=world["gongshu"])
    r = api.get(TRAIL, as_=AUDITOR, params={"format": "jsonl", "project": world["gongshu"]})
    assert [json.loads(line) for line in r.text.splitlines()] == gongshu
    r = api.get(TRAIL, as_=AUDITOR, params={"format": "csv", "actor": "nobody"})
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    assert rows == [list(CSV_COLUMNS)]  # the header alone
    cursor = api.get(TRAIL, as_=AUDITOR, params={"limit": 2}).json()["next_cursor"]
    r = api.get(TRAIL, as_=AUDITOR, params={"format": "jsonl", "cursor": cursor})
    assert [json.loads(line) for line in r.text.splitlines()] == trail_json(api)[2:]


def test_csv_cells_that_would_be_formulas_are_neutralised() -> None:
    entry = AuditEntry(
        notification_id=1,
        recorded_at=datetime(2026, 12, 4, 10, tzinfo=SHANGHAI),
        project_id="p",
        project_code="2024-330100-44-01-123456",
        window="xihu",
        window_name="西湖分局",
        version=1,
        kind="AuditNoteAdded",
        actor_sub='=HYPERLINK("http://example.invalid")',
        actor_name="@SUM(A1)",
        actor_role=None,
        actor_unit="-1+1",
        request_id="+cmd",
        summary="添加审计备注：正常文字",
    )
    text = b"".join(csv_lines([entry])).decode("utf-8-sig")
    row = dict(zip(CSV_COLUMNS, list(csv.reader(io.StringIO(text)))[1], strict=True))
    assert row["actor_sub"] == '\'=HYPERLINK("http://example.invalid")'
    assert row["actor_name"] == "'@SUM(A1)"
    assert row["actor_unit"] == "'-1+1"
    assert row["request_id"] == "'+cmd"
    assert row["actor_role"] == ""
    assert row["summary"] == "添加审计备注：正常文字"
    assert row["recorded_at"] == "2026-12-04T10:00:00+08:00"


@pytest.mark.parametrize(
    ("text", "end_of_day", "moment"),
    [
        ("2026-12-04T10:00:00+08:00", False, datetime(2026, 12, 4, 10, tzinfo=SHANGHAI)),
        ("2026-12-04T10:00:00 08:00", False, datetime(2026, 12, 4, 10, tzinfo=SHANGHAI)),
        ("2026-12-04T02:00:00Z", False, datetime(2026, 12, 4, 10, tzinfo=SHANGHAI)),
        ("2026-12-04T10:00", False, datetime(2026, 12, 4, 10, tzinfo=SHANGHAI)),
        ("2026-12-04 08:00", False, datetime(2026, 12, 4, 8, tzinfo=SHANGHAI)),
        ("2026-12-04", False, datetime(2026, 12, 4, tzinfo=SHANGHAI)),
        ("2026-12-04", True, datetime(2026, 12, 5, tzinfo=SHANGHAI)),
        ("2026-12-04T10:00", True, datetime(2026, 12, 4, 10, tzinfo=SHANGHAI)),
        ("  ", False, None),
    ],
)
def test_times_of_the_query(text: str, end_of_day: bool, moment: datetime | None) -> None:
    parsed = parse_moment("from", text, end_of_day=end_of_day)
    assert parsed == moment
    assert parsed is None or parsed.utcoffset() is not None


# --- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-12-04 8:00"}, "from"),
        ({"to": "2026-12-04T25:00"}, "to"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJhZnRlciI6LTF9"}, "cursor"),
        ({"format": "xlsx"}, "format"),
        ({"project": "not-a-uuid"}, "project"),
        ({"format": "csv", "cursor": "not-a-cursor"}, "cursor"),
        ({"format": "jsonl", "from": "soon"}, "from"),
        ({"format": "csv", "limit": 0}, "limit"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    api: Api, world: dict[str, Any], params: dict[str, str | int], field: str
) -> None:
    assert_problem(api.get(TRAIL, as_=AUDITOR, params=params), 400, "invalid_input", field=field)


def test_the_openapi_document_describes_the_endpoint(api: Api) -> None:
    doc = api.get("/schema/openapi.json", as_=None).json()
    operation = doc["paths"][TRAIL]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"project", "actor", "from", "to", "limit", "cursor", "format"} <= names
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/AuditPage")


# --- on the stores that persist ------------------------------------------------------------------
@pytest.mark.parametrize("app_settings", DURABLE_STORES, indirect=True)
def test_on_durable_stores_json_and_csv_agree(api: Api, client: TestClient[Litestar]) -> None:
    project = populate(api)
    assert feed(client) == 0  # recorded by the worker, fed again by hand: recorded once
    total = client.app.state.audit.count()
    assert total == project.version  # populate: one project, its events
    everything = trail_json(api, limit=4)
    assert len(everything) == total
    assert {i["project_id"] for i in everything} == {project.id}
    r = api.get(TRAIL, as_=AUDITOR, params={"format": "csv"})
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"), newline="")))
    assert rows[1:] == [[as_text(i[c]) for c in CSV_COLUMNS] for i in everything]
    assert trail_json(api, XIHU_SUPERVISOR) == everything
