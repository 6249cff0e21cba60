"""The PostgreSQL recorder of the case store (``application.pg_recorder.OrderedRecorder``):
saves from many threads and processes commit in notification-id order, so a follower of the
log misses none; a group commit that takes a taken version fails only the save that took it;
and every save's NOTIFY names the projects and versions it stored."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, Recording, StoredEvent
from psycopg import sql

from application.mapper import chain_hash
from application.pg_recorder import (
    ANY_CHANGE,
    MAX_PAYLOAD,
    OrderedRecorder,
    changed_payload,
    lock_key,
    parse_payload,
)
from application.store import CaseStore
from domain.actor import Actor, Role, Stamp
from domain.project import KeyProject
from domain.windows import Window
from tests import pg
from tests.domain.factory import TODAY, register

pytestmark = pytest.mark.postgres

OFFICER = Actor("officer-xihu-01", "王芳", Role.OFFICER, Window.XIHU)
RECORDER_TOPIC = "application.pg_recorder:OrderedRecorder"  # as application/settings.py sets


@pytest.fixture
def open_store() -> Iterator[Callable[[], CaseStore]]:
    """Opens CaseStores on one fresh schema with the ordered recorder, as the service's
    processes would; all are closed before the schema is dropped."""
    opened: list[CaseStore] = []
    with pg.fresh_schema() as schema:
        env = pg.postgres_env(schema, APPLICATION_RECORDER_TOPIC=RECORDER_TOPIC)

        def open_() -> CaseStore:
            opened.append(CaseStore(env=env))
            return opened[-1]

        yield open_
        for store in reversed(opened):
            store.close()


def recorder_of(store: CaseStore) -> OrderedRecorder:
    recorder = store.recorder
    assert isinstance(recorder, OrderedRecorder), type(recorder)
    return recorder


def code(n: int) -> str:
    return f"2024-330100-44-01-{n:06d}"


def new_project(n: int, events: int = 1) -> KeyProject:
    """Project number ``n`` with ``events`` pending events (registered, then audit notes)."""
    project = register(project_code=code(n))
    for k in range(2, events + 1):
        project.add_audit_note(note=f"备注 {k}", today=TODAY)
    return project


def save(store: CaseStore, *projects: KeyProject) -> list[Recording[uuid.UUID]]:
    return store.save(*projects, stamp=Stamp(OFFICER, f"req-{uuid.uuid4().hex[:8]}"))


def as_uuid(originator_id: uuid.UUID | str) -> uuid.UUID:
    return originator_id if isinstance(originator_id, uuid.UUID) else uuid.UUID(originator_id)


def table_ids(store: CaseStore) -> dict[tuple[uuid.UUID, int], int]:
    """Every stored row's notification id, by (project id, version)."""
    rows = recorder_of(store).select_notifications(start=1, limit=100_000)
    return {(as_uuid(n.originator_id), n.originator_version): n.id for n in rows}


# --- order ------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_saves_from_many_threads_and_processes_commit_in_notification_id_order(
    open_store: Callable[[], CaseStore],
) -> None:
    """16 threads over 4 stores (4 processes, each with its group commit) save 96 projects at
    once while a follower reads the log from the start, as the relay does: each read asks for
    the ids after the last it saw. Had a save committed a lower id after a higher one was
    visible, the follower would have passed over it for good."""
    stores = [open_store() for _ in range(4)]
    follower = recorder_of(open_store())
    threads, saves_each = 16, 6
    start = threading.Barrier(threads + 1)
    done = threading.Event()
    recorded: dict[int, list[Recording[uuid.UUID]]] = {}
    failures: list[BaseException] = []
    followed: list[tuple[int, uuid.UUID, int]] = []

    def saver(t: int) -> None:
        store = stores[t % len(stores)]
        start.wait()
        for s in range(saves_each):
            n = t * saves_each + s
            try:
                recorded[n] = save(store, new_project(n, events=1 + n % 3))
            except BaseException as e:  # noqa: BLE001 - every failure is asserted on below
                failures.append(e)

    def follow() -> None:
        last = 0
        start.wait()
        while True:
            finished = done.is_set()  # read before the query: the last read sees every save
            batch = follower.select_notifications(start=last + 1, limit=50)
            for n in batch:
                followed.append((n.id, as_uuid(n.originator_id), n.originator_version))
                last = n.id
            if finished and not batch:
                return

    workers = [threading.Thread(target=saver, args=(t,)) for t in range(threads)]
    reader = threading.Thread(target=follow)
    for worker in [*workers, reader]:
        worker.start()
    for worker in workers:
        worker.join()
    done.set()
    reader.join()

    assert failures == []
    total = sum(1 + n % 3 for n in range(threads * saves_each))
    stored = table_ids(stores[0])
    assert len(stored) == total
    in_table = sorted((i, pid, v) for (pid, v), i in stored.items())
    assert followed == in_table, "the follower passed over a save that committed late"
    assert [i for i, _, _ in in_table] == list(range(1, total + 1)), "ids with gaps"
    for n, recordings in recorded.items():
        project_id = KeyProject.create_id(code(n))
        assert [r.notification.originator_version for r in recordings] == list(range(1, 2 + n % 3))
        assert [r.notification.id for r in recordings] == [
            stored[project_id, r.notification.originator_version] for r in recordings
        ], f"save {n} was told ids that are not its rows'"


