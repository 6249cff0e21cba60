"""A rebuild's bulk replay on PostgreSQL: the notification log up to a stable head, folded in
memory into fresh read models and written with COPY.

The log is read through a server-side cursor, in batches (the next one fetched while this one
is folded). Each stored event is decoded once (:class:`~application.replay_folds.RecordDecoder`)
and folded into the project list and the supervision view (:mod:`application.replay_folds`);
its audit trail row is streamed into the fresh ``audit_trail`` by one binary COPY. At the end,
while PostgreSQL takes in the last of the COPY, the folded rows of the project list and of the
supervision view are written with COPY, each with its model's position moved from 0 to the
head in the same transaction (:meth:`~application.project_index_storage.PostgresStorage.load`,
:meth:`~application.supervision_storage.SupervisionStorage.load`); then the audit trail is
committed.

The secondary indexes of the project list's and the supervision view's fresh tables are dropped
before their COPY and built again after it, by PostgreSQL on a connection of their own while
the replay goes on (:class:`_Indexes`): a bulk build is cheaper than a row-by-row one (100,000
project rows with the project list's five indexes: 1.73 s in the COPY, against 0.77 s for the
COPY and 0.54 s for the build after it, two runs each), and it runs beside the Python work.
The audit trail's indexes stay: its COPY streams beside the folding all through the replay.

One process: PostgreSQL spends about as much CPU again taking in the COPY (the audit trail has
five indexes) and reading the log, so on this service's 2-core machines the replay and the
database already keep both cores busy. (Neither a log split between two processes nor the
trail's indexes dropped during the COPY and built after it made the replay faster there.)

The replay reads what was committed at or below ``head``; the caller takes the head from
:func:`application.rebuild.stable_head`, so that no event at or below it can still appear, and
catches up with the events written meanwhile through the models' own incremental apply.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from application.audit import COLUMNS as AUDIT_COLUMNS
from application.audit import TABLE as AUDIT_TABLE
from application.project_index_storage import PostgresStorage
from application.replay_folds import AuditRows, IndexFold, RecordDecoder, SupervisionFold
from application.supervision_storage import SupervisionStorage

__all__ = ["Replayed", "Source", "replay"]

INDEX, SUPERVISION, AUDIT = MODELS = ("project_index", "supervision", "audit_trail")  # names
#: The fresh tables of each bulk-loaded model whose secondary indexes are built after the COPY.
DEFERRED = {INDEX: ("project_index",), SUPERVISION: ("supervision_projects", "supervision_letters")}
#: The types of the audit trail's columns (application.audit.COLUMNS), for a binary COPY.
AUDIT_TYPES = ("int8", "timestamptz", "text", "text", "text", "int4", *["text"] * 7)

#: ``done(events)``: called after every batch with the events it held.
Done = Callable[[int], None]


@dataclass(frozen=True)
class Source:
    """Where the replay reads and writes: the database (a libpq connection string), the
    store's events table and the schema of the fresh read models."""

    conninfo: str
    events_schema: str
    events_table: str
    fresh_schema: str


@dataclass
class Replayed:
    """A bulk replay: the events it replayed and the seconds spent reading and decoding them
    and on each read model (folding and writing)."""

    events: int = 0
    read_seconds: float = 0.0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MODELS, 0.0))


_SECONDARY = sql.SQL(
    "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
    "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
    "JOIN pg_namespace n ON n.oid = t.relnamespace "
    "WHERE n.nspname = %s AND t.relname = ANY(%s) AND NOT x.indisprimary AND NOT x.indisunique "
    "ORDER BY i.relname"
)


