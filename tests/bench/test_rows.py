"""The suite's rows: whatever was not measured (a failed step, a server that never started)
is a FAIL or "not measured", never a pass."""

from __future__ import annotations

from bench.baseline import RawResult
from bench.http_load import LoadResult
from bench.rows import CMD1, CMD16, LIVE, READ16, WINDOWS, Point, Results, build_rows
from bench.stats import Latency, Memory
from bench.table import FAIL, PASS, failures, render_text

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
