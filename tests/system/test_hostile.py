"""Hostile input and hostile conditions (issue 9): each case reproduces the original report.

Every test asserts the promise that broke: the pipeline's result or exception passes through,
what the store could take reaches it (or waits in the spool, readable), no run is left active,
no secret byte is written anywhere, and mistakes end in one clear line.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, SecretStr

import emstrack
from emstrack import (
    ConfigurationError,
    EmstrackWarning,
    TrackingError,
    tracked_optimization,
    tracked_run,
)
from emstrack._delivery.replay import pending, sync
from emstrack._delivery.spool import SpoolEntry, entries
from emstrack._tracking.mapping import Redactor, map_params
from helpers.servers import emstrack_cli, free_port

# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def recorded() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def emstrack_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, EmstrackWarning)]


def run_folders(spool: Path) -> list[Path]:
    return sorted(p for p in spool.iterdir() if p.is_dir()) if spool.is_dir() else []


def only_run(store: Any, experiment: str) -> Any:
    runs = store.runs(experiment)
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def leaks(secret: str, root: Path) -> list[str]:
    needle = secret.encode("utf-8")
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def python(
    code: str, *, cwd: Path, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (the suite's environment, plus ``env``)."""
    full_env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **env}
    full_env.pop("EMSTRACK_STRICT", None)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def spool_outage(store: Any, monkeypatch: pytest.MonkeyPatch, count: int) -> list[str]:
    """``count`` runs kept in the spool because their store (a closed port) is down."""
    dead = f"http://127.0.0.1:{free_port()}"
    keys = []
    with recorded():
        for index in range(count):
            with tracked_run(f"kept-{index}", experiment="hostile", tracking_uri=dead) as run:
                run.log_metrics({"value": float(index)})
            keys.append(run.key)
    assert len(run_folders(store.spool)) == count
    return keys


