"""The suite's rows: whatever was not measured (a failed step, a server that never started)
is a FAIL or "not measured", never a pass."""

from __future__ import annotations

import pytest

from bench.baseline import RawResult
from bench.http_load import LoadResult
from bench.rows import (
    CMD1,
    CMD16,
    FLOOR_DB_KIND,
    FLOOR_DB_STEP,
    FLOOR_KIND,
    LIVE,
    READ16,
    WINDOWS,
    Point,
    Results,
    build_rows,
    cold_point,
    phase_list,
)
from bench.stats import Latency, Memory
from bench.table import (
    ALLOWS,
    FAIL,
    MEASURED,
    NOT_MEASURED,
    OUT_OF_REACH,
    PASS,
    Row,
    failures,
    render_text,
    targets,
)

LAT = Latency(1.0, 2.0, 3.0, 4.0, 1.5)


def _load(rate: float, cpu_s: float = 1.0, seconds: float = 1.0) -> LoadResult:
    requests = int(rate * seconds)
    return LoadResult("x", 16, requests, 0, seconds, rate, LAT, {200: requests}, 0.1, cpu_s,
                      0.1, 2.0, 1000)  # fmt: skip


def _raw(rate: float, threads: int) -> RawResult:
    return RawResult("raw", threads, False, int(rate), 1.0, rate, LAT, 0.1)


def test_nothing_measured_fails_every_target() -> None:
    rows = build_rows(Results(quick=True, sizes=(10_000, 100_000), kinds=("granian",)))
    targeted = targets(rows)
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


def _floor_db_rows(results: Results) -> dict[str, Row]:
    rows = build_rows(results)
    return {r.figure: r for r in rows if r.section.startswith("measured floors, not the service")}


CMD = "floor + one durable insert: POST /projects/{id}/deferred-materials"
GET = "floor + one PK select: GET /projects/{id}, 16 clients, 4,000 rows"


def test_the_floor_with_its_database_work_sets_the_targets_beside_it() -> None:
    real = Point(10_000, "granian", read_projects=520,
                 phases={CMD16: _load(900.0), LIVE: _load(14_000.0),
                         READ16: _load(1_000.0, cpu_s=1.1)})  # fmt: skip
    floor_db = Point(10_000, FLOOR_DB_KIND, read_projects=4_000,
                     phases={LIVE: _load(16_000.0), CMD1: _load(1_100.0),
                             CMD16: _load(2_000.0, cpu_s=0.9), READ16: _load(5_000.0)})  # fmt: skip
    big = Point(100_000, "granian", read_projects=4_000,
                phases={LIVE: _load(17_000.0), READ16: _load(1_000.0, cpu_s=1.1)})  # fmt: skip
    raw = {"1": _raw(2_900.0, 1), "8": _raw(6_000.0, 8)}
    results = Results(quick=True, sizes=(10_000, 100_000), kinds=("granian",), raw=raw,
                      points=[real, big], floor_db=floor_db, floor_view_bytes=2_048,
                      floor_db_inserted=21_000, floor_db_created=21_000)  # fmt: skip
    rows = _floor_db_rows(results)
    section = next(iter(rows.values())).section
    assert "2.0 KiB" in section
    assert "4,000 rows" in section
    one, sixteen = rows[f"{CMD}, 1 client"], rows[f"{CMD}, 16 clients"]
    assert one.ratio == pytest.approx(1_100.0 / 2_900.0)
    assert (one.verdict, one.passed) == (OUT_OF_REACH, None)  # 0.38 < 0.60
    assert sixteen.ratio == pytest.approx(2_000.0 / 6_000.0)
    assert sixteen.verdict == OUT_OF_REACH  # 0.33 < 0.40
    get_rows = [r for r in build_rows(results) if r.figure == GET]
    same, real_live = get_rows
    assert (same.baseline, same.baseline_label) == (16_000.0, "floor GET /health/live, same server")
    assert same.ratio == pytest.approx(5_000.0 / 16_000.0)
    assert same.verdict == OUT_OF_REACH  # 0.31 < 0.50
    # the real server's reads where they missed its cache: the 100k store's 4,000 projects
    assert (real_live.baseline, real_live.verdict) == (17_000.0, MEASURED)
    assert "store of 100k" in real_live.baseline_label
    cpu = rows[f"{CMD}, 16 clients: server CPU per request"]
    assert cpu.value == pytest.approx(0.9 / 2_000 * 1e6)
    pg_cpu = rows["floor + one PK select: GET /projects/{id}: PostgreSQL CPU per request"]
    assert pg_cpu.value == pytest.approx(0.1 / 5_000 * 1e6)
    against = rows["GET /projects/{id} req/s, 4,000 projects not read before (granian, store "
                   "of 100k) against the floor + one PK select"]  # fmt: skip
    assert against.ratio == pytest.approx(1_000.0 / 5_000.0)
    real_cpu = rows["server CPU per GET /projects/{id} not read before (granian, store of 100k) "
                    "against the floor + one PK select"]  # fmt: skip
    assert real_cpu.ratio == pytest.approx(1_100.0 / 200.0)  # µs: 1.1 s / 1,000, 1 s / 5,000
    commands16 = rows["commands/s, 16 clients (granian, store of 10k) against the floor + one "
                      "insert"]  # fmt: skip
    assert commands16.ratio == pytest.approx(900.0 / 2_000.0)
    committed = rows["floor + one durable insert: rows committed (counted afterwards)"]
    assert (committed.value, committed.ratio) == (21_000, 1.0)
    text = render_text(build_rows(results))
    assert "ratio ≥ 0.40 (issue 5, for the service)" in text
    assert "ratio ≥ 0.50 (issue 5, for the service)" in text
    assert not any(r.section.startswith("measured floors") for r in failures(build_rows(results)))


