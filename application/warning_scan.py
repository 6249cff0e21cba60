"""The early-warning scan (预警扫描): raises every due warning on every open project.

The scheduler runs :func:`scan_warnings` as a system actor. It is safe to run again and to run
twice at once: a project raises each warning key once, and a second scan that loses the race
to save finds, on its retry, the keys already raised and saves nothing.
"""

from __future__ import annotations

import logging

from application.cases import Acting, Cases, WriteContention
from application.project_index import MAX_LIMIT, ProjectIndex
from domain.actor import Actor, Role
from domain.project import ProjectStatus
from domain.warnings import DEFAULT_SOON_WORKING_DAYS, due_warnings
from domain.windows import Window

#: Who raises warnings: the scheduler, as an admin-role system actor of the city bureau.
SYSTEM_ACTOR = Actor("ecocase-scheduler", "预警服务", Role.ADMIN, Window.CITY)

logger = logging.getLogger("ecocase.warnings")


def scan_warnings(
    cases: Cases,
    index: ProjectIndex,
    *,
    request_id: str,
    soon_working_days: int = DEFAULT_SOON_WORKING_DAYS,
) -> int:
    """Raises the due warnings of every open project; returns how many were newly raised.

    The projects come from the project index, caught up first; a project the index does not
    list yet is scanned next time. A project with too many concurrent writers is skipped (and
    logged) so that it does not hold up the others; the next scan raises its warnings."""
    if not index.catch_up():
        logger.warning("warning scan %s: the project index is behind the store", request_id)
    acting = Acting(SYSTEM_ACTOR, request_id)
    today = cases.today()
    raised = 0
    cursor: str | None = None
    while True:
        rows, cursor = index.list(
            readable_windows=None, status=ProjectStatus.OPEN, limit=MAX_LIMIT, cursor=cursor
        )
        for row in rows:
            project = cases.get(SYSTEM_ACTOR, row.id)
            specs = due_warnings(project, today, soon_working_days=soon_working_days)
            if not specs:
                continue
            try:
                raised += cases.raise_warnings(acting, row.id, tuple(specs))
            except WriteContention:
                logger.warning(
                    "warning scan %s: project %s skipped, too many concurrent writers",
                    request_id,
                    row.id,
                )
        if cursor is None:
            return raised
