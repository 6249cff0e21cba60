"""Latency percentiles and CPU accounting from /proc (Linux)."""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_MAX_PROCESSES = 10_000  # bound on the /proc walks


def percentile(sorted_ns: Sequence[int], p: float) -> float:
    """Nearest-rank percentile of sorted nanosecond samples, in milliseconds (0 if empty)."""
    if not sorted_ns:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_ns)))
    return sorted_ns[min(rank, len(sorted_ns)) - 1] / 1e6


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of(cls, samples_ns: Iterable[int]) -> Latency:
        ordered = sorted(samples_ns)
        mean = sum(ordered) / len(ordered) / 1e6 if ordered else 0.0
        return cls(
            p50_ms=percentile(ordered, 50),
            p90_ms=percentile(ordered, 90),
            p99_ms=percentile(ordered, 99),
            max_ms=ordered[-1] / 1e6 if ordered else 0.0,
            mean_ms=mean,
        )


def _stat(pid: int) -> tuple[str, float] | None:
    """(comm, user+system CPU seconds) of a process, None if it is gone or unreadable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    left, right = raw.find("("), raw.rfind(")")
    if left < 0 or right < 0:
        return None
    fields = raw[right + 2 :].split()
    # fields[0] is field 3 (state) of proc(5): utime is field 14, stime field 15.
    return raw[left + 1 : right], (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return kids
    for task in tasks[:_MAX_PROCESSES]:
        try:
            kids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def descendants(pid: int) -> list[int]:
    """The live descendants of a process (granian's worker processes)."""
    found: list[int] = []
    todo = _children(pid)
    while todo and len(found) < _MAX_PROCESSES:
        current = todo.pop()
        if current in found or current == pid:
            continue
        found.append(current)
        todo += _children(current)
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return raw[raw.rfind(")") + 2 :].split(" ", 1)[0] != "Z"


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and its live descendants (granian's worker)."""
    total, seen, todo = 0.0, set[int](), [pid]
    while todo and len(seen) < _MAX_PROCESSES:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        stat = _stat(current)
        if stat is not None:
            total += stat[1]
        todo += _children(current)
    return total


_CLIENT_PORT = re.compile(rb"\d\)?\((\d{1,5})\)")  # "127.0.0.1(54321)" in a backend's title


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        fds = list(os.scandir(f"/proc/{pid}/fd"))
    except OSError:
        return inodes
    for fd in fds[:_MAX_PROCESSES]:
        try:
            target = os.readlink(fd.path)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def local_tcp_ports(pids: Iterable[int]) -> set[int]:
    """The local ports of the TCP sockets that these processes hold."""
    inodes: set[int] = set()
    for pid in pids:
        inodes |= _socket_inodes(pid)
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and int(fields[9]) in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def postgres_cpu(client_pids: Iterable[int]) -> dict[int, float] | None:
    """CPU seconds so far of the PostgreSQL processes that work for these clients: the
    backends of their connections (matched by the client port in the backend's title) and
    the shared background processes (WAL writer, checkpointer, …). Backends of other
    clients on the machine are left out. None when /proc shows no PostgreSQL."""
    ports = local_tcp_ports(client_pids)
    found: dict[int, float] = {}
    seen_postgres = False
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return None
    for name in entries[:_MAX_PROCESSES]:
        pid = int(name)
        stat = _stat(pid)
        if stat is None or stat[0] != "postgres":
            continue
        seen_postgres = True
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"[local]" in title:  # a Unix-socket client: not ours, we connect over TCP
            continue
        match = _CLIENT_PORT.search(title)
        if match is None or int(match.group(1)) in ports:
            found[pid] = stat[1]
    return found if seen_postgres else None


def cpu_delta(before: dict[int, float] | None, after: dict[int, float] | None) -> float | None:
    """CPU used between two :func:`postgres_cpu` readings (processes born in between count
    from zero)."""
    if before is None or after is None:
        return None
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy so far (user, nice, system, irq, softirq: not idle,
    not I/O wait, not stolen by the hypervisor), from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not first or first[0] != "cpu" or len(first) < 8:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in first[1:8])
    return (user + nice + system + irq + softirq) / _CLOCK_TICKS


def load_average() -> tuple[float, float, float] | None:
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except (OSError, ValueError):
        return None
    return float(one), float(five), float(fifteen)


def wait_until_quiet(
    max_seconds: float, *, threshold: float = 0.25, window: float = 1.0, streak: int = 5
) -> float:
    """Before the run: wait (at most ``max_seconds``) until the machine's busy CPU has stayed
    below ``threshold`` cores for ``streak`` windows in a row; returns the last busy share."""
    busy, quiet = 0.0, 0
    for _ in range(max(1, int(max_seconds / window))):
        before = machine_busy_seconds()
        time.sleep(window)
        after = machine_busy_seconds()
        if before is None or after is None:
            return 0.0
        busy = (after - before) / window
        quiet = quiet + 1 if busy < threshold else 0
        if quiet >= streak:
            break
    return busy


@dataclass(frozen=True)
class Memory:
    """A process's resident memory from /proc/<pid>/status, in KiB: now and its peak."""

    pid: int
    name: str
    rss_kib: int  # VmRSS
    hwm_kib: int  # VmHWM, the peak of VmRSS

    @property
    def rss_mb(self) -> float:
        return self.rss_kib * 1024 / 1e6

    @property
    def hwm_mb(self) -> float:
        return self.hwm_kib * 1024 / 1e6


def memory(pid: int) -> Memory | None:
    """VmRSS and VmHWM of a process; None if it is gone (or a zombie, which has neither)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    try:
        rss = int(fields["VmRSS"].split()[0])
        hwm = int(fields["VmHWM"].split()[0])
    except (KeyError, ValueError, IndexError):
        return None
    return Memory(pid, fields.get("Name", "?"), rss, hwm)


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by one process (0 if it is gone)."""
    stat = _stat(pid)
    return stat[1] if stat is not None else 0.0


class CpuMeter:
    """CPU shares of one core of groups of processes (by pid, each with its descendants),
    PostgreSQL (all of its processes) and everything else, from construction to
    :meth:`shares`."""

    def __init__(self, groups: dict[str, Sequence[HasPid]]) -> None:
        self.groups = {name: [p.pid for p in procs] for name, procs in groups.items()}
        self.t0 = time.perf_counter()
        self.before = self._read()

    def _read(self) -> dict[str, float]:
        out = {name: sum(tree_cpu_seconds(p) for p in pids) for name, pids in self.groups.items()}
        clients = [d for pids in self.groups.values() for p in pids for d in (p, *descendants(p))]
        out["postgres"] = sum((postgres_cpu([os.getpid(), *clients]) or {}).values())
        out["bench"] = time.process_time()
        out["machine"] = machine_busy_seconds() or 0.0
        return out

    def shares(self) -> dict[str, float]:
        after, wall = self._read(), time.perf_counter() - self.t0 or 1e-9
        used = {k: (after[k] - self.before[k]) / wall for k in after}
        machine = used.pop("machine")
        used["other"] = max(0.0, machine - sum(used.values()))
        return used


class HasPid(Protocol):
    @property
    def pid(self) -> int: ...
