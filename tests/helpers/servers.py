"""Helpers of the fault, concurrency and spool tests: a real server, the CLI, reading back.

A real ``mlflow server`` subprocess on 127.0.0.1 (:class:`MlflowServer`), the installed
``emstrack`` command (:func:`emstrack_cli`), and exact read-back of runs and spool entries.

Each server has its own SQLite backend (copied from the suite's migrated template), its own
artifact destination and a free port. It is ready when ``GET /health`` answers; it stops by
terminating its process group (killed after a timeout). :meth:`MlflowServer.kill` sends
SIGKILL to the whole group, like a crash, and :meth:`MlflowServer.start` can start it again on
the same port and backend.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import emstrack

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health(url: str, timeout: float = 1.0) -> bool:
    """Whether ``url``'s ``/health`` answers 200."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait_until(condition: Any, timeout: float, interval: float = 0.05, what: str = "") -> None:
    """Poll ``condition()`` until it is true; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout} s: {what or condition}")
        time.sleep(interval)


def checkout_pythonpath() -> str:
    """``PYTHONPATH`` for a subprocess whose sweep workers import ``helpers.sweep_pipelines``:
    this checkout's ``src`` and ``tests``."""
    tests = Path(__file__).resolve().parents[1]
    return os.pathsep.join([str(Path(emstrack.__file__).resolve().parents[1]), str(tests)])


def server_environment() -> dict[str, str]:
    """The environment a server (or an ``emstrack`` subprocess) runs with."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "EMSTRACK_", "PYTEST_"))
    }
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    # MLflow's GenAI job runner: eight processes that keep 1.2 cores busy for the first half
    # minute of every server on this 2-core machine, and that no test uses.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return env


class MlflowServer:
    """One ``mlflow server`` process with its own SQLite backend and artifact destination."""

    def __init__(
        self,
        folder: Path,
        template_database: Path,
        artifacts_destination: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.database = folder / "server.db"
        shutil.copyfile(template_database, self.database)
        self.artifacts = artifacts_destination or folder / "artifacts"
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts: list[float] = []

    @property
    def backend_uri(self) -> str:
        """The server's own SQLite store, for reading back without the server."""
        return f"sqlite:///{self.database}"

    def start(self, timeout: float = START_TIMEOUT_S) -> float:
        """Start the server and wait until ``/health`` answers; return the seconds it took."""
        assert self.process is None, "server already running"
        began = time.monotonic()
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            self.backend_uri,
            "--serve-artifacts",
            "--artifacts-destination",
            str(self.artifacts),
        ]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.folder,
                env=server_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not health(self.url):
            if self.process.poll() is not None:
                output = self.log.read_text(errors="replace")[-3000:]
                self.process = None
                raise RuntimeError(f"mlflow server exited early:\n{output}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"mlflow server not healthy after {timeout} s")
            time.sleep(0.1)
        took = time.monotonic() - began
        self.starts.append(took)
        return took

    def kill(self) -> None:
        """SIGKILL the server's whole process group, like a crash; wait until it is gone."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)
        self.process = None
        wait_until(lambda: not health(self.url, timeout=0.2), 10, what="server gone")

    def stop(self) -> None:
        """Terminate the process group; SIGKILL it if it has not exited in time."""
        if self.process is not None:
            stop_group(self.process)
        self.process = None

    def __enter__(self) -> MlflowServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_group(process: subprocess.Popen[Any], timeout: float | None = None) -> None:
    """Terminate ``process``'s process group, SIGKILL it after ``timeout``; nothing is left."""
    wait = STOP_TIMEOUT_S if timeout is None else timeout
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=wait)
    # Workers of the group that outlived their parent.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def writes_are_refused(folder: Path) -> bool:
    """Whether creating a file in ``folder`` really fails (chmod does not stop root)."""
    probe = folder / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return True
    probe.unlink()
    return False


def unwritable_folder(base: Path) -> Path:
    """A folder path under which nothing can be written, even as root.

    A read-only folder (0o500) where that stops writes; otherwise (root) a path below a
    regular *file*, where ``mkdir`` fails with ``NotADirectoryError`` for everyone.
    """
    folder = base / "read-only"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o500)
    if writes_are_refused(folder):
        return folder
    folder.chmod(0o700)
    blocker = base / "not-a-folder"
    blocker.write_text("a regular file where a folder is expected\n")
    return blocker / "artifacts"


# --------------------------------------------------------------------------- emstrack commands

EMSTRACK = Path(sys.executable).with_name("emstrack")


def emstrack_cli(
    *args: str,
    uri: str | None = None,
    spool: Path | None = None,
    cwd: Path | None = None,
    timeout: float = 180,
    **extra_env: str,
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``emstrack`` console script in a clean environment.

    ``uri`` becomes ``MLFLOW_TRACKING_URI`` and ``spool`` ``EMSTRACK_SPOOL_DIR`` (both unset
    otherwise); ``extra_env`` is added last.
    """
    env = server_environment()
    if uri is not None:
        env["MLFLOW_TRACKING_URI"] = uri
    if spool is not None:
        env["EMSTRACK_SPOOL_DIR"] = str(spool)
    env.update(extra_env)
    return subprocess.run(
        [str(EMSTRACK), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def sync_counts(result: subprocess.CompletedProcess[str]) -> tuple[int, int, int]:
    """(sent, failed, skipped) from ``emstrack sync``'s last line."""
    last = result.stdout.strip().splitlines()[-1]
    sent, failed, skipped = (int(part.split()[0]) for part in last.split(","))
    return sent, failed, skipped


# --------------------------------------------------------------------------- reading back


def spool_entries(spool: Path) -> dict[str, dict[str, Any]]:
    """Each run folder in ``spool`` by run key: its events, start and end, state."""
    import json

    found: dict[str, dict[str, Any]] = {}
    if not spool.is_dir():
        return found
    for folder in sorted(p for p in spool.iterdir() if p.is_dir()):
        lines = (folder / "run.jsonl").read_bytes().split(b"\n")
        events = [json.loads(line) for line in lines if line.strip()]
        state_file = folder / "state.json"
        found[events[0]["key"]] = {
            "folder": folder,
            "events": events,
            "start": events[0],
            "end": next((e for e in events if e["e"] == "end"), None),
            "params": {k: v for e in events if e["e"] == "params" for k, v in e["params"].items()},
            "metrics": [tuple(p) for e in events if e["e"] == "metrics" for p in e["metrics"]],
            "state": json.loads(state_file.read_text()) if state_file.exists() else None,
        }
    return found


def snapshot(uri: str, run_id: str, scratch: Path) -> dict[str, Any]:
    """Everything the store holds about one run, artifacts as bytes, for exact comparison."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(run_id)
    metrics = {
        key: sorted((m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, key))
        for key in run.data.metrics
    }
    target = scratch / run_id
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    artifacts: dict[str, bytes] = {}
    if client.list_artifacts(run_id):
        local = Path(client.download_artifacts(run_id, "", str(target)))
        artifacts = {
            path.relative_to(local).as_posix(): path.read_bytes()
            for path in sorted(local.rglob("*"))
            if path.is_file()
        }
    return {
        "run_id": run_id,
        "name": run.info.run_name,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "params": dict(run.data.params),
        "tags": dict(run.data.tags),
        "metrics": metrics,
        "artifacts": artifacts,
    }


def all_runs(uri: str, experiment: str) -> list[Any]:
    """Every run of ``experiment`` in the store at ``uri`` (deleted ones too), oldest first."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs([found.experiment_id], run_view_type=ViewType.ALL, max_results=50_000)
    return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))
