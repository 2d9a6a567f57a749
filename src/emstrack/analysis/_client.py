"""The general reader: ``MlflowClient.search_runs`` page by page, for any tracking URI.

Used for ``http(s)://`` tracking servers and other non-SQL stores, and by the SQL reader for
filters outside the subset it translates. MLflow evaluates the filter, so its full syntax
works here; an invalid filter raises :class:`~emstrack.analysis.InvalidFilterError` with
MLflow's message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._errors import describe
from .._uris import redact_uri
from ._errors import ExperimentNotFoundError, InvalidFilterError, StoreError, listing
from ._reader import (
    INFO_COLUMNS,
    PARENT_TAG,
    KeyKind,
    RunTable,
    Selection,
    empty_info,
    pivot,
)

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

PAGE_SIZE = 10_000


class ClientReader:
    """Reads runs through ``MlflowClient`` (see the module docstring)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._shown = redact_uri(uri)
        self._client_: MlflowClient | None = None

    @property
    def _client(self) -> MlflowClient:
        if self._client_ is None:
            from mlflow.tracking import MlflowClient

            self._client_ = MlflowClient(tracking_uri=self.uri)
        return self._client_

    def close(self) -> None:
        """Nothing to release: the client holds no open connection between calls."""

    def experiment_ids(self, names: Sequence[str]) -> dict[str, str]:
        """Map each name to its active experiment's id; raise naming the ones that are not."""
        found: dict[str, str] = {}
        missing: list[str] = []
        for name in names:
            experiment = self._call(self._client.get_experiment_by_name, name)
            if experiment is None or experiment.lifecycle_stage != "active":
                missing.append(name)
            else:
                found[name] = experiment.experiment_id
        if missing:
            known = [e.name for e in self._call(self._client.search_experiments)]
            plural = "s" if len(missing) > 1 else ""
            names_text = ", ".join(repr(name) for name in missing)
            raise ExperimentNotFoundError(
                f"no experiment{plural} {names_text} in {self._shown}; "
                f"{listing(known, 'experiments')}"
            )
        return found

    def read(
        self,
        experiment_ids: Sequence[str],
        filter: str | None,
        selection: Selection,
        run_ids: Sequence[str] | None = None,
    ) -> RunTable:
        """Active runs of the experiments matching ``filter``, restricted to ``selection``."""
        runs = self._search(list(experiment_ids), filter, run_ids)
        if not runs:
            return RunTable(empty_info())
        info = pd.DataFrame(
            [
                (
                    run.info.run_id,
                    run.info.run_name,
                    str(run.info.experiment_id),
                    run.info.status,
                    run.info.start_time,
                    run.info.end_time,
                    run.data.tags.get(PARENT_TAG),
                )
                for run in runs
            ],
            columns=list(INFO_COLUMNS),
            dtype="object",
        )
        info["start_ms"] = pd.to_numeric(info["start_ms"]).astype("float64")
        info["end_ms"] = pd.to_numeric(info["end_ms"]).astype("float64")
        info = info.sort_values(
            ["start_ms", "run_id"], ascending=[False, True], kind="stable"
        ).reset_index(drop=True)
        index = pd.Index(info["run_id"], name="run_id")

        def rows(kind: str) -> list[tuple[str, str, Any]]:
            out = []
            for run in runs:
                values: dict[str, Any] = getattr(run.data, kind)
                for key, value in values.items():
                    if _wanted(selection, kind, key):
                        out.append((run.info.run_id, key, value))
            return out

        return RunTable(
            info,
            params=pivot(rows("params"), index),
            metrics=pivot(rows("metrics"), index, numeric=True),
            tags=pivot(rows("tags"), index),
        )

    def best_run_id(
        self,
        experiment_ids: Sequence[str],
        filter: str | None,
        metric: str,
        statuses: Sequence[str],
        higher_is_better: bool,
    ) -> str | None:
        """Never ranks in the store: ``None`` (``best_run`` ranks the runs read)."""
        return None

    def keys(self, experiment_ids: Sequence[str], kind: KeyKind) -> list[str]:
        """Every key of that kind among the active runs of the experiments."""
        found: set[str] = set()
        for run in self._search(list(experiment_ids), None, None):
            found.update(getattr(run.data, kind))
        return sorted(found)

    def existing_runs(self, run_ids: Sequence[str]) -> list[str]:
        """Those of ``run_ids`` that are active runs (of active experiments)."""
        from mlflow.exceptions import MlflowException

        found = []
        for run_id in run_ids:
            try:
                run = self._client.get_run(run_id)
            except MlflowException as error:
                if _code(error) in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                    continue
                raise StoreError(f"reading {self._shown} failed: {describe(error)}") from error
            except Exception as error:
                raise StoreError(f"reading {self._shown} failed: {describe(error)}") from error
            if run.info.lifecycle_stage == "active":
                experiment = self._call(self._client.get_experiment, run.info.experiment_id)
                if experiment.lifecycle_stage == "active":
                    found.append(run_id)
        return found

    def run_metric_keys(self, run_ids: Sequence[str]) -> list[str]:
        """Every metric key logged by any of the runs."""
        found: set[str] = set()
        for run_id in run_ids:
            found.update(self._call(self._client.get_run, run_id).data.metrics)
        return sorted(found)

    def history(self, run_ids: Sequence[str], metric: str) -> pd.DataFrame:
        """Every point of ``metric`` logged by the runs, in run, step and time order."""
        rows: list[tuple[str, int, int, float]] = []
        for run_id in run_ids:
            points = self._call(self._client.get_metric_history, run_id, metric)
            ordered = sorted(points, key=lambda p: (p.step, p.timestamp, p.value))
            rows.extend((run_id, p.step, p.timestamp, p.value) for p in ordered)
        frame = pd.DataFrame(rows, columns=["run_id", "step", "timestamp_ms", "value"])
        if not frame.empty:
            frame["step"] = frame["step"].astype("int64")
            frame["timestamp_ms"] = frame["timestamp_ms"].astype("int64")
            frame["value"] = frame["value"].astype("float64")
        return frame

    # ------------------------------------------------------------------ internals

    def _search(
        self, experiment_ids: list[str], filter: str | None, run_ids: Sequence[str] | None
    ) -> list[Any]:
        from mlflow.entities import ViewType

        clauses = [filter] if filter and filter.strip() else []
        if run_ids is not None:
            quoted = ", ".join(f"'{run_id}'" for run_id in run_ids) or "''"
            clauses.append(f"attributes.run_id IN ({quoted})")
        filter_string = " AND ".join(clauses)
        runs: list[Any] = []
        token = None
        while True:
            page = self._call(
                self._client.search_runs,
                experiment_ids,
                filter_string=filter_string,
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=PAGE_SIZE,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def _call(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return action(*args, **kwargs)
        except MlflowException as error:
            if _code(error) == "INVALID_PARAMETER_VALUE" and "filter_string" in kwargs:
                reason = describe(error, with_type=False)
                raise InvalidFilterError(
                    f"invalid filter {kwargs['filter_string']!r}: {reason}"
                ) from error
            raise StoreError(f"reading {self._shown} failed: {describe(error)}") from error
        except Exception as error:
            raise StoreError(f"reading {self._shown} failed: {describe(error)}") from error


def _wanted(selection: Selection, kind: str, key: str) -> bool:
    if kind == "params":
        return selection.params is None or key in selection.params
    if kind == "metrics":
        return selection.metrics is None or key in selection.metrics
    return selection.wants_tag(key)


def _code(error: BaseException) -> str:
    return str(getattr(error, "error_code", ""))
