"""Tamper evidence: every project's events form a hash chain. The tests alter stored rows
directly with SQL (sqlite3 on the SQLite file, psycopg on the PostgreSQL schema) and show each
alteration is named at the right version; the last event, which no successor covers, is caught
by the lodged digest."""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg import sql

from application.cases import Acting, Cases
from application.integrity import (
    DigestEntry,
    chain_heads,
    check_project,
    daily_digest,
    digest_json,
    load_digest,
    verify_digest,
)
from application.mapper import chain_hash, stamp_of
from application.store import CaseStore
from domain.actor import Actor, Stamp
from domain.helper_service import HelperReason
from domain.intervention import Stage
from domain.materials import DeferralReason
from domain.officers import OfficerRole
from domain.project import KeyProject
from tests import pg
from tests.application.scenario import CASE_EVENTS, work_the_case
from tests.conftest import SHANGHAI, Clock, RegisterMajor
from tests.pg import DURABLE_STORES

durable = pytest.mark.parametrize("store_env", DURABLE_STORES, indirect=True)

LEAD_NAME = "陈主办"  # recorded in version 4
LAST_NOTE = "全过程资料已归档"  # version 8, the last


def today() -> date:
    return datetime.now(tz=SHANGHAI).date()


def sha256_of(project_id: UUID, stored: StoredEvent) -> str:
    """The chain's hash, written out here from its definition (not with chain_hash)."""
    head = f"{project_id}\n{stored.originator_version}\n{stored.topic}\n".encode()
    return hashlib.sha256(head + bytes(stored.state)).hexdigest()


@pytest.fixture
def project(cases: Cases, officer: Actor, register_major: RegisterMajor) -> KeyProject:
    """A major project with 8 events; version 4 assigns 陈主办, version 8 is an audit note."""
    acting = Acting(officer, "req-case")
    p = register_major()
    pid = p.id
    cases.start_early_intervention(acting, pid, stage=Stage.FEASIBILITY, guidance="环评前置指导")
    cases.schedule_progress_check(acting, pid, due_on=date(2026, 12, 18))
    cases.assign_officer(
        acting, pid, officer="officer-city-lead", name=LEAD_NAME, role=OfficerRole.LEAD
    )
    cases.dispatch_helper(
        acting,
        pid,
        helper="helper-03",
        name="吴助企",
        reason=HelperReason.LEGACY_ISSUES,
        visit_every_days=14,
    )
    cases.defer_material(
        acting,
        pid,
        material="规划许可证",
        department="市规划和自然资源局",
        reason=DeferralReason.OTHER_DEPARTMENT_PERMIT,
        promised_by=date(2026, 12, 31),
    )
    cases.add_audit_note(acting, pid, note="资料齐全")
    last = cases.add_audit_note(acting, pid, note=LAST_NOTE)
    assert last.version == 8
    return last


