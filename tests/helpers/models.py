"""Helpers of the model tests: a fresh Python process, and what a direct optimization gives."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from helpers.servers import server_environment, stop_group

SUBPROCESS_TIMEOUT_S = 180


def fresh_process(code: str, *, cwd: Path, tracking_uri: str, output: Path) -> Any:
    """Run ``code`` in a new interpreter (no emstrack/MLflow state); return the JSON it wrote.

    The code gets ``OUTPUT`` (a path to write its JSON result to) as a global. The process
    sees the store only through ``MLFLOW_TRACKING_URI``.
    """
    prelude = f"OUTPUT = {str(output)!r}\n"
    env = server_environment() | {"MLFLOW_TRACKING_URI": tracking_uri}
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"subprocess failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return json.loads(output.read_text())


def assert_close(actual: float, expected: float, rel: float = 1e-9) -> None:
    """Equal to ``rel`` relative (absolute ``rel`` near zero)."""
    assert math.isfinite(actual), actual
    assert math.isclose(actual, expected, rel_tol=rel, abs_tol=rel), (actual, expected)


class ModelServer:
    """``mlflow models serve --env-manager local`` on 127.0.0.1 and a free port."""

    def __init__(self, model_uri: str, tracking_uri: str, folder: Path) -> None:
        from helpers.servers import free_port

        self.model_uri = model_uri
        self.tracking_uri = tracking_uri
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "serve.log"
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> float:
        """Start serving; wait until ``/ping`` answers; return the seconds it took."""
        import time
        import urllib.request

        began = time.monotonic()
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            self.model_uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-w",
            "1",
        ]
        env = server_environment() | {"MLFLOW_TRACKING_URI": self.tracking_uri}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError("model server exited early:\n" + self.log.read_text()[-3000:])
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as response:
                    if response.status == 200:
                        return time.monotonic() - began
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"model server not answering after {timeout} s")
            time.sleep(0.2)

    def post(self, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
        """POST to /invocations; the status and the decoded JSON (or text) answer."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            self.url + "/invocations",
            data=body,
            headers={"Content-Type": content_type},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def stop(self) -> None:
        """Terminate the process group (SIGKILL after a timeout); nothing of it is left."""
        if self.process is not None:
            stop_group(self.process, timeout=15)
        self.process = None

    @staticmethod
    def group_alive(group: int) -> bool:
        """Whether any process of a process group still exists."""
        import os

        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
