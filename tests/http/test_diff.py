"""GET /projects/{id}/diff: what changed between two versions, and which events did it."""

from __future__ import annotations

from tests.http.support import AUDITOR, GONGSHU_OFFICER, Api, assert_problem, populate


def test_diff_names_the_changes_and_the_events_between_two_versions(api: Api) -> None:
    p = populate(api)  # ... v6 deferred material, v7 reminder letter
    r = api.get(f"/projects/{p.id}/diff", as_=AUDITOR, params={"from": 5, "to": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["from"], body["to"]) == (5, 7)
    assert [(e["version"], e["type"]) for e in body["events"]] == [
        (6, "MaterialDeferred"),
        (7, "ReminderLetterIssued"),
    ]
    assert all(e["actor"]["sub"] == "officer-xihu-01" for e in body["events"])
    paths = {c["path"]: c for c in body["changes"]}
    assert paths["version"]["before"] == 5
    assert paths["version"]["after"] == 7
    assert paths[f"deferred_materials[{p.material_id}]"]["before"] is None
    assert paths[f"deferred_materials[{p.material_id}]"]["after"]["material"] == "取水许可批复"
    letter = paths[f"reminder_letters[{p.letter_id}]"]
    assert letter["before"] is None
    assert letter["after"]["letter_no"] == "杭环温提〔2026〕1号"
    assert not any(c.startswith("name") or c.startswith("builder") for c in paths)


def test_diff_from_zero_shows_the_registration(api: Api) -> None:
    pid = api.register()["id"]
    body = api.get(f"/projects/{pid}/diff", as_=AUDITOR, params={"from": 0, "to": 1}).json()
    assert [e["type"] for e in body["events"]] == ["Registered"]
    assert {"name", "project_code", "window"} <= {c["path"] for c in body["changes"]}


def test_diff_rejects_a_backwards_or_unknown_range(api: Api) -> None:
    pid = api.register()["id"]
    r = api.get(f"/projects/{pid}/diff", as_=AUDITOR, params={"from": 1, "to": 1})
    assert_problem(r, 400, "invalid_input", field="to")
    r = api.get(f"/projects/{pid}/diff", as_=AUDITOR, params={"from": 0, "to": 9})
    assert_problem(r, 400, "invalid_input", field="version")
    r = api.get(f"/projects/{pid}/diff", as_=AUDITOR, params={"to": 1})
    assert_problem(r, 400, "invalid_input")


def test_diff_needs_read_access(api: Api) -> None:
    pid = api.register()["id"]
    r = api.get(f"/projects/{pid}/diff", as_=GONGSHU_OFFICER, params={"from": 0, "to": 1})
    assert_problem(r, 403, "not_allowed")
