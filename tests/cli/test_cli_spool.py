"""``emstrack status`` and ``emstrack sync``: output and exit codes of the installed command."""

from __future__ import annotations

import re
import warnings

import pytest

from emstrack import tracked_run
from helpers.locks import holding_file_lock
from helpers.servers import emstrack_cli, free_port, spool_entries


@pytest.fixture
def spooled(store, monkeypatch):
    """Two runs kept in the spool (one FINISHED, one FAILED) while their store was unreachable."""
    monkeypatch.delenv("EMSTRACK_STRICT")
    down = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        with tracked_run("good", experiment="cli"):
            pass
        with pytest.raises(RuntimeError), tracked_run("bad", experiment="cli"):
            raise RuntimeError("boom")
    keys = {entry["start"]["name"]: key for key, entry in spool_entries(store.spool).items()}
    return store, down, keys


class TestStatus:
    def test_empty_spool(self, store):
        """Nothing waiting: one summary line, exit status 0."""
        result = emstrack_cli("status", spool=store.spool, cwd=store.root)
        assert result.returncode == 0
        assert result.stdout == "0 run(s) waiting\n"

    def test_lists_each_waiting_run(self, spooled):
        """One line per run: start time, key, final status, experiment / name, store."""
        store, down, keys = spooled
        result = emstrack_cli("status", spool=store.spool, cwd=store.root)
        assert result.returncode == 0
        lines = result.stdout.splitlines()
        assert lines[-1] == "2 run(s) waiting"
        for line, name, state in zip(lines, ["good", "bad"], ["FINISHED", "FAILED"], strict=False):
            started = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
            expected = rf"{started}  {keys[name]}  {state}\s+cli / {name}  -> {re.escape(down)}"
            assert re.fullmatch(expected, line), line

    def test_run_held_by_a_live_process_shows_as_writing(self, spooled):
        """A run whose lock another process holds is listed as being written."""
        store, _, keys = spooled
        folder = spool_entries(store.spool)[keys["good"]]["folder"]
        with holding_file_lock(folder / ".lock"):
            result = emstrack_cli("status", spool=store.spool, cwd=store.root)
            assert f"{keys['good']}  writing" in result.stdout
            synced = emstrack_cli(
                "sync", "--tracking-uri", store.uri, spool=store.spool, cwd=store.root
            )
            assert (
                f"skipped  {keys['good']}  still being written by another process" in synced.stdout
            )
            assert synced.stdout.splitlines()[-1] == "1 sent, 0 failed, 1 skipped"
            assert synced.returncode == 0

    def test_spool_option_beats_the_environment(self, spooled, tmp_path):
        """--spool names the spool to read, whatever EMSTRACK_SPOOL_DIR says."""
        store, _, _ = spooled
        result = emstrack_cli(
            "status", "--spool", str(store.spool), spool=tmp_path / "other", cwd=tmp_path
        )
        assert result.stdout.splitlines()[-1] == "2 run(s) waiting"


class TestSync:
    def test_sends_every_run_and_exits_zero(self, spooled):
        """Each sent run is listed with its status and name; the summary counts them; exit 0."""
        store, _, keys = spooled
        result = emstrack_cli(
            "sync", "--tracking-uri", store.uri, spool=store.spool, cwd=store.root
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"sent     {keys['good']}  FINISHED  good",
            f"sent     {keys['bad']}  FAILED    bad",
            "2 sent, 0 failed, 0 skipped",
        ]
        assert sorted(r.info.run_name for r in store.runs("cli")) == ["bad", "good"]
        again = emstrack_cli("sync", spool=store.spool, cwd=store.root)
        assert (again.returncode, again.stdout) == (0, "0 sent, 0 failed, 0 skipped\n")

    def test_failure_is_reported_on_stderr_with_exit_one(self, spooled):
        """A store still unreachable: each run is named on stderr, exit status 1, runs kept."""
        store, down, keys = spooled
        result = emstrack_cli("sync", spool=store.spool, cwd=store.root)
        assert result.returncode == 1
        assert result.stdout.splitlines()[-1] == "0 sent, 2 failed, 0 skipped"
        failed = result.stderr.splitlines()
        assert [line.split()[:2] for line in failed] == [
            ["failed", keys["good"]],
            ["failed", keys["bad"]],
        ]
        assert all("StoreUnavailableError" in line and down in line for line in failed)
        assert len(spool_entries(store.spool)) == 2
