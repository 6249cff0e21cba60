"""The rebuild's figures over several runs: the median run, the worst differences."""

from __future__ import annotations

from application.rebuild import ModelReport, RebuildReport
from bench.read_models import RebuildFigures, differences_row, rebuild_rows


def report(seconds: float, differing: int = 0) -> RebuildReport:
    model = ModelReport(name="project_index", rows=10, live_rows=10, checksum_live="a",
                        checksum_fresh="a" if not differing else "b", differences=(),
                        difference_count=differing, position=1_000, events=1_000,
                        seconds=seconds)  # fmt: skip
    return RebuildReport(models=(model,), position=1_000, events=1_000_000,
                         replay_seconds=seconds, read_seconds=seconds / 3, seconds=seconds + 1,
                         location="fresh", kept=False)  # fmt: skip


def test_the_rebuild_row_is_the_median_run_against_the_median_read_and_decode() -> None:
    f = RebuildFigures(1_000_000, (50_000.0, 70_000.0, 60_000.0),
                       (report(10.0), report(25.0), report(20.0)))  # fmt: skip
    (row, *_parts) = rebuild_rows(f, f.events)
    assert f.rates == (100_000.0, 40_000.0, 50_000.0)
    assert row.value == 50_000.0  # 40k, 50k, 100k: the middle one
    assert row.baseline == 60_000.0
    assert row.passed is True
    assert "median of 3" in row.figure


def test_rebuilt_rows_differing_count_the_run_with_the_most() -> None:
    f = RebuildFigures(1_000_000, (1.0, 1.0, 1.0), (report(10.0), report(20.0, 2), report(30.0)))
    row = differences_row(f)
    assert row.value == 2
    assert row.passed is False
