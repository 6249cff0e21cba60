"""GET /projects: the list read model, its filters, cursor pagination and who sees what."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.support import (
    AUDITOR,
    BINJIANG_SUPERVISOR,
    CITY_SUPERVISOR,
    GONGSHU_OFFICER,
    XIHU_OFFICER,
    Api,
    Persona,
    assert_problem,
    letter_body,
)
from tests.pg import DURABLE_STORES


def _ids(api: Api, as_: Persona, **params: str | int) -> list[str]:
    r = api.get("/projects", as_=as_, params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["next_cursor"] is None, "one page expected"
    return [item["id"] for item in body["items"]]


def _register_mix(api: Api) -> dict[str, str]:
    """Five projects: three of Xihu (one district-only, one closed), two of Gongshu."""
    ids = {
        "xihu_major": api.register(as_=XIHU_OFFICER)["id"],
        "xihu_district": api.register(as_=XIHU_OFFICER, tiers=("district_key",))["id"],
        "gongshu_major": api.register(as_=GONGSHU_OFFICER, window="gongshu")["id"],
        "xihu_closed": api.register(as_=XIHU_OFFICER, tiers=("provincial_key",))["id"],
        "gongshu_district": api.register(
            as_=GONGSHU_OFFICER, window="gongshu", tiers=("district_key",)
        )["id"],
    }
    api.write(ids["xihu_closed"], "close", {"summary": "结案"})
    return ids


def test_list_items_summarise_each_project_in_registration_order(api: Api) -> None:
    ids = _register_mix(api)
    api.write(ids["xihu_major"], "reminder-letters", letter_body())
    r = api.get("/projects", as_=CITY_SUPERVISOR)
    assert r.status_code == 200
    body = r.json()
    assert [i["id"] for i in body["items"]] == list(ids.values())
    assert body["next_cursor"] is None
    first: dict[str, Any] = body["items"][0]
    assert first["window"] == "xihu"
    assert first["window_name"] == "西湖分局"
    assert first["tiers"] == ["city_key", "qianxiang_wanyi"]
    assert first["is_major"] is True
    assert first["status"] == "open"
    assert first["open_letters"] == 1
    assert first["version"] == 2
    assert first["project_code"]
    assert body["items"][1]["is_major"] is False


def test_list_filters_by_window_tier_and_status(api: Api) -> None:
    ids = _register_mix(api)
    city = CITY_SUPERVISOR
    assert _ids(api, city, window="gongshu") == [ids["gongshu_major"], ids["gongshu_district"]]
    assert _ids(api, city, tier="district_key") == [
        ids["xihu_district"],
        ids["gongshu_district"],
    ]
    assert _ids(api, city, status="closed") == [ids["xihu_closed"]]
    assert _ids(api, city, window="xihu", status="open") == [
        ids["xihu_major"],
        ids["xihu_district"],
    ]
    assert _ids(api, city, window="xihu", tier="city_key", status="open") == [ids["xihu_major"]]
    assert _ids(api, city, window="binjiang") == []


def test_list_pages_with_limit_and_cursor_without_gaps_or_repeats(api: Api) -> None:
    registered = [api.register()["id"] for _ in range(7)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        r = api.get("/projects", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= 3
        seen += [i["id"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == registered


def test_list_pagination_composes_with_filters(api: Api) -> None:
    ids = _register_mix(api)
    r = api.get("/projects", as_=CITY_SUPERVISOR, params={"window": "xihu", "limit": 2})
    page = r.json()
    assert [i["id"] for i in page["items"]] == [ids["xihu_major"], ids["xihu_district"]]
    assert page["next_cursor"]
    r = api.get(
        "/projects",
        as_=CITY_SUPERVISOR,
        params={"window": "xihu", "limit": 2, "cursor": page["next_cursor"]},
    )
    page = r.json()
    assert [i["id"] for i in page["items"]] == [ids["xihu_closed"]]
    assert page["next_cursor"] is None


def test_officer_lists_only_their_window(api: Api) -> None:
    ids = _register_mix(api)
    xihu = [ids["xihu_major"], ids["xihu_district"], ids["xihu_closed"]]
    assert _ids(api, XIHU_OFFICER) == xihu
    assert _ids(api, GONGSHU_OFFICER) == [ids["gongshu_major"], ids["gongshu_district"]]
    # asking for a foreign window shows nothing rather than someone else's projects
    assert _ids(api, GONGSHU_OFFICER, window="xihu") == []
    assert _ids(api, BINJIANG_SUPERVISOR) == []


def test_officer_assigned_to_a_foreign_case_lists_it(api: Api) -> None:
    ids = _register_mix(api)
    api.write(
        ids["xihu_major"],
        "officers",
        {"officer": GONGSHU_OFFICER.sub, "name": GONGSHU_OFFICER.name, "role": "joint"},
    )
    assert _ids(api, GONGSHU_OFFICER) == [
        ids["xihu_major"],
        ids["gongshu_major"],
        ids["gongshu_district"],
    ]


def test_city_supervisor_and_auditor_list_every_window(api: Api) -> None:
    ids = _register_mix(api)
    assert _ids(api, CITY_SUPERVISOR) == list(ids.values())
    assert _ids(api, AUDITOR) == list(ids.values())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"window": "nowhere"}, "window"),
        ({"tier": "county_key"}, "tier"),
        ({"status": "pending"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_list_refuses_bad_query_naming_the_parameter(
    api: Api, params: dict[str, str | int], field: str
) -> None:
    assert_problem(api.get("/projects", params=params), 400, "invalid_input", field=field)


def test_list_needs_a_token(api: Api) -> None:
    assert_problem(api.get("/projects", as_=None), 401, "not_authenticated")


@pytest.mark.parametrize("app_settings", DURABLE_STORES, indirect=True)
def test_list_on_a_durable_store_follows_writes(api: Api) -> None:
    ids = _register_mix(api)
    assert _ids(api, CITY_SUPERVISOR, status="closed") == [ids["xihu_closed"]]
    r = api.get("/projects", as_=CITY_SUPERVISOR, params={"limit": 4})
    page = r.json()
    assert len(page["items"]) == 4
    r = api.get(
        "/projects", as_=CITY_SUPERVISOR, params={"limit": 4, "cursor": page["next_cursor"]}
    )
    assert [i["id"] for i in r.json()["items"]] == [ids["gongshu_district"]]
