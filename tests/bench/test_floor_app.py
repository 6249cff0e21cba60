"""The framework floor's app (bench/floor_app.py): without a database its commands answer fixed
bytes; with one (bench/floor_db.py, a fresh schema of the test database) a command inserts one
durable row and GET /projects/{id} answers the view it selects by primary key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast
from uuid import UUID, uuid4

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from psycopg import sql

from application.settings import Settings, load_settings
from bench.baseline import PgTarget
from bench.floor_app import answer_body, build_floor_app
from bench.floor_db import (
    INSERTS,
    PLAIN_LIMIT,
    VIEWS,
    FloorDatabase,
    create_tables,
    inserted,
    view_body,
)
from bench.phases import officer_token
from tests import pg

SECRET = "floor-test-secret-" + "x" * 32
BODY = {"material": "排污许可证", "department": "杭州市生态环境局",
        "reason": "other_department_permit", "promised_by": "2027-06-30"}  # fmt: skip
TARGET = PgTarget(pg.DBNAME, pg.HOST, int(pg.PORT), pg.USER, pg.PASSWORD)


def _settings(**extra: str) -> Settings:
    return load_settings({"ECOCASE_STORE": "postgres", "POSTGRES_DBNAME": pg.DBNAME,
                          "POSTGRES_HOST": pg.HOST, "POSTGRES_PORT": pg.PORT,
                          "POSTGRES_USER": pg.USER, "POSTGRES_PASSWORD": pg.PASSWORD,
                          "ECOCASE_SECRET": SECRET, **extra})  # fmt: skip


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {officer_token(SECRET)}"}


def test_view_bodies_have_the_size_asked_for_and_differ_by_project() -> None:
    a, b = uuid4(), uuid4()
    body = view_body(a, 2_048)
    assert len(body) == 2_048
    assert msgspec.json.decode(body)["id"] == str(a)
    assert body == view_body(a, 2_048)
    assert body != view_body(b, 2_048)
    assert len(view_body(a, 10)) == len(view_body(a, 0))  # the frame, at least


def test_the_pool_is_sized_as_the_service_sizes_its_store() -> None:
    db = FloorDatabase(_settings(), "s")  # not opened: no connection yet
    assert (db.min_size, db.max_size, db.wait) == (5, 15, 2.0)  # eventsourcing 5 + 10, 2 s
    kwargs = db.kwargs
    assert kwargs["autocommit"] is True
    assert kwargs["options"] == "-c statement_timeout=5000 -c lock_timeout=3000"
    small = FloorDatabase(_settings(POSTGRES_POOL_SIZE="3", POSTGRES_MAX_OVERFLOW="1"), "s")
    assert (small.min_size, small.max_size) == (3, 4)
    with pytest.raises(ValueError, match="PostgreSQL"):
        FloorDatabase(load_settings({"ECOCASE_STORE": "popo", "ECOCASE_SECRET": SECRET}), "s")


def test_without_a_database_commands_answer_fixed_bytes_and_there_is_no_read() -> None:
    app = build_floor_app(_settings(), body_bytes=1_000)
    with TestClient(app) as client:
        live = client.get("/health/live")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        project = uuid4()
        path = f"/projects/{project}/deferred-materials"
        assert client.post(path, json=BODY).status_code == 401  # the real auth
        answer = client.post(path, json=BODY, headers=_auth())
        assert answer.status_code == 201
        assert answer.content == answer_body(1_000)
        assert answer.headers["location"].startswith(f"/projects/{project}#")
        assert "x-request-id" in {k.lower() for k in answer.headers}
        bad = client.post(path, json={"material": "x"}, headers=_auth())
        assert bad.status_code == 400  # the real body's validation
        assert client.get(f"/projects/{project}", headers=_auth()).status_code == 404


@pytest.fixture
def floor_schema() -> Iterator[str]:
    with pg.fresh_schema() as schema:
        yield schema


@pytest.mark.postgres
def test_the_tables_hold_the_views_in_their_rows(floor_schema: str) -> None:
    ids = create_tables(TARGET, floor_schema, views=30, view_bytes=2_048)
    assert len(set(ids)) == 30
    with pg.connect() as conn:
        rows = conn.execute(
            "SELECT c.relname, a.attstorage FROM pg_attribute a JOIN pg_class c ON "
            "c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
            "n.nspname = %s AND a.attname IN ('body', 'payload')",
            (floor_schema,),
        ).fetchall()
        # the views uncompressed, in their rows; the inserts as the raw baseline's
        assert {str(r[0]): str(r[1]) for r in rows} == {VIEWS: "p", INSERTS: "x"}
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(floor_schema, VIEWS))
        ).fetchone()
    assert count == (30,)
    assert inserted(TARGET, floor_schema) == 0


@pytest.mark.postgres
def test_a_view_too_large_for_a_page_keeps_the_default_storage(floor_schema: str) -> None:
    size = PLAIN_LIMIT + 2_000
    [one] = create_tables(TARGET, floor_schema, views=1, view_bytes=size)
    db = FloorDatabase(_settings(), floor_schema)
    db.open()
    try:
        assert db.view(one) == view_body(one, size)
        assert db.view(uuid4()) is None
    finally:
        db.close()


@pytest.fixture
def floor_client(floor_schema: str) -> Iterator[tuple[TestClient[Litestar], list[UUID]]]:
    ids = create_tables(TARGET, floor_schema, views=20, view_bytes=2_100)
    app = build_floor_app(_settings(), 900, FloorDatabase(_settings(), floor_schema))
    with TestClient(app) as client:  # the pool opens at start-up, closes at shutdown
        yield client, ids


@pytest.mark.postgres
def test_a_command_inserts_one_durable_row(
    floor_client: tuple[TestClient[Litestar], list[UUID]], floor_schema: str
) -> None:
    client, _ = floor_client
    project = uuid4()
    for _ in range(3):
        answer = client.post(f"/projects/{project}/deferred-materials", json=BODY,
                             headers=_auth())  # fmt: skip
        assert answer.status_code == 201
        assert answer.content == answer_body(900)
    officer = {"officer": "o-1", "name": "张三", "role": "lead"}
    assert client.post(f"/projects/{project}/officers", json=officer,
                       headers=_auth()).status_code == 201  # fmt: skip
    assert inserted(TARGET, floor_schema) == 4  # committed: seen from another connection
    with pg.connect() as conn:
        rows = conn.execute(
            sql.SQL("SELECT originator_id, payload FROM {} ORDER BY id").format(
                sql.Identifier(floor_schema, INSERTS)
            )
        ).fetchall()
    assert {r[0] for r in rows} == {project}
    payloads = [r[1] for r in rows]
    assert all(isinstance(x, bytes) for x in payloads)
    assert msgspec.json.decode(cast("bytes", payloads[0])) == BODY
    assert msgspec.json.decode(cast("bytes", payloads[3]))["officer"] == "o-1"


@pytest.mark.postgres
def test_a_read_answers_the_view_selected_by_its_key(
    floor_client: tuple[TestClient[Litestar], list[UUID]],
) -> None:
    client, ids = floor_client
    for project in ids[:5]:
        answer = client.get(f"/projects/{project}", headers=_auth())
        assert answer.status_code == 200
        assert answer.content == view_body(project, 2_100)
        assert answer.headers["content-type"] == "application/json"
    assert client.get(f"/projects/{ids[0]}").status_code == 401
    assert client.get(f"/projects/{uuid4()}", headers=_auth()).status_code == 404
    assert client.get("/health/live").status_code == 200