# --- group commit -----------------------------------------------------------------------------


def advisory_lock_held_for(recorder: OrderedRecorder) -> tuple[int, int]:
    """(classid, objid) of the recorder's advisory lock as pg_locks shows a bigint key."""
    key = lock_key(recorder.datastore.schema, recorder.events_table_name) & (2**64 - 1)
    return key >> 32, key & (2**32 - 1)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


@pytest.mark.timeout(60)
def test_a_batch_with_a_taken_version_fails_only_the_save_that_took_it(
    open_store: Callable[[], CaseStore],
) -> None:
    """The saves queued behind one in flight are inserted as one statement; one of them
    registers a project code already registered (version 1 taken). The batch is all or
    nothing, so it is tried again save by save: only that save gets the IntegrityError.

    The batch is made deterministic with the recorder's own advisory lock, held here from
    another session: the first save waits for it in PostgreSQL (its insert in flight), and the
    others queue in the process until the lock is let go."""
    store = open_store()
    recorder = recorder_of(store)
    save(store, new_project(1))  # the project code the conflicting save registers again
    classid, objid = advisory_lock_held_for(recorder)
    outcomes: dict[str, list[Recording[uuid.UUID]] | BaseException] = {}

    def save_as(name: str, *projects: KeyProject) -> threading.Thread:
        def run() -> None:
            try:
                outcomes[name] = save(store, *projects)
            except BaseException as e:  # noqa: BLE001 - every outcome is asserted on below
                outcomes[name] = e

        thread = threading.Thread(target=run, name=name)
        thread.start()
        return thread

    with pg.connect() as lock_session:
        key = lock_key(recorder.datastore.schema, recorder.events_table_name)
        lock_session.execute("SELECT pg_advisory_lock(%s)", (key,))

        def waiting_for_the_lock() -> bool:
            row = lock_session.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND classid = %s::oid AND objid = %s::oid AND objsubid = 1",
                (classid, objid),
            ).fetchone()
            return row is not None and row[0] == 1

        in_flight = save_as("in flight", new_project(2))
        wait_until(waiting_for_the_lock, "the first save to wait for the advisory lock")
        queued = [
            save_as("two events", new_project(3, events=2)),
            save_as("taken version", new_project(1)),
            save_as("one event", new_project(4)),
            save_as("two projects", new_project(5), new_project(6, events=3)),
        ]
        # The queue is private; reading its length is the only way to know that every save
        # is queued behind the one in flight before the lock is let go (nothing is changed).
        wait_until(lambda: len(recorder._queue) == len(queued), "the saves to queue")
        lock_session.execute("SELECT pg_advisory_unlock(%s)", (key,))

    for thread in [in_flight, *queued]:
        thread.join(timeout=30)
        assert not thread.is_alive(), thread.name

    refused = outcomes.pop("taken version")
    assert isinstance(refused, IntegrityError), refused
    assert all(isinstance(o, list) for o in outcomes.values()), outcomes
    stored = table_ids(store)
    expected = {1: 1, 2: 1, 3: 2, 4: 1, 5: 1, 6: 3}  # project number: versions stored
    assert sorted(stored) == sorted(
        (KeyProject.create_id(code(n)), v)
        for n, last in expected.items()
        for v in range(1, last + 1)
    )
    for recordings in outcomes.values():
        assert isinstance(recordings, list)
        for r in recordings:
            key_of_row = (as_uuid(r.notification.originator_id), r.notification.originator_version)
            assert stored[key_of_row] == r.notification.id
    ids = sorted(stored.values())
    assert ids == sorted(set(ids))
    first = recorder_of(store).select_events(KeyProject.create_id(code(1)))
    assert len(first) == 1  # the registration that was there first, alone


