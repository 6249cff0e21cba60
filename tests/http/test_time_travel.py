"""GET /projects/{id}?version=N and ?as_of=<time>: the project as it stood."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.http.support import AUDITOR, Api, assert_problem, letter_body, populate
from tests.pg import STORE_KINDS, store_param


@pytest.mark.parametrize("app_settings", [store_param(kind) for kind in STORE_KINDS], indirect=True)
def test_read_at_each_version_and_as_of_each_recorded_time(api: Api) -> None:
    p = populate(api)
    latest = api.view(p.id)
    events = api.history(p.id)
    assert len(events) == latest["version"] == p.version

    for event in events:
        n = event["version"]
        r = api.get(f"/projects/{p.id}", as_=AUDITOR, params={"version": n})
        assert r.status_code == 200, r.text
        at_version = r.json()
        assert at_version["version"] == n
        r = api.get(f"/projects/{p.id}", as_=AUDITOR, params={"as_of": event["recorded_at"]})
        assert r.status_code == 200, r.text
        assert r.json() == at_version, f"as_of the time of version {n}"

    first = api.get(f"/projects/{p.id}", params={"version": 1}).json()
    assert first["early_intervention"] is None
    assert first["officers"] == []
    assert first["reminder_letters"] == []
    before_letter = api.get(f"/projects/{p.id}", params={"version": p.version - 1}).json()
    assert before_letter["deferred_materials"][0]["id"] == p.material_id
    assert before_letter["reminder_letters"] == []
    assert api.get(f"/projects/{p.id}", params={"version": p.version}).json() == latest


def test_as_of_between_two_events_gives_the_earlier_version(api: Api) -> None:
    p = populate(api)
    events = api.history(p.id)
    third, fourth = (datetime.fromisoformat(e["recorded_at"]) for e in events[2:4])
    between = third + (fourth - third) / 2
    r = api.get(f"/projects/{p.id}", params={"as_of": between.isoformat()})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 3
    later = datetime.fromisoformat(events[-1]["recorded_at"]) + timedelta(days=1)
    assert api.get(f"/projects/{p.id}", params={"as_of": later.isoformat()}).json()["version"] == (
        p.version
    )


def test_as_of_in_another_offset_or_without_one_means_the_same_moment(api: Api) -> None:
    p = populate(api)
    events = api.history(p.id)
    moment = datetime.fromisoformat(events[1]["recorded_at"])  # +08:00
    utc = moment.astimezone(UTC)
    naive_shanghai = moment.replace(tzinfo=None)  # no offset: Asia/Shanghai
    for text in (utc.isoformat(), naive_shanghai.isoformat()):
        r = api.get(f"/projects/{p.id}", params={"as_of": text})
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2, text


def test_as_of_before_registration_is_404(api: Api) -> None:
    p = populate(api)
    first = datetime.fromisoformat(api.history(p.id)[0]["recorded_at"])
    r = api.get(f"/projects/{p.id}", params={"as_of": (first - timedelta(seconds=1)).isoformat()})
    assert_problem(r, 404, "project_not_found")


def test_version_and_as_of_together_give_the_earlier_state(api: Api) -> None:
    p = populate(api)
    events = api.history(p.id)
    r = api.get(f"/projects/{p.id}", params={"version": 5, "as_of": events[2]["recorded_at"]})
    assert r.json()["version"] == 3


@pytest.mark.parametrize("version", ["abc", "1.5", "0", "-1", "999"])
def test_bad_version_query_is_400_naming_version(api: Api, version: str) -> None:
    pid = api.register()["id"]
    api.write(pid, "reminder-letters", letter_body())
    r = api.get(f"/projects/{pid}", params={"version": version})
    assert_problem(r, 400, "invalid_input", field="version")


def test_bad_as_of_query_is_400_naming_as_of(api: Api) -> None:
    pid = api.register()["id"]
    r = api.get(f"/projects/{pid}", params={"as_of": "yesterday"})
    assert_problem(r, 400, "invalid_input", field="as_of")
