"""The service under test: ``ecocase serve`` as a subprocess on a fresh PostgreSQL schema."""

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
from bench.stats import alive, descendants, tree_cpu_seconds

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


def server_env(target: PgTarget, schema: str, secret: str) -> dict[str, str]:
    """The parent's environment without any ecocase/PostgreSQL/server settings of its own,
    plus exactly the settings of this run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_PREFIXES)}
    env.update(
        ECOCASE_STORE="postgres",
        POSTGRES_DBNAME=target.dbname,
        POSTGRES_HOST=target.host,
        POSTGRES_PORT=str(target.port),
        POSTGRES_USER=target.user,
        POSTGRES_PASSWORD=target.password,
        POSTGRES_SCHEMA=schema,
        POSTGRES_ENABLE_DB_FUNCTIONS="n",
        ECOCASE_SECRET=secret,
        ECOCASE_LOG_LEVEL="WARNING",
        ECOCASE_REDIS_URL="",
        PYTHONUNBUFFERED="1",
    )
    return env


class Server:
    """One ``ecocase serve --server KIND --workers 1`` process; its output goes to a log file."""

    def __init__(self, kind: str, host: str, env: dict[str, str], log_path: Path) -> None:
        self.kind, self.host, self.env, self.log_path = kind, host, env, log_path
        self.port = free_port(host)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.identified_as: str | None = None  # the Server header it answers with

    @property
    def command(self) -> list[str]:
        return [
            ecocase_executable(),
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--server",
            self.kind,
        ]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own venv's console script
            self.command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def wait_healthy(self, timeout: float = 60.0) -> Answer:
        """Poll GET /health until it answers 200; raise with the log tail if the process
        exits or the time runs out."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                msg = (
                    f"ecocase serve --server {self.kind} exited with {self.process.returncode}:"
                    f"\n{self.log_tail()}"
                )
                raise RuntimeError(msg)
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
        msg = f"{self.kind} not healthy after {timeout:.0f}s ({last}):\n{self.log_tail()}"
        raise RuntimeError(msg)

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid) if self.process is not None else 0.0

    def stop(self, timeout: float = 15.0) -> None:
        """SIGINT (graceful shutdown of either server, lifespan included), then SIGKILL."""
        process, self.process = self.process, None
        try:
            if process is not None and process.poll() is None:
                workers = descendants(process.pid)  # granian's worker processes
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=timeout)
                self._end_leftovers(workers, timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    @staticmethod
    def _end_leftovers(pids: list[int], timeout: float) -> None:
        """Workers of ours that outlived their server process: SIGKILL, by pid."""
        deadline = time.monotonic() + timeout
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        for p in pids:
            if alive(p):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
