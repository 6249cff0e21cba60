"""Exactly-once in effect: which events have been applied, and how often a message was tried.

The tracking row of an event is written in the same transaction as its audit record and its
notifications, so a redelivered event changes nothing. Attempt counts survive a worker that
dies mid-task (dramatiq's own retry count does not grow then), so a message that kills its
worker is given up instead of looping. A message's count is forgotten when the message is done
(handled, or given up by its count), so the table holds the messages in flight and the
dead-lettered ones (whose re-drive sends them under new ids), not every message ever sent.
"""

from __future__ import annotations

from application.sqldb import NO_FLUSH, Cursor, Database

_COUNT_ATTEMPT = {  # the same upsert; on PostgreSQL without the WAL flush
    "postgres": "INSERT INTO message_attempts (message_id, attempts) "  # noqa: S608 - constants only
    f"SELECT %s, 1 FROM {NO_FLUSH} "
    "ON CONFLICT (message_id) DO UPDATE SET attempts = message_attempts.attempts + 1 "
    "RETURNING attempts",
    "sqlite": "INSERT INTO message_attempts (message_id, attempts) VALUES (%s, 1) "
    "ON CONFLICT (message_id) DO UPDATE SET attempts = message_attempts.attempts + 1 "
    "RETURNING attempts",
}

_FORGET = "DELETE FROM message_attempts WHERE message_id = %s"

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS event_tracking (notification_id BIGINT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS message_attempts ("
    " message_id TEXT PRIMARY KEY, attempts INTEGER NOT NULL)",
]


class Tracking:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.setup("event_tracking", SCHEMA)

    @staticmethod
    def mark_applied(cursor: Cursor, notification_id: int) -> None:
        """Records that an event is applied, in the caller's transaction (with its audit
        record and notifications, which are written with ON CONFLICT DO NOTHING: applying
        an event again changes nothing)."""
        cursor.execute(
            "INSERT INTO event_tracking (notification_id) VALUES (%s) "
            "ON CONFLICT (notification_id) DO NOTHING",
            (notification_id,),
        )

    @staticmethod
    def forget_attempts(cursor: Cursor, message_id: str) -> None:
        """Drops a message's attempt count, in the caller's transaction: the message is done
        (a redelivery after a crash between this commit and the broker's ack counts from 1
        again, and finds nothing left to do)."""
        cursor.execute(_FORGET, (message_id,))

    def forget(self, message_id: str) -> None:
        """:meth:`forget_attempts` in a statement of its own."""
        self.db.run(_FORGET, (message_id,))

    def applied(self, notification_id: int) -> bool:
        rows = self.db.query(
            "SELECT 1 FROM event_tracking WHERE notification_id = %s", (notification_id,)
        )
        return bool(rows)

    def count_attempt(self, message_id: str) -> int:
        """Counts one more attempt of a message and returns the count, in one statement; on
        PostgreSQL without waiting for the WAL flush (``NO_FLUSH``): a count lost in a crash
        of the server only allows one more attempt."""
        rows = self.db.query(_COUNT_ATTEMPT[self.db.dialect], (message_id,))
        return int(rows[0][0]) if rows else 1
