"""The supervisors' page (整改闭环督办) at ``/dashboard``: server-rendered (Jinja templates in
``interfaces/templates``), no JavaScript, assets served locally under ``/static/dashboard``.

A browser cannot send the API's bearer token on a link, so the page has a session of its own:
``GET /dashboard/login?token=<jwt>`` checks the token as the API does (the same secret, the same
claims, :func:`interfaces.auth.actor_from_token`), keeps it in an HttpOnly, SameSite=Strict
cookie scoped to ``/dashboard`` and redirects to the page. Every dashboard route reads the
person from that cookie, checks it again, and applies the API's access rules: the per-window
table, the chart and the letters come from the same functions as ``GET /supervision/*``, and a
letter links to its project's history at ``/dashboard/projects/{id}``. The JWT middleware
leaves ``/dashboard`` alone (``interfaces.auth.PUBLIC_PATHS``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlencode
from uuid import UUID

import litestar
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Controller, Request, Response
from litestar.datastructures import Cookie, State
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, FromQuery
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.security.jwt import Token
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler

from application.audit import summary_zh
from application.cases import SHANGHAI, Cases
from application.mapper import stamp_of
from application.supervision import STATUSES, Status, Supervision, supervision_windows
from domain import errors
from domain.actor import Actor
from domain.windows import WINDOWS, Window
from interfaces.auth import actor_from_token
from interfaces.http_supervision import (
    STANDING_NAMES,
    Format,
    LetterEntry,
    Rectifications,
    SupervisionSummary,
    WindowLine,
    read_rectifications,
    read_summary,
    rectifications_export,
    summary_export,
)
from interfaces.problems import STATUS_OF

get = functools.partial(litestar.get, sync_to_thread=True, include_in_schema=False)

HERE = Path(__file__).parent
STATIC_PATH = "/static/dashboard"
COOKIE = "ecocase_dashboard"
COOKIE_PATH = "/dashboard"
ALGORITHM = "HS256"  # as interfaces.auth.jwt_auth
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

ROLE_NAMES = {
    "officer": "经办人员",
    "supervisor": "科室/分局负责人",
    "auditor": "审计/纪检",
    "admin": "系统管理员",
}
WINDOW_NAMES = {str(w.code): w.name for w in WINDOWS}
#: Short window names for the chart's labels.
SHORT_NAMES = {
    **WINDOW_NAMES,
    "city": "市生态环境局",
    "west_lake_scenic": "西湖风景名胜区",
    "chengxi_corridor": "城西科创大走廊",
}
EVENT_NAMES = {
    "Registered": "登记重点项目",
    "EarlyInterventionStarted": "启动提前介入",
    "ProgressCheckScheduled": "安排定期调度",
    "ProgressCheckOutcomeRecorded": "记录调度情况",
    "OfficerAssigned": "指派对接人员",
    "OfficerReleased": "解除对接人员",
    "LeadHandedOver": "移交主办",
    "HelperDispatched": "派驻助企服务员",
    "HelperVisitRecorded": "记录助企走访",
    "MaterialDeferred": "容缺办理",
    "MaterialSupplied": "补交容缺材料",
    "ReminderLetterIssued": "发放温馨提醒函",
    "RectificationSubmitted": "提交整改",
    "RectificationAccepted": "整改通过",
    "RectificationReturned": "整改退回",
    "ReminderLetterClosed": "提醒函整改闭环",
    "ViolationReferred": "移交违法线索",
    "ProjectClosed": "结案",
    "AuditNoteAdded": "审计备注",
    "WarningRaised": "发出预警",
}
PROJECT_STATUS_NAMES = {"open": "办理中", "closed": "已结案"}

TEMPLATES = TemplateConfig(
    instance=JinjaTemplateEngine.from_environment(
        Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    )
)

AnyRequest = Request[Any, Any, State]


# --- the session ------------------------------------------------------------------------------
def actor_from_jwt(request: AnyRequest, encoded: str | None) -> Actor | None:
    """The person a JWT names, checked as the API checks bearer tokens; None if it is not a
    valid, unexpired token of this service naming a known role and window."""
    if not encoded:
        return None
    settings = request.app.state.settings
    try:
        token = Token.decode(encoded.strip(), settings.secret, ALGORITHM)
    except NotAuthorizedException:
        return None
    return actor_from_token(token, request)


def _expires_in(encoded: str, request: AnyRequest) -> int:
    token = Token.decode(encoded, request.app.state.settings.secret, ALGORITHM)
    return max(int((token.exp - datetime.now(tz=UTC)).total_seconds()), 0)


class Refusal(Exception):  # noqa: N818 - an HTML answer, not a programming error
    """A dashboard request answered with a message page."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


def _reader(request: AnyRequest) -> tuple[Actor, frozenset[str] | None]:
    actor = actor_from_jwt(request, request.cookies.get(COOKIE))
    if actor is None:
        raise Refusal(
            401,
            "请先登录",
            "会话不存在或已过期。请使用 ecocase token 生成的令牌访问 /dashboard/login?token=…",
        )
    try:
        return actor, supervision_windows(actor)
    except errors.NotAllowed:
        raise Refusal(
            403,
            "无权查看",
            f"整改闭环督办页面供科室/分局负责人、审计/纪检人员和管理员查看；"
            f"{ROLE_NAMES.get(str(actor.role), str(actor.role))}请在项目中查看温馨提醒函。",
        ) from None


