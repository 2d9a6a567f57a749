"""Whether higher or lower values of a metric are better, read from its name.

The name is split into lower-case words at every character that is not a letter or digit
(``peak_import_kw`` -> ``peak``, ``import``, ``kw``). Then, in this order:

1. **higher is better** if the words contain ``savings`` (or ``saving``), ``self consumption``
   or ``convergence achieved`` — so ``cost_savings`` is a saving;
2. **lower is better** if they contain ``cost``, ``time``, ``violations``, ``import`` or
   ``divergence`` (singular or plural);
3. otherwise the direction is unknown and the caller must say (``higher_is_better=``).
"""

from __future__ import annotations

import re

__all__ = ["HIGHER_IS_BETTER", "LOWER_IS_BETTER", "infer"]

HIGHER_IS_BETTER: tuple[tuple[str, ...], ...] = (
    ("savings",),
    ("saving",),
    ("self", "consumption"),
    ("convergence", "achieved"),
)
LOWER_IS_BETTER: tuple[tuple[str, ...], ...] = tuple(
    (word,)
    for stem in ("cost", "time", "violation", "import", "divergence")
    for word in (stem, stem + "s")
)
_SPLIT = re.compile(r"[^a-z0-9]+")


def infer(metric: str) -> bool | None:
    """``True`` if higher values of ``metric`` are better, ``False`` if lower, else ``None``."""
    words = tuple(word for word in _SPLIT.split(metric.lower()) if word)
    if any(_contains(words, phrase) for phrase in HIGHER_IS_BETTER):
        return True
    if any(_contains(words, phrase) for phrase in LOWER_IS_BETTER):
        return False
    return None


def _contains(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(words[i : i + size] == phrase for i in range(len(words) - size + 1))
