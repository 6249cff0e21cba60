"""``GET /supervision/rectifications`` and ``GET /supervision/summary`` end to end: figures for
seeded letters across windows, who reads which windows, CSV and XLSX exports with Chinese
headers; and the dashboard's session, pages and exports without a browser (the browser test is
tests/browser/test_dashboard.py)."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import httpx
import jwt
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from domain.actor import Role
from domain.windows import Window
from tests import pg
from tests.conftest import SHANGHAI, Clock
from tests.http.support import (
    AUDITOR,
    BINJIANG_SUPERVISOR,
    CITY_SUPERVISOR,
    GONGSHU_OFFICER,
    SECRET,
    XIHU_OFFICER,
    XIHU_SUPERVISOR,
    Api,
    Persona,
    assert_problem,
    letter_body,
    token_for,
)

ADMIN = Persona("admin-01", "管理员", Role.ADMIN, Window.CITY)
WINDOW_COUNT = 16


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=SHANGHAI)


def letter(api: Api, pid: str, no: str, deadline: date, *, as_: Persona, issues: int = 2) -> str:
    body = letter_body(no, issues=issues) | {"deadline": deadline.isoformat()}
    view = api.write(pid, "reminder-letters", body, as_=as_)
    letter_id: str = next(le["id"] for le in view["reminder_letters"] if le["letter_no"] == no)
    return letter_id


def close_letter(api: Api, pid: str, letter_id: str, *, as_: Persona, issues: int = 2) -> None:
    base = f"reminder-letters/{letter_id}"
    for n in range(1, issues + 1):
        issue = f"{base}/issues/{letter_id}-I{n}"
        api.write(pid, f"{issue}/rectification", {"summary": "已整改", "evidence": []}, as_=as_)
        api.write(pid, f"{issue}/accept", {}, as_=as_)
    api.write(pid, f"{base}/close", {}, as_=as_)


@dataclass(frozen=True)
class Seeded:
    xihu: str
    gongshu: str
    binjiang: str


def seed(api: Api, clock: Clock) -> Seeded:
    """Four letters in three windows; read on 2026-12-14 (a Monday):
    xihu: 西湖-1 closed on 12-08 (4 days), 西湖-2 open, due 12-31;
    gongshu: 拱墅-1 overdue (due 12-09), one issue submitted;
    binjiang: 滨江-1 closed on 12-11 (7 days) after a returned issue."""
    clock.set(at(date(2026, 12, 4)))
    xihu = api.register(as_=XIHU_OFFICER)["id"]
    gongshu = api.register(as_=GONGSHU_OFFICER, window=Window.GONGSHU)["id"]
    binjiang = api.register(as_=BINJIANG_SUPERVISOR, window=Window.BINJIANG)["id"]
    x1 = letter(api, xihu, "西湖-1", date(2026, 12, 18), as_=XIHU_OFFICER)
    letter(api, xihu, "西湖-2", date(2026, 12, 31), as_=XIHU_OFFICER)
    g1 = letter(api, gongshu, "拱墅-1", date(2026, 12, 9), as_=GONGSHU_OFFICER, issues=1)
    b1 = letter(api, binjiang, "滨江-1", date(2026, 12, 31), as_=BINJIANG_SUPERVISOR, issues=1)
    clock.set(at(date(2026, 12, 8)))
    close_letter(api, xihu, x1, as_=XIHU_OFFICER)
    issue = f"reminder-letters/{g1}/issues/{g1}-I1"
    api.write(gongshu, f"{issue}/rectification", {"summary": "已整改", "evidence": []},
              as_=GONGSHU_OFFICER)  # fmt: skip
    b_issue = f"reminder-letters/{b1}/issues/{b1}-I1"
    api.write(binjiang, f"{b_issue}/rectification", {"summary": "初稿", "evidence": []},
              as_=BINJIANG_SUPERVISOR)  # fmt: skip
    api.write(binjiang, f"{b_issue}/return", {"reason": "证据不足"}, as_=BINJIANG_SUPERVISOR)
    clock.set(at(date(2026, 12, 11)))
    close_letter(api, binjiang, b1, as_=BINJIANG_SUPERVISOR, issues=1)
    clock.set(at(date(2026, 12, 14)))
    return Seeded(xihu, gongshu, binjiang)


def rectifications(api: Api, as_: Persona = CITY_SUPERVISOR, **params: str) -> dict[str, Any]:
    r = api.get("/supervision/rectifications", as_=as_, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def summary(api: Api, as_: Persona = CITY_SUPERVISOR, **params: str) -> dict[str, Any]:
    r = api.get("/supervision/summary", as_=as_, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def line_of(body: dict[str, Any], window: str) -> dict[str, Any]:
    found: dict[str, Any] = next(w for w in body["windows"] if w["window"] == window)
    return found


# --- the figures -------------------------------------------------------------------------------


def test_letters_carry_issues_deadlines_and_overdue_flags(api: Api, clock: Clock) -> None:
    s = seed(api, clock)
    body = rectifications(api)
    assert (body["today"], body["window"], body["status"]) == ("2026-12-14", None, None)
    items = body["items"]
    assert [i["letter_no"] for i in items] == ["拱墅-1", "西湖-2", "西湖-1", "滨江-1"]
    g1, x2, x1, b1 = items
    assert g1 | {"issues": None} == g1 | {
        "project_id": s.gongshu,
        "project_name": "杭州湾新材料产业园一期工程",
        "window": "gongshu",
        "window_name": "拱墅分局",
        "letter_id": "L1",
        "issued_on": "2026-12-04",
        "deadline": "2026-12-09",
        "status": "open",
        "standing": "overdue",
        "overdue": True,
        "working_days_left": 0,
        "days_overdue": 3,  # 10, 11 and 14 December
        "closed_on": None,
        "days_to_close": None,
        "open_issues": 1,
        "issues": None,
    }
    assert g1["issues"] == [
        {
            "id": "L1-I1",
            "severity": "key",
            "severity_name": "重点问题",
            "found_in": "expert_review",
            "found_in_name": "专家评估",
            "description": "问题1：环评报告书大气预测章节数据不完整",
            "status": "submitted",
            "status_name": "已提交整改",
        }
    ]
    assert (x2["standing"], x2["overdue"], x2["working_days_left"], x2["days_overdue"]) == (
        "open",
        False,
        13,  # 15 to 31 December, weekdays
        0,
    )
    assert [i["status"] for i in x2["issues"]] == ["open", "open"]
    assert (x1["standing"], x1["closed_on"], x1["days_to_close"], x1["working_days_left"]) == (
        "closed",
        "2026-12-08",
        4,
        None,
    )
    assert (b1["window_name"], b1["days_to_close"], b1["issues"][0]["status"]) == (
        "高新区（滨江）分局",
        7,
        "accepted",
    )


def test_status_and_window_filters(api: Api, clock: Clock) -> None:
    seed(api, clock)

    def nos(**params: str) -> list[str]:
        return [i["letter_no"] for i in rectifications(api, CITY_SUPERVISOR, **params)["items"]]

    assert nos(status="open") == ["拱墅-1", "西湖-2"]  # the overdue one included
    assert nos(status="overdue") == ["拱墅-1"]
    assert nos(status="closed") == ["西湖-1", "滨江-1"]
    assert nos(window="xihu") == ["西湖-2", "西湖-1"]
    assert nos(window="xihu", status="closed") == ["西湖-1"]
    assert nos(window="city") == []
    body = rectifications(api, window="gongshu", status="overdue")
    assert (body["window"], body["status"]) == ("gongshu", "overdue")


def test_the_summary_gives_every_window_with_rates_and_days(api: Api, clock: Clock) -> None:
    seed(api, clock)
    body = summary(api)
    assert body["today"] == "2026-12-14"
    assert len(body["windows"]) == WINDOW_COUNT
    assert [w["window"] for w in body["windows"]][:4] == ["city", "shangcheng", "gongshu", "xihu"]
    assert line_of(body, "xihu") == {
        "window": "xihu",
        "window_name": "西湖分局",
        "issued": 2,
        "open": 1,
        "overdue": 0,
        "closed": 1,
        "closure_rate": 0.5,
        "mean_days_to_close": 4.0,
        "median_days_to_close": 4.0,
    }
    g = line_of(body, "gongshu")
    assert (g["issued"], g["open"], g["overdue"], g["closed"], g["closure_rate"]) == (
        1,
        1,
        1,
        0,
        0.0,
    )
    assert g["median_days_to_close"] is None
    assert line_of(body, "binjiang")["closure_rate"] == 1.0
    city = line_of(body, "city")
    assert (city["issued"], city["closure_rate"], city["median_days_to_close"]) == (0, None, None)
    assert body["total"] == {
        "window": "all",
        "window_name": "合计",
        "issued": 4,
        "open": 2,
        "overdue": 1,
        "closed": 2,
        "closure_rate": 0.5,
        "mean_days_to_close": 5.5,
        "median_days_to_close": 5.5,
    }
    (only,) = summary(api, window="xihu")["windows"]
    assert only == line_of(body, "xihu")


def test_a_write_shows_at_once(api: Api, clock: Clock) -> None:
    pid = api.register(as_=XIHU_OFFICER)["id"]
    assert rectifications(api, as_=XIHU_SUPERVISOR)["items"] == []
    letter(api, pid, "西湖-1", date(2026, 12, 31), as_=XIHU_OFFICER)
    assert [i["letter_no"] for i in rectifications(api, as_=XIHU_SUPERVISOR)["items"]] == ["西湖-1"]
    assert summary(api, as_=XIHU_SUPERVISOR)["total"]["open"] == 1


# --- who reads what ----------------------------------------------------------------------------


def test_supervisors_read_their_window_the_city_bureau_all(api: Api, clock: Clock) -> None:
    seed(api, clock)
    xihu = summary(api, as_=XIHU_SUPERVISOR)
    assert [w["window"] for w in xihu["windows"]] == ["xihu"]
    assert xihu["total"]["issued"] == 2
    assert {i["window"] for i in rectifications(api, as_=XIHU_SUPERVISOR)["items"]} == {"xihu"}
    assert [w["window"] for w in summary(api, as_=BINJIANG_SUPERVISOR)["windows"]] == ["binjiang"]
    for reader in (CITY_SUPERVISOR, AUDITOR, ADMIN):
        assert len(summary(api, as_=reader)["windows"]) == WINDOW_COUNT
        assert len(rectifications(api, as_=reader)["items"]) == 4
    for path in ("/supervision/rectifications", "/supervision/summary"):
        assert_problem(
            api.get(path, as_=XIHU_SUPERVISOR, params={"window": "gongshu"}), 403, "not_allowed"
        )


@pytest.mark.parametrize(
    "path",
    [
        "/supervision/rectifications",
        "/supervision/summary",
        "/supervision/rectifications?format=csv",
        "/supervision/summary?format=xlsx",
    ],
)
def test_officers_are_refused(api: Api, path: str) -> None:
    body = assert_problem(api.get(path, as_=XIHU_OFFICER), 403, "not_allowed")
    assert "officer" in body["detail"]
    assert_problem(api.get(path, as_=None), 401)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/supervision/rectifications", {"window": "atlantis"}, "window"),
        ("/supervision/rectifications", {"status": "pending"}, "status"),
        ("/supervision/rectifications", {"format": "pdf"}, "format"),
        ("/supervision/summary", {"window": "atlantis"}, "window"),
        ("/supervision/summary", {"format": "pdf"}, "format"),
    ],
)
def test_bad_queries_are_400_naming_the_field(
    api: Api, path: str, params: dict[str, str], field: str
) -> None:
    assert_problem(api.get(path, as_=CITY_SUPERVISOR, params=params), 400, field=field)


# --- exports ------------------------------------------------------------------------------------


def csv_rows(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert response.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def _column(ref: str) -> int:
    n = 0
    for ch in ref:
        if not ch.isalpha():
            break
        n = n * 26 + ord(ch) - 64
    return n - 1


def xlsx_sheets(response: httpx.Response) -> dict[str, list[list[str | None]]]:
    """The workbook's sheets as rows of cell text (shared strings resolved)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    with zipfile.ZipFile(io.BytesIO(response.content)) as z:
        strings_xml = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))  # noqa: S314
        shared = ["".join(t.text or "" for t in si.iter(f"{MAIN}t")) for si in strings_xml]
        book = ElementTree.fromstring(z.read("xl/workbook.xml"))  # noqa: S314
        names = [s.get("name") or "" for s in book.iter(f"{MAIN}sheet")]
        sheets: dict[str, list[list[str | None]]] = {}
        for n, name in enumerate(names, start=1):
            root = ElementTree.fromstring(z.read(f"xl/worksheets/sheet{n}.xml"))  # noqa: S314
            rows: list[list[str | None]] = []
            for row in root.iter(f"{MAIN}row"):
                cells: dict[int, str | None] = {}
                for c in row.iter(f"{MAIN}c"):
                    v = c.find(f"{MAIN}v")
                    text = None if v is None else v.text
                    if c.get("t") == "s" and text is not None:
                        text = shared[int(text)]
                    cells[_column(c.get("r") or "A")] = text
                rows.append([cells.get(i) for i in range(max(cells) + 1)])
            sheets[name] = rows
    return sheets


