"""The subset of MLflow's run filter syntax that the SQL fast path evaluates itself.

:func:`parse` turns a filter string into :class:`Condition` objects when every clause is one of
these, joined by ``AND`` (case-insensitive)::

    params.<key>  =, !=, LIKE, ILIKE  '<text>'      params.<key> IS NULL, IS NOT NULL
    tags.<key>    =, !=, LIKE, ILIKE  '<text>'      tags.<key>   IS NULL, IS NOT NULL
    metrics.<key> =, !=, <, <=, >, >=  <number>
    attributes.<run_id | run_name | status | user_id | artifact_uri>  =, !=, LIKE, ILIKE  '<text>'
    attributes.run_id  IN, NOT IN  ('<id>', ...)
    attributes.<start_time | end_time | created>  =, !=, <, <=, >, >=  <number (ms since epoch)>

Keys may be written bare (``params.battery.capacity_kwh``), in backticks or in double quotes;
the entity may be spelled as MLflow allows (``param``, ``metric``, ``tag``, ``attribute``,
``attr``, ``run``, or nothing for attributes); text in single or double quotes. Anything else
returns ``None`` and the caller hands the filter to MLflow's own ``search_runs``, which then
either evaluates it or rejects it: the subset never changes what a filter means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Condition", "parse"]


@dataclass(frozen=True, slots=True)
class Condition:
    """One comparison of a filter.

    ``kind`` is ``param``, ``metric``, ``tag`` or ``attribute``; attribute keys are canonical
    (``created`` is ``start_time``, ``run name`` is ``run_name``); ``op`` is upper case.
    """

    kind: str
    key: str
    op: str
    value: str | float | int | tuple[str, ...] | None


_ENTITIES = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
_STRING_ATTRIBUTES = {
    "run_id": "run_id",
    "run_name": "run_name",
    "run name": "run_name",
    "Run name": "run_name",
    "Run Name": "run_name",
    "status": "status",
    "user_id": "user_id",
    "artifact_uri": "artifact_uri",
}
_NUMERIC_ATTRIBUTES = {
    "start_time": "start_time",
    "end_time": "end_time",
    "created": "start_time",
    "Created": "start_time",
}
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})
_NUMERIC_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_NULL_OPS = frozenset({"IS NULL", "IS NOT NULL"})
_LIST_OPS = frozenset({"IN", "NOT IN"})

_NAME = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_QUOTED_KEY = r"`[^`]+`|\"[^\"]+\""
_IDENTIFIER = re.compile(
    rf"(?:(?P<entity>[a-z]+)\.(?P<key>{_QUOTED_KEY}|{_NAME})|(?P<bare>[A-Za-z_]\w*))"
)
_OPERATOR = re.compile(
    r"\s*(?P<op>!=|>=|<=|=|<|>|(?i:is\s+not\s+null|is\s+null|not\s+in|in|ilike|like))"
    r"(?=[\s('\"\d.+-]|$)"
)
_STRING = r"'[^']*'|\"[^\"]*\""
_NUMBER = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_VALUE = re.compile(
    rf"\s*(?:(?P<string>{_STRING})|(?P<number>{_NUMBER})(?![\w.])"
    rf"|(?P<list>\(\s*(?:{_STRING})(?:\s*,\s*(?:{_STRING}))*\s*\)))"
)
_LIST_ITEM = re.compile(_STRING)
_AND = re.compile(r"\s+(?i:and)\s+")
_END = re.compile(r"\s*$")


def parse(text: str | None) -> list[Condition] | None:
    """The conditions of ``text`` if it lies in the supported subset, else ``None``.

    An empty or blank filter is no condition at all.
    """
    if text is None or not text.strip():
        return []
    conditions: list[Condition] = []
    position = 0
    text = text.strip()
    while True:
        parsed = _clause(text, position)
        if parsed is None:
            return None
        condition, position = parsed
        conditions.append(condition)
        if _END.fullmatch(text, position):
            return conditions
        joiner = _AND.match(text, position)
        if joiner is None:
            return None
        position = joiner.end()


def _clause(text: str, position: int) -> tuple[Condition, int] | None:
    identifier = _IDENTIFIER.match(text, position)
    if identifier is None:
        return None
    kind_key = _kind_and_key(identifier)
    if kind_key is None:
        return None
    kind, key = kind_key
    operator = _OPERATOR.match(text, identifier.end())
    if operator is None:
        return None
    op = " ".join(operator["op"].upper().split())
    if op in _NULL_OPS:
        if kind not in {"param", "tag"}:
            return None
        return Condition(kind, key, op, None), operator.end()
    value = _VALUE.match(text, operator.end())
    if value is None:
        return None
    condition = _condition(kind, key, op, value)
    return (condition, value.end()) if condition is not None else None


def _kind_and_key(match: re.Match[str]) -> tuple[str, str] | None:
    if match["bare"] is not None:
        kind, key = "attribute", match["bare"]
    else:
        entity = _ENTITIES.get(match["entity"])
        if entity is None:
            return None
        kind, key = entity, match["key"]
        if key[0] in '`"':
            key = key[1:-1]
    if kind == "attribute":
        canonical = _STRING_ATTRIBUTES.get(key) or _NUMERIC_ATTRIBUTES.get(key)
        if canonical is None:
            return None
        return kind, canonical
    return kind, key


def _condition(kind: str, key: str, op: str, value: re.Match[str]) -> Condition | None:
    string, number, items = value["string"], value["number"], value["list"]
    if kind == "metric" or (kind == "attribute" and key in {"start_time", "end_time"}):
        if number is None or op not in _NUMERIC_OPS:
            return None
        if kind == "metric":
            return Condition(kind, key, op, float(number))
        as_int = re.fullmatch(r"-?\d+", number) is not None
        return Condition(kind, key, op, int(number) if as_int else float(number))
    if op in _LIST_OPS:
        if kind != "attribute" or key != "run_id" or items is None:
            return None
        return Condition(kind, key, op, tuple(item[1:-1] for item in _LIST_ITEM.findall(items)))
    if string is None or op not in _STRING_OPS:
        return None
    return Condition(kind, key, op, string[1:-1])
