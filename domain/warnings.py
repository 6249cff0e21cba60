"""Early warnings (预警温馨提醒): the thresholds a key project's deadlines cross, each warned once.

:func:`due_warnings` is pure: it reads a project and today's date and names the warnings that
are due and not yet raised on the project. Each threshold has its own key, so each warns once:

- an open reminder letter whose rectification deadline (整改期限) is within
  ``soon_working_days`` PRC working days (``letter:{id}:due_soon``), or has passed
  (``letter:{id}:overdue``);
- a deferred material (容缺材料) not yet supplied whose promised date is within
  ``soon_working_days`` working days (``material:{id}:due_soon``), or has passed
  (``material:{id}:overdue``);
- a scheduled progress check (定期调度) whose due date has passed (``check:{id}:overdue``);
- a helper-enterprise service officer (助企服务员) whose last visit (or, before any, the
  dispatch) plus the agreed cadence lies before today (``helper:{helper}:overdue:{due_on}``,
  keyed by that due date, so that each later missed cadence warns again, once).

"Within N working days" means ``deadline >= today`` and ``working_days_between(today,
deadline) <= N`` (the working days after today up to and including the deadline, holidays
and 调休 counted as the calendar has them). A deadline that has passed raises only the
overdue warning, also when the due-soon one was never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from domain.intervention import CheckStatus
from domain.letters import LetterStatus
from domain.materials import MaterialStatus
from domain.working_days import working_days_between

if TYPE_CHECKING:
    from domain.project import KeyProject

DEFAULT_SOON_WORKING_DAYS = 3


class WarningKind(StrEnum):
    RECTIFICATION_DUE_SOON = "rectification_due_soon"  # 整改期限临近
    RECTIFICATION_OVERDUE = "rectification_overdue"  # 整改期限已过
    MATERIAL_DUE_SOON = "material_due_soon"  # 容缺材料承诺补交日期临近
    MATERIAL_OVERDUE = "material_overdue"  # 容缺材料逾期未补交
    PROGRESS_CHECK_OVERDUE = "progress_check_overdue"  # 定期调度逾期
    HELPER_VISIT_OVERDUE = "helper_visit_overdue"  # 助企服务走访逾期


@dataclass(frozen=True)
class WarningSpec:
    """A warning that is due: what :func:`due_warnings` finds and ``raise_warning`` records."""

    key: str
    kind: WarningKind
    subject_id: str  # the letter, material, check or helper it is about
    due_on: date
    message: str


@dataclass(frozen=True)
class RaisedWarning:
    """A warning as recorded on the project, with the day it was raised."""

    key: str
    kind: WarningKind
    subject_id: str
    due_on: date
    message: str
    raised_on: date

    @classmethod
    def of(cls, spec: WarningSpec, raised_on: date) -> RaisedWarning:
        return cls(spec.key, spec.kind, spec.subject_id, spec.due_on, spec.message, raised_on)


def _soon(today: date, deadline: date, soon_working_days: int) -> int | None:
    """The working days left when ``deadline`` is within the window, else None."""
    if deadline < today:
        return None
    left = working_days_between(today, deadline)
    return left if left <= soon_working_days else None


def _letter_warnings(project: KeyProject, today: date, soon: int) -> list[WarningSpec]:
    found: list[WarningSpec] = []
    for letter in project.reminder_letters.values():
        if letter.status is not LetterStatus.OPEN:
            continue
        if letter.deadline < today:
            found.append(
                WarningSpec(
                    f"letter:{letter.id}:overdue",
                    WarningKind.RECTIFICATION_OVERDUE,
                    letter.id,
                    letter.deadline,
                    f"温馨提醒函 {letter.letter_no} 的整改期限 {letter.deadline} 已过，"
                    f"尚有 {len(letter.open_issues)} 个问题未完成整改",
                )
            )
        elif (left := _soon(today, letter.deadline, soon)) is not None:
            found.append(
                WarningSpec(
                    f"letter:{letter.id}:due_soon",
                    WarningKind.RECTIFICATION_DUE_SOON,
                    letter.id,
                    letter.deadline,
                    f"温馨提醒函 {letter.letter_no} 的整改期限为 {letter.deadline}，"
                    f"还剩 {left} 个工作日",
                )
            )
    return found


def _material_warnings(project: KeyProject, today: date, soon: int) -> list[WarningSpec]:
    found: list[WarningSpec] = []
    for material in project.deferred_materials.values():
        if material.status is not MaterialStatus.DEFERRED:
            continue
        what = f"容缺材料「{material.material}」（{material.department}）"
        if material.promised_by < today:
            found.append(
                WarningSpec(
                    f"material:{material.id}:overdue",
                    WarningKind.MATERIAL_OVERDUE,
                    material.id,
                    material.promised_by,
                    f"{what}承诺补交日期 {material.promised_by} 已过，尚未补交",
                )
            )
        elif (left := _soon(today, material.promised_by, soon)) is not None:
            found.append(
                WarningSpec(
                    f"material:{material.id}:due_soon",
                    WarningKind.MATERIAL_DUE_SOON,
                    material.id,
                    material.promised_by,
                    f"{what}承诺于 {material.promised_by} 前补交，还剩 {left} 个工作日",
                )
            )
    return found


def _check_warnings(project: KeyProject, today: date) -> list[WarningSpec]:
    return [
        WarningSpec(
            f"check:{check.id}:overdue",
            WarningKind.PROGRESS_CHECK_OVERDUE,
            check.id,
            check.due_on,
            f"定期调度 {check.id} 应于 {check.due_on} 进行，已逾期未记录调度情况",
        )
        for check in project.progress_checks.values()
        if check.status is CheckStatus.SCHEDULED and check.due_on < today
    ]


def helper_visit_due_on(project: KeyProject, helper: str) -> date:
    """The day a dispatched helper's next visit is due: the last visit (or, before any, the
    dispatch) plus the agreed cadence."""
    dispatch = project.helpers[helper]
    visits = [v.visited_on for v in project.helper_visits if v.helper == helper]
    last = max(visits, default=dispatch.dispatched_on)
    return last + timedelta(days=dispatch.visit_every_days)


def _helper_warnings(project: KeyProject, today: date) -> list[WarningSpec]:
    found: list[WarningSpec] = []
    for dispatch in project.helpers.values():
        due_on = helper_visit_due_on(project, dispatch.helper)
        if due_on < today:
            found.append(
                WarningSpec(
                    f"helper:{dispatch.helper}:overdue:{due_on.isoformat()}",
                    WarningKind.HELPER_VISIT_OVERDUE,
                    dispatch.helper,
                    due_on,
                    f"助企服务员 {dispatch.name}（{dispatch.helper}）应于 {due_on} 前走访"
                    f"（每 {dispatch.visit_every_days} 天一次），已逾期",
                )
            )
    return found


def due_warnings(
    project: KeyProject, today: date, *, soon_working_days: int = DEFAULT_SOON_WORKING_DAYS
) -> list[WarningSpec]:
    """The warnings due on ``today`` that the project has not raised yet; none once closed."""
    if soon_working_days < 0:
        msg = f"soon_working_days must be >= 0, got {soon_working_days}"
        raise ValueError(msg)
    if project.is_closed:
        return []
    found = [
        *_letter_warnings(project, today, soon_working_days),
        *_material_warnings(project, today, soon_working_days),
        *_check_warnings(project, today),
        *_helper_warnings(project, today),
    ]
    return [w for w in found if w.key not in project.warnings]
