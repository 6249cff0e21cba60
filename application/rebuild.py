"""``ecocase rebuild``: replay the whole event store into fresh read models, then check the live
ones against them.

The three read models are the project list (:mod:`application.project_index`), the supervision
view (:mod:`application.supervision`) and the audit trail (:mod:`application.audit`). A rebuild

1. creates fresh tables for all three: a new PostgreSQL schema ``<schema>_rebuild_<UTC time>``
   beside the store's (its tables UNLOGGED while the rebuild fills them: no WAL, and a crash
   would only empty them; LOGGED again when the rebuild keeps them), or new SQLite files in a
   new folder beside the store's file;
2. replays the notification log from the start into the three fresh models. On PostgreSQL the
   bulk of it, up to the store's :func:`stable_head` when the replay begins, in one pass
   (:mod:`application.replay`): each event decoded once, the project list and the supervision
   view folded in memory (:mod:`application.replay_folds`), the audit trail's rows streamed,
   all written with COPY, the position of each tracked model set to that head in the
   transaction that writes its rows. Then (and on SQLite, or
   for a store whose payloads are encrypted or compressed, from the start) in batches through
   the models' own folds and exactly-once storages (the three side by side, each in a thread,
   while the next batch is read), re-reading the store's head after every batch until it has
   caught up with the events written meanwhile;
3. compares each fresh model with the live one *at the same notification id*. The live project
   list and supervision view are tracked projections: they are first brought up to the store's
   head (as their ``process_available()`` does), their position and rows are read in one
   transaction, and the fresh model is advanced to exactly that position. The live audit trail
   is written by the worker, which may take events out of order: it is compared up to the
   highest notification id it holds, and the records it lacks below that are reported as lag,
   not as differences;
4. drops the fresh tables, unless ``keep=True``.

A model is compared by checksum: SHA-256 over its rows in primary-key order, each row serialised
canonically with msgspec (JSON, every column). Where the checksums differ, the keys of the
differing rows (at most :data:`MAX_KEYS`) are reported.

No event is skipped by concurrent writes. A reader that follows the highest notification id
it can see skips any event whose transaction took a lower id but commits later. eventsourcing
prevents that on PostgreSQL by locking the events table (EXCLUSIVE) for every insert, but only
on its plain insert path: with ``POSTGRES_ENABLE_DB_FUNCTIONS=y`` (this service's default) its
``es_insert_events`` function inserts without that lock. So the rebuild reads up to
:func:`stable_head`: the head read under a SHARE lock of the events table, which waits until the
inserts in flight have committed or rolled back. Nothing at or below that head can appear any
more. On SQLite, writes are serialised by the database lock, so the plain head is stable.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO
from uuid import UUID

import msgspec
import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import Environment
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import make_conninfo

from application import project_index_storage, replay, supervision_storage
from application.audit import MAX_LIMIT, AuditTrail
from application.project_index import summarise
from application.sqldb import open_database, postgres_target
from application.store import CaseStore
from application.supervision import fold

__all__ = [
    "MAX_KEYS",
    "ModelReport",
    "ProgressBar",
    "RebuildReport",
    "checksum",
    "compare",
    "format_report",
    "progress_line",
    "rebuild",
    "stable_head",
]

BATCH = 2000  # notifications read, decoded and applied per transaction
MAX_KEYS = 20  # differing keys reported per read model

Batch = Sequence[tuple[int, Any]]
#: ``progress(events done, events in all (an estimate until the end), events/s)``
Progress = Callable[[int, int, float], None]
#: One row of a read model: its primary key (to sort by), the key as reported, its canonical bytes.
Row = tuple[Any, str, bytes]

_ENCODER = msgspec.json.Encoder(order="deterministic")


def canonical(value: Any) -> bytes:
    """The canonical serialisation of a row: msgspec JSON, every field, keys in a fixed order."""
    return _ENCODER.encode(value)


def checksum(rows: Iterable[Row]) -> str:
    """SHA-256 over the rows' canonical bytes, one line each, in the order given (key order)."""
    digest = hashlib.sha256()
    for _, _, data in rows:
        digest.update(data)
        digest.update(b"\n")
    return digest.hexdigest()


