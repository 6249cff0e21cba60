"""Races on the durable stores: concurrent writes to one project are all kept, and one project
code is registered once however many try at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import httpx
import pytest

from tests.http.support import (
    XIHU_OFFICER,
    XIHU_SUPERVISOR,
    Api,
    assert_problem,
    new_project_code,
    project_body,
)
from tests.pg import DURABLE_STORES

WRITERS = 50
T = TypeVar("T")


def _all_at_once(count: int, call: Callable[[int], T]) -> list[T]:
    """Runs ``call(0..count-1)`` in ``count`` threads released together by a barrier."""
    barrier = threading.Barrier(count, timeout=30)

    def run(n: int) -> T:
        barrier.wait()
        return call(n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.parametrize("app_settings", DURABLE_STORES, indirect=True)
def test_50_concurrent_writes_without_if_match_are_all_kept(api: Api) -> None:
    pid = api.register()["id"]

    def defer(n: int) -> httpx.Response:
        body = {
            "material": f"材料-{n:02d}",
            "department": "市林水局",
            "reason": "other_department_permit",
            "promised_by": "2026-12-20",
        }
        persona = XIHU_OFFICER if n % 2 else XIHU_SUPERVISOR
        return api.post(f"/projects/{pid}/deferred-materials", body, as_=persona)

    responses = _all_at_once(WRITERS, defer)

    assert [r.status_code for r in responses] == [201] * WRITERS, [
        (r.status_code, r.text) for r in responses if r.status_code != 201
    ]
    view = api.view(pid)
    assert view["version"] == 1 + WRITERS
    materials = view["deferred_materials"]
    assert sorted(m["material"] for m in materials) == [f"材料-{n:02d}" for n in range(WRITERS)]
    assert sorted(m["id"] for m in materials) == sorted(f"M{n}" for n in range(1, WRITERS + 1))
    events = api.history(pid)
    assert [e["version"] for e in events] == list(range(1, WRITERS + 2))
    assert [e["type"] for e in events[1:]] == ["MaterialDeferred"] * WRITERS
    sent = {r.request.headers["X-Request-ID"] for r in responses}
    assert {e["request_id"] for e in events[1:]} == sent, "each write is its request's event"
    # each response showed the project just after its own write
    assert sorted(r.json()["version"] for r in responses) == list(range(2, WRITERS + 2))


@pytest.mark.parametrize("app_settings", DURABLE_STORES, indirect=True)
def test_concurrent_registrations_of_one_project_code_register_it_once(api: Api) -> None:
    for _ in range(3):
        code = new_project_code()

        def register(n: int, code: str = code) -> httpx.Response:
            return api.post("/projects", project_body(code, name=f"同一项目的第{n + 1}次登记"))

        responses = _all_at_once(2, register)
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 409], [r.text for r in responses]
        (won,) = [r for r in responses if r.status_code == 201]
        (lost,) = [r for r in responses if r.status_code == 409]
        assert_problem(lost, 409, "duplicate_project_code")
        pid = won.json()["id"]
        view = api.view(pid)
        assert view["name"] == won.json()["name"]
        events = api.history(pid)
        assert len(events) == 1
        assert events[0]["request_id"] == won.request.headers["X-Request-ID"]


@pytest.mark.parametrize("app_settings", DURABLE_STORES, indirect=True)
def test_concurrent_writes_with_the_same_if_match_apply_once(api: Api) -> None:
    pid = api.register()["id"]
    writers = 8

    def note(n: int) -> httpx.Response:
        return api.post(
            f"/projects/{pid}/audit-notes", {"note": f"审计-{n}"}, headers={"If-Match": '"1"'}
        )

    responses = _all_at_once(writers, note)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [412] * (writers - 1), [r.text for r in responses]
    for r in responses:
        if r.status_code == 412:
            assert_problem(r, 412, "version_mismatch")
    view = api.view(pid)
    assert view["version"] == 2
    assert len(view["audit_notes"]) == 1
