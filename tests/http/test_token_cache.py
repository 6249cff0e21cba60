"""The check of a bearer token is kept (``interfaces.auth.CachingJWTMiddleware``), keyed by the
app's secret and the token, until the token's ``exp``: a token one app accepted is still
refused by an app with another secret, and a token whose check was kept is refused once it
has expired."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from litestar.testing import TestClient

from interfaces.app import create_app
from interfaces.auth import CachingJWTMiddleware, issue_token
from interfaces.http_projects import CachedReads
from tests.conftest import Clock
from tests.http.support import (
    SECRET,
    XIHU_OFFICER,
    Api,
    Persona,
    assert_problem,
    populate,
    settings_for,
)
from tests.pg import store_param

OTHER_SECRET = "another-ecocase-deployment-secret-0123456789-xyz"


@pytest.fixture
def other_api(tmp_path: Path, clock: Clock) -> Iterator[Api]:
    """A second app (another deployment) signing and checking with another secret."""
    settings = dataclasses.replace(settings_for("popo", tmp_path / "other"), secret=OTHER_SECRET)
    with TestClient(create_app(settings, clock=clock, configure_logs=False)) as client:
        yield Api(client)


def token(secret: str, *, hours: float = 1, persona: Persona = XIHU_OFFICER) -> str:
    return issue_token(
        secret,
        sub=persona.sub,
        name=persona.name,
        role=persona.role,
        unit=persona.unit,
        hours=hours,
    )


def bearer(encoded: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {encoded}"}


def test_a_token_accepted_by_one_app_is_refused_by_an_app_with_another_secret(
    api: Api, other_api: Api
) -> None:
    ours = token(SECRET)
    assert api.get("/projects", as_=None, headers=bearer(ours)).status_code == 200
    assert CachingJWTMiddleware.verified.get(SECRET, ours) is not None  # its check is kept

    assert_problem(
        other_api.get("/projects", as_=None, headers=bearer(ours)), 401, "not_authenticated"
    )
    assert CachingJWTMiddleware.verified.get(OTHER_SECRET, ours) is None

    theirs = token(OTHER_SECRET)
    assert other_api.get("/projects", as_=None, headers=bearer(theirs)).status_code == 200
    assert_problem(api.get("/projects", as_=None, headers=bearer(theirs)), 401, "not_authenticated")
    assert api.get("/projects", as_=None, headers=bearer(ours)).status_code == 200


@pytest.mark.timeout(30)
def test_a_token_whose_check_was_kept_is_refused_once_it_has_expired(api: Api) -> None:
    while time.time() % 1 > 0.3:  # exp is in whole seconds: leave the token most of one
        time.sleep(0.01)
    short = token(SECRET, hours=1 / 3600)
    exp: int = jwt.decode(short, options={"verify_signature": False})["exp"]

    assert api.get("/projects", as_=None, headers=bearer(short)).status_code == 200
    assert CachingJWTMiddleware.verified.get(SECRET, short) is not None
    assert api.get("/projects", as_=None, headers=bearer(short)).status_code == 200

    time.sleep(max(0.0, exp + 0.2 - time.time()))

    assert_problem(api.get("/projects", as_=None, headers=bearer(short)), 401, "not_authenticated")
    assert CachingJWTMiddleware.verified.get(SECRET, short) is None


def test_a_kept_token_names_its_person_only_under_the_secret_that_checked_it(api: Api) -> None:
    ours = token(SECRET, hours=2)
    assert CachingJWTMiddleware.known_actor(SECRET, f"Bearer {ours}") is None  # not checked yet
    assert api.get("/projects", as_=None, headers=bearer(ours)).status_code == 200

    actor = CachingJWTMiddleware.known_actor(SECRET, f"Bearer {ours}")
    assert actor is not None
    assert (actor.sub, actor.name, actor.role, actor.unit) == (
        XIHU_OFFICER.sub,
        XIHU_OFFICER.name,
        XIHU_OFFICER.role,
        XIHU_OFFICER.unit,
    )
    assert CachingJWTMiddleware.known_actor(OTHER_SECRET, f"Bearer {ours}") is None
    assert CachingJWTMiddleware.known_actor(SECRET, f"Bearer {ours}x") is None


@pytest.mark.timeout(30)
@pytest.mark.parametrize("app_settings", [store_param("postgres")], indirect=True)
def test_a_kept_token_is_refused_on_a_read_of_a_cached_project_once_it_has_expired(
    api: Api,
) -> None:
    p = populate(api)  # cached: the reads of it are answered before Litestar
    while time.time() % 1 > 0.3:  # exp is in whole seconds: leave the token most of one
        time.sleep(0.01)
    short = token(SECRET, hours=1 / 3600)
    exp: int = jwt.decode(short, options={"verify_signature": False})["exp"]
    shortcut: CachedReads = api.client.app.state.cached_reads

    assert api.get(f"/projects/{p.id}", as_=None, headers=bearer(short)).status_code == 200
    answered = shortcut.answered
    assert api.get(f"/projects/{p.id}", as_=None, headers=bearer(short)).status_code == 200
    assert shortcut.answered == answered + 1

    time.sleep(max(0.0, exp + 0.2 - time.time()))

    refused = api.get(f"/projects/{p.id}", as_=None, headers=bearer(short))
    assert_problem(refused, 401, "not_authenticated")
    assert shortcut.answered == answered + 1
    assert CachingJWTMiddleware.verified.get(SECRET, short) is None
