"""Who acts: the person behind every command, stamped on every event they cause."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.windows import Window


class Role(StrEnum):
    OFFICER = "officer"  # 经办人员
    SUPERVISOR = "supervisor"  # 科室/分局负责人
    AUDITOR = "auditor"  # 审计/纪检
    ADMIN = "admin"


@dataclass(frozen=True)
class Actor:
    sub: str
    name: str
    role: Role
    unit: Window


@dataclass(frozen=True)
class Stamp:
    """Who caused an event and in which request; recorded beside the event's own fields."""

    actor: Actor
    request_id: str
