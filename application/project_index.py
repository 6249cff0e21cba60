"""The project list behind ``GET /projects``: a tracked projection of the case store.

The index follows the store's notification log and folds each event into one summary row per
project (:func:`summarise`). A batch of events and the position of its last notification are
committed in one transaction of the view storage (:mod:`application.project_index_storage`),
so each event is applied exactly once: re-processing a position changes nothing, and after a
crash the index resumes from the recorded position. The view lives on the store's backend: in
memory with POPO, a separate SQLite file beside the store's, or tables in the store's
PostgreSQL schema.

The list is eventually consistent with the store; :meth:`ProjectIndex.catch_up` waits for it
to reach what the store has recorded.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from application.follower import LogFollower
from application.project_index_storage import (
    IndexStorage,
    ListQuery,
    ProjectSummary,
    open_storage,
)
from application.store import CaseStore
from domain.errors import InvalidInput
from domain.project import KeyProject, ProjectStatus
from domain.tiers import Tier, is_major
from domain.windows import Window

__all__ = ["MAX_LIMIT", "ProjectIndex", "ProjectSummary", "summarise"]

logger = logging.getLogger("ecocase.projection")

MAX_LIMIT = 200
STATUSES = frozenset({ProjectStatus.OPEN, ProjectStatus.CLOSED})

Page = tuple[list[ProjectSummary], str | None]


def summarise(row: ProjectSummary | None, event: Any) -> ProjectSummary | None:
    """The project's row after ``event`` (an event of :class:`KeyProject`)."""
    at = event.timestamp.astimezone(UTC)
    if isinstance(event, KeyProject.Registered):
        return ProjectSummary(
            id=event.originator_id,
            name=event.name,
            project_code=event.project_code,
            window=str(event.window),
            tiers=tuple(str(t) for t in event.tiers),
            status=ProjectStatus.OPEN,
            is_major=is_major(event.tiers),
            open_letters=0,
            officers=(),
            version=event.originator_version,
            registered_at=at,
            updated_at=at,
        )
    if row is None:
        logger.warning(
            "project index: %s of unregistered project %s skipped",
            type(event).__name__,
            event.originator_id,
        )
        return None
    update: dict[str, Any] = {"version": event.originator_version, "updated_at": at}
    match type(event).__name__:
        case "ReminderLetterIssued":
            update["open_letters"] = row.open_letters + 1
        case "ReminderLetterClosed":
            update["open_letters"] = max(row.open_letters - 1, 0)
        case "ProjectClosed":
            update["status"] = ProjectStatus.CLOSED
        case "OfficerAssigned" if event.assignment.officer not in row.officers:
            update["officers"] = (*row.officers, event.assignment.officer)
        case "OfficerReleased":
            update["officers"] = tuple(o for o in row.officers if o != event.officer)
    return replace(row, **update)


def encode_cursor(row: ProjectSummary) -> str:
    """Opaque: base64url of the JSON ``[registered_at, id]`` of the page's last row."""
    raw = json.dumps([row.registered_at.isoformat(), str(row.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, pid = json.loads(raw)
        at, project_id = datetime.fromisoformat(moment), UUID(pid)
    except (ValueError, TypeError, AttributeError, binascii.Error) as e:
        raise InvalidInput("cursor", "is not a cursor of this list") from e
    if at.tzinfo is None:
        raise InvalidInput("cursor", "is not a cursor of this list")
    return at.astimezone(UTC), project_id


def _choice(field: str, value: str | None, allowed: frozenset[str]) -> None:
    if value is not None and value not in allowed:
        raise InvalidInput(field, f"must be one of {', '.join(sorted(allowed))}")


class ProjectIndex(LogFollower[IndexStorage]):
    """The project list of one case store, on the store's backend (``env`` is the store's)."""

    name = "project index"

    def __init__(self, store: CaseStore, env: Mapping[str, str]) -> None:
        super().__init__(store, open_storage(env, store.name), summarise)

    # --- reading -------------------------------------------------------------------------
    def list(
        self,
        *,
        readable_windows: frozenset[str] | None,
        reader_sub: str | None = None,
        window: str | None = None,
        tier: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A page of projects in registration order (then id). ``readable_windows`` None reads
        every window; otherwise those windows and the projects ``reader_sub`` is active on."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
        _choice("window", window, frozenset(Window))
        _choice("tier", tier, frozenset(Tier))
        _choice("status", status, STATUSES)
        after = decode_cursor(cursor) if cursor is not None else None
        windows = None if readable_windows is None else frozenset(map(str, readable_windows))
        query = ListQuery(
            windows,
            reader_sub,
            None if window is None else str(window),  # plain str, also for StrEnum members
            None if tier is None else str(tier),
            None if status is None else str(status),
            after,
            limit + 1,
        )
        rows = self._storage.select(query)
        if len(rows) > limit:
            return rows[:limit], encode_cursor(rows[limit - 1])
        return rows, None

    def close(self) -> None:
        self.stop()
        self._storage.close()
