"""HTTP response bodies (msgspec), built from the aggregate's state. Never a domain event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

import msgspec

from application.bounded import Bounded
from application.cases import SHANGHAI, HistoryEntry
from application.project_index import ProjectSummary
from domain.intervention import CheckStatus, ProgressCheck
from domain.letters import LetterStatus
from domain.materials import DeferredMaterial, MaterialStatus
from domain.officers import OfficerAssignment
from domain.project import KeyProject
from domain.windows import WINDOWS, Window, WindowInfo
from domain.working_days import working_days_between
from interfaces.diff import Change, diff

D = TypeVar("D")
V = TypeVar("V")

WINDOW_NAMES = {w.code: w.name for w in WINDOWS}


class View(msgspec.Struct, kw_only=True):
    pass


class WindowView(View):
    code: str
    name: str
    phone: str
    phone_with_area_code: str


class ContactView(View):
    name: str
    phone: str
    email: str


class BuilderView(View):
    name: str
    credit_code: str
    contact: ContactView | None


class EarlyInterventionView(View):
    stage: str
    guidance: str
    started_on: date


class ProgressCheckView(View):
    id: str
    due_on: date
    status: str
    summary: str | None
    checked_on: date | None
    overdue: bool


class OfficerView(View):
    officer: str
    name: str
    role: str
    active: bool
    assigned_on: date
    released_on: date | None
    release_reason: str | None


class HelperView(View):
    helper: str
    name: str
    reason: str
    dispatched_on: date
    visit_every_days: int


class HelperVisitView(View):
    id: str
    helper: str
    visited_on: date
    kind: str
    findings: str
    follow_ups: str | None


class DeferredMaterialView(View):
    id: str
    material: str
    department: str
    reason: str
    promised_by: date
    deferred_on: date
    status: str
    supplied_on: date | None
    note: str | None
    overdue: bool


class RectificationView(View):
    summary: str
    evidence: list[str]
    submitted_on: date


class ReviewView(View):
    accepted: bool
    comment: str | None
    reviewed_on: date


class IssueView(View):
    id: str
    severity: str
    found_in: str
    description: str
    requirement: str
    status: str
    rectifications: list[RectificationView]
    reviews: list[ReviewView]


class ReminderLetterView(View):
    id: str
    letter_no: str
    issued_on: date
    deadline: date
    status: str
    closed_on: date | None
    working_days_left: int
    days_overdue: int
    overdue: bool
    issues: list[IssueView]


class ViolationView(View):
    id: str
    description: str
    legal_basis: str | None
    referred_on: date
    letter_id: str | None
    issue_id: str | None


class AuditNoteView(View):
    note: str
    noted_on: date


class ProjectView(View):
    id: str
    version: int
    name: str
    project_code: str
    builder: BuilderView
    window: str
    window_name: str
    tiers: list[str]
    is_key: bool
    is_major: bool
    industry: str
    location: str
    two_high_one_low: bool
    status: str
    registered_at: datetime
    updated_at: datetime
    closed_on: date | None
    closing_summary: str | None
    early_intervention: EarlyInterventionView | None
    progress_checks: list[ProgressCheckView]
    officers: list[OfficerView]
    helpers: list[HelperView]
    helper_visits: list[HelperVisitView]
    deferred_materials: list[DeferredMaterialView]
    reminder_letters: list[ReminderLetterView]
    violations: list[ViolationView]
    audit_notes: list[AuditNoteView]


class ActorView(View):
    sub: str
    name: str
    role: str
    unit: str


class HistoryEvent(View):
    version: int
    type: str
    recorded_at: datetime
    actor: ActorView | None
    request_id: str | None
    data: dict[str, Any]


class History(View):
    id: str
    version: int
    events: list[HistoryEvent]


class ProjectSummaryView(View):
    id: str
    name: str
    project_code: str
    window: str
    window_name: str
    tiers: list[str]
    is_major: bool
    status: str
    open_letters: int
    version: int
    registered_at: datetime
    updated_at: datetime


class ProjectList(View):
    items: list[ProjectSummaryView]
    next_cursor: str | None


def project_list_view(items: list[ProjectSummary], next_cursor: str | None) -> ProjectList:
    return ProjectList(
        items=[
            ProjectSummaryView(
                id=str(p.id),
                name=p.name,
                project_code=p.project_code,
                window=p.window,
                window_name=WINDOW_NAMES[Window(p.window)],
                tiers=list(p.tiers),
                is_major=p.is_major,
                status=p.status,
                open_letters=p.open_letters,
                version=p.version,
                registered_at=p.registered_at.astimezone(SHANGHAI),
                updated_at=p.updated_at.astimezone(SHANGHAI),
            )
            for p in items
        ],
        next_cursor=next_cursor,
    )


class EventSummary(View):
    version: int
    type: str
    recorded_at: datetime
    actor: ActorView | None


class ProjectDiff(View):
    id: str
    from_version: int = msgspec.field(name="from")
    to_version: int = msgspec.field(name="to")
    events: list[EventSummary]
    changes: list[Change]


def diff_view(
    project_id: Any,
    versions: tuple[int, int],
    entries: list[HistoryEntry],
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> ProjectDiff:
    events = [
        EventSummary(
            version=e.version,
            type=e.type,
            recorded_at=e.recorded_at,
            actor=_as(ActorView, e.stamp.actor) if e.stamp else None,
        )
        for e in entries
    ]
    return ProjectDiff(
        id=str(project_id),
        from_version=versions[0],
        to_version=versions[1],
        events=events,
        changes=diff(before or {}, after),
    )


def _as(view: type[View], value: object, **extra: Any) -> Any:
    """Converts a domain value object into a view struct with the same field names."""
    return (
        msgspec.convert(value, view, from_attributes=True)
        if not extra
        else view(
            **{f: getattr(value, f) for f in view.__struct_fields__ if f not in extra}, **extra
        )
    )


def window_view(info: WindowInfo) -> WindowView:
    return WindowView(
        code=info.code, name=info.name, phone=info.phone, phone_with_area_code=f"0571-{info.phone}"
    )


class _Made:
    """Views already made of domain values, by the value's identity and the day (some fields
    count days). A project's state is copy-on-write, so from one version to the next most of
    its values are the very same objects: their views are made once. Each entry keeps its
    value alive, so an identity is never reused while it is held. Bounded, safe across
    threads."""

    def __init__(self, maxsize: int = 4_000) -> None:
        self._held: Bounded[tuple[int, date], tuple[object, Any]] = Bounded(maxsize)

    def of(self, value: D, today: date, make: Callable[[D, date], V]) -> V:
        key = (id(value), today)
        held = self._held.get(key)
        if held is not None and held[0] is value:
            made: V = held[1]
            return made
        view = make(value, today)
        self._held.put(key, (value, view))
        return view


_made = _Made()


def project_view(p: KeyProject, today: date) -> ProjectView:
    of = _made.of
    return ProjectView(
        id=str(p.id),
        version=p.version,
        name=p.name,
        project_code=p.project_code,
        builder=_as(BuilderView, p.builder),
        window=p.window,
        window_name=WINDOW_NAMES[p.window],
        tiers=list(p.tiers),
        is_key=p.is_key,
        is_major=p.is_major,
        industry=p.industry,
        location=p.location,
        two_high_one_low=p.two_high_one_low,
        status=p.status,
        registered_at=p.created_on.astimezone(SHANGHAI),
        updated_at=p.modified_on.astimezone(SHANGHAI),
        closed_on=p.closed_on,
        closing_summary=p.closing_summary,
        early_intervention=_as(EarlyInterventionView, p.early_intervention)
        if p.early_intervention
        else None,
        progress_checks=[of(c, today, _check_view) for c in p.progress_checks.values()],
        officers=[of(o, today, _officer_view) for o in p.officers],
        helpers=[of(h, today, _plain(HelperView)) for h in p.helpers.values()],
        helper_visits=[of(v, today, _plain(HelperVisitView)) for v in p.helper_visits],
        deferred_materials=[of(m, today, _material_view) for m in p.deferred_materials.values()],
        reminder_letters=[of(le, today, _letter_view) for le in p.reminder_letters.values()],
        violations=[of(v, today, _plain(ViolationView)) for v in p.violations],
        audit_notes=[of(n, today, _plain(AuditNoteView)) for n in p.audit_notes],
    )


def _plain(view: type[View]) -> Callable[[object, date], Any]:
    """One maker per view type of values shown as they are."""
    return _PLAIN.setdefault(view, lambda value, _today: _as(view, value))


_PLAIN: dict[type[Any], Callable[[object, date], Any]] = {}


def _check_view(c: ProgressCheck, today: date) -> Any:
    overdue = c.status is CheckStatus.SCHEDULED and c.due_on < today
    return _as(ProgressCheckView, c, overdue=overdue)


def _officer_view(o: OfficerAssignment, _today: date) -> Any:
    return _as(OfficerView, o, active=o.active)


def _material_view(m: DeferredMaterial, today: date) -> Any:
    overdue = m.status is MaterialStatus.DEFERRED and m.promised_by < today
    return _as(DeferredMaterialView, m, overdue=overdue)


def _letter_view(letter: Any, today: date) -> ReminderLetterView:
    is_open = letter.status is LetterStatus.OPEN
    return ReminderLetterView(
        id=letter.id,
        letter_no=letter.letter_no,
        issued_on=letter.issued_on,
        deadline=letter.deadline,
        status=letter.status,
        closed_on=letter.closed_on,
        working_days_left=working_days_between(today, letter.deadline) if is_open else 0,
        days_overdue=working_days_between(letter.deadline, today) if is_open else 0,
        overdue=is_open and letter.deadline < today,
        issues=[_as(IssueView, i) for i in letter.issues],
    )


def history_view(project: KeyProject, entries: list[HistoryEntry]) -> History:
    return History(
        id=str(project.id),
        version=project.version,
        events=[
            HistoryEvent(
                version=e.version,
                type=e.type,
                recorded_at=e.recorded_at,
                actor=_as(ActorView, e.stamp.actor) if e.stamp else None,
                request_id=e.stamp.request_id if e.stamp else None,
                data=msgspec.to_builtins(e.data),
            )
            for e in entries
        ],
    )
