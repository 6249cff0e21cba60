"""The processes under test, in their production shape: ``ecocase serve`` (the API, without
the embedded relay and worker), ``ecocase relay`` and ``ecocase worker``, each a subprocess of
the project's venv with exactly the environment of the run and its output in a log file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from bench.baseline import PgTarget
from bench.http_load import Answer, Connection, HttpError
from bench.stats import Memory, alive, cpu_seconds, descendants, memory, tree_cpu_seconds

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_STRIPPED_PREFIXES = ("POSTGRES_", "ECOCASE_", "GRANIAN_", "UVICORN_", "WEB_CONCURRENCY")


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def ecocase_executable() -> str:
    """``ecocase`` beside the running interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / "ecocase"
    if candidate.exists():
        return str(candidate)
    return str(PROJECT_ROOT / ".venv" / "bin" / "ecocase")


def server_env(
    target: PgTarget, schema: str, secret: str, redis_url: str | None = None
) -> dict[str, str]:
    """The parent's environment without any ecocase/PostgreSQL/server settings of its own,
    plus exactly the settings of this run: PostgreSQL with the service's defaults (pool sizes,
    no database functions), the run's Redis, and ``ECOCASE_EMBEDDED_WORKERS=no``, so that
    ``ecocase serve`` is the API alone, as in production (the relay and the workers are
    processes of their own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_PREFIXES)}
    env.update(
        ECOCASE_STORE="postgres",
        POSTGRES_DBNAME=target.dbname,
        POSTGRES_HOST=target.host,
        POSTGRES_PORT=str(target.port),
        POSTGRES_USER=target.user,
        POSTGRES_PASSWORD=target.password,
        POSTGRES_SCHEMA=schema,
        ECOCASE_SECRET=secret,
        ECOCASE_LOG_LEVEL="WARNING",
        ECOCASE_LOG_FORMAT="console",
        ECOCASE_REDIS_URL=redis_url or "",
        ECOCASE_EMBEDDED_WORKERS="no",
        PYTHONUNBUFFERED="1",
    )
    return env


class Process:
    """One ``ecocase <args>`` subprocess; its output goes to a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name, self.args, self.env, self.log_path = name, args, env, log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.stop_signal = signal.SIGTERM

    @property
    def command(self) -> list[str]:
        return [ecocase_executable(), *self.args]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own venv's console script
            self.command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def check(self) -> None:
        """Raises (with the log's tail) if the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            msg = f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            raise RuntimeError(msg)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid) if self.process is not None else 0.0

    def wait_for_log(self, needle: str, timeout: float) -> bool:
        """Waits until the log has a line with ``needle`` (e.g. "worker started", logged at
        INFO); False when the time runs out. Raises if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            try:
                if needle in self.log_path.read_text(errors="replace"):
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def memories(self) -> list[Memory]:
        """VmRSS/VmHWM of the process and of each of its live descendants."""
        if self.process is None:
            return []
        found = [memory(p) for p in (self.pid, *descendants(self.pid))]
        return [m for m in found if m is not None]

    def stop(self, timeout: float = 15.0) -> None:
        """The stop signal (graceful shutdown), then SIGKILL; then any descendant left behind
        (granian's worker), by pid."""
        process, self.process = self.process, None
        try:
            if process is not None and process.poll() is None:
                children = descendants(process.pid)
                process.send_signal(self.stop_signal)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=timeout)
                _end_leftovers(children, timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


def _end_leftovers(pids: list[int], timeout: float) -> None:
    """Processes of ours that outlived their parent: SIGKILL, by pid."""
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in pids:
        if alive(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)


class Server(Process):
    """``ecocase serve --server KIND --workers 1`` on a free port."""

    def __init__(
        self, kind: str, host: str, env: dict[str, str], log_path: Path, name: str = ""
    ) -> None:
        self.kind, self.host = kind, host
        self.port = free_port(host)
        args = ["serve", "--host", host, "--port", str(self.port), "--workers", "1",
                "--server", kind]  # fmt: skip
        super().__init__(name or f"ecocase serve --server {kind}", args, env, log_path)
        self.stop_signal = signal.SIGINT  # graceful shutdown of either server, lifespan too
        self.identified_as: str | None = None  # the Server header it answers with

    async def wait_healthy(self, timeout: float = 90.0) -> Answer:
        """Polls GET /health until it answers 200; raises with the log tail if the process
        exits or the time runs out."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            self.check()
            conn = Connection(self.host, self.port, None)
            try:
                answer = await conn.request("GET", "/health", auth=False)
            except (OSError, HttpError, asyncio.IncompleteReadError) as e:
                last = repr(e)
            else:
                if answer.status == 200:
                    self.identified_as = answer.headers.get("server", "(no Server header)")
                    return answer
                last = f"{answer.status} {answer.body[:200]!r}"
            finally:
                await conn.close()
            await asyncio.sleep(0.1)
        msg = f"{self.name} not healthy after {timeout:.0f}s ({last}):\n{self.log_tail()}"
        raise RuntimeError(msg)

    def serving_memory(self) -> Memory | None:
        """The process that serves the requests: granian's worker (the descendant that used
        the most CPU), or the process itself when it has no children (uvicorn, 1 worker)."""
        if self.process is None:
            return None
        kids = descendants(self.pid)
        if not kids:
            return memory(self.pid)
        busiest = max(kids, key=cpu_seconds)
        return memory(busiest)


class FloorServer(Server):
    """``python -m bench.floor_app`` (the framework floor: the service's HTTP stack with no
    store behind it) on a free port, served as ``ecocase serve --server granian --workers 1``
    serves the real app, with the run's environment (its secret, its log settings, its
    PostgreSQL). With ``schema`` it does the least database work of each request in the
    tables of that schema (``bench/floor_db.py``)."""

    def __init__(
        self, host: str, env: dict[str, str], log_path: Path, *, body_bytes: int,
        schema: str | None = None, name: str = "framework floor",
    ) -> None:  # fmt: skip
        super().__init__("granian", host, env, log_path, name=name)
        self.args = ["--host", host, "--port", str(self.port), "--body-bytes", str(body_bytes)]
        if schema is not None:
            self.args += ["--schema", schema]

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.floor_app", *self.args]
