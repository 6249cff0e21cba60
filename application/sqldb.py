"""A small SQL database for the workers' tables (relay position, audit trail, notifications),
on the same backend as the event store: PostgreSQL in its database and schema, or a SQLite file
beside the store's. SQL is written once with ``%s`` placeholders; SQLite gets ``?``.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import psycopg
from eventsourcing.utils import Environment
from psycopg_pool import ConnectionPool

Dialect = Literal["sqlite", "postgres"]
_PLACEHOLDER = re.compile(r"%s")


class TrackingConflictError(RuntimeError):
    """A tracked read model's position moved under a transaction: it is rolled back."""


class Cursor(Protocol):
    """What a transaction gives: run statements, read rows."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class _SQLiteCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._c = cursor

    @property
    def rowcount(self) -> int:
        return self._c.rowcount

    def execute(self, query: str, params: Sequence[Any] = ()) -> _SQLiteCursor:
        self._c.execute(_PLACEHOLDER.sub("?", query), tuple(params))
        return self

    def fetchone(self) -> Any:
        return self._c.fetchone()

    def fetchall(self) -> list[Any]:
        return self._c.fetchall()


#: PostgreSQL: a FROM item that turns ``synchronous_commit`` off for the transaction of the one
#: autocommit statement it is in, so that its commit does not wait for the WAL flush (it is
#: still atomic). For writes whose loss in a crash of the server is harmless: an attempt count,
#: the relay's position. 138-205 us a statement here, against 271 us for BEGIN, SET LOCAL, the
#: statement and COMMIT, and 722-978 us with the flush.
NO_FLUSH = "(SELECT set_config('synchronous_commit', 'off', true)) AS no_flush"
_NOTHING_READ = "nothing can be read in Database.writes(): use Database.transaction()"


@dataclass(frozen=True)
class Upsert:
    """Rows of one table in :func:`advance_and_upsert`: ``rows`` of ``columns`` (PostgreSQL
    ``types``), inserted or, on a conflict of ``key``, updated."""

    table: str  # quoted, schema-qualified if need be
    columns: Sequence[str]
    types: Sequence[str]
    key: Sequence[str]
    rows: int


def advance_and_upsert(tracking: str, upserts: Sequence[Upsert]) -> str:
    """PostgreSQL: one statement (data-modifying CTEs, so atomic) that moves the position of
    the ``tracking`` table's row from the value read to a new one and, only if it did, upserts
    the rows; its one row is how many positions moved (1 or 0). Parameters: the new position,
    the tracking name, the position read, then every row's values, table by table. How a
    tracked read model applies a batch optimistically, with no lock held while it folds."""
    parts = [
        f"WITH moved AS (UPDATE {tracking} SET position = %s "  # noqa: S608 - the callers' constants
        "WHERE name = %s AND position = %s RETURNING 1)"
    ]
    for n, u in enumerate(upsert for upsert in upserts if upsert.rows):
        row = f"({', '.join(f'%s::{t}' for t in u.types)})"
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in u.columns if c not in u.key)
        parts.append(
            f"up{n} AS (INSERT INTO {u.table} ({quoted(u.columns)}) "  # noqa: S608 - as above
            f"SELECT * FROM (VALUES {', '.join([row] * u.rows)}) AS v "
            "WHERE EXISTS (SELECT 1 FROM moved) "
            f"ON CONFLICT ({quoted(u.key)}) DO UPDATE SET {updates})"
        )
    return f"{', '.join(parts)} SELECT count(*) FROM moved"  # noqa: S608 - as above


def quoted(columns: Sequence[str]) -> str:
    """Column names, double-quoted, comma-separated."""
    return ", ".join(f'"{c}"' for c in columns)


class _DeferredWrites:
    """The cursor of :meth:`Database.writes` on PostgreSQL: it keeps the statements."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Sequence[Any]]] = []

    @property
    def rowcount(self) -> int:
        msg = "a statement's row count is not known in Database.writes()"
        raise TypeError(msg)

    def execute(self, query: str, params: Sequence[Any] = ()) -> _DeferredWrites:
        self.statements.append((query, tuple(params)))
        return self

    def fetchone(self) -> Any:
        raise TypeError(_NOTHING_READ)

    def fetchall(self) -> list[Any]:
        raise TypeError(_NOTHING_READ)


