"""Tamper evidence: every project's events form a hash chain, checked from the stored records.

Each event's stamp carries ``prev``, the hash (:func:`application.mapper.chain_hash`) of the
project's previous stored record ("" for version 1); :class:`application.store.CaseStore` sets
it when recording. :func:`check_project` reads the raw records in version order and names the
first bad version:

- a changed byte in version k: k no longer decodes, or k+1's ``prev`` no longer matches the hash
  of k (k's own incoming link still holds) → k;
- a deleted row: a gap in the versions → the missing version;
- a record out of place (swapped, renumbered, or its own ``prev`` changed): neither its ``prev``
  matches its predecessor's hash nor does its successor's ``prev`` match its hash → that version.

The chain cannot see a change to the LAST event: no successor holds its hash. Only a chain head
kept outside the store can: :func:`daily_digest` lists every project's (version, head) so that
the digest can be lodged with an outside witness, and :func:`verify_digest` later checks that
each chain still holds the lodged head at the lodged version. Snapshots are not part of the
chain (they are derived, and the events alone are checked).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier

from application.cases import Cases
from application.mapper import chain_hash, stamp_of
from domain import access, errors
from domain.actor import Actor

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder

    from application.store import CaseStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
PAGE = 500  # stored records read per query


@dataclass(frozen=True)
class IntegrityReport:
    """A project's hash chain checked from its first stored event.

    ``head`` is the hash of the last stored record ("" when there is none); ``valid`` says
    whether every link holds. A changed LAST event leaves ``valid`` True (nothing after it
    holds its hash) but changes ``head``: compare it with a lodged digest to catch that."""

    valid: bool
    events: int
    head: str
    first_bad_version: int | None
    problem: str | None


@dataclass(frozen=True)
class _Link:
    version: int
    hash: str
    prev: str | None  # None when the record does not decode
    error: str | None


def _stored(store: CaseStore, project_id: UUID) -> Iterator[StoredEvent]:
    """Every stored record of the project in version order, as the recorder holds it."""
    after: int | None = None
    while True:
        page = store.recorder.select_events(project_id, gt=after, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].originator_version


def _link(store: CaseStore, stored: StoredEvent) -> _Link:
    try:
        domain_event = store.mapper.to_domain_event(stored)
    except Exception as e:  # noqa: BLE001 - any failure to decode is the evidence reported
        return _Link(stored.originator_version, chain_hash(stored), None, str(e) or repr(e))
    stamp = stamp_of(domain_event)
    prev = stamp.prev if stamp is not None else ""
    return _Link(stored.originator_version, chain_hash(stored), prev, None)


def _first_bad(links: Sequence[_Link]) -> tuple[int, str] | None:
    """The first bad version and what is wrong with it, or None if every link holds."""
    for i, link in enumerate(links):
        version = i + 1
        if link.version != version:
            return version, (
                f"version {version} is missing: the stored versions go from {version - 1} "
                f"to {link.version}"
                if version > 1
                else f"version 1 is missing: the first stored version is {link.version}"
            )
        if link.error is not None:
            return version, f"version {version} does not decode: {link.error}"
        expected = links[i - 1].hash if i else ""
        if link.prev == expected:
            continue
        if i == 0:
            return 1, "version 1 was altered: its prev should be empty"
        after = links[i + 1] if i + 1 < len(links) else None
        if (
            after is not None
            and after.version == version + 1
            and after.error is None
            and after.prev != link.hash
        ):
            return version, (
                f"version {version} is not the record chained here: its prev does not match "
                f"the hash of version {version - 1}, nor does version {version + 1}'s prev "
                "match its hash (replaced, reordered, renumbered, or its prev altered)"
            )
        return version - 1, (
            f"version {version - 1} was altered: its hash no longer matches the prev "
            f"recorded in version {version}"
            + (
                f" (or version {version}'s own prev was, which no later event can tell apart)"
                if after is None
                else ""
            )
        )
    return None


def check_project(store: CaseStore, project_id: UUID) -> IntegrityReport:
    """Checks the project's hash chain from the first stored event to the last.

    Detects a changed payload byte (named at the altered version), a deleted row (the missing
    version), a reordered or renumbered version (the first one out of place). It cannot detect
    a change to the last event by itself, nor the deletion of the last rows: the digest's head
    does (:func:`verify_digest`)."""
    links = [_link(store, stored) for stored in _stored(store, project_id)]
    bad = _first_bad(links)
    head = links[-1].hash if links else ""
    if bad is None:
        return IntegrityReport(True, len(links), head, None, None)
    return IntegrityReport(False, len(links), head, bad[0], bad[1])


def project_integrity(cases: Cases, actor: Actor, project_id: UUID) -> IntegrityReport:
    """The project's chain checked, for a reader of the project: 404 and 403 as for reading
    it. A project whose stored history no longer replays (an altered event may not decode, a
    reordered one may not apply) cannot say which window it belongs to: then only those who
    read every window (auditors, admins, the city bureau's supervisors) may check it."""
    try:
        cases.get(actor, project_id)
    except (errors.NotFound, errors.NotAllowed):
        raise
    except Exception:  # noqa: BLE001 - a damaged history fails to load in many ways
        if _head_at(cases.store, project_id) is None:
            raise errors.ProjectNotFound(f"no project {project_id}") from None
        if access.readable_windows(actor) is not None:
            raise errors.NotAllowed(
                f"project {project_id}'s stored history does not replay; only readers of "
                "every window may check it"
            ) from None
    return check_project(cases.store, project_id)


# --- chain heads and the daily digest ---------------------------------------------------------
def _project_ids(recorder: ApplicationRecorder) -> list[UUID]:
    """Every originator with a stored event, straight from the events table (so that a project
    whose first event was altered is still found), sorted."""
    ids: set[UUID] = set()
    if isinstance(recorder, SQLiteAggregateRecorder):
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT DISTINCT originator_id FROM {recorder.events_table_name}")  # noqa: S608 - the recorder's own table name
            ids = {UUID(str(row["originator_id"])) for row in c.fetchall()}
    elif isinstance(recorder, PostgresAggregateRecorder):
        statement = SQL("SELECT DISTINCT originator_id FROM {}.{}").format(
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)
        )
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement)
            ids = {UUID(str(row["originator_id"])) for row in curs.fetchall()}
    else:  # POPO and any other recorder: the notification log
        start = 1
        while True:
            page = recorder.select_notifications(start, PAGE)
            ids.update(UUID(str(n.originator_id)) for n in page)
            if len(page) < PAGE:
                break
            start = page[-1].id + 1
    return sorted(ids, key=str)


