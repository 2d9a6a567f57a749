"""Settings of ``emstrack run``, committed next to the code instead of typed.

``[tool.emstrack.run]`` in ``pyproject.toml`` (or ``[run]`` in ``emstrack.toml``) in the working
directory; options given on the command line override them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError

KEYS = ("experiment", "tracking_uri", "track", "returns", "artifacts", "capture_output", "quiet")


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What ``emstrack run`` attaches to a script."""

    experiment: str | None = None
    tracking_uri: str | None = None
    track: tuple[str, ...] = ()
    returns: Mapping[str, str] = field(default_factory=dict)
    """Function (bare name or spec) -> comma-separated names of its returned tuple."""
    artifacts: tuple[str, ...] = ()
    capture_output: bool = False
    quiet: bool = False
    source: str | None = None
    """Where the file settings came from, for messages."""

    def override(self, **given: Any) -> RunSettings:
        """These settings with every option given on the command line (not ``None``) replaced."""
        return replace(self, **{key: value for key, value in given.items() if value is not None})


def load(folder: Path) -> RunSettings:
    """The settings committed in ``folder``: ``emstrack.toml`` first, else ``pyproject.toml``.

    Raises:
        ConfigurationError: Naming the file, the key and what is wrong.

    """
    emstrack_toml = folder / "emstrack.toml"
    if emstrack_toml.is_file():
        table = _read(emstrack_toml).get("run", {})
        return from_table(table, f"{emstrack_toml.name} [run]")
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        tool = _read(pyproject).get("tool", {})
        table = tool.get("emstrack", {}).get("run", {}) if isinstance(tool, dict) else {}
        if table:
            return from_table(table, f"{pyproject.name} [tool.emstrack.run]")
    return RunSettings()


def from_table(table: object, where: str) -> RunSettings:
    """Validate one TOML table of settings."""
    if not isinstance(table, dict):
        raise ConfigurationError(f"{where}: expected a table, not {type(table).__name__}")
    values: dict[str, Any] = {}
    for raw_key, value in table.items():
        key = raw_key.replace("-", "_")
        if key not in KEYS:
            raise ConfigurationError(f"{where}: unknown key {raw_key!r} (known: {', '.join(KEYS)})")
        values[key] = _check(where, raw_key, key, value)
    return RunSettings(**values, source=where)


def parse_returns(items: tuple[str, ...] | list[str], where: str) -> dict[str, str]:
    """``["optimize_day=total_cost,_"]`` -> ``{"optimize_day": "total_cost,_"}``."""
    parsed: dict[str, str] = {}
    for item in items:
        function, sep, names = item.partition("=")
        if not sep or not function.strip() or not names.strip():
            raise ConfigurationError(
                f"{where}: {item!r} must look like 'function=name0,name1' ('_' skips a position)"
            )
        parsed[function.strip()] = names.strip()
    return parsed


def _check(where: str, raw_key: str, key: str, value: object) -> Any:
    label = f"{where}: {raw_key!r}"
    if key in {"experiment", "tracking_uri"}:
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"{label} must be a non-empty string, not {value!r}")
        return value.strip()
    if key in {"capture_output", "quiet"}:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{label} must be true or false, not {value!r}")
        return value
    if key in {"track", "artifacts"}:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigurationError(f"{label} must be a list of strings, not {value!r}")
        return tuple(value)
    # returns: a table {function = "a,b"} or a list ["function=a,b"]
    if isinstance(value, dict):
        if not all(isinstance(v, str) and v for v in value.values()):
            raise ConfigurationError(
                f"{label} must map function names to strings such as 'total_cost,_'"
            )
        return dict(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return parse_returns(value, label)
    raise ConfigurationError(
        f'{label} must be a table such as {{ optimize_day = "total_cost,_" }}, not {value!r}'
    )


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path.name}: not valid TOML ({error})") from error
