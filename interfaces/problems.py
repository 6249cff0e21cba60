"""Errors as ``application/problem+json`` (RFC 9457), with one table from error to status."""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import msgspec
import psycopg
import psycopg.errors
import psycopg_pool
import structlog
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from application.cases import WriteContention
from application.settings import Settings, StoreLimits
from domain import errors

log = structlog.get_logger("ecocase.http")

PROBLEM_JSON = "application/problem+json"

#: The one table that maps domain errors to HTTP statuses (most specific class first).
STATUS_OF: tuple[tuple[type[errors.DomainError], int, str], ...] = (
    (errors.InvalidInput, 400, "Invalid input"),
    (errors.NotAllowed, 403, "Not allowed"),
    (errors.NotFound, 404, "Not found"),
    (errors.VersionMismatch, 412, "Precondition failed"),
    (WriteContention, 503, "Too many concurrent writers"),
    (errors.RuleViolation, 409, "Refused by a business rule"),
)


class FieldError(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    request_id: str | None = None
    field: str | None = None
    errors: list[FieldError] | None = None
    reason: str | None = None  # of a 503 store_unavailable: what kept the store from answering


def problem(
    request: Request[Any, Any, Any],
    status: int,
    title: str,
    detail: str,
    code: str,
    *,
    retry_after: int = 1,
    **extra: Any,
) -> Response[Problem]:
    body = Problem(
        type=f"urn:ecocase:problem:{code}",
        title=title,
        status=status,
        detail=detail,
        code=code,
        instance=request.url.path,
        request_id=request.scope.get("state", {}).get("request_id"),
        **extra,
    )
    headers = {"Retry-After": str(retry_after)} if status == 503 else None
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_error_handler(
    request: Request[Any, Any, Any], exc: errors.DomainError
) -> Response[Problem]:
    status, title = next(
        ((status, title) for cls, status, title in STATUS_OF if isinstance(exc, cls)),
        (409, "Refused"),
    )
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.InvalidInput):
        extra = {"field": exc.field, "errors": [FieldError(exc.field, exc.message)]}
    log.info("refused", code=exc.code, status=status)
    return problem(request, status, title, exc.detail, exc.code, **extra)


