"""The raw baseline: single-row insert transactions/s from psycopg 3, no service in between.

Each insert is its own committed transaction (autocommit: one round trip, one WAL flush), into
a throwaway table of the run's fresh schema. With ``threads > 1`` every thread has its own
connection, as the service's connection pool gives every concurrent request its own.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from bench.stats import Latency, cpu_delta, machine_busy_seconds, postgres_cpu

PAYLOAD = b'{"material":"bench","department":"bench","reason":"not_decisive"}' * 3  # ~200 B


@dataclass(frozen=True)
class PgTarget:
    """Where PostgreSQL is (the bench's own connections and the server's environment)."""

    dbname: str
    host: str
    port: int
    user: str
    password: str

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(
            dbname=self.dbname,
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            autocommit=autocommit,
            connect_timeout=10,
            application_name="ecocase-bench",
        )

    def server_version(self) -> str:
        with self.connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "?"


@dataclass(frozen=True)
class RawResult:
    label: str
    threads: int
    explicit_transaction: bool  # BEGIN; INSERT; COMMIT instead of autocommit
    transactions: int
    seconds: float
    rate: float
    latency: Latency
    client_cpu_s: float
    postgres_cpu_s: float | None = None
    machine_cpu_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def other_cpu_s(self) -> float | None:
        """CPU the machine spent outside this process and PostgreSQL: noise."""
        if self.machine_cpu_s is None:
            return None
        return max(0.0, self.machine_cpu_s - self.client_cpu_s - (self.postgres_cpu_s or 0.0))

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["other_cpu_s"] = self.other_cpu_s
        return data


def create_schema(target: PgTarget, schema: str) -> None:
    with target.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))


def drop_schema(target: PgTarget, schema: str) -> None:
    with target.connect() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def raw_inserts(
    target: PgTarget,
    schema: str,
    *,
    threads: int,
    seconds: float,
    max_transactions: int = 1_000_000,
    explicit_transaction: bool = False,
) -> RawResult:
    """Insert single rows for ``seconds`` (or ``max_transactions`` in all) from ``threads``
    connections; each insert commits on its own."""
    table = sql.Identifier(schema, "raw_insert")
    with target.connect() as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, "
                "originator_id uuid NOT NULL, payload bytea NOT NULL)"
            ).format(table)
        )
    insert = sql.SQL("INSERT INTO {} (originator_id, payload) VALUES (%s, %s)").format(table)
    per_thread = max(1, max_transactions // threads)
    barrier = threading.Barrier(threads + 1, timeout=60)
    # The connections stay open until the CPU has been read: a backend's CPU time leaves
    # /proc with the backend.
    finished = threading.Barrier(threads + 1, timeout=seconds + 60)
    release = threading.Event()
    samples: list[list[int]] = [[] for _ in range(threads)]
    elapsed: list[float] = [0.0] * threads
    failures: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with target.connect() as conn:
                conn.execute("SELECT 1")
                barrier.wait()
                lat = samples[i]
                start = time.perf_counter_ns()
                end = start + int(seconds * 1e9)
                for _ in range(per_thread):
                    t0 = time.perf_counter_ns()
                    if explicit_transaction:
                        with conn.transaction():
                            conn.execute(insert, (uuid.uuid4(), PAYLOAD))
                    else:
                        conn.execute(insert, (uuid.uuid4(), PAYLOAD))
                    t1 = time.perf_counter_ns()
                    lat.append(t1 - t0)
                    if t1 >= end:
                        break
                elapsed[i] = (time.perf_counter_ns() - start) / 1e9
                finished.wait()
                release.wait(timeout=60)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, re-raised there
            failures.append(e)
            barrier.abort()
            finished.abort()

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    me = [os.getpid()]
    cpu0, pg0, machine0 = time.process_time(), postgres_cpu(me), machine_busy_seconds()
    with contextlib.suppress(threading.BrokenBarrierError):
        finished.wait()
    cpu1, pg1, machine1 = time.process_time(), postgres_cpu(me), machine_busy_seconds()
    release.set()
    for w in workers:
        w.join(timeout=60)
    if failures:
        raise failures[0]
    if any(w.is_alive() for w in workers):
        msg = "raw insert threads did not finish in time"
        raise RuntimeError(msg)
    count = sum(len(s) for s in samples)
    wall = max(elapsed) or 1e-9
    label = f"raw insert, {threads} connection{'s' if threads > 1 else ''}"
    return RawResult(
        label=label + (" (BEGIN/INSERT/COMMIT)" if explicit_transaction else " (autocommit)"),
        threads=threads,
        explicit_transaction=explicit_transaction,
        transactions=count,
        seconds=wall,
        rate=count / wall,
        latency=Latency.of(x for s in samples for x in s),
        client_cpu_s=cpu1 - cpu0,
        postgres_cpu_s=cpu_delta(pg0, pg1),
        machine_cpu_s=None if machine0 is None or machine1 is None else machine1 - machine0,
    )