# --- the NOTIFY payload -----------------------------------------------------------------------


def stored_event(project_id: uuid.UUID, version: int) -> StoredEvent:
    return StoredEvent(originator_id=project_id, originator_version=version, topic="t", state=b"{}")


def test_the_payload_names_each_project_saved_with_its_last_version() -> None:
    p, q = uuid.uuid4(), uuid.uuid4()
    payload = changed_payload([stored_event(p, 3), stored_event(p, 4), stored_event(q, 1)])
    assert payload == f"{p}:4,{q}:1"
    assert parse_payload(payload) == {p: 4, q: 1}


def test_the_largest_payload_that_fits_names_every_project() -> None:
    per_project = len(f"{uuid.uuid4()}:1,")
    count = (MAX_PAYLOAD + 1) // per_project  # the most projects whose payload fits
    projects = [uuid.uuid4() for _ in range(count)]
    payload = changed_payload([stored_event(p, 1) for p in projects])
    assert len(payload.encode()) < 8000  # PostgreSQL's limit
    assert parse_payload(payload) == dict.fromkeys(projects, 1)

    one_more = changed_payload([stored_event(p, 1) for p in [*projects, uuid.uuid4()]])
    assert one_more == ANY_CHANGE


def test_a_payload_over_the_limit_says_only_that_something_changed() -> None:
    payload = changed_payload([stored_event(uuid.uuid4(), 7) for _ in range(300)])
    assert payload == "*"
    assert parse_payload(payload) is None


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("", id="empty (the library's own NOTIFY)"),
        pytest.param("*", id="any change"),
        pytest.param("not-a-uuid:3", id="not a uuid"),
        pytest.param(f"{uuid.uuid4()}:three", id="not a version"),
        pytest.param(f"{uuid.uuid4()}", id="no version"),
        pytest.param(f"{uuid.uuid4()}:3,garbage", id="one good, one garbage"),
        pytest.param("\x00\xff:1", id="binary"),
    ],
)
def test_an_unreadable_payload_names_nothing(payload: str) -> None:
    assert parse_payload(payload) is None


def listen(recorder: OrderedRecorder) -> psycopg.Connection[tuple[Any, ...]]:
    conn = pg.connect()
    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(recorder.channel_name)))
    return conn


def heard(conn: psycopg.Connection[tuple[Any, ...]], wanted: Callable[[str], bool]) -> bool:
    """Whether a notification with a payload ``wanted`` arrives within 5 s. The channel is the
    table's name, so saves of other schemas in the database may be heard too: they are
    passed over."""
    deadline = time.monotonic() + 5
    while (left := deadline - time.monotonic()) > 0:
        for notice in conn.notifies(timeout=left, stop_after=1):
            if wanted(notice.payload):
                return True
    return False


@pytest.mark.timeout(60)
def test_a_save_of_two_projects_notifies_both_with_their_last_versions(
    open_store: Callable[[], CaseStore],
) -> None:
    store = open_store()
    recorder = recorder_of(store)
    b = new_project(2, events=3)
    save(store, b)
    b.add_audit_note(note="第四条", today=TODAY)  # b: version 4 pending
    a = new_project(1, events=2)  # a: versions 1 and 2 pending

    with listen(recorder) as conn:
        save(store, a, b)
        expected = {a.id: 2, b.id: 4}
        assert heard(conn, lambda payload: parse_payload(payload) == expected)


@pytest.mark.timeout(60)
def test_a_save_too_large_to_name_its_projects_is_stored_and_notifies_any_change(
    open_store: Callable[[], CaseStore],
) -> None:
    """PostgreSQL refuses a NOTIFY payload over 8,000 bytes, and the NOTIFY is part of the
    insert: naming 300 projects would fail the save."""
    store = open_store()
    recorder = recorder_of(store)
    projects = [new_project(n) for n in range(1, 301)]
    with listen(recorder) as conn:
        recordings = save(store, *projects)
        assert heard(conn, lambda payload: payload == ANY_CHANGE)
    assert len(recordings) == 300
    assert len(table_ids(store)) == 300


