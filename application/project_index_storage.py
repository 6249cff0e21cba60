"""Where the project list lives: in memory (POPO), a SQLite file, or PostgreSQL tables.

Every backend keeps the rows (``project_index``) and the tracking position, the last applied
notification id (``project_index_tracking``), side by side, and applies a batch of events in
ONE transaction: it skips events at or below the position, folds the rest into the rows,
writes them and advances the position only from the value it read. POPO and SQLite lock the
position first; PostgreSQL reads it with the rows and checks it in the one statement that
writes (:class:`PostgresStorage`), and folds again from the new position if another process
moved it. A batch that was applied already changes nothing, and two followers racing on one
view serialise, so every event is applied exactly once.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import psycopg
from eventsourcing.utils import Environment
from psycopg import sql
from psycopg_pool import ConnectionPool

from application.sqldb import TrackingConflictError, Upsert, advance_and_upsert, postgres_target

TRACKING_NAME = "project_index"  # the one row of project_index_tracking


@dataclass(frozen=True)
class ProjectSummary:
    """One line of ``GET /projects``."""

    id: UUID
    name: str
    project_code: str
    window: str
    tiers: tuple[str, ...]
    status: str
    is_major: bool
    open_letters: int
    officers: tuple[str, ...]  # active officers' subs
    version: int
    registered_at: datetime  # UTC
    updated_at: datetime  # UTC


COLUMNS = tuple(ProjectSummary.__dataclass_fields__)


@dataclass(frozen=True)
class ListQuery:
    windows: frozenset[str] | None  # readable windows; None: all
    reader_sub: str | None  # also readable: projects where this officer is active
    window: str | None
    tier: str | None
    status: str | None
    after: tuple[datetime, UUID] | None  # (registered_at, id) of the previous page's last row
    limit: int


#: One step of the projection: the row after an event (None: no row).
Fold = Callable[[ProjectSummary | None, Any], ProjectSummary | None]
#: (notification id, decoded domain event), in notification order.
Batch = Sequence[tuple[int, Any]]
Load = Callable[[set[UUID]], dict[UUID, ProjectSummary]]


class IndexStorage(Protocol):
    def position(self) -> int: ...
    def apply(self, batch: Batch, fold: Fold) -> int: ...
    def select(self, query: ListQuery) -> list[ProjectSummary]: ...
    def snapshot(self) -> tuple[int, list[ProjectSummary]]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Changes:
    count: int  # events applied
    position: int  # the new tracking position
    rows: list[ProjectSummary]  # rows to write


def changes(current: int, batch: Batch, load: Load, fold: Fold) -> Changes | None:
    """What applying the batch's events after position ``current`` writes; None if nothing."""
    todo = [(n, e) for n, e in batch if n > current]
    if not todo:
        return None
    before = load({e.originator_id for _, e in todo})
    after: dict[UUID, ProjectSummary] = {}
    for _, event in todo:
        pid = event.originator_id
        row = fold(after.get(pid, before.get(pid)), event)
        if row is not None:
            after[pid] = row
    return Changes(len(todo), todo[-1][0], list(after.values()))


def _preloaded(rows: dict[UUID, ProjectSummary]) -> Load:
    """A Load of rows read already (it may hold more than it is asked for: changes() looks
    rows up by id)."""
    return lambda _ids: rows


def open_storage(env: Mapping[str, str], app_name: str) -> IndexStorage:
    """The view storage on the store's backend, as its persistence environment says."""
    e = Environment(app_name, dict(env))
    module = e.get("PERSISTENCE_MODULE") or "eventsourcing.popo"
    if module == "eventsourcing.popo":
        return MemoryStorage()
    if module == "eventsourcing.sqlite":
        dbname = e.get("SQLITE_DBNAME") or ""
        memory = ":memory:" in dbname or "mode=memory" in dbname
        path = ":memory:" if memory else str(Path(dbname).with_suffix(".project_index.sqlite"))
        return SQLiteStorage(path, timeout=float(e.get("SQLITE_LOCK_TIMEOUT") or 5))
    if module == "eventsourcing.postgres":
        connect, schema, timeout = postgres_target(e, default_timeout=30)
        return PostgresStorage(connect, schema, timeout)
    msg = f"the project index has no storage for PERSISTENCE_MODULE={module!r}"
    raise ValueError(msg)


def visible(row: ProjectSummary, q: ListQuery) -> bool:
    if q.windows is None or row.window in q.windows:
        return True
    return q.reader_sub is not None and q.reader_sub in row.officers


