"""``GET /notifications``: the notifications recorded for the events of the cases, with their
channel and delivery state (the in-app inbox included).

Who reads which: auditors and admins all; supervisors their window's (the city bureau's: all)
and those of the cases they are assigned to; officers their own inbox (``officer:{sub}``) and the
e-mail and webhook notifications of the projects they may read, never another person's inbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromQuery, Parameter

from application.cases import SHANGHAI, Cases
from application.notification_rules import officer_recipient
from application.notifications import Notification, Notifications
from application.project_index import MAX_LIMIT as INDEX_MAX_LIMIT
from application.project_index import ProjectIndex
from domain import access, errors
from domain.actor import Actor, Role

AnyRequest = Request[Actor, Any, State]

Recipient = Annotated[
    str | None,
    Parameter(
        description="unit:{credit_code}, officer:{sub} or supervisor:{window}",
        max_length=200,
    ),
]


class NotificationItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    key: str
    notification_id: int
    project_id: str
    window: str
    recipient: str
    channel: str
    address: str | None = None  # e-mail address or webhook target; absent for the inbox
    subject: str
    body: str
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class NotificationList(msgspec.Struct, kw_only=True):
    items: list[NotificationItem]
    next_cursor: str | None


def notification_item(n: Notification) -> NotificationItem:
    return NotificationItem(
        key=n.key,
        notification_id=n.notification_id,
        project_id=str(n.project_id),
        window=n.window,
        recipient=n.recipient,
        channel=str(n.channel),
        address=n.address,
        subject=n.subject,
        body=n.body,
        state=str(n.state),
        attempts=n.attempts,
        last_error=n.last_error,
        created_at=n.created_at.astimezone(SHANGHAI),
        sent_at=n.sent_at.astimezone(SHANGHAI) if n.sent_at else None,
    )


def _assigned_projects(index: ProjectIndex, sub: str) -> frozenset[UUID]:
    """The projects ``sub`` is active on (outside their window too), from the project list."""
    index.catch_up(timeout=2.0)
    found: set[UUID] = set()
    cursor: str | None = None
    while True:
        rows, cursor = index.list(
            readable_windows=frozenset(), reader_sub=sub, limit=INDEX_MAX_LIMIT, cursor=cursor
        )
        found.update(r.id for r in rows)
        if cursor is None:
            return frozenset(found)


@get(
    "/notifications",
    summary="Notifications sent, with channel and delivery state (newest first)",
    tags=["notifications"],
    sync_to_thread=True,
)
def list_notifications(
    request: AnyRequest,
    state: State,
    cases: NamedDependency[Cases],
    index: NamedDependency[ProjectIndex],
    project: FromQuery[UUID | None] = None,
    recipient: FromQuery[Recipient] = None,
    limit: FromQuery[int] = 50,
    cursor: FromQuery[str | None] = None,
) -> NotificationList:
    actor = request.user
    notifications: Notifications = state.notifications
    own_inbox = officer_recipient(actor.sub)
    reader_inbox = own_inbox if actor.role is Role.OFFICER else None
    if (
        reader_inbox is not None
        and recipient is not None
        and recipient != own_inbox
        and recipient.startswith(("officer:", "supervisor:"))
    ):
        raise errors.NotAllowed(f"an officer reads only their own inbox ({own_inbox})")
    windows: frozenset[str] | None = None
    reader_projects: frozenset[UUID] = frozenset()
    if project is not None:
        cases.get(actor, project)  # 404 unknown, 403 not readable
    elif recipient == own_inbox:
        pass  # one's own inbox, whatever the project
    else:
        readable = access.readable_windows(actor)
        if readable is not None:
            windows = frozenset(map(str, readable))
            reader_projects = _assigned_projects(index, actor.sub)
    items, next_cursor = notifications.list(
        project=project,
        recipient=recipient,
        windows=windows,
        limit=limit,
        cursor=cursor,
        reader_projects=reader_projects,
        reader_inbox=reader_inbox,
    )
    return NotificationList(items=[notification_item(n) for n in items], next_cursor=next_cursor)


ROUTES: list[Any] = [list_notifications]
