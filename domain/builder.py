"""The construction unit (建设单位) and its contact."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Contact:
    name: str
    phone: str
    email: str


@dataclass(frozen=True)
class Builder:
    name: str
    credit_code: str  # 统一社会信用代码, validated per GB 32100-2015
    contact: Contact | None = None
