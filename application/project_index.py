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
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from application.project_index_storage import ListQuery, ProjectSummary, open_storage
from application.store import CaseStore
from domain.errors import InvalidInput
from domain.project import KeyProject, ProjectStatus
from domain.tiers import Tier, is_major
from domain.windows import Window

__all__ = ["MAX_LIMIT", "ProjectIndex", "ProjectSummary", "summarise"]

logger = logging.getLogger("ecocase.projection")

MAX_LIMIT = 200
RETRY_PAUSE = 1.0  # seconds the follower waits after a failure before it tries again
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


class ProjectIndex:
    """The project list of one case store, on the store's backend (``env`` is the store's)."""

    def __init__(self, store: CaseStore, env: Mapping[str, str]) -> None:
        self._store = store
        self._storage = open_storage(env, store.name)
        self._processing = threading.Lock()  # one applier per index; others serialise in storage
        self._applied = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- following the store ---------------------------------------------------------------
    def _process_batch(self, limit: int) -> int:
        """Applies up to ``limit`` notifications after the recorded position, in one transaction."""
        with self._processing:
            notifications = self._store.recorder.select_notifications(
                start=self._storage.position(), limit=limit, inclusive_of_start=False
            )
            if not notifications:
                return 0
            batch = [(n.id, self._store.mapper.to_domain_event(n)) for n in notifications]
            applied = self._storage.apply(batch, summarise)
        with self._applied:
            self._applied.notify_all()
        return applied

    def process_available(self, limit: int = 1000) -> int:
        """Applies everything recorded so far, in batches of ``limit``; returns how many."""
        target = self._store.recorder.max_notification_id() or 0
        total = 0
        while self.position() < target:
            total += self._process_batch(limit)
        return total

    def start(self, poll_interval: float = 0.05) -> None:
        """Follows the store in a daemon thread until :meth:`stop`."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._follow, args=(poll_interval,), name="project-index", daemon=True
        )
        self._thread.start()

    def _follow(self, poll_interval: float) -> None:
        while not self._stopping.is_set():
            try:
                applied = self._process_batch(1000)
            except Exception:
                logger.exception(
                    "project index: applying events failed; retrying in %.1fs", RETRY_PAUSE
                )
                self._stopping.wait(RETRY_PAUSE)
                continue
            if not applied:
                self._stopping.wait(poll_interval)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            if self._thread.is_alive():  # pragma: no cover - a database call that hangs
                logger.warning("project index: the follower did not stop within 30s")
            self._thread = None

    def catch_up(self, timeout: float = 2.0) -> bool:
        """Waits until the index has applied the store's current last notification. With no
        follower running, it applies them itself."""
        deadline = time.monotonic() + timeout
        target = self._store.recorder.max_notification_id() or 0
        while self.position() < target:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._thread is None:
                self._process_batch(1000)
                continue
            with self._applied:
                self._applied.wait(min(remaining, 0.05))
        return True

    def position(self) -> int:
        """The last applied notification id (0 if none)."""
        return self._storage.position()

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
