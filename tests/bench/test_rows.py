"""The suite's rows: whatever was not measured (a failed step, a server that never started)
is a FAIL or "not measured", never a pass."""

from __future__ import annotations

import pytest

from bench.baseline import RawResult
from bench.http_load import LoadResult
from bench.rows import (
    CMD1,
    CMD16,
    FLOOR_KIND,
    LIVE,
    READ16,
    WINDOWS,
    Point,
    Results,
    build_rows,
    phase_list,
)
from bench.stats import Latency, Memory
from bench.table import FAIL, MEASURED, NOT_MEASURED, PASS, Row, failures, render_text

LAT = Latency(1.0, 2.0, 3.0, 4.0, 1.5)


def _load(rate: float, cpu_s: float = 1.0, seconds: float = 1.0) -> LoadResult:
    requests = int(rate * seconds)
    return LoadResult("x", 16, requests, 0, seconds, rate, LAT, {200: requests}, 0.1, cpu_s,
                      0.1, 2.0, 1000)  # fmt: skip


def _raw(rate: float, threads: int) -> RawResult:
    return RawResult("raw", threads, False, int(rate), 1.0, rate, LAT, 0.1)


def test_nothing_measured_fails_every_target() -> None:
    rows = build_rows(Results(quick=True, sizes=(10_000, 100_000), kinds=("granian",)))
    targeted = [r for r in rows if r.target is not None]
    assert len(targeted) >= 20
    assert all(r.verdict.startswith(FAIL) for r in targeted)
    assert failures(rows) == targeted
    assert all(r.verdict == "not measured" for r in rows if r.target is None)
    assert PASS not in {r.verdict for r in rows}
    assert "not measured [1]" in render_text(rows)


def test_a_failed_point_fails_its_rows_and_the_growth_rows() -> None:
    small = Point(10_000, "granian", phases={CMD1: _load(2000.0), CMD16: _load(5000.0),
                                             LIVE: _load(9000.0), WINDOWS: _load(9000.0),
                                             READ16: _load(6000.0)})  # fmt: skip
    big = Point(100_000, "granian", error="RuntimeError: api did not start")
    raw = {"1": _raw(2500.0, 1), "8": _raw(6000.0, 8)}
    results = Results(quick=True, sizes=(10_000, 100_000), kinds=("granian",), raw=raw,
                      points=[small, big])  # fmt: skip
    rows = {(r.section.split(" (")[0], r.figure): r for r in build_rows(results)}
    ok = rows["store of 10k events", "commands/s, 1 client"]
    assert ok.ratio == 0.8
    assert ok.verdict == PASS
    assert rows["store of 10k events", "commands/s, 16 clients"].verdict == PASS
    failed = rows["store of 100k events", "commands/s, 1 client"]
    assert failed.verdict == f"{FAIL} (not measured)"
    assert failed.note == "RuntimeError: api did not start"
    growth = rows["store of 100k events", "command cost: server CPU µs/command, 16 clients"]
    assert growth.baseline is not None
    assert growth.verdict == f"{FAIL} (not measured)"


def test_memory_counts_the_largest_reading() -> None:
    results = Results(quick=True, sizes=(10_000,), kinds=("granian",),
                      memory={"api": [Memory(1, "python", 100_000, 120_000),
                                      Memory(2, "python", 160_000, 170_000)],
                              "worker": [Memory(3, "python", 90_000, 95_000)]})  # fmt: skip
    rows = {r.figure: r for r in build_rows(results)}
    api = rows["API process serving requests (granian's worker): VmRSS (max of 2 readings)"]
    assert api.value == 160_000 * 1024 / 1e6
    assert api.verdict == FAIL
    assert rows["`ecocase worker` process: VmRSS"].verdict == PASS
    assert rows["`ecocase relay` process: VmRSS"].verdict == f"{FAIL} (not measured)"


def _floor_rows(results: Results) -> dict[str, Row]:
    return {r.figure: r for r in build_rows(results) if r.section.startswith("framework floor")}


def test_a_missing_floor_is_not_measured_and_never_a_pass() -> None:
    real = Point(10_000, "granian", phases={CMD1: _load(500.0), CMD16: _load(800.0)})
    raw = {"1": _raw(2900.0, 1), "8": _raw(6700.0, 8)}
    errors = {"framework floor": "RuntimeError: no port"}
    results = Results(quick=True, sizes=(10_000, 100_000), kinds=("granian",), raw=raw,
                      points=[real], errors=errors)  # fmt: skip
    rows = _floor_rows(results)
    assert len(rows) == 8
    assert all(r.target is None for r in rows.values())
    assert {r.verdict for r in rows.values()} == {NOT_MEASURED, MEASURED}
    floor1 = rows["framework floor: POST /projects/{id}/deferred-materials, no store, 1 client"]
    assert (floor1.verdict, floor1.note) == (NOT_MEASURED, "RuntimeError: no port")
    assert floor1.baseline == 2900.0
    against = rows["commands/s, 1 client (granian, store of 10k) against the floor"]
    assert against.value == 500.0
    assert against.ratio is None  # no floor: no ratio
    assert PASS not in {r.verdict for r in rows.values()}
    assert not any(r.section.startswith("framework floor") for r in failures(build_rows(results)))


def test_the_floor_is_measured_against_the_raw_inserts_and_the_real_commands() -> None:
    real = Point(10_000, "granian", phases={CMD1: _load(540.0, cpu_s=1.0),
                                            CMD16: _load(780.0, cpu_s=1.0)})  # fmt: skip
    floor = Point(10_000, FLOOR_KIND, phases={CMD1: _load(1350.0, cpu_s=1.0),
                                              CMD16: _load(1950.0, cpu_s=1.0)})  # fmt: skip
    raw = {"1": _raw(2900.0, 1), "8": _raw(6700.0, 8)}
    results = Results(quick=True, sizes=(10_000, 100_000), kinds=("granian",), raw=raw,
                      points=[real], floor=floor, floor_body_bytes=4200)  # fmt: skip
    rows = _floor_rows(results)
    assert all(r.verdict == MEASURED for r in rows.values())
    floor16 = rows["framework floor: POST /projects/{id}/deferred-materials, no store, 16 clients"]
    assert floor16.ratio == pytest.approx(1950.0 / 6700.0)
    cpu = rows["framework floor: server CPU per request, 1 client"]
    assert cpu.value == pytest.approx(1e6 / 1350)
    real16 = rows["commands/s, 16 clients (granian, store of 10k) against the floor"]
    assert real16.ratio == pytest.approx(780.0 / 1950.0)
    real_cpu = rows["server CPU per command, 1 client (granian, store of 10k) against the floor"]
    assert real_cpu.ratio == pytest.approx(1350.0 / 540.0)
    assert "4.1 KiB" in next(iter(rows.values())).section
    labels = [label for label, _ in phase_list(results)]
    assert labels == ["granian 10k: commands, 1 client", "granian 10k: commands, 16 clients",
                      "framework floor: commands, 1 client",
                      "framework floor: commands, 16 clients"]  # fmt: skip


def test_the_floor_without_the_real_point_says_why() -> None:
    floor = Point(10_000, FLOOR_KIND, phases={CMD1: _load(1350.0), CMD16: _load(1950.0)})
    results = Results(quick=True, sizes=(10_000,), kinds=("granian",), floor=floor)
    rows = _floor_rows(results)
    against = rows["commands/s, 16 clients (granian, store of 10k) against the floor"]
    assert (against.verdict, against.note, against.baseline) == (NOT_MEASURED, "not run", 1950.0)
    assert rows["framework floor: server CPU per request, 16 clients"].verdict == MEASURED
