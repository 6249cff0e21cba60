"""HTTP request bodies (msgspec). Unknown fields are refused, so that a typo is an error."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec

from domain.helper_service import HelperReason, VisitKind
from domain.intervention import Stage
from domain.letters import FoundIn, Severity
from domain.materials import DeferralReason
from domain.officers import OfficerRole
from domain.tiers import Tier
from domain.windows import Window

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
Phone = Annotated[str, msgspec.Meta(pattern=r"^[0-9+\-() ]{5,20}$")]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ContactIn(Body):
    name: Name
    phone: Phone
    email: Email


class BuilderIn(Body):
    name: Name
    credit_code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    contact: ContactIn | None = None


class RegisterProject(Body):
    name: Name
    project_code: Code
    builder: BuilderIn
    window: Window
    tiers: Annotated[list[Tier], msgspec.Meta(min_length=1, max_length=6)]
    industry: Name
    location: Name
    two_high_one_low: bool = False


class StartEarlyIntervention(Body):
    stage: Stage
    guidance: Text


class ScheduleProgressCheck(Body):
    due_on: date


class RecordCheckOutcome(Body):
    summary: Text
    next_due_on: date | None = None


class AssignOfficer(Body):
    officer: Code
    name: Name
    role: OfficerRole


class ReleaseOfficer(Body):
    reason: Text


class HandOverLead(Body):
    to_officer: Code
    name: Name
    reason: Text


class DispatchHelper(Body):
    helper: Code
    name: Name
    reason: HelperReason
    visit_every_days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 30


class RecordHelperVisit(Body):
    helper: Code
    visited_on: date
    kind: VisitKind
    findings: Text
    follow_ups: Text | None = None


class DeferMaterial(Body):
    material: Name
    department: Name
    reason: DeferralReason
    promised_by: date


class SupplyMaterial(Body):
    note: Text | None = None


class IssueIn(Body):
    severity: Severity
    found_in: FoundIn
    description: Text
    requirement: Text


class IssueReminderLetter(Body):
    letter_no: Code
    deadline: date
    issues: Annotated[list[IssueIn], msgspec.Meta(min_length=1, max_length=200)]


class SubmitRectification(Body):
    summary: Text
    evidence: Annotated[list[Text], msgspec.Meta(max_length=100)] = msgspec.field(
        default_factory=list
    )


class AcceptRectification(Body):
    comment: Text | None = None


class ReturnRectification(Body):
    reason: Text


class CloseLetter(Body):
    pass


class ReferViolation(Body):
    description: Text
    legal_basis: Text | None = None
    letter_id: Code | None = None
    issue_id: Code | None = None


class CloseProject(Body):
    summary: Text


class AddAuditNote(Body):
    note: Text
