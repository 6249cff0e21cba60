"""Supervision of the rectification loop (整改闭环督办): a tracked projection of the case store
behind ``GET /supervision/rectifications``, ``GET /supervision/summary`` and the dashboard.

The view keeps one row per reminder letter (温馨提醒函): its project (id, code, name, window), its
number, issue date, deadline, status and closing date, and its issues (id, severity, where found,
status). It follows the store's notification log like the project list
(:mod:`application.project_index`): a batch of events and the position of its last
notification are committed in one transaction (:mod:`application.supervision_storage`), so
each event is applied exactly once and a restart resumes from the recorded position.

What depends on the day is computed when read, from ``today``: a letter is *overdue* when it is
open and its deadline has passed (deadline < today); ``working_days_left`` and ``days_overdue``
count PRC working days (:func:`domain.working_days.working_days_between`), and a closed letter's
``days_to_close`` counts calendar days from issue to closing. In the per-window summary, *open*
counts every letter not yet closed (the overdue ones included), *overdue* those of them past
their deadline, the closure rate is closed / issued and the median days to close is over the
closed letters.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any, Literal
from uuid import UUID

from application.follower import LogFollower
from application.store import CaseStore
from application.supervision_storage import (
    DEFAULT_PREFIX,
    IssueRecord,
    LetterFacts,
    LetterRecord,
    ProjectRecord,
    ProjectRectifications,
    SupervisionStorage,
    open_storage,
)
from domain import access, errors
from domain.actor import Actor, Role
from domain.letters import IssueStatus, LetterStatus
from domain.project import ProjectStatus
from domain.windows import WINDOWS
from domain.working_days import working_days_between

__all__ = [
    "STATUSES",
    "IssueRecord",
    "LetterRow",
    "Supervision",
    "WindowSummary",
    "fold",
    "supervision_windows",
]

logger = logging.getLogger("ecocase.projection")

Status = Literal["open", "overdue", "closed"]
STATUSES: tuple[Status, ...] = ("open", "overdue", "closed")
WINDOW_NAMES: dict[str, str] = {str(w.code): w.name for w in WINDOWS}
ALL_WINDOWS = "all"  # the window code of the total line


# --- the fold ---------------------------------------------------------------------------------
def _issue_status(
    state: ProjectRectifications, event: Any, status: IssueStatus
) -> ProjectRectifications:
    letter = state.letters.get(event.letter_id)
    if letter is None or all(i.id != event.issue_id for i in letter.issues):
        logger.warning(
            "supervision: %s of unknown issue %s/%s of project %s skipped",
            type(event).__name__,
            event.letter_id,
            event.issue_id,
            event.originator_id,
        )
        return state
    issues = tuple(
        replace(i, status=str(status)) if i.id == event.issue_id else i for i in letter.issues
    )
    changed = replace(letter, issues=issues, version=event.originator_version)
    return replace(state, letters={**state.letters, letter.letter_id: changed})


def _letter_closed(state: ProjectRectifications, event: Any) -> ProjectRectifications:
    letter = state.letters.get(event.letter_id)
    if letter is None:
        logger.warning(
            "supervision: closing of unknown letter %s of project %s skipped",
            event.letter_id,
            event.originator_id,
        )
        return state
    changed = replace(
        letter,
        status=str(LetterStatus.CLOSED),
        closed_on=event.closed_on,
        version=event.originator_version,
    )
    return replace(state, letters={**state.letters, letter.letter_id: changed})


def _letter_issued(state: ProjectRectifications, event: Any) -> ProjectRectifications:
    le, p = event.letter, state.project
    letter = LetterRecord(
        project_id=p.id,
        project_code=p.project_code,
        project_name=p.name,
        window=p.window,
        letter_id=le.id,
        letter_no=le.letter_no,
        issued_on=le.issued_on,
        deadline=le.deadline,
        status=str(le.status),
        closed_on=le.closed_on,
        issues=tuple(
            IssueRecord(i.id, str(i.severity), str(i.found_in), i.description, str(i.status))
            for i in le.issues
        ),
        version=event.originator_version,
    )
    return replace(state, letters={**state.letters, letter.letter_id: letter})


def _project_closed(state: ProjectRectifications, event: Any) -> ProjectRectifications:
    project = replace(state.project, status=ProjectStatus.CLOSED, version=event.originator_version)
    return replace(state, project=project)


_STEPS: dict[str, Callable[[ProjectRectifications, Any], ProjectRectifications]] = {
    "ReminderLetterIssued": _letter_issued,
    "RectificationSubmitted": lambda s, e: _issue_status(s, e, IssueStatus.SUBMITTED),
    "RectificationAccepted": lambda s, e: _issue_status(s, e, IssueStatus.ACCEPTED),
    "RectificationReturned": lambda s, e: _issue_status(s, e, IssueStatus.RETURNED),
    "ReminderLetterClosed": _letter_closed,
    "ProjectClosed": _project_closed,
}


def fold(state: ProjectRectifications | None, event: Any) -> ProjectRectifications | None:
    """The project's supervision state after ``event`` (an event of KeyProject). Events that
    do not touch the rectification loop return ``state`` itself (nothing is written)."""
    kind = type(event).__name__
    if kind == "Registered":
        return ProjectRectifications(
            ProjectRecord(
                id=event.originator_id,
                project_code=event.project_code,
                name=event.name,
                window=str(event.window),
                status=ProjectStatus.OPEN,
                version=event.originator_version,
            )
        )
    if state is None:
        logger.warning(
            "supervision: %s of unregistered project %s skipped", kind, event.originator_id
        )
        return None
    step = _STEPS.get(kind)
    return state if step is None else step(state, event)


# --- what readers get -------------------------------------------------------------------------
@dataclass(frozen=True)
class LetterRow:
    """A reminder letter as supervisors read it on ``today``."""

    project_id: UUID
    project_code: str
    project_name: str
    window: str
    window_name: str
    letter_id: str
    letter_no: str
    issued_on: date
    deadline: date
    status: str  # "open" or "closed"
    overdue: bool  # open and deadline < today
    working_days_left: int | None  # open: PRC working days in (today, deadline]; closed: None
    days_overdue: int | None  # open: PRC working days in (deadline, today]; closed: None
    closed_on: date | None
    days_to_close: int | None  # closed: calendar days from issue to closing
    issues: tuple[IssueRecord, ...]

    @property
    def standing(self) -> Status:
        """One word for filters and labels: open, overdue or closed."""
        if self.status == LetterStatus.CLOSED:
            return "closed"
        return "overdue" if self.overdue else "open"

    @property
    def open_issues(self) -> int:
        return sum(1 for i in self.issues if i.status != IssueStatus.ACCEPTED)


@dataclass(frozen=True)
class WindowSummary:
    """One window's letters on ``today`` (window ``all``: the total of the reader's windows)."""

    window: str
    window_name: str
    issued: int
    open: int  # not closed, overdue ones included
    overdue: int  # open and past the deadline
    closed: int
    closure_rate: float | None  # closed / issued, 4 decimals; None when nothing was issued
    mean_days_to_close: float | None  # calendar days, 1 decimal; None when none closed
    median_days_to_close: float | None  # calendar days; None when none closed


def letter_row(record: LetterRecord, today: date) -> LetterRow:
    is_open = record.status != LetterStatus.CLOSED
    return LetterRow(
        project_id=record.project_id,
        project_code=record.project_code,
        project_name=record.project_name,
        window=record.window,
        window_name=WINDOW_NAMES.get(record.window, record.window),
        letter_id=record.letter_id,
        letter_no=record.letter_no,
        issued_on=record.issued_on,
        deadline=record.deadline,
        status=record.status,
        overdue=is_open and record.deadline < today,
        working_days_left=working_days_between(today, record.deadline) if is_open else None,
        days_overdue=working_days_between(record.deadline, today) if is_open else None,
        closed_on=record.closed_on,
        days_to_close=(
            (record.closed_on - record.issued_on).days
            if not is_open and record.closed_on is not None
            else None
        ),
        issues=record.issues,
    )


def window_summary(window: str, facts: Iterable[LetterFacts], today: date) -> WindowSummary:
    issued = open_ = overdue = closed = 0
    days: list[int] = []
    for f in facts:
        issued += 1
        if f.status == LetterStatus.CLOSED:
            closed += 1
            if f.closed_on is not None:
                days.append((f.closed_on - f.issued_on).days)
        else:
            open_ += 1
            overdue += f.deadline < today
    return WindowSummary(
        window=window,
        window_name=WINDOW_NAMES.get(window, "合计" if window == ALL_WINDOWS else window),
        issued=issued,
        open=open_,
        overdue=overdue,
        closed=closed,
        closure_rate=round(closed / issued, 4) if issued else None,
        mean_days_to_close=round(statistics.fmean(days), 1) if days else None,
        median_days_to_close=float(statistics.median(days)) if days else None,
    )


def supervision_windows(actor: Actor) -> frozenset[str] | None:
    """The windows whose letters ``actor`` supervises (None: every window). Auditors and admins
    read all, supervisors their own window (the city bureau's supervisors all); officers none."""
    if actor.role not in (Role.SUPERVISOR, Role.AUDITOR, Role.ADMIN):
        raise errors.NotAllowed(
            f"rectification supervision is read by supervisors, auditors and admins, not by "
            f"the {actor.role} role; an officer reads a project's letters in its view "
            "(GET /projects/{id})"
        )
    windows = access.readable_windows(actor)
    return None if windows is None else frozenset(str(w) for w in windows)


def _scope(readable_windows: frozenset[str] | None, window: str | None) -> frozenset[str] | None:
    """The windows a query reads; 400 for an unknown window, 403 for one the reader may not."""
    readable = None if readable_windows is None else frozenset(map(str, readable_windows))
    if window is None:
        return readable
    code = str(window)
    if code not in WINDOW_NAMES:
        raise errors.InvalidInput("window", f"must be one of {', '.join(WINDOW_NAMES)}")
    if readable is not None and code not in readable:
        raise errors.NotAllowed(
            f"window {code} is not among the windows this reader supervises "
            f"({', '.join(sorted(readable)) or 'none'})"
        )
    return frozenset({code})


class Supervision(LogFollower[SupervisionStorage]):
    """The supervision view of one case store, on the store's backend (``env`` is the store's).

    ``prefix`` names the view's tables (and, on SQLite, its file): a rebuild can replay the
    store into fresh tables beside the live ones and compare the two by :meth:`checksum`."""

    name = "supervision"

    def __init__(
        self, store: CaseStore, env: Mapping[str, str], *, prefix: str = DEFAULT_PREFIX
    ) -> None:
        super().__init__(store, open_storage(env, store.name, prefix), fold)

    # --- reading -------------------------------------------------------------------------
    def rectifications(
        self,
        *,
        readable_windows: frozenset[str] | None,
        window: str | None = None,
        status: Status | None = None,
        today: date,
    ) -> list[LetterRow]:
        """The letters of the reader's windows (``readable_windows`` None: all), optionally of
        one ``window`` and one ``status``: open ones first, by deadline (the overdue at the
        top), then the closed ones, by deadline."""
        if status is not None and status not in STATUSES:
            raise errors.InvalidInput("status", f"must be one of {', '.join(STATUSES)}")
        windows = _scope(readable_windows, window)
        letter_status = None if status is None else "closed" if status == "closed" else "open"
        records = self._storage.letters(
            windows=windows,
            status=letter_status,
            deadline_before=today if status == "overdue" else None,
        )
        rows = [letter_row(r, today) for r in records]
        rows.sort(key=lambda r: (r.status == LetterStatus.CLOSED, r.deadline, r.project_code,
                                 r.letter_id))  # fmt: skip
        return rows

    def summary(
        self,
        *,
        readable_windows: frozenset[str] | None,
        window: str | None = None,
        today: date,
    ) -> list[WindowSummary]:
        """One line per window the reader supervises (every window, in the notice's order, for
        city-wide readers), zeros included; only ``window`` when it is given."""
        return self.summary_with_total(
            readable_windows=readable_windows, window=window, today=today
        )[0]

    def summary_with_total(
        self,
        *,
        readable_windows: frozenset[str] | None,
        window: str | None = None,
        today: date,
    ) -> tuple[list[WindowSummary], WindowSummary]:
        """:meth:`summary` and the total over its windows (window ``all``)."""
        windows = _scope(readable_windows, window)
        facts = self._storage.facts(windows=windows, window=None)
        by_window: dict[str, list[LetterFacts]] = {}
        for f in facts:
            by_window.setdefault(f.window, []).append(f)
        codes = [str(w.code) for w in WINDOWS if windows is None or str(w.code) in windows]
        lines = [window_summary(code, by_window.get(code, ()), today) for code in codes]
        return lines, window_summary(ALL_WINDOWS, facts, today)

    def rows(self) -> list[LetterRecord]:
        """Every stored row, in key order."""
        return self._storage.all_letters()

    def checksum(self) -> str:
        """SHA-256 over every stored row (canonical JSON): equal views give equal sums."""
        digest = hashlib.sha256()
        for record in self.rows():
            line = json.dumps(asdict(record), default=str, ensure_ascii=False, sort_keys=True)
            digest.update(line.encode("utf-8") + b"\n")
        return digest.hexdigest()

    def close(self) -> None:
        self.stop()
        self._storage.close()
