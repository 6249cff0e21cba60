"""Deficiency-tolerant acceptance (容缺办理): materials deferred with a promised date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class DeferralReason(StrEnum):
    """The two cases in which the notice lets a material be supplied later."""

    OTHER_DEPARTMENT_PERMIT = "other_department_permit"  # 缺少其它行政主管部门行政许可材料
    NOT_DECISIVE = "not_decisive"  # 对环评结论不产生颠覆性影响


class MaterialStatus(StrEnum):
    DEFERRED = "deferred"
    SUPPLIED = "supplied"


@dataclass(frozen=True)
class DeferredMaterial:
    id: str
    material: str
    department: str
    reason: DeferralReason
    promised_by: date
    deferred_on: date
    status: MaterialStatus = MaterialStatus.DEFERRED
    supplied_on: date | None = None
    note: str | None = None
