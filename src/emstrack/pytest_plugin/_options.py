"""Every command-line option of the plugin, declared in one place.

The options are registered in a single ``--help`` group, ``emstrack``. This module is loaded at
every pytest start-up, so it holds declarations only; :mod:`._config` reads them back.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

GROUP = "emstrack"
GROUP_DESCRIPTION = "emstrack: regression checks of optimization KPIs (fixture ems_regression)"
DEFAULT_EXPERIMENT = "pytest"
BASELINE_FOLDER = "emstrack_baselines"


class Option(NamedTuple):
    """One command-line option: its flag and what ``parser.addoption`` gets."""

    flag: str
    dest: str
    help: str
    action: str = "store"
    default: Any = None
    metavar: str | None = None


OPTIONS: tuple[Option, ...] = (
    Option(
        "--emstrack",
        "emstrack_track",
        "record every test that uses an emstrack fixture as an MLflow run (outcome, git "
        "commit and branch, checked metrics and their baselines). Without it nothing is "
        "written to any store.",
        action="store_true",
        default=False,
    ),
    Option(
        "--emstrack-experiment",
        "emstrack_experiment",
        f"experiment of the recorded runs and of --emstrack-baseline-from (default: "
        f"{DEFAULT_EXPERIMENT!r}; a test's @pytest.mark.emstrack(experiment=...) wins).",
        default=DEFAULT_EXPERIMENT,
        metavar="NAME",
    ),
    Option(
        "--emstrack-tracking-uri",
        "emstrack_tracking_uri",
        "tracking store for --emstrack and --emstrack-baseline-from (default: "
        "MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working directory).",
        metavar="URI",
    ),
    Option(
        "--emstrack-update-baseline",
        "emstrack_update",
        "write the obtained values as the baselines (creating or replacing the files); the "
        "checks pass and the summary lists every file written with what changed.",
        action="store_true",
        default=False,
    ),
    Option(
        "--emstrack-baseline-dir",
        "emstrack_baseline_dir",
        f"folder of the baseline files (default: {BASELINE_FOLDER}/<module>/ beside each test "
        "file); inside it, one folder per test module path.",
        metavar="DIR",
    ),
    Option(
        "--emstrack-baseline-from",
        "emstrack_baseline_from",
        "take the baselines from the tracking store instead of files: run:<run id>, "
        "tag:<key>=<value> (latest run of the same test with that tag) or latest (latest "
        "passing run of the same test in the experiment).",
        metavar="SOURCE",
    ),
)


def register(parser: pytest.Parser) -> None:
    """Add every option to the ``emstrack`` group of ``--help``."""
    group = parser.getgroup(GROUP, GROUP_DESCRIPTION)
    for option in OPTIONS:
        kwargs: dict[str, Any] = {
            "dest": option.dest,
            "action": option.action,
            "default": option.default,
            "help": option.help,
        }
        if option.metavar is not None:
            kwargs["metavar"] = option.metavar
        group.addoption(option.flag, **kwargs)


def in_use(config: pytest.Config) -> bool:
    """Whether any emstrack option differs from its default."""
    return any(config.getoption(option.dest) != option.default for option in OPTIONS)
