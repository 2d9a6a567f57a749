"""The installed ``emstrack`` command reading runs back: exact output, exit codes, ``ui``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from helpers.servers import EMSTRACK, emstrack_cli

RUNS = [
    # name, building, mode, total_cost (None: not logged), fails
    ("b1-cost-a", "B1", "cost", 12.5, False),
    ("b1-cost-b", "B1", "cost", 10.0, False),
    ("b1-self", "B1", "self_consumption", 14.0, False),
    ("b2-cost", "B2", "cost", 20.25, False),
    ("b2-self-a", "B2", "self_consumption", None, False),
    ("b2-self-b", "B2", "self_consumption", 18.0, False),
    ("b2-self-fail", "B2", "self_consumption", 1.0, True),
]


@dataclass
class CliStore:
    """A store with the runs of RUNS in experiment 'cli', and an empty store beside it."""

    uri: str
    folder: Path
    ids: dict[str, str] = field(default_factory=dict)


class _Failure(Exception):
    pass


@pytest.fixture(scope="module")
def cli_store(
    tmp_path_factory: pytest.TempPathFactory, template_database: Path
) -> Iterator[CliStore]:
    """Write RUNS with emstrack.tracked_run, one after the other."""
    import emstrack

    folder = tmp_path_factory.mktemp("cli")
    database = folder / "mlflow.db"
    shutil.copyfile(template_database, database)
    built = CliStore(uri=f"sqlite:///{database}", folder=folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setenv("EMSTRACK_SPOOL_DIR", str(folder / "spool"))
        patch.setenv("EMSTRACK_STRICT", "1")
        patch.setenv("EMSTRACK_DELIVERY", "sync")  # run ids read right after each run
        for name, building, mode, cost, fails in RUNS:
            try:
                with emstrack.tracked_run(
                    name,
                    experiment="cli",
                    params={"building_id": building, "optimization_mode": mode, "n_days": 2},
                    tracking_uri=built.uri,
                ) as run:
                    if cost is not None:
                        run.log_metrics({"total_cost": cost})
                    if fails:
                        raise _Failure
            except _Failure:
                pass
            built.ids[name] = str(run.run_id)
    return built


def compare_costs(cli_store: CliStore, *options: str) -> subprocess.CompletedProcess[str]:
    """``emstrack compare -e cli -m total_cost`` with ``options``, on the store of ``cli_store``."""
    return emstrack_cli("compare", "-e", "cli", "-m", "total_cost", *options, uri=cli_store.uri)


@pytest.fixture(scope="module", autouse=True)
def _console_script_installed() -> None:
    assert EMSTRACK.exists(), "the emstrack console script is not installed (pip install -e .)"


class TestCompare:
    """emstrack compare: the aligned table, CSV and JSON."""

    def test_table_lines(self, cli_store: CliStore) -> None:
        """Title, header, dashes, one line per group, and the runs left out."""
        result = compare_costs(cli_store, "--by", "building_id", "--by", "optimization_mode")
        assert result.returncode == 0, result.stderr
        ids = cli_store.ids
        head = "building_id  optimization_mode  count  missing     mean      min      max  "
        rows = [
            "B1           cost                   2        0  11.2500  10.0000  12.5000",
            "B1           self_consumption       1        0  14.0000  14.0000  14.0000",
            "B2           cost                   1        0  20.2500  20.2500  20.2500",
            "B2           self_consumption       1        1  18.0000  18.0000  18.0000",
        ]
        stats = dict(zip(["b1-cost-b", "b1-self", "b2-cost", "b2-self-b"], rows, strict=True))
        assert result.stdout.splitlines() == [
            "total_cost (lower is better) by building_id, optimization_mode",
            head + "best_run_id                       best_run_name",
            "-----------  -----------------  -----  -------  -------  -------  -------  "
            "--------------------------------  -------------",
            *(f"{line}  {ids[name]}  {name}" for name, line in stats.items()),
            "left out: 1 FAILED run",
        ]
        assert result.stderr == ""

    def test_csv_with_comma_separated_by_and_failed_runs(self, cli_store: CliStore) -> None:
        """--csv prints the frame; --by a,b equals two --by; --include-failed adds the run."""
        result = emstrack_cli(
            "compare",
            "--tracking-uri",
            cli_store.uri,
            "-e",
            "cli",
            "-m",
            "total_cost",
            "--by",
            "building_id,optimization_mode",
            "--include-failed",
            "--csv",
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert (
            lines[0]
            == "building_id,optimization_mode,count,missing,mean,min,max,best_run_id,best_run_name"
        )
        assert (
            lines[4]
            == f"B2,self_consumption,2,1,9.5,1.0,18.0,{cli_store.ids['b2-self-fail']},b2-self-fail"
        )
        assert len(lines) == 5

    def test_json_and_higher_is_better(self, cli_store: CliStore) -> None:
        """--json prints records; --higher-is-better picks the highest run."""
        result = compare_costs(cli_store, "--by", "building_id", "--higher-is-better", "--json")
        assert result.returncode == 0, result.stderr
        records = json.loads(result.stdout)
        assert [(r["building_id"], r["count"], r["best_run_name"]) for r in records] == [
            ("B1", 3, "b1-self"),
            ("B2", 2, "b2-cost"),
        ]


class TestRunsAndExport:
    """emstrack runs and emstrack export."""

    def test_runs_table_and_csv(self, cli_store: CliStore) -> None:
        """The table has a line per active run; --csv has every column."""
        table = emstrack_cli("runs", "-e", "cli", "--limit", "3", uri=cli_store.uri)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split() == [
            "run_id",
            "run_name",
            "status",
            "start_time",
            "duration_s",
            "params.building_id",
            "params.n_days",
            "params.optimization_mode",
            "metrics.total_cost",
        ]
        assert [line.split()[1] for line in lines[2:]] == ["b2-self-fail", "b2-self-b", "b2-self-a"]
        assert lines[2].split()[2] == "FAILED"

    def test_export_writes_the_file_and_says_so(self, cli_store: CliStore, tmp_path: Path) -> None:
        """export -o file.parquet writes every run and prints one line."""
        target = tmp_path / "runs.parquet"
        result = emstrack_cli("export", "-e", "cli", "-o", str(target), uri=cli_store.uri)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"wrote {len(RUNS)} runs to {target}\n"
        frame = pd.read_parquet(target)
        assert sorted(frame["run_name"]) == sorted(name for name, *_ in RUNS)


class TestErrors:
    """Mistakes end with one 'Error:' line and exit status 1, never a traceback."""

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (
                ["compare", "-e", "nope", "-m", "total_cost"],
                "Error: no experiment 'nope' in sqlite:///{db}; "
                "known experiments: 'Default', 'cli'",
            ),
            (
                ["compare", "-e", "cli", "-m", "total_kost"],
                "Error: no run of 'cli' logged metric 'total_kost'; known metrics: 'total_cost'",
            ),
            (
                ["runs", "-e", "cli", "-f", "params.a = 'x' OR params.b = 'y'"],
                "Error: invalid filter \"params.a = 'x' OR params.b = 'y'\": "
                "Invalid clause(s) in filter string: 'OR'",
            ),
        ],
        ids=["missing-experiment", "unknown-metric", "bad-filter"],
    )
    def test_one_line_error(self, cli_store: CliStore, args: list[str], message: str) -> None:
        """The exact message, exit status 1, nothing on stdout."""
        result = emstrack_cli(*args, uri=cli_store.uri)
        database = cli_store.uri.removeprefix("sqlite:///")
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr.splitlines() == [message.format(db=database)]

    def test_empty_store_is_one_line_and_not_created(self, tmp_path: Path) -> None:
        """No mlflow.db in the working directory: one line naming it; nothing is created."""
        result = emstrack_cli("compare", "-e", "cli", "-m", "total_cost", cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"Error: no MLflow store at sqlite:///{tmp_path / 'mlflow.db'}: "
            f"{tmp_path / 'mlflow.db'} does not exist"
        ]
        assert "Traceback" not in result.stderr
        assert list(tmp_path.iterdir()) == []


class TestUiErrors:
    """emstrack ui fails fast, in one line, on a port in use."""

    def test_non_loopback_host_warns_and_taken_port_fails_fast(self, cli_store: CliStore) -> None:
        """--host 0.0.0.0 prints a warning; a port in use is one error line, exit 1."""
        import socket

        with socket.socket() as sock:
            sock.bind(("0.0.0.0", 0))
            sock.listen()
            port = sock.getsockname()[1]
            result = emstrack_cli("ui", "--host", "0.0.0.0", "--port", str(port), uri=cli_store.uri)
        assert result.returncode == 1
        lines = result.stderr.splitlines()
        assert lines[0].startswith("warning: --host 0.0.0.0 makes the MLflow UI")
        assert lines[1] == f"Error: port {port} on 0.0.0.0 is already in use; pass --port"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
            except ProcessLookupError:
                continue
    return members


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _read_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert time.monotonic() < deadline, "emstrack ui did not print its URL in time"
    return line


@pytest.mark.slow
class TestUi:
    """emstrack ui: the MLflow UI on the store, stopped cleanly by Ctrl-C."""

    def test_serves_the_store_and_stops_on_sigint(self, cli_store: CliStore) -> None:
        """The API lists the experiment, artifacts are served; SIGINT ends it with status 0."""
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "EMSTRACK_"))}
        env.update(MLFLOW_TRACKING_URI=cli_store.uri, MLFLOW_DISABLE_TELEMETRY="true")
        process = subprocess.Popen(
            [EMSTRACK, "ui", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cli_store.folder,
        )
        server_pid = None
        try:
            deadline = time.monotonic() + 120
            first = _read_line(process, deadline)
            from mlflow.tracking import MlflowClient

            experiment = MlflowClient(cli_store.uri).get_experiment_by_name("cli").experiment_id
            assert first == (
                f"MLflow UI on {cli_store.uri} (experiment 'cli'): http://127.0.0.1:{port}"
                f"/#/experiments/{experiment}/runs?workflowType=machine_learning\n"
            )
            second = _read_line(process, deadline)
            assert second.startswith("(mlflow server pid ")
            server_pid = int(second.split()[3].rstrip(";"))
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=100",
                timeout=10,
            ) as response:
                names = {e["name"] for e in json.load(response)["experiments"]}
            assert "cli" in names
            assert len(_group_members(server_pid)) == 2  # mlflow CLI + uvicorn, no job runner
            run_id = cli_store.ids["b1-cost-a"]
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/get-artifact?path=config.json&run_uuid={run_id}",
                timeout=10,
            ) as response:
                assert json.load(response)["inputs"]["building_id"] == "B1"
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 0, stderr
        assert stdout == "stopped\n"
        assert "Traceback" not in stderr
        assert server_pid is not None
        assert not _pid_alive(server_pid)
        # Its workers were killed with it; poll until init has reaped the last of them.
        deadline = time.monotonic() + 15
        while _group_alive(server_pid):
            assert time.monotonic() < deadline, "server processes left behind"
            time.sleep(0.1)


def test_version_matches_the_package() -> None:
    """emstrack --version prints the package version."""
    from emstrack import __version__

    result = subprocess.run(
        [sys.executable, "-m", "emstrack", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout == f"emstrack, version {__version__}\n"
