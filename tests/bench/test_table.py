"""The suite's table: a target passes only when its figure was measured and meets it."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from bench.table import (
    FAIL,
    MEASURED,
    NOT_MEASURED,
    PASS,
    Row,
    at_least,
    at_most,
    failures,
    ratio_at_least,
    ratio_at_most,
    render_markdown,
    render_text,
)


def test_a_bound_on_the_value() -> None:
    fast = Row("load", 12.0, "ms", target=at_most(20.0, "issue 5"))
    slow = Row("load", 21.0, "ms", target=at_most(20.0, "issue 5"))
    assert (fast.passed, fast.verdict) == (True, PASS)
    assert (slow.passed, slow.verdict) == (False, FAIL)
    assert Row("rebuild", 50_000.0, "ev/s", target=at_least(50_000.0)).passed is True
    assert Row("rebuild", 49_999.0, "ev/s", target=at_least(50_000.0)).passed is False


def test_a_bound_on_the_ratio_uses_the_baseline_of_the_run() -> None:
    row = Row("commands/s", 300.0, "/s", 1000.0, "raw insert", target=ratio_at_least(0.6))
    assert row.ratio == pytest.approx(0.3)
    assert row.verdict == FAIL
    ok = Row("commands/s", 700.0, "/s", 1000.0, "raw insert", target=ratio_at_least(0.6))
    assert ok.verdict == PASS
    grown = Row("µs/command", 130.0, "µs", 100.0, "at 10k", target=ratio_at_most(1.25))
    assert grown.verdict == FAIL
    same = Row("µs/command", 125.0, "µs", 100.0, "at 10k", target=ratio_at_most(1.25))
    assert same.verdict == PASS


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf])
def test_a_missing_measurement_never_passes(value: float | None) -> None:
    on_value = Row("p99", value, "ms", target=at_most(250.0))
    on_ratio = Row("commands/s", value, "/s", 1000.0, "raw", target=ratio_at_least(0.6))
    for row in (on_value, on_ratio):
        assert row.passed is False
        assert row.verdict == f"{FAIL} (not measured)"
        assert row in failures([row])
        assert NOT_MEASURED in render_text([row])
        assert "pass" not in render_text([row]).splitlines()[2]


@pytest.mark.parametrize("baseline", [None, 0.0, math.nan])
def test_a_ratio_target_without_its_baseline_fails(baseline: float | None) -> None:
    row = Row("commands/s", 900.0, "/s", baseline, "raw insert", target=ratio_at_least(0.6))
    assert row.ratio is None
    assert row.passed is False
    assert row.verdict == f"{FAIL} (no baseline)"


def test_a_failed_measurement_renders_its_reason_as_fail() -> None:
    row = Row("RSS", None, "MB", target=at_most(150.0), note="server did not start")
    text = render_text([row, replace(row, figure="RSS peak")]).splitlines()
    assert "not measured [1]" in text[2]
    assert "FAIL (not measured)" in text[2]
    assert "not measured [1]" in text[3]
    assert text[4] == "[1] server did not start"
    md = render_markdown([row])
    assert "**FAIL (not measured)**" in md
    assert "[1] server did not start" in md


def test_rows_without_a_target_are_measured_or_not() -> None:
    assert Row("raw insert", 2500.0, "/s").verdict == MEASURED
    assert Row("raw insert", None, "/s").verdict == NOT_MEASURED
    assert Row("raw insert", 2500.0, "/s").passed is None
    assert failures([Row("raw insert", None, "/s")]) == []


def test_the_table_has_every_column() -> None:
    rows = [
        Row("commands/s, 1 client", 1500.0, "/s", 2500.0, "raw insert, 1 conn",
            target=ratio_at_least(0.6, "issue 5"), section="10k events"),
        Row("load", 3.5, "ms", target=at_most(20.0, "issue 5"), section="10k events"),
    ]  # fmt: skip
    text = render_text(rows).splitlines()
    assert text[0].split() == ["figure", "value", "baseline", "(this", "run)", "ratio",
                               "target", "pass/fail"]  # fmt: skip
    assert "[10k events]" in text[2]
    assert "raw insert, 1 conn: 2,500 /s" in text[3]
    assert "0.600" in text[3]
    assert "ratio ≥ 0.60 (issue 5)" in text[3]
    assert text[3].rstrip().endswith(PASS)
    assert "≤ 20.00 ms (issue 5)" in text[4]
    md = render_markdown(rows).splitlines()
    assert md[0] == "| figure | value | baseline (this run) | ratio | target | pass/fail |"
    assert len(md) == 2 + 1 + 2
    assert md[3].count("|") == 7


def test_json_keeps_the_verdict() -> None:
    data = Row("p50", None, "ms", target=at_most(50.0, "issue 5")).as_json()
    assert data["value"] is None
    assert data["passed"] is False
    assert data["verdict"] == "FAIL (not measured)"
    assert data["target"] == {"op": "<=", "bound": 50.0, "on_ratio": False, "label": "issue 5",
                              "reference": False}  # fmt: skip
