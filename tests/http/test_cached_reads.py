"""GET /projects/{id} of a cached project (PostgreSQL: the API listens to every save) is
answered on the event loop from an encoded view: the very bytes and headers a read through
the store gives, and never an older version's. With a token whose check is kept, it is answered
before Litestar (``CachedReads``); everything else (refusals, queries, unknown projects) is
answered by Litestar as before."""

from __future__ import annotations

import itertools
import uuid

import pytest
import structlog
from structlog.testing import capture_logs

from interfaces.auth import issue_token
from interfaces.http_projects import CachedReads
from tests.http.support import (
    GONGSHU_OFFICER,
    SECRET,
    XIHU_OFFICER,
    XIHU_SUPERVISOR,
    Api,
    Persona,
    assert_problem,
    populate,
    token_for,
)
from tests.pg import store_param

pytestmark = pytest.mark.parametrize("app_settings", [store_param("postgres")], indirect=True)


def test_a_cached_read_answers_the_bytes_and_headers_of_a_read_through_the_store(
    api: Api,
) -> None:
    p = populate(api)
    first, again = api.get(f"/projects/{p.id}"), api.get(f"/projects/{p.id}")
    through_store = api.get(f"/projects/{p.id}", params={"version": p.version})
    for r in (first, again, through_store):
        assert r.status_code == 200, r.text
    assert first.content == again.content == through_store.content
    for header in ("etag", "content-type"):
        assert first.headers[header] == again.headers[header] == through_store.headers[header]
    assert first.headers["etag"] == f'"{p.version}"'


def test_after_a_write_a_cached_read_shows_the_new_version(api: Api) -> None:
    p = populate(api)
    before = api.view(p.id)
    written = api.write(p.id, "audit-notes", {"note": "再次抽查"})
    after = api.get(f"/projects/{p.id}")
    assert after.status_code == 200, after.text
    assert after.json() == written
    assert after.json()["version"] == before["version"] + 1
    assert after.headers["etag"] == f'"{before["version"] + 1}"'


# --- the shortcut before Litestar (interfaces.http_projects.CachedReads) -------------------

_fresh = itertools.count(1)


def fresh_token(persona: Persona) -> dict[str, str]:
    """The header of a token of ``persona`` that no app has checked yet (its own ``exp``)."""
    encoded = issue_token(
        SECRET,
        sub=persona.sub,
        name=persona.name,
        role=persona.role,
        unit=persona.unit,
        hours=2 + next(_fresh) / 3600,
    )
    return {"Authorization": f"Bearer {encoded}"}


def answered_before_litestar(api: Api) -> int:
    shortcut: CachedReads = api.client.app.state.cached_reads
    return shortcut.answered


def test_a_read_by_a_kept_token_is_answered_before_litestar_with_the_routes_bytes_and_headers(
    api: Api,
) -> None:
    p = populate(api)
    token = fresh_token(XIHU_SUPERVISOR)
    before = answered_before_litestar(api)
    by_litestar = api.get(f"/projects/{p.id}", as_=None, headers=token)  # checks the token
    assert answered_before_litestar(api) == before
    shortcut = api.get(f"/projects/{p.id}", as_=None, headers=token)
    assert answered_before_litestar(api) == before + 1

    for r in (by_litestar, shortcut):
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == r.request.headers["X-Request-ID"]
    assert shortcut.content == by_litestar.content
    assert shortcut.json()["version"] == p.version
    assert shortcut.headers.raw[:-1] == by_litestar.headers.raw[:-1]  # all but the request id
    assert shortcut.headers["etag"] == f'"{p.version}"'
    assert shortcut.headers["content-type"] == "application/json"


def test_a_read_with_an_upper_case_id_is_answered_before_litestar_with_the_same_bytes(
    api: Api,
) -> None:
    p = populate(api)
    lower = api.get(f"/projects/{p.id}")
    before = answered_before_litestar(api)
    upper = api.get(f"/projects/{p.id.upper()}")
    assert answered_before_litestar(api) == before + 1
    assert upper.status_code == 200, upper.text
    assert upper.content == lower.content
    assert upper.headers["etag"] == lower.headers["etag"]


def test_a_read_by_a_kept_token_not_allowed_to_read_the_project_is_refused_with_403(
    api: Api,
) -> None:
    p = populate(api)
    token = fresh_token(GONGSHU_OFFICER)
    before = answered_before_litestar(api)
    first = api.get(f"/projects/{p.id}", as_=None, headers=token)  # the token's check is kept
    again = api.get(f"/projects/{p.id}", as_=None, headers=token)
    for r in (first, again):
        assert_problem(r, 403, "not_allowed")
    assert answered_before_litestar(api) == before


def test_a_read_without_a_valid_token_is_refused_with_401(api: Api) -> None:
    p = populate(api)
    api.get(f"/projects/{p.id}")  # cached, and its reader's token kept
    before = answered_before_litestar(api)
    kept = token_for(XIHU_OFFICER)
    for headers in (
        {},
        {"Authorization": f"Bearer {kept}x"},
        {"Authorization": f"Bearer {kept[:-2]}"},
        {"Authorization": "Bearer"},
    ):
        assert_problem(api.get(f"/projects/{p.id}", as_=None, headers=headers), 401)
    assert answered_before_litestar(api) == before


def test_a_read_at_a_version_is_answered_by_litestar_with_that_version(api: Api) -> None:
    p = populate(api)
    api.get(f"/projects/{p.id}")
    before = answered_before_litestar(api)
    r = api.get(f"/projects/{p.id}", params={"version": 1})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    assert r.headers["etag"] == '"1"'
    assert answered_before_litestar(api) == before


def test_a_read_of_an_unknown_project_is_refused_with_404(api: Api) -> None:
    populate(api)
    before = answered_before_litestar(api)
    assert_problem(api.get(f"/projects/{uuid.uuid4()}"), 404)
    assert answered_before_litestar(api) == before


def test_a_read_answered_before_litestar_has_one_access_line_with_its_actor_and_project(
    api: Api,
) -> None:
    p = populate(api)
    api.get(f"/projects/{p.id}")
    before = answered_before_litestar(api)
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as entries:
        r = api.get(f"/projects/{p.id}", headers={"X-Request-ID": "req-shortcut-0001"})
    assert r.status_code == 200, r.text
    assert answered_before_litestar(api) == before + 1
    assert r.headers["x-request-id"] == "req-shortcut-0001"
    (line,) = [e for e in entries if e.get("event") == "request"]
    assert line["request_id"] == "req-shortcut-0001"
    assert line["actor"] == XIHU_OFFICER.sub
    assert line["actor_role"] == "officer"
    assert line["actor_unit"] == "xihu"
    assert line["project_id"] == p.id
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["path"] == f"/projects/{p.id}"
    assert line["log_level"] == "info"
    assert len(entries) == 1, entries
