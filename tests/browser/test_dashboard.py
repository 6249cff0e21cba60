"""The supervisors' page in a real browser: Debian's headless Chromium, driven by Playwright,
against the whole service run by uvicorn on a free loopback port (SQLite in a tmp folder).

Seeded through the HTTP API on a settable clock (letters open, overdue and closed in several
windows), the page must show the figures ``GET /supervision/summary`` gives, its window and
status filters must change the tables, and a letter must link to its project's history page.
A screenshot of the page is saved to test-artifacts/dashboard.png. Never skipped: without
/usr/bin/chromium (``apt-get install chromium``, which .ci/run does) the test fails.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from domain.actor import Role
from domain.windows import Window
from interfaces.app import create_app
from tests.conftest import SHANGHAI, Clock
from tests.http.support import (
    CITY_SUPERVISOR,
    Persona,
    letter_body,
    new_project_code,
    project_body,
    settings_for,
    token_for,
)

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
READ_ON = date(2026, 12, 4)  # a Friday


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=SHANGHAI)


# --- the service, live --------------------------------------------------------------------------


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread of the test process: none
        pass


@dataclass(frozen=True)
class Live:
    base: str
    clock: Clock


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The app under uvicorn in a thread, on a loopback port of its own, SQLite in tmp_path."""
    clock = Clock(at(date(2026, 11, 2)))
    app = create_app(settings_for("sqlite", tmp_path / "data"), clock=clock, configure_logs=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if server.started:
                break
            thread.join(0.05)
        assert server.started, "uvicorn did not start within 15 s"
        yield Live(f"http://127.0.0.1:{port}", clock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


# --- seeding through the API ------------------------------------------------------------------


def officer(window: Window, name: str) -> Persona:
    return Persona(f"officer-{window}-01", name, Role.OFFICER, window)


class Seeder:
    def __init__(self, live: Live) -> None:
        self.live = live
        self.http = httpx.Client(base_url=live.base, timeout=30)

    def call(self, method: str, path: str, as_: Persona, json: Any = None) -> dict[str, Any]:
        r = self.http.request(
            method, path, json=json, headers={"Authorization": f"Bearer {token_for(as_)}"}
        )
        assert r.status_code in (200, 201), f"{method} {path}: {r.status_code} {r.text}"
        body: dict[str, Any] = r.json()
        return body

    def project(self, who: Persona, name: str) -> str:
        body = project_body(new_project_code(), window=who.unit, name=name)
        pid: str = self.call("POST", "/projects", who, body)["id"]
        return pid

    def letter(self, who: Persona, pid: str, no: str, deadline: date, issues: int = 2) -> str:
        body = letter_body(no, issues=issues) | {"deadline": deadline.isoformat()}
        view = self.call("POST", f"/projects/{pid}/reminder-letters", who, body)
        letter_id: str = next(le["id"] for le in view["reminder_letters"] if le["letter_no"] == no)
        return letter_id

    def close(self, who: Persona, pid: str, letter_id: str, issues: int = 2) -> None:
        base = f"/projects/{pid}/reminder-letters/{letter_id}"
        for n in range(1, issues + 1):
            issue = f"{base}/issues/{letter_id}-I{n}"
            self.call("POST", f"{issue}/rectification", who, {"summary": "已整改", "evidence": []})
            self.call("POST", f"{issue}/accept", who, {"comment": "整改到位"})
        self.call("POST", f"{base}/close", who, {})

    def at(self, day: date) -> None:
        self.live.clock.set(at(day))


def seed(live: Live) -> dict[str, str]:
    """Letters in five windows, read on 2026-12-04: some closed, some open, some overdue."""
    s = Seeder(live)
    xihu, gongshu = officer(Window.XIHU, "王芳"), officer(Window.GONGSHU, "陈刚")
    binjiang, yuhang = officer(Window.BINJIANG, "周婷"), officer(Window.YUHANG, "吴磊")
    city = officer(Window.CITY, "李娜")
    s.at(date(2026, 11, 2))
    p = {
        "xihu": s.project(xihu, "西湖区生物医药产业园项目"),
        "xihu2": s.project(xihu, "之江实验室二期工程"),
        "gongshu": s.project(gongshu, "运河新城综合管廊工程"),
        "binjiang": s.project(binjiang, "滨江智慧网谷数据中心"),
        "yuhang": s.project(yuhang, "未来科技城污水处理厂扩建"),
        "city": s.project(city, "杭州市固废处置中心提升改造"),
    }
    x1 = s.letter(xihu, p["xihu"], "杭环温提〔2026〕11号", date(2026, 11, 20))
    s.letter(xihu, p["xihu"], "杭环温提〔2026〕12号", date(2026, 12, 25))
    x3 = s.letter(xihu, p["xihu2"], "杭环温提〔2026〕13号", date(2026, 11, 27), issues=1)
    s.letter(gongshu, p["gongshu"], "杭环温提〔2026〕21号", date(2026, 11, 30))
    g2 = s.letter(gongshu, p["gongshu"], "杭环温提〔2026〕22号", date(2026, 12, 18), issues=1)
    b1 = s.letter(binjiang, p["binjiang"], "杭环温提〔2026〕31号", date(2026, 11, 16))
    s.letter(yuhang, p["yuhang"], "杭环温提〔2026〕41号", date(2026, 12, 1), issues=3)
    s.letter(city, p["city"], "杭环温提〔2026〕01号", date(2026, 12, 31), issues=1)
    s.at(date(2026, 11, 12))
    s.close(binjiang, p["binjiang"], b1)
    s.at(date(2026, 11, 18))
    s.close(xihu, p["xihu"], x1)
    s.at(date(2026, 11, 26))
    s.close(xihu, p["xihu2"], x3, issues=1)
    s.at(date(2026, 12, 2))
    s.close(gongshu, p["gongshu"], g2, issues=1)
    s.at(READ_ON)
    return p


# --- reading the page -------------------------------------------------------------------------


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def days(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def api_get(live: Live, path: str, **params: str) -> dict[str, Any]:
    r = httpx.get(
        f"{live.base}{path}",
        params=params,
        headers={"Authorization": f"Bearer {token_for(CITY_SUPERVISOR)}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def cell(page: Page, window: str, field: str) -> str:
    return page.inner_text(f'#summary tr[data-window="{window}"] td[data-field="{field}"]').strip()


def assert_summary_matches(page: Page, summary: dict[str, Any]) -> None:
    shown = page.eval_on_selector_all(
        "#summary tbody tr", "rows => rows.map(r => r.dataset.window)"
    )
    assert shown == [w["window"] for w in summary["windows"]]
    for line in [*summary["windows"], summary["total"]]:
        w = line["window"]
        for field in ("issued", "open", "overdue", "closed"):
            assert cell(page, w, field) == str(line[field]), (w, field)
        assert cell(page, w, "closure_rate") == percent(line["closure_rate"]), w
        assert cell(page, w, "mean_days_to_close") == days(line["mean_days_to_close"]), w
        assert cell(page, w, "median_days_to_close") == days(line["median_days_to_close"]), w
    for line in summary["windows"]:  # the chart: one bar pair per window, the same figures
        bar = f'#chart g.bar-row[data-window="{line["window"]}"]'
        rate = page.text_content(f'{bar} text[data-field="closure_rate"]')  # SVG: no innerText
        assert rate == percent(line["closure_rate"])
        assert page.text_content(f'{bar} text[data-field="overdue"]') == str(line["overdue"])


def letter_rows(page: Page) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        "#letters tbody tr",
        "rows => rows.map(r => ({letter: r.dataset.letter, window: r.dataset.window,"
        " standing: r.dataset.standing}))",
    )
    return rows


def apply_filters(page: Page, window: str, status: str) -> None:
    page.select_option("#filter-window", window)
    page.select_option("#filter-status", status)
    with page.expect_navigation():
        page.click("#apply-filters")


def test_the_dashboard_in_chromium(live: Live, browser: Browser) -> None:
    projects = seed(live)
    summary = api_get(live, "/supervision/summary")
    everything = api_get(live, "/supervision/rectifications")["items"]
    assert summary["total"]["overdue"] >= 2 and summary["total"]["closed"] >= 3  # noqa: PT018

    context = browser.new_context(
        viewport={"width": 1440, "height": 1000}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))

    # Without a session: the page asks for a login, and no bearer token is needed for that.
    first = page.goto(f"{live.base}/dashboard")
    assert first is not None and first.status == 401  # noqa: PT018
    assert "请先登录" in page.inner_text("body")

    page.goto(f"{live.base}/dashboard/login?token={token_for(CITY_SUPERVISOR)}")
    assert urlparse(page.url).path == "/dashboard"
    assert page.title().startswith("整改闭环督办")
    assert "孙丽" in page.inner_text("header")
    session = next(c for c in context.cookies() if c["name"] == "ecocase_dashboard")
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # not readable by scripts
    css = page.evaluate("getComputedStyle(document.querySelector('header.top')).display")
    assert css == "flex"  # the local stylesheet is applied

    # The figures are the API's.
    assert page.inner_text("#today") == summary["today"] == READ_ON.isoformat()
    assert_summary_matches(page, summary)
    assert page.inner_text('[data-total="overdue"]') == str(summary["total"]["overdue"])
    assert len(letter_rows(page)) == len(everything)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # The window filter narrows both tables to that window.
    apply_filters(page, "gongshu", "")
    assert parse_qs(urlparse(page.url).query) == {"window": ["gongshu"]}
    assert_summary_matches(page, api_get(live, "/supervision/summary", window="gongshu"))
    rows = letter_rows(page)
    assert {r["window"] for r in rows} == {"gongshu"}
    assert len(rows) == len(api_get(live, "/supervision/rectifications", window="gongshu")["items"])

    # The status filter narrows the letters; the window filter goes back to all windows.
    apply_filters(page, "", "overdue")
    overdue = api_get(live, "/supervision/rectifications", status="overdue")["items"]
    rows = letter_rows(page)
    assert [r["letter"] for r in rows] == [f"{i['project_id']}/{i['letter_id']}" for i in overdue]
    assert {r["standing"] for r in rows} == {"overdue"}
    assert len(page.query_selector_all("#summary tbody tr")) == 16
    apply_filters(page, "xihu", "closed")
    rows = letter_rows(page)
    closed = api_get(live, "/supervision/rectifications", window="xihu", status="closed")
    assert len(rows) == len(closed["items"]) == 2
    assert {r["standing"] for r in rows} == {"closed"}

    # A letter links to its project's history, which shows the events with their actors.
    pid = projects["xihu"]
    with page.expect_navigation():
        page.click(f'#letters tr[data-letter^="{pid}/"] a.history')
    assert urlparse(page.url).path == f"/dashboard/projects/{pid}"
    assert page.inner_text("#project-name") == "西湖区生物医药产业园项目"
    history = httpx.get(
        f"{live.base}/projects/{pid}/history",
        headers={"Authorization": f"Bearer {token_for(CITY_SUPERVISOR)}"},
        timeout=30,
    ).json()["events"]
    kinds = page.eval_on_selector_all("#history tbody tr", "rows => rows.map(r => r.dataset.kind)")
    assert kinds == [e["type"] for e in history]
    names = [t.strip() for t in page.locator("#history td.kind").all_inner_texts()]
    assert names[:3] == ["登记重点项目", "发放温馨提醒函", "发放温馨提醒函"]
    assert "提醒函整改闭环" in names
    assert "整改通过" in names
    assert all("王芳" in a for a in page.locator("#history td.actor").all_inner_texts())
    page.screenshot(path=str(ARTIFACTS / "dashboard-history.png"), full_page=True)

    assert problems == []
    context.close()
