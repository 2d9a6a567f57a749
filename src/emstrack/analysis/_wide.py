"""Long ``(run_id, key, value)`` rows pivoted chunk by chunk into one wide frame.

:func:`emstrack.analysis._reader.pivot` needs every row at once as Python tuples and a pandas
frame of them; at 100,000 runs that is millions of rows held twice. :class:`WidePivot` takes the
rows in chunks (a cursor's ``fetchmany``), places each value straight into one column array per
key (NumPy ``float64`` for metrics, ``object`` for text) at its run's position and drops the chunk,
so memory holds the result and one chunk only. The frame it builds equals ``pivot``'s: columns
sorted by key, rows on the given index, NaN where a run has no value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter

import numpy as np
import pandas as pd

__all__ = ["WidePivot", "pivot_chunks"]


class WidePivot:
    """Collects ``(run_id, key, value)`` chunks on ``index`` (run ids in result order)."""

    def __init__(self, index: pd.Index, numeric: bool = False) -> None:
        self._index = index
        self._numeric = numeric
        self._columns: dict[str, np.ndarray] = {}

    def add(self, rows: Sequence[Sequence[object]]) -> None:
        """Place one chunk of rows; rows of runs that are not in the index are dropped."""
        if not rows:
            return
        # itemgetter over the rows is several times faster than zip(*rows) on 50,000 rows.
        run_ids, keys, values = (list(map(itemgetter(at), rows)) for at in range(3))
        positions = self._index.get_indexer(pd.Index(run_ids, dtype=object))
        if self._numeric:
            numbers = np.asarray(values, dtype="float64")
        else:
            numbers = np.empty(len(values), dtype=object)
            numbers[:] = values
        codes, uniques = pd.factorize(np.asarray(keys, dtype=object))
        known = positions >= 0
        for code, key in enumerate(uniques):
            chosen = (codes == code) & known
            if chosen.any():  # a key only runs outside the index have makes no column
                self._column(str(key))[positions[chosen]] = numbers[chosen]

    def _column(self, key: str) -> np.ndarray:
        column = self._columns.get(key)
        if column is None:
            if self._numeric:
                column = np.full(len(self._index), np.nan, dtype="float64")
            else:
                column = np.empty(len(self._index), dtype=object)
                column[:] = np.nan
            self._columns[key] = column
        return column

    def frame(self) -> pd.DataFrame:
        """The wide frame: one column per key seen, sorted; NaN where a run has no value."""
        if not self._columns:
            return pd.DataFrame(index=self._index)
        keys = sorted(self._columns)
        return pd.DataFrame({key: self._columns[key] for key in keys}, index=self._index)


def pivot_chunks(
    chunks: Iterable[Sequence[Sequence[object]]], index: pd.Index, numeric: bool = False
) -> pd.DataFrame:
    """:class:`WidePivot` over every chunk."""
    wide = WidePivot(index, numeric)
    for chunk in chunks:
        wide.add(chunk)
    return wide.frame()