def excel_day(serial: str | None) -> date:
    assert serial is not None
    return date(1899, 12, 30) + timedelta(days=int(float(serial)))


def test_rectifications_export_as_csv_with_chinese_headers(api: Api, clock: Clock) -> None:
    s = seed(api, clock)
    rows = csv_rows(api.get("/supervision/rectifications", as_=AUDITOR, params={"format": "csv"}))
    header, *lines = rows
    assert header[:10] == [
        "项目ID", "项目代码", "项目名称", "窗口代码", "受理窗口", "提醒函ID", "提醒函编号",
        "发函日期", "整改期限", "状态",
    ]  # fmt: skip
    assert header[10:] == [
        "是否逾期", "剩余工作日", "逾期工作日", "办结日期", "办结天数", "问题数", "未通过问题数",
        "问题明细",
    ]  # fmt: skip
    assert [line[6] for line in lines] == ["拱墅-1", "西湖-2", "西湖-1", "滨江-1"]
    g1 = dict(zip(header, lines[0], strict=True))
    assert g1["项目ID"] == s.gongshu
    assert (g1["受理窗口"], g1["整改期限"], g1["状态"], g1["是否逾期"]) == (
        "拱墅分局",
        "2026-12-09",
        "逾期",
        "是",
    )
    assert (g1["剩余工作日"], g1["逾期工作日"], g1["办结日期"], g1["未通过问题数"]) == (
        "0",
        "3",
        "",
        "1",
    )
    assert g1["问题明细"].startswith("L1-I1 重点问题/专家评估/已提交整改：问题1")
    x1 = dict(zip(header, lines[2], strict=True))
    assert (x1["状态"], x1["办结日期"], x1["办结天数"]) == ("已结", "2026-12-08", "4")
    filtered = csv_rows(
        api.get(
            "/supervision/rectifications",
            as_=XIHU_SUPERVISOR,
            params={"format": "csv", "status": "closed"},
        )
    )
    assert [line[6] for line in filtered[1:]] == ["西湖-1"]


