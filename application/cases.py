"""Use cases: every service act of the notice, as a command on one key project.

Each command loads the project, checks the actor may act on it, runs the aggregate's method
and saves, stamped with the actor and request id. A write that names the version it expects
(If-Match) is refused when the project has moved on; a write that does not is retried on a
conflict, so that it is never lost.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, OperationalError

from application.mapper import stamp_of
from application.store import CaseStore
from domain import access, errors
from domain.actor import Actor, Stamp
from domain.builder import Builder
from domain.helper_service import HelperReason, VisitKind
from domain.intervention import Stage
from domain.letters import IssueSpec
from domain.materials import DeferralReason
from domain.officers import OfficerRole
from domain.project import KeyProject, project_id_for
from domain.tiers import Tier
from domain.warnings import WarningSpec
from domain.windows import Window

SHANGHAI = ZoneInfo("Asia/Shanghai")
T = TypeVar("T")


def shanghai_now() -> datetime:
    return datetime.now(tz=SHANGHAI)


@dataclass(frozen=True)
class Acting:
    """Who acts, in which request, and (from If-Match) the version they expect."""

    actor: Actor
    request_id: str
    expected_version: int | None = None


@dataclass(frozen=True)
class HistoryEntry:
    version: int
    type: str
    recorded_at: datetime
    stamp: Stamp | None
    data: dict[str, Any]


class WriteContention(errors.DomainError):
    """Too many concurrent writers on one project: the command was not applied."""

    code = "write_contention"


_NOT_DATA = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "meta"}
)


def _busy(error: OperationalError) -> bool:
    """SQLite's "database is locked" under concurrent writers: worth another attempt."""
    text = str(error).lower()
    return "locked" in text or "busy" in text


