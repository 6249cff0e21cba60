"""Early intervention (提前介入) and its scheduled progress checks (定期调度)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class Stage(StrEnum):
    FEASIBILITY = "feasibility"  # 可研
    APPROVAL = "approval"  # 立项
    PRELIMINARY_DESIGN = "preliminary_design"  # 初设


@dataclass(frozen=True)
class EarlyIntervention:
    stage: Stage
    guidance: str  # 环评编制指导
    started_on: date


class CheckStatus(StrEnum):
    SCHEDULED = "scheduled"
    DONE = "done"


@dataclass(frozen=True)
class ProgressCheck:
    id: str
    due_on: date
    status: CheckStatus = CheckStatus.SCHEDULED
    summary: str | None = None
    checked_on: date | None = None
