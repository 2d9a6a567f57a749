"""``log_optimization_model`` and ``save_optimization_model``."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import emstrack
from emstrack._errors import ConfigurationError, TrackingError
from emstrack.model._config import ConfigSource
from emstrack.model._package import DataSource, ModelPackage, build_package

DEFAULT_NAME = "ems_optimization_model"


def log_optimization_model(
    config: ConfigSource = None,
    *,
    name: str = DEFAULT_NAME,
    registered_model_name: str | None = None,
    data: DataSource = None,
    optimizer: str | None = None,
) -> Any:
    """Log the optimization as an MLflow model, optionally registering a new version.

    Inside an emstrack run (``tracked_run`` or a ``@tracked_optimization`` call, also in
    background mode) the model is attached to that run; outside one, a run called ``name`` is
    created for it, with the configuration as its params. MLflow's fluent run stack is left as
    it was.

    Args:
        config: A :class:`~emstrack.model.ModelConfig`, a mapping of its fields, a JSON file,
            or None for the defaults.
        name: The model's name in the run (and the created run's name).
        registered_model_name: Register the model under this name: version 1, 2, ...
        data: Household data to ship instead of ``config.data``: a path (the file or folder is
            copied into the model) or a DataFrame / ``HouseholdData`` (written into it as
            CSV). None with no ``config.data``: the sample bundled with emstrack.
        optimizer: A user's optimizer, ``"package.module:function"`` or
            ``"path/to/file.py:function"``; code that is not an installed package is shipped.

    Returns:
        MLflow's ``ModelInfo``: ``model_uri``, ``run_id``, ``registered_model_version``, ...

    Raises:
        ConfigurationError: If the configuration, data, solver or optimizer cannot work
            (before anything is logged).
        TrackingError: If the active run has not reached the store, so nothing can attach.

    """
    with tempfile.TemporaryDirectory(prefix="emstrack-model-") as staging:
        package = build_package(config, Path(staging), data=data, optimizer=optimizer)
        run = emstrack.active_run()
        if run is not None:
            return _log_into(run, package, name, registered_model_name)
        with emstrack.tracked_run(name, params=package.config) as created:
            return _log_into(created, package, name, registered_model_name)


def save_optimization_model(
    config: ConfigSource,
    path: str | os.PathLike[str],
    *,
    data: DataSource = None,
    optimizer: str | None = None,
) -> Path:
    """Save the optimization as an MLflow model folder at ``path`` (which must not exist).

    Arguments as for :func:`log_optimization_model`. Load it with
    ``mlflow.pyfunc.load_model(path)``.

    Returns:
        The model folder.

    Raises:
        ConfigurationError: If the configuration, data, solver or optimizer cannot work, or
            ``path`` exists.

    """
    import mlflow

    target = Path(path).expanduser().resolve()
    if target.exists():
        raise ConfigurationError(f"path: {target} already exists")
    with tempfile.TemporaryDirectory(prefix="emstrack-model-") as staging:
        package = build_package(config, Path(staging), data=data, optimizer=optimizer)
        with _quiet_mlflow():
            mlflow.pyfunc.save_model(str(target), **package.mlflow_arguments())
    return target


def _log_into(
    run: emstrack.Run, package: ModelPackage, name: str, registered_model_name: str | None
) -> Any:
    run.flush()
    run_id = run.run_id
    if run_id is None:
        raise TrackingError(
            f"emstrack run {run.name or run.key!r} has not reached the store "
            f"({run.tracking_uri}); the model cannot be attached to it"
        )
    # A thread of its own: MLflow's fluent run stack is thread-local and emstrack's active run
    # is a context variable, so neither the caller's MLflow state nor its run see the solve
    # MLflow makes when it checks the input example.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="emstrack-model") as pool:
        future = pool.submit(
            _log_model, run.tracking_uri, run_id, package, name, registered_model_name
        )
        return future.result()


def _log_model(
    uri: str, run_id: str, package: ModelPackage, name: str, registered_model_name: str | None
) -> Any:
    import mlflow
    from mlflow.models import Model

    with _tracking_uri(uri), _quiet_mlflow():
        return Model.log(
            artifact_path=None,
            name=name,
            flavor=mlflow.pyfunc,
            run_id=run_id,
            registered_model_name=registered_model_name,
            flavor_name="pyfunc.CustomPythonModel",
            **package.mlflow_arguments(),
        )


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow at ``uri`` for the block; restore the URI and its environment variable."""
    import mlflow

    if mlflow.get_tracking_uri() == uri:
        yield
        return
    variable = "MLFLOW_TRACKING_URI"
    saved_variable = os.environ.get(variable)
    from mlflow.tracking._tracking_service import utils

    saved = utils._tracking_uri
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved)  # type: ignore[arg-type]
        if saved_variable is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = saved_variable


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Silence what MLflow 3.17 itself triggers in pandas 3 when it writes the input example."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Operation with range is deprecated")
        yield
