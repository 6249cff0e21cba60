"""The framework floor: what a command costs through the service's HTTP stack alone.

A Litestar app with the service's request plumbing and nothing behind it: the same outermost
``request_context`` (request id, access-log line; no shortcut), the same JWT auth
(``jwt_auth(secret)``, tokens as the bench issues them), the same ``before_request`` hook,
exception handlers, logging (``configure_logging`` with the run's ``ECOCASE_LOG_*``) and a
dependency resolved per request as the real handlers' ``cases`` is. Its command routes take the
body of the real ones (``JSONBody[DeferMaterial]``, ``JSONBody[AssignOfficer]``), run in the
thread pool (``sync_to_thread=True``) and answer 201 with an ETag, a Location and a body of
fixed, pre-encoded bytes of the size of a real command's answer: no store, no domain, no
database. Served exactly as ``ecocase serve --server granian --workers 1`` serves the real app:

    python -m bench.floor_app --host 127.0.0.1 --port 8123 [--body-bytes 4200] [--schema S]

The rate it reaches is the most any command can reach through this stack on this machine.

With a schema (``--schema``, or ``BENCH_FLOOR_SCHEMA``; PostgreSQL from the service's
``POSTGRES_*`` settings) the floor does the least database work each request must do
(``bench/floor_db.py``, tables made by ``floor_db.create_tables``): a command inserts one row
in one committed transaction (in the thread pool, from a pool sized as the service's) before
answering the same bytes, and ``GET /projects/{id}`` (async, the select in the thread pool as
the real read of an uncached project) answers the pre-encoded view it selects by primary key.
``GET /health/live`` is the real one's twin (async, no auth, a msgspec struct), the reference
of the suite's GET ratios on the same server.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, HeaderParameter, JSONBody

from application.settings import Settings, load_settings
from bench.floor_db import SCHEMA_ENV, FloorDatabase
from domain.actor import Actor
from interfaces import schemas as s
from interfaces.auth import jwt_auth
from interfaces.cli import serve_granian
from interfaces.logs import configure_logging
from interfaces.middleware import bind_actor_and_project, request_context
from interfaces.problems import EXCEPTION_HANDLERS

FACTORY = "bench.floor_app:create_floor_app"
#: The answer's size in bytes; the suite sets it to the size of the real commands' answers.
BODY_BYTES_ENV = "BENCH_FLOOR_BODY_BYTES"
DEFAULT_BODY_BYTES = 4_096
AnyRequest = Request[Actor, Any, State]
IfMatch = Annotated[str | None, HeaderParameter(name="If-Match", required=False)]


def answer_body(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (at least its frame, 12 bytes)."""
    head, tail = b'{"floor":"', b'"}'
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


class Answer:
    """What the handlers answer with: the body, encoded once; and the database, if any."""

    def __init__(self, size: int, database: FloorDatabase | None = None) -> None:
        self.body = answer_body(size)
        self.database = database

    def created(self, request: AnyRequest, project_id: UUID, created: str,
                data: msgspec.Struct) -> Response[bytes]:  # fmt: skip
        # What the real handlers read of the request: the actor and the request id.
        _ = (request.user, request.scope["state"]["request_id"])
        if self.database is not None:  # the command's body, as one durable row
            self.database.insert(project_id, msgspec.json.encode(data))
        headers = {
            "ETag": '"11"',
            "Location": f"/projects/{project_id}#{created}",
            "X-Created-Id": created,
        }
        return Response(self.body, status_code=201, media_type=MediaType.JSON, headers=headers)


def _answer(state: State) -> Answer:
    answer: Answer = state.answer
    return answer


@post("/projects/{project_id:uuid}/deferred-materials", status_code=201, sync_to_thread=True)
def defer_material(
    request: AnyRequest,
    answer: NamedDependency[Answer],
    project_id: FromPath[UUID],
    data: JSONBody[s.DeferMaterial],
    if_match: IfMatch = None,  # noqa: ARG001 - parsed, as the real handler's
) -> Response[bytes]:
    """The bench's command phases (``bench.phases.commands``)."""
    return answer.created(request, project_id, f"m-{len(data.material)}", data)


@post("/projects/{project_id:uuid}/officers", status_code=201, sync_to_thread=True)
def assign_officer(
    request: AnyRequest,
    answer: NamedDependency[Answer],
    project_id: FromPath[UUID],
    data: JSONBody[s.AssignOfficer],
    if_match: IfMatch = None,  # noqa: ARG001 - parsed, as the real handler's
) -> Response[bytes]:
    """The latency phase's command, for a look by hand."""
    return answer.created(request, project_id, data.officer, data)


@get("/projects/{project_id:uuid}")
async def read_project(
    request: AnyRequest, answer: NamedDependency[Answer], project_id: FromPath[UUID]
) -> Response[bytes]:
    """A project the process has not read before: its view selected by primary key in the
    thread pool (as the real handler reads an uncached project), answered as it is."""
    _ = (request.user, request.scope["state"]["request_id"])
    database = answer.database
    assert database is not None
    body = await sync_to_thread(database.view, project_id)
    if body is None:
        raise NotFoundException
    return Response(body, media_type=MediaType.JSON, headers={"ETag": '"10"'})


class Live(msgspec.Struct):
    status: str


_LIVE = Live(status="ok")


@get("/health/live", exclude_from_auth=True)
async def live() -> Live:
    """The real ``GET /health/live``'s twin (interfaces/http_service.py): the trivial GET."""
    return _LIVE


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    """For the bench's ``wait_healthy`` (public, as the real one)."""
    return {"status": "ok"}


def create_floor_app() -> Litestar:
    """Granian's factory: settings from the environment, as ``create_app`` reads them."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    schema = os.environ.get(SCHEMA_ENV, "").strip()
    return build_floor_app(settings, int(os.environ.get(BODY_BYTES_ENV, DEFAULT_BODY_BYTES)),
                           FloorDatabase(settings, schema) if schema else None)  # fmt: skip


def build_floor_app(
    settings: Settings, body_bytes: int = DEFAULT_BODY_BYTES, database: FloorDatabase | None = None
) -> Litestar:
    """The floor app; with ``database`` its commands insert a row each and it answers
    ``GET /projects/{id}`` (the pool opens at start-up and closes at shutdown)."""
    auth = jwt_auth(settings.secret)
    handlers: list[Any] = [defer_material, assign_officer, live, health]
    if database is not None:
        handlers.append(read_project)
    app = Litestar(
        route_handlers=handlers,
        on_app_init=[auth.on_app_init],
        on_startup=[database.open] if database else [],
        on_shutdown=[database.close] if database else [],
        dependencies={"answer": Provide(_answer, sync_to_thread=False)},
        before_request=bind_actor_and_project,
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
    app.state.answer = Answer(body_bytes, database)
    app.asgi_handler = request_context(app.asgi_handler)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor_app", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--body-bytes", type=int, help=f"the answer's size (default {BODY_BYTES_ENV} "
                   f"or {DEFAULT_BODY_BYTES:,})")  # fmt: skip
    p.add_argument("--schema", help=f"the schema of the floor's tables (default {SCHEMA_ENV}; "
                   "none: no database)")  # fmt: skip
    args = p.parse_args(argv)
    if args.body_bytes is not None:
        os.environ[BODY_BYTES_ENV] = str(args.body_bytes)  # granian's worker inherits it
    if args.schema is not None:
        os.environ[SCHEMA_ENV] = args.schema
    # As `ecocase serve --server granian --workers 1`.
    serve_granian(FACTORY, host=args.host, port=args.port, workers=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
