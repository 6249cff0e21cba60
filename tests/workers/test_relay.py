"""The outbox relay on the stores that persist: every stored event is published once, in order,
as an EventNotice; the position is recorded only after a successful publish; a new relay resumes
where the last one stopped; ``run`` follows new events (LISTEN/NOTIFY on PostgreSQL, polling on
SQLite) until it is stopped."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from uuid import UUID

import pytest
from eventsourcing.utils import get_topic

from application.cases import Acting, Cases
from application.sqldb import Database, open_database
from application.store import CaseStore
from domain.actor import Actor
from domain.officers import OfficerRole
from tests.conftest import PROJECT_CODE, register_major_project
from tests.pg import DURABLE_STORES
from workers.messages import EventNotice
from workers.relay import Relay

pytestmark = pytest.mark.parametrize("store_env", DURABLE_STORES, indirect=True)

OTHER_CODE = "2024-330100-44-01-654321"


@pytest.fixture
def db(store_env: dict[str, str]) -> Iterator[Database]:
    """The workers' database of the store (where the relay records its position)."""
    database = open_database(store_env)
    yield database
    database.close()


Elsewhere = Callable[[], tuple[CaseStore, Database]]


@pytest.fixture
def elsewhere(
    store_env: dict[str, str], open_store: Callable[[], CaseStore]
) -> Iterator[Elsewhere]:
    """Opens the store and the workers' database again, as another process would."""
    opened: list[Database] = []

    def open_() -> tuple[CaseStore, Database]:
        opened.append(open_database(store_env))
        return open_store(), opened[-1]

    yield open_
    for database in reversed(opened):
        database.close()


@pytest.fixture
def acting(officer: Actor) -> Acting:
    return Acting(officer, "req-relay")


class Collector:
    """A publish that keeps every batch it is given; it can be told to fail."""

    def __init__(self) -> None:
        self.batches: list[list[EventNotice]] = []
        self.fail_on_calls: set[int] = set()
        self.failed: list[list[EventNotice]] = []
        self.calls = 0

    def __call__(self, batch: Sequence[EventNotice]) -> None:
        self.calls += 1
        if self.calls in self.fail_on_calls:
            self.failed.append(list(batch))
            msg = "broker unreachable"
            raise ConnectionError(msg)
        self.batches.append(list(batch))

    @property
    def notices(self) -> list[EventNotice]:
        return [n for batch in self.batches for n in batch]


def expected_notices(store: CaseStore, order: Sequence[tuple[UUID, int]]) -> list[EventNotice]:
    """The notices of the events ``order`` names (project, version), in that order, with the
    notification ids the store gave them."""
    by_key = {(n.originator_id, n.originator_version): n.id
              for n in store.recorder.select_notifications(start=1, limit=1000)}  # fmt: skip
    notices = []
    for project_id, version in order:
        (event,) = [e for e in store.history(project_id) if e.originator_version == version]
        notices.append(EventNotice(by_key[project_id, version], str(project_id), version,
                                   get_topic(type(event))))  # fmt: skip
    return notices


def five_events(cases: Cases, acting: Acting) -> list[tuple[UUID, int]]:
    """Two projects, their events interleaved; returns (project, version) in write order."""
    first = register_major_project(cases, acting)
    second = register_major_project(cases, acting, OTHER_CODE)
    cases.assign_officer(acting, first.id, officer="officer-xihu-02", name="张伟",
                         role=OfficerRole.LEAD)  # fmt: skip
    cases.add_audit_note(acting, second.id, note="资料已归档")
    cases.add_audit_note(acting, first.id, note="已电话联系建设单位")
    return [(first.id, 1), (second.id, 1), (first.id, 2), (second.id, 2), (first.id, 3)]


def test_every_stored_event_is_published_once_in_order(
    store: CaseStore, cases: Cases, acting: Acting, db: Database
) -> None:
    order = five_events(cases, acting)
    collect = Collector()
    relay = Relay(store, db, collect, batch_size=2)
    assert (relay.position(), relay.lag()) == (0, 5)

    assert relay.relay_available() == 5

    expected = expected_notices(store, order)
    assert collect.notices == expected
    assert [len(b) for b in collect.batches] == [2, 2, 1]
    ids = [n.notification_id for n in expected]
    assert ids == sorted(set(ids))
    assert ids[-1] == relay.head()
    topics = [n.topic.rpartition(".")[2] for n in collect.notices]
    assert topics == ["Registered", "Registered", "OfficerAssigned", "AuditNoteAdded",
                      "AuditNoteAdded"]  # fmt: skip
    assert collect.notices[0].project_id == str(order[0][0])
    assert relay.position() == ids[-1]
    assert db.query("SELECT name, position FROM relay_position") == [("relay", ids[-1])]
    assert relay.lag() == 0

    assert relay.relay_available() == 0  # nothing new: nothing sent again
    assert collect.calls == 3


