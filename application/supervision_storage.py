"""Where the supervision view lives: a SQLite file beside the store's, tables in the store's
PostgreSQL schema, or (with the in-memory POPO store) an in-memory SQLite database.

Three tables, named from a prefix (``supervision`` by default, so that a rebuild can fill fresh
tables beside the live ones):

- ``{prefix}_projects``: what a letter row needs to know about its project (code, name, window);
- ``{prefix}_letters``: one row per reminder letter (温馨提醒函), keyed by (project, letter id);
- ``{prefix}_tracking``: the last applied notification id.

A batch of events is applied in ONE transaction of :class:`~application.sqldb.Database`: it
skips events at or below the position, folds the rest into the rows, writes the rows that
changed and advances the position only from the value it read. SQLite locks the position
first (``BEGIN IMMEDIATE``); PostgreSQL reads it with the rows in one statement and checks it
in the one statement that writes, and folds again from the new position if another process
moved it (:meth:`SupervisionStorage._apply_optimistically`). A batch applied already changes
nothing, and two followers on one view serialise, so every event is applied exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import msgspec
import psycopg
from eventsourcing.utils import Environment

from application.sqldb import (
    Cursor,
    Database,
    TrackingConflictError,
    Upsert,
    advance_and_upsert,
    postgres_target,
    quoted,
)

DEFAULT_PREFIX = "supervision"
PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
TRACKING_NAME = "supervision"  # the one row of {prefix}_tracking
CHUNK = 400  # ids per IN (...) list
ATTEMPTS = 10  # PostgreSQL: optimistic applies of one batch before a TrackingConflictError
CACHED_ROWS = 64  # PostgreSQL: writes of up to this many rows are kept, built once


@dataclass(frozen=True)
class IssueRecord:
    id: str
    severity: str  # domain.letters.Severity value
    found_in: str  # domain.letters.FoundIn value
    description: str
    status: str  # domain.letters.IssueStatus value


@dataclass(frozen=True)
class LetterRecord:
    """One stored row: a reminder letter with its project's identity and its issues."""

    project_id: UUID
    project_code: str
    project_name: str
    window: str
    letter_id: str
    letter_no: str
    issued_on: date
    deadline: date
    status: str  # "open" or "closed" (domain.letters.LetterStatus)
    closed_on: date | None
    issues: tuple[IssueRecord, ...]
    version: int  # the project's version when the row last changed


@dataclass(frozen=True)
class ProjectRecord:
    id: UUID
    project_code: str
    name: str
    window: str
    status: str
    version: int


@dataclass(frozen=True)
class ProjectRectifications:
    """The fold's state per project: the project and its letters (by letter id)."""

    project: ProjectRecord
    letters: Mapping[str, LetterRecord] = field(default_factory=dict)


@dataclass(frozen=True)
class LetterFacts:
    """The columns the per-window summary needs."""

    window: str
    status: str
    issued_on: date
    deadline: date
    closed_on: date | None


#: One step of the projection: the project's state after an event (None: no state).
Fold = Callable[[ProjectRectifications | None, Any], ProjectRectifications | None]
#: (notification id, decoded domain event), in notification order.
Batch = Sequence[tuple[int, Any]]


