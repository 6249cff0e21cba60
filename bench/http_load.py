"""A cheap closed-loop HTTP/1.1 load client on asyncio streams.

Each simulated client holds one keep-alive connection and sends its next request as soon as
the previous answer is in. Requests are written by hand and answers parsed only as far as the
status line, the headers and a Content-Length (or chunked) body: a few microseconds of client
CPU per request, so that the client takes little of the two cores from the server. The client's
own CPU time is measured for every phase (``client_cpu_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.stats import (
    Latency,
    cpu_delta,
    descendants,
    machine_busy_seconds,
    postgres_cpu,
    tree_cpu_seconds,
)

#: (client number, the client's request number, the phase's request number) → request
RequestFactory = Callable[[int, int, int], tuple[str, str, bytes | None]]
MAX_HEADER_BYTES = 64 * 1024
MAX_CHUNKS = 100_000
NOISE_LIMIT = 0.15  # other processes' CPU, in cores, above which a phase is marked noisy


class HttpError(Exception):
    """The server's answer could not be read as HTTP/1.1."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after the server closes it."""

    def __init__(self, host: str, port: int, token: str | None) -> None:
        self.host, self.port = host, port
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._fixed = f"Host: {host}:{port}\r\n{auth}".encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, limit=MAX_HEADER_BYTES
        )

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def request(
        self, method: str, path: str, body: bytes | None = None, *, auth: bool = True
    ) -> Answer:
        if self._writer is None or self._reader is None:
            await self.open()
        reader, writer = self._reader, self._writer
        assert reader is not None
        assert writer is not None
        head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1")
        fixed = self._fixed if auth else self._fixed.split(b"\r\n", 1)[0] + b"\r\n"
        if body is None:
            writer.write(head + fixed + b"\r\n")
        else:
            length = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            writer.write(head + fixed + length.encode("latin-1") + body)
        if writer.transport.get_write_buffer_size() > 65536:
            await writer.drain()
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            await self.close()
            raise HttpError(f"no complete response head: {e!r}") from e
        lines = raw[:-4].split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1.") or len(status_line) < 12:
            await self.close()
            raise HttpError(f"bad status line {status_line[:80]!r}")
        status = int(status_line[9:12])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        length_header = headers.get("content-length")
        if length_header is not None:
            data = await reader.readexactly(int(length_header))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            data = await self._chunked(reader)
        elif status in (204, 304) or method == "HEAD":
            data = b""
        else:
            await self.close()
            raise HttpError("response without Content-Length or chunked framing")
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Answer(status, headers, data)

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        for _ in range(MAX_CHUNKS):
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        raise HttpError("too many chunks")


@dataclass
class LoadResult:
    name: str
    clients: int
    requests: int  # answered with an expected status
    errors: int  # unexpected status or broken connection
    seconds: float
    rate: float  # expected answers per second
    latency: Latency
    statuses: dict[int, int]
    client_cpu_s: float
    server_cpu_s: float
    postgres_cpu_s: float | None
    machine_cpu_s: float | None  # every process on the machine, ours included
    bytes_received: int
    error_samples: list[str] = field(default_factory=list)

    @property
    def client_cpu_share(self) -> float:
        """The client's CPU per wall second (1.0 = one core)."""
        return self.client_cpu_s / self.seconds if self.seconds else 0.0

    @property
    def other_cpu_s(self) -> float | None:
        """CPU the machine spent outside the client, the server and PostgreSQL: noise."""
        if self.machine_cpu_s is None:
            return None
        ours = self.client_cpu_s + self.server_cpu_s + (self.postgres_cpu_s or 0.0)
        return max(0.0, self.machine_cpu_s - ours)

    @property
    def other_share(self) -> float:
        """The other processes' CPU per wall second."""
        other = self.other_cpu_s
        return other / self.seconds if other is not None and self.seconds else 0.0

    @property
    def noisy(self) -> bool:
        """Something else took more than 15% of a core during the phase."""
        return self.other_share > NOISE_LIMIT

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["client_cpu_share"] = self.client_cpu_share
        data["noisy"] = self.noisy
        data["other_cpu_s"] = self.other_cpu_s
        return data


async def open_connections(host: str, port: int, token: str | None, n: int) -> list[Connection]:
    conns = [Connection(host, port, token) for _ in range(n)]
    await asyncio.gather(*(c.open() for c in conns))
    return conns


async def run_load(
    name: str,
    *,
    host: str,
    port: int,
    token: str | None,
    clients: int,
    seconds: float,
    factory: RequestFactory,
    expect: frozenset[int],
    server_pid: int,
    max_requests: int = 500_000,
) -> LoadResult:
    """``clients`` closed-loop clients for ``seconds`` (or ``max_requests`` in all)."""
    conns = await open_connections(host, port, token, clients)
    samples: list[list[int]] = [[] for _ in range(clients)]
    statuses: dict[int, int] = {}
    errors: list[str] = []
    counters = {"issued": 0, "errors": 0, "bytes": 0}
    loop = asyncio.get_running_loop()
    deadline = 0.0

    async def client(i: int) -> None:
        conn, lat = conns[i], samples[i]
        for seq in range(max_requests):
            if counters["issued"] >= max_requests or loop.time() >= deadline:
                return
            number = counters["issued"]
            counters["issued"] += 1
            method, path, body = factory(i, seq, number)
            t0 = time.perf_counter_ns()
            try:
                answer = await conn.request(method, path, body)
            except (HttpError, OSError, asyncio.IncompleteReadError) as e:
                counters["errors"] += 1
                if len(errors) < 5:
                    errors.append(f"{method} {path}: {e!r}")
                await conn.close()
                continue
            t1 = time.perf_counter_ns()
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
            counters["bytes"] += len(answer.body)
            if answer.status in expect:
                lat.append(t1 - t0)
            else:
                counters["errors"] += 1
                if len(errors) < 5:
                    errors.append(f"{method} {path}: {answer.status} {answer.body[:300]!r}")

    server_tree = [server_pid, *descendants(server_pid)]
    cpu0, server0 = time.process_time(), tree_cpu_seconds(server_pid)
    pg0 = postgres_cpu(server_tree)
    machine0 = machine_busy_seconds()
    started = time.perf_counter()
    deadline = loop.time() + seconds
    try:
        await asyncio.wait_for(
            asyncio.gather(*(client(i) for i in range(clients))), timeout=seconds + 60
        )
    finally:
        wall = time.perf_counter() - started
        cpu1, server1, pg1 = (
            time.process_time(),
            tree_cpu_seconds(server_pid),
            postgres_cpu([server_pid, *descendants(server_pid)]),
        )
        machine1 = machine_busy_seconds()
        await asyncio.gather(*(c.close() for c in conns))
    ok = sum(len(s) for s in samples)
    return LoadResult(
        name=name,
        clients=clients,
        requests=ok,
        errors=counters["errors"],
        seconds=wall,
        rate=ok / wall if wall else 0.0,
        latency=Latency.of(x for s in samples for x in s),
        statuses=dict(sorted(statuses.items())),
        client_cpu_s=cpu1 - cpu0,
        server_cpu_s=server1 - server0,
        postgres_cpu_s=cpu_delta(pg0, pg1),
        machine_cpu_s=None if machine0 is None or machine1 is None else machine1 - machine0,
        bytes_received=counters["bytes"],
        error_samples=errors,
    )
