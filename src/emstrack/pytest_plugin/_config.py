"""The plugin's settings of a session, read from the command-line options and checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest


@dataclass(frozen=True)
class BaselineSource:
    """Where ``--emstrack-baseline-from`` takes the baselines from."""

    kind: Literal["run", "tag", "latest"]
    run_id: str | None = None
    tag: tuple[str, str] | None = None

    def describe(self) -> str:
        """The source as it was given on the command line."""
        if self.kind == "run":
            return f"run:{self.run_id}"
        if self.kind == "tag":
            assert self.tag is not None
            return f"tag:{self.tag[0]}={self.tag[1]}"
        return "latest"


def parse_source(text: str) -> BaselineSource:
    """Parse ``run:<id>``, ``tag:<key>=<value>`` or ``latest``.

    Raises:
        pytest.UsageError: The text is none of these (the message shows the accepted forms).

    """
    value = text.strip()
    forms = "run:<run id>, tag:<key>=<value> or latest"
    if value == "latest":
        return BaselineSource("latest")
    kind, sep, rest = value.partition(":")
    if sep and kind == "run" and rest.strip():
        run_id = rest.strip()
        if not run_id.isalnum():
            raise pytest.UsageError(f"--emstrack-baseline-from: {run_id!r} is not a run id")
        return BaselineSource("run", run_id=run_id)
    if sep and kind == "tag":
        key, eq, tag_value = rest.partition("=")
        if eq and key.strip():
            if "'" in tag_value or "`" in key:
                raise pytest.UsageError(
                    f"--emstrack-baseline-from: quotes are not supported in {value!r}"
                )
            return BaselineSource("tag", tag=(key.strip(), tag_value))
    raise pytest.UsageError(f"--emstrack-baseline-from: expected {forms}, not {text!r}")


@dataclass(frozen=True)
class Settings:
    """The plugin's options of this session."""

    track: bool
    experiment: str
    tracking_uri: str | None
    update: bool
    baseline_dir: Path | None
    baseline_from: BaselineSource | None
    rootdir: Path

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """Read and check the options.

        Raises:
            pytest.UsageError: Contradicting or malformed options.

        """
        update = bool(config.getoption("emstrack_update"))
        source_text = config.getoption("emstrack_baseline_from")
        source = parse_source(source_text) if source_text else None
        if update and source is not None:
            raise pytest.UsageError(
                "--emstrack-update-baseline writes baseline files; it cannot be combined with "
                "--emstrack-baseline-from"
            )
        folder = config.getoption("emstrack_baseline_dir")
        experiment = str(config.getoption("emstrack_experiment") or "").strip()
        if not experiment:
            raise pytest.UsageError("--emstrack-experiment needs a name")
        uri = config.getoption("emstrack_tracking_uri")
        return cls(
            track=bool(config.getoption("emstrack_track")),
            experiment=experiment,
            tracking_uri=str(uri).strip() or None if uri else None,
            update=update,
            baseline_dir=(config.invocation_params.dir / folder).resolve() if folder else None,
            baseline_from=source,
            rootdir=Path(config.rootpath),
        )

    def command_line(self) -> list[str]:
        """The options a user repeats to reach the same baselines (for messages)."""
        extra = []
        if self.baseline_dir is not None:
            extra.append(f"--emstrack-baseline-dir={self.baseline_dir}")
        return extra
