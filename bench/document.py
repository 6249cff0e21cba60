"""What a suite run prints and writes: the table with the machine and the notes, the JSON of
every result, and the Markdown (the table alone, or the whole results document that a full run
writes to bench/results/latest.md)."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from collections.abc import Sequence
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.baseline import PgTarget
from bench.http_load import NOISE_LIMIT
from bench.report import noisy, render_cpu
from bench.rows import Results, phase_list
from bench.table import Row, failures, render_markdown, render_text, targets


def jsonable(obj: Any) -> Any:
    """Dataclasses (their ``as_json`` when they have one), paths, tuples: as JSON values."""
    if hasattr(obj, "as_json"):
        return jsonable(obj.as_json())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items() if "PASSWORD" not in str(k)}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return "?"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _server_version(target: PgTarget) -> str:
    try:
        return target.server_version()
    except Exception as e:  # noqa: BLE001 - the report is printed all the same
        return f"? ({type(e).__name__})"


def machine(target: PgTarget, redis_version: str) -> dict[str, Any]:
    mem_kib = _first("/proc/meminfo", "MemTotal").split()[0]
    return {
        "cpu": _first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "ram_gib": round(int(mem_kib) / 1024 / 1024, 1) if mem_kib.isdigit() else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": _server_version(target),
        "redis": redis_version,
        "eventsourcing": _version("eventsourcing"),
        "granian": _version("granian"),
    }


def _load(load: tuple[float, float, float] | None) -> str:
    return "n/a" if load is None else " / ".join(f"{x:.2f}" for x in load)


HOW_MEASURED = """\
One run of `python -m bench --full` on PostgreSQL (`test` at 127.0.0.1:5432) and the system
Redis (a database of the run's own), everything on this one machine and loopback. The
baselines are measured in the same run: raw single-row insert transactions from psycopg 3
(autocommit, 1 connection; 8 threads with a connection each). The store is one fresh schema,
seeded with batched saves of valid, hash-chained projects of 10 events (window xihu, a city-key
project each), grown from 10k to 100k to 1M events; at each size the live project list and
supervision view are caught up before `ecocase serve --server granian --workers 1` starts with
`ECOCASE_EMBEDDED_WORKERS=no` (the production shape: the API alone). The HTTP phases are closed
loops of keep-alive HTTP/1.1 clients (`bench/http_load.py`): `GET /health/live` (the trivial
GET: no auth, no database) and `GET /windows`, 16 clients; commands
(`POST /projects/{id}/deferred-materials`, one event each) with 1 and then 16 clients on 480
projects not touched before (drawn at random from the whole store); `GET /projects/{id}`,
16 clients over up to 4,000 untouched projects. After the 10k store's phases the same command
load runs against the framework floor (`bench/floor_app.py`: granian + Litestar with the
service's auth, request id, hook, exception handlers and logging, the command's JSON body
parsed, a fixed answer of the real answers' size; no store), then against the same floor with
the least database work (`bench/floor_db.py`, tables of the run's own, a psycopg_pool pool sized
as the service's): each command one durable insert (autocommit), and `GET /projects/{id}` over
4,000 pre-encoded views of the real cold reads' size, one select by primary key each, after its
own `GET /health/live`: measured floors, the issue's targets beside them as references (the
verdict says whether the floor leaves room for them). Server CPU per command is the API
process tree's CPU time over the phase ÷ the commands answered 201; the cost at each size is
compared with the 10k store. At the largest size the same API is joined by `ecocase relay` and
`ecocase worker` (their position set to the store's head, so that the seeded history is not
replayed): commands (`POST /projects/{id}/officers`, one inbox notification each) at a steady
200/s in an open loop, latency = the notification's `created_at` − the moment the request was
sent (an upper bound: the commit lies between the request and its answer). VmRSS and VmHWM come
from `/proc/<pid>/status` of every process after those phases. Scale-out adds a second API and
a second worker on the same schema and Redis (commands with 8 clients on each API; then the
latency phase, commands alternating between the APIs). Last, with every process stopped: the
rebuild of all read models over the whole store (`application.rebuild`; three runs, each after its
own read + decode of the log, and the median of each), and the median load of
a 1,000-event project (snapshots every 50) in a schema of its own. Every schema and Redis key of
the run is removed at the end."""


def _rates(rates: Sequence[float], unit: str) -> str:
    return ", ".join(f"{rate:,.0f}" for rate in rates) + f" {unit}"


class Document:
    def __init__(self, results: Results, rows: list[Row], *, plan_json: Any, seconds: float,
                 load_before: tuple[float, float, float] | None,
                 load_after: tuple[float, float, float] | None, target: PgTarget,
                 argv: list[str], redis_version: str = "?") -> None:  # fmt: skip
        self.results, self.rows, self.plan_json = results, rows, plan_json
        self.seconds, self.load_before, self.load_after = seconds, load_before, load_after
        self.argv = argv
        self.date = datetime.now().astimezone()
        self.machine = machine(target, redis_version)

    @property
    def mode(self) -> str:
        return "quick" if self.results.quick else "full"

    def headline(self) -> str:
        m = self.machine
        return (f"ecocase bench ({self.mode}), {self.date:%Y-%m-%d %H:%M %Z}, {m['cpu']}, "
                f"{m['cores']} cores, {m['ram_gib']} GiB RAM, PostgreSQL {m['postgres']}, "
                f"Redis {m['redis']}, Python {m['python']}, granian {m['granian']}; "
                f"{self.seconds / 60:.1f} min; load average {_load(self.load_before)} before, "
                f"{_load(self.load_after)} after")  # fmt: skip

    def notes(self) -> list[str]:
        r = self.results
        out = [f"step failed: {step}: {error}" for step, error in r.errors.items()]
        phases = phase_list(r)
        busy = noisy(list(r.raw.values()), phases)
        if busy:
            out.append(
                f"other processes used more than {NOISE_LIMIT:.0%} of a core during "
                f"{len(busy)} of {len(r.raw) + len(phases)} phases (the 'other CPU' "
                "column below): their figures are low; rerun on a quiet machine"
            )
        for s in r.seeding:
            if s.get("views_seconds") is not None:
                out.append(f"seeding to {s['size']:,}: {s['events']:,} events in "
                           f"{s['seconds']:.1f} s, live views caught up in "
                           f"{s['views_seconds']:.1f} s")  # fmt: skip
        for key, lat in r.latency.items():
            cpu = ", ".join(f"{k} {v:.0%}" for k, v in lat.cpu.items())
            out.append(f"latency {key}: {lat.completed:,} of {lat.planned:,} commands answered, "
                       f"{len(lat.errors)} errors, command p50 {lat.command.p50_ms:.1f} ms, "
                       f"issue delay p99 {lat.issue_delay.p99_ms:.1f} ms; CPU (share of one "
                       f"core) {cpu}")  # fmt: skip
            if lat.cpu.get("other", 0.0) > NOISE_LIMIT:
                out.append(f"latency {key}: other processes used {lat.cpu['other']:.0%} of a "
                           "core meanwhile: the tail is theirs as much as ours")  # fmt: skip
        for key, rates in r.raw_rates.items():
            if len(rates) > 1:
                label = "1 connection" if key == "1" else f"{key} threads"
                out.append(f"raw inserts, {label}: {_rates(rates, 'tx/s')} at the start and "
                           "at the end of the run; the baseline is the faster")  # fmt: skip
        if r.rebuild is not None and len(r.rebuild.reports) > 1:
            out.append(f"rebuild: the median of {len(r.rebuild.reports)} runs, each after its own "
                       "read + decode: " + _rates(r.rebuild.rates, "ev/s") + "; read + decode "
                       + _rates(r.rebuild.read_decode_rates, "ev/s"))  # fmt: skip
        failed = failures(self.rows)
        out.append(f"{len(failed)} of {len(targets(self.rows))} targets not met"
                   if failed else "every target met")  # fmt: skip
        return out

    def cpu(self) -> str:
        return render_cpu(list(self.results.raw.values()), phase_list(self.results))

    def text(self) -> str:
        parts = [self.headline(), "", render_text(self.rows), "",
                 "CPU per phase (share of one core):", self.cpu(), ""]  # fmt: skip
        parts += [f"note: {n}" for n in self.notes()]
        return "\n".join(parts)

    def markdown(self, *, full_document: bool) -> str:
        table = render_markdown(self.rows)
        if not full_document:
            return f"{self.headline()}\n\n{table}\n"
        m = self.machine
        return "\n".join([
            "# ecocase benchmarks: the latest full run",
            "",
            f"- **Date**: {self.date:%Y-%m-%d %H:%M %Z} (`python -m bench "
            f"{' '.join(self.argv)}`, {self.seconds / 60:.1f} min)",
            f"- **Machine**: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, Linux "
            f"{m['kernel']}; PostgreSQL {m['postgres']}, Redis {m['redis']}, Python "
            f"{m['python']}, eventsourcing {m['eventsourcing']}, granian {m['granian']}",
            f"- **Load average** (1/5/15 min): {_load(self.load_before)} before, "
            f"{_load(self.load_after)} after",
            "",
            table,
            "",
            *[f"- {n}" for n in self.notes()],
            "",
            "## How measured",
            "",
            HOW_MEASURED,
            "",
            "## CPU per phase (share of one core)",
            "",
            "```",
            self.cpu(),
            "```",
            "",
        ])  # fmt: skip

    def write_markdown(self, path: Path, *, full_document: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.markdown(full_document=full_document))
        print(f"Markdown written to {path}")

    def write_json(self, path: Path) -> None:
        document = {
            "date": self.date.isoformat(timespec="seconds"),
            "mode": self.mode,
            "argv": self.argv,
            "seconds": self.seconds,
            "machine": self.machine,
            "load_average_before": self.load_before,
            "load_average_after": self.load_after,
            "plan": self.plan_json,
            "rows": [r.as_json() for r in self.rows],
            "results": jsonable(self.results),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
        print(f"results written to {path}")
