"""Fixtures of the HTTP end-to-end tests: the whole app (lifespan included) behind a TestClient.

The store is POPO unless a test asks for another with
``@pytest.mark.parametrize("app_settings", DURABLE_STORES, indirect=True)`` (or any list of
``tests.pg.store_param(kind)``); a PostgreSQL store gets a fresh schema, dropped afterwards, and
fails (never skips) when the server is down. The app's clock is the ``clock`` fixture of
tests/conftest.py (2026-12-04 10:00 Asia/Shanghai).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from application.settings import Settings
from interfaces.app import create_app
from tests.conftest import Clock
from tests.http.support import Api, settings_for
from tests.pg import fresh_schema


@pytest.fixture
def app_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a fresh, empty store: "popo" by default, or the indirect param's kind."""
    kind: str = getattr(request, "param", "popo")
    if kind == "postgres":
        with fresh_schema() as schema:
            yield settings_for(kind, tmp_path / "data", schema)
    else:
        yield settings_for(kind, tmp_path / "data")


@pytest.fixture
def client(app_settings: Settings, clock: Clock) -> Iterator[TestClient[Litestar]]:
    """The app on ``app_settings``, started (lifespan) and stopped around the test."""
    with TestClient(create_app(app_settings, clock=clock, configure_logs=False)) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient[Litestar]) -> Api:
    return Api(client)
