"""GET /notifications through the whole app: who reads which notifications, the response's
shape, filters and pagination.

The notifications are recorded here as the notification worker records them: every stored
event through the rules into the app's notification table (``app.state.notifications``; an
in-memory one when the app does not provide it yet). Keys make this idempotent, so a worker
running in the app at the same time records the same rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from application.notification_rules import notifications_for
from application.notifications import Notifications
from application.settings import Settings
from application.sqldb import Database
from application.store import CaseStore
from domain.actor import Role
from domain.windows import Window
from interfaces.app import create_app
from interfaces.http_notifications import list_notifications
from tests.conftest import CREDIT_CODE, START, Clock
from tests.http.support import (
    AUDITOR,
    BINJIANG_SUPERVISOR,
    CITY_SUPERVISOR,
    GONGSHU_OFFICER,
    XIHU_LEAD,
    XIHU_OFFICER,
    XIHU_SUPERVISOR,
    Api,
    Persona,
    assert_problem,
    letter_body,
)

ADMIN = Persona("admin-01", "系统管理员", Role.ADMIN, Window.CITY)
TARGETS = {"zheliban": "http://127.0.0.1:9/zlb", "zhezhengding": "http://127.0.0.1:9/zzd"}
UNIT = f"unit:{CREDIT_CODE}"
FIELDS = {
    "key",
    "notification_id",
    "project_id",
    "window",
    "recipient",
    "channel",
    "subject",
    "body",
    "state",
    "attempts",
    "last_error",
    "created_at",
    "sent_at",
}


@pytest.fixture
def client(app_settings: Settings, clock: Clock) -> Iterator[TestClient[Litestar]]:
    """The app with GET /notifications (registered here until the app lists it itself)."""
    app = create_app(app_settings, clock=clock, configure_logs=False)
    if not any(route.path == "/notifications" for route in app.routes):
        app.register(list_notifications)
    own: Database | None = None
    with TestClient(app) as test_client:
        if getattr(app.state, "notifications", None) is None:
            own = Database("sqlite", path=":memory:")
            app.state.notifications = Notifications(own)
        yield test_client
    if own is not None:
        own.close()


def record_notifications(app: Litestar) -> int:
    """Every stored event's notifications, as the worker records them; how many events."""
    store: CaseStore = app.state.cases.store
    notifications: Notifications = app.state.notifications
    stored = store.recorder.select_notifications(start=1, limit=10_000)
    for n in stored:
        event = store.mapper.to_domain_event(n)
        project = store.get_project(event.originator_id, version=event.originator_version)
        specs = notifications_for(event, project, webhook_targets=TARGETS)
        with notifications.db.transaction() as cursor:
            notifications.add(
                cursor,
                notification_id=n.id,
                project_id=project.id,
                window=project.window,
                specs=specs,
                now=START,
            )
    return len(stored)


@dataclass(frozen=True)
class Seeded:
    xihu: str  # XIHU_LEAD is its lead; a reminder letter was issued
    gongshu: str  # XIHU_OFFICER is assigned to it (joint)
    gongshu_other: str  # nobody of Xihu on it


@pytest.fixture
def seeded(api: Api, client: TestClient[Litestar]) -> Seeded:
    xihu = api.register()["id"]
    api.write(xihu, "officers", {"officer": XIHU_LEAD.sub, "name": XIHU_LEAD.name, "role": "lead"})
    api.write(xihu, "reminder-letters", letter_body())
    gongshu = api.register(as_=GONGSHU_OFFICER, window=Window.GONGSHU)["id"]
    api.write(
        gongshu,
        "officers",
        {"officer": XIHU_OFFICER.sub, "name": XIHU_OFFICER.name, "role": "joint"},
        as_=GONGSHU_OFFICER,
    )
    other = api.register(as_=GONGSHU_OFFICER, window=Window.GONGSHU)["id"]
    assert record_notifications(client.app) == 6
    return Seeded(xihu, gongshu, other)


