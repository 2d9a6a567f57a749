"""emstrack's pytest plugin (entry point ``pytest11``): regression checks of optimization KPIs.

Fixtures
    ``ems_regression`` - ``ems_regression.check(metrics, *, rtol, atol, tolerances, directions,
    name)`` compares KPIs with the test's baseline file (or a run of a tracking store) and
    fails with a table of every metric when one regressed, changed, appeared or disappeared.
    ``emstrack_run`` - the test's own tracked :class:`emstrack.Run` (a temporary store unless
    ``--emstrack``).
Marker
    ``@pytest.mark.emstrack(rtol=..., atol=..., tolerances=..., directions=...,
    objective_metrics=..., experiment=...)`` - per-test defaults.
Options
    ``pytest --help``, group ``emstrack``: ``--emstrack``, ``--emstrack-experiment``,
    ``--emstrack-tracking-uri``, ``--emstrack-update-baseline``, ``--emstrack-baseline-dir``,
    ``--emstrack-baseline-from``.

This module is imported at every pytest start-up, so it imports nothing heavy: MLflow, pandas
and pydantic are loaded only when a test uses a fixture that needs them.
"""

from __future__ import annotations

import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import _keys, _options

if TYPE_CHECKING:
    from emstrack import Run

    from ._config import Settings
    from ._fixture import CheckResult, EmsRegression

__all__ = ["CheckResult", "EmsRegression", "ems_regression", "emstrack_run"]

_MARKER = (
    "emstrack(rtol=None, atol=None, tolerances=None, directions=None, objective_metrics=None, "
    "experiment=None): defaults of the test's ems_regression checks and of its recorded run"
)


def __getattr__(name: str) -> object:
    if name in ("CheckResult", "EmsRegression"):
        from . import _fixture

        return getattr(_fixture, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- hooks


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the options in the ``emstrack`` group of ``--help``."""
    _options.register(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, read the options, and start collecting the summary."""
    config.addinivalue_line("markers", _MARKER)
    if _options.in_use(config):
        _settings(config)  # malformed options are a usage error now, not at the first test
    from ._summary import Summary

    config.pluginmanager.register(Summary(), "emstrack-summary")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's temporary store, if one was made."""
    folder = config.stash.get(_keys.TEMPORARY_STORE, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> str | None:
    """One header line when an emstrack option is in use."""
    if not _options.in_use(config):
        return None
    settings = _settings(config)
    parts = []
    if settings.track:
        parts.append(f"recording runs in experiment {settings.experiment!r}")
    if settings.update:
        parts.append("updating baselines")
    if settings.baseline_from is not None:
        parts.append(f"baselines from {settings.baseline_from.describe()}")
    return f"emstrack: {', '.join(parts)}" if parts else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's outcome; attach what the checks found to the report."""
    report = yield
    stash = item.stash
    error = call.excinfo.value if call.excinfo is not None else None
    stash.setdefault(_keys.PHASES, {})[report.when] = (report.outcome, error)
    found: dict[str, Any] = {}
    checks = stash.get(_keys.CHECKS, None)
    if checks:
        done = stash.get(_keys.REPORTED, 0)
        if len(checks) > done:
            found["checks"] = checks[done:]
            stash[_keys.REPORTED] = len(checks)
    if report.when == "teardown":
        if _keys.WRITTEN in stash:
            found["written"] = stash[_keys.WRITTEN]
        if _keys.RECORDED in stash:
            found["run"], found["store"] = stash[_keys.RECORDED]
        del stash[_keys.PHASES]
    if found:
        setattr(report, "emstrack", found)  # noqa: B010 - sent with the report by pytest-xdist
    return report


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def emstrack_run(request: pytest.FixtureRequest) -> Iterator[Run]:
    """The test's own tracked run, named by its node id.

    With ``--emstrack`` it goes to the session's store and experiment (tags ``pytest.outcome``,
    ``git.commit``, ``git.branch``); without, to a temporary store removed at the end of the
    session. Pipelines the test calls inside it become its child runs.
    """
    from ._history import TestRun

    item = request.node
    settings = _settings(request.config)
    from ._fixture import marker_options

    experiment = marker_options(item).get("experiment") or settings.experiment
    uri = settings.tracking_uri if settings.track else _temporary_store(request.config)
    test_run = TestRun.open(item, experiment=experiment, tracking_uri=uri, root=settings.rootdir)
    item.stash[_keys.TEST_RUN] = test_run
    try:
        yield test_run.run
    finally:
        del item.stash[_keys.TEST_RUN]
        outcome, error = _outcome(item)
        test_run.close(outcome, error)
        if settings.track and test_run.run.run_id is not None:
            from .._uris import redact_uri

            item.stash[_keys.RECORDED] = (
                test_run.run.run_id,
                redact_uri(test_run.run.tracking_uri),
            )


@pytest.fixture
def ems_regression(request: pytest.FixtureRequest) -> Iterator[EmsRegression]:
    """Compare the test's KPIs with its baseline: ``ems_regression.check(metrics, ...)``."""
    from ._fixture import EmsRegression

    item = request.node
    settings = _settings(request.config)
    test_run = None
    if settings.track or "emstrack_run" in request.fixturenames:
        request.getfixturevalue("emstrack_run")
        test_run = item.stash.get(_keys.TEST_RUN, None)
    regression = EmsRegression(item, settings, test_run)
    yield regression
    regression.finish(passed=_outcome(item)[0] == "passed")


def _settings(config: pytest.Config) -> Settings:
    settings = config.stash.get(_keys.SETTINGS, None)
    if settings is None:
        from ._config import Settings

        settings = config.stash[_keys.SETTINGS] = Settings.from_config(config)
    return settings


def _outcome(item: pytest.Item) -> tuple[str, BaseException | None]:
    phases = item.stash.get(_keys.PHASES, {})
    setup = phases.get("setup", ("passed", None))
    if setup[0] == "failed":
        return "error", setup[1]
    if setup[0] == "skipped":
        return "skipped", None
    return phases.get("call", ("error", None))


def _temporary_store(config: pytest.Config) -> str:
    folder = config.stash.get(_keys.TEMPORARY_STORE, None)
    if folder is None:
        from . import _temporary

        folder = config.stash[_keys.TEMPORARY_STORE] = str(_temporary.create())
    return "sqlite:///" + str(Path(folder) / "mlflow.db")
