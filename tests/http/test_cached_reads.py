"""GET /projects/{id} of a cached project (PostgreSQL: the API listens to every save) is
answered on the event loop from an encoded view: the very bytes and headers a read through
the store gives, and never an older version's."""

from __future__ import annotations

import pytest

from tests.http.support import Api, populate
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
