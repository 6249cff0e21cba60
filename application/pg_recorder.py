"""The PostgreSQL recorder of the case store: every save is one statement, and commits stay in
notification-id order.

eventsourcing 9.5.6 gives two insert paths, and neither fits:

- the plain one locks the whole events table (``LOCK TABLE … IN EXCLUSIVE MODE``), sends
  ``NOTIFY`` and inserts in a pipelined transaction: three round trips and about 560 single-event
  saves/s on this machine;
- its database function (``POSTGRES_ENABLE_DB_FUNCTIONS=y``) is one statement but takes no lock,
  so a save can take a lower notification id and commit after a higher one, and a follower of
  the log (the relay, the read models) passes over it for good.

Here a save is one statement in autocommit::

    WITH fence AS MATERIALIZED (SELECT pg_advisory_xact_lock(<key>), pg_notify(<channel>, ''))
    INSERT INTO <events> (…) SELECT … FROM fence, unnest(…) RETURNING notification_id

Every row of the insert needs the ``fence`` row first, so the transaction holds the advisory
lock before it draws its first notification id, and keeps it until it has committed: ids are
drawn and committed one transaction at a time, in order, as with the table lock. Readers are
not blocked (the table lock did not block them either), and the key is per schema and table,
so two stores in one database do not wait for each other. One round trip and one WAL flush per
save, as the raw-insert baseline of ``bench/``.

Concurrent saves are committed together (group commit): a save that finds another one in
flight queues its rows; when the one in flight is done, one of the queued savers inserts the
rows of every queued save in one statement, so one lock, one round trip and one WAL flush
serve them all. A batch is all or nothing, so when its insert fails on a taken version, each
of its saves is tried again on its own, and only the saves that conflict get the
``IntegrityError``. A save alone (one officer at a time) is inserted at once, without waiting.

The library wraps its reads and writes in ``@retry(…, max_attempts=10, wait=0.2)``, which turns
an exhausted pool or an unreachable database into a wait of many seconds. Here every statement
runs once: a failure reaches the caller at once (and the HTTP layer answers 503).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from psycopg.sql import SQL, Composed, Identifier, Literal

#: At most this many rows in one statement of a group commit.
MAX_BATCH_ROWS = 500
#: The topic that names this module's recorder to eventsourcing's factory.
RECORDER_TOPIC = "application.pg_recorder:OrderedRecorder"


def own_connection(datastore: PostgresDatastore) -> psycopg.Connection[Any]:
    """A connection of its own (not the pool's) with the pool's settings, in autocommit: for
    a lock or a LISTEN held for long, which must not take one of the pool's."""
    pool = datastore.pool
    kwargs = dict(cast("dict[str, Any]", pool.kwargs))
    return psycopg.connect(conninfo=str(pool.conninfo), autocommit=True, **kwargs)


class _Save:
    """One caller's rows, waiting in the group commit."""

    __slots__ = ("done", "error", "events", "ids")

    def __init__(self, events: Sequence[StoredEvent]) -> None:
        self.events = events
        self.ids: list[int] | None = None
        self.error: BaseException | None = None
        self.done = False


def rendered(statement: Composed) -> str:
    """The statement as text, once: psycopg renders a Composed again at every execute (18 µs
    here), a str it takes as it is."""
    return statement.as_string(None)


def channel_for(schema: str, table: str) -> str:
    """The NOTIFY channel of one events table (a PostgreSQL identifier: 63 bytes at most)."""
    return "ecocase_events_" + hashlib.sha256(f"{schema}.{table}".encode()).hexdigest()[:24]


def lock_key(schema: str, table: str) -> int:
    """A signed 64-bit advisory-lock key for one events table."""
    digest = hashlib.sha256(f"ecocase-events:{schema}.{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


#: PostgreSQL's limit for a NOTIFY payload is 8,000 bytes.
MAX_PAYLOAD = 7900
#: The payload that says "something changed, I do not say what".
ANY_CHANGE = "*"


def changed_payload(stored_events: Sequence[StoredEvent]) -> str:
    """The NOTIFY payload of a save: ``<project id>:<new version>`` for each project saved,
    comma-separated, so that other processes can tell which cached projects are behind
    (:mod:`application.coherence`); ``*`` when that would not fit."""
    heads: dict[str, int] = {}
    for e in stored_events:
        heads[str(e.originator_id)] = max(heads.get(str(e.originator_id), 0), e.originator_version)
    payload = ",".join(f"{i}:{v}" for i, v in heads.items())
    return payload if len(payload) <= MAX_PAYLOAD else ANY_CHANGE


def parse_payload(payload: str) -> dict[UUID, int] | None:
    """The projects and versions a NOTIFY names; None when it does not say (``*``, empty, the
    library's own NOTIFY, or anything unreadable)."""
    if not payload or payload == ANY_CHANGE:
        return None
    heads: dict[UUID, int] = {}
    try:
        for item in payload.split(","):
            originator_id, _, version = item.partition(":")
            heads[UUID(originator_id)] = int(version)
    except ValueError:
        return None
    return heads


class OnceAggregateRecorder(PostgresAggregateRecorder):
    """The library's aggregate recorder (the snapshots'), every statement run once."""

    def create_table(self) -> None:
        """The library's types, tables and functions, created by one process at a time: two
        processes starting together met in ``CREATE TYPE`` and ``CREATE OR REPLACE FUNCTION``
        ("duplicate key", "tuple concurrently updated"). The lock is the schema's, held on a
        connection of its own (the pool may have just one)."""
        key = lock_key(self.datastore.schema, "(ddl)")
        with own_connection(self.datastore) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids: Sequence[int] | None = PostgresAggregateRecorder.insert_events.__wrapped__(
            self, stored_events, **kwargs
        )
        return ids

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        stored: Sequence[StoredEvent] = PostgresAggregateRecorder.select_events.__wrapped__(
            self, originator_id, gt=gt, lte=lte, desc=desc, limit=limit
        )
        return stored


class OrderedRecorder(OnceAggregateRecorder, PostgresApplicationRecorder):
    """The application recorder with the one-statement ordered insert (see the module)."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        # The library's channel is the table's name, the same in every schema of a database:
        # one per schema and table, so that saves elsewhere wake nobody here.
        self.channel_name = channel_for(datastore.schema, events_table_name)
        table = SQL("{}.{}").format(Identifier(datastore.schema), Identifier(events_table_name))
        self.append_statement = rendered(
            SQL(
                "WITH fence AS MATERIALIZED "
                "(SELECT pg_advisory_xact_lock({key}), pg_notify({channel}, %s)) "
                "INSERT INTO {table} (originator_id, originator_version, topic, state) "
                "SELECT i, v, t, s FROM fence, "
                "unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[]) AS u(i, v, t, s) "
                "RETURNING notification_id"
            ).format(
                key=Literal(lock_key(datastore.schema, events_table_name)),
                channel=Literal(self.channel_name),
                table=table,
            )
        )
        columns = SQL("SELECT originator_id, originator_version, topic, state FROM {} ").format(
            table
        )
        self.events_after_statement = rendered(
            columns
            + SQL(
                "WHERE originator_id = %s AND originator_version > %s ORDER BY originator_version"
            )
        )
        self.last_at_or_before_statement = rendered(
            columns
            + SQL("WHERE originator_id = %s AND originator_version <= %s ")
            + SQL("ORDER BY originator_version DESC LIMIT 1")
        )
        notifications = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
        ).format(table)
        order = SQL(" ORDER BY notification_id LIMIT %s")
        self.notifications_from = rendered(
            notifications + SQL("WHERE notification_id >= %s") + order
        )
        self.notifications_after = rendered(
            notifications + SQL("WHERE notification_id > %s") + order
        )
        self._head_statements: dict[tuple[str, bool], str] = {}
        self._queue: list[_Save] = []
        self._writing = False
        self._turn = threading.Condition()

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if kwargs.get("tracking") is not None:  # a process application's save: not ours
            ids: Sequence[int] | None = PostgresApplicationRecorder.insert_events(
                self, stored_events, **kwargs
            )
            return ids
        if not stored_events:
            return []
        save = _Save(stored_events)
        with self._turn:
            self._queue.append(save)
            while not save.done and self._writing:
                self._turn.wait()
            if save.done:  # inserted by the batch of another saver
                return self._outcome(save)
            self._writing = True
            batch = self._take_batch()
        try:
            self._commit(batch)
        finally:
            with self._turn:
                for queued in batch:
                    queued.done = True
                self._writing = False
                self._turn.notify_all()
        return self._outcome(save)

    def _take_batch(self) -> list[_Save]:
        """The queued saves, oldest first, up to MAX_BATCH_ROWS rows (at least one save)."""
        batch: list[_Save] = []
        rows = 0
        while self._queue and (not batch or rows + len(self._queue[0].events) <= MAX_BATCH_ROWS):
            batch.append(self._queue.pop(0))
            rows += len(batch[-1].events)
        return batch

    @staticmethod
    def _outcome(save: _Save) -> list[int]:
        if save.error is not None:
            raise save.error
        if save.ids is None:  # pragma: no cover - every save of a batch gets one or the other
            msg = "the save was neither inserted nor refused"
            raise RuntimeError(msg)
        return save.ids

    def _commit(self, batch: list[_Save]) -> None:
        if len(batch) == 1:
            try:
                batch[0].ids = self._insert(batch[0].events)
            except BaseException as e:  # noqa: BLE001 - handed to the saver, who raises it
                batch[0].error = e
            return
        try:
            ids = self._insert([e for save in batch for e in save.events])
        except IntegrityError:  # some save took a taken version: find which, one by one
            for save in batch:
                self._commit([save])
            return
        except BaseException as e:  # noqa: BLE001 - every saver of the batch raises it
            for save in batch:
                save.error = e
            return
        start = 0
        for save in batch:
            save.ids = ids[start : start + len(save.events)]
            start += len(save.events)

    def _insert(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        params = (
            changed_payload(stored_events),
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.append_statement, params, prepare=True)
            ids: list[int] = sorted(row["notification_id"] for row in curs.fetchall())
            return ids

    # --- reads, each run once (the library retries them for seconds) ------------------------
    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """The store's two questions (a project's events after a version; its last event at
        or before one) are prepared statements rendered once; any other goes the library's
        way, once."""
        if lte is None and not desc and limit is None:
            return self._stored(self.events_after_statement, (originator_id, gt or 0))
        if gt is None and lte is not None and desc and limit == 1:
            return self._stored(self.last_at_or_before_statement, (originator_id, lte))
        return super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        if start is not None and stop is None and not topics:  # the followers' own question
            statement = self.notifications_from if inclusive_of_start else self.notifications_after
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(statement, (start, limit), prepare=True)
                return [
                    Notification(
                        id=row["notification_id"],
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    )
                    for row in curs.fetchall()
                ]
        found: Sequence[Notification] = (
            PostgresApplicationRecorder.select_notifications.__wrapped__(
                self, start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
        )
        return found

    def max_notification_id(self) -> int | None:
        head: int | None = PostgresApplicationRecorder.max_notification_id.__wrapped__(self)
        return head

    def head_records(
        self, snapshots_table: str, originator_id: UUID, lte: int | None = None
    ) -> tuple[StoredEvent | None, list[StoredEvent]]:
        """A project's latest snapshot (from ``snapshots_table`` of this schema) and its events
        after it, in one query: what a load of the project now needs; with ``lte``, the same
        as of that version (the snapshot and events at or before it)."""
        key = (snapshots_table, lte is not None)
        statement = self._head_statements.get(key)
        if statement is None:
            schema = Identifier(self.datastore.schema)
            upto = SQL(" AND originator_version <= %(lte)s" if lte is not None else "")
            statement = rendered(
                SQL(
                    "WITH s AS (SELECT originator_version, topic, state FROM {snapshots} "
                    "WHERE originator_id = %(id)s{upto} ORDER BY originator_version DESC "
                    "LIMIT 1) "
                    "SELECT true AS snapshot, originator_version, topic, state FROM s "
                    "UNION ALL (SELECT false, originator_version, topic, state FROM {table} "
                    "WHERE originator_id = %(id)s{upto} "
                    "AND originator_version > COALESCE((SELECT originator_version FROM s), 0) "
                    "ORDER BY originator_version)"
                ).format(
                    snapshots=SQL("{}.{}").format(schema, Identifier(snapshots_table)),
                    table=SQL("{}.{}").format(schema, Identifier(self.events_table_name)),
                    upto=upto,
                )
            )
            self._head_statements[key] = statement
        params: dict[str, Any] = {"id": originator_id}
        if lte is not None:
            params["lte"] = lte
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params, prepare=True)
            rows = curs.fetchall()
        snapshot, events = None, []
        for row in rows:
            stored = StoredEvent(
                originator_id=originator_id,
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            if row["snapshot"]:
                snapshot = stored
            else:
                events.append(stored)
        return snapshot, events

    def _stored(self, statement: Any, params: tuple[Any, ...]) -> list[StoredEvent]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params, prepare=True)
            return [
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]
