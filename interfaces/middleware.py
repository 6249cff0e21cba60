"""Per-request context: a request id (from X-Request-ID or new), bound to every log line with
the actor and project, and one access-log line per request (never bodies or tokens)."""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

import structlog
from litestar import Request
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from domain.actor import Actor

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


#: A whole answer: status, headers (lower-case names) and body.
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
#: Answers the requests it can answer without the app (None: the app answers); it binds the
#: request's actor and project as the app's ``before_request`` hook would.
Shortcut = Callable[[HTTPScope], Answer | None]


def request_context(app: ASGIApp, shortcut: Shortcut | None = None) -> ASGIApp:
    """``app`` with a request id and an access-log line for every HTTP request; a request that
    ``shortcut`` answers gets both too, and never reaches ``app``."""

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
            http_scope = cast("HTTPScope", scope)  # its type is "http", as checked above
            answer = shortcut(http_scope) if shortcut is not None else None
            if answer is None:
                await app(scope, receive, send_with_id)
            else:
                code, headers, body = answer
                await send_with_id({"type": "http.response.start", "status": code,
                                    "headers": headers})  # fmt: skip
                await send_with_id({"type": "http.response.body", "body": body,
                                    "more_body": False})  # fmt: skip
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
        bind_actor(user)
    project_id = request.path_params.get("project_id")
    if project_id is not None:
        bind_project(project_id)


def bind_actor(actor: Actor) -> None:
    structlog.contextvars.bind_contextvars(
        actor=actor.sub, actor_role=str(actor.role), actor_unit=str(actor.unit)
    )


def bind_project(project_id: UUID | str) -> None:
    structlog.contextvars.bind_contextvars(project_id=str(project_id))