def test_summary_export_as_csv_and_xlsx(api: Api, clock: Clock) -> None:
    seed(api, clock)
    header, *lines = csv_rows(
        api.get("/supervision/summary", as_=CITY_SUPERVISOR, params={"format": "csv"})
    )
    assert header == [
        "窗口代码", "受理窗口", "已发函", "未结（含逾期）", "逾期", "已结", "结案率",
        "平均办结天数", "中位办结天数",
    ]  # fmt: skip
    assert len(lines) == WINDOW_COUNT + 1
    assert lines[3] == ["xihu", "西湖分局", "2", "1", "0", "1", "0.5", "4.0", "4.0"]
    assert lines[0] == ["city", "杭州市生态环境局", "0", "0", "0", "0", "", "", ""]
    assert lines[-1] == ["all", "合计", "4", "2", "1", "2", "0.5", "5.5", "5.5"]

    sheets = xlsx_sheets(
        api.get("/supervision/summary", as_=CITY_SUPERVISOR, params={"format": "xlsx"})
    )
    (rows,) = sheets.values()
    assert list(sheets) == ["整改闭环统计"]
    assert rows[0] == header
    assert rows[4][:7] == ["xihu", "西湖分局", "2", "1", "0", "1", "0.5"]
    assert rows[-1][:2] == ["all", "合计"]


