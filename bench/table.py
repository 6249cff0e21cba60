"""The suite's table: figure | value | baseline | ratio | target | pass/fail.

A row holds a measured value (``None`` when it was not measured), the baseline it is compared
with (what, and its value measured in the same run), and an optional target: a bound on the
value (``<= 20 ms``) or on the ratio value ÷ baseline (``>= 0.60``). The verdict is ``pass``
only when the figure was measured, the baseline too (for a bound on the ratio), and the bound
holds; a target whose figure is missing is ``FAIL (not measured)``, never a pass. Rows without
a target say ``measured`` (or ``not measured``).

A *reference* target (:func:`reference`) is the service's target shown beside a measured floor
(the least any implementation on the stack must do): the verdict says whether the floor leaves
room for it (``floor allows it``) or not (``out of reach``), never pass or FAIL, and it is
not counted among the targets (:func:`failures`, :func:`targets`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

Op = Literal["<=", ">="]
PASS, FAIL, MEASURED, NOT_MEASURED = "pass", "FAIL", "measured", "not measured"
ALLOWS, OUT_OF_REACH = "floor allows it", "out of reach"  # the verdicts of a reference target


@dataclass(frozen=True)
class Target:
    op: Op
    bound: float
    on_ratio: bool = False  # the bound applies to value ÷ baseline, not to the value
    label: str = ""  # where it comes from, e.g. "issue 5"
    reference: bool = False  # shown beside a floor: never a pass or a failure

    def holds(self, x: float) -> bool:
        return x <= self.bound if self.op == "<=" else x >= self.bound


def reference(target: Target) -> Target:
    """The service's ``target`` beside a measured floor (see the module's docstring)."""
    return replace(target, reference=True)


def at_most(bound: float, label: str = "") -> Target:
    return Target("<=", bound, label=label)


def at_least(bound: float, label: str = "") -> Target:
    return Target(">=", bound, label=label)


def ratio_at_most(bound: float, label: str = "") -> Target:
    return Target("<=", bound, on_ratio=True, label=label)


def ratio_at_least(bound: float, label: str = "") -> Target:
    return Target(">=", bound, on_ratio=True, label=label)


def _number(x: float | None) -> float | None:
    """A usable measurement: not None, not NaN, not infinite."""
    if x is None or isinstance(x, bool) or not math.isfinite(x):
        return None
    return float(x)


@dataclass(frozen=True)
class Row:
    figure: str
    value: float | None
    unit: str  # "/s", "ms", "MB", "µs", "events", "s", "" …
    baseline: float | None = None
    baseline_label: str = ""  # what the baseline is; its value is ``baseline``
    target: Target | None = None
    note: str = ""  # why it is missing, or what to know when reading it
    section: str = ""

    @property
    def measured(self) -> bool:
        return _number(self.value) is not None

    @property
    def ratio(self) -> float | None:
        value, base = _number(self.value), _number(self.baseline)
        if value is None or base is None or base == 0:
            return None
        return value / base

    @property
    def holds(self) -> bool:
        """The target holds for the measured figure (False when it was not measured)."""
        if self.target is None:
            return False
        x = self.ratio if self.target.on_ratio else _number(self.value)
        return x is not None and self.target.holds(x)

    @property
    def passed(self) -> bool | None:
        """True or False against the target; None when there is no target, or only a
        reference target."""
        if self.target is None or self.target.reference:
            return None
        return self.holds

    @property
    def verdict(self) -> str:
        if self.target is None:
            return MEASURED if self.measured else NOT_MEASURED
        if self.target.reference:
            return self._reference_verdict()
        if self.passed:
            return PASS
        if not self.measured:
            return f"{FAIL} (not measured)"
        if self.target.on_ratio and self.ratio is None:
            return f"{FAIL} (no baseline)"
        return FAIL

    def _reference_verdict(self) -> str:
        assert self.target is not None
        if not self.measured or (self.target.on_ratio and self.ratio is None):
            return NOT_MEASURED
        return ALLOWS if self.holds else OUT_OF_REACH

    def as_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "figure": self.figure,
            "value": _number(self.value),
            "unit": self.unit,
            "baseline": _number(self.baseline),
            "baseline_label": self.baseline_label,
            "ratio": self.ratio,
            "target": None
            if self.target is None
            else {
                "op": self.target.op,
                "bound": self.target.bound,
                "on_ratio": self.target.on_ratio,
                "label": self.target.label,
                "reference": self.target.reference,
            },
            "verdict": self.verdict,
            "passed": self.passed,
            "note": self.note,
        }


def _ms(x: float) -> str:
    return f"{x:.2f} ms" if x < 100 else f"{x:,.0f} ms"


def _rate(x: float, unit: str) -> str:
    return f"{x:,.0f} {unit}" if x >= 100 else f"{x:.1f} {unit}"


_FORMATS: dict[str, Callable[[float], str]] = {
    "ms": _ms,
    "/s": lambda x: _rate(x, "/s"),
    "ev/s": lambda x: _rate(x, "ev/s"),
    "MB": lambda x: f"{x:.1f} MB",
    "s": lambda x: f"{x:.1f} s",
    "%": lambda x: f"{x:.1f}%",
}


def fmt(value: float | None, unit: str) -> str:
    x = _number(value)
    if x is None:
        return NOT_MEASURED
    form = _FORMATS.get(unit)
    if form is not None:
        return form(x)
    if float(x).is_integer() or abs(x) >= 100:
        return f"{x:,.0f} {unit}".rstrip()
    return f"{x:.3g} {unit}".rstrip()


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return ""
    if r < 10:
        return f"{r:.3f}"
    return f"{r:.1f}" if r < 1000 else f"{r:,.0f}"


def fmt_target(row: Row) -> str:
    t = row.target
    if t is None:
        return ""
    sign = "≤" if t.op == "<=" else "≥"
    text = f"ratio {sign} {t.bound:.2f}" if t.on_ratio else f"{sign} {fmt(t.bound, row.unit)}"
    return f"{text} ({t.label})" if t.label else text


def fmt_baseline(row: Row) -> str:
    if not row.baseline_label:
        return ""
    return f"{row.baseline_label}: {fmt(row.baseline, row.unit)}"


def cells(row: Row, notes: dict[str, int] | None = None) -> tuple[str, str, str, str, str, str]:
    """The row's six cells; the note of a row that was not measured becomes a numbered
    footnote (``notes`` maps each note to its number) or, without ``notes``, is inlined."""
    value = fmt(row.value, row.unit)
    if row.note and not row.measured:
        if notes is None:
            value = f"{NOT_MEASURED} ({row.note})"
        else:
            value = f"{NOT_MEASURED} [{notes.setdefault(row.note, len(notes) + 1)}]"
    return (
        row.figure,
        value,
        fmt_baseline(row),
        fmt_ratio(row.ratio),
        fmt_target(row),
        row.verdict,
    )


HEADER = ("figure", "value", "baseline (this run)", "ratio", "target", "pass/fail")


def grid(rows: Sequence[tuple[str, ...]], right: tuple[int, ...] = ()) -> str:
    """Columns padded to their widest cell; the first row is the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                 enumerate(zip(row, widths, strict=True))]  # fmt: skip
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _footnotes(notes: dict[str, int]) -> list[str]:
    return [f"[{n}] {note}" for note, n in notes.items()]


