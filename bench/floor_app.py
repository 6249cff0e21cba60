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

    python -m bench.floor_app --host 127.0.0.1 --port 8123 [--body-bytes 4200]

The rate it reaches is the most any command can reach through this stack on this machine.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Annotated, Any
from uuid import UUID

from granian import Granian
from granian.constants import Interfaces, Loops
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, HeaderParameter, JSONBody

from application.settings import load_settings
from domain.actor import Actor
from interfaces import schemas as s
from interfaces.auth import jwt_auth
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
    """What the handlers answer with: the body, encoded once."""

    def __init__(self, size: int) -> None:
        self.body = answer_body(size)

    def created(self, request: AnyRequest, project_id: UUID, created: str) -> Response[bytes]:
        # What the real handlers read of the request: the actor and the request id.
        _ = (request.user, request.scope["state"]["request_id"])
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
    return answer.created(request, project_id, f"m-{len(data.material)}")


@post("/projects/{project_id:uuid}/officers", status_code=201, sync_to_thread=True)
def assign_officer(
    request: AnyRequest,
    answer: NamedDependency[Answer],
    project_id: FromPath[UUID],
    data: JSONBody[s.AssignOfficer],
    if_match: IfMatch = None,  # noqa: ARG001 - parsed, as the real handler's
) -> Response[bytes]:
    """The latency phase's command, for a look by hand."""
    return answer.created(request, project_id, data.officer)


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    """For the bench's ``wait_healthy`` (public, as the real one)."""
    return {"status": "ok"}


def create_floor_app() -> Litestar:
    """Granian's factory: settings from the environment, as ``create_app`` reads them."""
    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    auth = jwt_auth(settings.secret)
    app = Litestar(
        route_handlers=[defer_material, assign_officer, health],
        on_app_init=[auth.on_app_init],
        dependencies={"answer": Provide(_answer, sync_to_thread=False)},
        before_request=bind_actor_and_project,
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
    app.state.answer = Answer(int(os.environ.get(BODY_BYTES_ENV, DEFAULT_BODY_BYTES)))
    app.asgi_handler = request_context(app.asgi_handler)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor_app", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--body-bytes", type=int, help=f"the answer's size (default {BODY_BYTES_ENV} "
                   f"or {DEFAULT_BODY_BYTES:,})")  # fmt: skip
    args = p.parse_args(argv)
    if args.body_bytes is not None:
        os.environ[BODY_BYTES_ENV] = str(args.body_bytes)  # granian's worker inherits it
    # As interfaces/cli.py's _serve with --server granian --workers 1.
    Granian(
        FACTORY,
        factory=True,
        interface=Interfaces.ASGI,
        address=args.host,
        port=args.port,
        workers=1,
        loop=Loops.uvloop,
        log_enabled=False,
        respawn_failed_workers=True,
    ).serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
