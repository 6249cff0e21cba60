"""Who may read and write which project (roles and window jurisdiction)."""

from __future__ import annotations

from domain.actor import Actor, Role
from domain.windows import Window


def may_read(actor: Actor, window: Window, officers_on_case: frozenset[str]) -> bool:
    """Auditors and admins read everything, and so do the city bureau's supervisors;
    others read their own window and the cases they are assigned to."""
    if actor.role in (Role.AUDITOR, Role.ADMIN):
        return True
    if actor.role is Role.SUPERVISOR and actor.unit is Window.CITY:
        return True
    return actor.unit is window or actor.sub in officers_on_case


def may_write(actor: Actor, window: Window, officers_on_case: frozenset[str]) -> bool:
    """Auditors write nothing; officers and supervisors write to their own window's projects
    and to any project they are assigned to; admins write everywhere."""
    if actor.role is Role.AUDITOR:
        return False
    if actor.role is Role.ADMIN:
        return True
    return actor.unit is window or actor.sub in officers_on_case


def may_register(actor: Actor, window: Window) -> bool:
    """A project is registered by staff of the window that handles it (or an admin)."""
    if actor.role is Role.AUDITOR:
        return False
    return actor.role is Role.ADMIN or actor.unit is window


def readable_windows(actor: Actor) -> frozenset[Window] | None:
    """The windows whose projects the actor lists; None means every window."""
    if actor.role in (Role.AUDITOR, Role.ADMIN):
        return None
    if actor.role is Role.SUPERVISOR and actor.unit is Window.CITY:
        return None
    return frozenset({actor.unit})
