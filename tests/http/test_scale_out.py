"""Scale-out on one machine: two ``ecocase serve`` processes on one PostgreSQL schema.

Each process caches the projects it has seen and learns of the other's writes through
PostgreSQL (NOTIFY, or the events read before a command); whatever a process has cached, a
conflicting write sent to each at the same moment has exactly one winner, and writes without
If-Match are never lost. Real subprocesses (granian, one worker each), as production runs
them: the API alone, without the embedded relay and worker.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests import pg
from tests.http.support import SECRET, XIHU_OFFICER, XIHU_SUPERVISOR, project_body, token_for

pytestmark = pytest.mark.postgres

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
ECOCASE = Path(sys.executable).parent / "ecocase"
ROUNDS = 20
#: Settings of the parent's that must not leak into the processes under test.
STRIPPED = ("POSTGRES_", "ECOCASE_", "GRANIAN_", "UVICORN_", "WEB_CONCURRENCY")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ApiProcess:
    """``ecocase serve --server granian --workers 1`` on a free port, in a session of its own
    (granian's worker is its child); its output goes to a log file."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        if not ECOCASE.exists():
            pytest.fail(f"the ecocase console script is missing at {ECOCASE}", pytrace=False)
        self.name = name
        self.port = free_port()
        self.log = log
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["serve", "--server", "granian", "--workers", "1", "--host", "127.0.0.1",
                "--port", str(self.port)]  # fmt: skip
        with log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own console script
                [str(ECOCASE), *args],
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def describe(self) -> str:
        state = "running" if self.process.poll() is None else f"exited {self.process.returncode}"
        output = self.log.read_text(encoding="utf-8", errors="replace")[-3000:]
        return f"--- {self.name} on port {self.port} ({state}):\n{output}"

    def wait_healthy(self, deadline: float) -> None:
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited before it was healthy\n{self.describe()}")
            try:
                answer = self.client.get("/health", timeout=2)
            except httpx.HTTPError as e:
                last = repr(e)
            else:
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:200]}"
            time.sleep(0.1)
        pytest.fail(f"{self.name} not healthy in time ({last})\n{self.describe()}")

    def stop(self) -> None:
        """SIGINT (granian's graceful shutdown, lifespan included), then SIGKILL to the
        process's own session if it is still there after 15 s."""
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)  # its session: ours only
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # granian's worker, should it outlive it
            os.killpg(self.process.pid, signal.SIGKILL)

    # --- requests, acting as an officer of the Xihu window ----------------------------------
    def post(
        self, path: str, json: object, *, if_match: int | None = None, as_: Any = XIHU_OFFICER
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token_for(as_)}"}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        return self.client.post(path, json=json, headers=headers)

    def view(self, project_id: str) -> dict[str, Any]:
        r = self.client.get(
            f"/projects/{project_id}",
            headers={"Authorization": f"Bearer {token_for(XIHU_OFFICER)}"},
        )
        assert r.status_code == 200, r.text
        view: dict[str, Any] = r.json()
        return view


def api_env(schema: str) -> dict[str, str]:
    """The parent's environment without settings of its own, plus the run's: PostgreSQL on
    ``schema``, the tests' secret, and the API alone (no embedded relay or worker)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED)}
    env.update(
        {
            "ECOCASE_STORE": "postgres",
            **{k: v for k, v in pg.postgres_env(schema).items() if k.startswith("POSTGRES_")},
            "ECOCASE_SECRET": SECRET,
            "ECOCASE_EMBEDDED_WORKERS": "no",
            "ECOCASE_LOG_FORMAT": "json",
            "ECOCASE_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def two_apis(tmp_path: Path) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    """Two API processes on one fresh schema, healthy; stopped (and the schema dropped) after."""
    with pg.fresh_schema() as schema:
        env = api_env(schema)
        started: list[ApiProcess] = []
        try:
            for name in ("api-a", "api-b"):
                started.append(ApiProcess(name, env, tmp_path / f"{name}.log"))
            deadline = time.monotonic() + 60
            for api in started:
                api.wait_healthy(deadline)
            yield started[0], started[1]
        finally:
            for api in started:
                api.stop()


def at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Runs every call in a thread of its own, released together by a barrier."""
    barrier = threading.Barrier(len(calls), timeout=30)

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def material_body(material: str) -> dict[str, str]:
    return {
        "material": material,
        "department": "市林水局",
        "reason": "other_department_permit",
        "promised_by": "2026-12-20",
    }


def converged(apis: Sequence[ApiProcess], project_id: str, version: int) -> list[dict[str, Any]]:
    """Each process's view of the project, once every one shows ``version`` (at most 2 s)."""
    deadline = time.monotonic() + 2
    while True:
        views = [api.view(project_id) for api in apis]
        if all(v["version"] == version for v in views) or time.monotonic() > deadline:
            return views
        time.sleep(0.05)


def test_a_conflicting_write_sent_to_each_api_process_has_exactly_one_winner(
    two_apis: tuple[ApiProcess, ApiProcess],
) -> None:
    a, b = two_apis
    registered = a.post("/projects", project_body())
    assert registered.status_code == 201, registered.text
    pid = registered.json()["id"]
    version = 1
    for n in range(ROUNDS):
        responses = at_once(
            [
                functools.partial(
                    api.post,
                    f"/projects/{pid}/audit-notes",
                    {"note": f"第{n + 1}轮-{api.name}"},
                    if_match=version,
                )
                for api in (a, b)
            ]
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 412], (n, [(r.status_code, r.text) for r in responses])
        (won,) = [r for r in responses if r.status_code == 201]
        (lost,) = [r for r in responses if r.status_code == 412]
        assert lost.headers["content-type"].startswith("application/problem+json")
        assert lost.json()["code"] == "version_mismatch", lost.text
        version += 1
        assert won.json()["version"] == version
        assert won.headers["ETag"] == f'"{version}"'

    assert version == 1 + ROUNDS
    views = converged((a, b), pid, version)
    assert [v["version"] for v in views] == [version, version]
    assert views[0] == views[1], "the two processes disagree on the project"
    assert len(views[0]["audit_notes"]) == ROUNDS


def test_writes_without_if_match_from_both_api_processes_at_once_are_never_lost(
    two_apis: tuple[ApiProcess, ApiProcess],
) -> None:
    a, b = two_apis
    registered = b.post("/projects", project_body())
    assert registered.status_code == 201, registered.text
    pid = registered.json()["id"]
    start = 1
    per_process, rounds = 3, 5
    sent: list[httpx.Response] = []
    for n in range(rounds):
        sent += at_once(
            [
                functools.partial(
                    api.post,
                    f"/projects/{pid}/deferred-materials",
                    material_body(f"材料-{n}-{api.name}-{k}"),
                    as_=XIHU_OFFICER if k % 2 else XIHU_SUPERVISOR,
                )
                for api in (a, b)
                for k in range(per_process)
            ]
        )

    assert [r.status_code for r in sent] == [201] * len(sent), [
        (r.status_code, r.text) for r in sent if r.status_code != 201
    ]
    expected = start + len(sent)
    assert sorted(r.json()["version"] for r in sent) == list(range(start + 1, expected + 1))
    views = converged((a, b), pid, expected)
    assert [v["version"] for v in views] == [expected, expected]
    assert views[0] == views[1], "the two processes disagree on the project"
    materials = sorted(m["material"] for m in views[0]["deferred_materials"])
    assert materials == sorted(
        f"材料-{n}-{api.name}-{k}"
        for n in range(rounds)
        for api in (a, b)
        for k in range(per_process)
    )
