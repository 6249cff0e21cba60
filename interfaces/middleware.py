"""Per-request context: a request id (from X-Request-ID or new), bound to every log line with
the actor and project, and one access-log line per request (never bodies or tokens)."""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any

import structlog
from litestar import Request
from litestar.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("ecocase.http")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: A new request id: this process's random prefix and a counter (unique without a system call
#: per request, as uuid4 needed).
_PREFIX = os.urandom(8).hex()
_NUMBERS = itertools.count(1)


def _new_prefix() -> None:  # a forked server worker must not repeat its parent's ids
    global _PREFIX, _NUMBERS
    _PREFIX, _NUMBERS = os.urandom(8).hex(), itertools.count(1)


os.register_at_fork(after_in_child=_new_prefix)


def new_request_id() -> str:
    return f"{_PREFIX}-{next(_NUMBERS):x}"


def request_context(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # type: ignore[comparison-overlap] # ScopeType is a str enum
            await app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = given if REQUEST_ID.match(given) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                method=scope.get("method"),
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()

    return middleware


async def bind_actor_and_project(request: Request[Any, Any, Any]) -> None:
    """before_request hook: the actor (after auth) and the project of the path."""
    user = request.scope.get("user")
    if user is not None:
        structlog.contextvars.bind_contextvars(
            actor=user.sub, actor_role=str(user.role), actor_unit=str(user.unit)
        )
    project_id = request.path_params.get("project_id")
    if project_id is not None:
        structlog.contextvars.bind_contextvars(project_id=str(project_id))
