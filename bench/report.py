"""Rows of bench.workers' table (figure, value, baseline, ratio), and the CPU breakdown per
HTTP phase that the suite prints below its table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.baseline import RawResult
from bench.http_load import NOISE_LIMIT, LoadResult


@dataclass(frozen=True)
class Row:
    figure: str
    value: float
    unit: str  # "/s" or "ms"
    baseline: float | None = None
    baseline_label: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "/s":
        return f"{value:,.0f} /s" if value >= 100 else f"{value:.1f} /s"
    return f"{value:.3g} {unit}".strip()


def _ratio(r: float | None) -> str:
    if r is None:
        return ""
    return f"{r:.3f}" if r < 10 else f"{r:.1f}"


def _share(seconds: float | None, wall: float) -> str:
    return "n/a" if seconds is None else f"{seconds / wall:.0%}"


def render_cpu(raw: Sequence[RawResult], phases: Sequence[tuple[str, LoadResult]]) -> str:
    """Where the two cores went in every phase. "other" is the machine's busy CPU outside the
    bench, the server and PostgreSQL: anything else running (it should be near 0%)."""
    cells = [
        (
            "phase",
            "requests",
            "errors",
            "wall s",
            "client CPU",
            "server CPU",
            "postgres CPU",
            "other CPU",
            "server µs/req",
            "KiB/answer",
        )
    ]
    for r in raw:
        wall = r.seconds or 1e-9
        cells.append(
            (
                r.label,
                f"{r.transactions:,}",
                "0",
                f"{r.seconds:.1f}",
                _share(r.client_cpu_s, wall),
                "",
                _share(r.postgres_cpu_s, wall),
                _share(r.other_cpu_s, wall),
                "",
                "",
            )
        )
    for label, p in phases:
        wall = p.seconds or 1e-9
        cells.append(
            (
                label,
                f"{p.requests:,}",
                str(p.errors),
                f"{p.seconds:.1f}",
                _share(p.client_cpu_s, wall),
                _share(p.server_cpu_s, wall),
                _share(p.postgres_cpu_s, wall),
                _share(p.other_cpu_s, wall),
                f"{p.server_cpu_s / max(p.requests, 1) * 1e6:,.0f}",
                f"{p.bytes_received / max(p.requests + p.errors, 1) / 1024:.1f}",
            )
        )
    return _grid(cells, right=tuple(range(1, 10)))


def noisy(
    raw: Sequence[RawResult], phases: Sequence[tuple[str, LoadResult]], limit: float = NOISE_LIMIT
) -> list[str]:
    """Phases during which something else took more than ``limit`` of a core."""
    out = [
        f"{r.label}: {r.other_cpu_s / r.seconds:.0%}"
        for r in raw
        if r.other_cpu_s is not None and r.seconds and r.other_cpu_s / r.seconds > limit
    ]
    out += [
        f"{label}: {p.other_cpu_s / p.seconds:.0%}"
        for label, p in phases
        if p.other_cpu_s is not None and p.seconds and p.other_cpu_s / p.seconds > limit
    ]
    return out


def _grid(cells: Sequence[tuple[str, ...]], right: tuple[int, ...]) -> str:
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    lines = []
    for n, row in enumerate(cells):
        parts = [
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        ]
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
