"""The event store fails fast: an exhausted pool, a locked or slow database and an unreachable
one answer 503 ``store_unavailable`` within seconds, saying which, with ``Retry-After``; nothing
is recorded, and the service works again once the cause is gone.

Every test runs the whole app on a fresh PostgreSQL schema, without the embedded workers or
the read models' followers (they would hold connections of their own), and with small limits
so that it stays quick. The time bounds are generous correctness bounds (the library's own
retries took minutes), not benchmarks.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
from eventsourcing.persistence import OperationalError
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from litestar.testing import TestClient
from psycopg import sql

from application.settings import Settings, load_settings
from application.store import CaseStore
from interfaces.app import create_app
from tests import pg
from tests.conftest import Clock
from tests.http.support import AUDITOR, SECRET, Api, assert_problem

pytestmark = pytest.mark.postgres

#: Slack on every time bound: the machine is shared, and the bound only has to tell seconds
#: from the library's minutes.
SLACK = 3.0


def fail_fast_settings(data_dir: Path, schema: str, **postgres: str) -> Settings:
    """The service's settings as ``ecocase serve`` loads them, on ``schema``, with the API alone
    (no embedded relay or worker, no read-model followers) and ``postgres`` overrides."""
    return load_settings(
        {
            "ECOCASE_STORE": "postgres",
            "ECOCASE_SECRET": SECRET,
            "ECOCASE_DATA_DIR": str(data_dir),
            "ECOCASE_LOG_FORMAT": "json",
            "ECOCASE_EMBEDDED_WORKERS": "no",
            "ECOCASE_PROJECTIONS_IN_API": "no",
            "POSTGRES_DBNAME": pg.DBNAME,
            "POSTGRES_HOST": pg.HOST,
            "POSTGRES_PORT": pg.PORT,
            "POSTGRES_USER": pg.USER,
            "POSTGRES_PASSWORD": pg.PASSWORD,
            "POSTGRES_SCHEMA": schema,
            **postgres,
        }
    )


@contextlib.contextmanager
def running(settings: Settings, clock: Clock) -> Iterator[tuple[Api, CaseStore]]:
    """The app on ``settings``, started and stopped around the block; its API and store."""
    with TestClient(create_app(settings, clock=clock, configure_logs=False)) as client:
        yield Api(client), client.app.state.cases.store


def datastore_of(store: CaseStore) -> PostgresDatastore:
    assert isinstance(store.recorder, PostgresApplicationRecorder), store.recorder
    return store.recorder.datastore


def session_limits(store: CaseStore) -> tuple[str, str]:
    """The statement and lock timeouts of the store's pooled connections, as PostgreSQL shows
    them ("5s"; "0" for none)."""
    with datastore_of(store).get_connection() as conn:
        shown = conn.execute(
            "SELECT current_setting('statement_timeout') AS s, current_setting('lock_timeout') AS l"
        ).fetchone()
    assert shown is not None
    return shown["s"], shown["l"]


#: Said when the store's connections lack the settings' timeouts (without them a request on a
#: locked table would wait for ever, and so would the test).
NO_SESSION_LIMITS = (
    "the store's connections lack the statement/lock timeouts of the settings: CaseStore must "
    "give its PostgreSQL pool application.settings.postgres_options(env) before it opens"
)


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def note(api: Api, project_id: str, text: str) -> httpx.Response:
    return api.post(f"/projects/{project_id}/audit-notes", {"note": text})


def unavailable(response: httpx.Response, reason: str) -> dict[str, Any]:
    """A 503 store_unavailable problem for ``reason``, with a Retry-After."""
    body = assert_problem(response, 503, "store_unavailable")
    assert body["reason"] == reason, body
    assert int(response.headers["Retry-After"]) >= 1, response.headers
    return body


def stored_versions(schema: str) -> list[int]:
    """Every stored event's version, read past the app on a connection of the test's own."""
    with pg.connect() as conn:
        rows = conn.execute(
            sql.SQL("SELECT originator_version FROM {} ORDER BY notification_id").format(
                sql.Identifier(schema, "ecocase_events")
            )
        ).fetchall()
    return [int(str(row[0])) for row in rows]


# --- the settings reach the store's connections ---------------------------------------------
def test_the_stores_connections_carry_the_default_statement_and_lock_timeouts(
    tmp_path: Path,
) -> None:
    with pg.fresh_schema() as schema:
        settings = fail_fast_settings(tmp_path, schema)
        with CaseStore(env=settings.store_env()) as store:
            assert datastore_of(store).pool.timeout == 2  # seconds for a free pooled connection
            assert session_limits(store) == ("5s", "3s"), NO_SESSION_LIMITS


# --- (a) pool exhaustion -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "cached",
    [
        pytest.param(True, id="project-cached"),
        # as in a process that has not seen the project: it is read (snapshot, events) first
        pytest.param(False, id="project-not-cached"),
    ],
)
def test_a_command_on_an_exhausted_pool_answers_503_within_the_wait_then_commands_succeed(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    if not cached:
        monkeypatch.setenv("ECOCASE_PROJECT_CACHE", "0")  # the store's cache, turned off
    with pg.fresh_schema() as schema:
        settings = fail_fast_settings(
            tmp_path, schema, POSTGRES_POOL_SIZE="1", POSTGRES_MAX_OVERFLOW="0"
        )
        with running(settings, clock) as (api, store):
            pid = api.register()["id"]
            api.write(pid, "audit-notes", {"note": "池满前的审计意见"})  # version 2
            with datastore_of(store).get_connection():  # the pool's one connection, busy
                refused, elapsed = timed(lambda: note(api, pid, "池满时的审计意见"))
                history, history_elapsed = timed(
                    lambda: api.get(f"/projects/{pid}/history", as_=AUDITOR)
                )
                past, past_elapsed = timed(  # a past version: through the snapshots' recorder
                    lambda: api.get(f"/projects/{pid}", params={"version": 1})
                )

            body = unavailable(refused, "pool_exhausted")
            assert body["detail"].startswith(
                "no free connection to the event store within 2 s (pool of 1 busy)"
            ), body
            assert "nothing was recorded" in body["detail"]
            assert refused.headers["Retry-After"] == "1"
            assert 1.5 <= elapsed < 2 + SLACK, elapsed  # one wait, not the library's ten
            for read, read_elapsed in ((history, history_elapsed), (past, past_elapsed)):
                unavailable(read, "pool_exhausted")
                assert read_elapsed < 2 + SLACK, (read.request.url, read_elapsed)

            # released: the next command succeeds, and the refused one left no trace
            assert api.write(pid, "audit-notes", {"note": "连接释放后的审计意见"})["version"] == 3
            notes = api.view(pid)["audit_notes"]
            assert [n["note"] for n in notes] == ["池满前的审计意见", "连接释放后的审计意见"]
        assert stored_versions(schema) == [1, 2, 3]


# --- (b) a slow or locked database -----------------------------------------------------------
class Limits(NamedTuple):
    """The limits a test runs with, how PostgreSQL shows them, and the 503 they give."""

    env: dict[str, str]
    shown: tuple[str, str]  # statement_timeout, lock_timeout
    reason: str
    timeout: int  # seconds, as the problem's detail says


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param(
            Limits(
                {"POSTGRES_LOCK_TIMEOUT": "1", "POSTGRES_STATEMENT_TIMEOUT": "4"},
                ("4s", "1s"),
                "lock_timeout",
                1,
            ),
            id="lock-timeout",
        ),
        pytest.param(
            Limits(
                {"POSTGRES_LOCK_TIMEOUT": "0", "POSTGRES_STATEMENT_TIMEOUT": "2"},
                ("2s", "0"),
                "timeout",
                2,
            ),
            id="statement-timeout",
        ),
    ],
)
def test_a_locked_events_table_answers_503_within_the_timeout_and_records_nothing(
    tmp_path: Path, clock: Clock, limits: Limits
) -> None:
    reason, timeout = limits.reason, limits.timeout
    with pg.fresh_schema() as schema:
        with running(fail_fast_settings(tmp_path, schema, **limits.env), clock) as (api, store):
            assert session_limits(store) == limits.shown, NO_SESSION_LIMITS
            pid = api.register()["id"]
            with pg.connect() as locker, locker.transaction():
                locker.execute(
                    sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
                        sql.Identifier(schema, "ecocase_events")
                    )
                )
                refused, elapsed = timed(lambda: note(api, pid, "锁表时的审计意见"))
                history, history_elapsed = timed(
                    lambda: api.get(f"/projects/{pid}/history", as_=AUDITOR)
                )

            body = unavailable(refused, reason)
            assert body["detail"].startswith(
                f"the event store did not answer within {timeout} s"
            ), body
            assert "nothing was recorded" in body["detail"]
            assert timeout - 0.5 <= elapsed < timeout + SLACK, elapsed
            unavailable(history, reason)
            assert history_elapsed < timeout + SLACK, history_elapsed

            # unlocked: nothing of the refused write is stored, and writes work again
            assert api.view(pid)["version"] == 1
            assert [e["version"] for e in api.history(pid)] == [1]
            assert api.write(pid, "audit-notes", {"note": "解锁后的审计意见"})["version"] == 2
        assert stored_versions(schema) == [1, 2]


# --- (c) an unreachable database -------------------------------------------------------------
class Forwarder:
    """A TCP port of the test's own that forwards to PostgreSQL, so that the database can be
    made unreachable (the port closed, its connections cut) and reachable again on the same
    port while the app runs."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        """Closes the port and cuts every forwarded connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() of its thread
            listener.close()
        with self._lock:
            cut, self._sockets = self._sockets, []
        for s in cut:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def forwarder() -> Iterator[Forwarder]:
    forwarding = Forwarder(pg.HOST, int(pg.PORT))
    forwarding.open()
    try:
        yield forwarding
    finally:
        forwarding.close()


