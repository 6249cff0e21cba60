"""Stored notifications: once per event, recipient and channel however often an event is
delivered, and delivery states that only move forward; on SQLite and on PostgreSQL (a fresh
schema, never skipped)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from application.notification_rules import Channel, NotificationSpec
from application.notifications import (
    LEASE,
    DeliveryInFlight,
    DeliveryState,
    Notification,
    Notifications,
)
from application.sqldb import Database
from domain.errors import InvalidInput
from tests import pg
from tests.conftest import SHANGHAI, START

PROJECT = uuid.uuid5(uuid.NAMESPACE_URL, "ecocase:test:project-1")
OTHER_PROJECT = uuid.uuid5(uuid.NAMESPACE_URL, "ecocase:test:project-2")
UNIT = "unit:91330100716105852F"

LETTER = "【杭州市生态环境局】温馨提醒函"
SPECS = (
    NotificationSpec(UNIT, Channel.EMAIL, "lisi@example.cn", LETTER, "正文"),
    NotificationSpec(UNIT, Channel.WEBHOOK, "zheliban", LETTER, "正文"),
    NotificationSpec("supervisor:xihu", Channel.INBOX, None, "已发温馨提醒函", "内部通知"),
    NotificationSpec("officer:officer-xihu-02", Channel.INBOX, None, "待审核", "请审核"),
)


@pytest.fixture(params=pg.DURABLE_STORES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The workers' database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        database = Database("sqlite", path=str(tmp_path / "workers.sqlite"))
        yield database
        database.close()
        return
    with pg.fresh_schema() as schema:
        database = Database(
            "postgres",
            connect={
                "dbname": pg.DBNAME,
                "host": pg.HOST,
                "port": pg.PORT,
                "user": pg.USER,
                "password": pg.PASSWORD,
            },
            schema=schema,
        )
        try:
            yield database
        finally:
            database.close()


@pytest.fixture
def store(db: Database) -> Notifications:
    return Notifications(db)


def add(
    store: Notifications,
    notification_id: int = 7,
    specs: tuple[NotificationSpec, ...] = SPECS,
    *,
    project: uuid.UUID = PROJECT,
    window: str = "xihu",
    now: datetime = START,
) -> list[str]:
    with store.db.transaction() as cursor:
        return store.add(
            cursor,
            notification_id=notification_id,
            project_id=project,
            window=window,
            specs=specs,
            now=now,
        )


def count(db: Database) -> int:
    rows = db.query("SELECT COUNT(*) FROM notifications")
    return int(rows[0][0])


def test_add_stores_each_spec_and_returns_what_needs_a_delivery(store: Notifications) -> None:
    keys = add(store)
    assert keys == [f"7:{UNIT}:email", f"7:{UNIT}:webhook"]
    assert count(store.db) == 4
    email = store.get(f"7:{UNIT}:email")
    assert email == Notification(
        key=f"7:{UNIT}:email",
        notification_id=7,
        project_id=PROJECT,
        window="xihu",
        recipient=UNIT,
        channel=Channel.EMAIL,
        address="lisi@example.cn",
        subject=LETTER,
        body="正文",
        state=DeliveryState.PENDING,
        attempts=0,
        last_error=None,
        created_at=START,
        sent_at=None,
    )
    inbox = store.get("7:supervisor:xihu:inbox")
    assert inbox is not None
    assert inbox.state is DeliveryState.SENT  # delivered by being stored
    assert inbox.sent_at == START
    assert inbox.address is None
    assert store.get("7:nobody:inbox") is None


def test_times_come_back_as_the_same_moment(store: Notifications) -> None:
    add(store, now=START.astimezone(SHANGHAI))
    stored = store.get(f"7:{UNIT}:email")
    assert stored is not None
    assert stored.created_at == START
    assert stored.created_at.utcoffset() is not None
    with pytest.raises(ValueError, match="time zone"):
        add(store, 8, now=START.replace(tzinfo=None))


def test_a_redelivered_event_stores_nothing_twice_and_re_enqueues_what_is_unfinished(
    store: Notifications,
) -> None:
    first = add(store)
    again = add(store, now=START + timedelta(minutes=5))
    assert again == first
    assert count(store.db) == 4
    stored = store.get(first[0])
    assert stored is not None
    assert stored.created_at == START  # the first one stays as it was
    assert store.start_attempt(first[0]) is not None
    store.mark_sent(first[0], START + timedelta(seconds=1))
    assert add(store) == [first[1]]
    assert store.start_attempt(first[1]) is not None
    store.mark_failed(first[1], "HTTP 500", START)
    assert add(store) == [first[1]]  # failed still needs a delivery
    store.mark_dead(first[1], "HTTP 500", START)
    assert add(store) == []
    assert count(store.db) == 4


def test_duplicate_specs_of_one_event_are_one_notification(store: Notifications) -> None:
    assert add(store, 9, (SPECS[0], SPECS[0], SPECS[2], SPECS[2])) == [f"9:{UNIT}:email"]
    assert count(store.db) == 2


def test_add_belongs_to_the_callers_transaction(store: Notifications) -> None:
    class CrashError(Exception):
        pass

    def crash_after_add() -> None:
        with store.db.transaction() as cursor:
            store.add(
                cursor, notification_id=7, project_id=PROJECT, window="xihu", specs=SPECS, now=START
            )
            raise CrashError

    with pytest.raises(CrashError):
        crash_after_add()
    assert count(store.db) == 0
    assert add(store, 7, ()) == []


def test_concurrent_deliveries_of_one_event_store_it_once(store: Notifications) -> None:
    barrier = threading.Barrier(4)
    results: list[list[str]] = []
    errors: list[Exception] = []

    def deliver() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(add(store))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert results == [[f"7:{UNIT}:email", f"7:{UNIT}:webhook"]] * 4
    assert count(store.db) == 4


# --- delivery states -------------------------------------------------------------------------
def test_an_attempt_counts_and_failure_then_success_ends_sent(store: Notifications) -> None:
    key = add(store)[1]
    first = store.start_attempt(key)
    assert first is not None
    assert (first.state, first.attempts) == (DeliveryState.PENDING, 1)
    assert store.mark_failed(key, "HTTP 500 Internal Server Error", START + timedelta(seconds=1))
    failed = store.get(key)
    assert failed is not None
    assert (failed.state, failed.attempts, failed.last_error) == (
        DeliveryState.FAILED,
        1,
        "HTTP 500 Internal Server Error",
    )
    second = store.start_attempt(key)
    assert second is not None
    assert (second.state, second.attempts) == (DeliveryState.FAILED, 2)
    sent_at = START + timedelta(seconds=30)
    assert store.mark_sent(key, sent_at)
    sent = store.get(key)
    assert sent is not None
    assert (sent.state, sent.attempts, sent.sent_at) == (DeliveryState.SENT, 2, sent_at)


def test_a_sent_notification_never_moves_again(store: Notifications) -> None:
    key = add(store)[0]
    store.start_attempt(key)
    sent_at = START + timedelta(seconds=1)
    assert store.mark_sent(key, sent_at)
    assert store.start_attempt(key) is None  # the caller does nothing
    assert not store.mark_sent(key, START + timedelta(hours=1))
    assert not store.mark_failed(key, "late failure", START + timedelta(hours=1))
    assert not store.mark_dead(key, "late death", START + timedelta(hours=1))
    assert not store.reopen(key, START + timedelta(hours=1))
    sent = store.get(key)
    assert sent is not None
    assert (sent.state, sent.sent_at, sent.attempts, sent.last_error) == (
        DeliveryState.SENT,
        sent_at,
        1,
        None,
    )


def test_a_dead_notification_is_not_attempted_until_reopened(store: Notifications) -> None:
    key = add(store)[1]
    store.start_attempt(key)
    assert store.mark_dead(key, "HTTP 400 Bad Request", START)
    assert store.start_attempt(key) is None
    assert not store.mark_failed(key, "again", START)
    dead = store.get(key)
    assert dead is not None
    assert (dead.state, dead.last_error) == (DeliveryState.DEAD, "HTTP 400 Bad Request")
    assert store.reopen(key, START)
    retried = store.start_attempt(key)
    assert retried is not None
    assert (retried.state, retried.attempts) == (DeliveryState.PENDING, 2)


def test_inbox_and_unknown_notifications_have_no_attempts(store: Notifications) -> None:
    add(store)
    assert store.start_attempt("7:supervisor:xihu:inbox") is None
    assert store.start_attempt("404:nobody:email") is None
    assert not store.mark_failed("7:supervisor:xihu:inbox", "x", START)
    inbox = store.get("7:supervisor:xihu:inbox")
    assert inbox is not None
    assert inbox.state is DeliveryState.SENT


def test_long_errors_are_cut(store: Notifications) -> None:
    key = add(store)[0]
    store.mark_failed(key, "错" * 5000, START)
    stored = store.get(key)
    assert stored is not None
    assert stored.last_error is not None
    assert len(stored.last_error) == 2000


# --- listing ---------------------------------------------------------------------------------
def seed(store: Notifications) -> None:
    add(store, 1)
    add(store, 2, (SPECS[0], SPECS[2]), project=OTHER_PROJECT, window="gongshu")
    add(store, 3, (SPECS[3],))


def keys(page: list[Notification]) -> list[str]:
    return [n.key for n in page]


def test_list_is_newest_first_with_filters(store: Notifications) -> None:
    seed(store)
    page, cursor = store.list()
    assert cursor is None
    assert [n.notification_id for n in page] == [3, 2, 2, 1, 1, 1, 1]
    assert keys(store.list(project=OTHER_PROJECT)[0]) == [
        "2:unit:91330100716105852F:email",
        "2:supervisor:xihu:inbox",
    ]
    assert keys(store.list(recipient=UNIT)[0]) == [
        f"2:{UNIT}:email",
        f"1:{UNIT}:webhook",
        f"1:{UNIT}:email",
    ]
    assert {n.window for n in store.list(windows=frozenset({"gongshu"}))[0]} == {"gongshu"}
    assert store.list(windows=frozenset())[0] == []


def test_list_for_an_officer_shows_their_inbox_and_readable_projects(
    store: Notifications,
) -> None:
    seed(store)
    add(store, 4, (SPECS[3],), project=OTHER_PROJECT, window="gongshu")
    mine = "officer:officer-xihu-02"
    own_window, _ = store.list(windows=frozenset({"xihu"}), reader_inbox=mine)
    assert keys(own_window) == [
        f"4:{mine}:inbox",  # their inbox, whatever the window
        f"3:{mine}:inbox",
        f"1:{UNIT}:webhook",
        f"1:{UNIT}:email",
        f"1:{mine}:inbox",
    ]  # not 1:supervisor:xihu:inbox
    assigned, _ = store.list(
        windows=frozenset({"binjiang"}),
        reader_projects=frozenset({OTHER_PROJECT}),
        reader_inbox="officer:someone-else",
    )
    assert keys(assigned) == [f"2:{UNIT}:email"]  # not the others' inboxes


def test_list_pages_with_a_cursor(store: Notifications) -> None:
    seed(store)
    everything = keys(store.list()[0])
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page, cursor = store.list(limit=2, cursor=cursor)
        assert len(page) <= 2
        seen += keys(page)
        if cursor is None:
            break
    assert seen == everything


@pytest.mark.parametrize("limit", [0, -1, 201, True])
def test_list_refuses_a_bad_limit(store: Notifications, limit: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        store.list(limit=limit)
    assert refused.value.field == "limit"


@pytest.mark.parametrize("cursor", ["not-a-cursor", "WzEsIDJd", "bnVsbA", "!!!"])
def test_list_refuses_a_bad_cursor(store: Notifications, cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        store.list(cursor=cursor)
    assert refused.value.field == "cursor"


def test_the_table_is_set_up_once_by_many(db: Database) -> None:
    first = Notifications(db)
    add(first)
    second = Notifications(db)  # a second process starting: the rows stay
    assert second.get(f"7:{UNIT}:email") is not None


def test_a_second_attempt_while_the_first_holds_the_lease_is_told_to_wait(
    store: Notifications,
) -> None:
    key = add(store)[1]
    assert store.start_attempt(key, now=START) is not None
    with pytest.raises(DeliveryInFlight):
        store.start_attempt(key, now=START + timedelta(seconds=5))
    # the first attempt's worker died: once its lease runs out, another attempt may send
    retried = store.start_attempt(key, now=START + LEASE + timedelta(seconds=1))
    assert retried is not None
    assert retried.attempts == 2


def test_a_finished_attempt_gives_the_lease_back_at_once(store: Notifications) -> None:
    key = add(store)[1]
    assert store.start_attempt(key, now=START) is not None
    store.mark_failed(key, "HTTP 500", START + timedelta(seconds=1))
    assert store.start_attempt(key, now=START + timedelta(seconds=2)) is not None
    store.mark_sent(key, START + timedelta(seconds=3))
    assert store.start_attempt(key, now=START + timedelta(seconds=4)) is None  # sent: nothing
