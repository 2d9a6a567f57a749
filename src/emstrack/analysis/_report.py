"""A shareable report of experiments: one self-contained HTML file for people who never use MLflow.

Everything is inside the file: the CSS in a ``<style>`` element, the figures of
:mod:`emstrack.plots` as base64 PNG ``data:`` URIs; there is no script and no reference to the
network, so it opens from disk in any browser, mailed or archived. Every value read from the
store (run names, params, tags, metric names) is HTML-escaped: a run called
``<script>alert(1)</script>`` shows as that text.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import _html
from .._version import __version__
from ._errors import AnalysisError, NoRunsError, listing
from ._selection import direction_of

__all__ = ["build_report", "write_report"]

PREFERRED_METRICS = ("savings_pct", "savings_eur", "total_cost")
COST_METRICS = ("total_cost", "net_cost", "cost")
PREFERRED_KEYS = ("building_id", "scenario", "optimization_mode")
TOP_N = 5
SCENARIO_ORDER = ("baseline", "battery_only", "battery_smart_ev", "self_consumption")
"""Pipeline A's scenarios, in the order the tables show them (others follow, sorted)."""

_EXPLAINED = {
    "savings_pct": "the optimized plan's saving against the no-EMS baseline, in percent of "
    "what the baseline paid for grid imports (higher is better)",
    "savings_eur": "the optimized plan's saving against the no-EMS baseline, in EUR over the "
    "days optimized (higher is better)",
    "total_cost": "the net electricity cost of the plan in EUR: grid imports minus feed-in "
    "revenue (lower is better; negative means the building earned money)",
}

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       margin: 2em auto; max-width: 72em; padding: 0 1em; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 2px solid #e3e3e3;
     padding-bottom: 0.2em; }