class _Indexes:
    """The fresh tables' secondary indexes, taken off before their COPY (:meth:`take`) and
    built again after it (:meth:`build`), one model at a time, on a thread and a connection of
    their own; :meth:`wait` returns once all are built and raises what a build raised."""

    def __init__(self, conninfo: str, schema: str) -> None:
        self._conninfo, self._schema = conninfo, schema
        self._taken: dict[str, list[str]] = {}
        self._builder = ThreadPoolExecutor(1, thread_name_prefix="replay-index")
        self._builds: list[Future[None]] = []

    def take(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        for model, tables in DEFERRED.items():
            found = conn.execute(_SECONDARY, (self._schema, list(tables))).fetchall()
            for name, _ in found:
                conn.execute(
                    sql.SQL("DROP INDEX {}").format(sql.Identifier(self._schema, str(name)))
                )
            self._taken[model] = [str(definition) for _, definition in found]
        conn.commit()

    def build(self, model: str) -> None:
        self._builds.append(self._builder.submit(self._create, self._taken.pop(model, [])))

    def _create(self, definitions: list[str]) -> None:
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            for definition in definitions:
                conn.execute(definition.encode())  # pg_get_indexdef's own statement

    def wait(self) -> None:
        for build in self._builds:
            build.result()

    def __enter__(self) -> _Indexes:
        return self

    def __exit__(self, *_: object) -> None:
        self._builder.shutdown()  # after a failure too: the builds in flight end first


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off: a replay makes no cycles, and the collector would
    otherwise walk the folded state again and again as the records come and go. The state must
    be gone before the collector is on again: the first collection after it would walk all of
    it once more (0.91 s at the end of a replay of 1M events whose state was still held)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_gc_paused()  # the folded state, local to the call, is freed as it returns: before the resume
def replay(
    source: Source,
    index: PostgresStorage,
    view: SupervisionStorage,
    *,
    head: int,
    batch: int,
    done: Done,
) -> Replayed:
    """Replays the notifications up to ``head`` into the fresh models' empty tables (the
    project list and the supervision view at position 0) and moves the positions of the
    project list and the supervision view to ``head``."""
    select = sql.SQL(
        "SELECT notification_id, originator_id::text, originator_version, topic, state FROM {} "
        "WHERE notification_id <= %s ORDER BY notification_id"
    ).format(sql.Identifier(source.events_schema, source.events_table))
    copy_audit = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(source.fresh_schema, AUDIT_TABLE),
        sql.SQL(", ").join(map(sql.Identifier, AUDIT_COLUMNS)),
    )
    decode = RecordDecoder()
    folds = IndexFold(), SupervisionFold()
    audit = AuditRows()
    replayed = Replayed()
    seconds = replayed.seconds
    with (
        _Indexes(source.conninfo, source.fresh_schema) as indexes,
        psycopg.connect(source.conninfo) as reader,
        psycopg.connect(source.conninfo) as writer,
    ):
        indexes.take(writer)
        with (
            reader.cursor("replay", binary=True) as cursor,
            writer.cursor() as out,
            out.copy(copy_audit) as copy,
            ThreadPoolExecutor(1, thread_name_prefix="replay-read") as ahead,
        ):
            copy.set_types(AUDIT_TYPES)
            cursor.itersize = batch
            cursor.execute(select, (head,))
            t0 = time.perf_counter()
            fetching = ahead.submit(cursor.fetchmany, batch)
            while rows := fetching.result():
                fetching = ahead.submit(cursor.fetchmany, batch)  # read while this is folded
                records = decode.batch(rows)
                t1 = time.perf_counter()
                folds[0].apply(records)
                t2 = time.perf_counter()
                folds[1].apply(records)
                t3 = time.perf_counter()
                for row in audit.rows(records):
                    copy.write_row(row)
                t4 = time.perf_counter()
                replayed.read_seconds += t1 - t0
                seconds[INDEX] += t2 - t1
                seconds[SUPERVISION] += t3 - t2
                seconds[AUDIT] += t4 - t3
                replayed.events += len(rows)
                done(len(rows))
                t0 = time.perf_counter()
            index.load(folds[0].rows(), head)
            indexes.build(INDEX)
            t1 = time.perf_counter()
            view.load(folds[1].projects(), folds[1].letters(), head)
            indexes.build(SUPERVISION)
            t2 = time.perf_counter()
        writer.commit()  # the audit trail, once PostgreSQL has taken in all of the COPY
        t3 = time.perf_counter()
        indexes.wait()  # the rest of the deferred builds (in the replay's time, not a model's)
    seconds[INDEX] += t1 - t0
    seconds[SUPERVISION] += t2 - t1
    seconds[AUDIT] += t3 - t2
    return replayed
