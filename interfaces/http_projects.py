"""The project endpoints of API.md: register, read (now / at a version / as of a moment),
history, and every service act of the notice."""

from __future__ import annotations

import functools
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, cast
from uuid import UUID

import litestar
import msgspec
from litestar import Controller, MediaType, Request, Response
from litestar._asgi.utils import is_valid_host  # Litestar's own check of the Host header
from litestar.concurrency import sync_to_thread
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from litestar.types import HTTPScope

from application.bounded import Bounded
from application.cases import SHANGHAI, Acting, Cases
from application.project_index import ProjectIndex
from domain import access, errors
from domain.actor import Actor
from domain.builder import Builder, Contact
from domain.letters import IssueSpec
from domain.project import KeyProject
from domain.tiers import Tier
from domain.windows import Window
from interfaces import schemas as s
from interfaces.auth import CachingJWTMiddleware
from interfaces.middleware import Answer, bind_actor, bind_project
from interfaces.views import (
    History,
    ProjectDiff,
    ProjectList,
    ProjectView,
    diff_view,
    history_view,
    project_list_view,
    project_view,
)

# The event store is synchronous: every handler runs in the worker thread pool.
get = functools.partial(litestar.get, sync_to_thread=True)
post = functools.partial(litestar.post, sync_to_thread=True)

IfMatch = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        required=False,
        description='The version the write expects, as the ETag gives it ("7"); 412 if stale',
    ),
]
AnyRequest = Request[Actor, Any, State]
ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,12})"?\s*$')


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    m = ETAG.match(if_match)
    if m is None:
        raise errors.InvalidInput("If-Match", 'must be a project version as in the ETag, e.g. "7"')
    return int(m.group(1))


def _acting(request: AnyRequest, if_match: str | None = None) -> Acting:
    return Acting(request.user, request.scope["state"]["request_id"], _expected_version(if_match))


def _view(
    cases: Cases, project: KeyProject, status: int = 200, *, created: str | None = None
) -> Response[ProjectView]:
    headers = {"ETag": f'"{project.version}"'}
    if status == 201:
        headers["Location"] = f"/projects/{project.id}" + (f"#{created}" if created else "")
        if created:
            headers["X-Created-Id"] = created
    return Response(project_view(project, cases.today()), status_code=status, headers=headers)


class _EncodedViews:
    """The encoded view of a project at a version on a day, for reads of cached projects: a
    project is read far more often than it changes (a supervisor's page, an officer's open
    cases), and building and encoding its view was a third of such a read. Bounded."""

    def __init__(self, maxsize: int = 1000) -> None:
        self._held: Bounded[tuple[UUID, int, date], bytes] = Bounded(maxsize)

    def body(self, project: KeyProject, today: date) -> bytes:
        key = (project.id, project.version, today)
        body = self._held.get(key)
        if body is None:
            body = _encode(project_view(project, today))
            self._held.put(key, body)
        return body

    def response(self, project: KeyProject, today: date) -> Response[ProjectView]:
        headers = {"ETag": f'"{project.version}"'}
        answer = Response(self.body(project, today), media_type=MediaType.JSON, headers=headers)
        return cast("Response[ProjectView]", answer)  # the body is a ProjectView, encoded


_encode = msgspec.json.Encoder().encode
_READ_VIEWS = _EncodedViews()


_READ_PATH = re.compile(r"/projects/([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})")


class CachedReads:
    """The shortcut (``interfaces.middleware.request_context``) of the commonest request:
    ``GET /projects/{id}`` without a query, with a bearer token whose check is kept
    (``CachingJWTMiddleware``), of a project known without a query and readable by its
    caller. It answers what :meth:`ProjectController.read` answers, the same bytes and
    headers, without Litestar's routing, middleware, hooks and dependencies, which cost more
    than half such a read's CPU; any other request (a refusal, a query, a token not checked
    yet, a project to load) goes to Litestar. ``answered`` counts the answers."""

    def __init__(self, app: litestar.Litestar, secret: str) -> None:
        self._state, self._secret = app.state, secret
        self.answered = 0

    def __call__(self, scope: HTTPScope) -> Answer | None:
        match = _READ_PATH.fullmatch(scope["path"])
        if match is None or scope["method"] != "GET" or scope["query_string"]:
            return None
        cases: Cases | None = self._state.get("cases")  # None until the lifespan has run
        actor = self._caller(scope)
        if cases is None or actor is None or scope.get("root_path"):
            return None
        project_id = UUID(match.group(1))
        try:
            project = cases.peek(actor, project_id)
        except errors.NotAllowed:
            return None  # Litestar answers the 403 (and logs the refusal)
        if project is None:
            return None
        bind_actor(actor)
        bind_project(project_id)
        body = _READ_VIEWS.body(project, cases.today())
        self.answered += 1
        headers = [
            (b"etag", b'"%d"' % project.version),
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
        ]
        return 200, headers, body

    def _caller(self, scope: HTTPScope) -> Actor | None:
        """Who sends the request, if its token's check is kept; None if Litestar must decide
        (no token or two, a token not checked yet or expired, a malformed Host)."""
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    return None
                authorization = value.decode("latin-1")
            elif name == b"host" and not is_valid_host(value):
                return None
        if authorization is None:
            return None
        return CachingJWTMiddleware.known_actor(self._secret, authorization)