def test_a_failed_publish_keeps_the_position_and_the_next_call_resends(
    store: CaseStore, cases: Cases, acting: Acting, db: Database
) -> None:
    order = five_events(cases, acting)
    expected = expected_notices(store, order)
    collect = Collector()
    collect.fail_on_calls = {2}
    relay = Relay(store, db, collect, batch_size=2)

    with pytest.raises(ConnectionError):
        relay.relay_available()

    assert collect.notices == expected[:2]
    assert collect.failed == [expected[2:4]]
    assert relay.position() == expected[1].notification_id
    assert relay.lag() == 3

    assert relay.relay_available() == 3  # from the recorded position: the failed batch again
    assert collect.notices == expected
    assert relay.position() == expected[-1].notification_id
    assert relay.lag() == 0


def test_a_new_relay_resumes_at_the_recorded_position(
    store: CaseStore,
    cases: Cases,
    acting: Acting,
    db: Database,
    elsewhere: Elsewhere,
) -> None:
    first = register_major_project(cases, acting)
    second = register_major_project(cases, acting, OTHER_CODE)
    cases.add_audit_note(acting, first.id, note="一")
    before = Collector()
    assert Relay(store, db, before).relay_available() == 3
    cases.add_audit_note(acting, second.id, note="二")
    cases.add_audit_note(acting, first.id, note="三")
    expected = expected_notices(
        store, [(first.id, 1), (second.id, 1), (first.id, 2), (second.id, 2), (first.id, 3)]
    )
    assert before.notices == expected[:3]

    # Another process: its own store and database connections.
    after = Collector()
    relay = Relay(*elsewhere(), after)
    assert relay.position() == expected[2].notification_id
    assert relay.lag() == 2

    assert relay.relay_available() == 2
    assert after.notices == expected[3:]
    assert relay.lag() == 0
    assert Relay.observer(store, db).position() == expected[-1].notification_id

    other = Relay(store, db, Collector(), name="another-relay")  # each name keeps its place
    assert other.position() == 0


def _run_in_thread(relay: Relay, **kwargs: float) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), kwargs=kwargs, daemon=True)
    thread.start()
    return stop, thread


def _wait_for(condition: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_run_follows_new_events_within_a_second(
    store: CaseStore, cases: Cases, acting: Acting, db: Database, store_kind: str
) -> None:
    """On PostgreSQL the relay is woken by LISTEN/NOTIFY: with a 30 s poll interval every
    pickup still takes well under a second. SQLite is polled (50 ms by default)."""
    project = register_major_project(cases, acting)
    arrived: queue.Queue[tuple[EventNotice, float]] = queue.Queue()

    def publish(batch: Sequence[EventNotice]) -> None:
        for notice in batch:
            arrived.put((notice, time.monotonic()))

    relay = Relay(store, db, publish)
    poll = {"poll_interval": 30.0} if store_kind == "postgres" else {}
    stop, thread = _run_in_thread(relay, **poll)
    try:
        first, _ = arrived.get(timeout=2)
        assert (first.project_id, first.version) == (str(project.id), 1)

        latencies = []
        for n in range(5):
            written = time.monotonic()
            cases.add_audit_note(acting, project.id, note=f"第{n + 1}次调度记录")
            notice, at = arrived.get(timeout=2)
            assert notice.version == n + 2
            assert notice.topic.endswith("AuditNoteAdded")
            latencies.append(at - written)
        assert max(latencies) < 1.0, latencies
        assert arrived.empty()  # each event once

        assert _wait_for(lambda: relay.lag() == 0, timeout=1.0)
        assert relay.position() == relay.head()
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert relay.position() == relay.head()


def test_run_outlives_a_failing_publish_and_resends(
    store: CaseStore, cases: Cases, acting: Acting, db: Database
) -> None:
    project = register_major_project(cases, acting)
    collect = Collector()
    relay = Relay(store, db, collect)
    stop, thread = _run_in_thread(relay, error_pause=0.05)
    try:
        assert _wait_for(lambda: len(collect.notices) == 1)
        collect.fail_on_calls = {collect.calls + 1}  # the broker goes away for one send
        cases.add_audit_note(acting, project.id, note="断线期间的记录")
        assert _wait_for(lambda: len(collect.notices) == 2)
        assert [n.version for n in collect.failed[0]] == [2]
        assert [n.version for n in collect.notices] == [1, 2]
        assert _wait_for(lambda: relay.lag() == 0, timeout=1.0)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_the_observer_reads_the_position_without_publishing(
    store: CaseStore,
    cases: Cases,
    acting: Acting,
    db: Database,
    elsewhere: Elsewhere,
) -> None:
    project = register_major_project(cases, acting, PROJECT_CODE)
    cases.add_audit_note(acting, project.id, note="一")
    collect = Collector()
    relay = Relay(store, db, collect)
    relay.relay_available()
    sent = relay.position()
    cases.add_audit_note(acting, project.id, note="二")
    cases.add_audit_note(acting, project.id, note="三")

    observer = Relay.observer(*elsewhere())
    assert observer.position() == sent
    assert observer.head() == relay.head() > sent
    assert observer.lag() == 2
    with pytest.raises(RuntimeError, match="observer"):
        observer.relay_available()
    assert observer.position() == sent
    assert observer.lag() == 2

    assert relay.relay_available() == 2
    assert observer.lag() == 0
    assert observer.position() == relay.head()
    assert [n.version for n in collect.notices] == [1, 2, 3, 4]