def _head_at(store: CaseStore, project_id: UUID, lte: int | None = None) -> StoredEvent | None:
    before = store.recorder.select_events(project_id, lte=lte, desc=True, limit=1)
    return before[0] if before else None


def chain_heads(store: CaseStore) -> Iterator[tuple[UUID, int, str]]:
    """(project id, last version, hash of its last stored record) of every project, sorted by
    project id."""
    for project_id in _project_ids(store.recorder):
        last = _head_at(store, project_id)
        if last is not None:
            yield project_id, last.originator_version, chain_hash(last)


class DigestEntry(msgspec.Struct, frozen=True, kw_only=True):
    project_id: UUID
    version: int
    head: str


class DigestBody(msgspec.Struct, frozen=True, kw_only=True):
    """What the digest's sha256 is taken over (compact JSON, fields in this order)."""

    day: date
    heads: tuple[DigestEntry, ...]


class Digest(msgspec.Struct, frozen=True, kw_only=True):
    """Every project's chain head as of the end of ``day`` (Asia/Shanghai), sorted by project
    id, and ``sha256``: the hex SHA-256 of the compact JSON of ``{"day": "YYYY-MM-DD",
    "heads": [{"project_id": "<uuid>", "version": N, "head": "<hex>"}, ...]}`` (keys in that
    order, no whitespace, UTF-8), which anyone can recompute from the file."""

    day: date
    heads: tuple[DigestEntry, ...]
    sha256: str


_ENCODER = msgspec.json.Encoder()
_DIGEST = msgspec.json.Decoder(Digest)


def _body_sha256(day: date, heads: tuple[DigestEntry, ...]) -> str:
    return hashlib.sha256(_ENCODER.encode(DigestBody(day=day, heads=heads))).hexdigest()


