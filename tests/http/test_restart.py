"""What the service recorded is there after a restart on the durable stores: the project, its
history and its list row; and the restarted service goes on writing."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from application.settings import Settings
from interfaces.app import create_app
from tests.conftest import Clock
from tests.http.support import CITY_SUPERVISOR, Api, populate
from tests.pg import DURABLE_STORES


@pytest.mark.parametrize("app_settings", DURABLE_STORES, indirect=True)
def test_a_restarted_service_serves_what_was_recorded(app_settings: Settings, clock: Clock) -> None:
    with TestClient(create_app(app_settings, clock=clock, configure_logs=False)) as first:
        api = Api(first)
        p = populate(api)
        before_view = api.view(p.id)
        before_history = api.history(p.id)
        before_list = api.get("/projects", as_=CITY_SUPERVISOR).json()

    with TestClient(create_app(app_settings, clock=clock, configure_logs=False)) as second:
        api = Api(second)
        assert api.view(p.id) == before_view
        assert api.history(p.id) == before_history
        assert api.get("/projects", as_=CITY_SUPERVISOR).json() == before_list
        health = api.get("/health", as_=None).json()
        assert health["store"]["kind"] == app_settings.store
        assert health["store"]["max_notification_id"] == p.version
        assert health["projections"][0]["lag"] == 0
        view = api.write(p.id, "violations", {"description": "重启后继续办理"})
        assert view["version"] == p.version + 1