@pytest.fixture
def lenient(store: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The store, with tracking failures as warnings (the default for users)."""
    monkeypatch.delenv("EMSTRACK_STRICT")
    return store


# --------------------------------------------------------------------------- 1 full spool disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (root can mount one); skipped where mounting is not allowed."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 2 MB tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


class TestFullSpoolDisk:
    @pytest.mark.slow  # ~20-60 s: in the slow suite (CI runs it), keeping the default under 10 min
    def test_everything_reaches_the_store_from_memory(self, lenient, small_disk, monkeypatch):
        """Case 1: a 100,000-step series overflows a 2 MB spool while the store is up."""
        spool = small_disk / "spool"
        monkeypatch.setenv("EMSTRACK_SPOOL_DIR", str(spool))
        series = list(np.linspace(0, 1, 100_000))

        @tracked_optimization(experiment="full-disk")
        def pipeline(building_id: str) -> dict[str, Any]:
            return {"cost": 1.0, "series": series}

        with recorded() as caught:
            result = pipeline("b1")
            again = pipeline("b2")
        assert result["cost"] == 1.0
        assert again["series"] is series

        runs = lenient.runs("full-disk")
        assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
        for run in runs:
            assert run.data.metrics["cost"] == 1.0
            history = lenient.client.get_metric_history(run.info.run_id, "series")
            assert len(history) == 100_000
            assert sorted(m.step for m in history)[-1] == 99_999
            assert "config.json" in {a.path for a in lenient.client.list_artifacts(run.info.run_id)}
        messages = emstrack_warnings(caught)
        assert messages
        assert all("spool" in m and "No space left" in m for m in messages)
        assert all("nothing was lost" in m for m in messages)
        # No torn line, no 0-byte run.jsonl, no folder left behind.
        assert run_folders(spool) == []

    def test_store_down_too_is_told_and_leaves_whole_lines(self, lenient, small_disk, monkeypatch):
        """Spool full *and* store down: the warning says what is lost; no torn line."""
        spool = small_disk / "spool"
        monkeypatch.setenv("EMSTRACK_SPOOL_DIR", str(spool))
        dead = f"http://127.0.0.1:{free_port()}"

        @tracked_optimization(experiment="full-disk", tracking_uri=dead)
        def pipeline() -> dict[str, Any]:
            return {"cost": 1.0, "series": list(np.linspace(0, 1, 100_000))}

        with recorded() as caught:
            assert pipeline()["cost"] == 1.0
        (message,) = emstrack_warnings(caught)
        assert "cannot take records" in message
        assert "is lost" in message
        for folder in run_folders(spool):
            data = (folder / "run.jsonl").read_bytes()
            assert data.endswith(b"\n")
            assert all(json.loads(line) for line in data.splitlines())


# --------------------------------------------------------------------------- 2 corrupt spool


class TestCorruptSpool:
    def test_unreadable_entries_are_quarantined_and_the_rest_replayed(self, lenient, monkeypatch):
        """Case 2: one garbage line in one entry, one 0-byte run.jsonl, one intact entry."""
        keys = spool_outage(lenient, monkeypatch, 3)
        garbled, empty, _intact = (
            next(p for p in run_folders(lenient.spool) if p.name.endswith(key)) for key in keys
        )
        events = garbled / "run.jsonl"
        first, rest = events.read_bytes().split(b"\n", 1)
        events.write_bytes(
            first + b"\n\x00\xffgarbage{{{\n" + b'{"e":"metrics","metrics":5}\n' + rest
        )
        (empty / "run.jsonl").write_bytes(b"")

        status = emstrack_cli("status", spool=lenient.spool, cwd=lenient.root)
        assert status.returncode == 0, status.stderr
        assert "Traceback" not in status.stdout + status.stderr
        assert "3 run(s) waiting" in status.stdout
        assert "unreadable" in status.stdout

        replay = emstrack_cli(
            "sync", "--tracking-uri", lenient.uri, spool=lenient.spool, cwd=lenient.root
        )
        assert "Traceback" not in replay.stdout + replay.stderr
        assert replay.returncode == 0, replay.stderr
        quarantine = lenient.spool.parent / "quarantine"
        assert str(quarantine / empty.name) in replay.stderr
        assert (quarantine / empty.name / "reason.txt").read_text().strip()
        kept_lines = (quarantine / garbled.name / "unreadable.jsonl").read_bytes()
        assert b"garbage{{{" in kept_lines
        assert b'"metrics":5' in kept_lines

        runs = {r.info.run_name: r for r in lenient.runs("hostile")}
        assert set(runs) == {"kept-0", "kept-2"}
        assert runs["kept-0"].data.metrics == {"value": 0.0}
        assert runs["kept-2"].data.metrics == {"value": 2.0}
        assert all(r.info.status == "FINISHED" for r in runs.values())
        assert run_folders(lenient.spool) == []


# --------------------------------------------------------------------------- 3 concurrent syncs


class TestConcurrentSync:
    def test_two_syncs_store_each_run_once(self, lenient, monkeypatch):
        """Case 3: two ``emstrack sync`` at once on one spool."""
        spool_outage(lenient, monkeypatch, 6)
        command = [shutil.which("emstrack") or "emstrack", "sync", "--tracking-uri", lenient.uri]
        env = {**os.environ, "EMSTRACK_SPOOL_DIR": str(lenient.spool)}
        both = [
            subprocess.Popen(
                command,
                cwd=lenient.root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [process.communicate(timeout=180) for process in both]
        for process, (out, err) in zip(both, outputs, strict=True):
            assert process.returncode == 0, err
            assert "Traceback" not in out + err
        names = sorted(r.info.run_name for r in lenient.runs("hostile"))
        assert names == [f"kept-{i}" for i in range(6)]
        assert list(lenient.spool.iterdir()) == []

    def test_an_entry_removed_meanwhile_is_not_recreated(self, lenient, monkeypatch):
        """The losing side of the race: listed, then replayed and removed by the other sync."""
        spool_outage(lenient, monkeypatch, 1)
        (listed,) = entries(lenient.spool)
        SpoolEntry(listed.folder).remove()
        assert listed.acquire(timeout=0) is False
        assert not listed.folder.exists()
        assert pending(lenient.spool) == []
        report = sync(lenient.spool, tracking_uri=lenient.uri)
        assert (report.sent, report.failed, report.skipped) == ([], [], [])


# --------------------------------------------------------------------------- 5 permanent rejections


class _Answer(http.server.BaseHTTPRequestHandler):
    status = 400
    body = b'{"error_code": "INVALID_PARAMETER_VALUE", "message": "bad request"}'

    def _reply(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = do_PATCH = _reply

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def answering(status: int, body: bytes) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering every request with ``status``."""
    handler = type("Handler", (_Answer,), {"status": status, "body": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class TestPermanentRejections:
    @pytest.mark.parametrize(
        ("experiment", "uri", "cause"),
        [
            ("x" * 1000, None, "500"),
            ("e", "bogus://x", "bogus"),
            ("e", "file:./mlruns", "filesystem tracking backend"),
        ],
        ids=["long-experiment", "bogus-scheme", "file-store"],
    )
    def test_nothing_is_parked(self, lenient, experiment, uri, cause):
        @tracked_optimization(experiment=experiment, tracking_uri=uri)
        def pipeline(x: int) -> dict[str, float]:
            return {"cost": float(x)}

        with recorded() as caught:
            assert pipeline(3) == {"cost": 3.0}
        (message,) = emstrack_warnings(caught)
        assert "rejects it" in message
        assert cause in message
        assert "emstrack sync" not in message.replace("replaying it would fail", "")
        assert run_folders(lenient.spool) == []

    def test_an_http_validation_error_is_not_parked(self, lenient):
        with (
            answering(400, _Answer.body) as uri,
            recorded() as caught,
            tracked_run("v", experiment="e", tracking_uri=uri) as run,
        ):
            run.log_metrics({"cost": 1.0})
        (message,) = emstrack_warnings(caught)
        assert "rejects it" in message
        assert "bad request" in message
        assert run_folders(lenient.spool) == []

    @pytest.mark.parametrize("status", [401, 403])
    def test_wrong_credentials_keep_the_run_in_the_spool(self, lenient, status):
        body = b'{"error_code": "PERMISSION_DENIED", "message": "who are you"}'
        with (
            answering(status, body) as uri,
            recorded() as caught,
            tracked_run("creds", experiment="e", tracking_uri=uri) as run,
        ):
            run.log_metrics({"cost": 1.0})
        (message,) = emstrack_warnings(caught)
        assert "emstrack sync" in message
        assert "kept in the spool" in message
        (folder,) = run_folders(lenient.spool)
        assert b'"cost"' in (folder / "run.jsonl").read_bytes()

    def test_sync_quarantines_a_run_the_store_rejects(self, lenient, monkeypatch):
        spool_outage(lenient, monkeypatch, 1)
        report = sync(lenient.spool, tracking_uri="bogus://x")
        assert report.sent == []
        assert report.failed == []
        ((_, where),) = report.quarantined
        assert "rejects this run for good" in (where / "reason.txt").read_text()
        assert run_folders(lenient.spool) == []


# ------------------------------------------------------------------- 6-8 never break, never stale


class TestNoStaleRun:
    def test_strict_unmappable_result_ends_the_run_first(self, store):
        """Case 6: strict mode, ``{"c": 1+2j}``."""

        @tracked_optimization(experiment="strict")
        def pipeline() -> dict[str, complex]:
            return {"c": 1 + 2j}

        with pytest.raises(TrackingError, match="'c' not logged"):
            pipeline()
        assert emstrack.active_run() is None
        run = only_run(store, "strict")
        assert run.info.status == "FINISHED"
        with tracked_run("next", experiment="strict"):
            pass
        following = [r for r in store.runs("strict") if r.info.run_name == "next"]
        assert "mlflow.parentRunId" not in following[0].data.tags

    def test_exception_whose_str_raises(self, store):
        """Case 7."""

        class Weird(Exception):
            def __str__(self) -> str:
                raise ZeroDivisionError("no text for you")

        error = Weird()
        with pytest.raises(Weird) as raised, tracked_run("weird", experiment="weird"):
            raise error
        assert raised.value is error
        run = only_run(store, "weird")
        assert run.info.status == "FAILED"
        assert run.data.tags["emstrack.exception.type"].endswith("Weird")
        assert (
            "str() of the exception raised ZeroDivisionError"
            in run.data.tags["emstrack.exception.message"]
        )
        artifacts = {a.path for a in store.client.list_artifacts(run.info.run_id)}
        assert "traceback.txt" in artifacts
        assert run_folders(store.spool) == []

    def test_argument_whose_repr_raises_is_tracked_truthfully(self, store):
        """Case 8: no FAILED run with an exception the pipeline never raised."""

        class Opaque:
            def __repr__(self) -> str:
                raise RuntimeError("repr refused")

            __str__ = __repr__

            def __hash__(self) -> int:
                return 1

        @tracked_optimization(experiment="opaque")
        def pipeline(choices: set[Any], table: dict[Any, int], n: int) -> dict[str, float]:
            return {"cost": float(n)}

        assert pipeline({Opaque(), Opaque()}, {Opaque(): 1}, 4) == {"cost": 4.0}
        run = only_run(store, "opaque")
        assert run.info.status == "FINISHED"
        assert run.data.metrics == {"cost": 4.0}
        assert run.data.params["n"] == "4"
        assert not any(key.startswith("emstrack.exception") for key in run.data.tags)


# --------------------------------------------------------------------------- 9 lock under /proc


def test_store_lock_that_cannot_be_created_does_not_hang(tmp_path):
    """Case 9: the SQLite store's init lock under /proc: a warning, the pipeline runs."""
    code = (
        "import emstrack\n"
        "@emstrack.tracked_optimization(experiment='proc', tracking_uri='sqlite:////proc/mlflow.db')\n"
        "def pipeline(x):\n"
        "    return {'cost': x}\n"
        "print('result', pipeline(2.5))\n"
    )
    # Synchronous delivery meets the lock in the pipeline's own process: one warning there.
    done = python(
        code,
        cwd=tmp_path,
        timeout=120,
        EMSTRACK_SPOOL_DIR=str(tmp_path / "spool"),
        EMSTRACK_DELIVERY="sync",
    )
    assert done.returncode == 0, done.stderr
    assert "result {'cost': 2.5}" in done.stdout
    assert "EmstrackWarning" in done.stderr
    assert "/proc/mlflow.db" in done.stderr
    assert "Traceback" not in done.stderr


def test_store_lock_that_cannot_be_created_does_not_hang_the_default_delivery(tmp_path):
    """Case 9, default delivery: the pipeline never waits on the store; the run is kept."""
    code = (
        "import emstrack\n"
        "@emstrack.tracked_optimization(experiment='proc', tracking_uri='sqlite:////proc/mlflow.db')\n"
        "def pipeline(x):\n"
        "    return {'cost': x}\n"
        "print('result', pipeline(2.5))\n"
        "print('delivered', emstrack.flush(timeout=30))\n"
    )
    spool = tmp_path / "spool"
    done = python(code, cwd=tmp_path, timeout=120, EMSTRACK_SPOOL_DIR=str(spool))
    assert done.returncode == 0, done.stderr
    assert "result {'cost': 2.5}" in done.stdout
    assert "delivered False" in done.stdout  # the read side says the run did not arrive
    assert "Traceback" not in done.stderr
    assert [p for p in spool.iterdir() if p.is_dir()], "the run must stay in the spool"


# --------------------------------------------------------------------------- 10 secrets

SECRETS = {
    "db_password": "SSS-PW2-SSS",
    "api-key": "SSS-APIKEY-SSS",
    "pwd": "SSS-PWD-SSS",
    "access_key": "SSS-ACCESS-SSS",
    "Authorization": "Bearer SSS-AUTHZ-SSS",
    "auth_header": "SSS-HEADER-SSS",
}
URL_PASSWORD = "SSS-URLPW-SSS"
FIELD_SECRET = "SSS-FIELD-SSS"
ENV_SECRET = "SSS-ENV-SSS"


class Login(BaseModel):
    user: str
    password: SecretStr


class TestSecrets:
    def test_no_secret_byte_anywhere(self, lenient, monkeypatch, tmp_path):
        """Case 10: secrets known in the run are scrubbed from everything emstrack writes."""
        monkeypatch.setenv("EMSTRACK_TEST_TOKEN", ENV_SECRET)
        dsn = f"postgresql://ems:{URL_PASSWORD}@db.example/ems"
        every = [*SECRETS.values(), URL_PASSWORD, FIELD_SECRET, ENV_SECRET]
        # Everything said at once, as a careless pipeline would.
        everything = " ".join(every) + f" {dsn}"

        @tracked_optimization(experiment="secrets", run_name="r-{dsn}")
        def pipeline(
            dsn: str, login: Login, settings: dict[str, str], fail: bool
        ) -> dict[str, Any]:
            if fail:
                raise RuntimeError(f"connect failed: {everything}")
            return {"cost": 1.0, "note": f"connected with {everything}"}

        args = (dsn, Login(user="u", password=SecretStr(FIELD_SECRET)), dict(SECRETS))
        with recorded():
            pipeline(*args, fail=False)
            with pytest.raises(RuntimeError):
                pipeline(*args, fail=True)
            with tracked_run(
                "frame", experiment="secrets", params={"db_password": SECRETS["db_password"]}
            ) as run:
                run.log_frame(pd.DataFrame({"password": ["SSS-COLUMN-SSS"], "x": [1]}), "users")
                run.log_text(f"said {SECRETS['db_password']}", "said.txt")
                run.set_tags({"free": f"text {SECRETS['db_password']}"})
        runs = lenient.runs("secrets")
        assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED", "FINISHED"]
        failed = next(r for r in runs if r.info.status == "FAILED")
        assert "***" in failed.data.tags["emstrack.exception.message"]
        for secret in [*every, "SSS-COLUMN-SSS"]:
            assert leaks(secret, lenient.root) == [], secret

    def test_default_pattern_covers_common_names(self):
        redactor = Redactor.from_environ(emstrack._settings.secret_pattern(), {})
        mapped = map_params({**SECRETS, "author": "me", "keyboard": "qwerty"}, redactor)
        for key in SECRETS:
            assert mapped.params[key] == "***", key
        assert mapped.params["author"] == "me"
        assert mapped.params["keyboard"] == "qwerty"

    def test_the_working_folder_is_not_a_secret(self, monkeypatch):
        monkeypatch.setenv("PWD", "/home/someone/project")
        redactor = Redactor.from_environ(emstrack._settings.secret_pattern(), os.environ)
        assert redactor.scrub("/home/someone/project/x") == "/home/someone/project/x"


# --------------------------------------------------------------------------- 11-12 clear errors


class TestClearErrors:
    @pytest.mark.parametrize(
        ("uri", "expected"),
        [("http://127.0.0.1:9/", "not reachable"), ("bogus://x", "unsupported tracking URI")],
        ids=["closed-port", "bogus"],
    )
    def test_runs_on_an_unusable_store_is_one_line(self, store, uri, expected):
        """Case 11 (bounded by the subprocess timeout, measured in the note)."""
        done = emstrack_cli(
            "runs", "-e", "x", "--tracking-uri", uri, spool=store.spool, cwd=store.root, timeout=30
        )
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("Error:")
        assert expected in lines[0]

    def test_read_only_database_is_one_warning_without_mlflow_spam(self, store, tmp_path):
        """Case 12: an immutable mlflow.db (chattr +i stops root too)."""
        if shutil.which("chattr") is None:
            pytest.skip("chattr is not available")
        if subprocess.run(["chattr", "+i", str(store.path)], check=False).returncode != 0:
            pytest.skip("this file system does not take chattr +i")
        try:
            code = (
                "import emstrack\n"
                "with emstrack.tracked_run('ro', experiment='Default') as run:\n"
                "    run.log_metrics({'cost': 1.0})\n"
                "print('done')\n"
            )
            done = python(code, cwd=tmp_path, EMSTRACK_SPOOL_DIR=str(store.spool))
        finally:
            subprocess.run(["chattr", "-i", str(store.path)], check=False)
        assert done.returncode == 0, done.stderr
        assert "done" in done.stdout
        output = done.stdout + done.stderr
        assert "ERROR mlflow" not in output, output
        assert "Traceback" not in output, output
        assert "readonly database" in output
        assert len(done.stderr.strip().splitlines()) <= 2


# --------------------------------------------------------------------------- 13 the spool in itself


def test_the_spool_is_never_copied_into_itself(store):
    """Case 13: ``artifacts=[""]`` is the working directory, which holds the spool."""
    (store.root / "result.csv").write_text("a\n1\n")

    @tracked_optimization(experiment="self", artifacts=[""])
    def pipeline() -> dict[str, float]:
        return {"cost": 1.0}

    assert pipeline() == {"cost": 1.0}
    run = only_run(store, "self")
    paths = {a.path for a in store.client.list_artifacts(run.info.run_id)}
    assert "result.csv" in paths
    assert "spool" not in paths
    assert run_folders(store.spool) == []


# --------------------------------------------------------------------------- 14 the smaller ones


class TestSmallerOnes:
    def test_collision_message_names_both_paths(self):
        redactor = Redactor.from_environ(emstrack._settings.secret_pattern(), {})
        mapped = map_params({"x": {"a.b": 1}, "x.a": {"b": 2}}, redactor)
        ((key, why),) = mapped.unlogged.items()
        assert key == '"x.a".b'
        assert 'x."a.b"' in why
        assert "same dotted name" in why

    def test_complex_numbers_are_kept_faithfully(self, lenient):
        @tracked_optimization(experiment="complex")
        def pipeline(z: complex) -> dict[str, complex]:
            return {"c": 1 + 2j}

        with recorded() as caught:
            pipeline(3 - 4j)
        (message,) = emstrack_warnings(caught)
        assert "'c' not logged" in message
        assert "kept in config.json" in message
        run = only_run(lenient, "complex")
        path = lenient.client.download_artifacts(run.info.run_id, "config.json", str(lenient.root))
        document = json.loads(Path(path).read_text())
        assert document["inputs"]["z"] == {"real": 3.0, "imag": -4.0}
        assert document["mapping"]["not_logged_values"]["c"] == {"real": 1.0, "imag": 2.0}

    def test_arguments_that_are_not_params_are_named(self, store):
        deep: dict[str, Any] = {}
        level = deep
        for _ in range(200):
            level["d"] = {}
            level = level["d"]

        @tracked_optimization(experiment="notes")
        def pipeline(grid: Any, deep: dict[str, Any], n: int) -> dict[str, float]:
            return {"cost": 1.0}

        pipeline(np.zeros((2, 3)), deep, 1)
        run = only_run(store, "notes")
        path = store.client.download_artifacts(run.info.run_id, "config.json", str(store.root))
        notes = json.loads(Path(path).read_text())["mapping"]["not_params"]
        assert "ndarray shape=(2, 3)" in notes["grid"]
        assert "deep" in notes

    def test_empty_experiment_is_a_configuration_error(self, store):
        with pytest.raises(ConfigurationError, match="experiment=''"):
            tracked_optimization(experiment="")(lambda: None)
        with pytest.raises(ConfigurationError, match="experiment=' '"):
            tracked_run("x", experiment=" ")

    def test_long_run_name_is_cut_with_a_note(self, store):
        with tracked_run("n" * 1000, experiment="long"):
            pass
        run = only_run(store, "long")
        assert len(run.info.run_name) == 250
        path = store.client.download_artifacts(run.info.run_id, "config.json", str(store.root))
        cut = json.loads(Path(path).read_text())["mapping"]["cut_values"]
        assert cut["mlflow.runName"] == "n" * 1000

    @pytest.mark.parametrize(
        "template", ["{building_id.__class__}", "{building_id._secret}", "{n:>500000}", "{n:{n}}"]
    )
    def test_template_abuse_is_rejected_at_decoration(self, template):
        with pytest.raises(ConfigurationError, match="run_name="):
            tracked_optimization(run_name=template)(lambda building_id, n: None)

    def test_ui_on_a_missing_store_is_one_line_and_creates_nothing(self, store, tmp_path):
        missing = tmp_path / "nowhere" / "mlflow.db"
        done = emstrack_cli(
            "ui",
            "--tracking-uri",
            f"sqlite:///{missing}",
            "--port",
            str(free_port()),
            spool=store.spool,
            cwd=store.root,
            timeout=60,
        )
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("Error: no MLflow store")
        assert not missing.exists()


@pytest.mark.parametrize(
    ("options", "cause"),
    [
        ("tracking_uri='bogus://x'", "unsupported tracking URI"),
        ("experiment='x' * 1000", "experiment name of 1000 characters"),
    ],
)
def test_permanent_rejection_in_the_default_delivery_is_one_warning(tmp_path, options, cause):
    """Case 5, default (process) delivery: refused at the start, nothing parked in the spool."""
    code = (
        "import emstrack\n"
        f"@emstrack.tracked_optimization({options})\n"
        "def pipeline(x):\n"
        "    return {'cost': x}\n"
        "print('result', pipeline(2.5))\n"
    )
    spool = tmp_path / "spool"
    done = python(code, cwd=tmp_path, timeout=120, EMSTRACK_SPOOL_DIR=str(spool))
    assert done.returncode == 0, done.stderr
    assert "result {'cost': 2.5}" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if "EmstrackWarning" in line]
    assert len(warnings) == 1, done.stderr
    assert cause in warnings[0]
    assert "Nothing is kept in the spool" in warnings[0]
    assert not spool.exists() or not [p for p in spool.iterdir() if p.is_dir()]
