"""Benchmark results: one row per measured figure, printed as a rich table beside the docs/design.md §10 goals.

Example::

    rows = [Row("put64", "put throughput, 64 clients", 6100.0, "req/s", Goal(">=", 5000), etcd="≈ 11,000/s")]
    print_table(rows, header={"cores": 2})
    write_json(Path("bench.json"), rows, header={})
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Goal:
    """A docs/design.md §10 goal: ``op`` is ``>=`` (at least) or ``<=`` (at most)."""

    op: str
    threshold: float

    def met(self, value: float) -> bool:
        return value >= self.threshold if self.op == ">=" else value <= self.threshold

    def text(self, unit: str) -> str:
        sign = "≥" if self.op == ">=" else "≤"
        return f"{sign} {_number(self.threshold)} {unit}"


@dataclass
class Row:
    """One measured figure (``value`` None: not measured, with the reason in ``note``)."""

    scenario: str
    metric: str
    value: float | None
    unit: str
    goal: Goal | None = None
    etcd: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    valid: bool = True  # False: the measurement itself failed a check (e.g. a restart replayed): MISS

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return "-"
        if self.value is None:
            return "n/a"
        return "PASS" if self.valid and self.goal.met(self.value) else "MISS"


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples``, nearest-rank; NaN when empty."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def summarize_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean of latencies in milliseconds (for the JSON file)."""
    if not samples:
        return {}
    return {"n": len(samples), "p50": percentile(samples, 50), "p90": percentile(samples, 90),
            "p99": percentile(samples, 99), "max": max(samples), "mean": statistics.fmean(samples)}


def _number(value: float) -> str:
    if value != value:  # NaN
        return "nan"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


_STYLE = {"PASS": "bold green", "MISS": "bold red", "n/a": "yellow", "-": "dim"}


def print_table(rows: Sequence[Row], header: Mapping[str, Any], console: Console | None = None) -> None:
    """Print the results table (measured vs goal, PASS/MISS, etcd figures) and the run header."""
    console = console or Console()
    table = Table(title="eventconfig benchmark: goals, etcd in the same run, the floor", title_justify="left",
                  show_lines=False)
    for column, kwargs in (("scenario", {"style": "cyan"}), ("figure", {}), ("measured", {"justify": "right"}),
                           ("goal", {"justify": "right"}), ("result", {"justify": "center"}),
                           ("etcd (same run with --peer etcd)", {"style": "dim"}), ("notes", {"overflow": "fold"})):
        table.add_column(column, **kwargs)
    for row in rows:
        measured = "—" if row.value is None else f"{_number(row.value)} {row.unit}"
        goal = row.goal.text(row.unit) if row.goal else ""
        verdict = row.verdict
        table.add_row(row.scenario, row.metric, measured, goal, f"[{_STYLE[verdict]}]{verdict}[/]", row.etcd,
                      row.note)
    console.print(table)
    console.print("  ".join(f"[bold]{k}[/]: {v}" for k, v in header.items()), soft_wrap=True)


def write_json(path: Path, rows: Sequence[Row], header: Mapping[str, Any]) -> None:
    """Write the header and every row (goal, verdict and extra details included) as JSON."""
    payload = {"run": dict(header), "results": [{**asdict(r), "verdict": r.verdict} for r in rows]}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
