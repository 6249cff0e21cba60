"""The framework floor's database work: the least a command or a cold read must ask of
PostgreSQL, in tables of the bench's own.

- a command: **one durable insert**, a row of the command's JSON body into ``floor_insert`` (the
  columns of the raw baseline's ``raw_insert``), one statement on an autocommit connection: one
  round trip, one transaction, committed with its WAL flush, as the raw baseline's insert and
  as the service's save (``application/pg_recorder.py``: one statement in autocommit);
- a read of a project the process has not read before: **one select by primary key** of a
  pre-encoded view (``floor_view``: ``id uuid PRIMARY KEY, body bytea``, the body kept in the
  row, uncompressed, when it fits in a page), fetched in binary (no hex decoding) and answered
  as it is: no events to decode and replay, no view to build.

The connections come from a psycopg_pool pool sized as the service's case store sizes its own
(eventsourcing's ``PostgresDatastore`` with the service's settings: ``POSTGRES_POOL_SIZE``
connections kept open, 5 by default, up to ``POSTGRES_POOL_SIZE + POSTGRES_MAX_OVERFLOW``, 15,
a wait of ``POSTGRES_CONNECT_TIMEOUT`` for a free one, 2 s, autocommit, the statement and lock
timeouts of ``application.settings.postgres_options``), from the same environment variables.
"""

from __future__ import annotations

import random
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from application.settings import LIBRARY_POOL_SIZE, Settings, postgres_options
from bench.baseline import PgTarget

#: The environment variable naming the schema of the floor's tables; without it the floor
#: app has no database (its commands answer at once, it has no GET /projects/{id}).
SCHEMA_ENV = "BENCH_FLOOR_SCHEMA"
INSERTS, VIEWS = "floor_insert", "floor_view"
#: A view of at most this many bytes is kept in its row, uncompressed (STORAGE PLAIN): one
#: heap tuple read, no TOAST. A larger one would not fit in an 8 KiB page.
PLAIN_LIMIT = 7_900
DEFAULT_VIEW_BYTES = 2_048  # a cold GET's answer at 10 events a project (bench 2026-12-04)


def view_body(project_id: UUID, size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (at least its frame) for one project: its id
    and filler that does not compress (hex of bytes drawn from the id), as a real view would
    not compress to nothing."""
    head = b'{"id":"' + str(project_id).encode() + b'","floor":"'
    tail = b'"}'
    fill = max(0, size - len(head) - len(tail))
    filler = random.Random(project_id.int).randbytes(fill // 2 + 1).hex()[:fill]
    return head + filler.encode() + tail


def create_tables(
    target: PgTarget, schema: str, *, views: int, view_bytes: int
) -> list[UUID]:  # fmt: skip
    """The floor's two tables in ``schema`` (which exists), ``views`` rows of ``view_bytes``
    each copied into the views' table and the table analysed; the views' ids, in order."""
    inserts, table = sql.Identifier(schema, INSERTS), sql.Identifier(schema, VIEWS)
    ids = [uuid4() for _ in range(views)]
    with target.connect() as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigserial PRIMARY KEY, originator_id uuid NOT NULL, "
                "payload bytea NOT NULL)"
            ).format(inserts)
        )
        conn.execute(sql.SQL("CREATE TABLE {} (id uuid PRIMARY KEY, body bytea NOT NULL)")
                     .format(table))  # fmt: skip
        if view_bytes <= PLAIN_LIMIT:
            conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN body SET STORAGE PLAIN")
                         .format(table))  # fmt: skip
        with conn.cursor() as cur, cur.copy(
            sql.SQL("COPY {} (id, body) FROM STDIN").format(table)
        ) as copy:  # fmt: skip
            for i in ids:
                copy.write_row((i, view_body(i, view_bytes)))
        conn.execute(sql.SQL("ANALYZE {}").format(table))
    return ids


def inserted(target: PgTarget, schema: str) -> int:
    """The rows the floor's commands have inserted so far."""
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, INSERTS))
    with target.connect() as conn:
        row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


class FloorDatabase:
    """The floor app's pool and its two statements."""

    def __init__(self, settings: Settings, schema: str) -> None:
        env = settings.store_env()
        limits = settings.store_limits()
        if env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres" or limits is None:
            msg = f"{SCHEMA_ENV} needs the PostgreSQL store (ECOCASE_STORE=postgres)"
            raise ValueError(msg)
        self.min_size = int(env.get("POSTGRES_POOL_SIZE") or LIBRARY_POOL_SIZE)
        self.max_size = max(self.min_size, limits.pool_connections)
        self.wait = float(limits.pool_wait)
        kwargs: dict[str, Any] = {
            "dbname": env["POSTGRES_DBNAME"], "host": env["POSTGRES_HOST"],
            "port": env["POSTGRES_PORT"], "user": env["POSTGRES_USER"],
            "password": env["POSTGRES_PASSWORD"], "autocommit": True,
            "application_name": "ecocase-bench-floor",
        }  # fmt: skip
        options = postgres_options(env)
        if options:
            kwargs["options"] = options
        self.kwargs = kwargs
        self.pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            kwargs=kwargs, min_size=self.min_size, max_size=self.max_size, timeout=self.wait,
            max_lifetime=60 * 60.0, name="ecocase-bench-floor", open=False,
        )  # fmt: skip
        self._insert = (
            sql.SQL("INSERT INTO {} (originator_id, payload) VALUES (%s, %s)")
            .format(sql.Identifier(schema, INSERTS))
            .as_string(None)
        )  # rendered once, as the service's recorder does
        self._select = (
            sql.SQL("SELECT body FROM {} WHERE id = %s")
            .format(sql.Identifier(schema, VIEWS))
            .as_string(None)
        )

    def open(self) -> None:
        """Opens the pool and waits for its first connections (fails if PostgreSQL does not
        answer within 10 s)."""
        self.pool.open(wait=True, timeout=10.0)

    def close(self) -> None:
        self.pool.close()

    def insert(self, project_id: UUID, payload: bytes) -> None:
        """One row, one statement in autocommit: committed (WAL flushed) when it returns."""
        with self.pool.connection() as conn:
            conn.execute(self._insert, (project_id, payload))

    def view(self, project_id: UUID) -> bytes | None:
        """The pre-encoded view of one project, by primary key; None if there is none."""
        with self.pool.connection() as conn:
            row = conn.execute(self._select, (project_id,), binary=True).fetchone()
        return None if row is None else bytes(row[0])
