"""The workers' database: single statements, transactions and write-only transactions (one
round trip on PostgreSQL) behave alike on SQLite and PostgreSQL: all of a transaction's writes
or none of them."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import psycopg
import pytest

from application.sqldb import Cursor, Database, open_database
from tests import pg


@pytest.fixture(params=pg.DURABLE_STORES)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with pg.store_env_for(request.param, tmp_path) as env:
        database = open_database(env)
        database.setup("t", ["CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, n INTEGER)"])
        try:
            yield database
        finally:
            database.close()


def keys(db: Database) -> list[str]:
    return [r[0] for r in db.query("SELECT k FROM t ORDER BY k")]


Open = Callable[[Database], AbstractContextManager[Cursor]]
KINDS = [
    pytest.param(lambda db: db.transaction(), id="transaction"),
    pytest.param(lambda db: db.writes(), id="writes"),
]
TAKEN = (psycopg.errors.UniqueViolation, sqlite3.IntegrityError)


class StoppedError(Exception):
    """Raised by a test inside a transaction block."""


@pytest.mark.parametrize("open_", KINDS)
def test_a_transaction_commits_all_its_writes(db: Database, open_: Open) -> None:
    with open_(db) as cursor:
        for k in "abc":
            cursor.execute("INSERT INTO t (k, n) VALUES (%s, %s)", (k, 1))
        cursor.execute("UPDATE t SET n = n + 1 WHERE k = %s", ("b",))
    assert db.query("SELECT k, n FROM t ORDER BY k") == [("a", 1), ("b", 2), ("c", 1)]


def _insert_three(db: Database, open_: Open) -> None:
    with open_(db) as cursor:
        cursor.execute("INSERT INTO t (k, n) VALUES (%s, %s)", ("a", 1))
        cursor.execute("INSERT INTO t (k, n) VALUES (%s, %s)", ("b", 1))  # taken
        cursor.execute("INSERT INTO t (k, n) VALUES (%s, %s)", ("c", 1))


@pytest.mark.parametrize("open_", KINDS)
def test_a_transaction_whose_statement_fails_writes_nothing(db: Database, open_: Open) -> None:
    db.run("INSERT INTO t (k, n) VALUES (%s, %s)", ("b", 0))
    with pytest.raises(TAKEN):
        _insert_three(db, open_)
    assert keys(db) == ["b"]
    with open_(db) as cursor:  # the connection is usable afterwards
        cursor.execute("INSERT INTO t (k, n) VALUES (%s, %s)", ("d", 1))
    assert keys(db) == ["b", "d"]


@pytest.mark.parametrize("open_", KINDS)
def test_a_block_that_raises_writes_nothing(db: Database, open_: Open) -> None:
    def insert_then_fail() -> None:
        with open_(db) as cursor:
            cursor.execute("INSERT INTO t (k, n) VALUES (%s, %s)", ("a", 1))
            raise StoppedError

    with pytest.raises(StoppedError):
        insert_then_fail()
    assert keys(db) == []


def test_texts_with_quotes_and_chinese_are_written_as_given(db: Database) -> None:
    text = "杭环发〔2024〕35号 'quoted' \\ %s; DROP TABLE t; --"
    with db.writes() as cursor:
        cursor.execute("INSERT INTO t (k, n) VALUES (%s, %s)", (text, 1))
    assert keys(db) == [text]


def test_nothing_can_be_read_in_a_writes_block_on_postgres(tmp_path: Path) -> None:
    with pg.store_env_for("postgres", tmp_path) as env:
        db = open_database(env)
        try:
            db.setup("t", ["CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, n INTEGER)"])

            def write_then_read() -> None:
                with db.writes() as cursor:
                    cursor.execute("INSERT INTO t (k, n) VALUES (%s, %s)", ("a", 1))
                    cursor.execute("SELECT k FROM t")
                    cursor.fetchall()

            with pytest.raises(TypeError, match="nothing can be read"):
                write_then_read()
            assert keys(db) == []
        finally:
            db.close()


def test_a_transaction_reads_what_it_wrote(db: Database) -> None:
    with db.transaction() as cursor:
        cursor.execute("INSERT INTO t (k, n) VALUES (%s, %s)", ("a", 1))
        cursor.execute(
            "INSERT INTO t (k, n) VALUES (%s, %s) ON CONFLICT (k) DO UPDATE SET n = t.n + 1 "
            "RETURNING n",
            ("a", 1),
        )
        row = cursor.fetchone()
    assert row is not None
    assert row[0] == 2


def test_single_statements_count_and_return_rows(db: Database) -> None:
    assert db.run("INSERT INTO t (k, n) VALUES (%s, %s)", ("a", 1)) == 1
    assert db.run("UPDATE t SET n = n + 1 WHERE k IN (%s, %s)", ("a", "zz")) == 1
    assert db.query("SELECT k, n FROM t") == [("a", 2)]
    with pytest.raises((psycopg.errors.UniqueViolation, sqlite3.IntegrityError)):
        db.run("INSERT INTO t (k, n) VALUES (%s, %s)", ("a", 1))
    assert db.query("SELECT count(*) FROM t") == [(1,)]