def _chunks(ids: Sequence[UUID]) -> Iterable[Sequence[UUID]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


_JSON = msgspec.json.Encoder()


def issues_json(issues: Iterable[Sequence[str]]) -> str:
    """The ``issues`` column: the issues as a JSON array of [id, severity, found in,
    description, status], without spaces, non-ASCII text as it is (the text of
    ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``, character for character,
    at a tenth of its cost)."""
    return _JSON.encode(issues if isinstance(issues, list) else list(issues)).decode()


def _issues_json(issues: tuple[IssueRecord, ...]) -> str:
    return issues_json([[i.id, i.severity, i.found_in, i.description, i.status] for i in issues])


def _issues(text: str) -> tuple[IssueRecord, ...]:
    return tuple(IssueRecord(*item) for item in msgspec.json.decode(text))


LETTER_COLUMNS = (
    "project_id", "project_code", "project_name", "window", "letter_id", "letter_no",
    "issued_on", "deadline", "status", "closed_on", "issues", "version",
)  # fmt: skip
PROJECT_COLUMNS = ("id", "project_code", "name", "window", "status", "version")
#: The PostgreSQL types of the columns above, for a binary COPY (:meth:`SupervisionStorage.load`).
PG_LETTER_TYPES = ("uuid", "text", "text", "text", "text", "text", "date", "date", "text",
                   "date", "text", "int4")  # fmt: skip
PG_PROJECT_TYPES = ("uuid", "text", "text", "text", "text", "int4")
_P_COLUMNS = tuple(f'"{c}"' for c in PROJECT_COLUMNS)
_L_COLUMNS = tuple(f'"{c}"' for c in LETTER_COLUMNS)


def _upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    marks = ", ".join(["%s"] * len(columns))
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c not in key)
    return (
        f"INSERT INTO {table} ({quoted(columns)}) VALUES ({marks}) "  # noqa: S608 - constants
        f"ON CONFLICT ({quoted(key)}) DO UPDATE SET {updates}"
    )


#: A project row's values in :data:`PROJECT_COLUMNS` order, as the view stores them.
ProjectValues = tuple[UUID, str, str, str, str, int]
#: A letter row's values in :data:`LETTER_COLUMNS` order (the issues as :func:`issues_json`).
LetterValues = tuple[UUID, str, str, str, str, str, date, date, str, date | None, str, int]


def project_values(p: ProjectRecord) -> ProjectValues:
    return (p.id, p.project_code, p.name, p.window, p.status, p.version)


def letter_values(r: LetterRecord) -> LetterValues:
    return (
        r.project_id, r.project_code, r.project_name, r.window, r.letter_id, r.letter_no,
        r.issued_on, r.deadline, r.status, r.closed_on, _issues_json(r.issues), r.version,
    )  # fmt: skip


@dataclass(frozen=True)
class _Changes:
    count: int  # events applied
    position: int  # the new tracking position
    projects: list[ProjectRecord]  # project rows to write
    letters: list[LetterRecord]  # letter rows to write


def _changes(
    current: int, batch: Batch, before: Mapping[UUID, ProjectRectifications], fold: Fold
) -> _Changes | None:
    """What applying the batch's events after position ``current`` writes, given the states
    ``before`` them (it may hold more projects than the events touch); None if nothing. The
    rows written are those that changed, compared by value."""
    todo = [(n, e) for n, e in batch if n > current]
    if not todo:
        return None
    after: dict[UUID, ProjectRectifications] = {}
    for _, event in todo:
        pid = event.originator_id
        state = fold(after.get(pid, before.get(pid)), event)
        if state is not None:
            after[pid] = state
    projects: list[ProjectRecord] = []
    letters: list[LetterRecord] = []
    for pid, state in after.items():
        old = before.get(pid)
        if old is not None and old.project == state.project and old.letters == state.letters:
            continue
        projects.append(state.project)
        letters += (
            letter
            for letter_id, letter in state.letters.items()
            if old is None or old.letters.get(letter_id) != letter
        )
    return _Changes(len(todo), todo[-1][0], projects, letters)


