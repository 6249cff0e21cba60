"""Reminder letters (温馨提醒函) and the issue-by-issue rectification loop (整改闭环)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum


class Severity(StrEnum):
    KEY = "key"  # 重点问题
    GENERAL = "general"  # 一般问题


class FoundIn(StrEnum):
    EXPERT_REVIEW = "expert_review"  # 专家评估
    PUBLIC_PARTICIPATION = "public_participation"  # 公众参与
    DOCUMENT_REVIEW = "document_review"  # 资料审查
    SITE_INSPECTION = "site_inspection"  # 现场核查
    DISCHARGE_PERMIT = "discharge_permit"  # 排污许可
    HAZARDOUS_WASTE_PERMIT = "hazardous_waste_permit"  # 危废经营许可
    RADIATION_PERMIT = "radiation_permit"  # 辐射安全许可


class IssueStatus(StrEnum):
    OPEN = "open"  # awaiting the unit's rectification
    SUBMITTED = "submitted"  # rectification submitted, awaiting review
    RETURNED = "returned"  # returned by an officer; may be resubmitted
    ACCEPTED = "accepted"


class LetterStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class IssueSpec:
    """An issue as written in a letter, before it has an id."""

    severity: Severity
    found_in: FoundIn
    description: str
    requirement: str


@dataclass(frozen=True)
class Rectification:
    summary: str
    evidence: tuple[str, ...]
    submitted_on: date


@dataclass(frozen=True)
class Review:
    accepted: bool
    comment: str | None
    reviewed_on: date


@dataclass(frozen=True)
class Issue:
    id: str
    severity: Severity
    found_in: FoundIn
    description: str
    requirement: str
    status: IssueStatus = IssueStatus.OPEN
    rectifications: tuple[Rectification, ...] = ()
    reviews: tuple[Review, ...] = ()

    @property
    def awaits_rectification(self) -> bool:
        return self.status in (IssueStatus.OPEN, IssueStatus.RETURNED)


@dataclass(frozen=True)
class ReminderLetter:
    id: str
    letter_no: str
    issued_on: date
    deadline: date
    issues: tuple[Issue, ...]
    status: LetterStatus = LetterStatus.OPEN
    closed_on: date | None = None

    def issue(self, issue_id: str) -> Issue | None:
        return next((i for i in self.issues if i.id == issue_id), None)

    def with_issue(self, issue: Issue) -> ReminderLetter:
        return replace(self, issues=tuple(issue if i.id == issue.id else i for i in self.issues))

    @property
    def open_issues(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.status is not IssueStatus.ACCEPTED)
