"""Logs: one access line per request with its request id, actor, project and status, and never
a token or a request body."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from interfaces.logs import configure_logging
from tests.http.support import XIHU_OFFICER, Api, assert_problem, populate, token_for

#: Text of request bodies that must never reach a log line.
SECRET_GUIDANCE = "机密指导意见-不应出现在日志中"
SECRET_FINDINGS = "帮扶发现-不应出现在日志中"


def _access_lines(entries: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in entries if e.get("event") == "request"]


def _write_with_secrets(api: Api) -> tuple[str, str]:
    """A write whose body holds text that must not be logged; returns (project id, request id)."""
    pid = api.register()["id"]
    r = api.post(
        f"/projects/{pid}/early-intervention",
        {"stage": "approval", "guidance": SECRET_GUIDANCE},
        headers={"X-Request-ID": "req-logs-0001"},
    )
    assert r.status_code == 200, r.text
    return pid, "req-logs-0001"


def test_access_line_carries_request_id_actor_project_and_status(api: Api) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
        pid, request_id = _write_with_secrets(api)
    (line,) = [e for e in _access_lines(entries) if e.get("request_id") == request_id]
    assert line["actor"] == XIHU_OFFICER.sub
    assert line["actor_role"] == "officer"
    assert line["actor_unit"] == "xihu"
    assert line["project_id"] == pid
    assert line["status"] == 200
    assert line["method"] == "POST"
    assert line["path"] == f"/projects/{pid}/early-intervention"
    assert isinstance(line["duration_ms"], float)
    assert line["log_level"] == "info"


def test_every_request_gets_exactly_one_access_line_with_its_own_id(api: Api) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
        responses = [
            api.get("/health", as_=None),
            api.get("/projects"),
            api.get("/projects", as_=None),  # 401
            api.get("/nowhere"),  # 404
        ]
    lines = _access_lines(entries)
    assert [line["request_id"] for line in lines] == [
        r.request.headers["X-Request-ID"] for r in responses
    ]
    assert [line["status"] for line in lines] == [200, 200, 401, 404]
    assert "actor" not in lines[0]
    assert lines[1]["actor"] == XIHU_OFFICER.sub
    assert "actor" not in lines[2], "an unauthenticated request names no actor"


def test_a_refusal_is_logged_with_its_code_in_the_request_context(api: Api) -> None:
    pid = api.register(tiers=("district_key",))["id"]
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
        r = api.post(f"/projects/{pid}/early-intervention", {"stage": "approval", "guidance": "g"})
    assert_problem(r, 409, "not_major_project")
    (refused,) = [e for e in entries if e.get("event") == "refused"]
    assert refused["code"] == "not_major_project"
    assert refused["status"] == 409
    assert refused["request_id"] == r.request.headers["X-Request-ID"]
    assert refused["project_id"] == pid
    (line,) = _access_lines(entries)
    assert line["status"] == 409


def test_a_request_without_a_valid_id_gets_a_new_one_in_the_log_and_the_response(
    api: Api,
) -> None:
    bad_ids = ["bad id; with spaces", "x" * 65, ""]
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
        responses = [api.get("/projects", headers={"X-Request-ID": bad}) for bad in bad_ids]
    given = [r.headers["X-Request-ID"] for r in responses]
    assert all(len(g) >= 16 and g not in bad_ids for g in given)
    assert len(set(given)) == len(given)
    assert [line["request_id"] for line in _access_lines(entries)] == given
    assert [r.json()["items"] for r in responses] == [[], [], []]


@pytest.fixture
def json_log_stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The production logging configuration (JSON lines), writing to a captured stream; the
    previous logging and structlog configuration is restored afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_structlog = structlog.get_config()
    monkeypatch.setattr(sys, "stdout", stream)
    configure_logging("json", "DEBUG")
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.configure(**saved_structlog)


def test_json_logs_never_hold_the_token_or_request_bodies(
    api: Api, json_log_stream: io.StringIO
) -> None:
    token = token_for(XIHU_OFFICER)
    pid, request_id = _write_with_secrets(api)
    p = populate(api)
    r = api.post(
        f"/projects/{p.id}/helper-visits",
        {
            "helper": p.helper,
            "visited_on": "2026-12-04",
            "kind": "guidance",
            "findings": SECRET_FINDINGS,
        },
    )
    assert r.status_code == 201, r.text
    # refusals and validation errors must not echo the body either
    r = api.post(f"/projects/{pid}/early-intervention", {"stage": "approval", "guidance": "x"})
    assert r.status_code == 409
    r = api.post(f"/projects/{pid}/violations", {"description": SECRET_FINDINGS, "bad": 1})
    assert r.status_code == 400
    api.get("/projects", as_=None, headers={"Authorization": f"Bearer {token}x"})  # 401

    text = json_log_stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    (access,) = [
        e for e in lines if e.get("event") == "request" and e.get("request_id") == request_id
    ]
    assert access["actor"] == XIHU_OFFICER.sub
    assert access["project_id"] == pid
    assert access["status"] == 200
    assert access["level"] == "info"
    assert access["timestamp"]
    for forbidden in (token, token.split(".")[2], "Bearer", SECRET_GUIDANCE, SECRET_FINDINGS):
        assert forbidden not in text, f"{forbidden!r} appears in the logs"
    for header in ("authorization", "Authorization", "李四", "lisi@example.cn"):
        assert header not in text, f"{header!r} appears in the logs"