class ProjectController(Controller):
    path = "/projects"
    tags = ["projects"]  # noqa: RUF012 - litestar reads it as a class attribute

    @post("/", status_code=201, summary="Register a key project (登记重点项目)")
    def register(
        self, request: AnyRequest, cases: NamedDependency[Cases], data: JSONBody[s.RegisterProject]
    ) -> Response[ProjectView]:
        b = data.builder
        contact = Contact(b.contact.name, b.contact.phone, b.contact.email) if b.contact else None
        project = cases.register(
            _acting(request),
            name=data.name,
            project_code=data.project_code,
            builder=Builder(b.name, b.credit_code, contact),
            window=data.window,
            tiers=tuple(data.tiers),
            industry=data.industry,
            location=data.location,
            two_high_one_low=data.two_high_one_low,
        )
        return _view(cases, project, 201)

    @get("/", summary="List projects (filters: window, tier, status; cursor pagination)")
    def list_projects(
        self,
        request: AnyRequest,
        index: NamedDependency[ProjectIndex],
        window: FromQuery[Window | None] = None,
        tier: FromQuery[Tier | None] = None,
        status: FromQuery[Literal["open", "closed"] | None] = None,
        limit: FromQuery[int] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> ProjectList:
        index.catch_up(timeout=2.0)  # read your own writes: the list follows the event store
        items, next_cursor = index.list(
            readable_windows=access.readable_windows(request.user),
            reader_sub=request.user.sub,
            window=window,
            tier=tier,
            status=status,
            limit=limit,
            cursor=cursor,
        )
        return project_list_view(items, next_cursor)

    @litestar.get("/{project_id:uuid}", summary="A project now, at a version, or as of a moment")
    async def read(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        version: FromQuery[int | None] = None,
        as_of: FromQuery[datetime | None] = None,
    ) -> Response[ProjectView]:
        """Answered on the event loop when the project is known without a query (the
        common case: cached, and no other process has saved it since); otherwise read in a
        worker thread, as every other endpoint that queries. Most reads of known projects
        are answered before Litestar, by :class:`CachedReads`, with the same bytes."""
        if version is None and as_of is None:
            known = cases.peek(request.user, project_id)
            if known is not None:
                return _READ_VIEWS.response(known, cases.today())
        if as_of is not None and as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=SHANGHAI)
        project = await sync_to_thread(
            cases.get, request.user, project_id, version=version, as_of=as_of
        )
        return _view(cases, project)

    @get("/{project_id:uuid}/history", summary="Every event of the project, with its actor")
    def history(
        self, request: AnyRequest, cases: NamedDependency[Cases], project_id: FromPath[UUID]
    ) -> Response[History]:
        entries = cases.history(request.user, project_id)
        project = cases.get(request.user, project_id)
        return Response(history_view(project, entries), headers={"ETag": f'"{project.version}"'})

    @get("/{project_id:uuid}/diff", summary="What changed between two versions (auditors)")
    def diff(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        from_version: Annotated[int, QueryParameter(name="from", ge=0)],
        to_version: Annotated[int, QueryParameter(name="to", ge=1)],
    ) -> ProjectDiff:
        if from_version >= to_version:
            raise errors.InvalidInput("to", "must be greater than from")
        after = cases.get(request.user, project_id, version=to_version)
        before = (
            None if from_version == 0
            else cases.get(request.user, project_id, version=from_version)
        )  # fmt: skip
        today = cases.today()
        entries = [
            e for e in cases.history(request.user, project_id)
            if from_version < e.version <= to_version
        ]  # fmt: skip
        return diff_view(
            project_id, (from_version, to_version), entries,
            msgspec.to_builtins(project_view(before, today)) if before else None,
            msgspec.to_builtins(project_view(after, today)),
        )  # fmt: skip

    # --- early intervention ---------------------------------------------------------------
    @post(
        "/{project_id:uuid}/early-intervention",
        status_code=200,
        summary="Start early intervention (提前介入, major projects)",
    )
    def start_early_intervention(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        data: JSONBody[s.StartEarlyIntervention],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.start_early_intervention(
            _acting(request, if_match), project_id, stage=data.stage, guidance=data.guidance
        )
        return _view(cases, p)

    @post(
        "/{project_id:uuid}/progress-checks",
        status_code=201,
        summary="Schedule a progress check (定期调度)",
    )
    def schedule_progress_check(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        data: JSONBody[s.ScheduleProgressCheck],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p, check_id = cases.schedule_progress_check(
            _acting(request, if_match), project_id, due_on=data.due_on
        )
        return _view(cases, p, 201, created=check_id)

    @post(
        "/{project_id:uuid}/progress-checks/{check_id:str}/outcome",
        status_code=200,
        summary="Record a progress check's outcome",
    )
    def record_check_outcome(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        check_id: FromPath[str],
        data: JSONBody[s.RecordCheckOutcome],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.record_check_outcome(
            _acting(request, if_match),
            project_id,
            check_id,
            summary=data.summary,
            next_due_on=data.next_due_on,
        )
        return _view(cases, p)

    # --- officer network ------------------------------------------------------------------
    @post(
        "/{project_id:uuid}/officers",
        status_code=201,
        summary="Assign an officer (专人对接, major projects)",
    )
    def assign_officer(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        data: JSONBody[s.AssignOfficer],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.assign_officer(
            _acting(request, if_match),
            project_id,
            officer=data.officer,
            name=data.name,
            role=data.role,
        )
        return _view(cases, p, 201, created=data.officer)

    @post(
        "/{project_id:uuid}/officers/{officer:str}/release",
        status_code=200,
        summary="Release an officer from the case",
    )
    def release_officer(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        officer: FromPath[str],
        data: JSONBody[s.ReleaseOfficer],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.release_officer(
            _acting(request, if_match), project_id, officer, reason=data.reason
        )
        return _view(cases, p)

    @post(
        "/{project_id:uuid}/officers/{officer:str}/hand-over",
        status_code=200,
        summary="Hand the lead (主办) over to another officer in one step",
    )
    def hand_over_lead(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        officer: FromPath[str],
        data: JSONBody[s.HandOverLead],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.hand_over_lead(
            _acting(request, if_match),
            project_id,
            from_officer=officer,
            to_officer=data.to_officer,
            name=data.name,
            reason=data.reason,
        )
        return _view(cases, p)

    # --- helper-enterprise service --------------------------------------------------------
    @post(
        "/{project_id:uuid}/helpers",
        status_code=201,
        summary="Dispatch a helper-enterprise service officer (助企服务员)",
    )
    def dispatch_helper(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        data: JSONBody[s.DispatchHelper],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.dispatch_helper(
            _acting(request, if_match),
            project_id,
            helper=data.helper,
            name=data.name,
            reason=data.reason,
            visit_every_days=data.visit_every_days,
        )
        return _view(cases, p, 201, created=data.helper)

    @post("/{project_id:uuid}/helper-visits", status_code=201, summary="Record a helper visit")
    def record_helper_visit(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        data: JSONBody[s.RecordHelperVisit],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p, visit_id = cases.record_helper_visit(
            _acting(request, if_match),
            project_id,
            helper=data.helper,
            visited_on=data.visited_on,
            kind=data.kind,
            findings=data.findings,
            follow_ups=data.follow_ups,
        )
        return _view(cases, p, 201, created=visit_id)

    # --- deficiency-tolerant acceptance ---------------------------------------------------
    @post(
        "/{project_id:uuid}/deferred-materials",
        status_code=201,
        summary="Defer a material (容缺办理)",
    )
    def defer_material(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        data: JSONBody[s.DeferMaterial],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p, material_id = cases.defer_material(
            _acting(request, if_match),
            project_id,
            material=data.material,
            department=data.department,
            reason=data.reason,
            promised_by=data.promised_by,
        )
        return _view(cases, p, 201, created=material_id)

    @post(
        "/{project_id:uuid}/deferred-materials/{material_id:str}/supplied",
        status_code=200,
        summary="Mark a deferred material supplied",
    )
    def supply_material(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        material_id: FromPath[str],
        data: JSONBody[s.SupplyMaterial],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.supply_material(
            _acting(request, if_match), project_id, material_id, note=data.note
        )
        return _view(cases, p)

    # --- reminder letters and rectification -----------------------------------------------
    @post(
        "/{project_id:uuid}/reminder-letters",
        status_code=201,
        summary="Issue a reminder letter (温馨提醒函)",
    )
    def issue_reminder_letter(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        data: JSONBody[s.IssueReminderLetter],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p, letter_id = cases.issue_reminder_letter(
            _acting(request, if_match),
            project_id,
            letter_no=data.letter_no,
            deadline=data.deadline,
            issues=tuple(
                IssueSpec(i.severity, i.found_in, i.description, i.requirement) for i in data.issues
            ),
        )
        return _view(cases, p, 201, created=letter_id)

    @post(
        "/{project_id:uuid}/reminder-letters/{letter_id:str}/issues/{issue_id:str}/rectification",
        status_code=200,
        summary="Submit an issue's rectification",
    )
    def submit_rectification(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        letter_id: FromPath[str],
        issue_id: FromPath[str],
        data: JSONBody[s.SubmitRectification],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.submit_rectification(
            _acting(request, if_match),
            project_id,
            letter_id,
            issue_id,
            summary=data.summary,
            evidence=tuple(data.evidence),
        )
        return _view(cases, p)

    @post(
        "/{project_id:uuid}/reminder-letters/{letter_id:str}/issues/{issue_id:str}/accept",
        status_code=200,
        summary="Accept an issue's rectification",
    )
    def accept_rectification(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        letter_id: FromPath[str],
        issue_id: FromPath[str],
        data: JSONBody[s.AcceptRectification],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.accept_rectification(
            _acting(request, if_match), project_id, letter_id, issue_id, comment=data.comment
        )
        return _view(cases, p)

    @post(
        "/{project_id:uuid}/reminder-letters/{letter_id:str}/issues/{issue_id:str}/return",
        status_code=200,
        summary="Return an issue's rectification",
    )
    def return_rectification(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        letter_id: FromPath[str],
        issue_id: FromPath[str],
        data: JSONBody[s.ReturnRectification],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.return_rectification(
            _acting(request, if_match), project_id, letter_id, issue_id, reason=data.reason
        )
        return _view(cases, p)

    @post(
        "/{project_id:uuid}/reminder-letters/{letter_id:str}/close",
        status_code=200,
        summary="Close a reminder letter (all issues accepted)",
    )
    def close_reminder_letter(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        letter_id: FromPath[str],
        data: JSONBody[s.CloseLetter],  # noqa: ARG002 - the body is {} by contract
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.close_reminder_letter(_acting(request, if_match), project_id, letter_id)
        return _view(cases, p)

    # --- violations, closure, audit notes -------------------------------------------------
    @post(
        "/{project_id:uuid}/violations",
        status_code=201,
        summary="Refer a suspected violation (依法处理, 包容审慎监管)",
    )
    def refer_violation(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        data: JSONBody[s.ReferViolation],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p, referral_id = cases.refer_violation(
            _acting(request, if_match),
            project_id,
            description=data.description,
            legal_basis=data.legal_basis,
            letter_id=data.letter_id,
            issue_id=data.issue_id,
        )
        return _view(cases, p, 201, created=referral_id)

    @post("/{project_id:uuid}/close", status_code=200, summary="Close the case")
    def close_project(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        data: JSONBody[s.CloseProject],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.close_project(_acting(request, if_match), project_id, summary=data.summary)
        return _view(cases, p)

    @post(
        "/{project_id:uuid}/audit-notes",
        status_code=201,
        summary="Add an audit note (allowed also on a closed case)",
    )
    def add_audit_note(
        self,
        request: AnyRequest,
        cases: NamedDependency[Cases],
        project_id: FromPath[UUID],
        data: JSONBody[s.AddAuditNote],
        if_match: IfMatch = None,
    ) -> Response[ProjectView]:
        p = cases.add_audit_note(_acting(request, if_match), project_id, note=data.note)
        return _view(cases, p, 201)