def test_an_unreachable_database_answers_503_in_seconds_and_writes_resume_when_it_is_back(
    tmp_path: Path, clock: Clock, forwarder: Forwarder
) -> None:
    with pg.fresh_schema() as schema:
        settings = fail_fast_settings(
            tmp_path,
            schema,
            POSTGRES_PORT=str(forwarder.port),
            POSTGRES_POOL_SIZE="1",  # one connection: the second request finds none to take
            POSTGRES_MAX_OVERFLOW="0",
        )
        with running(settings, clock) as (api, _):
            pid = api.register()["id"]
            forwarder.close()  # the database's port is closed, its connections cut

            # the pooled connection fails at once
            broken, broken_elapsed = timed(lambda: note(api, pid, "断开后的第一条"))
            body = unavailable(broken, "unreachable")
            assert body["detail"].startswith("the event store is unreachable"), body
            assert "nothing was recorded" not in body["detail"], "a broken commit is unknown"
            assert broken.headers["Retry-After"] == "5"
            assert broken_elapsed < SLACK, broken_elapsed

            # then no connection can be made: the pool's wait, and not "busy"
            for send in (
                lambda: note(api, pid, "断开后的第二条"),
                lambda: api.get(f"/projects/{pid}/history", as_=AUDITOR),
            ):
                refused, elapsed = timed(send)
                body = unavailable(refused, "unreachable")
                assert body["detail"].startswith(
                    "the event store is unreachable: no connection could be made within 2 s"
                ), body
                assert refused.headers["Retry-After"] == "5"
                assert elapsed < 2 + SLACK, elapsed

            forwarder.open()  # back, on the same port: the pool reconnects by itself
            deadline = time.monotonic() + 30
            while (resumed := note(api, pid, "恢复后的审计意见")).status_code != 201:
                unavailable(resumed, "unreachable")
                assert time.monotonic() < deadline, "writes did not resume within 30 s"
                time.sleep(0.2)
            assert resumed.json()["version"] == 2
            notes = api.view(pid)["audit_notes"]
            assert [n["note"] for n in notes] == ["恢复后的审计意见"], notes
        assert stored_versions(schema) == [1, 2]


def test_the_service_started_against_a_closed_port_gives_up_within_the_pool_wait(
    tmp_path: Path, clock: Clock
) -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    settings = fail_fast_settings(tmp_path, "public", POSTGRES_PORT=str(closed_port))
    started = time.monotonic()
    with pytest.raises(ExceptionGroup) as failed, running(settings, clock):  # the lifespan's
        pytest.fail("the service started without its database")
    assert time.monotonic() - started < 2 + SLACK
    assert failed.group_contains(OperationalError, match="couldn't get a connection after 2")