# --- what a rebuild reports ---------------------------------------------------------------------
@dataclass(frozen=True)
class ModelReport:
    """One read model, fresh against live at notification id ``position``."""

    name: str
    rows: int  # fresh rows compared
    live_rows: int  # live rows compared
    checksum_live: str
    checksum_fresh: str
    differences: tuple[str, ...]  # keys of the rows that differ (at most MAX_KEYS)
    difference_count: int
    position: int  # the notification id both were compared at
    events: int  # events replayed into the fresh model
    seconds: float  # applying them to this model (the models apply side by side; reading and
    # decoding, which they share, is RebuildReport.read_seconds)
    lag: int = 0  # audit trail: records the live trail lacks below ``position`` (the worker's lag)
    lag_keys: tuple[str, ...] = ()  # their notification ids (at most MAX_KEYS)

    @property
    def equal(self) -> bool:
        return self.difference_count == 0 and self.checksum_live == self.checksum_fresh

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class RebuildReport:
    models: tuple[ModelReport, ...]
    position: int  # the store's head the replay caught up with
    events: int  # events replayed (the catching up for the comparisons included)
    replay_seconds: float  # from the first event to the store's head
    read_seconds: float  # of all the replaying: reading and decoding the notifications
    seconds: float  # everything: replay, comparisons, clean-up
    location: str  # the fresh schema or folder
    kept: bool  # the fresh tables were left in place
    fresh_env: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def equal(self) -> bool:
        return all(m.equal for m in self.models)

    @property
    def events_per_second(self) -> float:
        return self.events / self.replay_seconds if self.replay_seconds > 0 else 0.0


# --- the read models, fresh or live -------------------------------------------------------------
class _Model(Protocol):
    name: str

    def position(self) -> int: ...
    def apply(self, batch: Batch) -> None: ...
    def close(self) -> None: ...


class _Tracked(_Model, Protocol):
    """A tracked projection: its position and rows can be read together."""

    def snapshot(self) -> tuple[int, list[Row]]: ...


class _IndexModel:
    name = "project_index"

    def __init__(self, storage: project_index_storage.IndexStorage) -> None:
        self._storage = storage

    @property
    def storage(self) -> project_index_storage.IndexStorage:
        return self._storage

    def position(self) -> int:
        return self._storage.position()

    def apply(self, batch: Batch) -> None:
        self._storage.apply(batch, summarise)

    def snapshot(self) -> tuple[int, list[Row]]:
        position, rows = self._storage.snapshot()
        return position, [(r.id, str(r.id), canonical(r)) for r in rows]

    def close(self) -> None:
        self._storage.close()


class _SupervisionModel:
    name = "supervision"

    def __init__(self, storage: supervision_storage.SupervisionStorage) -> None:
        self._storage = storage

    @property
    def storage(self) -> supervision_storage.SupervisionStorage:
        return self._storage

    def position(self) -> int:
        return self._storage.position()

    def apply(self, batch: Batch) -> None:
        self._storage.apply(batch, fold)

    def snapshot(self) -> tuple[int, list[Row]]:
        position, projects, letters = self._storage.snapshot()
        rows: list[Row] = [(("p", p.id, ""), f"projects/{p.id}", canonical(("projects", p)))
                           for p in projects]  # fmt: skip
        rows += [
            (("q", r.project_id, r.letter_id), f"letters/{r.project_id}/{r.letter_id}",
             canonical(("letters", r)))
            for r in letters
        ]  # fmt: skip
        return position, rows

    def close(self) -> None:
        self._storage.close()


class _AuditModel:
    """The audit trail; its position is the highest notification id it holds."""

    name = "audit_trail"

    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail
        self._facts: MutableMapping[UUID, tuple[str, str]] = {}  # project -> code, window

    def position(self) -> int:
        return self._trail.last_notification_id()

    def apply(self, batch: Batch) -> None:
        with self._trail.db.transaction() as cursor:
            self._trail.record_events(cursor, batch, facts=self._facts)

    def rows(self, upto: int) -> Iterator[Row]:
        """The records up to notification ``upto``, by notification id, fetched in batches."""
        for record in self._trail.iter_all(batch=MAX_LIMIT):
            if record.notification_id > upto:
                return
            yield record.notification_id, str(record.notification_id), canonical(record)

    def close(self) -> None:
        self._trail.db.close()