class Database:
    """One transaction at a time per call of :meth:`transaction`; safe across threads."""

    dialect: Dialect

    def __init__(
        self, dialect: Dialect, *, path: str = "", connect: Mapping[str, str] | None = None,
        schema: str = "public", timeout: float = 10.0,
    ) -> None:  # fmt: skip
        self.dialect = dialect
        self.schema = schema
        self._lock = threading.Lock()
        self._sqlite: sqlite3.Connection | None = None
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] | None = None
        if dialect == "sqlite":
            self._sqlite = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                           check_same_thread=False)  # fmt: skip
            self._sqlite.execute("PRAGMA journal_mode=WAL")
            self._sqlite.execute("PRAGMA busy_timeout=%d" % int(timeout * 1000))  # noqa: UP031
        else:
            options = f"-c search_path={schema}"
            self._pool = ConnectionPool(
                kwargs={**(connect or {}), "autocommit": True, "options": options,
                        "connect_timeout": max(int(timeout), 1)},
                min_size=1, max_size=4, timeout=timeout, name="ecocase-workers", open=False,
            )  # fmt: skip
            self._pool.open(wait=True, timeout=timeout)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """Commits when the block ends, rolls back if it raises."""
        if self._sqlite is not None:
            with self._sqlite_transaction() as cursor:
                yield cursor
            return
        assert self._pool is not None  # noqa: S101 - one of the two is always set
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield cursor

    @contextmanager
    def writes(self) -> Iterator[Cursor]:
        """A transaction of writes only, sent when the block ends: on PostgreSQL all its
        statements go in one round trip, as one query string (which the server runs as one
        transaction: all of them or, if one fails, none), instead of BEGIN, each statement
        and COMMIT. Nothing can be read in it, and a statement's row count is not known."""
        if self._sqlite is not None:
            with self._sqlite_transaction() as cursor:
                yield cursor
            return
        assert self._pool is not None  # noqa: S101 - one of the two is always set
        deferred = _DeferredWrites()
        yield deferred
        if not deferred.statements:
            return
        with self._pool.connection() as conn:
            client = psycopg.ClientCursor(conn)
            text = ";\n".join(client.mogrify(q, p) for q, p in deferred.statements)
            client.execute(text)

    @contextmanager
    def _sqlite_transaction(self) -> Iterator[Cursor]:
        assert self._sqlite is not None  # noqa: S101 - the caller checked
        with self._lock:
            raw = self._sqlite.cursor()
            raw.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteCursor(raw)
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")

    def query(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of one statement, in its own transaction (on PostgreSQL the statement alone,
        in autocommit: one round trip instead of BEGIN, the statement and COMMIT)."""
        if self._pool is None:
            with self.transaction() as cursor:
                cursor.execute(query, params)
                return cursor.fetchall()
        with self._pool.connection() as conn:
            return conn.execute(query, params).fetchall()

    def run(self, statement: str, params: Sequence[Any] = ()) -> int:
        """One statement that returns no rows, in its own transaction; the row count."""
        if self._pool is None:
            with self.transaction() as cursor:
                cursor.execute(statement, params)
                return cursor.rowcount
        with self._pool.connection() as conn:
            return conn.execute(statement, params).rowcount

    def setup(self, name: str, statements: Sequence[str]) -> None:
        """Creates tables and indexes once; two processes starting together do not race."""
        with self.transaction() as cursor:
            if self.dialect == "postgres":
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                               (f"{self.schema}.{name}",))  # fmt: skip
            for statement in statements:
                cursor.execute(statement)

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pool is not None:
            self._pool.close()


def postgres_target(e: Environment, default_timeout: float) -> tuple[dict[str, str], str, float]:
    """The store's PostgreSQL connection settings, as eventsourcing reads them from ``e``:
    psycopg connect arguments, the schema and the connect timeout."""
    connect = {
        "dbname": e.get("POSTGRES_DBNAME") or "",
        "host": e.get("POSTGRES_HOST") or "127.0.0.1",
        "port": e.get("POSTGRES_PORT") or "5432",
        "user": e.get("POSTGRES_USER") or "",
        "password": e.get("POSTGRES_PASSWORD") or "",
    }
    schema = (e.get("POSTGRES_SCHEMA") or "").strip() or "public"
    return connect, schema, float(e.get("POSTGRES_CONNECT_TIMEOUT") or default_timeout)


def open_database(env: Mapping[str, str], app_name: str = "ecocase") -> Database:
    """The workers' database on the store's backend (its persistence environment says which).
    With the in-memory (POPO) store, an in-memory SQLite database."""
    e = Environment(app_name, dict(env))
    module = e.get("PERSISTENCE_MODULE") or "eventsourcing.popo"
    if module == "eventsourcing.postgres":
        connect, schema, timeout = postgres_target(e, default_timeout=10)
        return Database("postgres", connect=connect, schema=schema, timeout=timeout)
    if module == "eventsourcing.sqlite":
        dbname = e.get("SQLITE_DBNAME") or ""
        if ":memory:" in dbname or "mode=memory" in dbname:
            return Database("sqlite", path=":memory:")
        path = str(Path(dbname).with_suffix(".workers.sqlite"))
        return Database("sqlite", path=path, timeout=float(e.get("SQLITE_LOCK_TIMEOUT") or 10))
    if module == "eventsourcing.popo":
        return Database("sqlite", path=":memory:")
    msg = f"no workers' database for PERSISTENCE_MODULE={module!r}"
    raise ValueError(msg)