def listing(
    api: Api, persona: Persona, **params: str | int
) -> tuple[list[dict[str, Any]], str | None]:
    r = api.get("/notifications", as_=persona, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == {"items", "next_cursor"}
    return body["items"], body["next_cursor"]


def seen(api: Api, persona: Persona, **params: str | int) -> set[tuple[str, str, str]]:
    """(project, recipient, channel) of everything the persona reads (every page)."""
    found: set[tuple[str, str, str]] = set()
    keys: list[str] = []
    cursor: str | None = None
    while True:
        page_params = {**params, "limit": 3, **({"cursor": cursor} if cursor else {})}
        items, cursor = listing(api, persona, **page_params)
        found |= {(i["project_id"], i["recipient"], i["channel"]) for i in items}
        keys += [i["key"] for i in items]
        if cursor is None:
            break
    assert len(keys) == len(set(keys)), "one row per event, recipient and channel"
    return found


def everything(c: Seeded) -> dict[str, set[tuple[str, str, str]]]:
    xihu_inbox = {
        (c.xihu, "supervisor:xihu", "inbox"),  # Registered, ReminderLetterIssued (two events)
        (c.xihu, f"officer:{XIHU_LEAD.sub}", "inbox"),
    }
    xihu_out = {(c.xihu, UNIT, "email"), (c.xihu, UNIT, "webhook")}
    return {
        "xihu_inbox": xihu_inbox,
        "xihu_out": xihu_out,
        "gongshu_supervisor": {
            (c.gongshu, "supervisor:gongshu", "inbox"),
            (c.gongshu_other, "supervisor:gongshu", "inbox"),
        },
        "gongshu_mine": {(c.gongshu, f"officer:{XIHU_OFFICER.sub}", "inbox")},
        "gongshu_out": {(c.gongshu, UNIT, "email")},
    }


# --- the response ------------------------------------------------------------------------------
def test_items_carry_channel_delivery_state_and_the_chinese_text(api: Api, seeded: Seeded) -> None:
    r = api.get("/notifications", as_=AUDITOR)
    assert r.status_code == 200, r.text
    assert "【杭州市生态环境局】温馨提醒函 杭环温提〔2026〕1号" in r.text  # UTF-8 as is
    items = r.json()["items"]
    assert len(items) == 10
    ids = [i["notification_id"] for i in items]
    assert ids == sorted(ids, reverse=True)  # newest first
    for item in items:
        assert set(item) - {"address"} == FIELDS
        assert item["key"] == f"{item['notification_id']}:{item['recipient']}:{item['channel']}"
        assert item["created_at"].endswith("+08:00")
        assert item["state"] in {"pending", "sent", "failed", "dead"}
        if item["channel"] == "inbox":
            assert "address" not in item
            assert item["state"] == "sent"
            assert item["sent_at"].endswith("+08:00")
        else:
            assert item["address"] in {"lisi@example.cn", "zheliban"}
    letter = next(i for i in items if i["channel"] == "email" and "温馨提醒函" in i["subject"])
    assert letter["project_id"] == seeded.xihu
    assert letter["window"] == "xihu"
    assert "0571-88156310" in letter["body"]


def test_a_request_without_token_is_refused(api: Api, seeded: Seeded) -> None:
    assert_problem(api.get("/notifications", as_=None), 401)


# --- who reads which ---------------------------------------------------------------------------
@pytest.mark.parametrize("persona", [AUDITOR, ADMIN, CITY_SUPERVISOR], ids=lambda p: p.sub)
def test_auditors_admins_and_the_city_supervisor_read_all(
    api: Api, seeded: Seeded, persona: Persona
) -> None:
    assert seen(api, persona) == set().union(*everything(seeded).values())


def test_a_branch_supervisor_reads_their_window(api: Api, seeded: Seeded) -> None:
    groups = everything(seeded)
    assert seen(api, XIHU_SUPERVISOR) == groups["xihu_inbox"] | groups["xihu_out"]
    assert seen(api, BINJIANG_SUPERVISOR) == set()


def test_an_officer_reads_their_inbox_and_the_unit_messages_of_readable_projects(
    api: Api, seeded: Seeded
) -> None:
    groups = everything(seeded)
    assert (
        seen(api, XIHU_OFFICER)
        == groups["gongshu_mine"] | groups["xihu_out"] | groups["gongshu_out"]
    )
    assert seen(api, XIHU_LEAD) == {
        (seeded.xihu, f"officer:{XIHU_LEAD.sub}", "inbox"),
        *groups["xihu_out"],
    }
    assert seen(api, GONGSHU_OFFICER) == groups["gongshu_out"]


def test_an_officer_may_not_read_another_persons_inbox(api: Api, seeded: Seeded) -> None:
    for recipient in (f"officer:{XIHU_LEAD.sub}", "supervisor:xihu"):
        r = api.get("/notifications", as_=XIHU_OFFICER, params={"recipient": recipient})
        assert_problem(r, 403, "not_allowed")
    own = seen(api, XIHU_LEAD, recipient=f"officer:{XIHU_LEAD.sub}")
    assert own == {(seeded.xihu, f"officer:{XIHU_LEAD.sub}", "inbox")}
    assert seen(api, XIHU_SUPERVISOR, recipient="supervisor:xihu") == {
        (seeded.xihu, "supervisor:xihu", "inbox")
    }
    items, _ = listing(api, XIHU_SUPERVISOR, recipient="supervisor:xihu")
    assert len(items) == 2  # Registered and the reminder letter


def test_the_recipient_filter_keeps_the_readers_scope(api: Api, seeded: Seeded) -> None:
    groups = everything(seeded)
    assert seen(api, XIHU_OFFICER, recipient=UNIT) == groups["xihu_out"] | groups["gongshu_out"]
    items, _ = listing(api, XIHU_OFFICER, recipient=UNIT)
    assert len(items) == 4  # two e-mails and a webhook of Xihu, one e-mail of Gongshu
    assert seen(api, BINJIANG_SUPERVISOR, recipient=UNIT) == set()


def test_the_project_filter_needs_read_access_to_the_project(api: Api, seeded: Seeded) -> None:
    groups = everything(seeded)
    assert seen(api, XIHU_OFFICER, project=seeded.gongshu) == (
        groups["gongshu_mine"] | groups["gongshu_out"]
    )
    assert seen(api, XIHU_SUPERVISOR, project=seeded.xihu) == (
        groups["xihu_inbox"] | groups["xihu_out"]
    )
    refused = api.get("/notifications", as_=XIHU_OFFICER, params={"project": seeded.gongshu_other})
    assert_problem(refused, 403, "not_allowed")
    unknown = api.get("/notifications", as_=AUDITOR, params={"project": str(uuid.uuid4())})
    assert_problem(unknown, 404, "project_not_found")
    assert_problem(api.get("/notifications", as_=AUDITOR, params={"project": "P1"}), 400)


# --- pagination --------------------------------------------------------------------------------
def test_pages_follow_the_cursor_to_the_end(api: Api, seeded: Seeded) -> None:
    full, cursor = listing(api, AUDITOR, limit=200)
    assert cursor is None
    keys: list[str] = []
    pages = 0
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        items, cursor = listing(api, AUDITOR, **params)
        pages += 1
        keys += [i["key"] for i in items]
        if cursor is None:
            break
    assert pages == 3
    assert keys == [i["key"] for i in full]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_limits_and_cursors_are_refused(
    api: Api, seeded: Seeded, params: dict[str, str | int], field: str
) -> None:
    r = api.get("/notifications", as_=AUDITOR, params=params)
    assert_problem(r, 400, "invalid_input", field=field)


def test_the_endpoint_is_described_in_the_openapi_document(api: Api) -> None:
    r = api.get("/schema/openapi.json", as_=None)
    assert r.status_code == 200, r.text
    operation = r.json()["paths"]["/notifications"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {
        "project",
        "recipient",
        "limit",
        "cursor",
    }
