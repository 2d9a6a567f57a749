"""Which direction of a metric is better: the rule of :func:`emstrack.analysis.metric_direction`.

``emstrack.analysis`` imports pandas when it is imported; the rule itself
(``emstrack/analysis/_direction.py``) needs only ``re``. It is loaded here from its file, under a
private name, so a check costs no pandas import.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

_RULE_FILE = Path(__file__).resolve().parent.parent / "analysis" / "_direction.py"
_PRIVATE_NAME = "emstrack.pytest_plugin._analysis_direction"


def higher_is_better(metric: str) -> bool | None:
    """``True`` if higher values are better, ``False`` if lower, ``None`` if unknown."""
    return _rule()(metric)


@functools.cache
def _rule() -> Callable[[str], bool | None]:
    loaded = sys.modules.get("emstrack.analysis._direction")
    if loaded is not None:
        infer: Callable[[str], bool | None] = loaded.infer
        return infer
    spec = importlib.util.spec_from_file_location(_PRIVATE_NAME, _RULE_FILE)
    if spec is None or spec.loader is None:  # pragma: no cover - an unusual installation
        from emstrack.analysis import metric_direction

        return metric_direction
    module = importlib.util.module_from_spec(spec)
    sys.modules[_PRIVATE_NAME] = module
    spec.loader.exec_module(module)
    rule: Callable[[str], bool | None] = module.infer
    return rule
