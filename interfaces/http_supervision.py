"""``GET /supervision/rectifications`` and ``GET /supervision/summary``: the rectification loop
(整改闭环) per letter and per window, as JSON or as exports (CSV for Excel, XLSX) with Chinese
column headers. The dashboard (:mod:`interfaces.dashboard`) renders the same data."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

import litestar
import xlsxwriter
from litestar import Controller, Request, Response
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from application.audit import FOUND_IN, SEVERITIES
from application.cases import SHANGHAI, Cases
from application.supervision import (
    LetterRow,
    Status,
    Supervision,
    WindowSummary,
    supervision_windows,
)
from domain.actor import Actor
from domain.windows import Window
from interfaces.http_audit import BOM, CSV, FORMULA_START
from interfaces.views import View

get = functools.partial(litestar.get, sync_to_thread=True)

AnyRequest = Request[Actor, Any, State]
Format = Literal["json", "csv", "xlsx"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

ISSUE_STATUS_NAMES = {
    "open": "待整改",
    "submitted": "已提交整改",
    "returned": "已退回",
    "accepted": "已通过",
}
STANDING_NAMES: dict[str, str] = {"open": "未结", "overdue": "逾期", "closed": "已结"}


# --- bodies -------------------------------------------------------------------------------------
class IssueEntry(View):
    id: str
    severity: str
    severity_name: str
    found_in: str
    found_in_name: str
    description: str
    status: str
    status_name: str


class LetterEntry(View):
    project_id: str
    project_code: str
    project_name: str
    window: str
    window_name: str
    letter_id: str
    letter_no: str
    issued_on: date
    deadline: date
    status: str  # "open" or "closed"
    standing: str  # "open", "overdue" or "closed"
    overdue: bool
    working_days_left: int | None
    days_overdue: int | None
    closed_on: date | None
    days_to_close: int | None
    open_issues: int
    issues: list[IssueEntry]


class Rectifications(View):
    today: date
    window: str | None
    status: str | None
    items: list[LetterEntry]


class WindowLine(View):
    window: str
    window_name: str
    issued: int
    open: int
    overdue: int
    closed: int
    closure_rate: float | None
    mean_days_to_close: float | None
    median_days_to_close: float | None


class SupervisionSummary(View):
    today: date
    windows: list[WindowLine]
    total: WindowLine


def letter_entry(row: LetterRow) -> LetterEntry:
    return LetterEntry(
        project_id=str(row.project_id),
        project_code=row.project_code,
        project_name=row.project_name,
        window=row.window,
        window_name=row.window_name,
        letter_id=row.letter_id,
        letter_no=row.letter_no,
        issued_on=row.issued_on,
        deadline=row.deadline,
        status=row.status,
        standing=row.standing,
        overdue=row.overdue,
        working_days_left=row.working_days_left,
        days_overdue=row.days_overdue,
        closed_on=row.closed_on,
        days_to_close=row.days_to_close,
        open_issues=row.open_issues,
        issues=[
            IssueEntry(
                id=i.id,
                severity=i.severity,
                severity_name=SEVERITIES.get(i.severity, i.severity),
                found_in=i.found_in,
                found_in_name=FOUND_IN.get(i.found_in, i.found_in),
                description=i.description,
                status=i.status,
                status_name=ISSUE_STATUS_NAMES.get(i.status, i.status),
            )
            for i in row.issues
        ],
    )


def window_line(s: WindowSummary) -> WindowLine:
    return WindowLine(
        window=s.window,
        window_name=s.window_name,
        issued=s.issued,
        open=s.open,
        overdue=s.overdue,
        closed=s.closed,
        closure_rate=s.closure_rate,
        mean_days_to_close=s.mean_days_to_close,
        median_days_to_close=s.median_days_to_close,
    )


# --- exports ------------------------------------------------------------------------------------
LETTER_HEADERS = (
    "项目ID", "项目代码", "项目名称", "窗口代码", "受理窗口", "提醒函ID", "提醒函编号", "发函日期",
    "整改期限", "状态", "是否逾期", "剩余工作日", "逾期工作日", "办结日期", "办结天数",
    "问题数", "未通过问题数", "问题明细",
)  # fmt: skip
ISSUE_HEADERS = (
    "项目代码", "项目名称", "受理窗口", "提醒函编号", "问题ID", "问题类别", "发现环节", "问题描述",
    "整改状态",
)  # fmt: skip
SUMMARY_HEADERS = (
    "窗口代码", "受理窗口", "已发函", "未结（含逾期）", "逾期", "已结", "结案率",
    "平均办结天数", "中位办结天数",
)  # fmt: skip


def _issue_text(e: LetterEntry) -> str:
    return "；".join(
        f"{i.id} {i.severity_name}/{i.found_in_name}/{i.status_name}：{i.description}"
        for i in e.issues
    )


def letter_cells(e: LetterEntry) -> list[object]:
    return [
        e.project_id, e.project_code, e.project_name, e.window, e.window_name, e.letter_id,
        e.letter_no, e.issued_on, e.deadline, STANDING_NAMES[e.standing],
        "是" if e.overdue else "否", e.working_days_left, e.days_overdue, e.closed_on,
        e.days_to_close, len(e.issues), e.open_issues, _issue_text(e),
    ]  # fmt: skip


def issue_cells(e: LetterEntry) -> Iterable[list[object]]:
    for i in e.issues:
        yield [
            e.project_code, e.project_name, e.window_name, e.letter_no, i.id, i.severity_name,
            i.found_in_name, i.description, i.status_name,
        ]  # fmt: skip


def summary_cells(line: WindowLine) -> list[object]:
    return [
        line.window, line.window_name, line.issued, line.open, line.overdue, line.closed,
        line.closure_rate, line.mean_days_to_close, line.median_days_to_close,
    ]  # fmt: skip


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, date) else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """A whole CSV: UTF-8 with a BOM (so that Excel reads the Chinese), header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows([_csv_cell(v) for v in row] for row in rows)
    return (BOM + buffer.getvalue()).encode("utf-8")


