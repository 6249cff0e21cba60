"""Stored notifications and their delivery state, in the workers' database.

A notification's identity is its ``key``: ``{notification_id}:{recipient}:{channel}``, the event's
position in the notification log, who it is for and how. :meth:`Notifications.add` inserts with
``ON CONFLICT (key) DO NOTHING`` in the caller's transaction, so however often the broker
redelivers an event, each (event, recipient, channel) is stored once.

Delivery states::

    inbox:           stored as sent (the inbox is delivered by being stored)
    email, webhook:  pending --start_attempt--> (send) --mark_sent--> sent
                          \\--mark_failed--> failed --start_attempt--> ... --mark_dead--> dead

``sent`` is final: nothing moves a sent notification back. ``dead`` is left by :meth:`reopen`
(a re-drive) or by a late :meth:`mark_sent`.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from application.notification_rules import Channel, NotificationSpec
from application.sqldb import Cursor, Database
from domain.errors import InvalidInput

__all__ = ["MAX_LIMIT", "DeliveryState", "Notification", "Notifications", "notification_key"]

MAX_LIMIT: Final = 200
MAX_ERROR_LENGTH: Final = 2000  # last_error is cut to this many characters


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # an attempt failed; another will follow
    DEAD = "dead"  # given up: no more attempts


#: States in which a notification still needs a delivery attempt.
UNFINISHED: Final = (DeliveryState.PENDING, DeliveryState.FAILED)

#: How long one delivery attempt holds a notification: longer than a channel's timeout (SMTP
#: 10 s, webhook 5 s). A message redelivered after its worker died waits out the rest of it.
LEASE: Final = timedelta(seconds=15)


class DeliveryInFlight(Exception):  # noqa: N818 - it says what is going on
    """Another attempt is delivering this notification right now: try again after ``wait``."""

    def __init__(self, key: str, wait: timedelta) -> None:
        super().__init__(f"notification {key} is being delivered; try again in {wait}")
        self.wait = wait


@dataclass(frozen=True)
class Notification:
    key: str
    notification_id: int
    project_id: UUID
    window: str
    recipient: str
    channel: Channel
    address: str | None
    subject: str
    body: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


def notification_key(notification_id: int, recipient: str, channel: Channel | str) -> str:
    """The once-per-event-recipient-channel identity."""
    return f"{notification_id}:{recipient}:{channel}"


_COLUMNS: Final = (
    "key, notification_id, project_id, window_code, recipient, channel, address, subject, body, "
    "state, attempts, last_error, created_at, sent_at"
)


def _schema(dialect: str) -> list[str]:
    uuid_type, time_type, int_type = (
        ("UUID", "TIMESTAMPTZ", "BIGINT") if dialect == "postgres" else ("TEXT", "TEXT", "INTEGER")
    )
    return [
        f"""CREATE TABLE IF NOT EXISTS notifications (
            key TEXT PRIMARY KEY,
            notification_id {int_type} NOT NULL,
            project_id {uuid_type} NOT NULL,
            window_code TEXT NOT NULL,
            recipient TEXT NOT NULL,
            channel TEXT NOT NULL,
            address TEXT,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at {time_type} NOT NULL,
            sent_at {time_type},
            updated_at {time_type} NOT NULL,
            lease_until {time_type}
        )""",
        "CREATE INDEX IF NOT EXISTS notifications_project_idx ON notifications (project_id)",
        "CREATE INDEX IF NOT EXISTS notifications_recipient_idx ON notifications (recipient)",
        "CREATE INDEX IF NOT EXISTS notifications_state_idx ON notifications (state)",
        "CREATE INDEX IF NOT EXISTS notifications_order_idx "
        "ON notifications (notification_id, key)",
    ]


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


def encode_cursor(n: Notification) -> str:
    """Opaque: base64url of the JSON ``[notification_id, key]`` of the page's last row."""
    raw = json.dumps([n.notification_id, n.key], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        notification_id, key = json.loads(raw)
    except (ValueError, TypeError, binascii.Error) as e:
        raise InvalidInput("cursor", "is not a cursor of this list") from e
    if (
        not isinstance(notification_id, int)
        or isinstance(notification_id, bool)
        or not isinstance(key, str)
    ):
        raise InvalidInput("cursor", "is not a cursor of this list")
    return notification_id, key


class Notifications:
    """The ``notifications`` table of the workers' database (created if missing)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.setup("notifications", _schema(db.dialect))

    # --- conversions -------------------------------------------------------------------------
    def _time(self, moment: datetime) -> Any:
        if moment.utcoffset() is None:
            msg = f"a notification time needs a time zone: {moment!r}"
            raise ValueError(msg)
        at = moment.astimezone(UTC)
        return at if self.db.dialect == "postgres" else at.isoformat()

    def _uuid(self, value: UUID) -> Any:
        return value if self.db.dialect == "postgres" else str(value)

    @staticmethod
    def _read_time(value: Any) -> datetime:
        at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        return at.astimezone(UTC)

    def _row(self, r: Sequence[Any]) -> Notification:
        return Notification(
            key=r[0],
            notification_id=int(r[1]),
            project_id=r[2] if isinstance(r[2], UUID) else UUID(r[2]),
            window=r[3],
            recipient=r[4],
            channel=Channel(r[5]),
            address=r[6],
            subject=r[7],
            body=r[8],
            state=DeliveryState(r[9]),
            attempts=int(r[10]),
            last_error=r[11],
            created_at=self._read_time(r[12]),
            sent_at=None if r[13] is None else self._read_time(r[13]),
        )

    # --- recording ---------------------------------------------------------------------------
    def add(
        self,
        cursor: Cursor,
        *,
        notification_id: int,
        project_id: UUID,
        window: str,
        specs: Sequence[NotificationSpec],
        now: datetime,
    ) -> builtins.list[str]:
        """Stores the notifications of one event in the caller's transaction (``cursor``), once
        per key. Inbox notifications are stored as sent. Returns the keys, in ``specs`` order,
        that still need a delivery: e-mail and webhook notifications that are pending or failed,
        whether stored now or by an earlier delivery of the same event."""
        if not specs:
            return []
        at = self._time(now)
        chosen: dict[str, NotificationSpec] = {}  # by key, in order: a duplicate spec is one
        for spec in specs:
            key = notification_key(notification_id, spec.recipient, spec.channel)
            if key in chosen:
                continue
            chosen[key] = spec
            inbox = spec.channel is Channel.INBOX
            cursor.execute(
                f"INSERT INTO notifications ({_COLUMNS}, updated_at) "  # noqa: S608 - fixed text
                f"VALUES ({_marks(15)}) ON CONFLICT (key) DO NOTHING",
                (
                    key,
                    notification_id,
                    self._uuid(project_id),
                    str(window),
                    spec.recipient,
                    str(spec.channel),
                    spec.address,
                    spec.subject,
                    spec.body,
                    str(DeliveryState.SENT if inbox else DeliveryState.PENDING),
                    0,
                    None,
                    at,
                    at if inbox else None,
                    at,
                ),
            )
        to_deliver = [k for k, spec in chosen.items() if spec.channel is not Channel.INBOX]
        if not to_deliver:  # the inbox is delivered by being stored
            return []
        cursor.execute(
            f"SELECT key FROM notifications WHERE key IN ({_marks(len(to_deliver))}) "  # noqa: S608
            f"AND state IN (%s, %s)",
            (*to_deliver, *map(str, UNFINISHED)),
        )
        unfinished = {r[0] for r in cursor.fetchall()}
        return [k for k in to_deliver if k in unfinished]

    # --- reading -----------------------------------------------------------------------------
    def get(self, key: str) -> Notification | None:
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM notifications WHERE key = %s",  # noqa: S608 - fixed text
            (key,),
        )
        return self._row(rows[0]) if rows else None

    # --- delivery ----------------------------------------------------------------------------
    def start_attempt(
        self, key: str, *, now: datetime | None = None, lease: timedelta = LEASE
    ) -> Notification | None:
        """Counts a delivery attempt and returns the notification to send, leased to this
        attempt for ``lease``; None when there is nothing to send (unknown, sent or dead).
        Raises :class:`DeliveryInFlight` while another attempt holds the lease, so that two
        messages for one notification do not send it twice at once."""
        moment = now or datetime.now(tz=UTC)
        with self.db.transaction() as cursor:
            cursor.execute(
                "UPDATE notifications SET attempts = attempts + 1, lease_until = %s "
                "WHERE key = %s AND channel <> %s AND state IN (%s, %s) "
                "AND (lease_until IS NULL OR lease_until < %s)",
                (self._time(moment + lease), key, str(Channel.INBOX), *map(str, UNFINISHED),
                 self._time(moment)),
            )  # fmt: skip
            if cursor.rowcount != 1:
                cursor.execute(
                    "SELECT state, lease_until FROM notifications WHERE key = %s", (key,)
                )
                row = cursor.fetchone()
                if row is not None and row[0] in UNFINISHED and row[1] is not None:
                    until = (
                        row[1] if isinstance(row[1], datetime) else datetime.fromisoformat(row[1])
                    )
                    raise DeliveryInFlight(key, max(until - moment, timedelta(0)))
                return None
            cursor.execute(
                f"SELECT {_COLUMNS} FROM notifications WHERE key = %s",  # noqa: S608
                (key,),
            )
            return self._row(cursor.fetchone())

    def mark_sent(self, key: str, now: datetime) -> bool:
        """Delivered. Never moves a sent notification (its first ``sent_at`` stays)."""
        at = self._time(now)
        return self._move(
            key,
            "state = %s, sent_at = %s, updated_at = %s",
            (str(DeliveryState.SENT), at, at),
            (DeliveryState.PENDING, DeliveryState.FAILED, DeliveryState.DEAD),
        )

    def mark_failed(self, key: str, error: str, now: datetime) -> bool:
        """An attempt failed and another will follow; ignored once sent or dead."""
        at = self._time(now)
        return self._move(
            key,
            "state = %s, last_error = %s, updated_at = %s",
            (str(DeliveryState.FAILED), error[:MAX_ERROR_LENGTH], at),
            UNFINISHED,
        )

    def mark_dead(self, key: str, error: str, now: datetime) -> bool:
        """Given up (retries exhausted, or a permanent refusal); ignored once sent."""
        at = self._time(now)
        return self._move(
            key,
            "state = %s, last_error = %s, updated_at = %s",
            (str(DeliveryState.DEAD), error[:MAX_ERROR_LENGTH], at),
            UNFINISHED,
        )

    def reopen(self, key: str, now: datetime) -> bool:
        """A dead notification becomes pending again (re-driven from the dead letters)."""
        return self._move(
            key,
            "state = %s, updated_at = %s",
            (str(DeliveryState.PENDING), self._time(now)),
            (DeliveryState.DEAD,),
        )

    def _move(
        self,
        key: str,
        assignments: str,
        values: Sequence[Any],
        from_states: Sequence[DeliveryState],
    ) -> bool:
        """One conditional UPDATE in its own transaction; whether the row changed."""
        changed = self.db.run(
            f"UPDATE notifications SET {assignments}, lease_until = NULL "  # noqa: S608 - fixed text
            f"WHERE key = %s AND channel <> %s AND state IN ({_marks(len(from_states))})",
            (*values, key, str(Channel.INBOX), *map(str, from_states)),
        )
        return changed == 1

    # --- listing -----------------------------------------------------------------------------
    def list(
        self,
        *,
        project: UUID | None = None,
        recipient: str | None = None,
        windows: frozenset[str] | None = None,
        limit: int = 100,
        cursor: str | None = None,
        reader_projects: frozenset[UUID] = frozenset(),
        reader_inbox: str | None = None,
    ) -> tuple[builtins.list[Notification], str | None]:
        """A page of notifications, newest event first, and the cursor of the next page.

        ``windows`` None reads every window; otherwise the notifications of projects of those
        windows and of ``reader_projects``. With ``reader_inbox`` (an officer's
        ``officer:{sub}``), in-app notifications are read only when they are that inbox's, and
        that inbox is read whatever the project's window.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
        where: list[str] = []
        params: list[Any] = []
        if project is not None:
            where.append("project_id = %s")
            params.append(self._uuid(project))
        if recipient is not None:
            where.append("recipient = %s")
            params.append(recipient)
        scope, scope_params = "1 = 1", list[Any]()
        if windows is not None:
            parts = []
            if windows:
                parts.append(f"window_code IN ({_marks(len(windows))})")
                scope_params += sorted(map(str, windows))
            if reader_projects:
                parts.append(f"project_id IN ({_marks(len(reader_projects))})")
                scope_params += [self._uuid(p) for p in sorted(reader_projects)]
            scope = "(" + " OR ".join(parts) + ")" if parts else "1 = 0"
        if reader_inbox is not None:
            where.append(f"(recipient = %s OR (channel <> %s AND {scope}))")
            params += [reader_inbox, str(Channel.INBOX), *scope_params]
        else:
            where.append(scope)
            params += scope_params
        if cursor is not None:
            after_id, after_key = decode_cursor(cursor)
            where.append("(notification_id < %s OR (notification_id = %s AND key < %s))")
            params += [after_id, after_id, after_key]
        rows = self.db.query(
            f"SELECT {_COLUMNS} FROM notifications WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY notification_id DESC, key DESC LIMIT %s",
            (*params, limit + 1),
        )
        page = [self._row(r) for r in rows]
        if len(page) > limit:
            return page[:limit], encode_cursor(page[limit - 1])
        return page, None
