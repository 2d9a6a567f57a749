"""Secrets never reach the store or the spool; ``emstrack ui`` stays on loopback; no pickles.

Every byte of the SQLite database (with its -wal/-journal files), of the run's artifact folder
and of the spool is searched for each secret, for runs that reached the store directly and for
runs kept in the spool while the store was down and replayed later.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import signal
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel, SecretStr

import emstrack
from emstrack import EmstrackWarning, tracked_optimization, tracked_run
from helpers.servers import EMSTRACK, free_port, server_environment

SECRET_FIELD = "pw-SecretStr-93f1c2"
SECRET_TOKEN_FIELD = "tok-SecretStr-8e11aa"
DENY_LISTED = "deny-listed-77ab01"
NESTED_DENY_LISTED = "nested-deny-5c0ffe"
ENV_SECRET = "env-token-5d2e9a"
CUSTOM = "custom-pattern-4411"
SECRET_LICENCE = "licence-SecretStr-2d4f60"
URI_PASSWORD = "uri-pass-0b7c55"
ALL_SECRETS = (
    SECRET_FIELD,
    SECRET_TOKEN_FIELD,
    SECRET_LICENCE,
    DENY_LISTED,
    NESTED_DENY_LISTED,
    ENV_SECRET,
)


class Credentials(BaseModel):
    user: str
    password: SecretStr
    api_token: SecretStr


class Settings(BaseModel):
    building_id: str
    endpoint: str
    credentials: Credentials
    licence: SecretStr
    db_password: str
    extra: dict[str, str]


def settings() -> Settings:
    return Settings(
        building_id="b1",
        endpoint=f"https://api.example/v1?key={ENV_SECRET}",
        credentials=Credentials(
            user="ems", password=SecretStr(SECRET_FIELD), api_token=SecretStr(SECRET_TOKEN_FIELD)
        ),
        licence=SecretStr(SECRET_LICENCE),
        db_password=DENY_LISTED,
        extra={"smtp_password": NESTED_DENY_LISTED, "region": "eu"},
    )


class LoginFailedError(RuntimeError):
    """The pipeline's own failure, its message holding a secret."""


def exercise_everything(experiment: str, fail: bool) -> None:
    """Log every kind of value that could carry a secret, through both APIs."""

    @tracked_optimization(
        experiment=experiment, params=Settings, run_name="run-{settings.endpoint}"
    )
    def pipeline(settings: Settings) -> dict[str, Any]:
        if fail:
            raise LoginFailedError(f"login to {settings.endpoint} failed with {ENV_SECRET}")
        return {"cost": 1.5, "status": f"authenticated as ems with {ENV_SECRET}"}

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            pipeline(settings())
        except LoginFailedError:
            assert fail
        with tracked_run(
            f"manual {ENV_SECRET}",
            experiment=experiment,
            params={"api_key": DENY_LISTED, "url": f"postgres://u:{ENV_SECRET}@db/ems"},
            tags={"note": f"called with {ENV_SECRET}", "credential": DENY_LISTED},
        ) as run:
            run.log_metrics({"message": f"token {ENV_SECRET} accepted", "value": 2.0})
            run.log_text(f"log line with {ENV_SECRET}\n", "log.txt")
            run.log_config({"url": f"https://x/?t={ENV_SECRET}", "secret": DENY_LISTED}, "c.json")
            run.log_frame(pd.DataFrame({"header": [f"Bearer {ENV_SECRET}"]}), "requests")
            run.set_tags({"password": DENY_LISTED})


def leaks(secret: str, *roots: Path) -> list[str]:
    """Files under ``roots`` (or the files themselves) whose bytes contain ``secret``."""
    needles = {secret.encode("utf-8"), secret.encode("utf-16-le")}
    found = []
    for root in roots:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            data = path.read_bytes()
            if any(needle in data for needle in needles):
                found.append(str(path))
    return found


