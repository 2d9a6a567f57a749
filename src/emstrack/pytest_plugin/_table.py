"""The failure report: a plain-text table of every metric checked, failing ones first."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._compare import Row
from ._flatten import Scalar

HEADER = ("metric", "baseline", "current", "abs diff", "rel diff", "tolerance", "verdict")


def render(rows: Sequence[Row]) -> str:
    """Aligned table with a header line; numbers right-aligned."""
    cells = [HEADER] + [
        (
            row.metric,
            value_text(row.baseline),
            value_text(row.current),
            "" if row.abs_diff is None else f"{row.abs_diff:.4g}",
            rel_text(row.rel_diff),
            row.tolerance,
            row.verdict.value,
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    right = {1, 2, 3, 4}
    lines = []
    for number, line in enumerate(cells):
        parts = [
            text.rjust(widths[i]) if i in right and number else text.ljust(widths[i])
            for i, text in enumerate(line)
        ]
        lines.append("  ".join(parts).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def value_text(value: Scalar | None) -> str:
    """A value as shown in the table (``-`` when absent)."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.10g}"


def rel_text(rel: float | None) -> str:
    """A relative difference in percent (``inf`` when the baseline is 0)."""
    if rel is None:
        return ""
    if math.isinf(rel):
        return "+inf" if rel > 0 else "-inf"
    return f"{rel * 100:+.4g} %"


def change_text(row: Row) -> str:
    """``total_cost -3.535 -> -3.383 (+4.3 %)``, for summaries."""
    if row.baseline is None:
        return f"{row.metric} new ({value_text(row.current)})"
    if row.current is None:
        return f"{row.metric} missing (was {value_text(row.baseline)})"
    rel = f" ({rel_text(row.rel_diff)})" if row.rel_diff is not None else ""
    return f"{row.metric} {value_text(row.baseline)} -> {value_text(row.current)}{rel}"