def test_rectifications_export_as_xlsx_with_an_issue_sheet(api: Api, clock: Clock) -> None:
    seed(api, clock)
    sheets = xlsx_sheets(
        api.get("/supervision/rectifications", as_=ADMIN, params={"format": "xlsx"})
    )
    assert list(sheets) == ["温馨提醒函", "问题清单"]
    letters, issues = sheets["温馨提醒函"], sheets["问题清单"]
    assert letters[0][:7] == ["项目ID", "项目代码", "项目名称", "窗口代码", "受理窗口",
                              "提醒函ID", "提醒函编号"]  # fmt: skip
    assert [r[6] for r in letters[1:]] == ["拱墅-1", "西湖-2", "西湖-1", "滨江-1"]
    g1 = letters[1]
    assert (excel_day(g1[7]), excel_day(g1[8]), g1[9]) == (
        date(2026, 12, 4),
        date(2026, 12, 9),
        "逾期",
    )
    assert g1[12] == "3"  # days overdue, a number
    assert issues[0] == ["项目代码", "项目名称", "受理窗口", "提醒函编号", "问题ID", "问题类别",
                         "发现环节", "问题描述", "整改状态"]  # fmt: skip
    assert len(issues) == 1 + 2 + 1 + 2 + 1
    assert issues[1][2:] == [
        "拱墅分局", "拱墅-1", "L1-I1", "重点问题", "专家评估",
        "问题1：环评报告书大气预测章节数据不完整", "已提交整改",
    ]  # fmt: skip


