"""Who acts: the person behind every command, stamped on every event they cause."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """Who caused an event and in which request; recorded beside the event's own fields.

    ``prev`` links the event into its project's hash chain: the hex SHA-256 of the project's
    previous stored event ("" on the first). The store sets it when recording (callers make
    ``Stamp(actor, request_id)``); ``application.mapper.chain_hash`` defines the hash. It takes
    no part in comparisons: a stamp says who and which request, whichever link it is on."""

    actor: Actor
    request_id: str
    prev: str = field(default="", compare=False)
