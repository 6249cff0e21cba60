"""Errors as ``application/problem+json`` (RFC 9457), with one table from error to status."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import msgspec
import structlog
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from application.cases import WriteContention
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


def problem(
    request: Request[Any, Any, Any],
    status: int,
    title: str,
    detail: str,
    code: str,
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
    headers = {"Retry-After": "1"} if status == 503 else None
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
    request: Request[Any, Any, Any], exc: PersistenceError
) -> Response[Problem]:
    """The event store could not be reached (or no pooled connection was free in time)."""
    log.warning("store unavailable", error_type=type(exc).__name__)
    return problem(
        request,
        503,
        "Event store unavailable",
        "the event store did not answer in time; nothing was recorded, try again",
        "store_unavailable",
    )


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
    Exception: internal_error_handler,
}
