"""``GET /projects/{id}/integrity``: the project's hash chain checked from its first event."""

from __future__ import annotations

import functools
from typing import Any
from uuid import UUID

import litestar
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath

from application.cases import Cases
from application.integrity import project_integrity
from domain.actor import Actor
from interfaces.views import View

get = functools.partial(litestar.get, sync_to_thread=True)

AnyRequest = Request[Actor, Any, State]


class IntegrityView(View):
    valid: bool
    events: int
    head: str
    first_bad_version: int | None
    problem: str | None


@get(
    "/projects/{project_id:uuid}/integrity",
    tags=["projects"],
    summary="Check the project's hash chain (tamper evidence) from the first event",
    description=(
        "Every event carries the SHA-256 of its predecessor's stored record. `valid` says "
        "whether the whole chain holds, `events` how many were checked, `head` is the hash of "
        "the last stored record, and `first_bad_version` / `problem` name the first altered, "
        "missing or misplaced version. A change to the last event leaves the chain valid: "
        "compare `head` with a lodged digest (`ecocase digest`) to catch that. Read access as "
        "for the project (404, 403)."
    ),
)
def project_integrity_check(
    request: AnyRequest, cases: NamedDependency[Cases], project_id: FromPath[UUID]
) -> IntegrityView:
    report = project_integrity(cases, request.user, project_id)
    return IntegrityView(
        valid=report.valid,
        events=report.events,
        head=report.head,
        first_bad_version=report.first_bad_version,
        problem=report.problem,
    )
