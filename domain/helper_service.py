"""Helper-enterprise service officers (助企服务员) and their visits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class HelperReason(StrEnum):
    COMPLEX_SITUATION = "complex_situation"  # 情况复杂
    LEGACY_ISSUES = "legacy_issues"  # 历史遗留问题较多
    MEASURES_NOT_IN_PLACE = "measures_not_in_place"  # 污染防治措施落实不到位


class VisitKind(StrEnum):
    ON_SITE_HELP = "on_site_help"  # 现场帮扶
    GUIDANCE = "guidance"  # 业务指导
    EXPERT_CONSULTATION = "expert_consultation"  # 联系专家咨询


@dataclass(frozen=True)
class HelperDispatch:
    helper: str
    name: str
    reason: HelperReason
    dispatched_on: date
    visit_every_days: int  # the agreed visiting cadence


@dataclass(frozen=True)
class HelperVisit:
    id: str
    helper: str
    visited_on: date
    kind: VisitKind
    findings: str
    follow_ups: str | None = None