def validation_handler(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[Problem]:
    """Litestar/msgspec validation errors, with the offending field named."""
    found = [
        FieldError(_field_name(e), str(e.get("message", "invalid")))
        for e in (exc.extra if isinstance(exc.extra, list) else [])
        if isinstance(e, dict)
    ]
    first = found[0] if found else None
    detail = f"{first.field}: {first.message}" if first else str(exc.detail)
    return problem(
        request,
        400,
        "Invalid input",
        detail,
        "invalid_input",
        field=first.field if first else None,
        errors=found or None,
    )


#: msgspec names an unknown or missing field only in its message, at the enclosing object.
_NAMED_IN_MESSAGE = re.compile(r"^Object (?:contains unknown|missing required) field `([^`]+)`")


def _field_name(error: dict[str, Any]) -> str:
    text = str(error.get("key") or "")
    # msgspec says "$.builder.credit_code" or "$.issues[0].severity"
    text = text[2:] if text.startswith("$.") else text.removeprefix("$")
    if text == "data" and error.get("source") == "body":
        text = ""  # Litestar's name for the whole JSON body
    named = _NAMED_IN_MESSAGE.match(str(error.get("message", "")))
    if named:
        text = f"{text}.{named.group(1)}" if text else named.group(1)
    return text or "body"


HTTP_CODES = {
    401: "not_authenticated",
    403: "not_allowed",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    code = HTTP_CODES.get(status, "http_error" if status < 500 else "internal_error")
    detail = exc.detail if status < 500 else "the server could not complete the request"
    if status == 400:  # e.g. a body that is not JSON at all
        return problem(
            request,
            400,
            "Invalid input",
            detail,
            "invalid_input",
            field="body",
            errors=[FieldError("body", detail)],
        )
    return problem(request, status, _title(status), detail, code)


def store_unavailable_handler(
    request: Request[Any, Any, Any], exc: PersistenceError | psycopg.Error
) -> Response[Problem]:
    """The event store (or a read model's database) did not answer in time: 503, saying why.

    eventsourcing wraps psycopg's errors in its own (``OperationalError``, ``InterfaceError``)
    with the original as ``__cause__``; the read models' pools raise psycopg's directly."""
    outage = store_outage(request, exc)
    log.warning(
        "store unavailable",
        reason=outage.reason,
        error_type=type(exc).__name__,
        cause=type(outage.cause).__name__ if outage.cause is not None else None,
    )
    detail = outage.detail
    if request.method not in ("GET", "HEAD", "OPTIONS") and outage.nothing_recorded:
        detail += "; nothing was recorded, try again"
    return problem(
        request,
        503,
        "Event store unavailable",
        detail,
        "store_unavailable",
        reason=outage.reason,
        retry_after=outage.retry_after,
    )


@dataclass(frozen=True)
class Outage:
    """Why the store did not answer: ``reason`` is ``pool_exhausted``, ``timeout``,
    ``lock_timeout``, ``unreachable`` or ``unavailable``."""

    reason: str
    detail: str
    retry_after: int
    nothing_recorded: bool = True
    cause: BaseException | None = None


def store_outage(request: Request[Any, Any, Any], exc: BaseException) -> Outage:
    """What kept the store from answering, from the psycopg error behind ``exc`` and the
    store's limits (``Settings.store_limits``)."""
    cause = _psycopg_cause(exc)
    settings = request.app.state.get("settings")
    limits = settings.store_limits() if isinstance(settings, Settings) else None
    pool = _store_pool(request) if isinstance(exc, PersistenceError) else None
    if isinstance(cause, psycopg_pool.PoolTimeout | psycopg_pool.TooManyRequests):
        return _no_connection(pool, limits, cause)
    if isinstance(cause, psycopg.errors.QueryCanceled):
        return Outage(
            "timeout",
            f"the event store did not answer within {_seconds(limits, 'statement_timeout')}",
            retry_after=2,
            cause=cause,
        )
    if isinstance(cause, psycopg.errors.LockNotAvailable):
        return Outage(
            "lock_timeout",
            f"the event store did not answer within {_seconds(limits, 'lock_timeout')}: "
            "another transaction held a lock it needed",
            retry_after=2,
            cause=cause,
        )
    if isinstance(cause, psycopg_pool.PoolClosed):
        return Outage("unavailable", "the event store is closing (the service is stopping)", 5)
    if cause is not None and _connection_failed(cause):
        if pool is not None:
            _SEEN.lost(pool)
        return Outage(
            "unreachable",
            "the event store is unreachable (its connection failed); if this was a write, "
            "read the project's version before sending it again",
            retry_after=5,
            nothing_recorded=False,  # a connection that broke while committing: unknown
            cause=cause,
        )
    what = type(cause).__name__ if cause is not None else type(exc).__name__
    return Outage("unavailable", f"the event store could not answer ({what})", 1, cause=cause)


#: SQLSTATEs of a server that is going away or not taking connections (class 08 aside).
_SERVER_GOING = frozenset({"57P01", "57P02", "57P03"})  # admin/crash shutdown, cannot connect


def _connection_failed(cause: psycopg.Error) -> bool:
    """The connection itself failed (refused, cut, the server stopping), as opposed to the
    server refusing one statement: psycopg's own errors carry no SQLSTATE."""
    state = cause.sqlstate
    return state is None or state.startswith("08") or state in _SERVER_GOING


def _no_connection(
    pool: psycopg_pool.ConnectionPool[Any] | None, limits: StoreLimits | None, cause: psycopg.Error
) -> Outage:
    """The pool gave no connection in time: all were busy, or none could be made."""
    wait = f"{pool.timeout:g} s" if pool is not None else _seconds(limits, "pool_wait")
    if pool is not None and _SEEN.cannot_connect(pool):
        detail = f"the event store is unreachable: no connection could be made within {wait}"
        return Outage("unreachable", detail, retry_after=5, cause=cause)
    busy = f" (pool of {pool.max_size} busy)" if pool is not None else ""
    detail = f"no free connection to the event store within {wait}{busy}"
    return Outage("pool_exhausted", detail, retry_after=1, cause=cause)


def _psycopg_cause(exc: BaseException) -> psycopg.Error | None:
    """The psycopg error that ``exc`` is or wraps (its ``__cause__``, or ``__context__``)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, psycopg.Error):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _seconds(limits: StoreLimits | None, name: str) -> str:
    value = getattr(limits, name, 0) if limits is not None else 0
    return f"{value} s" if value else "the time allowed"


def _store_pool(request: Request[Any, Any, Any]) -> psycopg_pool.ConnectionPool[Any] | None:
    """The event store's connection pool (``app.state.cases.store``), if it is PostgreSQL's."""
    store = getattr(request.app.state.get("cases"), "store", None)
    datastore = getattr(getattr(store, "recorder", None), "datastore", None)
    pool = getattr(datastore, "pool", None)
    return pool if isinstance(pool, psycopg_pool.ConnectionPool) else None


@dataclass
class _Seen:
    made: int  # connections the pool made
    failed: int  # connection attempts that failed
    cannot_connect: bool


class _ConnectVerdicts:
    """Whether a pool that gave no connection in time could not make one (the database is
    unreachable) or had every connection in use (busy), from psycopg_pool's counters of
    connection attempts and failures: unreachable when, since the pool was last looked at,
    its attempts failed and none succeeded (or a connection broke, :meth:`lost`); as last
    decided when it made no attempt since. The first look knows only the totals."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: weakref.WeakKeyDictionary[psycopg_pool.ConnectionPool[Any], _Seen] = (
            weakref.WeakKeyDictionary()
        )

    def cannot_connect(self, pool: psycopg_pool.ConnectionPool[Any]) -> bool:
        with self._lock:
            made, failed = self._counts(pool)
            before = self._seen.get(pool)
            if before is None:
                verdict = failed > 0
            elif made > before.made:
                verdict = False
            elif failed > before.failed:
                verdict = True
            else:
                verdict = before.cannot_connect
            self._seen[pool] = _Seen(made, failed, verdict)
            return verdict

    def lost(self, pool: psycopg_pool.ConnectionPool[Any]) -> None:
        """A connection of ``pool`` failed: the database is taken for unreachable until the
        pool makes a connection again."""
        with self._lock:
            made, failed = self._counts(pool)
            self._seen[pool] = _Seen(made, failed, cannot_connect=True)

    @staticmethod
    def _counts(pool: psycopg_pool.ConnectionPool[Any]) -> tuple[int, int]:
        stats = pool.get_stats()
        failed = stats.get("connections_errors", 0)
        return stats.get("connections_num", 0) - failed, failed


_SEEN = _ConnectVerdicts()


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    log.exception("unhandled error", error_type=type(exc).__name__)
    return problem(
        request,
        500,
        "Internal error",
        "the server could not complete the request; "
        "nothing was recorded unless its history shows it",
        "internal_error",
    )


def _title(status: int) -> str:
    return HTTPStatus(status).phrase


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    errors.DomainError: domain_error_handler,
    ValidationException: validation_handler,
    HTTPException: http_error_handler,
    OperationalError: store_unavailable_handler,
    InterfaceError: store_unavailable_handler,
    psycopg.OperationalError: store_unavailable_handler,  # the read models' own pools
    psycopg.InterfaceError: store_unavailable_handler,
    Exception: internal_error_handler,
}
