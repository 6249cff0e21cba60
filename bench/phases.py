"""The HTTP phases: what the clients ask for, and a closed-loop phase against one server or
split over several.

A command is ``POST /projects/{id}/deferred-materials`` (exactly one ``MaterialDeferred``
event). Client *c* of *n* writes to projects *c*, *c+n*, *c+2n*, … of its list, so two clients
never write to the same project at once (no optimistic-concurrency retries) and the projects
of a phase get about the same number of events. A read is ``GET /projects/{id}``, client *c*
reading *c*, *c+n*, … of a long list, so the reads are spread over many projects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar

import msgspec

from bench.http_load import LoadResult, RequestFactory, run_load
from bench.server import Server

WINDOW = "xihu"
OK, CREATED = frozenset({200}), frozenset({201})
T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop  # noqa: PLC0415 - optional, a cheaper client loop when present
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def officer_token(secret: str) -> str:
    """A bearer token of an officer of window xihu, signed with the run's secret."""
    from domain.actor import Role  # noqa: PLC0415 - the service's code, only when needed
    from domain.windows import Window  # noqa: PLC0415
    from interfaces.auth import issue_token  # noqa: PLC0415

    return issue_token(secret, sub="bench-officer", name="基准测试员", role=Role.OFFICER,
                       unit=Window(WINDOW), hours=4)  # fmt: skip


def commands(ids: Sequence[str], clients: int) -> RequestFactory:
    promised_by = (date.today() + timedelta(days=365)).isoformat()
    encode = msgspec.json.encode

    def make(client: int, seq: int, number: int) -> tuple[str, str, bytes | None]:
        project = ids[(client + clients * seq) % len(ids)]
        body = encode({"material": f"排污许可证申请材料 {number}",
                       "department": "杭州市生态环境局", "reason": "other_department_permit",
                       "promised_by": promised_by})  # fmt: skip
        return "POST", f"/projects/{project}/deferred-materials", body

    return make


def reads(ids: Sequence[str], clients: int) -> RequestFactory:
    def make(client: int, seq: int, number: int) -> tuple[str, str, bytes | None]:  # noqa: ARG001
        return "GET", f"/projects/{ids[(client + clients * seq) % len(ids)]}", None

    return make


def fixed(method: str, path: str) -> RequestFactory:
    def make(client: int, seq: int, number: int) -> tuple[str, str, bytes | None]:  # noqa: ARG001
        return method, path, None

    return make


async def phase(
    server: Server, token: str, name: str, *, clients: int, seconds: float,
    factory: RequestFactory, expect: frozenset[int], max_requests: int = 500_000,
) -> LoadResult:  # fmt: skip
    return await run_load(name, host=server.host, port=server.port, token=token,
                          clients=clients, seconds=seconds, factory=factory, expect=expect,
                          server_pid=server.pid, max_requests=max_requests)  # fmt: skip


@dataclass(frozen=True)
class Split:
    """One phase run on several servers at once, the clients and projects shared out."""

    parts: list[LoadResult]

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.parts)

    @property
    def errors(self) -> int:
        return sum(p.errors for p in self.parts)

    @property
    def seconds(self) -> float:
        return max((p.seconds for p in self.parts), default=0.0)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_cpu_s(self) -> float:
        return sum(p.server_cpu_s for p in self.parts)

    @property
    def server_us_per_request(self) -> float | None:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else None

    def combined(self, name: str) -> LoadResult:
        """The parts as one phase, for the CPU table: the servers' CPU added up, the client's
        (one process, the same window) and the machine's taken once, so that "other" leaves
        every server out."""
        parts = self.parts
        pg = [p.postgres_cpu_s for p in parts]
        machine = [p.machine_cpu_s for p in parts]
        statuses: dict[int, int] = {}
        for p in parts:
            for status, n in p.statuses.items():
                statuses[status] = statuses.get(status, 0) + n
        return LoadResult(
            name=name, clients=sum(p.clients for p in parts), requests=self.requests,
            errors=self.errors, seconds=self.seconds, rate=self.rate,
            latency=max((p.latency for p in parts), key=lambda x: x.p50_ms),
            statuses=statuses, client_cpu_s=max(p.client_cpu_s for p in parts),
            server_cpu_s=self.server_cpu_s,
            postgres_cpu_s=None if None in pg else sum(x or 0.0 for x in pg),
            machine_cpu_s=None if None in machine else max(x or 0.0 for x in machine),
            bytes_received=sum(p.bytes_received for p in parts),
        )  # fmt: skip


async def split_commands(
    servers: Sequence[Server], token: str, ids: Sequence[str], clients: int, seconds: float
) -> Split:
    """``clients`` command clients shared out over the servers, each server's clients on
    projects of their own (project *i* goes to server *i mod n*)."""
    n = len(servers)
    share = [clients // n + (1 if i < clients % n else 0) for i in range(n)]
    parts = await asyncio.gather(*(
        phase(s, token, f"commands, {share[i]} clients on API {i + 1}", clients=share[i],
              seconds=seconds, factory=commands(ids[i::n], share[i]), expect=CREATED)
        for i, s in enumerate(servers)
    ))  # fmt: skip
    return Split(list(parts))
