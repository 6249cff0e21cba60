"""The three read models folded over a whole replay in memory: what a rebuild's bulk replay
(:mod:`application.replay`) does with each batch of the notification log before it writes the
fresh tables in bulk.

Each stored event is decoded once (:class:`RecordDecoder`) into an *event record*: a msgspec
struct named as the event's class, with the event's own fields as the class declares them (so
dates, enums and value objects come back as the event has them), its stamp, originator id and
version. A record reads like the event, attribute by attribute (the folds and
:func:`application.audit.summary_zh` dispatch on the class name), but costs a fraction of the
event object the mapper makes.

The folds give exactly the rows the live projections give, which apply one event at a time to
immutable rows: :class:`IndexFold` those of :func:`application.project_index.summarise`,
:class:`SupervisionFold` those of :func:`application.supervision.fold`, and :class:`AuditRows`
the values of :func:`application.audit.audit_record` (with its very summary). They keep mutable
state per project instead, and make each row once, at the end, as the bulk load writes it:
its columns' values in order, as :func:`~application.project_index_storage.copy_row`,
:func:`~application.supervision_storage.project_values` and
:func:`~application.supervision_storage.letter_values` give them of the live rows. A rebuild
compares its fresh models with the live ones by checksum, and the rebuild tests do after
randomised workloads.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.utils import resolve_topic

from application.audit import summary_zh
from application.mapper import MsgspecMapper, NoTranscoder
from application.project_index_storage import CopyRow, text_array
from application.supervision_storage import LetterValues, ProjectValues, issues_json
from domain.actor import Stamp
from domain.letters import IssueStatus, LetterStatus
from domain.project import KeyProject, ProjectStatus
from domain.tiers import is_major

__all__ = ["AuditRows", "IndexFold", "RecordDecoder", "SupervisionFold", "record_type"]

logger = logging.getLogger("ecocase.projection")

#: (notification id, event record), in notification order.
Records = Sequence[tuple[int, Any]]
_NOT_FIELDS = frozenset({"originator_id", "originator_version"})  # columns, not in the payload


# --- decoding -----------------------------------------------------------------------------------
class ActorRecord(msgspec.Struct, frozen=True, gc=False):
    """:class:`domain.actor.Actor` as a struct (msgspec makes structs several times faster than
    dataclasses, and every event carries a stamp), its role and unit as their text: all that
    the audit trail keeps of them."""

    sub: str
    name: str
    role: str
    unit: str


class StampRecord(msgspec.Struct, frozen=True, gc=False):
    """:class:`domain.actor.Stamp` as a struct."""

    actor: ActorRecord
    request_id: str
    prev: str = ""


@cache
def record_type(cls: type[Any]) -> type[msgspec.Struct]:
    """The record of an event class: its fields as the class declares them, ``meta`` (the
    stamp, None when there is none), and the originator id (as text) and version, which the
    decoder sets from the stored record's columns. Its class attributes say whether the class
    is a KeyProject.Registered (``registration``) and whether its events name their project's
    code and window (``names_project``)."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        (name, hint)
        for name, hint in typing.get_type_hints(cls).items()
        if name not in _NOT_FIELDS
        and typing.get_origin(hint) is not typing.ClassVar
        and not isinstance(hint, typing.TypeVar)
    ]
    flags = {
        "registration": issubclass(cls, KeyProject.Registered),  # as summarise() tells them
        "names_project": {"project_code", "window"} <= {f[0] for f in fields},  # as the trail
    }
    fields += [("meta", StampRecord | None, None), ("originator_id", str, ""),
               ("originator_version", int, 0)]  # fmt: skip
    return msgspec.defstruct(cls.__name__, fields, kw_only=True, gc=False, namespace=flags)