class Cases:
    def __init__(
        self,
        store: CaseStore,
        clock: Callable[[], datetime] = shanghai_now,
        max_attempts: int = 50,
    ) -> None:
        self.store = store
        self.clock = clock
        self.max_attempts = max_attempts

    def today(self) -> date:
        return self.clock().astimezone(SHANGHAI).date()

    # --- reads ---------------------------------------------------------------------------
    def _load(
        self, project_id: UUID, version: int | None = None, *, fresh: bool = True
    ) -> KeyProject:
        try:
            return self.store.get_project(project_id, version, fresh=fresh)
        except AggregateNotFoundError:
            raise errors.ProjectNotFound(f"no project {project_id}") from None

    def get(
        self,
        actor: Actor,
        project_id: UUID,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> KeyProject:
        """The project now, at a version, or as it stood at a moment."""
        latest = self._load(project_id)
        self._check_read(actor, latest)
        if as_of is not None:
            if as_of.utcoffset() is None:  # no moment without an offset (was a TypeError)
                raise errors.InvalidInput("as_of", "must carry a time zone offset")
            at = self.store.version_as_of(project_id, as_of)
            if at is None:
                raise errors.ProjectNotFound(f"project {project_id} was not registered by {as_of}")
            version = at if version is None else min(version, at)
        if version is None or version == latest.version:
            return latest
        if not 1 <= version <= latest.version:
            raise errors.InvalidInput(
                "version", f"must be between 1 and {latest.version} for this project"
            )
        return self._load(project_id, version)

    def peek(self, actor: Actor, project_id: UUID) -> KeyProject | None:
        """The project now, if the store can tell without a query (see
        :meth:`CaseStore.cached_project`), after the read rules; None: ask :meth:`get`."""
        project = self.store.cached_project(project_id)
        if project is not None:
            self._check_read(actor, project)
        return project

    def history(self, actor: Actor, project_id: UUID) -> list[HistoryEntry]:
        self._check_read(actor, self._load(project_id))
        return [
            HistoryEntry(
                version=e.originator_version,
                type=type(e).__name__,
                recorded_at=e.timestamp.astimezone(SHANGHAI),
                stamp=stamp_of(e),
                data={k: v for k, v in vars(e).items() if k not in _NOT_DATA},
            )
            for e in self.store.history(project_id)
        ]

    @staticmethod
    def _check_read(actor: Actor, project: KeyProject) -> None:
        if not access.may_read(actor, project.window, project.officers_on_case):
            raise errors.NotAllowed(
                f"{actor.role} of window {actor.unit} may not read projects of {project.window}"
            )

    # --- registration --------------------------------------------------------------------
    def register(
        self,
        acting: Acting,
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
        if not access.may_register(acting.actor, window):
            raise errors.NotAllowed(
                f"{acting.actor.role} of window {acting.actor.unit} may not register a project "
                f"for window {window}"
            )
        project = KeyProject.register(
            name=name,
            project_code=project_code,
            builder=builder,
            window=window,
            tiers=tiers,
            industry=industry,
            location=location,
            two_high_one_low=two_high_one_low,
        )
        try:
            self.store.save(project, stamp=Stamp(acting.actor, acting.request_id))
        except IntegrityError:
            raise errors.DuplicateProjectCode(
                f"project code {project.project_code} is already registered "
                f"(project {project_id_for(project.project_code)})"
            ) from None
        return project

    # --- the generic write path ----------------------------------------------------------
    def _change(
        self, acting: Acting, project_id: UUID, command: Callable[[KeyProject, date], T]
    ) -> tuple[KeyProject, T]:
        """The first attempt runs on the project as last seen by this process (nothing is
        read before the insert); the insert fails if another process has moved it on. A
        refusal is only ever decided on fresh state: a command refused on the cached state is
        tried again on the stored one before the refusal is given."""
        fresh = False
        for attempt in range(self.max_attempts):
            project = self._load(project_id, fresh=fresh)
            try:
                result = self._decide(acting, project, command)
            except errors.DomainError:
                if fresh:
                    raise
                fresh = True
                continue
            if not project.pending_events:  # the command changed nothing: nothing to record
                return project, result
            try:
                self.store.save(project, stamp=Stamp(acting.actor, acting.request_id))
            except (IntegrityError, OperationalError) as e:
                # Another writer got there first (or SQLite was busy): never lose the write.
                if isinstance(e, OperationalError) and not _busy(e):
                    raise
                if acting.expected_version is not None and fresh:
                    current = self._load(project_id).version
                    raise errors.VersionMismatch(acting.expected_version, current) from None
                if fresh:
                    time.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter
                fresh = True
                continue
            return project, result
        raise WriteContention(
            f"project {project_id} had too many concurrent writers; nothing was recorded, try again"
        )

    def _decide(
        self, acting: Acting, project: KeyProject, command: Callable[[KeyProject, date], T]
    ) -> T:
        if not access.may_write(acting.actor, project.window, project.officers_on_case):
            raise errors.NotAllowed(
                f"{acting.actor.role} of window {acting.actor.unit} may not write to "
                f"projects of {project.window}"
            )
        expected = acting.expected_version
        if expected is not None and expected != project.version:
            raise errors.VersionMismatch(expected, project.version)
        return command(project, self.today())

    # --- the service acts ----------------------------------------------------------------
    def start_early_intervention(
        self, acting: Acting, project_id: UUID, *, stage: Stage, guidance: str
    ) -> KeyProject:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.start_early_intervention(
                stage=stage, guidance=guidance, today=today
            ),
        )[0]

    def schedule_progress_check(
        self, acting: Acting, project_id: UUID, *, due_on: date
    ) -> tuple[KeyProject, str]:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.schedule_progress_check(due_on=due_on, today=today),
        )

    def record_check_outcome(
        self,
        acting: Acting,
        project_id: UUID,
        check_id: str,
        *,
        summary: str,
        next_due_on: date | None,
    ) -> KeyProject:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.record_check_outcome(
                check_id=check_id, summary=summary, next_due_on=next_due_on, today=today
            ),
        )[0]

    def assign_officer(
        self, acting: Acting, project_id: UUID, *, officer: str, name: str, role: OfficerRole
    ) -> KeyProject:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.assign_officer(officer=officer, name=name, role=role, today=today),
        )[0]

    def release_officer(
        self, acting: Acting, project_id: UUID, officer: str, *, reason: str
    ) -> KeyProject:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.release_officer(officer=officer, reason=reason, today=today),
        )[0]

    def hand_over_lead(
        self,
        acting: Acting,
        project_id: UUID,
        *,
        from_officer: str,
        to_officer: str,
        name: str,
        reason: str,
    ) -> KeyProject:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.hand_over_lead(
                from_officer=from_officer,
                to_officer=to_officer,
                name=name,
                reason=reason,
                today=today,
            ),
        )[0]

    def dispatch_helper(
        self,
        acting: Acting,
        project_id: UUID,
        *,
        helper: str,
        name: str,
        reason: HelperReason,
        visit_every_days: int,
    ) -> KeyProject:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.dispatch_helper(
                helper=helper,
                name=name,
                reason=reason,
                today=today,
                visit_every_days=visit_every_days,
            ),
        )[0]

    def record_helper_visit(
        self,
        acting: Acting,
        project_id: UUID,
        *,
        helper: str,
        visited_on: date,
        kind: VisitKind,
        findings: str,
        follow_ups: str | None,
    ) -> tuple[KeyProject, str]:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.record_helper_visit(
                helper=helper,
                visited_on=visited_on,
                kind=kind,
                findings=findings,
                follow_ups=follow_ups,
                today=today,
            ),
        )

    def defer_material(
        self,
        acting: Acting,
        project_id: UUID,
        *,
        material: str,
        department: str,
        reason: DeferralReason,
        promised_by: date,
    ) -> tuple[KeyProject, str]:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.defer_material(
                material=material,
                department=department,
                reason=reason,
                promised_by=promised_by,
                today=today,
            ),
        )

    def supply_material(
        self, acting: Acting, project_id: UUID, material_id: str, *, note: str | None
    ) -> KeyProject:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.supply_material(material_id=material_id, note=note, today=today),
        )[0]

    def issue_reminder_letter(
        self,
        acting: Acting,
        project_id: UUID,
        *,
        letter_no: str,
        deadline: date,
        issues: tuple[IssueSpec, ...],
    ) -> tuple[KeyProject, str]:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.issue_reminder_letter(
                letter_no=letter_no, deadline=deadline, issues=issues, today=today
            ),
        )

    def submit_rectification(
        self,
        acting: Acting,
        project_id: UUID,
        letter_id: str,
        issue_id: str,
        *,
        summary: str,
        evidence: tuple[str, ...],
    ) -> KeyProject:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.submit_rectification(
                letter_id=letter_id,
                issue_id=issue_id,
                summary=summary,
                evidence=evidence,
                today=today,
            ),
        )[0]

    def accept_rectification(
        self,
        acting: Acting,
        project_id: UUID,
        letter_id: str,
        issue_id: str,
        *,
        comment: str | None,
    ) -> KeyProject:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.accept_rectification(
                letter_id=letter_id, issue_id=issue_id, comment=comment, today=today
            ),
        )[0]

    def return_rectification(
        self, acting: Acting, project_id: UUID, letter_id: str, issue_id: str, *, reason: str
    ) -> KeyProject:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.return_rectification(
                letter_id=letter_id, issue_id=issue_id, reason=reason, today=today
            ),
        )[0]

    def close_reminder_letter(self, acting: Acting, project_id: UUID, letter_id: str) -> KeyProject:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.close_reminder_letter(letter_id=letter_id, today=today),
        )[0]

    def refer_violation(
        self,
        acting: Acting,
        project_id: UUID,
        *,
        description: str,
        legal_basis: str | None,
        letter_id: str | None,
        issue_id: str | None,
    ) -> tuple[KeyProject, str]:
        return self._change(
            acting,
            project_id,
            lambda p, today: p.refer_violation(
                description=description,
                legal_basis=legal_basis,
                letter_id=letter_id,
                issue_id=issue_id,
                today=today,
            ),
        )

    def close_project(self, acting: Acting, project_id: UUID, *, summary: str) -> KeyProject:
        return self._change(
            acting, project_id, lambda p, today: p.close(summary=summary, today=today)
        )[0]

    def add_audit_note(self, acting: Acting, project_id: UUID, *, note: str) -> KeyProject:
        return self._change(
            acting, project_id, lambda p, today: p.add_audit_note(note=note, today=today)
        )[0]

    # --- early warnings (预警温馨提醒) ----------------------------------------------------
    def raise_warnings(
        self, acting: Acting, project_id: UUID, specs: tuple[WarningSpec, ...]
    ) -> int:
        """Raises the due warnings the project has not raised yet, in one save; returns how
        many were new. When none is new, nothing is saved and the version stays."""
        return self._change(
            acting,
            project_id,
            lambda project, today: sum(project.raise_warning(spec, today) for spec in specs),
        )[1]
