"""Where runs go and how tracking behaves, read from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from emstrack import _settings


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_EXPERIMENT_NAME",
        "EMSTRACK_SPOOL_DIR",
        "EMSTRACK_SECRET_PATTERN",
        "EMSTRACK_DRAIN_TIMEOUT",
        "EMSTRACK_DISABLED",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


class TestTrackingUri:
    def test_explicit_beats_environment_beats_default(self, clean_env, tmp_path):
        """Explicit URI > MLFLOW_TRACKING_URI > sqlite:///mlflow.db in the working directory."""
        assert _settings.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
        clean_env.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
        assert _settings.tracking_uri() == "http://127.0.0.1:5000"
        assert _settings.tracking_uri("sqlite:////x.db") == "sqlite:////x.db"

    def test_never_a_plain_file_store(self, clean_env):
        """The default is a SQLite store, never ./mlruns."""
        assert _settings.tracking_uri().startswith("sqlite:///")


class TestFlags:
    @pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on"])
    def test_true_values(self, clean_env, value):
        """Common spellings of true switch a flag on."""
        clean_env.setenv("EMSTRACK_DISABLED", value)
        assert _settings.disabled()

    @pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "maybe"])
    def test_other_values(self, clean_env, value):
        """Anything else leaves it off."""
        clean_env.setenv("EMSTRACK_DISABLED", value)
        assert not _settings.disabled()


class TestOther:
    def test_experiment_name(self, clean_env):
        """Explicit > MLFLOW_EXPERIMENT_NAME > Default."""
        assert _settings.experiment_name() == "Default"
        clean_env.setenv("MLFLOW_EXPERIMENT_NAME", "ems")
        assert _settings.experiment_name() == "ems"
        assert _settings.experiment_name("x") == "x"

    def test_spool_dir(self, clean_env, tmp_path):
        """The spool is .emstrack/spool unless EMSTRACK_SPOOL_DIR says otherwise."""
        assert _settings.spool_dir() == tmp_path / ".emstrack" / "spool"
        clean_env.setenv("EMSTRACK_SPOOL_DIR", "elsewhere")
        assert _settings.spool_dir() == Path(tmp_path / "elsewhere").resolve()

    def test_secret_pattern(self, clean_env):
        """The default deny pattern matches the documented words, case-insensitively."""
        pattern = _settings.secret_pattern()
        for key in ["password", "DB_SECRET", "access_token", "API_KEY", "aws_credentials"]:
            assert pattern.search(key), key
        assert not pattern.search("building_id")
        clean_env.setenv("EMSTRACK_SECRET_PATTERN", "tariff")
        assert _settings.secret_pattern().search("TARIFF_ID")

    def test_drain_timeout(self, clean_env):
        """EMSTRACK_DRAIN_TIMEOUT is read as seconds, bad values fall back to 10."""
        assert _settings.drain_timeout() == 10.0
        clean_env.setenv("EMSTRACK_DRAIN_TIMEOUT", "2.5")
        assert _settings.drain_timeout() == 2.5
        clean_env.setenv("EMSTRACK_DRAIN_TIMEOUT", "soon")
        assert _settings.drain_timeout() == 10.0