class RecordDecoder:
    """Stored events to event records, with one msgspec decoder per topic. Classes at a
    ``class_version`` above 1 are decoded by the mapper (which upcasts old payloads) and their
    state is put into the record."""

    def __init__(self) -> None:
        self._decoders: dict[str, Callable[[bytes], Any]] = {}
        self._mapper = MsgspecMapper(transcoder=NoTranscoder())

    def __call__(self, originator_id: str, version: int, topic: str, state: bytes) -> Any:
        return self.batch([(0, originator_id, version, topic, state)])[0][1]

    def batch(self, rows: Iterable[tuple[int, str, int, str, bytes]]) -> list[tuple[int, Any]]:
        """(notification id, record) of each stored event (notification id, originator id,
        originator version, topic, state)."""
        decoders, out = self._decoders, []
        for notification_id, originator_id, version, topic, state in rows:
            decode = decoders.get(topic)
            if decode is None:
                decode = decoders[topic] = self._decoder(topic)
            try:
                record = decode(state)
            except (msgspec.DecodeError, msgspec.ValidationError, TypeError, ValueError) as e:
                msg = f"cannot decode stored event {topic} of {originator_id} v{version}: {e}"
                raise ValueError(msg) from e
            record.originator_id = originator_id
            record.originator_version = version
            out.append((notification_id, record))
        return out

    def _decoder(self, topic: str) -> Callable[[bytes], Any]:
        cls = resolve_topic(topic)
        struct = record_type(cls)
        if getattr(cls, "class_version", 1) == 1:
            return msgspec.json.Decoder(struct).decode
        return lambda state: struct(**self._upcast(cls, state))

    def _upcast(self, cls: type[Any], state: bytes) -> dict[str, Any]:
        fields = self._mapper.decode_state(cls, state)
        stamp = fields.get("meta")
        if isinstance(stamp, Stamp):
            a = stamp.actor
            actor = ActorRecord(a.sub, a.name, str(a.role), str(a.unit))
            fields["meta"] = StampRecord(actor, stamp.request_id, stamp.prev)
        return fields


# --- the project list ---------------------------------------------------------------------------
@dataclass(slots=True)
class _Summary:
    """A project's row of the list while it is folded: the columns its registration set, then
    what later events change."""

    id: UUID
    name: str
    project_code: str
    window: str
    tiers: bytes  # text_array()
    is_major: bool
    registered_at: datetime
    version: int
    at: datetime
    open_letters: int = 0
    status: str = ProjectStatus.OPEN
    officers: tuple[str, ...] = ()

    def row(self) -> CopyRow:
        return (
            self.id, self.name, self.project_code, self.window, self.tiers, self.status,
            self.is_major, self.open_letters, text_array(self.officers), self.version,
            self.registered_at, self.at.astimezone(UTC),
        )  # fmt: skip


class IndexFold:
    """:func:`~application.project_index.summarise` over a replay: every event sets its
    project's version and ``updated_at``; registrations, letters issued and closed, closings
    and officers assigned and released change the rest. The rows come out as the bulk load
    writes them (:func:`~application.project_index_storage.copy_row`)."""

    def __init__(self) -> None:
        self._rows: dict[str, _Summary] = {}

    def apply(self, records: Records) -> None:
        rows = self._rows
        for _, e in records:
            pid = e.originator_id
            if e.registration:
                at = e.timestamp.astimezone(UTC)
                rows[pid] = _Summary(
                    id=UUID(pid), name=e.name, project_code=e.project_code, window=str(e.window),
                    tiers=text_array(tuple(str(t) for t in e.tiers)), is_major=is_major(e.tiers),
                    registered_at=at, version=e.originator_version, at=at,
                )  # fmt: skip
                continue
            row = rows.get(pid)
            if row is None:  # as summarise() skips it
                logger.warning(
                    "project index: %s of unregistered project %s skipped", type(e).__name__, pid
                )
                continue
            row.version, row.at = e.originator_version, e.timestamp
            match type(e).__name__:
                case "ReminderLetterIssued":
                    row.open_letters += 1
                case "ReminderLetterClosed":
                    row.open_letters = max(row.open_letters - 1, 0)
                case "ProjectClosed":
                    row.status = ProjectStatus.CLOSED
                case "OfficerAssigned" if e.assignment.officer not in row.officers:
                    row.officers = (*row.officers, e.assignment.officer)
                case "OfficerReleased":
                    row.officers = tuple(o for o in row.officers if o != e.officer)

    def rows(self) -> list[CopyRow]:
        return [s.row() for s in self._rows.values()]


# --- the supervision view -----------------------------------------------------------------------
@dataclass(slots=True)
class _Letter:
    """A letter row while it is folded; its issues as [id, severity, found in, description,
    status]."""

    letter_id: str
    letter_no: str
    issued_on: date
    deadline: date
    status: str
    closed_on: date | None
    issues: list[list[str]]
    version: int


@dataclass(slots=True)
class _Project:
    id: UUID
    project_code: str
    name: str
    window: str
    status: str
    version: int
    letters: dict[str, _Letter] = field(default_factory=dict)


