"""The officer network (专人对接): who holds the case in which role, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class OfficerRole(StrEnum):
    LEAD = "lead"  # 主办 (licensing line); exactly one active at a time
    CO_ORGANIZER = "co_organizer"  # 协办 (professional committee)
    ASSESSOR = "assessor"  # 帮办 (technical assessment party)
    JOINT = "joint"  # 联办 (divisions/sections)


@dataclass(frozen=True)
class OfficerAssignment:
    officer: str
    name: str
    role: OfficerRole
    assigned_on: date
    released_on: date | None = None
    release_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.released_on is None