class MemoryStorage:
    """POPO: the rows and position in dicts under a lock, with the in-memory store."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[UUID, ProjectSummary] = {}
        self._position = 0

    def position(self) -> int:
        with self._lock:
            return self._position

    def apply(self, batch: Batch, fold: Fold) -> int:
        with self._lock:
            done = changes(self._position, batch, self._load, fold)
            if done is None:
                return 0
            self._rows.update((r.id, r) for r in done.rows)  # nothing changed before this line
            self._position = done.position
            return done.count

    def _load(self, ids: set[UUID]) -> dict[UUID, ProjectSummary]:
        return {i: self._rows[i] for i in ids if i in self._rows}

    def snapshot(self) -> tuple[int, list[ProjectSummary]]:
        """The position and every row by id, read together (for a rebuild's comparison)."""
        with self._lock:
            return self._position, sorted(self._rows.values(), key=lambda r: r.id)

    def select(self, query: ListQuery) -> list[ProjectSummary]:
        with self._lock:
            rows = sorted(self._rows.values(), key=lambda r: (r.registered_at, r.id))
        return [
            r
            for r in rows
            if visible(r, query)
            and (query.window is None or r.window == query.window)
            and (query.tier is None or query.tier in r.tiers)
            and (query.status is None or r.status == query.status)
            and (query.after is None or (r.registered_at, r.id) > query.after)
        ][: query.limit]

    def close(self) -> None:
        pass


def _text_time(moment: datetime) -> str:
    """UTC with microseconds, fixed width: sorts as text in the order of time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time_text(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


_QUOTED = ", ".join(f'"{c}"' for c in COLUMNS)
_UPSERT = (  # built from the constant column names only
    f"INSERT INTO project_index ({_QUOTED}) VALUES ({', '.join('?' * len(COLUMNS))}) "  # noqa: S608
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f'"{c}" = excluded."{c}"' for c in COLUMNS if c != "id")
)
_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS project_index (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, project_code TEXT NOT NULL,
        "window" TEXT NOT NULL, tiers TEXT NOT NULL /* JSON array */, status TEXT NOT NULL,
        is_major INTEGER NOT NULL, open_letters INTEGER NOT NULL,
        officers TEXT NOT NULL /* JSON array of subs */, version INTEGER NOT NULL,
        registered_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS project_index_order ON project_index (registered_at, id)",
    "CREATE INDEX IF NOT EXISTS project_index_window ON project_index "
    '("window", registered_at, id)',
    "CREATE INDEX IF NOT EXISTS project_index_status ON project_index (status, registered_at, id)",
    """CREATE TABLE IF NOT EXISTS project_index_tracking (
        name TEXT PRIMARY KEY, position INTEGER NOT NULL)""",
)


class SQLiteStorage:
    """A SQLite file of its own (WAL), so that view writes never wait on command writes.
    One connection, used under a lock; BEGIN IMMEDIATE serialises appliers across processes."""

    def __init__(self, path: str, timeout: float) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._transaction() as db:
            for statement in _SQLITE_SCHEMA:
                db.execute(statement)
            db.execute(
                "INSERT OR IGNORE INTO project_index_tracking VALUES (?, 0)", (TRACKING_NAME,)
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def position(self) -> int:
        with self._lock:
            (position,) = self._db.execute(
                "SELECT position FROM project_index_tracking WHERE name = ?", (TRACKING_NAME,)
            ).fetchone()
        return int(position)

    def apply(self, batch: Batch, fold: Fold) -> int:
        with self._transaction() as db:
            (current,) = db.execute(
                "SELECT position FROM project_index_tracking WHERE name = ?", (TRACKING_NAME,)
            ).fetchone()

            def load(ids: set[UUID]) -> dict[UUID, ProjectSummary]:
                marks = ", ".join("?" * len(ids))
                found = db.execute(
                    f"SELECT {_QUOTED} FROM project_index WHERE id IN ({marks})",  # noqa: S608
                    [str(i) for i in ids],
                )
                return {s.id: s for s in map(self._summary, found)}

            done = changes(current, batch, load, fold)
            if done is None:
                return 0
            db.executemany(_UPSERT, [self._row(r) for r in done.rows])
            advanced = db.execute(
                "UPDATE project_index_tracking SET position = ? WHERE name = ? AND position = ?",
                (done.position, TRACKING_NAME, current),
            )
            if advanced.rowcount != 1:
                raise TrackingConflictError(f"project index position moved from {current}")
            return done.count

    def select(self, query: ListQuery) -> list[ProjectSummary]:
        where, params = ["1 = 1"], list[object]()
        if query.windows is not None:
            marks = ", ".join("?" * len(query.windows))
            where.append(
                f'("window" IN ({marks}) OR EXISTS '  # noqa: S608 - marks are "?, ?"
                "(SELECT 1 FROM json_each(officers) WHERE value = ?))"
            )
            params += [*sorted(query.windows), query.reader_sub]
        for column, value in (("window", query.window), ("status", query.status)):
            if value is not None:
                where.append(f'"{column}" = ?')
                params.append(value)
        if query.tier is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(tiers) WHERE value = ?)")
            params.append(query.tier)
        if query.after is not None:
            where.append("(registered_at, id) > (?, ?)")
            params += [_text_time(query.after[0]), str(query.after[1])]
        statement = (
            f"SELECT {_QUOTED} FROM project_index WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY registered_at, id LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(statement, [*params, query.limit]).fetchall()
        return [self._summary(r) for r in rows]

    def snapshot(self) -> tuple[int, list[ProjectSummary]]:
        """The position and every row by id, read in one (read) transaction: a consistent
        pair even while another process applies events."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                (position,) = self._db.execute(
                    "SELECT position FROM project_index_tracking WHERE name = ?", (TRACKING_NAME,)
                ).fetchone()
                found = self._db.execute(f"SELECT {_QUOTED} FROM project_index").fetchall()  # noqa: S608
            finally:
                self._db.execute("COMMIT")
        return int(position), sorted(map(self._summary, found), key=lambda r: r.id)

    @staticmethod
    def _row(s: ProjectSummary) -> tuple[object, ...]:
        return (
            str(s.id), s.name, s.project_code, s.window, json.dumps(s.tiers), s.status,
            int(s.is_major), s.open_letters, json.dumps(s.officers), s.version,
            _text_time(s.registered_at), _text_time(s.updated_at),
        )  # fmt: skip

    @staticmethod
    def _summary(r: Sequence[Any]) -> ProjectSummary:
        return ProjectSummary(
            UUID(r[0]), r[1], r[2], r[3], tuple(json.loads(r[4])), r[5], bool(r[6]), r[7],
            tuple(json.loads(r[8])), r[9], _time_text(r[10]), _time_text(r[11]),
        )  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._db.close()