def _open_models(env: Mapping[str, str], app_name: str) -> tuple[_IndexModel, _SupervisionModel,
                                                                 _AuditModel]:  # fmt: skip
    opened: list[_Model] = []
    try:
        index = _IndexModel(project_index_storage.open_storage(env, app_name))
        opened.append(index)
        view = _SupervisionModel(supervision_storage.open_storage(env, app_name))
        opened.append(view)
        audit = _AuditModel(AuditTrail(open_database(env, app_name)))
    except BaseException:
        for model in reversed(opened):
            model.close()
        raise
    return index, view, audit


# --- replaying ----------------------------------------------------------------------------------
HEAD_LOCK_TIMEOUT = "30s"  # how long stable_head waits for the inserts in flight


def stable_head(store: CaseStore) -> int:
    """The store's last notification id (0 if none) such that no event at or below it can still
    appear: on PostgreSQL it is read under a SHARE lock of the events table, which waits for the
    inserts in flight (those that took ids from the sequence but have not committed) and holds
    new ones back for as long as one ``SELECT MAX`` takes."""
    recorder = store.recorder
    if not isinstance(recorder, PostgresApplicationRecorder):
        return recorder.max_notification_id() or 0
    table = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(HEAD_LOCK_TIMEOUT))
        cursor.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(table))
        cursor.execute(sql.SQL("SELECT MAX(notification_id) AS head FROM {}").format(table))
        row = cursor.fetchone()
    return int(row["head"] or 0) if row is not None else 0


@dataclass
class _Timing:
    events: int = 0
    read: float = 0.0  # reading and decoding notifications (shared by the models)
    apply: dict[str, float] = field(default_factory=dict)

    def seconds(self, model: str) -> float:
        return self.apply.get(model, 0.0)


