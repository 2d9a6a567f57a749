"""Small HTML building blocks shared by the notebook displays and the report; every value escaped.

Nothing here knows about runs or stores: callers pass plain values, these functions turn them
into escaped text. Numbers are shown in a short readable form (4 significant decimals).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["escape", "format_value", "key_value_table", "link", "table"]

_STYLE_TABLE = "border-collapse:collapse;margin:0.3em 0;font-size:0.92em"
_STYLE_CELL = "border:1px solid #ccc;padding:0.2em 0.6em;text-align:left;vertical-align:top"
_STYLE_NUMBER = "border:1px solid #ccc;padding:0.2em 0.6em;text-align:right;white-space:nowrap"


def escape(value: object) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape(format_value(value), quote=True)


def format_value(value: object) -> str:
    """Readable text for a cell: floats with up to 4 decimals, ``-`` for missing values."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        number = float(value)  # type: ignore[arg-type]
        if math.isnan(number):
            return "-"
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        if number != 0 and (abs(number) >= 1e7 or abs(number) < 1e-4):
            return f"{number:.4g}"
        text = f"{number:,.4f}".rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    text = str(value)
    return "-" if text in {"nan", "NaN", "<NA>", "NaT", "None"} else text


def link(url: str, text: object) -> str:
    """An ``<a>`` element; only ``http(s)`` and ``file`` URLs become links, others plain text."""
    if not url.lower().startswith(("http://", "https://", "file:")):
        return escape(text)
    return f'<a href="{html.escape(url, quote=True)}" target="_blank">{escape(text)}</a>'


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float) or type(value).__name__.startswith(("float", "int"))


def table(
    header: Sequence[object],
    rows: Iterable[Sequence[object]],
    *,
    raw_columns: Iterable[int] = (),
    css_class: str = "emstrack",
) -> str:
    """An HTML table; cells escaped, numbers right-aligned.

    ``raw_columns`` are positions whose cells the caller already made into HTML (e.g. with
    :func:`link`); every other cell is escaped here.
    """
    raw = set(raw_columns)
    head = "".join(f'<th style="{_STYLE_CELL}">{escape(name)}</th>' for name in header)
    body = []
    for row in rows:
        cells = []
        for position, value in enumerate(row):
            style = _STYLE_NUMBER if _is_number(value) else _STYLE_CELL
            text = str(value) if position in raw else escape(value)
            cells.append(f'<td style="{style}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="{html.escape(css_class, quote=True)}" style="{_STYLE_TABLE}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def key_value_table(
    title: object, items: Mapping[str, object], *, raw_keys: Iterable[str] = ()
) -> str:
    """A titled two-column table (``key | value``), as notebooks show one object."""
    raw = set(raw_keys)
    rows = []
    for key, value in items.items():
        shown = str(value) if key in raw else escape(value)
        style = _STYLE_NUMBER if _is_number(value) else _STYLE_CELL
        rows.append(
            f'<tr><th style="{_STYLE_CELL}">{escape(key)}</th><td style="{style}">{shown}</td></tr>'
        )
    return (
        f'<div class="emstrack"><strong>{escape(title)}</strong>'
        f'<table style="{_STYLE_TABLE}"><tbody>{"".join(rows)}</tbody></table></div>'
    )