@dataclass
class StoredRows:
    """The events table of the store, altered directly with SQL, as an intruder would."""

    store: CaseStore
    env: dict[str, str]

    @property
    def table(self) -> str:
        recorder = self.store.recorder
        assert isinstance(recorder, SQLiteAggregateRecorder | PostgresAggregateRecorder)
        return recorder.events_table_name

    def _execute(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """``query`` names the table ``{table}`` and takes ``?`` parameters."""
        if "SQLITE_DBNAME" in self.env:
            assert self.table == "stored_events"
            sqlite_params = [p.hex if isinstance(p, UUID) else p for p in params]
            with sqlite3.connect(self.env["SQLITE_DBNAME"], timeout=10) as db:
                rows = db.execute(query.format(table=self.table), sqlite_params).fetchall()
            db.close()
            return rows
        assert self.table == "ecocase_events"
        table = sql.Identifier(self.env["POSTGRES_SCHEMA"], self.table)
        statement = sql.SQL(query.replace("?", "%s")).format(table=table)
        with pg.connect() as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def _forget(self, project_id: UUID) -> None:
        """The edit is made behind the service's back: it shows in a process that has not
        cached the project (another one, or this one after a restart), as this one now."""
        if self.store.cache is not None:
            self.store.cache.drop(project_id)

    def state(self, project_id: UUID, version: int) -> bytes:
        ((state,),) = self._execute(
            "SELECT state FROM {table} WHERE originator_id = ? AND originator_version = ?",
            project_id,
            version,
        )
        return bytes(state)

    def set_state(self, project_id: UUID, version: int, state: bytes) -> None:
        self._execute(
            "UPDATE {table} SET state = ? WHERE originator_id = ? AND originator_version = ?",
            state,
            project_id,
            version,
        )
        self._forget(project_id)
        assert self.state(project_id, version) == state

    def edit(self, project_id: UUID, version: int, change: Callable[[bytes], bytes]) -> None:
        before = self.state(project_id, version)
        after = change(before)
        assert after != before
        self.set_state(project_id, version, after)

    def delete(self, project_id: UUID, version: int) -> None:
        self._execute(
            "DELETE FROM {table} WHERE originator_id = ? AND originator_version = ?",
            project_id,
            version,
        )
        self._forget(project_id)

    def renumber(self, project_id: UUID, version: int, to: int) -> None:
        self._execute(
            "UPDATE {table} SET originator_version = ? "
            "WHERE originator_id = ? AND originator_version = ?",
            to,
            project_id,
            version,
        )
        self._forget(project_id)

    def swap(self, project_id: UUID, a: int, b: int) -> None:
        self.renumber(project_id, a, -a)
        self.renumber(project_id, b, a)
        self.renumber(project_id, -a, b)


@pytest.fixture
def rows(store: CaseStore, store_env: dict[str, str]) -> StoredRows:
    return StoredRows(store, store_env)


def replace_text(old: str, new: str) -> Callable[[bytes], bytes]:
    def change(state: bytes) -> bytes:
        assert state.count(old.encode()) == 1
        return state.replace(old.encode(), new.encode())

    return change


# --- an untouched chain ---------------------------------------------------------------------
def test_an_untouched_project_is_valid_and_its_head_is_the_hash_of_its_last_record(
    store: CaseStore, project: KeyProject
) -> None:
    report = check_project(store, project.id)
    assert (report.valid, report.events, report.first_bad_version, report.problem) == (
        True,
        8,
        None,
        None,
    )
    records = store.recorder.select_events(project.id)
    assert report.head == sha256_of(project.id, records[-1]) == chain_hash(records[-1])


def test_each_stored_payload_carries_the_hash_of_its_predecessor_as_meta_prev(
    store: CaseStore, project: KeyProject
) -> None:
    records = store.recorder.select_events(project.id)
    payloads = [json.loads(r.state) for r in records]
    assert "prev" not in payloads[0]["meta"]  # version 1: nothing before it ("")
    assert payloads[0]["meta"]["request_id"] == "req-register"
    for before, record, payload in zip(records, records[1:], payloads[1:], strict=False):
        assert payload["meta"]["prev"] == sha256_of(project.id, before)
        assert set(payload["meta"]) == {"actor", "request_id", "prev"}
        decoded = stamp_of(store.mapper.to_domain_event(record))
        assert decoded is not None
        assert decoded.prev == payload["meta"]["prev"]


def test_events_saved_together_are_chained_one_to_the_next(
    store: CaseStore, officer: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    loaded = store.get_project(project.id)
    loaded.add_audit_note(note="同批第一条", today=date(2026, 12, 4))
    loaded.add_audit_note(note="同批第二条", today=date(2026, 12, 4))
    loaded.add_audit_note(note="同批第三条", today=date(2026, 12, 4))
    store.save(loaded, stamp=Stamp(officer, "req-batch"))
    records = store.recorder.select_events(project.id)
    assert [r.originator_version for r in records] == [1, 2, 3, 4]
    for before, record in itertools.pairwise(records):
        stamp = stamp_of(store.mapper.to_domain_event(record))
        assert stamp is not None
        assert stamp.request_id == "req-batch"
        assert stamp.prev == sha256_of(project.id, before)
    assert check_project(store, project.id).valid


def test_a_30_event_project_with_snapshots_is_valid(
    *,
    store: CaseStore,
    open_store: Callable[[], CaseStore],
    store_kind: str,
    cases: Cases,
    officer: Actor,
    clock: Clock,
    register_major: RegisterMajor,
) -> None:
    acting = Acting(officer, "req-grow")
    project = register_major()
    work_the_case(cases, acting, project.id, clock)
    version = 1 + CASE_EVENTS
    while version < 30:
        version = cases.add_audit_note(acting, project.id, note=f"审计备注 v{version + 1}").version
    for at in (10, 20, 30):
        store.take_snapshot(project.id, version=at)
    assert store.snapshots is not None
    assert [s.originator_version for s in store.snapshots.get(project.id)] == [10, 20, 30]
    # Written on by another store (on POPO: the same), which loads from the snapshot at 30.
    other = store if store_kind == "popo" else open_store()
    more = Cases(other, clock=clock)
    more.add_audit_note(acting, project.id, note="快照之后的备注一")
    assert more.add_audit_note(acting, project.id, note="快照之后的备注二").version == 32
    report = check_project(store, project.id)
    assert (report.valid, report.events, report.first_bad_version) == (True, 32, None)


@pytest.mark.timeout(120)
def test_twenty_concurrent_writers_leave_a_valid_chain(
    store: CaseStore, cases: Cases, officer: Actor, register_major: RegisterMajor
) -> None:
    project = register_major()
    count = 20
    start = threading.Barrier(count)

    def write(n: int) -> KeyProject:
        start.wait()
        return cases.add_audit_note(Acting(officer, f"req-{n}"), project.id, note=f"并发 {n}")

    with ThreadPoolExecutor(count) as pool:
        written = list(pool.map(write, range(count)))
    assert len(written) == count
    report = check_project(store, project.id)
    assert (report.valid, report.events, report.problem) == (True, 1 + count, None)


# --- altered rows, found at the right version -----------------------------------------------
@durable
def test_a_flipped_payload_byte_in_version_4_is_named(
    store: CaseStore, rows: StoredRows, project: KeyProject
) -> None:
    def flip(state: bytes) -> bytes:
        at = state.index(b'"meta":') + len(b'"meta":')  # the "{" opening the stamp
        return state[:at] + bytes([state[at] ^ 0x01]) + state[at + 1 :]

    rows.edit(project.id, 4, flip)
    report = check_project(store, project.id)
    assert (report.valid, report.events, report.first_bad_version) == (False, 8, 4)
    assert report.problem is not None
    assert "version 4 does not decode" in report.problem


@durable
def test_a_changed_letter_in_a_chinese_name_in_version_4_is_named(
    store: CaseStore, rows: StoredRows, project: KeyProject, officer: Actor, cases: Cases
) -> None:
    """Still valid JSON that decodes and replays: only the chain tells."""
    rows.edit(project.id, 4, replace_text(LEAD_NAME, "张主办"))
    assert cases.get(officer, project.id).officers[0].name == "张主办"
    report = check_project(store, project.id)
    assert (report.valid, report.events, report.first_bad_version) == (False, 8, 4)
    assert report.problem is not None
    assert report.problem.startswith("version 4 was altered")


@durable
def test_a_changed_prev_in_version_4_is_named(
    store: CaseStore, rows: StoredRows, project: KeyProject
) -> None:
    def change_prev(state: bytes) -> bytes:
        at = state.index(b'"prev":"') + len(b'"prev":"')
        digit = b"0" if state[at : at + 1] != b"0" else b"1"
        return state[:at] + digit + state[at + 1 :]

    rows.edit(project.id, 4, change_prev)
    report = check_project(store, project.id)
    assert (report.valid, report.first_bad_version) == (False, 4)


@durable
def test_a_deleted_row_is_named_by_its_missing_version(
    store: CaseStore, rows: StoredRows, project: KeyProject
) -> None:
    rows.delete(project.id, 5)
    report = check_project(store, project.id)
    assert (report.valid, report.events, report.first_bad_version) == (False, 7, 5)
    assert report.problem == "version 5 is missing: the stored versions go from 4 to 6"


@durable
def test_swapped_versions_3_and_6_are_named_at_3(
    store: CaseStore, rows: StoredRows, project: KeyProject
) -> None:
    rows.swap(project.id, 3, 6)
    assert [r.originator_version for r in store.recorder.select_events(project.id)] == list(
        range(1, 9)
    )
    report = check_project(store, project.id)
    assert (report.valid, report.events, report.first_bad_version) == (False, 8, 3)
    assert report.problem is not None
    assert report.problem.startswith("version 3 is not the record chained here")


@durable
def test_a_renumbered_last_version_is_named_by_the_gap(
    store: CaseStore, rows: StoredRows, project: KeyProject
) -> None:
    rows.renumber(project.id, 8, 9)
    report = check_project(store, project.id)
    assert (report.valid, report.first_bad_version) == (False, 8)


@durable
def test_a_tampered_last_event_leaves_the_chain_valid_but_not_the_lodged_digest(
    store: CaseStore, rows: StoredRows, project: KeyProject
) -> None:
    digest = daily_digest(store, today())
    (lodged,) = digest.heads
    assert (lodged.project_id, lodged.version) == (project.id, 8)
    assert lodged.head == check_project(store, project.id).head
    assert verify_digest(store, digest) == []

    rows.edit(project.id, 8, replace_text(LAST_NOTE, "全过程资料已销毁"))
    report = check_project(store, project.id)
    assert (report.valid, report.events, report.first_bad_version) == (True, 8, None)
    assert report.head != lodged.head
    assert report.head == sha256_of(project.id, store.recorder.select_events(project.id)[-1])
    (problem,) = verify_digest(store, digest)
    assert (problem.project_id, problem.version) == (project.id, 8)
    assert "no longer hashes to the lodged head" in problem.problem


@durable
def test_a_deleted_last_event_is_caught_by_the_lodged_digest(
    store: CaseStore, rows: StoredRows, project: KeyProject
) -> None:
    digest = daily_digest(store, today())
    rows.delete(project.id, 8)
    report = check_project(store, project.id)
    assert (report.valid, report.events) == (True, 7)
    (problem,) = verify_digest(store, digest)
    assert (problem.project_id, problem.version) == (project.id, 8)
    assert problem.problem == "the lodged version 8 is not stored"


@durable
def test_an_altered_middle_event_fails_the_lodged_digest_too(
    store: CaseStore, rows: StoredRows, project: KeyProject
) -> None:
    digest = daily_digest(store, today())
    rows.edit(project.id, 4, replace_text(LEAD_NAME, "张主办"))
    (problem,) = verify_digest(store, digest)
    assert (problem.project_id, problem.version) == (project.id, 4)
    assert "hash chain is broken" in problem.problem


# --- chain heads and the digest -------------------------------------------------------------
def two_projects(register_major: RegisterMajor, cases: Cases, officer: Actor) -> list[UUID]:
    first = register_major().id
    second = register_major("2024-330100-44-01-654321").id
    cases.add_audit_note(Acting(officer, "req-n"), second, note="第二个项目的备注")
    return [first, second]


def test_chain_heads_give_every_project_its_last_version_and_head(
    store: CaseStore, cases: Cases, officer: Actor, register_major: RegisterMajor
) -> None:
    ids = two_projects(register_major, cases, officer)
    heads = list(chain_heads(store))
    assert heads == sorted(
        ((pid, check_project(store, pid).events, check_project(store, pid).head) for pid in ids),
        key=lambda h: str(h[0]),
    )
    assert {version for _, version, _ in heads} == {1, 2}


def test_the_digest_is_sorted_json_whose_sha256_anyone_can_recompute(
    store: CaseStore, cases: Cases, officer: Actor, register_major: RegisterMajor
) -> None:
    two_projects(register_major, cases, officer)
    day = today()
    digest = daily_digest(store, day)
    assert [(e.project_id, e.version, e.head) for e in digest.heads] == list(chain_heads(store))
    exported = json.loads(digest_json(digest))
    assert exported["day"] == day.isoformat()
    body = {"day": exported["day"], "heads": exported["heads"]}
    canonical = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    assert exported["sha256"] == hashlib.sha256(canonical).hexdigest()
    assert load_digest(digest_json(digest)) == digest
    assert daily_digest(store, day) == digest  # deterministic


def test_the_digest_of_a_day_before_any_event_is_empty(
    store: CaseStore, register_major: RegisterMajor
) -> None:
    register_major()
    assert daily_digest(store, today() - timedelta(days=2)).heads == ()


def test_a_digest_edited_after_export_fails_its_own_sha256(
    store: CaseStore, cases: Cases, officer: Actor, register_major: RegisterMajor
) -> None:
    two_projects(register_major, cases, officer)
    digest = daily_digest(store, today())
    first = digest.heads[0]
    forged = load_digest(
        digest_json(digest).replace(first.head.encode(), ("0" * len(first.head)).encode())
    )
    problems = [str(p) for p in verify_digest(store, forged)]
    assert problems[0].startswith("digest: its sha256 does not match")
    assert len(problems) == 2  # the digest itself, and the head it now lodges for the project


def test_later_events_do_not_trouble_a_lodged_digest(
    store: CaseStore, cases: Cases, officer: Actor, register_major: RegisterMajor
) -> None:
    ids = two_projects(register_major, cases, officer)
    digest = daily_digest(store, today())
    cases.add_audit_note(Acting(officer, "req-later"), ids[0], note="之后的备注")
    assert verify_digest(store, digest) == []


def test_a_digest_lodging_an_unknown_project_says_so(store: CaseStore) -> None:
    digest = daily_digest(store, today())
    assert digest.heads == ()
    unknown = UUID(int=7)
    lodged = type(digest)(
        day=digest.day,
        heads=(DigestEntry(project_id=unknown, version=3, head="ab" * 32),),
        sha256=digest.sha256,
    )
    assert [str(p) for p in verify_digest(store, lodged)] == [
        "digest: its sha256 does not match its heads: the file was altered",
        f"project {unknown} v3: the project has no stored events",
    ]
