"""``GET /projects/{id}/integrity`` (200 with the chain's state, 404, 403 as for reading the
project) and ``ecocase digest`` (export, then verify: exit 1 naming what was altered)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from application.cases import Cases
from application.mapper import chain_hash
from application.settings import Settings
from interfaces import cli
from interfaces.app import create_app
from tests.application.test_integrity import StoredRows, replace_text
from tests.conftest import Clock
from tests.http.support import (
    AUDITOR,
    BINJIANG_SUPERVISOR,
    CITY_SUPERVISOR,
    GONGSHU_OFFICER,
    SECRET,
    XIHU_OFFICER,
    XIHU_SUPERVISOR,
    Api,
    assert_problem,
    populate,
)
from tests.pg import DURABLE_STORES

durable = pytest.mark.parametrize("app_settings", DURABLE_STORES, indirect=True)


def cases_of(client: TestClient[Litestar]) -> Cases:
    cases: Cases = client.app.state.cases
    return cases


def integrity(api: Api, project_id: str, **kwargs: Any) -> dict[str, Any]:
    r = api.get(f"/projects/{project_id}/integrity", **kwargs)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_an_untouched_project_reports_a_valid_chain_and_its_head(
    api: Api, client: TestClient[Litestar]
) -> None:
    p = populate(api)
    body = integrity(api, p.id)
    last = cases_of(client).store.recorder.select_events(uuid.UUID(p.id), desc=True, limit=1)[0]
    assert body == {
        "valid": True,
        "events": p.version,
        "head": chain_hash(last),
        "first_bad_version": None,
        "problem": None,
    }
    assert len(body["head"]) == 64


def test_readers_of_the_project_may_check_it(api: Api) -> None:
    p = populate(api)
    for persona in (XIHU_OFFICER, XIHU_SUPERVISOR, CITY_SUPERVISOR, AUDITOR):
        assert integrity(api, p.id, as_=persona)["valid"] is True


def test_an_unknown_project_is_404(api: Api) -> None:
    r = api.get(f"/projects/{uuid.uuid4()}/integrity", as_=AUDITOR)
    assert_problem(r, 404, "project_not_found")


def test_staff_of_another_window_are_refused_403(api: Api) -> None:
    p = populate(api)
    for persona in (GONGSHU_OFFICER, BINJIANG_SUPERVISOR):
        r = api.get(f"/projects/{p.id}/integrity", as_=persona)
        assert_problem(r, 403, "not_allowed")


def test_without_a_token_it_is_401(api: Api) -> None:
    p = populate(api)
    assert_problem(api.get(f"/projects/{p.id}/integrity", as_=None), 401)


@durable
def test_an_altered_row_is_named_at_its_version(
    api: Api, client: TestClient[Litestar], app_settings: Settings
) -> None:
    p = populate(api)
    store = cases_of(client).store
    rows = StoredRows(store, app_settings.store_env())
    rows.edit(uuid.UUID(p.id), 2, replace_text("指导环评编制", "无需环评编制"))
    body = integrity(api, p.id, as_=AUDITOR)
    assert (body["valid"], body["events"], body["first_bad_version"]) == (False, p.version, 2)
    assert body["problem"].startswith("version 2 was altered")


@durable
def test_a_history_that_no_longer_replays_is_checked_by_readers_of_every_window_only(
    api: Api, client: TestClient[Litestar], app_settings: Settings
) -> None:
    p = populate(api)
    rows = StoredRows(cases_of(client).store, app_settings.store_env())
    rows.edit(uuid.UUID(p.id), 3, lambda state: b"not json" + state)
    body = integrity(api, p.id, as_=AUDITOR)
    assert (body["valid"], body["first_bad_version"]) == (False, 3)
    assert body["problem"].startswith("version 3 does not decode")
    assert integrity(api, p.id, as_=CITY_SUPERVISOR)["first_bad_version"] == 3
    assert_problem(api.get(f"/projects/{p.id}/integrity", as_=XIHU_OFFICER), 403, "not_allowed")


# --- ecocase digest -------------------------------------------------------------------------
def use_store_of(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """The environment ``ecocase`` reads, pointing at the test's store."""
    monkeypatch.setenv("ECOCASE_STORE", settings.store)
    monkeypatch.setenv("ECOCASE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ECOCASE_SECRET", SECRET)
    for key, value in settings.postgres_dsn_env.items():
        monkeypatch.setenv(key, value)


@durable
def test_ecocase_digest_exports_then_verifies_and_names_what_was_altered(
    app_settings: Settings,
    clock: Clock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with TestClient(create_app(app_settings, clock=clock, configure_logs=False)) as client:
        api = Api(client)
        p, other = populate(api), populate(api)
    capsys.readouterr()  # the service's own log lines
    use_store_of(monkeypatch, app_settings)
    lodged = tmp_path / "digest.json"

    assert cli.main(["digest"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert cli.main(["digest", "--out", str(lodged)]) == 0
    exported = json.loads(lodged.read_text())
    assert exported == printed
    assert sorted(e["project_id"] for e in exported["heads"]) == sorted([p.id, other.id])
    assert {e["version"] for e in exported["heads"]} == {p.version}
    assert cli.main(["digest", "--date", "2020-01-01"]) == 0
    assert json.loads(capsys.readouterr().out)["heads"] == []

    assert cli.main(["digest", "--verify", str(lodged)]) == 0
    assert "all 2 project chains agree" in capsys.readouterr().out

    with TestClient(create_app(app_settings, clock=clock, configure_logs=False)) as client:
        rows = StoredRows(cases_of(client).store, app_settings.store_env())
        letter_no = replace_text("杭环温提〔2026〕1号", "杭环温提〔2026〕7号")
        rows.edit(uuid.UUID(p.id), p.version, letter_no)
        assert integrity(Api(client), p.id)["valid"] is True  # the last event: the chain holds
    capsys.readouterr()
    assert cli.main(["digest", "--verify", str(lodged)]) == 1
    out = capsys.readouterr()
    assert out.out.startswith(f"project {p.id} v{p.version}: the record no longer hashes")
    assert other.id not in out.out
    assert "1 problem(s)" in out.err


def test_ecocase_digest_refuses_a_file_that_is_not_a_digest(
    app_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_store_of(monkeypatch, app_settings)
    bad = tmp_path / "bad.json"
    bad.write_text('{"day": "2026-12-04"}')
    assert cli.main(["digest", "--verify", str(bad)]) == 2
    assert "not an ecocase digest" in capsys.readouterr().err
    assert cli.main(["digest", "--verify", str(tmp_path / "missing.json")]) == 2