p.meta { color: #555; margin-top: 0; }
.cards { display: flex; gap: 1em; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.7em 1em; min-width: 18em; flex: 1; }
.card.best { border-left: 6px solid #2e8b57; }
.card.worst { border-left: 6px solid #c0392b; }
.card .value { font-size: 1.5em; font-weight: 600; }
table.emstrack th { background: #f4f6f8; }
table.emstrack tbody tr:nth-child(even) { background: #fafafa; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.note { color: #555; font-size: 0.9em; }
footer { margin-top: 3em; color: #777; font-size: 0.85em; }
"""


@dataclass
class _Figure:
    caption: str
    png: bytes


@dataclass
class _Context:
    names: list[str]
    frame: pd.DataFrame
    metric: str
    higher_is_better: bool
    keys: list[str]
    cost_metric: str | None
    daily_metric: str | None
    tracking_uri: str
    filter: str | None
    notes: list[str] = field(default_factory=list)


def write_report(path: str | os.PathLike[str], html_text: str) -> Path:
    """Write ``html_text`` to ``path`` (UTF-8) under a temporary name, then rename it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(html_text, encoding="utf-8")
    os.replace(temporary, target)
    return target


def build_report(
    names: list[str],
    *,
    metric: str | None,
    by: str | Sequence[str] | None,
    higher_is_better: bool | None,
    filter: str | None,
    title: str | None,
    tracking_uri: str,
) -> str:
    """The report's HTML text (see :func:`emstrack.analysis.report`)."""
    from .. import analysis

    frame = analysis.runs(names, filter, tracking_uri=tracking_uri)
    if frame.empty:
        raise NoRunsError(f"no runs in {', '.join(repr(n) for n in names)} to report on")
    chosen = metric or _default_metric(frame)
    if f"metrics.{chosen}" not in frame.columns:
        known = [c[8:] for c in frame.columns if c.startswith("metrics.")]
        raise analysis.MetricNotFoundError(
            f"no run of {', '.join(repr(n) for n in names)} logged metric {chosen!r}; "
            f"{listing(known, 'metrics')}"
        )
    direction = direction_of(chosen, higher_is_better)
    keys = _keys(frame, by)
    context = _Context(
        names=names,
        frame=frame,
        metric=chosen,
        higher_is_better=direction,
        keys=keys,
        cost_metric=next(
            (m for m in COST_METRICS if m != chosen and f"metrics.{m}" in frame.columns), None
        ),
        daily_metric=_daily_metric(frame, chosen),
        tracking_uri=tracking_uri,
        filter=filter,
    )
    sections = [
        _introduction(context),
        _headline(context),
        _pivot_section(context),
        _comparison_section(context),
        _ranking_section(context),
        _figures_section(context),
        _all_runs_section(context),
    ]
    heading = title or f"EMS results: {', '.join(names)}"
    generated = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    from .._uris import redact_uri

    meta = (
        f"{len(frame)} runs in {_plural(len(names), 'experiment')} "
        f"{', '.join(_html.escape(repr(n)) for n in names)} &middot; generated "
        f"{_html.escape(generated)} from {_html.escape(redact_uri(tracking_uri))} "
        f"by emstrack {_html.escape(__version__)}"
    )
    notes = "".join(f'<p class="note">{_html.escape(n)}</p>' for n in context.notes)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_html.escape(heading)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{_html.escape(heading)}</h1><p class="meta">{meta}</p>'
        + "".join(s for s in sections if s)
        + notes
        + "<footer>Self-contained report: no server, no network, no scripts. Figures are "
        "embedded images; numbers are rounded to 4 decimals.</footer></body></html>\n"
    )


# ---------------------------------------------------------------------- choices


def _default_metric(frame: pd.DataFrame) -> str:
    from . import metric_direction

    for name in PREFERRED_METRICS:
        if f"metrics.{name}" in frame.columns:
            return name
    for column in sorted(c for c in frame.columns if c.startswith("metrics.")):
        name = column[8:]
        if "." not in name and metric_direction(name) is not None:
            return name
    raise AnalysisError(
        "no metric to report on: pass metric= (--metric); none of "
        f"{', '.join(PREFERRED_METRICS)} was logged"
    )


def _keys(frame: pd.DataFrame, by: str | Sequence[str] | None) -> list[str]:
    if by is not None:
        items = [by] if isinstance(by, str) else list(by)
        return [p.strip() for item in items for p in item.split(",") if p.strip()]
    present = [k for k in PREFERRED_KEYS if f"params.{k}" in frame.columns]
    if "scenario" in present and "optimization_mode" in present:
        present.remove("optimization_mode")  # the scenario names the mode already
    return present[:2]


def _daily_metric(frame: pd.DataFrame, metric: str) -> str | None:
    for candidate in (f"daily.{metric}", "daily.savings_eur", "daily.savings_pct"):
        if f"metrics.{candidate}" in frame.columns:
            return candidate
    return None


# ---------------------------------------------------------------------- sections


def _introduction(context: _Context) -> str:
    metric = context.metric
    meaning = _EXPLAINED.get(
        metric, f"{'higher' if context.higher_is_better else 'lower'} values are better"
    )
    grouped = (
        f" Runs are grouped by {', '.join(_html.escape(k) for k in context.keys)}."
        if context.keys
        else ""
    )
    control = ""
    if "baseline" in set(context.frame.get("params.scenario", pd.Series(dtype=object)).dropna()):
        control = (
            " Runs of scenario <em>baseline</em> are the control: the building without any "
            "energy management, so they save nothing by definition."
        )
    return (
        "<h2>What this report shows</h2>"
        "<p>Each <em>run</em> is one execution of an energy-management optimization: one "
        "building, one scenario (which devices the optimizer may control), a few days of real "
        "household data. The figure compared throughout is "
        f"<strong>{_html.escape(metric)}</strong>: {_html.escape(meaning)}.{grouped} "
        f"Only runs that finished are compared; failed runs are listed at the end.{control}</p>"
    )


def _ranked(context: _Context) -> pd.DataFrame:
    frame = context.frame
    column = f"metrics.{context.metric}"
    done = frame[(frame["status"] == "FINISHED") & frame[column].notna()]
    return done.sort_values(
        [column, "start_time"], ascending=[not context.higher_is_better, True], kind="stable"
    )


def _describe(row: pd.Series, keys: Sequence[str]) -> str:
    parts = [
        f"{key} {_html.format_value(row.get(f'params.{key}', row.get(f'tags.{key}')))}"
        for key in keys
    ]
    return ", ".join(parts)


def _headline(context: _Context) -> str:
    ranked = _ranked(context)
    if ranked.empty:
        context.notes.append(f"No finished run logged {context.metric}.")
        return ""
    column = f"metrics.{context.metric}"
    cards = []
    for css, label, row in (
        ("best", "Best run", ranked.iloc[0]),
        ("worst", "Worst run", ranked.iloc[-1]),
    ):
        cards.append(
            f'<div class="card {css}"><div>{label}</div>'
            f'<div class="value">{_html.escape(row[column])} '
            f"<small>{_html.escape(context.metric)}</small></div>"
            f"<div><strong>{_html.escape(row['run_name'])}</strong></div>"
            f'<div class="note">{_html.escape(_describe(row, context.keys))}</div></div>'
        )
    return '<h2>Headline</h2><div class="cards">' + "".join(cards) + "</div>"


def _pivot_section(context: _Context) -> str:
    if len(context.keys) < 2:
        return ""
    ranked = _ranked(context)
    rows_key, columns_key = context.keys[0], context.keys[1]
    row_col, col_col = _key_column(ranked, rows_key), _key_column(ranked, columns_key)
    if row_col is None or col_col is None or ranked.empty:
        return ""
    data = pd.DataFrame(
        {
            "row": ranked[row_col].map(_html.format_value),
            "column": ranked[col_col].map(_html.format_value),
            "value": ranked[f"metrics.{context.metric}"].astype(float),
        }
    )
    table = data.pivot_table(index="row", columns="column", values="value", aggfunc="mean")
    columns = _ordered(list(table.columns))
    header = [rows_key, *columns]
    values = table.to_dict(orient="index")
    body = [[index, *(_cell(values[index].get(c)) for c in columns)] for index in table.index]
    title = _savings_title(context)
    return (
        f"<h2>{_html.escape(title)}</h2>"
        f"<p>Mean {_html.escape(context.metric)} of the finished runs, one row per "
        f"{_html.escape(rows_key)}, one column per {_html.escape(columns_key)}.</p>"
        + _html.table(header, body)
    )


def _comparison_section(context: _Context) -> str:
    from . import compare

    if not context.keys:
        return ""
    try:
        frame = compare(
            context.names,
            context.metric,
            by=context.keys,
            filter=context.filter,
            higher_is_better=context.higher_is_better,
            tracking_uri=context.tracking_uri,
        )
    except AnalysisError as error:
        context.notes.append(f"Comparison table left out: {error}")
        return ""
    header = [*context.keys, "runs", "mean", "min", "max", "best run"]
    body = [
        [
            *(row[k] for k in context.keys),
            row["count"],
            _cell(row["mean"]),
            _cell(row["min"]),
            _cell(row["max"]),
            row["best_run_name"],
        ]
        for _, row in frame.iterrows()
    ]
    direction = "higher" if context.higher_is_better else "lower"
    return (
        "<h2>Comparison</h2>"
        f"<p>{_html.escape(context.metric)} per group ({direction} is better): how many "
        "runs, their mean, the range, and the group's best run.</p>" + _html.table(header, body)
    )


def _ranking_section(context: _Context) -> str:
    ranked = _ranked(context)
    if ranked.empty:
        return ""
    column = f"metrics.{context.metric}"
    header = ["rank", "run", *context.keys, context.metric]
    if context.cost_metric:
        header.append(context.cost_metric)

    def rows(part: pd.DataFrame, ranks: Sequence[int]) -> list[list[object]]:
        out: list[list[object]] = []
        for rank, (_, row) in zip(ranks, part.iterrows(), strict=True):
            values: list[object] = [rank, row["run_name"]]
            values += [_param(row, key) for key in context.keys]
            values.append(_cell(row[column]))
            if context.cost_metric:
                values.append(_cell(row.get(f"metrics.{context.cost_metric}")))
            out.append(values)
        return out

    count = len(ranked)
    best = ranked.head(TOP_N)
    worst = ranked.tail(min(TOP_N, max(0, count - len(best))))
    text = f"<h2>Best and worst runs</h2><h3>Best {len(best)}</h3>"
    text += _html.table(header, rows(best, range(1, len(best) + 1)))
    if not worst.empty:
        first = count - len(worst) + 1
        text += f"<h3>Worst {len(worst)}</h3>"
        text += _html.table(header, rows(worst.iloc[::-1], range(count, first - 1, -1)))
    return text


def _figures_section(context: _Context) -> str:
    from .. import plots

    figures: list[_Figure] = []
    outer = context.keys[:1] or ["building_id"]
    drawers: list[tuple[str, Callable[[], Any]]] = [
        (
            f"{context.metric}: mean per group, whiskers from the lowest to the highest run",
            lambda: plots.plot_savings(
                context.names,
                metric=context.metric,
                by=context.keys or outer,
                filter=context.filter,
                tracking_uri=context.tracking_uri,
            ),
        )
    ]
    if context.cost_metric:
        cost = context.cost_metric
        drawers.append(
            (
                f"{cost}: distribution over the runs of each group",
                lambda: plots.plot_cost_distribution(
                    context.names,
                    metric=cost,
                    by=context.keys[-1:] or outer,
                    filter=context.filter,
                    tracking_uri=context.tracking_uri,
                ),
            )
        )
    if context.daily_metric:
        daily = context.daily_metric
        drawers.append(
            (
                f"{daily}: one line per run, one point per day",
                lambda: plots.plot_series(
                    context.names,
                    daily,
                    filter=context.filter,
                    max_runs=12,
                    tracking_uri=context.tracking_uri,
                ),
            )
        )
    for caption, draw in drawers:
        try:
            figure = draw()
        except (AnalysisError, ValueError) as error:
            context.notes.append(f"Figure left out ({caption}): {error}")
            continue
        figures.append(_Figure(caption, _png(figure)))
    if not figures:
        return ""
    parts = []
    for figure in figures:
        data = base64.b64encode(figure.png).decode("ascii")
        parts.append(
            f'<figure><img alt="{_html.escape(figure.caption)}" '
            f'src="data:image/png;base64,{data}">'
            f"<figcaption>{_html.escape(figure.caption)}</figcaption></figure>"
        )
    return "<h2>Figures</h2>" + "".join(parts)


def _all_runs_section(context: _Context) -> str:
    frame = context.frame.sort_values(["start_time", "run_id"], kind="stable")
    metrics = [context.metric] + ([context.cost_metric] if context.cost_metric else [])
    header = ["run", "status", "experiment", *context.keys, *metrics, "duration [s]", "run id"]
    body = []
    for _, row in frame.iterrows():
        body.append(
            [
                row["run_name"],
                row["status"],
                row["experiment"],
                *(_param(row, key) for key in context.keys),
                *(_cell(row.get(f"metrics.{m}")) for m in metrics),
                _cell(row["duration_s"]),
                row["run_id"],
            ]
        )
    failed = int((frame["status"] != "FINISHED").sum())
    note = f" {failed} of them did not finish and are not compared above." if failed else ""
    return (
        f"<h2>All runs</h2><p>Every run of the experiments, oldest first.{_html.escape(note)}</p>"
        + _html.table(header, body)
    )


# ---------------------------------------------------------------------- helpers


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _key_column(frame: pd.DataFrame, key: str) -> str | None:
    name = key.removeprefix("params.").removeprefix("tags.")
    for column in (key, f"params.{name}", f"tags.{name}"):
        if column in frame.columns:
            return column
    return None


def _param(row: pd.Series, key: str) -> object:
    name = key.removeprefix("params.").removeprefix("tags.")
    for column in (f"params.{name}", f"tags.{name}", key):
        if column in row.index:
            return row[column]
    return None


def _cell(value: object) -> object:
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return value
    return None if math.isnan(number) else number


def _ordered(columns: list[object]) -> list[object]:
    known = [c for c in SCENARIO_ORDER if c in columns]
    return known + [c for c in columns if c not in known]


def _savings_title(context: _Context) -> str:
    what = "Savings" if "saving" in context.metric else context.metric
    return f"{what} by {' and '.join(context.keys[:2])}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