def xlsx_bytes(sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[object]]]]) -> bytes:
    """A workbook of ``(title, headers, rows)`` sheets. Text is always written as text (never
    a formula), numbers as numbers and dates as dates."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True, "bg_color": "#E8F0EC"})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    for title, headers, rows in sheets:
        sheet = book.add_worksheet(title)
        for col, header in enumerate(headers):
            sheet.write_string(0, col, header, bold)
            sheet.set_column(col, col, max(10, 2 * len(header) + 2))
        for r, row in enumerate(rows, start=1):
            for col, value in enumerate(row):
                if value is None:
                    continue
                if isinstance(value, bool):
                    sheet.write_boolean(r, col, value)
                elif isinstance(value, int | float):
                    sheet.write_number(r, col, value)
                elif isinstance(value, date):
                    sheet.write_datetime(r, col, datetime.combine(value, datetime.min.time()), day)
                else:
                    sheet.write_string(r, col, str(value))
        sheet.freeze_panes(1, 0)
    book.close()
    return out.getvalue()


def _download(content: bytes, media_type: str, name: str, suffix: str) -> Response[bytes]:
    stamp = datetime.now(tz=SHANGHAI).strftime("%Y%m%dT%H%M%S")
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.{suffix}"'},
    )


def rectifications_export(entries: Sequence[LetterEntry], format: Format) -> Response[bytes]:
    if format == "csv":
        return _download(
            csv_bytes(LETTER_HEADERS, map(letter_cells, entries)), CSV, "rectifications", "csv"
        )
    issues = [cells for e in entries for cells in issue_cells(e)]
    content = xlsx_bytes(
        [
            ("温馨提醒函", LETTER_HEADERS, [letter_cells(e) for e in entries]),
            ("问题清单", ISSUE_HEADERS, issues),
        ]
    )
    return _download(content, XLSX, "rectifications", "xlsx")


def summary_export(body: SupervisionSummary, format: Format) -> Response[bytes]:
    rows = [summary_cells(line) for line in [*body.windows, body.total]]
    if format == "csv":
        return _download(csv_bytes(SUMMARY_HEADERS, rows), CSV, "supervision-summary", "csv")
    return _download(xlsx_bytes([("整改闭环统计", SUMMARY_HEADERS, rows)]), XLSX,
                     "supervision-summary", "xlsx")  # fmt: skip


# --- reading, shared with the dashboard ---------------------------------------------------------
def read_rectifications(
    supervision: Supervision,
    actor: Actor,
    *,
    window: str | None,
    status: Status | None,
    today: date,
) -> Rectifications:
    windows = supervision_windows(actor)
    supervision.catch_up(timeout=2.0)  # read your own writes: the view follows the event store
    rows = supervision.rectifications(
        readable_windows=windows, window=window, status=status, today=today
    )
    return Rectifications(
        today=today, window=window, status=status, items=[letter_entry(r) for r in rows]
    )


def read_summary(
    supervision: Supervision, actor: Actor, *, window: str | None, today: date
) -> SupervisionSummary:
    windows = supervision_windows(actor)
    supervision.catch_up(timeout=2.0)
    lines, total = supervision.summary_with_total(
        readable_windows=windows, window=window, today=today
    )
    return SupervisionSummary(
        today=today, windows=[window_line(s) for s in lines], total=window_line(total)
    )


def _supervision(state: State) -> Supervision:
    supervision: Supervision = state.supervision
    return supervision


WindowQuery = Annotated[
    Window | None, QueryParameter(description="a window code; omitted: every window you read")
]
FormatQuery = Annotated[
    Format, QueryParameter(description="json (default), csv (UTF-8 with BOM) or xlsx")
]
ACCESS = (
    "Supervisors read their own window (the city bureau's supervisors every window), auditors "
    "and admins every window; officers are refused (403), and so is a `window` the reader does "
    "not supervise. "
)


class SupervisionController(Controller):
    path = "/supervision"
    tags = ["supervision"]  # noqa: RUF012 - litestar reads it as a class attribute
    dependencies = {"supervision": Provide(_supervision, sync_to_thread=False)}  # noqa: RUF012

    @get(
        "/rectifications",
        summary="Reminder letters with their issues, deadlines and overdue flags (整改闭环)",
        description=ACCESS
        + "`status`: `open` (not closed, overdue ones included), `overdue` (open and past the "
        "deadline) or `closed`. Open letters come first, by deadline. `working_days_left` and "
        "`days_overdue` count PRC working days (holidays and 调休 included); `days_to_close` "
        "calendar days from issue to closing. `format=csv|xlsx` exports the same letters with "
        "Chinese headers (the workbook has a second sheet, one row per issue).",
        responses={
            200: ResponseSpec(
                Rectifications,
                description="The letters (format=json), or a CSV / XLSX download",
                generate_examples=False,
            )
        },
    )
    def rectifications(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        supervision: NamedDependency[Supervision],
        window: WindowQuery = None,
        status: Annotated[
            Status | None, QueryParameter(description="open, overdue or closed")
        ] = None,
        format: FormatQuery = "json",
    ) -> Response[Rectifications] | Response[bytes]:
        body = read_rectifications(
            supervision,
            request.user,
            window=None if window is None else str(window),
            status=status,
            today=cases.today(),
        )
        if format == "json":
            return Response(body)
        return rectifications_export(body.items, format)

    @get(
        "/summary",
        summary="Per window: letters open / overdue / closed, closure rate, days to close",
        description=ACCESS
        + "One line per window the reader supervises (all 16 for city-wide readers, zeros "
        "included) and a `total` line. `open` counts every letter not closed (the overdue "
        "ones included); `closure_rate` is closed / issued (null when none was issued); "
        "`mean_days_to_close` and `median_days_to_close` are calendar days from issue to "
        "closing over the closed letters (null when none is closed).",
        responses={
            200: ResponseSpec(
                SupervisionSummary,
                description="The summary (format=json), or a CSV / XLSX download",
                generate_examples=False,
            )
        },
    )
    def summary(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        supervision: NamedDependency[Supervision],
        window: WindowQuery = None,
        format: FormatQuery = "json",
    ) -> Response[SupervisionSummary] | Response[bytes]:
        body = read_summary(
            supervision,
            request.user,
            window=None if window is None else str(window),
            today=cases.today(),
        )
        if format == "json":
            return Response(body)
        return summary_export(body, format)
