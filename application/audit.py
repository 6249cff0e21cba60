"""The audit trail (审计留痕): who did what to which project, when, in plain Chinese.

One row per event of the case store, keyed by its notification id, so that a worker following
the notification log records each event exactly once: :meth:`AuditTrail.record` runs inside
the worker's own transaction (beside its tracking row and notifications) and does nothing for a
notification id it has recorded already. Rows carry the stamp (actor and request id), the
project's code and window (for the supervisors' window filter) and a Chinese summary of the
event (:func:`summary_zh`), written once when the event is recorded.

The table lives in the workers' :class:`~application.sqldb.Database`: ``TIMESTAMPTZ`` on
PostgreSQL, fixed-width ISO 8601 UTC text on SQLite (so that text order is time order).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from application.mapper import stamp_of
from application.sqldb import Cursor, Database
from domain import access, errors
from domain.actor import Actor, Role
from domain.windows import WINDOWS

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "AuditRecord",
    "AuditTrail",
    "audit_record",
    "audit_windows",
    "check_limit",
    "summary_zh",
]

TABLE = "audit_trail"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
EXPORT_BATCH = 500  # rows per transaction while iterating an export
CLIP = 200  # longest free text quoted in a summary, in characters
INSERT_CHUNK = 500  # rows per multi-row INSERT of record_events (13 parameters each)

Page = tuple[list["AuditRecord"], str | None]


@dataclass(frozen=True)
class AuditRecord:
    notification_id: int
    recorded_at: datetime  # tz-aware, UTC
    project_id: UUID
    project_code: str
    window: str  # the project's window code (domain.windows.Window)
    version: int
    kind: str  # the event class name, e.g. "OfficerAssigned"
    actor_sub: str | None
    actor_name: str | None
    actor_role: str | None
    actor_unit: str | None
    request_id: str | None
    summary: str


# --- the Chinese words of the notice --------------------------------------------------------
WINDOW_NAMES: dict[str, str] = {str(w.code): w.name for w in WINDOWS}

TIERS = {
    "district_key": "区县（市）级重点项目",
    "city_key": "市重点",
    "provincial_key": "省重点",
    "qianxiang_wanyi": "“千项万亿”工程项目",
    "ministry_contact": "部司重点联系项目",
    "provincial_dept_contact": "省厅重点联系项目",
}
STAGES = {"feasibility": "可研", "approval": "立项", "preliminary_design": "初设"}
OFFICER_ROLES = {  # role and the line it stands for
    "lead": ("主办", "许可线"),
    "co_organizer": ("协办", "专委会"),
    "assessor": ("帮办", "技术评估方"),
    "joint": ("联办", "处室"),
}
HELPER_REASONS = {
    "complex_situation": "情况复杂",
    "legacy_issues": "历史遗留问题较多",
    "measures_not_in_place": "污染防治措施落实不到位",
}
VISIT_KINDS = {
    "on_site_help": "现场帮扶",
    "guidance": "业务指导",
    "expert_consultation": "联系专家咨询",
}
DEFERRAL_REASONS = {
    "other_department_permit": "缺少其它行政主管部门行政许可材料",
    "not_decisive": "对环评结论不产生颠覆性影响",
}
SEVERITIES = {"key": "重点问题", "general": "一般问题"}
FOUND_IN = {
    "expert_review": "专家评估",
    "public_participation": "公众参与",
    "document_review": "资料审查",
    "site_inspection": "现场核查",
    "discharge_permit": "排污许可",
    "hazardous_waste_permit": "危废经营许可",
    "radiation_permit": "辐射安全许可",
}
WARNING_KINDS = {
    "rectification_due_soon": "整改期限临近",
    "rectification_overdue": "整改期限已过",
    "material_due_soon": "容缺材料补交日期临近",
    "material_overdue": "容缺材料逾期未补交",
    "progress_check_overdue": "定期调度逾期",
    "helper_visit_overdue": "助企服务走访逾期",
}


def _label(labels: dict[str, str], value: object) -> str:
    """The Chinese word of an enum value (a StrEnum or its text); the value itself if new."""
    text = str(value)
    return labels.get(text, text)


def _clip(text: object, limit: int = CLIP) -> str:
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _day(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


# --- one summary per event type ---------------------------------------------------------------
def _registered(e: Any) -> str:
    tiers = "、".join(_label(TIERS, t) for t in e.tiers)
    text = (
        f"登记重点项目「{_clip(e.name)}」（项目代码 {e.project_code}），"
        f"受理窗口 {_label(WINDOW_NAMES, e.window)}，建设单位 {_clip(e.builder.name)}"
    )
    if tiers:
        text += f"，类别 {tiers}"
    if e.two_high_one_low:
        text += "，“两高一低”项目"
    return text


def _early_intervention(e: Any) -> str:
    i = e.intervention
    return f"启动提前介入（{_label(STAGES, i.stage)}阶段），环评编制指导：{_clip(i.guidance)}"


def _check_scheduled(e: Any) -> str:
    return f"安排定期调度 {e.check.id}，应于 {_day(e.check.due_on)} 进行"


def _check_outcome(e: Any) -> str:
    text = f"记录定期调度 {e.check.id} 情况：{_clip(e.check.summary)}"
    if e.next_check is not None:
        text += f"；下次调度 {e.next_check.id} 定于 {_day(e.next_check.due_on)}"
    return text


def _role(value: object) -> str:
    role, line = OFFICER_ROLES.get(str(value), (str(value), ""))
    return f"{role}（{line}）" if line else role


def _officer_assigned(e: Any) -> str:
    a = e.assignment
    return f"指派{_role(a.role)}{a.name}（{a.officer}）"


def _officer_released(e: Any) -> str:
    return f"解除对接人员 {e.officer}，原因：{_clip(e.reason)}"


def _lead_handed_over(e: Any) -> str:
    a = e.assignment
    return (
        f"主办（许可线）由 {e.from_officer} 移交给 {a.name}（{a.officer}），原因：{_clip(e.reason)}"
    )


def _helper_dispatched(e: Any) -> str:
    d = e.dispatch
    return (
        f"派驻助企服务员 {d.name}（{d.helper}），原因：{_label(HELPER_REASONS, d.reason)}，"
        f"每 {d.visit_every_days} 天走访一次"
    )


def _helper_visit(e: Any) -> str:
    v = e.visit
    text = (
        f"助企服务员 {v.helper} {_day(v.visited_on)} {_label(VISIT_KINDS, v.kind)}"
        f"（走访 {v.id}）：{_clip(v.findings)}"
    )
    if v.follow_ups:
        text += f"；后续跟进：{_clip(v.follow_ups)}"
    return text


def _material_deferred(e: Any) -> str:
    m = e.material
    return (
        f"容缺办理：材料「{_clip(m.material)}」（{_clip(m.department)}）暂缓提交（{m.id}），"
        f"理由：{_label(DEFERRAL_REASONS, m.reason)}，承诺 {_day(m.promised_by)} 前补交"
    )


def _material_supplied(e: Any) -> str:
    text = f"容缺材料 {e.material_id} 已补交"
    if e.note:
        text += f"：{_clip(e.note)}"
    return text


def _letter_issued(e: Any) -> str:
    letter = e.letter
    issues = tuple(letter.issues)
    text = (
        f"发放温馨提醒函 {letter.letter_no}，问题 {len(issues)} 项，"
        f"整改期限 {_day(letter.deadline)}"
    )
    counts = [
        f"{word} {n} 项"
        for value, word in SEVERITIES.items()
        if (n := sum(1 for i in issues if str(i.severity) == value))
    ]
    places = "、".join(dict.fromkeys(_label(FOUND_IN, i.found_in) for i in issues))
    if counts:
        text += f"（{'、'.join(counts)}；发现于{places}）"
    return text


def _rectification_submitted(e: Any) -> str:
    r = e.rectification
    text = f"问题 {e.issue_id} 提交整改：{_clip(r.summary)}"
    if r.evidence:
        text += f"（佐证材料 {len(r.evidence)} 份）"
    return text


def _rectification_accepted(e: Any) -> str:
    text = f"问题 {e.issue_id} 整改通过"
    if e.review.comment:
        text += f"：{_clip(e.review.comment)}"
    return text


def _rectification_returned(e: Any) -> str:
    return f"问题 {e.issue_id} 整改退回：{_clip(e.review.comment or '未说明原因')}"


def _letter_closed(e: Any) -> str:
    return f"温馨提醒函 {e.letter_id} 全部问题整改通过，整改闭环，予以关闭"


def _violation_referred(e: Any) -> str:
    r = e.referral
    text = f"移交涉嫌违法线索 {r.id} 依法处理（包容审慎监管）：{_clip(r.description)}"
    if r.legal_basis:
        text += f"，依据 {_clip(r.legal_basis)}"
    if r.issue_id:
        text += f"，关联问题 {r.issue_id}"
    elif r.letter_id:
        text += f"，关联温馨提醒函 {r.letter_id}"
    return text


def _closed(e: Any) -> str:
    return f"结案：{_clip(e.summary)}"


def _audit_note(e: Any) -> str:
    return f"添加审计备注：{_clip(e.note.note)}"


def _warning_raised(e: Any) -> str:
    w = e.warning
    return f"发出预警（{_label(WARNING_KINDS, w.kind)}）：{_clip(w.message)}"


SUMMARIES: dict[str, Callable[[Any], str]] = {
    "Registered": _registered,
    "EarlyInterventionStarted": _early_intervention,
    "ProgressCheckScheduled": _check_scheduled,
    "ProgressCheckOutcomeRecorded": _check_outcome,
    "OfficerAssigned": _officer_assigned,
    "OfficerReleased": _officer_released,
    "LeadHandedOver": _lead_handed_over,
    "HelperDispatched": _helper_dispatched,
    "HelperVisitRecorded": _helper_visit,
    "MaterialDeferred": _material_deferred,
    "MaterialSupplied": _material_supplied,
    "ReminderLetterIssued": _letter_issued,
    "RectificationSubmitted": _rectification_submitted,
    "RectificationAccepted": _rectification_accepted,
    "RectificationReturned": _rectification_returned,
    "ReminderLetterClosed": _letter_closed,
    "ViolationReferred": _violation_referred,
    "ProjectClosed": _closed,
    "AuditNoteAdded": _audit_note,
    "WarningRaised": _warning_raised,
}


def summary_zh(event: Any) -> str:
    """A one-line Chinese summary of an event of :class:`~domain.project.KeyProject`.

    An event type without a summary here, or one whose fields are not what its summary expects
    (a future class version), gets a generic line naming its type: never an exception."""
    kind = type(event).__name__
    summarise = SUMMARIES.get(kind)
    if summarise is not None:
        try:
            return summarise(event)
        except (AttributeError, TypeError, ValueError, KeyError):
            pass
    version = getattr(event, "originator_version", None)
    at = f"（第 {version} 版）" if isinstance(version, int) else ""
    return f"记录事件 {kind}{at}"


def audit_record(
    notification_id: int, event: Any, *, project_code: str, window: str
) -> AuditRecord:
    """The audit row of one stored event (decoded, with its stamp)."""
    stamp = stamp_of(event)
    actor = stamp.actor if stamp else None
    return AuditRecord(
        notification_id=notification_id,
        recorded_at=event.timestamp.astimezone(UTC),
        project_id=event.originator_id,
        project_code=project_code,
        window=str(window),
        version=event.originator_version,
        kind=type(event).__name__,
        actor_sub=actor.sub if actor else None,
        actor_name=actor.name if actor else None,
        actor_role=str(actor.role) if actor else None,
        actor_unit=str(actor.unit) if actor else None,
        request_id=stamp.request_id if stamp else None,
        summary=summary_zh(event),
    )


# --- who reads the trail ----------------------------------------------------------------------
def audit_windows(actor: Actor) -> frozenset[str] | None:
    """The windows whose trail ``actor`` reads (None: every window). Auditors and admins read
    all, supervisors their own window (the city bureau's supervisors all); officers none."""
    if actor.role not in (Role.AUDITOR, Role.ADMIN, Role.SUPERVISOR):
        raise errors.NotAllowed(
            f"the audit trail is read by auditors, supervisors and admins, not by the "
            f"{actor.role} role; an officer reads a project's own history "
            "(GET /projects/{id}/history)"
        )
    windows = access.readable_windows(actor)
    return None if windows is None else frozenset(str(w) for w in windows)


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise errors.InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def encode_cursor(notification_id: int) -> str:
    """Opaque: base64url of the JSON ``{"after": <notification id>}``."""
    raw = json.dumps({"after": notification_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (ValueError, TypeError, KeyError, binascii.Error) as e:
        raise errors.InvalidInput("cursor", "is not a cursor of the audit trail") from e
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise errors.InvalidInput("cursor", "is not a cursor of the audit trail")
    return after


def _moment(field: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.utcoffset() is None:
        raise errors.InvalidInput(field, "must carry a time zone offset")
    return value.astimezone(UTC)


# --- the table --------------------------------------------------------------------------------
COLUMNS = (
    "notification_id",
    "recorded_at",
    "project_id",
    "project_code",
    "window_code",  # WINDOW is a reserved word in PostgreSQL
    "version",
    "kind",
    "actor_sub",
    "actor_name",
    "actor_role",
    "actor_unit",
    "request_id",
    "summary",
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM {TABLE}"  # noqa: S608 - fixed names only
_INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) "  # noqa: S608 - fixed names only
    f"VALUES ({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT (notification_id) DO NOTHING"
)

_ARRAY_TYPES = ("bigint", "timestamptz", *["text"] * 3, "integer", *["text"] * 7)
_INSERT_ARRAYS = (  # PostgreSQL: the rows of record_events as one array per column
    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) SELECT * FROM unnest("  # noqa: S608 - fixed
    + ", ".join(f"%b::{t}[]" for t in _ARRAY_TYPES)  # binary: no text escaping
    + ") ON CONFLICT (notification_id) DO NOTHING"
)


def _schema(dialect: str) -> list[str]:
    timestamp = "TIMESTAMPTZ" if dialect == "postgres" else "TEXT"
    big = "BIGINT" if dialect == "postgres" else "INTEGER"
    return [
        f"CREATE TABLE IF NOT EXISTS {TABLE} ("
        f"notification_id {big} PRIMARY KEY, "
        f"recorded_at {timestamp} NOT NULL, "
        "project_id TEXT NOT NULL, "
        "project_code TEXT NOT NULL, "
        "window_code TEXT NOT NULL, "
        "version INTEGER NOT NULL, "
        "kind TEXT NOT NULL, "
        "actor_sub TEXT, actor_name TEXT, actor_role TEXT, actor_unit TEXT, "
        "request_id TEXT, "
        "summary TEXT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_project ON {TABLE} (project_id, notification_id)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_actor ON {TABLE} (actor_sub, notification_id)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_recorded_at ON {TABLE} (recorded_at)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_window ON {TABLE} (window_code, notification_id)",
    ]


class AuditTrail:
    """The ``audit_trail`` table of the workers' database: written by the worker, read by
    ``GET /audit/trail``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.setup(TABLE, _schema(db.dialect))

    # --- writing (inside the caller's transaction) ---------------------------------------------
    def record(self, cursor: Cursor, record: AuditRecord) -> bool:
        """Inserts ``record`` in the caller's transaction; False (and nothing changes) when its
        notification id is recorded already."""
        self.insert(cursor, record)
        return cursor.rowcount == 1

    def insert(self, cursor: Cursor, record: AuditRecord) -> None:
        """Inserts ``record`` in the caller's transaction unless its notification id is
        recorded already (then nothing changes); for transactions that cannot tell a row
        count (``Database.writes``)."""
        if record.recorded_at.utcoffset() is None:
            msg = f"recorded_at of notification {record.notification_id} has no time zone"
            raise ValueError(msg)
        cursor.execute(
            _INSERT,
            (
                record.notification_id,
                self._to_db(record.recorded_at),
                str(record.project_id),
                record.project_code,
                record.window,
                record.version,
                record.kind,
                record.actor_sub,
                record.actor_name,
                record.actor_role,
                record.actor_unit,
                record.request_id,
                record.summary,
            ),
        )

    def known_project(self, cursor: Cursor, project_id: UUID) -> tuple[str, str] | None:
        """The project code and window already recorded for ``project_id`` (by its earlier
        events, its registration first), or None."""
        cursor.execute(
            f"SELECT project_code, window_code FROM {TABLE} "  # noqa: S608 - fixed names only
            "WHERE project_id = %s ORDER BY notification_id LIMIT 1",
            (str(project_id),),
        )
        row = cursor.fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def record_event(self, cursor: Cursor, notification_id: int, event: Any) -> bool:
        """Records a decoded event of the notification log, in the caller's transaction. The
        project's code and window come from the event (a registration) or from the trail's
        earlier rows of the project; LookupError when neither knows them."""
        if hasattr(event, "project_code") and hasattr(event, "window"):
            facts: tuple[str, str] | None = (str(event.project_code), str(event.window))
        else:
            facts = self.known_project(cursor, event.originator_id)
        if facts is None:
            msg = (
                f"notification {notification_id}: project {event.originator_id} has no "
                "registration in the audit trail; pass its code and window to audit_record()"
            )
            raise LookupError(msg)
        code, window = facts
        return self.record(
            cursor, audit_record(notification_id, event, project_code=code, window=window)
        )

    def record_events(
        self,
        cursor: Cursor,
        events: Sequence[tuple[int, Any]],
        *,
        facts: MutableMapping[UUID, tuple[str, str]] | None = None,
    ) -> int:
        """:meth:`record_event` for a batch of (notification id, decoded event), in the caller's
        transaction, written with multi-row INSERTs: how a rebuild fills a fresh trail. The
        project's code and window are found as :meth:`record_event` finds them; ``facts``
        (project id -> code, window) keeps what earlier batches learnt and is filled as
        registrations pass. Returns how many records were new."""
        known: MutableMapping[UUID, tuple[str, str]] = {} if facts is None else facts
        records: list[AuditRecord] = []
        for notification_id, event in events:
            pid = event.originator_id
            if hasattr(event, "project_code") and hasattr(event, "window"):
                known[pid] = (str(event.project_code), str(event.window))
            elif pid not in known:
                found = self.known_project(cursor, pid)
                if found is None:
                    msg = (
                        f"notification {notification_id}: project {pid} has no registration "
                        "in the audit trail"
                    )
                    raise LookupError(msg)
                known[pid] = found
            code, window = known[pid]
            records.append(audit_record(notification_id, event, project_code=code, window=window))
        if not records:
            return 0
        rows = [self._values(r) for r in records]
        if self.db.dialect == "postgres":  # one short statement, a column array per parameter
            cursor.execute(_INSERT_ARRAYS, [list(column) for column in zip(*rows, strict=True)])
            return cursor.rowcount
        inserted, marks = 0, f"({', '.join(['%s'] * len(COLUMNS))})"
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            values = ", ".join([marks] * len(chunk))
            cursor.execute(
                f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) "  # noqa: S608 - fixed names only
                f"VALUES {values} ON CONFLICT (notification_id) DO NOTHING",
                [value for row in chunk for value in row],
            )
            inserted += cursor.rowcount
        return inserted

    def _values(self, r: AuditRecord) -> tuple[Any, ...]:
        return (
            r.notification_id, self._to_db(r.recorded_at), str(r.project_id), r.project_code,
            r.window, r.version, r.kind, r.actor_sub, r.actor_name, r.actor_role, r.actor_unit,
            r.request_id, r.summary,
        )  # fmt: skip

    def last_notification_id(self) -> int:
        """The highest notification id recorded (0 when none): how far the trail has got."""
        rows = self.db.query(f"SELECT MAX(notification_id) FROM {TABLE}")  # noqa: S608
        return int(rows[0][0] or 0)

    # --- reading -------------------------------------------------------------------------------
    def query(
        self,
        *,
        project: UUID | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        windows: frozenset[str] | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page:
        """One page of matching records, by notification id; the cursor of the next page or
        None. ``since`` is inclusive, ``until`` exclusive; ``windows=None`` means every window."""
        check_limit(limit)
        after = decode_cursor(cursor) if cursor is not None else None
        rows = self._select(
            project=project,
            actor=actor,
            since=since,
            until=until,
            windows=windows,
            after=after,
            limit=limit + 1,
        )
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].notification_id) if len(rows) > limit else None
        return page, next_cursor

    def iter_all(
        self,
        *,
        project: UUID | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        windows: frozenset[str] | None = None,
        cursor: str | None = None,
        batch: int = EXPORT_BATCH,
    ) -> Iterator[AuditRecord]:
        """Every matching record (after ``cursor``, if given), by notification id, fetched in
        batches of ``batch``, each in its own short transaction: nothing is held open between
        the records it yields. Arguments are checked before the first record is asked for."""
        after = decode_cursor(cursor) if cursor is not None else None
        check_limit(batch)
        since_utc, until_utc = _moment("since", since), _moment("until", until)

        def generate(after: int | None) -> Iterator[AuditRecord]:
            while True:
                rows = self._select(
                    project=project,
                    actor=actor,
                    since=since_utc,
                    until=until_utc,
                    windows=windows,
                    after=after,
                    limit=batch,
                )
                yield from rows
                if len(rows) < batch:
                    return
                after = rows[-1].notification_id

        return generate(after)

    def count(self) -> int:
        rows = self.db.query(f"SELECT COUNT(*) FROM {TABLE}")  # noqa: S608 - fixed names only
        return int(rows[0][0])

    def _select(
        self,
        *,
        project: UUID | None,
        actor: str | None,
        since: datetime | None,
        until: datetime | None,
        windows: frozenset[str] | None,
        after: int | None,
        limit: int,
    ) -> list[AuditRecord]:
        where: list[str] = []
        params: list[Any] = []
        if windows is not None:
            if not windows:
                return []
            names = sorted(str(w) for w in windows)
            where.append(f"window_code IN ({', '.join(['%s'] * len(names))})")
            params += names
        if project is not None:
            where.append("project_id = %s")
            params.append(str(project))
        if actor is not None:
            where.append("actor_sub = %s")
            params.append(actor)
        if (start := _moment("since", since)) is not None:
            where.append("recorded_at >= %s")
            params.append(self._to_db(start))
        if (end := _moment("until", until)) is not None:
            where.append("recorded_at < %s")
            params.append(self._to_db(end))
        if after is not None:
            where.append("notification_id > %s")
            params.append(after)
        sql = _SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY notification_id LIMIT %s"
        params.append(limit)
        return [self._from_db(row) for row in self.db.query(sql, params)]

    def _to_db(self, moment: datetime) -> Any:
        utc = moment.astimezone(UTC)
        return utc if self.db.dialect == "postgres" else utc.isoformat(timespec="microseconds")

    @staticmethod
    def _from_db(row: Sequence[Any]) -> AuditRecord:
        at = row[1] if isinstance(row[1], datetime) else datetime.fromisoformat(row[1])
        return AuditRecord(
            notification_id=int(row[0]),
            recorded_at=at.astimezone(UTC),
            project_id=UUID(str(row[2])),
            project_code=row[3],
            window=row[4],
            version=int(row[5]),
            kind=row[6],
            actor_sub=row[7],
            actor_name=row[8],
            actor_role=row[9],
            actor_unit=row[10],
            request_id=row[11],
            summary=row[12],
        )