_PG_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS {s}.project_index (
        id uuid PRIMARY KEY, name text NOT NULL, project_code text NOT NULL,
        "window" text NOT NULL, tiers text[] NOT NULL, status text NOT NULL,
        is_major boolean NOT NULL, open_letters integer NOT NULL, officers text[] NOT NULL,
        version integer NOT NULL, registered_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS project_index_order ON {s}.project_index (registered_at, id)",
    "CREATE INDEX IF NOT EXISTS project_index_window ON {s}.project_index "
    '("window", registered_at, id)',
    "CREATE INDEX IF NOT EXISTS project_index_status ON {s}.project_index "
    "(status, registered_at, id)",
    "CREATE INDEX IF NOT EXISTS project_index_tiers ON {s}.project_index USING gin (tiers)",
    "CREATE INDEX IF NOT EXISTS project_index_officers ON {s}.project_index USING gin (officers)",
    """CREATE TABLE IF NOT EXISTS {s}.project_index_tracking (
        name text PRIMARY KEY, position bigint NOT NULL)""",
    "INSERT INTO {s}.project_index_tracking VALUES ({name}, 0) ON CONFLICT DO NOTHING",
)

#: The types of project_index's columns, in COLUMNS order (for a binary COPY).
_PG_TYPES = ("uuid", "text", "text", "text", "text[]", "text", "bool", "int4", "text[]", "int4",
             "timestamptz", "timestamptz")  # fmt: skip
#: The same for the bulk load, whose two text[] columns are sent as ready bytes (text_array).
_PG_COPY_TYPES = tuple("bytea" if t == "text[]" else t for t in _PG_TYPES)
_TEXT_OID = 25


