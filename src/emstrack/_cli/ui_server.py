"""``mlflow server`` as a child process for ``emstrack ui``: start, wait until it answers, stop.

The server runs with one worker and without MLflow's background job runner (unless
``MLFLOW_SERVER_ENABLE_JOB_EXECUTION`` says otherwise), so it is two processes, not ten or more.
It runs in a session of its own (so a terminal's Ctrl-C reaches only ``emstrack``,
which then stops it) with its output in a log file; it is ready when ``GET /health`` answers
200. Stopping sends SIGTERM to its whole process group and SIGKILL after a grace period, so no
worker is left behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ServerError", "UiServer", "is_loopback", "port_in_use"]

POLL_INTERVAL_S = 0.2
STOP_GRACE_S = 10.0


class ServerError(RuntimeError):
    """The server could not be started or died before answering."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (binding it fails)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host.strip("[]"), port))
        except OSError:
            return True
    return False


def _client_host(host: str) -> str:
    """The address to reach a server bound to ``host`` from this machine."""
    if host in {"0.0.0.0", ""}:
        return "127.0.0.1"
    if host in {"::", "[::]"}:
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass
class UiServer:
    """One ``mlflow server`` on ``host:port`` over the store ``backend_uri``."""

    backend_uri: str
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    artifact_root: str | None = None
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """The URL to open in a browser on this machine."""
        return f"http://{_client_host(self.host)}:{self.port}"

    def command(self) -> list[str]:
        """The ``mlflow server`` command line."""
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            self.backend_uri,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        if self.artifact_root is not None:
            command += ["--default-artifact-root", self.artifact_root]
        return command

    def start(self) -> None:
        """Start the server process (in its own session), its output going to the log file."""
        if self.log_path is None:
            descriptor, name = _temporary_log()
            os.close(descriptor)
            self.log_path = Path(name)
        environment = dict(os.environ)
        environment.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        # MLflow's background job runner (GenAI evaluation jobs) adds eight processes; browsing
        # runs does not need it. MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true keeps it.
        environment.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float) -> float:
        """Poll ``/health`` until it answers 200; return the seconds it took.

        Raises:
            ServerError: The process exited first, or ``timeout`` seconds passed.

        """
        assert self.process is not None, "start() first"
        began = time.monotonic()
        deadline = began + timeout
        while not self._healthy():
            code = self.process.poll()
            if code is not None:
                raise ServerError(
                    f"mlflow server exited with status {code} before answering: "
                    f"{self.last_log_line()} (log: {self.log_path})"
                )
            if time.monotonic() > deadline:
                raise ServerError(
                    f"mlflow server did not answer {self.url}/health within {timeout:.0f} s "
                    f"(log: {self.log_path})"
                )
            time.sleep(POLL_INTERVAL_S)
        return time.monotonic() - began

    def stop(self, grace: float = STOP_GRACE_S) -> int | None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        # Workers may outlive the supervisor: make sure none of the group is left.
        _signal_group(process.pid, signal.SIGKILL)
        self.process = None
        return process.returncode

    def last_log_line(self) -> str:
        """The last non-empty line the server wrote (for error messages)."""
        if self.log_path is None or not self.log_path.exists():
            return "no output"
        lines = [
            line.strip()
            for line in self.log_path.read_text(errors="replace").splitlines()
            if line.strip()
        ]
        return lines[-1][:300] if lines else "no output"

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2.0) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _temporary_log() -> tuple[int, str]:
    import tempfile

    return tempfile.mkstemp(prefix="emstrack-ui-", suffix=".log")
