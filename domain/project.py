"""The key project (重点项目): one event-sourced aggregate per case.

Public methods validate and compute (including today's date, passed in); the private
``@event`` methods only apply the change, so replaying them is deterministic.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date

from eventsourcing.domain import Aggregate, event

from domain import errors
from domain.builder import Builder
from domain.credit_code import InvalidCreditCode, validate_credit_code
from domain.helper_service import HelperDispatch, HelperReason, HelperVisit, VisitKind
from domain.intervention import CheckStatus, EarlyIntervention, ProgressCheck, Stage
from domain.letters import (
    Issue,
    IssueSpec,
    IssueStatus,
    LetterStatus,
    Rectification,
    ReminderLetter,
    Review,
)
from domain.materials import DeferralReason, DeferredMaterial, MaterialStatus
from domain.officers import OfficerAssignment, OfficerRole
from domain.tiers import Tier, is_key, is_major
from domain.violations import AuditNote, ViolationReferral
from domain.warnings import RaisedWarning, WarningSpec
from domain.windows import Window

#: Namespace of project ids: a project's id is derived from its investment-project code, so
#: that two registrations of one code collide in the event store, also when they race.
PROJECT_ID_NAMESPACE = uuid.UUID("6f1c2a52-3c1e-4c55-9a43-7a1c0e5d2b10")

#: 项目代码 of the national investment-project online approval platform, e.g.
#: 2024-330100-44-01-123456 (year, division, industry, type, serial).
PROJECT_CODE = re.compile(r"^\d{4}-\d{6}-\d{2}-\d{2}-\d{6}$", re.ASCII)

DEFAULT_VISIT_EVERY_DAYS = 30


class ProjectStatus:
    OPEN = "open"
    CLOSED = "closed"


def project_id_for(project_code: str) -> uuid.UUID:
    return uuid.uuid5(PROJECT_ID_NAMESPACE, project_code)


def _text(field: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise errors.InvalidInput(field, "must not be empty")
    return value


class KeyProject(Aggregate):
    TOPIC = "ecocase.KeyProject"

    # State, declared for readers, type checkers and the snapshot decoder.
    name: str
    project_code: str
    builder: Builder
    window: Window
    tiers: tuple[Tier, ...]
    industry: str
    location: str
    two_high_one_low: bool
    status: str
    closed_on: date | None
    closing_summary: str | None
    early_intervention: EarlyIntervention | None
    progress_checks: dict[str, ProgressCheck]
    officers: tuple[OfficerAssignment, ...]
    helpers: dict[str, HelperDispatch]
    helper_visits: tuple[HelperVisit, ...]
    deferred_materials: dict[str, DeferredMaterial]
    reminder_letters: dict[str, ReminderLetter]
    violations: tuple[ViolationReferral, ...]
    audit_notes: tuple[AuditNote, ...]
    warnings: dict[str, RaisedWarning]  # by key: each warning is raised once

    def __deepcopy__(self, memo: dict[int, object]) -> KeyProject:
        """A full copy at the cost of a shallow one: the state is copy-on-write (every change
        assigns a new tuple or dict of frozen values, none is changed in place), so only the
        attribute dict and the list of pending events are the aggregate's own."""
        copied = object.__new__(type(self))
        copied.__dict__.update(self.__dict__)
        copied.__dict__["_pending_events"] = list(self.__dict__.get("_pending_events", ()))
        memo[id(self)] = copied
        return copied

    class Event(Aggregate.Event):
        TOPIC = "ecocase.KeyProject.Event"

    class Created(Event, Aggregate.Created):
        TOPIC = "ecocase.KeyProject.Created"

    class Registered(Created):
        TOPIC = "ecocase.KeyProject.Registered"
        name: str
        project_code: str
        builder: Builder
        window: Window
        tiers: tuple[Tier, ...]
        industry: str
        location: str
        two_high_one_low: bool

    # --- registration --------------------------------------------------------------------
    @staticmethod
    def create_id(project_code: str) -> uuid.UUID:
        return project_id_for(project_code)

    @classmethod
    def register(
        cls,
        *,
        name: str,
        project_code: str,
        builder: Builder,
        window: Window,
        tiers: tuple[Tier, ...],
        industry: str,
        location: str,
        two_high_one_low: bool,
    ) -> KeyProject:
        project_code = project_code.strip()
        if not PROJECT_CODE.match(project_code):
            raise errors.InvalidInput(
                "project_code", "must look like 2024-330100-44-01-123456 (项目代码)"
            )
        try:
            credit_code = validate_credit_code(builder.credit_code)
        except InvalidCreditCode as e:
            raise errors.InvalidInput("builder.credit_code", str(e)) from None
        if not is_key(tiers):
            raise errors.InvalidInput("tiers", "a key project carries at least one tier mark")
        return cls(
            name=_text("name", name),
            project_code=project_code,
            builder=replace(
                builder, name=_text("builder.name", builder.name), credit_code=credit_code
            ),
            window=window,
            tiers=tuple(dict.fromkeys(tiers)),
            industry=_text("industry", industry),
            location=_text("location", location),
            two_high_one_low=two_high_one_low,
        )

    @event(Registered)
    def __init__(
        self,
        *,
        name: str,
        project_code: str,
        builder: Builder,
        window: Window,
        tiers: tuple[Tier, ...],
        industry: str,
        location: str,
        two_high_one_low: bool,
    ) -> None:
        self.name = name
        self.project_code = project_code
        self.builder = builder
        self.window = window
        self.tiers = tiers
        self.industry = industry
        self.location = location
        self.two_high_one_low = two_high_one_low
        self.status = ProjectStatus.OPEN
        self.closed_on = None
        self.closing_summary = None
        self.early_intervention = None
        self.progress_checks = {}
        self.officers = ()
        self.helpers = {}
        self.helper_visits = ()
        self.deferred_materials = {}
        self.reminder_letters = {}
        self.violations = ()
        self.audit_notes = ()
        self.warnings = {}

    # --- derived -------------------------------------------------------------------------
    @property
    def is_key(self) -> bool:
        return is_key(self.tiers)

    @property
    def is_major(self) -> bool:
        return is_major(self.tiers)

    @property
    def active_officers(self) -> tuple[OfficerAssignment, ...]:
        return tuple(o for o in self.officers if o.active)

    @property
    def officers_on_case(self) -> frozenset[str]:
        return frozenset(o.officer for o in self.active_officers)

    def _writable(self) -> None:
        if self.status == ProjectStatus.CLOSED:
            raise errors.ProjectClosed("the case is closed; only audit notes can be added")

    def _major(self, measure: str) -> None:
        self._writable()
        if not self.is_major:
            raise errors.NotMajorProject(
                f"{measure} is for major projects (市级及以上重点、千项万亿、部司/省厅重点联系); "
                f"this project's tiers are {', '.join(self.tiers)}"
            )

    # --- early intervention (major) ------------------------------------------------------
    def start_early_intervention(self, *, stage: Stage, guidance: str, today: date) -> None:
        self._major("early intervention (提前介入)")
        if self.early_intervention is not None:
            raise errors.EarlyInterventionAlreadyStarted(
                f"early intervention started on {self.early_intervention.started_on} "
                f"at stage {self.early_intervention.stage}"
            )
        self._early_intervention_started(
            EarlyIntervention(stage, _text("guidance", guidance), today)
        )

    @event("EarlyInterventionStarted", topic="ecocase.KeyProject.EarlyInterventionStarted")
    def _early_intervention_started(self, intervention: EarlyIntervention) -> None:
        self.early_intervention = intervention

    def schedule_progress_check(self, *, due_on: date, today: date) -> str:
        self._major("progress checks (定期调度)")
        if self.early_intervention is None:
            raise errors.EarlyInterventionNotStarted(
                "progress checks follow early intervention; start it first"
            )
        if due_on < today:
            raise errors.InvalidInput("due_on", f"must be today ({today}) or later")
        check_id = f"C{len(self.progress_checks) + 1}"
        self._progress_check_scheduled(ProgressCheck(check_id, due_on))
        return check_id

    @event("ProgressCheckScheduled", topic="ecocase.KeyProject.ProgressCheckScheduled")
    def _progress_check_scheduled(self, check: ProgressCheck) -> None:
        self.progress_checks = {**self.progress_checks, check.id: check}

    def record_check_outcome(
        self, *, check_id: str, summary: str, next_due_on: date | None, today: date
    ) -> str | None:
        """Records a check's outcome; ``next_due_on`` schedules the next check in one step."""
        self._writable()
        check = self.progress_checks.get(check_id)
        if check is None:
            raise errors.ProgressCheckNotFound(f"no progress check {check_id} on this project")
        if check.status is CheckStatus.DONE:
            raise errors.CheckAlreadyRecorded(
                f"the outcome of {check_id} was recorded on {check.checked_on}"
            )
        if next_due_on is not None and next_due_on <= today:
            raise errors.InvalidInput("next_due_on", f"must be after today ({today})")
        next_check = (
            ProgressCheck(f"C{len(self.progress_checks) + 1}", next_due_on)
            if next_due_on is not None
            else None
        )
        self._check_outcome_recorded(
            replace(
                check,
                status=CheckStatus.DONE,
                summary=_text("summary", summary),
                checked_on=today,
            ),
            next_check,
        )
        return next_check.id if next_check else None

    @event("ProgressCheckOutcomeRecorded", topic="ecocase.KeyProject.ProgressCheckOutcomeRecorded")
    def _check_outcome_recorded(
        self, check: ProgressCheck, next_check: ProgressCheck | None
    ) -> None:
        checks = {**self.progress_checks, check.id: check}
        if next_check is not None:
            checks[next_check.id] = next_check
        self.progress_checks = checks

    # --- officer network (major) ---------------------------------------------------------
    def assign_officer(self, *, officer: str, name: str, role: OfficerRole, today: date) -> None:
        self._major("the officer network (专人对接)")
        officer = _text("officer", officer)
        if officer in self.officers_on_case:
            raise errors.OfficerAlreadyAssigned(f"officer {officer} is already on the case")
        if role is OfficerRole.LEAD:
            lead = next((o for o in self.active_officers if o.role is OfficerRole.LEAD), None)
            if lead is not None:
                raise errors.LeadAlreadyAssigned(
                    f"{lead.name} ({lead.officer}) is the active lead officer (主办); "
                    "release them first"
                )
        self._officer_assigned(OfficerAssignment(officer, _text("name", name), role, today))

    @event("OfficerAssigned", topic="ecocase.KeyProject.OfficerAssigned")
    def _officer_assigned(self, assignment: OfficerAssignment) -> None:
        self.officers = (*self.officers, assignment)

    def release_officer(self, *, officer: str, reason: str, today: date) -> None:
        self._writable()
        officer = officer.strip()
        if officer not in self.officers_on_case:
            raise errors.OfficerNotFound(f"officer {officer} is not active on this case")
        self._officer_released(officer, _text("reason", reason), today)

    @event("OfficerReleased", topic="ecocase.KeyProject.OfficerReleased")
    def _officer_released(self, officer: str, reason: str, released_on: date) -> None:
        self._release(officer, reason, released_on)

    def _release(self, officer: str, reason: str, released_on: date) -> None:
        """Ends the officer's active spell; applied by OfficerReleased and LeadHandedOver."""
        self.officers = tuple(
            replace(o, released_on=released_on, release_reason=reason)
            if o.officer == officer and o.active
            else o
            for o in self.officers
        )

    def hand_over_lead(
        self, *, from_officer: str, to_officer: str, name: str, reason: str, today: date
    ) -> None:
        """The lead (主办) passes the case to another officer in one step: never two leads, never
        a gap."""
        self._major("the officer network (专人对接)")
        to_officer = _text("to_officer", to_officer)
        lead = next((o for o in self.active_officers if o.role is OfficerRole.LEAD), None)
        if lead is None or lead.officer != from_officer.strip():
            raise errors.OfficerNotFound(f"officer {from_officer} is not the active lead (主办)")
        if to_officer in self.officers_on_case:
            raise errors.OfficerAlreadyAssigned(
                f"officer {to_officer} is already on the case; release them first"
            )
        self._lead_handed_over(
            lead.officer,
            _text("reason", reason),
            OfficerAssignment(to_officer, _text("name", name), OfficerRole.LEAD, today),
        )

    @event("LeadHandedOver", topic="ecocase.KeyProject.LeadHandedOver")
    def _lead_handed_over(
        self, from_officer: str, reason: str, assignment: OfficerAssignment
    ) -> None:
        self._release(from_officer, reason, assignment.assigned_on)
        self.officers = (*self.officers, assignment)

    # --- helper-enterprise service (major) -----------------------------------------------
    def dispatch_helper(
        self,
        *,
        helper: str,
        name: str,
        reason: HelperReason,
        today: date,
        visit_every_days: int = DEFAULT_VISIT_EVERY_DAYS,
    ) -> None:
        self._major("helper-enterprise service officers (助企服务员)")
        helper = _text("helper", helper)
        if helper in self.helpers:
            raise errors.HelperAlreadyDispatched(f"helper {helper} is already dispatched")
        if not 1 <= visit_every_days <= 366:
            raise errors.InvalidInput("visit_every_days", "must be between 1 and 366")
        self._helper_dispatched(
            HelperDispatch(helper, _text("name", name), reason, today, visit_every_days)
        )

    @event("HelperDispatched", topic="ecocase.KeyProject.HelperDispatched")
    def _helper_dispatched(self, dispatch: HelperDispatch) -> None:
        self.helpers = {**self.helpers, dispatch.helper: dispatch}

    def record_helper_visit(
        self,
        *,
        helper: str,
        visited_on: date,
        kind: VisitKind,
        findings: str,
        follow_ups: str | None,
        today: date,
    ) -> str:
        self._writable()
        helper = helper.strip()
        dispatch = self.helpers.get(helper)
        if dispatch is None:
            raise errors.HelperNotDispatched(f"no helper {helper} is dispatched to this project")
        if visited_on > today:
            raise errors.InvalidInput("visited_on", f"must not be after today ({today})")
        if visited_on < dispatch.dispatched_on:
            raise errors.InvalidInput(
                "visited_on", f"must not be before the dispatch on {dispatch.dispatched_on}"
            )
        visit_id = f"V{len(self.helper_visits) + 1}"
        self._helper_visit_recorded(
            HelperVisit(
                visit_id,
                helper,
                visited_on,
                kind,
                _text("findings", findings),
                follow_ups.strip() or None if follow_ups else None,
            )
        )
        return visit_id

    @event("HelperVisitRecorded", topic="ecocase.KeyProject.HelperVisitRecorded")
    def _helper_visit_recorded(self, visit: HelperVisit) -> None:
        self.helper_visits = (*self.helper_visits, visit)

    # --- deficiency-tolerant acceptance (key) --------------------------------------------
    def defer_material(
        self,
        *,
        material: str,
        department: str,
        reason: DeferralReason,
        promised_by: date,
        today: date,
    ) -> str:
        self._writable()
        if promised_by < today:
            raise errors.InvalidInput("promised_by", f"must be today ({today}) or later")
        material_id = f"M{len(self.deferred_materials) + 1}"
        self._material_deferred(
            DeferredMaterial(
                material_id,
                _text("material", material),
                _text("department", department),
                reason,
                promised_by,
                today,
            )
        )
        return material_id

    @event("MaterialDeferred", topic="ecocase.KeyProject.MaterialDeferred")
    def _material_deferred(self, material: DeferredMaterial) -> None:
        self.deferred_materials = {**self.deferred_materials, material.id: material}

    def supply_material(self, *, material_id: str, note: str | None, today: date) -> None:
        self._writable()
        material = self.deferred_materials.get(material_id)
        if material is None:
            raise errors.MaterialNotFound(f"no deferred material {material_id} on this project")
        if material.status is MaterialStatus.SUPPLIED:
            raise errors.MaterialAlreadySupplied(
                f"{material.material} was supplied on {material.supplied_on}"
            )
        self._material_supplied(material_id, today, note.strip() or None if note else None)

    @event("MaterialSupplied", topic="ecocase.KeyProject.MaterialSupplied")
    def _material_supplied(self, material_id: str, supplied_on: date, note: str | None) -> None:
        material = self.deferred_materials[material_id]
        self.deferred_materials = {
            **self.deferred_materials,
            material_id: replace(
                material, status=MaterialStatus.SUPPLIED, supplied_on=supplied_on, note=note
            ),
        }

    # --- reminder letters and the rectification loop (key) -------------------------------
    def issue_reminder_letter(
        self, *, letter_no: str, deadline: date, issues: tuple[IssueSpec, ...], today: date
    ) -> str:
        self._writable()
        letter_no = _text("letter_no", letter_no)
        if any(le.letter_no == letter_no for le in self.reminder_letters.values()):
            raise errors.DuplicateLetterNo(f"letter {letter_no} was already issued")
        if deadline <= today:
            raise errors.InvalidInput("deadline", f"must be after today ({today})")
        if not issues:
            raise errors.InvalidInput("issues", "a reminder letter lists at least one issue")
        letter_id = f"L{len(self.reminder_letters) + 1}"
        letter = ReminderLetter(
            letter_id,
            letter_no,
            today,
            deadline,
            tuple(
                Issue(
                    f"{letter_id}-I{n}",
                    spec.severity,
                    spec.found_in,
                    _text(f"issues[{n - 1}].description", spec.description),
                    _text(f"issues[{n - 1}].requirement", spec.requirement),
                )
                for n, spec in enumerate(issues, start=1)
            ),
        )
        self._reminder_letter_issued(letter)
        return letter_id

    @event("ReminderLetterIssued", topic="ecocase.KeyProject.ReminderLetterIssued")
    def _reminder_letter_issued(self, letter: ReminderLetter) -> None:
        self.reminder_letters = {**self.reminder_letters, letter.id: letter}

    def _open_letter(self, letter_id: str) -> ReminderLetter:
        self._writable()
        letter = self.reminder_letters.get(letter_id)
        if letter is None:
            raise errors.LetterNotFound(f"no reminder letter {letter_id} on this project")
        if letter.status is LetterStatus.CLOSED:
            raise errors.LetterClosed(f"letter {letter.letter_no} was closed on {letter.closed_on}")
        return letter

    def _issue(self, letter_id: str, issue_id: str) -> Issue:
        issue = self._open_letter(letter_id).issue(issue_id)
        if issue is None:
            raise errors.IssueNotFound(f"no issue {issue_id} in letter {letter_id}")
        return issue

    def submit_rectification(
        self,
        *,
        letter_id: str,
        issue_id: str,
        summary: str,
        evidence: tuple[str, ...],
        today: date,
    ) -> None:
        issue = self._issue(letter_id, issue_id)
        if not issue.awaits_rectification:
            raise errors.IssueNotAwaitingRectification(
                f"issue {issue_id} is {issue.status}; only open or returned issues take a "
                "rectification"
            )
        evidence = tuple(e.strip() for e in evidence if e.strip())
        self._rectification_submitted(
            letter_id, issue_id, Rectification(_text("summary", summary), evidence, today)
        )

    @event("RectificationSubmitted", topic="ecocase.KeyProject.RectificationSubmitted")
    def _rectification_submitted(
        self, letter_id: str, issue_id: str, rectification: Rectification
    ) -> None:
        self._update_issue(
            letter_id,
            issue_id,
            lambda i: replace(
                i,
                status=IssueStatus.SUBMITTED,
                rectifications=(*i.rectifications, rectification),
            ),
        )

    def accept_rectification(
        self, *, letter_id: str, issue_id: str, comment: str | None, today: date
    ) -> None:
        self._submitted(letter_id, issue_id)
        self._rectification_accepted(
            letter_id, issue_id, Review(True, comment.strip() or None if comment else None, today)
        )

    @event("RectificationAccepted", topic="ecocase.KeyProject.RectificationAccepted")
    def _rectification_accepted(self, letter_id: str, issue_id: str, review: Review) -> None:
        self._update_issue(
            letter_id,
            issue_id,
            lambda i: replace(i, status=IssueStatus.ACCEPTED, reviews=(*i.reviews, review)),
        )

    def return_rectification(
        self, *, letter_id: str, issue_id: str, reason: str, today: date
    ) -> None:
        self._submitted(letter_id, issue_id)
        self._rectification_returned(
            letter_id, issue_id, Review(False, _text("reason", reason), today)
        )

    @event("RectificationReturned", topic="ecocase.KeyProject.RectificationReturned")
    def _rectification_returned(self, letter_id: str, issue_id: str, review: Review) -> None:
        self._update_issue(
            letter_id,
            issue_id,
            lambda i: replace(i, status=IssueStatus.RETURNED, reviews=(*i.reviews, review)),
        )

    def _submitted(self, letter_id: str, issue_id: str) -> None:
        issue = self._issue(letter_id, issue_id)
        if issue.status is not IssueStatus.SUBMITTED:
            raise errors.IssueNotSubmitted(
                f"issue {issue_id} is {issue.status}; only a submitted rectification is reviewed"
            )

    def _update_issue(
        self, letter_id: str, issue_id: str, change: Callable[[Issue], Issue]
    ) -> None:
        letter = self.reminder_letters[letter_id]
        issue = letter.issue(issue_id)
        if issue is None:  # pragma: no cover - commands check this before the event
            raise errors.IssueNotFound(issue_id)
        self.reminder_letters = {
            **self.reminder_letters,
            letter_id: letter.with_issue(change(issue)),
        }

    def close_reminder_letter(self, *, letter_id: str, today: date) -> None:
        letter = self._open_letter(letter_id)
        if letter.open_issues:
            raise errors.LetterHasOpenIssues(
                f"letter {letter.letter_no} still has issues not accepted: "
                + ", ".join(f"{i.id} ({i.status})" for i in letter.open_issues)
            )
        self._reminder_letter_closed(letter_id, today)

    @event("ReminderLetterClosed", topic="ecocase.KeyProject.ReminderLetterClosed")
    def _reminder_letter_closed(self, letter_id: str, closed_on: date) -> None:
        letter = self.reminder_letters[letter_id]
        self.reminder_letters = {
            **self.reminder_letters,
            letter_id: replace(letter, status=LetterStatus.CLOSED, closed_on=closed_on),
        }

    # --- violations, closure, audit notes ------------------------------------------------
    def refer_violation(
        self,
        *,
        description: str,
        legal_basis: str | None,
        today: date,
        letter_id: str | None = None,
        issue_id: str | None = None,
    ) -> str:
        self._writable()
        if issue_id is not None and letter_id is None:
            raise errors.InvalidInput("letter_id", "is needed to name an issue")
        if letter_id is not None:
            letter = self.reminder_letters.get(letter_id)
            if letter is None:
                raise errors.LetterNotFound(f"no reminder letter {letter_id} on this project")
            if issue_id is not None and letter.issue(issue_id) is None:
                raise errors.IssueNotFound(f"no issue {issue_id} in letter {letter_id}")
        referral_id = f"X{len(self.violations) + 1}"
        self._violation_referred(
            ViolationReferral(
                referral_id,
                _text("description", description),
                legal_basis.strip() or None if legal_basis else None,
                today,
                letter_id,
                issue_id,
            )
        )
        return referral_id

    @event("ViolationReferred", topic="ecocase.KeyProject.ViolationReferred")
    def _violation_referred(self, referral: ViolationReferral) -> None:
        self.violations = (*self.violations, referral)

    def close(self, *, summary: str, today: date) -> None:
        self._writable()
        open_letters = [
            le for le in self.reminder_letters.values() if le.status is LetterStatus.OPEN
        ]
        if open_letters:
            raise errors.ProjectHasOpenLetters(
                "reminder letters are not closed yet: "
                + ", ".join(le.letter_no for le in open_letters)
            )
        self._closed(_text("summary", summary), today)

    @event("ProjectClosed", topic="ecocase.KeyProject.ProjectClosed")
    def _closed(self, summary: str, closed_on: date) -> None:
        self.status = ProjectStatus.CLOSED
        self.closing_summary = summary
        self.closed_on = closed_on

    def add_audit_note(self, *, note: str, today: date) -> None:
        """The one thing that can still be recorded on a closed case."""
        self._audit_note_added(AuditNote(_text("note", note), today))

    @event("AuditNoteAdded", topic="ecocase.KeyProject.AuditNoteAdded")
    def _audit_note_added(self, note: AuditNote) -> None:
        self.audit_notes = (*self.audit_notes, note)

    # --- early warnings (预警温馨提醒) ----------------------------------------------------
    @property
    def is_closed(self) -> bool:
        return self.status == ProjectStatus.CLOSED

    def raise_warning(self, spec: WarningSpec, today: date) -> bool:
        """Records a due warning (see :func:`domain.warnings.due_warnings`) once. A key already
        raised, or a closed case, records nothing and returns False: never an error, since the
        scanner runs again and again."""
        if spec.key in self.warnings or self.is_closed:
            return False
        self._warning_raised(RaisedWarning.of(spec, today))
        return True

    @event("WarningRaised", topic="ecocase.KeyProject.WarningRaised")
    def _warning_raised(self, warning: RaisedWarning) -> None:
        self.warnings = {**self.warnings, warning.key: warning}
