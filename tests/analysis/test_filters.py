"""The subset of MLflow's filter syntax that the SQL reader evaluates itself."""

from __future__ import annotations

from typing import Any

import pytest

from emstrack.analysis import _filters as _filter


def _mlflow_parse(text: str) -> list[tuple[str, str, str, Any]]:
    from mlflow.utils.search_utils import SearchUtils

    kinds = {"parameter": "param", "metric": "metric", "tag": "tag", "attribute": "attribute"}
    aliases = {"created": "start_time", "Created": "start_time", "run name": "run_name"}
    out = []
    for clause in SearchUtils.parse_search_filter(text):
        value = clause["value"]
        if clause["type"] == "metric":
            value = float(value)
        out.append(
            (
                kinds[clause["type"]],
                aliases.get(clause["key"], clause["key"]),
                clause["comparator"].upper(),
                value,
            )
        )
    return out


class TestFilterSubset:
    """The filters the SQL path translates are parsed exactly as MLflow parses them."""

    @pytest.mark.parametrize(
        "text",
        [
            "params.x = 'a'",
            "params.battery.capacity_kwh != '10'",
            "params.`a b` LIKE '%x'",
            'tags."solver.status" ILIKE "opt%"',
            "param.x IS NULL",
            "parameters.x is not null",
            "metrics.m > -1",
            "metric.m >= 2.5E-3",
            "metrics.`a.b` < .5",
            "metrics.m = 1",
            "attributes.status = 'FINISHED'",
            "attr.run_id IN ('a', 'b')",
            "run.run_id not in ('a')",
            'status != "FAILED"',
            "created > 1700000000000",
            "end_time <= 2.5",
            "attribute.`run name` = 'x'",
            "run_name LIKE 'r%' AnD params.y = 'b'  AND  tags.t != ''",
        ],
    )
    def test_subset_parses_like_mlflow(self, text: str) -> None:
        """Kind, key, operator and value equal MLflow's parse of the same string."""
        conditions = _filter.parse(text)
        assert conditions is not None
        assert [(c.kind, c.key, c.op, c.value) for c in conditions] == _mlflow_parse(text)

    @pytest.mark.parametrize(
        "text",
        [
            "params.x = 'a' OR params.y = 'b'",
            "params.x == 'a'",
            "tags.t = 'it''s'",
            "tags.'quoted' = 'x'",
            "attributes.status IN ('FINISHED')",
            "metrics.m > 'a'",
            "params.x > '1'",
            "Params.x = 'a'",
            "datasets.name = 'd'",
            "metrics.m IS NULL",
            "params.x = 'a' AND",
        ],
    )
    def test_anything_else_is_left_to_mlflow(self, text: str) -> None:
        """Outside the subset parse() gives None, so search_runs decides."""
        assert _filter.parse(text) is None

    @pytest.mark.parametrize("text", [None, "", "   "])
    def test_no_filter_is_no_condition(self, text: str | None) -> None:
        """None, empty and blank filters select everything."""
        assert _filter.parse(text) == []