def _message(status: int, title: str, detail: str, actor: Actor | None = None) -> Template:
    return Template(
        "message.html.j2",
        context={
            "title": title,
            "detail": detail,
            "status": status,
            "user": _user(actor),
            "static": STATIC_PATH,
        },
        status_code=status,
        headers=SECURITY_HEADERS,
    )


def _domain_refusal(exc: errors.DomainError) -> Refusal:
    status = next((s for cls, s, _ in STATUS_OF if isinstance(exc, cls)), 409)
    titles = {400: "请求有误", 403: "无权查看", 404: "未找到"}
    return Refusal(status, titles.get(status, "无法完成"), exc.detail)


def _user(actor: Actor | None) -> dict[str, str] | None:
    if actor is None:
        return None
    return {
        "name": actor.name,
        "role": ROLE_NAMES.get(str(actor.role), str(actor.role)),
        "unit": WINDOW_NAMES.get(str(actor.unit), str(actor.unit)),
    }


# --- the page's figures -----------------------------------------------------------------------
def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def days(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


@dataclass(frozen=True)
class Bar:
    window: str
    label: str
    y: float
    rate_width: float
    rate_text: str
    overdue_width: float
    overdue: int


@dataclass(frozen=True)
class Chart:
    """Geometry of the inline SVG: per window a closure-rate bar (0-100 %) and an overdue bar
    (scaled to the largest count)."""

    width: int
    height: int
    label_width: int
    rate_x: int
    rate_span: int
    overdue_x: int
    overdue_span: int
    row: int
    top: int
    overdue_max: int
    bars: tuple[Bar, ...]

    @property
    def rate_ticks(self) -> list[tuple[float, str]]:
        return [(self.rate_x + self.rate_span * f, f"{int(f * 100)}%") for f in (0, 0.5, 1)]


def chart(lines: list[WindowLine]) -> Chart:
    row, top, label_width = 34, 48, 120
    rate_x, rate_span = label_width + 10, 240
    overdue_x, overdue_span = rate_x + rate_span + 64, 150
    overdue_max = max([line.overdue for line in lines] + [1])
    bars = tuple(
        Bar(
            window=line.window,
            label=SHORT_NAMES.get(line.window, line.window_name),
            y=top + n * row,
            rate_width=round(rate_span * (line.closure_rate or 0), 1),
            rate_text=percent(line.closure_rate),
            overdue_width=round(overdue_span * line.overdue / overdue_max, 1),
            overdue=line.overdue,
        )
        for n, line in enumerate(lines)
    )
    return Chart(
        width=overdue_x + overdue_span + 40,
        height=top + row * len(lines) + 12,
        label_width=label_width,
        rate_x=rate_x,
        rate_span=rate_span,
        overdue_x=overdue_x,
        overdue_span=overdue_span,
        row=row,
        top=top,
        overdue_max=overdue_max,
        bars=bars,
    )


def deadline_note(e: LetterEntry) -> str:
    if e.standing == "closed":
        taken = f"（{e.days_to_close} 天）" if e.days_to_close is not None else ""
        return f"{e.closed_on} 办结{taken}"
    if e.overdue:
        return f"逾期 {e.days_overdue} 个工作日"
    return f"剩余 {e.working_days_left} 个工作日"


def _choice(field: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None or not value.strip():
        return None
    if value.strip() not in allowed:
        raise Refusal(400, "请求有误", f"{field} 只能是 {', '.join(allowed)} 之一")
    return value.strip()


def _filters(window: str | None, status: str | None) -> tuple[str | None, Status | None]:
    chosen = _choice("window", window, tuple(str(w) for w in Window))
    return chosen, cast("Status | None", _choice("status", status, STATUSES))


def _query(**params: str | None) -> str:
    return urlencode({k: v for k, v in params.items() if v})


def _context(
    actor: Actor,
    readable: frozenset[str] | None,
    summary: SupervisionSummary,
    letters: Rectifications,
) -> dict[str, Any]:
    window, status = letters.window, letters.status
    options = [
        {"code": str(w.code), "name": w.name}
        for w in WINDOWS
        if readable is None or str(w.code) in readable
    ]
    return {
        "user": _user(actor),
        "today": summary.today,
        "window": window or "",
        "status": status or "",
        "window_options": options,
        "status_options": [{"code": s, "name": STANDING_NAMES[s]} for s in STATUSES],
        "lines": summary.windows,
        "total": summary.total,
        "chart": chart(summary.windows),
        "letters": letters.items,
        "standing_names": STANDING_NAMES,
        "percent": percent,
        "days": days,
        "deadline_note": deadline_note,
        "static": STATIC_PATH,
        "export": {
            "letters_csv": _query(
                kind="rectifications", format="csv", window=window, status=status
            ),
            "letters_xlsx": _query(
                kind="rectifications", format="xlsx", window=window, status=status
            ),
            "summary_csv": _query(kind="summary", format="csv", window=window),
            "summary_xlsx": _query(kind="summary", format="xlsx", window=window),
        },
    }


def _history_rows(cases: Cases, actor: Actor, project_id: UUID) -> dict[str, Any]:
    project = cases.get(actor, project_id)  # checks that the actor may read it
    events = []
    for e in cases.store.history(project_id):
        kind = type(e).__name__
        stamp = stamp_of(e)
        who = None
        if stamp is not None:
            a = stamp.actor
            who = {
                "name": a.name,
                "sub": a.sub,
                "role": ROLE_NAMES.get(str(a.role), str(a.role)),
                "unit": WINDOW_NAMES.get(str(a.unit), str(a.unit)),
            }
        events.append(
            {
                "version": e.originator_version,
                "kind": kind,
                "name": EVENT_NAMES.get(kind, kind),
                "recorded_at": e.timestamp.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
                "actor": who,
                "summary": summary_zh(e),
            }
        )
    return {
        "project": {
            "id": str(project.id),
            "name": project.name,
            "code": project.project_code,
            "window": WINDOW_NAMES.get(str(project.window), str(project.window)),
            "status": PROJECT_STATUS_NAMES.get(project.status, project.status),
            "version": project.version,
        },
        "events": events,
    }


class DashboardController(Controller):
    path = "/dashboard"
    include_in_schema = False

    @get("/login")
    def login(self, request: AnyRequest, token: FromQuery[str | None] = None) -> Response[Any]:
        """Checks the token, keeps it in the session cookie and opens the page."""
        actor = actor_from_jwt(request, token)
        if actor is None or token is None:
            return _message(401, "登录失败", "令牌无效或已过期，请重新生成令牌后再试。")
        cookie = Cookie(
            key=COOKIE,
            value=token.strip(),
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=_expires_in(token.strip(), request),
        )
        return Redirect("/dashboard", status_code=303, cookies=[cookie], headers=SECURITY_HEADERS)

    @get("/logout")
    def logout(self) -> Response[Any]:
        page = _message(200, "已退出", "会话已结束。")
        page.delete_cookie(COOKIE, path=COOKIE_PATH)
        return page

    @get("/")
    def page(
        self,
        request: AnyRequest,
        window: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """The per-window table, the chart and the letters, filtered by window and status."""
        actor: Actor | None = None
        try:
            actor, readable = _reader(request)
            chosen, standing = _filters(window, status)
            supervision: Supervision = request.app.state.supervision
            today = request.app.state.cases.today()
            summary = read_summary(supervision, actor, window=chosen, today=today)
            letters = read_rectifications(
                supervision, actor, window=chosen, status=standing, today=today
            )
        except errors.DomainError as e:
            refusal = _domain_refusal(e)
            return _message(refusal.status, refusal.title, refusal.detail, actor)
        except Refusal as r:
            return _message(r.status, r.title, r.detail, actor)
        return Template(
            "dashboard.html.j2",
            context=_context(actor, readable, summary, letters),
            headers=SECURITY_HEADERS,
        )

    @get("/export")
    def export(
        self,
        request: AnyRequest,
        kind: FromQuery[Literal["rectifications", "summary"]] = "rectifications",
        format: FromQuery[Literal["csv", "xlsx"]] = "csv",
        window: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """The API's CSV and XLSX exports, for the session's person."""
        actor: Actor | None = None
        try:
            actor, _ = _reader(request)
            chosen, standing = _filters(window, status)
            supervision: Supervision = request.app.state.supervision
            today = request.app.state.cases.today()
            fmt = cast("Format", format)
            if kind == "summary":
                body = read_summary(supervision, actor, window=chosen, today=today)
                return summary_export(body, fmt)
            letters = read_rectifications(
                supervision, actor, window=chosen, status=standing, today=today
            )
            return rectifications_export(letters.items, fmt)
        except errors.DomainError as e:
            refusal = _domain_refusal(e)
            return _message(refusal.status, refusal.title, refusal.detail, actor)
        except Refusal as r:
            return _message(r.status, r.title, r.detail, actor)

    @get("/projects/{project_id:uuid}")
    def history(self, request: AnyRequest, project_id: FromPath[UUID]) -> Response[Any]:
        """A project's events, first to last, with who recorded each (in Chinese)."""
        actor: Actor | None = None
        try:
            actor, _ = _reader(request)
            cases: Cases = request.app.state.cases
            context = _history_rows(cases, actor, project_id)
        except errors.DomainError as e:
            refusal = _domain_refusal(e)
            return _message(refusal.status, refusal.title, refusal.detail, actor)
        except Refusal as r:
            return _message(r.status, r.title, r.detail, actor)
        return Template(
            "history.html.j2",
            context={**context, "user": _user(actor), "static": STATIC_PATH},
            headers=SECURITY_HEADERS,
        )


#: The dashboard's routes and its assets, for the composition root.
DASHBOARD_ROUTES: list[ControllerRouterHandler] = [
    DashboardController,
    create_static_files_router(
        path=STATIC_PATH, directories=[HERE / "static"], include_in_schema=False
    ),
]