def test_a_text_cell_that_looks_like_a_formula_stays_text(api: Api) -> None:
    pid = api.register(as_=XIHU_OFFICER)["id"]
    letter(api, pid, "=HYPERLINK(1)", date(2026, 12, 31), as_=XIHU_OFFICER)
    rows = csv_rows(api.get("/supervision/rectifications", as_=AUDITOR, params={"format": "csv"}))
    assert rows[1][6] == "'=HYPERLINK(1)"
    sheets = xlsx_sheets(
        api.get("/supervision/rectifications", as_=AUDITOR, params={"format": "xlsx"})
    )
    assert sheets["温馨提醒函"][1][6] == "=HYPERLINK(1)"  # a string cell, not a formula


@pytest.mark.parametrize("app_settings", pg.DURABLE_STORES, indirect=True)
def test_supervision_on_the_durable_stores(api: Api, clock: Clock) -> None:
    seed(api, clock)
    assert summary(api)["total"] == summary(api, as_=AUDITOR)["total"]
    assert summary(api)["total"]["issued"] == 4
    assert [i["letter_no"] for i in rectifications(api, status="overdue")["items"]] == ["拱墅-1"]


# --- the dashboard without a browser ------------------------------------------------------------


def login(client: TestClient[Litestar], persona: Persona) -> httpx.Response:
    return client.get(
        "/dashboard/login", params={"token": token_for(persona)}, follow_redirects=False
    )