_ISSUE_STATUS = {
    "RectificationSubmitted": str(IssueStatus.SUBMITTED),
    "RectificationAccepted": str(IssueStatus.ACCEPTED),
    "RectificationReturned": str(IssueStatus.RETURNED),
}


class SupervisionFold:
    """:func:`~application.supervision.fold` over a replay: projects as registered and closed,
    their letters as issued, rectified issue by issue and closed; other events change
    nothing."""

    def __init__(self) -> None:
        self._projects: dict[str, _Project] = {}

    def apply(self, records: Records) -> None:
        projects = self._projects
        for _, e in records:
            kind = type(e).__name__
            pid = e.originator_id
            if kind == "Registered":
                projects[pid] = _Project(UUID(pid), e.project_code, e.name, str(e.window),
                                         ProjectStatus.OPEN, e.originator_version)  # fmt: skip
                continue
            state = projects.get(pid)
            if state is None:  # as fold() skips it
                logger.warning("supervision: %s of unregistered project %s skipped", kind, pid)
                continue
            status = _ISSUE_STATUS.get(kind)
            if status is not None:
                _issue_status(state, e, status)
            elif kind == "ReminderLetterIssued":
                le = e.letter
                issues = [[i.id, str(i.severity), str(i.found_in), i.description, str(i.status)]
                          for i in le.issues]  # fmt: skip
                state.letters[le.id] = _Letter(le.id, le.letter_no, le.issued_on, le.deadline,
                                               str(le.status), le.closed_on, issues,
                                               e.originator_version)  # fmt: skip
            elif kind == "ReminderLetterClosed":
                _letter_closed(state, e)
            elif kind == "ProjectClosed":
                state.status, state.version = ProjectStatus.CLOSED, e.originator_version

    def projects(self) -> list[ProjectValues]:
        return [(s.id, s.project_code, s.name, s.window, s.status, s.version)
                for s in self._projects.values()]  # fmt: skip

    def letters(self) -> list[LetterValues]:
        return [(p.id, p.project_code, p.name, p.window, le.letter_id, le.letter_no, le.issued_on,
                 le.deadline, le.status, le.closed_on, issues_json(le.issues), le.version)
                for p in self._projects.values() for le in p.letters.values()]  # fmt: skip


def _issue_status(state: _Project, e: Any, status: str) -> None:
    letter = state.letters.get(e.letter_id)
    issues = [] if letter is None else [i for i in letter.issues if i[0] == e.issue_id]
    if letter is None or not issues:
        logger.warning(
            "supervision: %s of unknown issue %s/%s of project %s skipped",
            type(e).__name__,
            e.letter_id,
            e.issue_id,
            e.originator_id,
        )
        return
    for issue in issues:
        issue[4] = status
    letter.version = e.originator_version


def _letter_closed(state: _Project, e: Any) -> None:
    letter = state.letters.get(e.letter_id)
    if letter is None:
        logger.warning(
            "supervision: closing of unknown letter %s of project %s skipped",
            e.letter_id,
            e.originator_id,
        )
        return
    letter.status, letter.closed_on = str(LetterStatus.CLOSED), e.closed_on
    letter.version = e.originator_version


# --- the audit trail ----------------------------------------------------------------------------
class AuditRows:
    """:func:`~application.audit.audit_record` of each record, as a row of
    :data:`application.audit.COLUMNS` (``recorded_at`` a UTC datetime). The project's code and
    window come from its registration, earlier in the replay."""

    def __init__(self) -> None:
        self._facts: dict[str, tuple[str, str]] = {}  # project -> code, window

    def rows(self, records: Records) -> list[tuple[Any, ...]]:
        facts, out = self._facts, []
        for notification_id, e in records:
            pid = e.originator_id
            if e.names_project:
                facts[pid] = (str(e.project_code), str(e.window))
            known = facts.get(pid)
            if known is None:
                msg = (
                    f"notification {notification_id}: project {pid} has no registration in the "
                    "audit trail"
                )
                raise LookupError(msg)
            stamp = e.meta
            if stamp is None:
                who: tuple[str | None, ...] = _NOBODY
            else:
                a = stamp.actor
                who = (a.sub, a.name, a.role, a.unit, stamp.request_id)
            out.append((notification_id, e.timestamp.astimezone(UTC), pid, *known,
                        e.originator_version, type(e).__name__, *who, summary_zh(e)))  # fmt: skip
        return out


_NOBODY = (None,) * 5  # actor sub, name, role, unit and request id of an unstamped event
