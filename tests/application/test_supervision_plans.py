"""The supervision view's follower reads a batch's projects and their letters by index, however
many letters the view holds and whether or not its tables are analysed yet: a hash join over
the whole letters table made every batch scan it (40 ms per batch at 1M events), which the
latency benchmark showed as PostgreSQL's CPU."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid5

import psycopg
import pytest
from psycopg import sql

from application.sqldb import open_database
from application.supervision_storage import SupervisionStorage
from tests import pg

pytestmark = pytest.mark.postgres

PROJECTS, LETTERS_EACH = 10_000, 7
NS = UUID("6f1d3c9e-2d1b-4c55-9c1a-7e0c1d2b3a4f")


@pytest.fixture
def filled() -> Iterator[tuple[str, SupervisionStorage]]:
    """A supervision view of 10,000 projects with 7 letters each and no statistics yet, as
    after a bulk catch-up or a rebuild before autovacuum has analysed the tables (the case
    the benchmark met: the planner then hashed the whole letters table)."""
    with pg.fresh_schema() as schema:
        db = open_database(pg.postgres_env(schema))
        storage = SupervisionStorage(db)
        try:
            with pg.connect() as conn:
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
                for table in ("supervision_projects", "supervision_letters"):
                    conn.execute(
                        sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = off)").format(
                            sql.Identifier(table)
                        )
                    )
                conn.execute(
                    "INSERT INTO supervision_projects SELECT id, 'c' || n, 'p', 'xihu', 'open', 1 "
                    "FROM (SELECT n, uuid_in(md5(n::text)::cstring) AS id "
                    "FROM generate_series(1, %s) AS n) s",
                    (PROJECTS,),
                )
                conn.execute(
                    "INSERT INTO supervision_letters SELECT p.id, p.project_code, p.name, "
                    "'xihu', 'L' || k, 'no', DATE '2026-01-01', DATE '2026-02-01', 'open', NULL, "
                    "repeat('x', 200), 1 FROM supervision_projects p, generate_series(1, %s) AS k",
                    (LETTERS_EACH,),
                )
            yield schema, storage
        finally:
            db.close()


def plan(schema: str, statement: str, ids: list[UUID], mode: str) -> str:
    """EXPLAIN of ``statement`` prepared on the server, as psycopg prepares a statement it
    runs often, under ``plan_cache_mode`` ``mode`` (the custom and the generic plan)."""
    numbered = statement
    for n in range(1, statement.count("%s") + 1):
        numbered = numbered.replace("%s", f"${n}", 1)
    with pg.connect() as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET plan_cache_mode = {}").format(sql.Identifier(mode)))
        conn.execute(f"PREPARE batch_read (uuid[], uuid[], text) AS {numbered}")
        cur = psycopg.ClientCursor(conn)
        rows = cur.execute(
            "EXPLAIN EXECUTE batch_read (%s, %s, %s)", (ids, ids, "supervision")
        ).fetchall()
    return "\n".join(str(r[0]) for r in rows)


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
def test_a_batch_reads_its_letters_by_index_not_the_whole_table(
    filled: tuple[str, SupervisionStorage], mode: str
) -> None:
    schema, storage = filled
    ids = [uuid5(NS, str(n)) for n in range(8)]
    text = plan(schema, storage._read_sql, ids, mode)  # the statement the follower runs
    assert "Seq Scan on supervision_letters" not in text, text
    assert "supervision_letters_pkey" in text, text