# --- a project's head in one query ----------------------------------------------------------
def test_a_cold_load_gets_the_latest_snapshot_and_the_events_after_it_in_one_query(
    open_store: Callable[[], CaseStore],
) -> None:
    writer = open_store()
    project = new_project(1)
    save(writer, project)
    for k in range(2, 121):  # saved one by one: snapshots at 50 and 100
        project.add_audit_note(note=f"备注 {k}", today=TODAY)
        save(writer, project)
    reader = open_store()  # another process: nothing cached
    snapshots_table = reader.snapshots.recorder.events_table_name  # type: ignore[union-attr] # snapshotting is on
    snapshot, events = recorder_of(reader).head_records(snapshots_table, project.id)
    assert snapshot is not None
    assert snapshot.originator_version == 100
    assert [e.originator_version for e in events] == list(range(101, 121))
    loaded = reader.get_project(project.id)
    assert loaded.version == 120
    assert loaded.audit_notes == writer.get_project(project.id, version=120).audit_notes
    assert reader.cache is not None
    cached = reader.cache.get(project.id)
    assert cached is not None
    assert cached.head == chain_hash(recorder_of(reader).select_events(project.id)[-1])


@pytest.mark.parametrize("version", [1, 49, 50, 51, 100, 119, 120, 500])
def test_a_past_version_loads_in_one_query_as_the_library_replays_it(
    open_store: Callable[[], CaseStore], version: int
) -> None:
    """A past version (a worker's project at an event, ``?version=``) comes from the latest
    snapshot at or before it and the events after it up to it: the same project as the
    library's repository gives, around the snapshots at 50 and 100 and past the head."""
    writer = open_store()
    project = new_project(1)
    save(writer, project)
    for k in range(2, 121):
        project.add_audit_note(note=f"备注 {k}", today=TODAY)
        save(writer, project)
    reader = open_store()
    snapshots_table = reader.snapshots.recorder.events_table_name  # type: ignore[union-attr] # snapshotting is on
    snapshot, events = recorder_of(reader).head_records(snapshots_table, project.id, lte=version)
    assert snapshot is None or snapshot.originator_version <= version
    assert all(e.originator_version <= version for e in events)
    loaded = reader.get_project(project.id, version=version)
    by_library: KeyProject = reader.repository.get(project.id, version=version)
    assert loaded.version == by_library.version == min(version, 120)
    assert loaded.audit_notes == by_library.audit_notes
    assert len(loaded.audit_notes) == min(version, 120) - 1


def test_version_zero_of_a_project_is_not_found(open_store: Callable[[], CaseStore]) -> None:
    store = open_store()
    project = new_project(1)
    save(store, project)
    with pytest.raises(AggregateNotFoundError):
        store.get_project(project.id, version=0)


def test_a_cold_load_of_an_unknown_project_is_not_found(
    open_store: Callable[[], CaseStore],
) -> None:
    store = open_store()
    with pytest.raises(AggregateNotFoundError):
        store.get_project(uuid.uuid4())


def _open_at_once(env: dict[str, str], count: int) -> tuple[list[CaseStore], list[Exception]]:
    opened: list[CaseStore] = []
    failed: list[Exception] = []
    lock = threading.Lock()

    def open_store() -> None:
        try:
            store = CaseStore(env=env)
        except Exception as e:  # noqa: BLE001 - collected and asserted by the caller
            with lock:
                failed.append(e)
        else:
            with lock:
                opened.append(store)

    threads = [threading.Thread(target=open_store) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return opened, failed


def test_stores_opened_at_the_same_moment_on_a_new_schema_all_open() -> None:
    """Every CaseStore creates the library's types, tables and functions; six at once on an
    empty schema used to fail with duplicate-key or "tuple concurrently updated" errors."""
    for _ in range(3):
        with pg.fresh_schema() as schema:
            opened, failed = _open_at_once(pg.postgres_env(schema), 6)
            for store in opened:
                store.close()
            assert failed == []
            assert len(opened) == 6