@functools.lru_cache(maxsize=4096)
def text_array(items: tuple[str, ...]) -> bytes:
    """``items`` as a one-dimensional text[] in PostgreSQL's binary format, as ``array_recv``
    reads it (dimensions, no-null flag, element type; size and lower bound; each element's
    length and UTF-8 bytes), for a binary COPY. psycopg's list dumper is Python code: 5.5 µs
    of a project row's 6.7 µs in a COPY of 100,000 rows (one run). The tuples repeat (tiers,
    officers), so each is encoded once."""
    if not items:
        return struct.pack("!iiI", 0, 0, _TEXT_OID)
    parts = [struct.pack("!iiIii", 1, 0, _TEXT_OID, len(items), 1)]
    for item in items:
        data = item.encode()
        parts += (struct.pack("!i", len(data)), data)
    return b"".join(parts)


#: A row of the project list as a bulk load COPYs it: :data:`COLUMNS`' values in their order,
#: the two text[] columns (tiers, officers) as :func:`text_array` bytes.
CopyRow = tuple[UUID, str, str, str, bytes, str, bool, int, bytes, int, datetime, datetime]


def copy_row(r: ProjectSummary) -> CopyRow:
    """The bulk load's row of ``r``."""
    return (
        r.id, r.name, r.project_code, r.window, text_array(r.tiers), r.status, r.is_major,
        r.open_letters, text_array(r.officers), r.version, r.registered_at, r.updated_at,
    )  # fmt: skip


ATTEMPTS = 10  # optimistic applies of one batch before a TrackingConflictError
CACHED_ROWS = 64  # writes of up to this many rows are kept, built once (a poll's batches)
_P_QUOTED = ", ".join(f'p."{c}"' for c in COLUMNS)  # the columns of the alias p


