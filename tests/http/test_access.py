"""403: auditors write nothing, officers write only to their window's (or their assigned)
projects, branch supervisors read only their window; a refused write records nothing."""

from __future__ import annotations

import re

import pytest

from tests.http.support import (
    AUDITOR,
    BINJIANG_SUPERVISOR,
    CITY_SUPERVISOR,
    GONGSHU_OFFICER,
    XIHU_OFFICER,
    XIHU_SUPERVISOR,
    Api,
    Persona,
    assert_problem,
    every_write,
    populate,
    project_body,
)


def _walk_every_write_refused(api: Api, persona: Persona) -> None:
    p = populate(api)
    before = api.history(p.id)
    writes = every_write(p)
    assert len(writes) == 18  # every write endpoint; the test below keeps this list whole
    for path, body in writes:
        assert_problem(api.post(path, body, as_=persona), 403, "not_allowed")
    assert api.history(p.id) == before, "a refused write recorded something"
    assert api.view(p.id)["version"] == p.version


def test_auditor_is_refused_every_write_and_nothing_is_recorded(api: Api) -> None:
    _walk_every_write_refused(api, AUDITOR)
    r = api.post("/projects", project_body(window="city"), as_=AUDITOR)
    assert_problem(r, 403, "not_allowed")
    r = api.post("/projects", project_body(), as_=AUDITOR)
    assert_problem(r, 403, "not_allowed")
    assert len(api.get("/projects", as_=AUDITOR).json()["items"]) == 1


def test_auditor_reads_everything(api: Api) -> None:
    p = populate(api)
    gongshu = api.register(as_=GONGSHU_OFFICER, window="gongshu")["id"]
    for pid in (p.id, gongshu):
        assert api.get(f"/projects/{pid}", as_=AUDITOR).status_code == 200
        assert api.get(f"/projects/{pid}/history", as_=AUDITOR).status_code == 200
        r = api.get(f"/projects/{pid}", as_=AUDITOR, params={"version": 1})
        assert r.status_code == 200


def test_officer_of_another_window_is_refused_every_write(api: Api) -> None:
    _walk_every_write_refused(api, GONGSHU_OFFICER)


def test_branch_supervisor_of_another_window_is_refused_every_write(api: Api) -> None:
    _walk_every_write_refused(api, BINJIANG_SUPERVISOR)


def test_officer_registers_only_for_their_own_window(api: Api) -> None:
    r = api.post("/projects", project_body(window="xihu"), as_=GONGSHU_OFFICER)
    assert_problem(r, 403, "not_allowed")
    r = api.post("/projects", project_body(window="xihu"), as_=CITY_SUPERVISOR)
    assert_problem(r, 403, "not_allowed")
    assert api.get("/health", as_=None).json()["store"]["max_notification_id"] == 0


@pytest.mark.parametrize("persona", [BINJIANG_SUPERVISOR, GONGSHU_OFFICER])
def test_staff_of_another_window_may_not_read_the_project(api: Api, persona: Persona) -> None:
    p = populate(api)
    assert_problem(api.get(f"/projects/{p.id}", as_=persona), 403, "not_allowed")
    assert_problem(api.get(f"/projects/{p.id}/history", as_=persona), 403, "not_allowed")
    r = api.get(f"/projects/{p.id}", as_=persona, params={"version": 1})
    assert_problem(r, 403, "not_allowed")
    assert api.get("/projects", as_=persona).json()["items"] == []


def test_supervisors_read_and_write_their_own_window_and_the_city_supervisor_reads_all(
    api: Api,
) -> None:
    p = populate(api)
    for persona in (XIHU_OFFICER, XIHU_SUPERVISOR, CITY_SUPERVISOR):
        assert api.get(f"/projects/{p.id}", as_=persona).status_code == 200
        assert api.get(f"/projects/{p.id}/history", as_=persona).status_code == 200
    api.write(p.id, "violations", {"description": "超范围建设"}, as_=XIHU_SUPERVISOR)
    assert_problem(
        api.post(f"/projects/{p.id}/violations", {"description": "d"}, as_=CITY_SUPERVISOR),
        403,
        "not_allowed",
    )


def test_the_walk_covers_every_write_endpoint_the_openapi_document_lists(api: Api) -> None:
    """So that a new write endpoint cannot escape the auditor's walk above."""
    p = populate(api)
    document = api.get("/schema/openapi.json", as_=None).json()
    templates = [
        path for path, ops in document["paths"].items()
        if "post" in ops and path.startswith("/projects/{")
    ]  # fmt: skip
    walked = [path for path, _ in every_write(p)]
    for template in templates:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        assert any(re.match(pattern, path) for path in walked), f"{template} is not walked"