class SupervisionStorage:
    """The view's tables in one :class:`Database` (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, prefix: str = DEFAULT_PREFIX) -> None:
        if not PREFIX.match(prefix):
            msg = f"a table prefix is lower-case letters, digits and _, not {prefix!r}"
            raise ValueError(msg)
        self.db = db
        self.prefix = prefix
        self._postgres = db.dialect == "postgres"
        self._letters = f"{prefix}_letters"
        self._projects = f"{prefix}_projects"
        self._tracking = f"{prefix}_tracking"
        # Built from the checked prefix and constant column names only (S608 on each).
        self._position_sql = f"SELECT position FROM {self._tracking} WHERE name = %s"  # noqa: S608
        self._advance_sql = (
            f"UPDATE {self._tracking} SET position = %s "  # noqa: S608
            "WHERE name = %s AND position = %s"
        )
        self._read_sql = (  # PostgreSQL (= ANY): the position and the projects' rows
            f"SELECT t.position, {', '.join(f'p.{c}' for c in _P_COLUMNS)}, "  # noqa: S608
            f"{', '.join(f'l.{c}' for c in _L_COLUMNS)} FROM {self._tracking} t "
            f"LEFT JOIN {self._projects} p ON p.id = ANY(%s) "
            # l.project_id = ANY as well: without it the planner hashes the whole letters
            # table (a seq scan of 70k rows, 40 ms per batch at 1M events; 0.4 ms with it)
            f"LEFT JOIN {self._letters} l ON l.project_id = p.id AND l.project_id = ANY(%s) "
            "WHERE t.name = %s"
        )
        # The writes of up to CACHED_ROWS rows, by (project rows, letter rows).
        self._writes: dict[tuple[int, int], str] = {}
        day = "date" if self._postgres else "TEXT"
        pid = "uuid" if self._postgres else "TEXT"
        db.setup(
            self._letters,
            (
                f"""CREATE TABLE IF NOT EXISTS {self._projects} (
                    id {pid} PRIMARY KEY, project_code TEXT NOT NULL, name TEXT NOT NULL,
                    "window" TEXT NOT NULL, status TEXT NOT NULL, version INTEGER NOT NULL)""",
                f"""CREATE TABLE IF NOT EXISTS {self._letters} (
                    project_id {pid} NOT NULL, project_code TEXT NOT NULL,
                    project_name TEXT NOT NULL, "window" TEXT NOT NULL, letter_id TEXT NOT NULL,
                    letter_no TEXT NOT NULL, issued_on {day} NOT NULL, deadline {day} NOT NULL,
                    status TEXT NOT NULL, closed_on {day}, issues TEXT NOT NULL /* JSON */,
                    version INTEGER NOT NULL, PRIMARY KEY (project_id, letter_id))""",
                f"CREATE INDEX IF NOT EXISTS {self._letters}_window ON {self._letters} "
                '("window", status, deadline)',
                f"""CREATE TABLE IF NOT EXISTS {self._tracking} (
                    name TEXT PRIMARY KEY, position BIGINT NOT NULL)""",
                f"INSERT INTO {self._tracking} (name, position) "  # noqa: S608 - constants
                f"VALUES ('{TRACKING_NAME}', 0) ON CONFLICT (name) DO NOTHING",
            ),
        )

    # --- parameters and rows, per dialect ---------------------------------------------------
    def _param(self, value: Any) -> Any:
        if self._postgres:
            return value
        if isinstance(value, UUID):
            return str(value)
        if isinstance(value, date):
            return value.isoformat()
        return value

    @staticmethod
    def _letter(row: Sequence[Any]) -> LetterRecord:
        return LetterRecord(
            UUID(str(row[0])), row[1], row[2], row[3], row[4], row[5], _day(row[6]),
            _day(row[7]), row[8], None if row[9] is None else _day(row[9]), _issues(row[10]),
            int(row[11]),
        )  # fmt: skip

    # --- tracking ------------------------------------------------------------------------
    def position(self) -> int:
        (row,) = self.db.query(self._position_sql, (TRACKING_NAME,))
        return int(row[0])

    def apply(self, batch: Batch, fold: Fold) -> int:
        """Applies the batch's events after the recorded position, in one transaction."""
        if not batch:
            return 0
        if self._postgres:
            return self._apply_optimistically(batch, fold)
        with self.db.transaction() as cur:  # BEGIN IMMEDIATE: the position is locked
            cur.execute(self._position_sql, (TRACKING_NAME,))
            current = int(cur.fetchone()[0])
            ids = list(dict.fromkeys(e.originator_id for n, e in batch if n > current))
            done = _changes(current, batch, self._load(cur, ids), fold)
            if done is None:
                return 0
            upsert_project = _upsert(self._projects, PROJECT_COLUMNS, ("id",))
            upsert_letter = _upsert(self._letters, LETTER_COLUMNS, ("project_id", "letter_id"))
            for p in done.projects:
                cur.execute(upsert_project, [self._param(v) for v in project_values(p)])
            for letter in done.letters:
                cur.execute(upsert_letter, [self._param(v) for v in letter_values(letter)])
            cur.execute(self._advance_sql, (done.position, TRACKING_NAME, current))
            if cur.rowcount != 1:
                msg = f"supervision position moved from {current}"
                raise TrackingConflictError(msg)
            return done.count

    def _apply_optimistically(self, batch: Batch, fold: Fold) -> int:
        """PostgreSQL: one SELECT reads the position and the batch's projects and letters
        together (one snapshot); the fold runs with no lock held; one statement advances the
        position from the value read and upserts the changed rows only if it did (a
        data-modifying CTE: atomic). If another process moved the position in between, it
        writes nothing and the batch is read and folded again from the new position; after
        ATTEMPTS such conflicts, TrackingConflictError."""
        ids = list(dict.fromkeys(e.originator_id for _, e in batch))
        current = -1
        for _ in range(ATTEMPTS):
            current, before = self._read(ids)
            done = _changes(current, batch, before, fold)
            if done is None:
                return 0
            params: list[Any] = [done.position, TRACKING_NAME, current]
            for p in done.projects:
                params += project_values(p)
            for letter in done.letters:
                params += letter_values(letter)
            text = self._write_sql(len(done.projects), len(done.letters))
            ((moved,),) = self.db.query(text, params)
            if moved == 1:
                return done.count
        msg = f"supervision position kept moving ({ATTEMPTS} attempts from {current})"
        raise TrackingConflictError(msg)

    def _read(self, ids: list[UUID]) -> tuple[int, dict[UUID, ProjectRectifications]]:
        """PostgreSQL: the position and the states of the projects ``ids``, in one statement."""
        projects: dict[UUID, ProjectRecord] = {}
        letters: dict[UUID, dict[str, LetterRecord]] = {}
        rows = self.db.query(self._read_sql, (ids, ids, TRACKING_NAME))
        for r in rows:
            if r[1] is None:
                continue
            pid = r[1]
            if pid not in projects:
                projects[pid] = ProjectRecord(pid, r[2], r[3], r[4], r[5], int(r[6]))
            if r[7] is not None:
                letter = self._letter(r[7:])
                letters.setdefault(pid, {})[letter.letter_id] = letter
        states = {
            pid: ProjectRectifications(project, letters.get(pid, {}))
            for pid, project in projects.items()
        }
        return int(rows[0][0]), states

    def _write_sql(self, projects: int, letters: int) -> str:
        """PostgreSQL: advances the position from the value read and, only if it did, upserts
        ``projects`` project rows and ``letters`` letter rows
        (:func:`~application.sqldb.advance_and_upsert`)."""
        text = self._writes.get((projects, letters))
        if text is None:
            text = advance_and_upsert(self._tracking, [
                Upsert(self._projects, PROJECT_COLUMNS, PG_PROJECT_TYPES, ("id",), projects),
                Upsert(self._letters, LETTER_COLUMNS, PG_LETTER_TYPES, ("project_id", "letter_id"),
                       letters),
            ])  # fmt: skip
            if projects + letters <= CACHED_ROWS:
                self._writes[(projects, letters)] = text
        return text

    def load(
        self, projects: Iterable[ProjectValues], letters: Iterable[LetterValues], position: int
    ) -> int:
        """PostgreSQL: writes the rows (:func:`project_values`', :func:`letter_values`') with
        COPY and moves the position from 0 to ``position``, in one transaction: how a rebuild
        fills its fresh view with the rows its bulk replay folded (:mod:`application.replay`).
        TrackingConflictError when the position is not 0; a row that is there already fails
        the COPY. Returns how many rows were written."""
        if not self._postgres:
            msg = "a bulk load of the supervision view is PostgreSQL's (COPY)"
            raise ValueError(msg)
        with self.db.transaction() as cur:
            cur.execute(
                f"SELECT position FROM {self._tracking} WHERE name = %s FOR UPDATE",  # noqa: S608
                (TRACKING_NAME,),
            )
            if int(cur.fetchone()[0]) != 0:
                msg = "a bulk load needs a supervision view at position 0"
                raise TrackingConflictError(msg)
            copying = cast(psycopg.Cursor[Any], cur)  # the PostgreSQL Database's cursor
            count = 0
            with copying.copy(
                f"COPY {self._projects} ({quoted(PROJECT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(PG_PROJECT_TYPES)
                for project in projects:
                    copy.write_row(project)
                    count += 1
            with copying.copy(
                f"COPY {self._letters} ({quoted(LETTER_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(PG_LETTER_TYPES)
                for letter in letters:
                    copy.write_row(letter)
                    count += 1
            cur.execute(
                f"UPDATE {self._tracking} SET position = %s "  # noqa: S608
                "WHERE name = %s AND position = 0",
                (position, TRACKING_NAME),
            )
        return count

    def _load(self, cur: Cursor, ids: list[UUID]) -> dict[UUID, ProjectRectifications]:
        projects: dict[UUID, ProjectRecord] = {}
        letters: dict[UUID, dict[str, LetterRecord]] = {}
        for chunk in _chunks(ids):
            marks = ", ".join(["%s"] * len(chunk))
            params = [self._param(i) for i in chunk]
            cur.execute(
                f"SELECT {quoted(PROJECT_COLUMNS)} FROM {self._projects} "  # noqa: S608
                f"WHERE id IN ({marks})",
                params,
            )
            for r in cur.fetchall():
                pid = UUID(str(r[0]))
                projects[pid] = ProjectRecord(pid, r[1], r[2], r[3], r[4], int(r[5]))
            cur.execute(
                f"SELECT {quoted(LETTER_COLUMNS)} FROM {self._letters} "  # noqa: S608
                f"WHERE project_id IN ({marks})",
                params,
            )
            for r in cur.fetchall():
                letter = self._letter(r)
                letters.setdefault(letter.project_id, {})[letter.letter_id] = letter
        return {
            pid: ProjectRectifications(project, letters.get(pid, {}))
            for pid, project in projects.items()
        }

    # --- reading -------------------------------------------------------------------------
    def _where(
        self, windows: frozenset[str] | None, window: str | None
    ) -> tuple[list[str], list[Any]]:
        where, params = ["1 = 1"], list[Any]()
        if windows is not None:
            if not windows:
                where.append("1 = 0")
            else:
                where.append(f'"window" IN ({", ".join(["%s"] * len(windows))})')
                params += sorted(windows)
        if window is not None:
            where.append('"window" = %s')
            params.append(window)
        return where, params

    def letters(
        self,
        *,
        windows: frozenset[str] | None,
        window: str | None = None,
        status: str | None = None,
        deadline_before: date | None = None,
        deadline_from: date | None = None,
    ) -> list[LetterRecord]:
        """Letter rows, by deadline then project code and letter id. ``windows`` None: all."""
        where, params = self._where(windows, window)
        if status is not None:
            where.append("status = %s")
            params.append(status)
        if deadline_before is not None:
            where.append("deadline < %s")
            params.append(self._param(deadline_before))
        if deadline_from is not None:
            where.append("deadline >= %s")
            params.append(self._param(deadline_from))
        rows = self.db.query(
            f"SELECT {quoted(LETTER_COLUMNS)} FROM {self._letters} "  # noqa: S608
            f"WHERE {' AND '.join(where)} ORDER BY deadline, project_code, letter_id",
            params,
        )
        return [self._letter(r) for r in rows]

    def facts(self, *, windows: frozenset[str] | None, window: str | None) -> list[LetterFacts]:
        where, params = self._where(windows, window)
        rows = self.db.query(
            'SELECT "window", status, issued_on, deadline, closed_on '  # noqa: S608
            f"FROM {self._letters} WHERE {' AND '.join(where)}",
            params,
        )
        return [
            LetterFacts(r[0], r[1], _day(r[2]), _day(r[3]), None if r[4] is None else _day(r[4]))
            for r in rows
        ]

    def all_letters(self) -> list[LetterRecord]:
        """Every row, in key order (for checksums and comparisons)."""
        rows = self.db.query(
            f"SELECT {quoted(LETTER_COLUMNS)} FROM {self._letters} "  # noqa: S608
            "ORDER BY project_id, letter_id"
        )
        return sorted((self._letter(r) for r in rows), key=lambda r: (str(r.project_id),
                                                                       r.letter_id))  # fmt: skip

    def snapshot(self) -> tuple[int, list[ProjectRecord], list[LetterRecord]]:
        """The position, every project row (by id) and every letter row (by project id and
        letter id), read in one transaction (REPEATABLE READ on PostgreSQL): a consistent
        picture even while a follower applies events, for a rebuild's comparison."""
        with self.db.transaction() as cur:
            if self._postgres:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cur.execute(
                f"SELECT position FROM {self._tracking} WHERE name = %s",  # noqa: S608
                (TRACKING_NAME,),
            )
            position = int(cur.fetchone()[0])
            cur.execute(f"SELECT {quoted(PROJECT_COLUMNS)} FROM {self._projects}")  # noqa: S608
            projects = [
                ProjectRecord(UUID(str(r[0])), r[1], r[2], r[3], r[4], int(r[5]))
                for r in cur.fetchall()
            ]
            cur.execute(f"SELECT {quoted(LETTER_COLUMNS)} FROM {self._letters}")  # noqa: S608
            letters = [self._letter(r) for r in cur.fetchall()]
        projects.sort(key=lambda p: p.id)
        letters.sort(key=lambda r: (r.project_id, r.letter_id))
        return position, projects, letters

    def close(self) -> None:
        self.db.close()


def open_storage(
    env: Mapping[str, str], app_name: str, prefix: str = DEFAULT_PREFIX
) -> SupervisionStorage:
    """The view storage on the store's backend, as its persistence environment says."""
    if not PREFIX.match(prefix):
        msg = f"a table prefix is lower-case letters, digits and _, not {prefix!r}"
        raise ValueError(msg)
    e = Environment(app_name, dict(env))
    module = e.get("PERSISTENCE_MODULE") or "eventsourcing.popo"
    if module == "eventsourcing.popo":
        return SupervisionStorage(Database("sqlite", path=":memory:"), prefix)
    if module == "eventsourcing.sqlite":
        dbname = e.get("SQLITE_DBNAME") or ""
        timeout = float(e.get("SQLITE_LOCK_TIMEOUT") or 5)
        if ":memory:" in dbname or "mode=memory" in dbname:
            return SupervisionStorage(Database("sqlite", path=":memory:"), prefix)
        path = str(Path(dbname).with_suffix(f".{prefix}.sqlite"))
        return SupervisionStorage(Database("sqlite", path=path, timeout=timeout), prefix)
    if module == "eventsourcing.postgres":
        connect, schema, timeout = postgres_target(e, default_timeout=30)
        return SupervisionStorage(
            Database("postgres", connect=connect, schema=schema, timeout=timeout), prefix
        )
    msg = f"the supervision view has no storage for PERSISTENCE_MODULE={module!r}"
    raise ValueError(msg)


__all__ = [
    "Batch",
    "Fold",
    "IssueRecord",
    "LetterFacts",
    "LetterRecord",
    "ProjectRecord",
    "ProjectRectifications",
    "SupervisionStorage",
    "TrackingConflictError",
    "open_storage",
]
