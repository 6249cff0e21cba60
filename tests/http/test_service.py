"""Service endpoints: /health, /windows, the OpenAPI document and its UI page (local assets)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from application.settings import Settings, load_settings
from interfaces.app import create_app
from tests.http.support import AUDITOR, XIHU_OFFICER, Api, assert_problem
from tests.pg import STORE_KINDS, store_param

#: The 16 windows and phones of DOMAIN.md (杭环发〔2024〕35号).
WINDOW_PHONES = {
    "city": "85085326",
    "shangcheng": "87654130",
    "gongshu": "86610056",
    "xihu": "88156310",
    "binjiang": "89521576",
    "xiaoshan": "82899252",
    "yuhang": "89395014",
    "linping": "89163927",
    "qiantang": "82987912",
    "fuyang": "63155731",
    "linan": "23616561",
    "tonglu": "64217158",
    "chunan": "64819820",
    "jiande": "64780217",
    "west_lake_scenic": "87173449",
    "chengxi_corridor": "88720233",
}

#: Every path of API.md's table that the service implements, as OpenAPI names it.
PROJECT_PATHS = {
    "/health": "get",
    "/windows": "get",
    "/projects": "post",
    "/projects/{project_id}": "get",
    "/projects/{project_id}/history": "get",
    "/projects/{project_id}/early-intervention": "post",
    "/projects/{project_id}/progress-checks": "post",
    "/projects/{project_id}/progress-checks/{check_id}/outcome": "post",
    "/projects/{project_id}/officers": "post",
    "/projects/{project_id}/officers/{officer}/release": "post",
    "/projects/{project_id}/helpers": "post",
    "/projects/{project_id}/helper-visits": "post",
    "/projects/{project_id}/deferred-materials": "post",
    "/projects/{project_id}/deferred-materials/{material_id}/supplied": "post",
    "/projects/{project_id}/reminder-letters": "post",
    "/projects/{project_id}/reminder-letters/{letter_id}/issues/{issue_id}/rectification": "post",
    "/projects/{project_id}/reminder-letters/{letter_id}/issues/{issue_id}/accept": "post",
    "/projects/{project_id}/reminder-letters/{letter_id}/issues/{issue_id}/return": "post",
    "/projects/{project_id}/reminder-letters/{letter_id}/close": "post",
    "/projects/{project_id}/violations": "post",
    "/projects/{project_id}/close": "post",
    "/projects/{project_id}/audit-notes": "post",
}


@pytest.mark.parametrize("app_settings", [store_param(kind) for kind in STORE_KINDS], indirect=True)
def test_health_needs_no_token_and_reports_the_store_kind(api: Api, app_settings: Settings) -> None:
    r = api.get("/health", as_=None)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["store"]["kind"] == app_settings.store
    assert body["store"]["ok"] is True
    assert body["broker"] == {"kind": "in-process", "ok": True, "error": None}
    assert {p["name"] for p in body["projections"]} == {"project_index", "relay"}
    assert r.headers["X-Request-ID"] == r.request.headers["X-Request-ID"]


def test_health_counts_recorded_events(api: Api) -> None:
    api.register()
    api.register()
    assert api.get("/health", as_=None).json()["store"]["max_notification_id"] == 2


def test_windows_lists_the_16_windows_with_their_phones(api: Api) -> None:
    r = api.get("/windows", as_=XIHU_OFFICER)
    assert r.status_code == 200, r.text
    windows = r.json()
    assert len(windows) == 16
    assert {w["code"]: w["phone"] for w in windows} == WINDOW_PHONES
    by_code = {w["code"]: w for w in windows}
    assert by_code["city"]["name"] == "杭州市生态环境局"
    assert by_code["binjiang"]["name"] == "高新区（滨江）分局"
    assert by_code["xihu"]["phone_with_area_code"] == "0571-88156310"


def test_windows_needs_a_token(api: Api) -> None:
    assert_problem(api.get("/windows", as_=None), 401, "not_authenticated")


def test_openapi_document_describes_every_endpoint_without_a_token(api: Api) -> None:
    r = api.get("/schema/openapi.json", as_=None)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] == "ecocase"
    for path, method in PROJECT_PATHS.items():
        assert method in doc["paths"].get(path, {}), f"{method.upper()} {path} not described"
    assert "get" in doc["paths"]["/projects"]  # the list
    read = doc["paths"]["/projects/{project_id}"]["get"]
    assert {"version", "as_of"} <= {p["name"] for p in read["parameters"]}


def test_openapi_ui_page_loads_only_local_assets(api: Api) -> None:
    r = api.get("/schema", as_=None)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    tags = re.findall(r"<(?:script|link)\b[^>]*>", page, flags=re.IGNORECASE)
    assert tags, "the page has no script or link tags"
    for tag in tags:
        assert "http://" not in tag
        assert "https://" not in tag
        assert not re.search(r"""(?:src|href)\s*=\s*["']//""", tag), tag  # protocol-relative
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", " ".join(tags))
    assert any(a.endswith(".js") for a in assets)
    assert any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        got = api.get(asset, as_=None)
        assert got.status_code == 200, f"{asset}: {got.status_code}"
        assert got.content


def test_unknown_route_is_a_404_problem(api: Api) -> None:
    assert_problem(api.get("/nowhere", as_=AUDITOR), 404, "not_found")


def test_health_reports_a_broker_that_does_not_answer_as_degraded(tmp_path: Path) -> None:
    # a port nobody listens on: the API keeps serving, health says the broker is down
    settings = load_settings({
        "ECOCASE_STORE": "popo",
        "ECOCASE_SECRET": "s" * 32,
        "ECOCASE_DATA_DIR": str(tmp_path),
        "ECOCASE_REDIS_URL": "redis://127.0.0.1:1/0",
    })  # fmt: skip
    with TestClient(create_app(settings, configure_logs=False)) as client:
        r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "degraded"
    assert r.json()["broker"]["kind"] == "redis"
    assert r.json()["broker"]["ok"] is False


def test_health_shows_the_relay_lag_falling_to_zero(api: Api, client: TestClient[Any]) -> None:
    api.register()
    assert client.app.state.workers.join(timeout_s=10)
    relay = next(p for p in api.get("/health", as_=None).json()["projections"]
                 if p["name"] == "relay")  # fmt: skip
    assert relay == {"name": "relay", "position": 1, "lag": 0}