def test_login_sets_a_strict_http_only_session_cookie(client: TestClient[Litestar]) -> None:
    assert client.get("/dashboard").status_code == 401  # no bearer token needed: a page
    r = login(client, CITY_SUPERVISOR)
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"ecocase_dashboard={token_for(CITY_SUPERVISOR)};")
    parts = {p.strip().split("=")[0].lower() for p in cookie.split(";")}
    assert {"httponly", "path", "samesite", "max-age"} <= parts
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/dashboard" in cookie
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "整改闭环督办" in page.text
    assert "孙丽" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    out = client.get("/dashboard/logout")
    assert out.status_code == 200
    assert client.get("/dashboard").status_code == 401


def signed(secret: str = SECRET, *, hours: float = 1, role: str = "supervisor") -> str:
    """A JWT as ``ecocase token`` makes (claims sub, name, role, unit), signed with ``secret``."""
    now = datetime.now(tz=UTC)
    claims = {"sub": "supervisor-city-01", "name": "孙丽", "role": role, "unit": "city"}
    times = {"iat": int((now - timedelta(hours=2)).timestamp()),
             "exp": int((now + timedelta(hours=hours)).timestamp())}  # fmt: skip
    return jwt.encode(claims | times, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        signed("another-secret-of-32-characters-or-more!"),
        signed(hours=-1),
        signed(role="mayor"),
        "",
    ],
    ids=["garbage", "foreign-secret", "expired", "unknown-role", "empty"],
)
def test_a_bad_token_gets_no_session(client: TestClient[Litestar], token: str) -> None:
    r = client.get("/dashboard/login", params={"token": token}, follow_redirects=False)
    assert r.status_code == 401
    assert "set-cookie" not in r.headers
    assert "登录失败" in r.text
    forged = client.get("/dashboard", headers={"Cookie": f"ecocase_dashboard={token}"})
    assert forged.status_code == 401


def test_an_officer_session_is_refused(client: TestClient[Litestar]) -> None:
    assert login(client, XIHU_OFFICER).status_code == 303
    page = client.get("/dashboard")
    assert page.status_code == 403
    assert "无权查看" in page.text
    assert client.get("/dashboard/export", params={"format": "csv"}).status_code == 403


def test_the_page_shows_the_summary_and_links_letters_to_history(
    api: Api, client: TestClient[Litestar], clock: Clock
) -> None:
    s = seed(api, clock)
    login(client, XIHU_SUPERVISOR)
    page = client.get("/dashboard").text
    assert 'data-window="xihu"' in page
    assert 'data-window="gongshu"' not in page  # not this supervisor's window
    assert f'href="/dashboard/projects/{s.xihu}"' in page
    assert "西湖-2" in page
    assert "50.0%" in page
    history = client.get(f"/dashboard/projects/{s.xihu}")
    assert history.status_code == 200
    assert "登记重点项目" in history.text
    assert "发放温馨提醒函" in history.text
    assert "提醒函整改闭环" in history.text
    assert "王芳" in history.text  # who recorded the events
    assert client.get(f"/dashboard/projects/{s.gongshu}").status_code == 403
    assert client.get("/dashboard", params={"window": "gongshu"}).status_code == 403
    assert client.get("/dashboard", params={"status": "nonsense"}).status_code == 400
    unknown = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/dashboard/projects/{unknown}").status_code == 404


def test_dashboard_exports_use_the_session(
    api: Api, client: TestClient[Litestar], clock: Clock
) -> None:
    seed(api, clock)
    login(client, CITY_SUPERVISOR)
    rows = csv_rows(
        client.get("/dashboard/export", params={"kind": "rectifications", "format": "csv",
                                                "status": "overdue"})
    )  # fmt: skip
    assert [r[6] for r in rows[1:]] == ["拱墅-1"]
    sheets = xlsx_sheets(
        client.get("/dashboard/export", params={"kind": "summary", "format": "xlsx"})
    )
    assert len(sheets["整改闭环统计"]) == 1 + WINDOW_COUNT + 1


def test_dashboard_assets_are_served_locally(client: TestClient[Litestar]) -> None:
    r = client.get("/static/dashboard/dashboard.css")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/css")
    login(client, CITY_SUPERVISOR)
    page = client.get("/dashboard").text
    assert 'href="/static/dashboard/dashboard.css"' in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page