class _Counter:
    """Progress over the whole replay, bulk and catching up: the events done so far and the
    rate since the replay began."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._started = time.perf_counter()
        self.done = 0

    def add(self, events: int, left: int) -> None:
        """``events`` more done, about ``left`` to go (the last line is drawn by finish())."""
        self.done += events
        if self._progress is not None and left > 0:
            self._progress(self.done, self.done + left, self._rate())

    def finish(self) -> None:
        if self._progress is not None:
            self._progress(self.done, self.done, self._rate())

    def _rate(self) -> float:
        return self.done / max(time.perf_counter() - self._started, 1e-9)


def _advance(
    store: CaseStore,
    models: Sequence[_Model],
    timing: _Timing | None,
    *,
    stop: int | None = None,
    counter: _Counter | None = None,
    batch_size: int = BATCH,
) -> int:
    """Applies the notifications after the models' position to every model, a batch at a time,
    up to ``stop`` or, when None, up to the store's :func:`stable_head`, re-read after every
    batch so that events written meanwhile are applied too. Returns the position reached.

    The models apply each batch side by side (a thread each: their databases work while Python
    folds), and the next batch is read and decoded meanwhile; a batch is applied by all the
    models before the next one is."""

    def read(after: int) -> tuple[list[tuple[int, Any]], int, float]:
        t0 = time.perf_counter()
        head = stable_head(store)
        target = head if stop is None else min(stop, head)
        if after >= target:
            return [], head, time.perf_counter() - t0
        found = store.recorder.select_notifications(
            start=after, limit=batch_size, stop=target, inclusive_of_start=False
        )
        batch = [(n.id, store.mapper.to_domain_event(n)) for n in found]
        return batch, head, time.perf_counter() - t0

    def apply(model: _Model, batch: Batch) -> float:
        t0 = time.perf_counter()
        model.apply(batch)
        return time.perf_counter() - t0

    position = min(m.position() for m in models)
    with ThreadPoolExecutor(max_workers=len(models) + 1, thread_name_prefix="rebuild") as pool:
        ahead = pool.submit(read, position)
        while True:
            batch, head, read_seconds = ahead.result()
            if not batch:
                break
            position = batch[-1][0]
            ahead = pool.submit(read, position)  # the next batch, while this one is applied
            applying = [(m.name, pool.submit(apply, m, batch)) for m in models]
            seconds = {name: future.result() for name, future in applying}
            if timing is not None:
                timing.events += len(batch)
                timing.read += read_seconds
                for name, spent in seconds.items():
                    timing.apply[name] = timing.apply.get(name, 0.0) + spent
            if counter is not None:
                counter.add(len(batch), head - position)
    return position


def _source(store: CaseStore, place: _Place) -> replay.Source | None:
    """What the bulk replay reads and where it writes, when it can: on PostgreSQL, with
    payloads the mapper neither encrypts nor compresses (the replay decodes them itself)."""
    recorder = store.recorder
    mapper = store.mapper
    if not isinstance(recorder, PostgresApplicationRecorder) or mapper.cipher or mapper.compressor:
        return None
    connect, schema, timeout = postgres_target(Environment(store.name, place.env), 30)
    return replay.Source(
        conninfo=make_conninfo(**connect, connect_timeout=max(int(timeout), 1)),
        events_schema=recorder.datastore.schema,
        events_table=recorder.events_table_name,
        fresh_schema=schema,
    )


def _replay(
    store: CaseStore,
    place: _Place,
    fresh: tuple[_IndexModel, _SupervisionModel, _AuditModel],
    *,
    timing: _Timing,
    counter: _Counter,
    batch_size: int,
) -> int:
    """The whole store into the fresh models: in bulk up to the store's stable head
    (:mod:`application.replay`) where it can, then through the models' own apply, catching up
    with the events written meanwhile. Returns the position reached."""
    index, view = fresh[0].storage, fresh[1].storage
    source = _source(store, place)
    if source is not None and isinstance(index, project_index_storage.PostgresStorage):
        head = stable_head(store)
        total = head  # notification ids to go: an estimate of the events

        def done(events: int) -> None:
            counter.add(events, total - counter.done)

        replayed = replay.replay(source, index, view, head=head, batch=batch_size, done=done)
        timing.events += replayed.events
        timing.read += replayed.read_seconds
        for name, spent in replayed.seconds.items():
            timing.apply[name] = timing.apply.get(name, 0.0) + spent
    position = _advance(store, fresh, timing, counter=counter, batch_size=batch_size)
    counter.finish()
    return position


# --- comparing ----------------------------------------------------------------------------------
def _differing(live: Sequence[Row], fresh: Sequence[Row]) -> list[str]:
    """The keys whose rows differ or are on one side only, in key order."""
    live_data = {shown: data for _, shown, data in live}
    fresh_data = {shown: data for _, shown, data in fresh}
    order = {shown: key for key, shown, _ in (*live, *fresh)}
    keys = [k for k in order if live_data.get(k) != fresh_data.get(k)]
    return sorted(keys, key=lambda k: order[k])


def _tracked_report(
    name: str, timing: _Timing, live: tuple[int, list[Row]], fresh: tuple[int, list[Row]]
) -> ModelReport:
    (live_position, live_rows), (fresh_position, fresh_rows) = live, fresh
    keys = _differing(live_rows, fresh_rows)
    if live_position != fresh_position:  # pragma: no cover - notifications vanished
        keys.insert(0, f"position: live #{live_position}, fresh #{fresh_position}")
    return ModelReport(
        name=name,
        rows=len(fresh_rows),
        live_rows=len(live_rows),
        checksum_live=checksum(live_rows),
        checksum_fresh=checksum(fresh_rows),
        differences=tuple(keys[:MAX_KEYS]),
        difference_count=len(keys),
        position=fresh_position,
        events=timing.events,
        seconds=timing.seconds(name),
    )


def _audit_report(
    timing: _Timing, position: int, live: Iterable[Row], fresh: Iterable[Row]
) -> ModelReport:
    """Merges the two trails in notification order (one pass, nothing held in memory): a record
    only the fresh trail has is lag; one only the live trail has, or one that differs, is a
    difference. The fresh checksum is over the records the live trail holds."""
    live_sum, fresh_sum = hashlib.sha256(), hashlib.sha256()
    differing: list[str] = []
    lagging: list[str] = []
    live_rows = fresh_rows = difference_count = lag = 0
    live_it, fresh_it = iter(live), iter(fresh)
    a, b = next(live_it, None), next(fresh_it, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):  # only live has it
            assert a is not None  # noqa: S101 - one of the two is left
            live_sum.update(a[2] + b"\n")
            live_rows, difference_count = live_rows + 1, difference_count + 1
            if len(differing) < MAX_KEYS:
                differing.append(a[1])
            a = next(live_it, None)
        elif a is None or b[0] < a[0]:  # only fresh has it: the worker has not got there
            lag += 1
            if len(lagging) < MAX_KEYS:
                lagging.append(b[1])
            b = next(fresh_it, None)
        else:
            live_sum.update(a[2] + b"\n")
            fresh_sum.update(b[2] + b"\n")
            live_rows, fresh_rows = live_rows + 1, fresh_rows + 1
            if a[2] != b[2]:
                difference_count += 1
                if len(differing) < MAX_KEYS:
                    differing.append(a[1])
            a, b = next(live_it, None), next(fresh_it, None)
    return ModelReport(
        name=_AuditModel.name,
        rows=fresh_rows,
        live_rows=live_rows,
        checksum_live=live_sum.hexdigest(),
        checksum_fresh=fresh_sum.hexdigest(),
        differences=tuple(differing),
        difference_count=difference_count,
        position=position,
        events=timing.events,
        seconds=timing.seconds(_AuditModel.name),
        lag=lag,
        lag_keys=tuple(lagging),
    )


def _compare(
    store: CaseStore,
    live_env: Mapping[str, str],
    fresh: tuple[_IndexModel, _SupervisionModel, _AuditModel],
    timing: _Timing,
    batch_size: int,
) -> tuple[ModelReport, ...]:
    live = _open_models(live_env, store.name)
    try:
        reports: list[ModelReport] = []
        tracked: list[tuple[_Tracked, _Tracked]] = [(live[0], fresh[0]), (live[1], fresh[1])]
        for live_model, fresh_model in tracked:
            # The live projection up to the store's head (as its process_available() does),
            # read with its position in one transaction; the fresh one to exactly there.
            _advance(store, [live_model], None, batch_size=batch_size)
            live_snapshot = live_model.snapshot()
            _advance(store, fresh, timing, stop=live_snapshot[0], batch_size=batch_size)
            reports.append(
                _tracked_report(live_model.name, timing, live_snapshot, fresh_model.snapshot())
            )
        live_audit, fresh_audit = live[2], fresh[2]
        reached = live_audit.position()
        if reached > fresh_audit.position():
            _advance(store, fresh, timing, stop=reached, batch_size=batch_size)
        upto = min(reached, fresh_audit.position())
        reports.append(_audit_report(timing, upto, live_audit.rows(upto), fresh_audit.rows(upto)))
        return tuple(reports)
    finally:
        for model in live:
            model.close()


def compare(
    store: CaseStore,
    live_env: Mapping[str, str],
    fresh_env: Mapping[str, str],
    *,
    batch_size: int = BATCH,
) -> tuple[ModelReport, ...]:
    """Brings the read models of ``fresh_env`` (a kept rebuild's, see
    :attr:`RebuildReport.fresh_env`) up to the live ones and compares them, as :func:`rebuild`
    does at its end."""
    fresh = _open_models(fresh_env, store.name)
    try:
        return _compare(store, live_env, fresh, _Timing(), batch_size)
    finally:
        for model in fresh:
            model.close()


# --- where the fresh tables go ------------------------------------------------------------------
@dataclass(frozen=True)
class _Place:
    env: dict[str, str]
    location: str
    remove: Callable[[], None]
    logged: Callable[[bool], None] = lambda _: None  # the fresh tables written with WAL or not


def _with(env: Mapping[str, str], app_name: str, key: str, value: str) -> dict[str, str]:
    """``env`` with ``key`` set to ``value`` (and the app-prefixed spelling of it removed)."""
    prefixed = f"{app_name.upper()}_{key}"
    return {**{k: v for k, v in env.items() if k not in (key, prefixed)}, key: value}


def _pg_connect(e: Environment) -> dict[str, Any]:
    connect, _, timeout = postgres_target(e, default_timeout=30)
    return {**connect, "connect_timeout": max(int(timeout), 1), "autocommit": True}


def _fresh_place(env: Mapping[str, str], app_name: str) -> _Place:
    e = Environment(app_name, dict(env))
    module = e.get("PERSISTENCE_MODULE") or "eventsourcing.popo"
    stamp = datetime.now(tz=UTC).strftime("%Y%m%d%H%M%S")
    if module == "eventsourcing.postgres":
        connect = _pg_connect(e)
        base = (e.get("POSTGRES_SCHEMA") or "").strip() or "public"
        with psycopg.connect(**connect) as conn:
            for attempt in range(1, 100):
                schema = f"{base[:40]}_rebuild_{stamp}" + (f"_{attempt}" if attempt > 1 else "")
                try:
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
                    break
                except pg_errors.DuplicateSchema:
                    continue
            else:  # pragma: no cover - 99 rebuilds in one second
                msg = f"no free schema name for a rebuild beside {base}"
                raise RuntimeError(msg)

        def drop() -> None:
            with psycopg.connect(**connect) as conn:
                conn.execute("SET lock_timeout = '10s'")
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(schema)))  # fmt: skip

        def logged(on: bool) -> None:
            """Every table of the fresh schema LOGGED or UNLOGGED: written without WAL (and
            emptied by a crash), as a rebuild's tables can be until it keeps them. Kept
            (LOGGED), each is analysed too: filled by COPY, it has no statistics until
            autovacuum comes round, and the followers' first queries would be planned
            blind."""
            with psycopg.connect(**connect) as conn:
                tables = conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename",
                    (schema,),
                ).fetchall()
                for (table,) in tables:
                    conn.execute(sql.SQL("ALTER TABLE {} SET {}").format(
                        sql.Identifier(schema, table), sql.SQL("LOGGED" if on else "UNLOGGED")
                    ))  # fmt: skip
                    if on:
                        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))

        return _Place(_with(env, app_name, "POSTGRES_SCHEMA", schema), schema, drop, logged)
    if module == "eventsourcing.sqlite":
        dbname = e.get("SQLITE_DBNAME") or ""
        if not dbname or ":memory:" in dbname or "mode=memory" in dbname:
            msg = "an in-memory SQLite store has no live read models to rebuild beside"
            raise ValueError(msg)
        data = Path(dbname)
        folder = Path(tempfile.mkdtemp(prefix=f"{data.stem}.rebuild-{stamp}-", dir=data.parent))
        return _Place(
            _with(env, app_name, "SQLITE_DBNAME", str(folder / data.name)),
            str(folder),
            lambda: shutil.rmtree(folder, ignore_errors=True),
        )
    msg = (
        f"a rebuild needs a durable store (PostgreSQL or SQLite), not PERSISTENCE_MODULE="
        f"{module!r}: in memory the read models live only in the serving process"
    )
    raise ValueError(msg)


# --- the rebuild --------------------------------------------------------------------------------
def rebuild(
    settings_env: Mapping[str, str],
    store: CaseStore,
    *,
    progress: Progress | None = None,
    keep: bool = False,
    batch_size: int = BATCH,
) -> RebuildReport:
    """Replays the whole of ``store`` into fresh read models and compares them with the live
    ones of ``settings_env`` (the store's persistence environment, ``Settings.store_env()``).
    ``progress`` is called after every batch of the replay (of ``batch_size`` notifications);
    ``keep`` leaves the fresh tables of a rebuild that succeeds in place (see
    :attr:`RebuildReport.fresh_env`); a rebuild that fails always removes them."""
    started = time.perf_counter()
    place = _fresh_place(settings_env, store.name)
    try:
        fresh = _open_models(place.env, store.name)
        try:
            place.logged(False)  # PostgreSQL: no WAL for the replay's writes
            timing = _Timing()
            counter = _Counter(progress)
            position = _replay(store, place, fresh, timing=timing, counter=counter,
                               batch_size=batch_size)  # fmt: skip
            replay_seconds = time.perf_counter() - started
            models = _compare(store, settings_env, fresh, timing, batch_size)
        finally:
            for model in fresh:
                model.close()
        if keep:
            place.logged(True)  # kept, the fresh tables are as durable as the live ones
    except BaseException:
        place.remove()  # a failed rebuild leaves nothing behind, kept or not
        raise
    if not keep:
        place.remove()
    return RebuildReport(
        models=models,
        position=position,
        events=timing.events,
        replay_seconds=replay_seconds,
        read_seconds=timing.read,
        seconds=time.perf_counter() - started,
        location=place.location,
        kept=keep,
        fresh_env=place.env if keep else {},
    )


# --- showing it ---------------------------------------------------------------------------------
BAR_WIDTH = 10


def progress_line(done: int, total: int, rate: float) -> str:
    """``\\r[#####.....] 52% 52,000/100,000 events  48,000 ev/s``"""
    share = min(done / total, 1.0) if total > 0 else 1.0
    filled = int(share * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    return f"\r[{bar}] {int(share * 100)}% {done:,}/{total:,} events  {rate:,.0f} ev/s"


class ProgressBar:
    """A :data:`Progress` drawing one updating line on ``stream`` (at most every ``every``
    seconds, and the last one always); :meth:`close` ends the line."""

    def __init__(self, stream: TextIO = sys.stderr, every: float = 0.1) -> None:
        self._stream = stream
        self._every = every
        self._last = 0.0
        self._width = 0
        self._drawn = False

    def __call__(self, done: int, total: int, rate: float) -> None:
        now = time.monotonic()
        if done < total and now - self._last < self._every:
            return
        self._last = now
        line = progress_line(done, total, rate)
        self._stream.write(line.ljust(self._width))
        self._stream.flush()
        self._width, self._drawn = len(line), True

    def close(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


def format_report(report: RebuildReport) -> str:
    """The report as a table, then the differences, the lag and a summary line."""
    head = ("read model", "rows", "live rows", "checksum live", "checksum fresh", "equal",
            "events", "seconds", "events/s")  # fmt: skip
    lines = [
        (m.name, f"{m.rows:,}", f"{m.live_rows:,}", m.checksum_live[:16], m.checksum_fresh[:16],
         "yes" if m.equal else "NO", f"{m.events:,}", f"{m.seconds:.2f}",
         f"{m.events_per_second:,.0f}")
        for m in report.models
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in (head, *lines)) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in (0, 3, 4, 5) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(head), line(["-" * w for w in widths]), *map(line, lines)]
    for m in report.models:
        if m.difference_count:
            more = m.difference_count - len(m.differences)
            shown = ", ".join(m.differences) + (f" (+{more} more)" if more else "")
            out.append(f"{m.name}: {m.difference_count} differing row(s) at #{m.position}: {shown}")
        if m.lag:
            more = m.lag - len(m.lag_keys)
            shown = ", ".join(m.lag_keys) + (f" (+{more} more)" if more else "")
            out.append(
                f"{m.name}: {m.lag} record(s) at or below #{m.position} not yet in the live trail "
                f"(worker lag, not a difference): {shown}"
            )
    positions = ", ".join(f"{m.name} #{m.position}" for m in report.models)
    out.append(
        f"replayed {report.events:,} events up to #{report.position} in "
        f"{report.replay_seconds:.2f} s ({report.events_per_second:,.0f} events/s); "
        f"compared at {positions}; fresh tables in {report.location} "
        f"({'kept' if report.kept else 'dropped'}); "
        + ("all read models equal" if report.equal else "READ MODELS DIFFER")
    )
    return "\n".join(out)