def test_a_floor_that_leaves_room_for_the_target_says_so() -> None:
    floor_db = Point(10_000, FLOOR_DB_KIND, phases={CMD16: _load(3_000.0), LIVE: _load(10_000.0),
                                                    READ16: _load(6_000.0)})  # fmt: skip
    results = Results(quick=True, sizes=(10_000,), kinds=("granian",),
                      raw={"8": _raw(6_000.0, 8)}, floor_db=floor_db)  # fmt: skip
    rows = {(r.figure, r.baseline_label): r for r in build_rows(results)}
    assert rows[f"{CMD}, 16 clients", "raw insert, 8 threads"].verdict == ALLOWS  # 0.50
    get = "floor + one PK select: GET /projects/{id}, 16 clients, 0 rows"
    assert rows[get, "floor GET /health/live, same server"].verdict == ALLOWS  # 0.60


def test_a_missing_floor_with_database_is_not_measured_and_never_a_failure() -> None:
    raw = {"1": _raw(2_900.0, 1), "8": _raw(6_000.0, 8)}
    errors = {FLOOR_DB_STEP: "OperationalError: connection refused"}
    results = Results(quick=True, sizes=(10_000,), kinds=("granian",), raw=raw, errors=errors)
    rows = _floor_db_rows(results)
    assert len(rows) >= 12
    assert {r.verdict for r in rows.values()} == {NOT_MEASURED}
    assert rows[f"{CMD}, 16 clients"].note == "OperationalError: connection refused"
    assert rows[f"{CMD}, 16 clients"].baseline == 6_000.0
    assert rows[f"{CMD}, 16 clients"].as_json()["target"]["reference"] is True
    rows_all = build_rows(results)
    assert not any(r.section.startswith("measured floors") for r in failures(rows_all))
    assert all(r.target is None or r.target.reference for r in rows.values())
    assert not any(r.section.startswith("measured floors") for r in targets(rows_all))


def test_floors_only_has_the_baselines_and_the_floors() -> None:
    floor = Point(10_000, FLOOR_KIND, phases={CMD1: _load(1_300.0), CMD16: _load(4_700.0)})
    floor_db = Point(10_000, FLOOR_DB_KIND, phases={CMD16: _load(2_000.0)})
    results = Results(quick=True, sizes=(10_000,), kinds=("granian",), floors_only=True,
                      raw={"1": _raw(2_900.0, 1), "8": _raw(6_000.0, 8)}, floor=floor,
                      floor_db=floor_db)  # fmt: skip
    rows = build_rows(results)
    sections = {r.section.split(":")[0] for r in rows}
    assert sections == {"baselines", "framework floor", "measured floors, not the service"}
    assert failures(rows) == []
    labels = [label for label, _ in phase_list(results)]
    assert labels == [f"{FLOOR_KIND}: commands, 1 client", f"{FLOOR_KIND}: commands, 16 clients",
                      f"{FLOOR_DB_KIND}: commands, 16 clients"]  # fmt: skip


def test_the_real_cold_reads_are_taken_where_they_read_as_many_projects_as_the_floor() -> None:
    small = Point(10_000, "granian", read_projects=520)
    big = Point(100_000, "granian", read_projects=4_000)
    huge = Point(1_000_000, "granian", read_projects=4_000)
    other = Point(100_000, "uvicorn", read_projects=4_000)
    sizes = (10_000, 100_000, 1_000_000)
    results = Results(quick=False, sizes=sizes, kinds=("granian", "uvicorn"),
                      points=[huge, other, small, big])  # fmt: skip
    assert cold_point(results, 4_000) is big
    assert cold_point(results, 5_000) is huge  # none read as many: the widest, the largest
    only_small = Results(quick=True, sizes=(10_000,), kinds=("granian",), points=[small],
                         floor_db=Point(10_000, FLOOR_DB_KIND, read_projects=4_000))  # fmt: skip
    assert cold_point(only_small, 4_000) is small
    figures = [r.figure for r in build_rows(only_small)]
    assert (
        "GET /projects/{id} req/s, 520 projects (most answered from the API's cache) not "
        "read before (granian, store of 10k) against the floor + one PK select"
    ) in figures
    missing = cold_point(Results(quick=True, sizes=sizes, kinds=("granian",)), 4_000)
    assert (missing.size, missing.error) == (1_000_000, "not run")


def test_the_raw_baseline_is_the_faster_of_its_runs() -> None:
    """A slow spell during one raw baseline must not flatter every ratio to it."""
    results = Results(quick=True, sizes=(10_000,), kinds=("granian",))
    slow, fast, slower = _raw(1_544.0, 1), _raw(2_873.0, 1), _raw(1_000.0, 1)
    assert results.add_raw("1", slow) is slow
    assert results.add_raw("1", fast) is fast
    assert results.add_raw("1", slower) is fast
    assert results.raw == {"1": fast}
    assert results.raw_rates == {"1": [1_544.0, 2_873.0, 1_000.0]}