def render_text(rows: Sequence[Row]) -> str:
    out: list[tuple[str, ...]] = [HEADER]
    notes: dict[str, int] = {}
    section = None
    for row in rows:
        if row.section and row.section != section:
            section = row.section
            out.append((f"[{section}]", "", "", "", "", ""))
        out.append(cells(row, notes))
    return "\n".join([grid(out, right=(1, 3)), *_footnotes(notes)])


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(rows: Sequence[Row]) -> str:
    out = [
        "| " + " | ".join(HEADER) + " |",
        "|---|---:|---|---:|---|---|",
    ]
    notes: dict[str, int] = {}
    section = None
    for row in rows:
        if row.section and row.section != section:
            section = row.section
            out.append(f"| **{_md(section)}** | | | | | |")
        c = cells(row, notes)
        verdict = f"**{c[5]}**" if c[5].startswith(FAIL) else c[5]
        out.append("| " + " | ".join(_md(x) for x in (*c[:5], verdict)) + " |")
    foot = _footnotes(notes)
    return "\n".join(out + ([""] + [f"{n}  " for n in foot] if foot else []))


def targets(rows: Sequence[Row]) -> list[Row]:
    """The rows with a target of their own (not a reference target)."""
    return [r for r in rows if r.target is not None and not r.target.reference]


def failures(rows: Sequence[Row]) -> list[Row]:
    """The rows whose target is not met (missing measurements included)."""
    return [r for r in targets(rows) if not r.passed]