class PostgresStorage:
    """Tables in the store's database and schema, reached through a small psycopg pool.

    A batch is applied optimistically, in two statements and no explicit transaction: one
    SELECT reads the position and the batch's rows together (one snapshot), the fold runs with
    no lock held, and one statement advances the position from the value read and upserts the
    folded rows only if it did (a data-modifying CTE: atomic, the rows and the position commit
    together). If another process moved the position in between, that statement writes
    nothing, and the batch is read and folded again from the new position; after ATTEMPTS such
    conflicts, TrackingConflictError. Every statement is rendered once, to a string (the schema
    is fixed), so psycopg's caches and prepared statements apply."""

    def __init__(self, connect: dict[str, str], schema: str, timeout: float) -> None:
        self._s = sql.Identifier(schema)
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            kwargs={**connect, "autocommit": True, "connect_timeout": max(int(timeout), 1)},
            min_size=1, max_size=4, timeout=timeout, name="project_index", open=False,
        )  # fmt: skip
        self._pool.open(wait=True, timeout=timeout)
        name = sql.Literal(TRACKING_NAME)
        with self._pool.connection() as conn, conn.transaction():
            # Two processes starting at once must not race on CREATE TABLE IF NOT EXISTS.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{schema}.project_index",))
            for statement in _PG_SCHEMA:
                conn.execute(sql.SQL(statement).format(s=self._s, name=name))
        self._columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        s = self._s.as_string()
        self._index, self._tracking = f"{s}.project_index", f"{s}.project_index_tracking"
        # The statements below are built from the schema's quoted identifier and the constant
        # column names only (S608 on each).
        self._position_sql = f"SELECT position FROM {self._tracking} WHERE name = %s"  # noqa: S608
        self._read_sql = (
            f"SELECT t.position, {_P_QUOTED} "  # noqa: S608
            f"FROM {self._tracking} t LEFT JOIN {self._index} p ON p.id = ANY(%s) "
            "WHERE t.name = %s"
        )
        self._writes: dict[int, str] = {}  # the write of n <= CACHED_ROWS rows, by n

    def _write_sql(self, rows: int) -> str:
        """Advances the position from the value read and, only if it did, upserts ``rows``
        rows (:func:`~application.sqldb.advance_and_upsert`)."""
        text = self._writes.get(rows)
        if text is None:
            upsert = Upsert(self._index, COLUMNS, _PG_TYPES, ("id",), rows)
            text = advance_and_upsert(self._tracking, [upsert])
            if rows <= CACHED_ROWS:
                self._writes[rows] = text
        return text

    def _sql(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(s=self._s, columns=self._columns)

    def position(self) -> int:
        with self._pool.connection() as conn:
            row = conn.execute(self._position_sql, (TRACKING_NAME,)).fetchone()
        assert row is not None  # noqa: S101 - created with the table
        return int(row[0])

    def apply(self, batch: Batch, fold: Fold) -> int:
        if not batch:
            return 0
        ids = list({e.originator_id for _, e in batch})
        with self._pool.connection() as conn, conn.cursor() as cur:
            for _ in range(ATTEMPTS):
                found = cur.execute(self._read_sql, (ids, TRACKING_NAME)).fetchall()
                current = int(found[0][0])  # the tracking row was created with the table
                rows = {s.id: s for s in (self._summary(r[1:]) for r in found if r[1] is not None)}
                done = changes(current, batch, _preloaded(rows), fold)
                if done is None:
                    return 0
                params: list[object] = [done.position, TRACKING_NAME, current]
                for summary in done.rows:
                    params += self._row(summary)
                moved = cur.execute(self._write_sql(len(done.rows)), params).fetchone()
                if moved is not None and moved[0] == 1:
                    return done.count
        msg = f"project index position kept moving ({ATTEMPTS} attempts from {current})"
        raise TrackingConflictError(msg)

    def load(self, rows: Iterable[CopyRow], position: int) -> int:
        """Writes ``rows`` (:func:`copy_row`'s) with COPY and moves the position from 0 to
        ``position``, in one transaction: how a rebuild fills its fresh index with the rows its
        bulk replay folded (:mod:`application.replay`). TrackingConflictError when the position
        is not 0; a row that is there already fails the COPY. Returns how many rows were
        written."""
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(
                self._sql(
                    "SELECT position FROM {s}.project_index_tracking WHERE name = %s FOR UPDATE"
                ),
                (TRACKING_NAME,),
            ).fetchone()
            if row is None or int(row[0]) != 0:
                raise TrackingConflictError("a bulk load needs a project index at position 0")
            count = 0
            with (
                conn.cursor() as cur,
                cur.copy(
                    self._sql("COPY {s}.project_index ({columns}) FROM STDIN (FORMAT BINARY)")
                ) as copy,
            ):
                copy.set_types(_PG_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
                    count += 1
            conn.execute(
                self._sql(
                    "UPDATE {s}.project_index_tracking SET position = %s "
                    "WHERE name = %s AND position = 0"
                ),
                (position, TRACKING_NAME),
            )
        return count

    def select(self, query: ListQuery) -> list[ProjectSummary]:
        where: list[sql.Composable] = [sql.SQL("true")]
        params: list[object] = []
        if query.windows is not None:
            where.append(sql.SQL('("window" = ANY(%s) OR officers @> ARRAY[%s]::text[])'))
            params += [sorted(query.windows), query.reader_sub]
        for column, value in (("window", query.window), ("status", query.status)):
            if value is not None:
                where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                params.append(value)
        if query.tier is not None:
            where.append(sql.SQL("tiers @> ARRAY[%s]::text[]"))
            params.append(query.tier)
        if query.after is not None:
            where.append(sql.SQL("(registered_at, id) > (%s, %s)"))
            params += list(query.after)
        statement = sql.SQL(
            "SELECT {columns} FROM {s}.project_index WHERE {where} "
            "ORDER BY registered_at, id LIMIT %s"
        ).format(columns=self._columns, s=self._s, where=sql.SQL(" AND ").join(where))
        with self._pool.connection() as conn:
            rows = conn.execute(statement, [*params, query.limit]).fetchall()
        return [self._summary(r) for r in rows]

    def snapshot(self) -> tuple[int, list[ProjectSummary]]:
        """The position and every row by id, read in one REPEATABLE READ transaction: a
        consistent pair even while a follower applies events."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = conn.execute(
                self._sql("SELECT position FROM {s}.project_index_tracking WHERE name = %s"),
                (TRACKING_NAME,),
            ).fetchone()
            found = conn.execute(self._sql("SELECT {columns} FROM {s}.project_index")).fetchall()
        assert row is not None  # noqa: S101 - created with the table
        return int(row[0]), sorted(map(self._summary, found), key=lambda r: r.id)

    @staticmethod
    def _row(s: ProjectSummary) -> tuple[object, ...]:
        return (
            s.id, s.name, s.project_code, s.window, list(s.tiers), s.status, s.is_major,
            s.open_letters, list(s.officers), s.version, s.registered_at, s.updated_at,
        )  # fmt: skip

    @staticmethod
    def _summary(r: Sequence[Any]) -> ProjectSummary:
        return ProjectSummary(
            r[0], r[1], r[2], r[3], tuple(r[4]), r[5], r[6], r[7], tuple(r[8]), r[9],
            r[10].astimezone(UTC), r[11].astimezone(UTC),
        )  # fmt: skip

    def close(self) -> None:
        self._pool.close()