def database_files(database: Path) -> list[Path]:
    """The database and every journal beside it (-wal, -shm, -journal)."""
    return sorted(database.parent.glob(database.name + "*"))


@pytest.fixture
def secrets_env(store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A secret-named environment variable, non-strict, and an experiment folder to search."""
    monkeypatch.setenv("MY_SERVICE_TOKEN", ENV_SECRET)
    monkeypatch.delenv("EMSTRACK_STRICT")
    artifacts = tmp_path / "artifacts"
    for experiment in ("direct", "kept"):
        store.client.create_experiment(experiment, artifact_location=str(artifacts / experiment))
    return artifacts


def assert_nowhere(secrets: tuple[str, ...], *roots: Path) -> None:
    for secret in secrets:
        assert leaks(secret, *roots) == [], secret


class TestNeverStored:
    def test_direct_runs_hold_no_secret(self, store, secrets_env):
        """Runs written straight to the store: no secret in the database or the artifacts."""
        exercise_everything("direct", fail=False)
        exercise_everything("direct", fail=True)
        runs = store.runs("direct")
        assert len(runs) == 4
        assert store.spooled() == []
        assert_nowhere(ALL_SECRETS, *database_files(store.path), secrets_env)
        failed = next(r for r in runs if r.info.status == "FAILED")
        assert failed.data.tags["emstrack.exception.message"].endswith("failed with ***")
        traceback_text = (store.artifact_root(failed.info.run_id) / "traceback.txt").read_text()
        assert "LoginFailedError: login to https://api.example/v1?key=*** failed with ***" in (
            traceback_text
        )
        manual = next(r for r in runs if r.info.run_name.startswith("manual"))
        assert manual.data.params["api_key"] == "***"
        assert manual.data.tags["password"] == "***"
        assert manual.data.tags["note"] == "called with ***"
        decorated = next(r for r in runs if r.info.run_name.startswith("run-"))
        assert decorated.data.params["credentials"] == "***"  # "credential" is deny-listed
        assert decorated.data.params["db_password"] == "***"
        assert decorated.data.params["licence"] == "***"  # a SecretStr under a plain name
        assert decorated.data.params["extra.smtp_password"] == "***"
        assert decorated.data.params["endpoint"] == "https://api.example/v1?key=***"
        assert decorated.info.run_name == "run-https://api.example/v1?key=***"

    def test_runs_kept_in_the_spool_hold_no_secret(self, store, secrets_env, monkeypatch):
        """Runs spooled while the store is unreachable: no secret in the spool, nor after sync."""
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
        exercise_everything("kept", fail=True)
        exercise_everything("kept", fail=False)
        assert len(store.spooled()) == 4
        assert_nowhere(ALL_SECRETS, store.spool)
        report = emstrack.sync(tracking_uri=store.uri)
        assert (len(report.sent), report.failed) == (4, [])
        assert len(store.runs("kept")) == 4
        assert_nowhere(ALL_SECRETS, *database_files(store.path), secrets_env, store.root)

    def test_custom_pattern_redacts_other_keys(self, store, secrets_env, monkeypatch):
        """EMSTRACK_SECRET_PATTERN decides which keys (and environment variables) are secret."""
        monkeypatch.setenv("EMSTRACK_SECRET_PATTERN", r"pin_code|^ems_key$")
        monkeypatch.setenv("EMS_KEY", "env-custom-9f8e7d")
        with tracked_run("custom", experiment="direct") as run:
            run.log_params({"pin_code": CUSTOM, "plain": "env-custom-9f8e7d in a value"})
        stored = store.client.get_run(run.run_id).data.params
        assert stored == {"pin_code": "***", "plain": "*** in a value"}
        assert_nowhere((CUSTOM, "env-custom-9f8e7d"), *database_files(store.path), secrets_env)

    def test_credentials_in_the_tracking_uri_never_reach_the_spool(self, store, monkeypatch):
        """user:password@ in the tracking URI is not written into the spool."""
        monkeypatch.delenv("EMSTRACK_STRICT")
        uri = f"http://ems:{URI_PASSWORD}@127.0.0.1:{free_port()}"
        with (
            pytest.warns(EmstrackWarning, match="unavailable") as caught,
            tracked_run("uri", tracking_uri=uri),
        ):
            pass
        assert URI_PASSWORD not in str(caught[0].message)
        (folder,) = store.spooled()
        assert leaks(URI_PASSWORD, store.spool) == []
        start = json.loads((folder / "run.jsonl").read_text().splitlines()[0])
        assert start["uri"] == uri.replace(f"ems:{URI_PASSWORD}@", "")
        for entry in store.spooled():
            import shutil

            shutil.rmtree(entry)


class TestUi:
    def test_default_host_is_loopback(self):
        """`emstrack ui` documents 127.0.0.1 as its default interface."""
        result = subprocess.run(
            [str(EMSTRACK), "ui", "--help"], capture_output=True, text=True, check=True
        )
        assert re.search(
            r"--host TEXT\s+Interface to bind.\s+\[default:\s+127\.0\.0\.1\]", result.stdout
        )

    @pytest.mark.slow
    def test_server_listens_on_loopback_only(self, store, tmp_path):
        """`emstrack ui` with no --host listens on loopback addresses only."""
        port = free_port()
        env = {**server_environment(), "MLFLOW_TRACKING_URI": store.uri}
        process = subprocess.Popen(
            [str(EMSTRACK), "ui", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        server_pid = None
        try:
            assert process.stdout is not None
            lines = []
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                line = process.stdout.readline()
                if not line:
                    break
                lines.append(line)
                found = re.search(r"mlflow server pid (\d+)", line)
                if found:
                    server_pid = int(found.group(1))
                    break
            assert server_pid is not None, "".join(lines)
            listening = listening_addresses(port)
            assert listening, "nothing listens on the port"
            assert all(address in {"127.0.0.1", "::1"} for address in listening), listening
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            if process.stdout is not None:
                process.stdout.close()
            if server_pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server_pid, signal.SIGKILL)


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp{,6})."""
    import ipaddress

    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            address, _, port_hex = fields[1].partition(":")
            if fields[3] != "0A" or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(address)
            # The kernel prints each 32-bit word in host (little-endian) order.
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(str(ipaddress.ip_address(raw) if width == 8 else ipaddress.IPv6Address(raw)))
    return found


PICKLE_MODULES = {"pickle", "cPickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}


class TestNoPickle:
    def test_source_never_uses_pickle(self):
        """No module of emstrack imports or calls a pickle-like serialiser."""
        source_root = Path(emstrack.__file__).parent
        offenders = []
        for path in sorted(source_root.rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in {"read_pickle", "to_pickle"}
                ):
                    names = [node.func.attr]
                if any(name.split(".")[0] in PICKLE_MODULES or "pickle" in name for name in names):
                    offenders.append(f"{path.relative_to(source_root)}:{node.lineno}")
        assert offenders == []

    def test_written_files_are_not_pickles(self, store, monkeypatch):
        """Every file emstrack writes (spool, config.json, traceback.txt) is JSON or text."""
        monkeypatch.delenv("EMSTRACK_STRICT")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            with (
                pytest.raises(ValueError, match="stop"),
                tracked_run("kept", params={"a": 1}) as run,
            ):
                run.log_metrics({"m": 1.0})
                raise ValueError("stop")
        files = [p for p in store.spool.rglob("*") if p.is_file() and p.name != ".lock"]
        assert {p.name for p in files} >= {
            "run.jsonl",
            "state.json",
            "config.json",
            "traceback.txt",
        }
        for path in files:
            data = path.read_bytes()
            assert not data.startswith(b"\x80"), path  # pickle protocol 2+
            text = data.decode("utf-8")
            if path.suffix in {".json", ".jsonl"}:
                for line in text.splitlines() if path.suffix == ".jsonl" else [text]:
                    json.loads(line)
