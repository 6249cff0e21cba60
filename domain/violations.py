"""Suspected violations referred for handling under law (包容审慎监管)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class ViolationReferral:
    id: str
    description: str
    legal_basis: str | None
    referred_on: date
    letter_id: str | None = None
    issue_id: str | None = None


@dataclass(frozen=True)
class AuditNote:
    note: str
    noted_on: date
