"""``GET /audit/trail``: who did what to which project, when (审计留痕), as JSON pages or as a
whole export (CSV for Excel, JSON lines for machines)."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

import litestar
import msgspec
import structlog
from litestar import Controller, Request, Response
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

from application.audit import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    WINDOW_NAMES,
    AuditRecord,
    AuditTrail,
    audit_windows,
    check_limit,
)
from application.cases import SHANGHAI
from domain import errors
from domain.actor import Actor
from interfaces.views import View

get = functools.partial(litestar.get, sync_to_thread=True)
log = structlog.get_logger("ecocase.http")

CSV = "text/csv"  # Litestar adds "; charset=utf-8"
JSONL = "application/x-ndjson"
BOM = "\ufeff"  # lets Excel read the CSV's Chinese as UTF-8
#: Spreadsheet formula starters: a cell beginning with one is prefixed with ' in the CSV.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

AnyRequest = Request[Actor, Any, State]
Format = Literal["json", "csv", "jsonl"]


class AuditEntry(View):
    notification_id: int
    recorded_at: datetime  # Asia/Shanghai
    project_id: str
    project_code: str
    window: str
    window_name: str
    version: int
    kind: str
    actor_sub: str | None
    actor_name: str | None
    actor_role: str | None
    actor_unit: str | None
    request_id: str | None
    summary: str


class AuditPage(View):
    items: list[AuditEntry]
    next_cursor: str | None


#: The CSV's columns, in order: every field of an entry.
CSV_COLUMNS: tuple[str, ...] = AuditEntry.__struct_fields__
_JSONL = msgspec.json.Encoder()


def audit_entry(record: AuditRecord) -> AuditEntry:
    return AuditEntry(
        notification_id=record.notification_id,
        recorded_at=record.recorded_at.astimezone(SHANGHAI),
        project_id=str(record.project_id),
        project_code=record.project_code,
        window=record.window,
        window_name=WINDOW_NAMES.get(record.window, record.window),
        version=record.version,
        kind=record.kind,
        actor_sub=record.actor_sub,
        actor_name=record.actor_name,
        actor_role=record.actor_role,
        actor_unit=record.actor_unit,
        request_id=record.request_id,
        summary=record.summary,
    )


MOMENT = "must be an ISO 8601 time, e.g. 2026-12-04T10:00:00+08:00, or a date (2026-12-04)"
T = TypeVar("T")


def _parse(field: str, parse: Callable[[str], T], text: str) -> T:
    try:
        return parse(text)
    except ValueError:
        raise errors.InvalidInput(field, MOMENT) from None


def parse_moment(field: str, value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """An ISO 8601 time with offset; without one it is Asia/Shanghai time. A bare date is the
    start of that day, or (``end_of_day``, for ``to``) the start of the next, so that
    ``to=2026-12-04`` takes in all of 4 December."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if len(text) == 10:
        day = _parse(field, date.fromisoformat, text)
        return datetime.combine(day + timedelta(days=int(end_of_day)), time(), SHANGHAI)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        # An unescaped "+08:00" in a query string arrives as " 08:00": take it as meant.
        head, _, offset = text.rpartition(" ")
        if not (head and len(offset) == 5 and offset[2] == ":"):
            raise errors.InvalidInput(field, MOMENT) from None
        moment = _parse(field, datetime.fromisoformat, f"{head}+{offset}")
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=SHANGHAI)


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def csv_lines(entries: Iterable[AuditEntry]) -> Iterator[bytes]:
    """The CSV export, line by line: a UTF-8 BOM and the header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Iterable[object]) -> bytes:
        writer.writerow([_cell(v) for v in values])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode("utf-8")

    yield BOM.encode("utf-8") + line(CSV_COLUMNS)
    for entry in entries:
        row = msgspec.to_builtins(entry)
        yield line(row[c] for c in CSV_COLUMNS)


def jsonl_lines(entries: Iterable[AuditEntry]) -> Iterator[bytes]:
    for entry in entries:
        yield _JSONL.encode(entry) + b"\n"


def never_silently_short(lines: Iterator[bytes]) -> Iterator[bytes]:
    """Litestar ends a sync stream quietly when its iterator raises ValueError: an export cut
    short must fail loudly instead (the client sees an aborted download, the log says why)."""
    try:
        yield from lines
    except ValueError as e:
        log.exception("audit export failed midway")
        msg = "the audit export failed midway"
        raise RuntimeError(msg) from e


def _trail(state: State) -> AuditTrail:
    trail: AuditTrail = state.audit
    return trail


class AuditController(Controller):
    path = "/audit"
    tags = ["audit"]  # noqa: RUF012 - litestar reads it as a class attribute
    dependencies = {"audit": Provide(_trail, sync_to_thread=False)}  # noqa: RUF012

    @get(
        "/trail",
        summary="The audit trail (审计留痕): who did what to which project, when",
        description=(
            "Auditors and admins read every window, supervisors their own (the city bureau's "
            "supervisors every window); officers are refused (403). Records come in "
            "notification order. `from` is inclusive and `to` exclusive; a time without an "
            "offset is Asia/Shanghai time, a bare date the start of that day (for `to`, the "
            "end). `format=json` (default) gives pages of `limit` records with `next_cursor`; "
            "`csv` (UTF-8 with BOM, for Excel) and `jsonl` (one record per line) stream every "
            "matching record after `cursor`, ignoring `limit`."
        ),
        responses={
            200: ResponseSpec(
                AuditPage,
                description="A page of audit records (format=json); with format=csv or "
                "format=jsonl, every matching record as text/csv or application/x-ndjson",
                generate_examples=False,
            )
        },
    )
    def trail(
        self,
        request: AnyRequest,
        audit: NamedDependency[AuditTrail],
        project: FromQuery[UUID | None] = None,
        actor: Annotated[
            str | None, QueryParameter(description="the acting person's id (`sub`)")
        ] = None,
        since: Annotated[
            str | None,
            QueryParameter(name="from", description="ISO 8601 time or date, inclusive"),
        ] = None,
        until: Annotated[
            str | None,
            QueryParameter(name="to", description="ISO 8601 time or date, exclusive"),
        ] = None,
        limit: Annotated[
            int, QueryParameter(description=f"records per page, 1 to {MAX_LIMIT}")
        ] = DEFAULT_LIMIT,
        cursor: FromQuery[str | None] = None,
        format: Annotated[
            Format, QueryParameter(description="json (pages), csv or jsonl (whole exports)")
        ] = "json",
    ) -> Response[AuditPage] | Stream:
        windows = audit_windows(request.user)
        check_limit(limit)
        start, end = parse_moment("from", since), parse_moment("to", until, end_of_day=True)
        who = actor or None
        if format == "json":
            items, next_cursor = audit.query(
                project=project,
                actor=who,
                since=start,
                until=end,
                windows=windows,
                limit=limit,
                cursor=cursor,
            )
            return Response(
                AuditPage(items=[audit_entry(r) for r in items], next_cursor=next_cursor)
            )
        records = audit.iter_all(
            project=project, actor=who, since=start, until=end, windows=windows, cursor=cursor
        )
        entries = (audit_entry(r) for r in records)
        stamp = datetime.now(tz=SHANGHAI).strftime("%Y%m%dT%H%M%S")
        if format == "csv":
            return Stream(
                never_silently_short(csv_lines(entries)),
                media_type=CSV,
                headers={"Content-Disposition": f'attachment; filename="audit-trail-{stamp}.csv"'},
            )
        return Stream(
            never_silently_short(jsonl_lines(entries)),
            media_type=JSONL,
            headers={"Content-Disposition": f'attachment; filename="audit-trail-{stamp}.jsonl"'},
        )
