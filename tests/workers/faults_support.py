"""Helpers of the fault tests: real processes, a Redis server of the test's own, a webhook
receiver and an SMTP sink on loopback, and a fresh PostgreSQL schema with a case in it.

Everything here is started by the test and stopped by it: the system Redis (shared with
tests running in parallel) is never touched, since each test runs its own ``redis-server``
on a free port, which it may kill and restart at will.
"""

from __future__ import annotations

import contextlib
import email
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import dramatiq
import psycopg
import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from application.audit import AuditTrail
from application.cases import Acting, Cases
from application.notifications import Notifications
from application.settings import Settings, load_settings
from application.sqldb import Database, open_database
from application.store import CaseStore
from domain.actor import Actor, Role
from domain.letters import FoundIn, IssueSpec, Severity
from domain.windows import Window
from tests import pg
from tests.conftest import CREDIT_CODE, Clock, register_major_project
from tests.http.support import SECRET  # the app's tokens are signed with it
from workers.dead_letters import QUEUES
from workers.relay import Relay
from workers.tracking import Tracking

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
ECOCASE = Path(sys.executable).parent / "ecocase"

WEBHOOK_SECRET = "ecocase-fault-webhook-secret-0123"
SENDER = "杭州市生态环境局 <noreply@hzeeb.example.cn>"
UNIT = f"unit:{CREDIT_CODE}"
OFFICER = Actor(sub="officer-xihu-01", name="王芳", role=Role.OFFICER, unit=Window.XIHU)
LETTER_ISSUES = (
    IssueSpec(Severity.KEY, FoundIn.EXPERT_REVIEW, "大气预测因子不全", "补充VOCs预测"),
    IssueSpec(Severity.GENERAL, FoundIn.SITE_INSPECTION, "围挡破损", "修复围挡"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(
    probe: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.1,
    details: Callable[[], str] | None = None,
) -> T:
    """Polls ``probe`` until it returns something truthy (returned) or ``timeout`` seconds pass
    (the test fails, saying what it waited for and, from ``details``, what it saw)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            seen = f"\n{details()}" if details is not None else ""
            pytest.fail(f"waited {timeout:.0f} s for {what}{seen}", pytrace=False)
        time.sleep(interval)


# --- Redis of the test's own ------------------------------------------------------------------
class RedisServer:
    """A ``redis-server`` subprocess on a free loopback port, without persistence: a restart
    comes back empty, as a crashed cache-only Redis would."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is required by the fault tests (never skipped) but is not on PATH",
                pytrace=False,
            )
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.started = False
        self.log = directory / f"redis-{self.port}.log"

    def start(self) -> None:
        """Starts the server and waits until it answers. The first start may move to another
        free port if this one was taken meanwhile (by a test running in parallel); a restart
        keeps its port, so that the clients' URL stays right."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            self._spawn()
            if self._answering():
                self.started = True
                return
            if self.started:
                break
            self.kill()
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
        log = self.log.read_text(errors="replace")[-2000:]
        pytest.fail(f"redis-server did not start on port {self.port}:\n{log}", pytrace=False)

    def _spawn(self) -> None:
        args = [
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.directory),
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
                [self.binary, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _answering(self, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return True
            if self.process is None or self.process.poll() is not None:
                return False  # exited: the port was taken
            time.sleep(0.05)
        return False

    def ping(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=1)

    def kill(self) -> None:
        """SIGKILL: the server is gone at once, with everything it held."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@contextlib.contextmanager
def own_redis(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.kill()


# --- processes under test ---------------------------------------------------------------------
class Proc:
    """One ``ecocase`` subprocess; its stdout and stderr go to a log file."""

    def __init__(self, command: Sequence[str], env: dict[str, str], log: Path) -> None:
        if not ECOCASE.exists():
            pytest.fail(f"the ecocase console script is missing at {ECOCASE}", pytrace=False)
        self.command = list(command)
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own console script
                [str(ECOCASE), *command],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.process.pid

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
        return self.process.wait(timeout=10)

    def describe(self, tail: int = 3000) -> str:
        state = "running" if self.alive() else f"exited {self.process.returncode}"
        title = f"--- ecocase {' '.join(self.command)} (pid {self.pid}, {state}):"
        return f"{title}\n{self.output()[-tail:]}"


class Procs:
    """Starts ``ecocase`` subprocesses for one test and kills whatever is left at the end."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory = directory
        self.env = env
        self.started: list[Proc] = []

    def start(self, *command: str, **extra_env: str) -> Proc:
        log = self.directory / f"{'-'.join(command)}-{len(self.started)}.log"
        proc = Proc(command, {**self.env, **extra_env}, log)
        self.started.append(proc)
        return proc

    def run(self, *command: str, timeout: float = 30, **extra_env: str) -> str:
        """Runs a short command to its end; its output (the test fails if it fails)."""
        done = subprocess.run(  # noqa: S603 - our own console script
            [str(ECOCASE), *command],
            env={**self.env, **extra_env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"ecocase {' '.join(command)}: {done.stderr}{done.stdout}"
        return done.stdout

    def describe(self) -> str:
        return "\n".join(p.describe() for p in self.started)

    def kill_all(self) -> None:
        for proc in reversed(self.started):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                proc.kill()


# --- the webhook receiver ---------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    """One request the receiver got, and how it answered."""

    key: str
    path: str
    body: bytes
    signed: bool  # the signature checked out
    status: int


@dataclass
class _Plan:
    fail: int = 0  # answer 500 to this many requests first
    sleep_s: float = 0.0  # then sleep this long before answering ...
    sleeps: int = 0  # ... this many requests


class Receiver:
    """A webhook receiver on loopback (``http.server`` in a thread). It records every request
    when it arrives, then answers 500 to the first ``fail`` requests (:meth:`fail`), sleeps
    before answering (:meth:`sleep`), else 200."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.arrived: list[str] = []  # keys, as requests arrive (before any answer)
        self.arrived_at: list[tuple[str, float]] = []  # (key, time.monotonic())
        self.in_flight = threading.Event()  # set when a request starts its sleep
        self._plan = _Plan()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.handle(self)

            def log_message(self, *_: Any) -> None:  # quiet: the test reads self.deliveries
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, name="webhook-receiver"
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def fail(self, times: int) -> None:
        with self._lock:
            self._plan.fail = times

    def sleep(self, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._plan.sleep_s, self._plan.sleeps = seconds, times

    def heal(self) -> None:
        with self._lock:
            self._plan = _Plan()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length)
        key = request.headers.get("X-Ecocase-Delivery") or ""
        timestamp = request.headers.get("X-Ecocase-Timestamp") or ""
        expected = (
            "sha256="
            + hmac.new(
                WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
            ).hexdigest()
        )
        signed = hmac.compare_digest(expected, request.headers.get("X-Ecocase-Signature") or "")
        with self._lock:
            self.arrived.append(key)
            self.arrived_at.append((key, time.monotonic()))
            status, sleep_s = 200, 0.0
            if self._plan.fail > 0:
                self._plan.fail -= 1
                status = 500
            elif self._plan.sleeps > 0:
                self._plan.sleeps -= 1
                sleep_s = self._plan.sleep_s
        if sleep_s:
            self.in_flight.set()
            time.sleep(sleep_s)
        with self._lock:
            self.deliveries.append(Delivery(key, request.path, body, signed, status))
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", "2")
            request.end_headers()
            request.wfile.write(b"{}")
        except OSError:  # the sender died while we slept
            return

    def count(self, key: str, status: int | None = None) -> int:
        with self._lock:
            return sum(
                1
                for d in self.deliveries
                if d.key == key and (status is None or d.status == status)
            )

    def arrivals(self, key: str) -> int:
        with self._lock:
            return self.arrived.count(key)

    def arrival_time(self, key: str, nth: int) -> float:
        """When the ``nth`` (1-based) request for ``key`` arrived (``time.monotonic()``)."""
        with self._lock:
            times = [at for k, at in self.arrived_at if k == key]
        assert len(times) >= nth, f"{key} arrived {len(times)} times, not {nth}"
        return times[nth - 1]


# --- the SMTP sink ----------------------------------------------------------------------------
@dataclass
class Mailbox:
    """An aiosmtpd handler that accepts every message and keeps its envelope."""

    received: list[Envelope] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def count(self, key: str) -> int:
        """How many e-mails of a notification arrived (by their X-Ecocase-Delivery header)."""
        found = 0
        for envelope in list(self.received):
            content = envelope.original_content or envelope.content
            if isinstance(content, bytes):
                found += email.message_from_bytes(content).get("X-Ecocase-Delivery") == key
        return found


@contextlib.contextmanager
def smtp_sink() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


# --- the system under test --------------------------------------------------------------------
@dataclass(frozen=True)
class Letter:
    project_id: UUID
    letter_id: str


class Rig:
    """One test's world: a fresh schema, its own Redis, a receiver, an SMTP sink, the store and
    the workers' database opened in the test process, and the ``ecocase`` processes."""

    def __init__(
        self,
        *,
        schema: str,
        directory: Path,
        redis_server: RedisServer,
        receiver: Receiver,
        mailbox: Mailbox,
        smtp_port: int,
    ) -> None:
        self.schema = schema
        self.redis = redis_server
        self.receiver = receiver
        self.mailbox = mailbox
        self.env: dict[str, str] = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(directory)),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
            "ECOCASE_STORE": "postgres",
            **{k: v for k, v in pg.postgres_env(schema).items() if k.startswith("POSTGRES_")},
            "ECOCASE_REDIS_URL": redis_server.url,
            "ECOCASE_SECRET": SECRET,
            "ECOCASE_DATA_DIR": str(directory / "data"),
            "ECOCASE_LOG_FORMAT": "json",
            "ECOCASE_WEBHOOK_ZHELIBAN_URL": f"{receiver.url}/zheliban",
            "ECOCASE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "ECOCASE_SMTP_HOST": "127.0.0.1",
            "ECOCASE_SMTP_PORT": str(smtp_port),
            "ECOCASE_SMTP_FROM": SENDER,
            "ECOCASE_RETRY_SCALE": "0.01",
        }
        self.settings: Settings = load_settings(self.env)
        self.procs = Procs(directory, self.env)
        self.store = CaseStore(env=self.settings.store_env())
        self.db: Database = open_database(self.settings.store_env())
        # The workers' tables, created before any process looks for them.
        AuditTrail(self.db)
        Notifications(self.db)
        Tracking(self.db)
        self.relay = Relay.observer(self.store, self.db)
        self.clock = Clock()
        self.cases = Cases(self.store, clock=self.clock)
        self.acting = Acting(OFFICER, "req-fault-tests")

    def close(self) -> None:
        self.procs.kill_all()
        self.db.close()
        self.store.close()

    # --- writing -------------------------------------------------------------------------
    def letter(self, project_code: str) -> Letter:
        """Registers a major project whose unit has a contact e-mail and issues it a reminder
        letter: 2 events; the letter calls for a unit e-mail, a 浙里办 webhook and the
        supervisor's inbox, the registration for the supervisor's inbox."""
        project = register_major_project(self.cases, self.acting, project_code)
        _, letter_id = self.cases.issue_reminder_letter(
            self.acting,
            project.id,
            letter_no=f"杭环温提〔2026〕{project_code[-3:]}号",
            deadline=date(2026, 12, 31),
            issues=LETTER_ISSUES,
        )
        return Letter(project.id, letter_id)

    # --- reading -------------------------------------------------------------------------
    def head(self) -> int:
        return self.store.recorder.max_notification_id() or 0

    def audited(self) -> list[int]:
        rows = self.db.query("SELECT notification_id FROM audit_trail ORDER BY notification_id")
        return [int(r[0]) for r in rows]

    def notifications(self) -> list[tuple[str, str, str, int]]:
        """(key, channel, state, attempts) of every stored notification."""
        rows = self.db.query("SELECT key, channel, state, attempts FROM notifications ORDER BY key")
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]

    def notification(self, key: str) -> tuple[str, int] | None:
        rows = self.db.query("SELECT state, attempts FROM notifications WHERE key = %s", (key,))
        return (str(rows[0][0]), int(rows[0][1])) if rows else None

    def webhook_key(self, notification_id: int) -> str:
        return f"{notification_id}:{UNIT}:webhook"

    def email_key(self, notification_id: int) -> str:
        return f"{notification_id}:{UNIT}:email"

    def queued(self, queue: str) -> int:
        """Messages waiting on a queue of the test's Redis (dramatiq's ``<ns>:<queue>`` list)."""
        client: Any = self.redis.client()  # redis-py types replies as unions of protocols
        try:
            return int(client.llen(f"ecocase:{queue}"))
        finally:
            client.close()

    def broker_idle(self, except_queue: str | None = None) -> bool:
        """No message on the test's Redis: none queued, delayed or unacknowledged (dramatiq
        keeps each message in ``<ns>:<queue>.msgs`` until it is acknowledged)."""
        client: Any = self.redis.client()
        try:
            queues = [q for q in QUEUES if q != except_queue]
            keys = [f"ecocase:{q}{dq}.msgs" for q in queues for dq in ("", ".DQ")]
            return all(int(client.hlen(k)) == 0 for k in keys)
        finally:
            client.close()

    def dead_letters(self, queue: str) -> list[str]:
        """The ids of the messages in a queue's dead letters: the ZSET ``<ns>:<queue>.XQ`` of
        Redis ids, and the HASH ``.XQ.msgs`` of the messages (which carry dramatiq's ids)."""
        client: Any = self.redis.client()
        try:
            found = []
            for redis_id in client.zrange(f"ecocase:{queue}.XQ", 0, -1):
                data = client.hget(f"ecocase:{queue}.XQ.msgs", redis_id)
                assert isinstance(data, bytes), f"dead letter {redis_id!r} has no message"
                found.append(dramatiq.Message.decode(data).message_id)
            return found
        finally:
            client.close()

    def attempts(self, message_id: str) -> int:
        """How often the workers tried a message (``message_attempts``)."""
        rows = self.db.query(
            "SELECT attempts FROM message_attempts WHERE message_id = %s", (message_id,)
        )
        return int(rows[0][0]) if rows else 0

    def describe(self) -> str:
        try:
            state = (
                f"head={self.head()} relay position={self.relay.position()} "
                f"audited={len(self.audited())} notifications={self.notifications()}"
            )
        except (psycopg.Error, OSError) as e:
            state = f"(state unreadable: {e})"
        answers = [(d.key, d.status) for d in self.receiver.deliveries]
        return f"{state}\nreceiver answered: {answers}\n{self.procs.describe()}"


@contextlib.contextmanager
def rig(directory: Path) -> Iterator[Rig]:
    """A fresh schema, a Redis, a receiver and an SMTP sink of this test only, all removed at
    the end (processes first, so that nothing holds the schema when it is dropped)."""
    with (
        pg.fresh_schema() as schema,
        own_redis(directory / "redis") as redis_server,
        smtp_sink() as (mailbox, smtp_port),
    ):
        receiver = Receiver()
        receiver.start()
        try:
            world = Rig(
                schema=schema,
                directory=directory,
                redis_server=redis_server,
                receiver=receiver,
                mailbox=mailbox,
                smtp_port=smtp_port,
            )
            try:
                yield world
            finally:
                world.close()
        finally:
            receiver.close()
