"""Event stores for tests: a fresh PostgreSQL schema per test in the ``test`` database, dropped
afterwards, or a SQLite file or POPO; plain functions, usable with or without fixtures.

PostgreSQL tests never skip: when the server cannot be reached they fail, saying where they
looked. The server is the one CI and the development machine run (127.0.0.1:5432, trust auth,
user ``postgres``); ``ECOCASE_TEST_POSTGRES_{HOST,PORT,USER,PASSWORD,DBNAME}`` point elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from _pytest.mark.structures import ParameterSet
from psycopg import sql

HOST = os.environ.get("ECOCASE_TEST_POSTGRES_HOST", "127.0.0.1")
PORT = os.environ.get("ECOCASE_TEST_POSTGRES_PORT", "5432")
USER = os.environ.get("ECOCASE_TEST_POSTGRES_USER", "postgres")
PASSWORD = os.environ.get("ECOCASE_TEST_POSTGRES_PASSWORD", "")
DBNAME = os.environ.get("ECOCASE_TEST_POSTGRES_DBNAME", "test")


def connect() -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to the test database; fails the test if the server is down."""
    try:
        return psycopg.connect(
            host=HOST,
            port=PORT,
            user=USER,
            password=PASSWORD,
            dbname=DBNAME,
            connect_timeout=5,
            autocommit=True,
        )
    except psycopg.OperationalError as e:
        pytest.fail(
            f"PostgreSQL is required for this test (never skipped) but is unreachable at "
            f"{USER}@{HOST}:{PORT}/{DBNAME}: {e}".strip(),
            pytrace=False,
        )


def postgres_env(schema: str, **overrides: str) -> dict[str, str]:
    """The eventsourcing environment for a CaseStore (or projection) in ``schema``."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": DBNAME,
        "POSTGRES_HOST": HOST,
        "POSTGRES_PORT": PORT,
        "POSTGRES_USER": USER,
        "POSTGRES_PASSWORD": PASSWORD,
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",  # as the service runs (application/settings.py)
        **overrides,
    }


@contextmanager
def fresh_schema() -> Iterator[str]:
    """Creates an empty schema ``t_<uuid hex>``, yields its name, then drops it (CASCADE).

    Close every store using the schema before leaving the block: an open transaction on one of
    its tables would hold the drop up (it gives up after 10 s rather than hang)."""
    schema = f"t_{uuid.uuid4().hex}"
    with connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with connect() as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def move_tracking_position(env: dict[str, str], table: str, position: int) -> None:
    """What another process applying events does to a read model's recorded position (its
    rows aside): sets every row of the tracking ``table`` in ``env``'s schema to ``position``."""
    with connect() as conn:
        conn.execute(
            sql.SQL("UPDATE {} SET position = %s").format(
                sql.Identifier(env["POSTGRES_SCHEMA"], table)
            ),
            (position,),
        )


@contextmanager
def fresh_postgres_env(**overrides: str) -> Iterator[dict[str, str]]:
    """``postgres_env`` of a fresh schema, dropped when the block ends."""
    with fresh_schema() as schema:
        yield postgres_env(schema, **overrides)


#: The kinds of event store a CaseStore runs on; "postgres" params carry the ``postgres`` marker.
STORE_KINDS = ("popo", "sqlite", "postgres")


def store_param(kind: str) -> ParameterSet:
    """A pytest param for ``kind``, marked ``postgres`` when it needs the server."""
    marks = [pytest.mark.postgres] if kind == "postgres" else []
    return pytest.param(kind, marks=marks, id=kind)


#: For ``@pytest.mark.parametrize("store_env", DURABLE_STORES, indirect=True)``: the stores that
#: persist (and lock) for real.
DURABLE_STORES = [store_param("sqlite"), store_param("postgres")]


@contextmanager
def store_env_for(kind: str, directory: Path) -> Iterator[dict[str, str]]:
    """The eventsourcing environment of a fresh, empty store of ``kind``: POPO, a SQLite file in
    ``directory`` (settings as in production), or a fresh PostgreSQL schema dropped afterwards."""
    if kind == "popo":
        yield {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    elif kind == "sqlite":
        yield {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(directory / "ecocase.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    elif kind == "postgres":
        with fresh_postgres_env() as env:
            yield env
    else:
        msg = f"unknown store kind {kind!r}; expected one of {STORE_KINDS}"
        raise ValueError(msg)