def _recorded_before(store: CaseStore, stored: StoredEvent, cutoff: datetime) -> bool:
    """Whether the event was recorded before ``cutoff``; one that does not decode is taken to
    be (a digest never leaves out what the store holds)."""
    try:
        moment = getattr(store.mapper.to_domain_event(stored), "timestamp", None)
    except Exception:  # noqa: BLE001 - an undecodable record is lodged as it is
        return True
    return not isinstance(moment, datetime) or moment < cutoff


def _head_as_of(store: CaseStore, project_id: UUID, cutoff: datetime) -> StoredEvent | None:
    """The project's last stored record recorded before ``cutoff`` (scanning back from the
    latest, which is usually the one)."""
    lte: int | None = None
    while True:
        page = store.recorder.select_events(project_id, lte=lte, desc=True, limit=PAGE)
        for stored in page:
            if _recorded_before(store, stored, cutoff):
                return stored
        if len(page) < PAGE:
            return None
        lte = page[-1].originator_version - 1


def daily_digest(store: CaseStore, day: date) -> Digest:
    """Every project's chain head as it stood at the end of ``day`` in Hangzhou (projects
    registered later are left out), with the sha256 of the list: lodge ``digest_json()`` of it
    with an outside witness."""
    cutoff = datetime.combine(day + timedelta(days=1), time(), SHANGHAI)
    heads = []
    for project_id in _project_ids(store.recorder):
        stored = _head_as_of(store, project_id, cutoff)
        if stored is not None:
            heads.append(
                DigestEntry(
                    project_id=project_id,
                    version=stored.originator_version,
                    head=chain_hash(stored),
                )
            )
    entries = tuple(heads)
    return Digest(day=day, heads=entries, sha256=_body_sha256(day, entries))


def digest_json(digest: Digest) -> bytes:
    """The digest as the JSON file that is lodged (indented for reading; the sha256 is over
    the compact form of day and heads, so the layout does not matter)."""
    return msgspec.json.format(_ENCODER.encode(digest), indent=2) + b"\n"


def load_digest(data: bytes | str) -> Digest:
    """A digest from its JSON; ValueError when it is not one."""
    try:
        return _DIGEST.decode(data)
    except msgspec.DecodeError as e:
        msg = f"not an ecocase digest: {e}"
        raise ValueError(msg) from None


@dataclass(frozen=True)
class DigestProblem:
    """Something a lodged digest no longer agrees with (``project_id`` None: the digest)."""

    project_id: UUID | None
    version: int | None
    problem: str

    def __str__(self) -> str:
        where = "digest" if self.project_id is None else f"project {self.project_id}"
        at = "" if self.version is None else f" v{self.version}"
        return f"{where}{at}: {self.problem}"


def verify_digest(store: CaseStore, digest: Digest) -> list[DigestProblem]:
    """What no longer agrees with a lodged digest: its own sha256, and for every project in it,
    the chain (checked from the first event) and the hash of the record at the lodged version,
    which must still be the lodged head. Later events do not matter. Empty when all agree."""
    problems: list[DigestProblem] = []
    if _body_sha256(digest.day, digest.heads) != digest.sha256:
        problems.append(
            DigestProblem(None, None, "its sha256 does not match its heads: the file was altered")
        )
    for entry in digest.heads:
        pid, version = entry.project_id, entry.version
        report = check_project(store, pid)
        if report.events == 0:
            problems.append(DigestProblem(pid, version, "the project has no stored events"))
            continue
        if not report.valid:
            problems.append(
                DigestProblem(
                    pid,
                    report.first_bad_version,
                    f"the hash chain is broken: {report.problem}",
                )
            )
        stored = _head_at(store, pid, version)
        if stored is None or stored.originator_version != version:
            problems.append(
                DigestProblem(pid, version, f"the lodged version {version} is not stored")
            )
        elif (now := chain_hash(stored)) != entry.head:
            problems.append(
                DigestProblem(
                    pid,
                    version,
                    f"the record no longer hashes to the lodged head (lodged {entry.head}, "
                    f"now {now}): it was altered",
                )
            )
    return problems
