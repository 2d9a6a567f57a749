"""A tracked function pickles and copies as the function does, and is tracked where it lands.

Pipelines hand their functions to ``multiprocessing``, ``concurrent.futures`` and Dask, which
pickle them, and deep-copy configurations that hold them. A plain ``wrapt`` wrapper refuses
both (``NotImplementedError: object proxy must define __reduce_ex__()``).
"""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import subprocess
import textwrap
from pathlib import Path

from emstrack import tracked_optimization
from helpers import pickled
from helpers.scripts import emstrack_command, environment, plain, tracked


def metrics_by_name(store) -> dict[str, float]:
    runs = store.runs(pickled.EXPERIMENT)
    assert [run.info.status for run in runs] == ["FINISHED"] * len(runs)
    return {run.info.run_name: run.data.metrics["y"] for run in runs}


def test_spawned_workers_run_the_decorated_function_tracked(store):
    """Pool.map of a decorated function and a tracked method: results intact, one run each."""
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        squares = pool.map(pickled.square, [2, 3])
        sizes = pool.map(pickled.Plant(1.5).size, [4])
    assert squares == [{"y": 4.0}, {"y": 9.0}]
    assert sizes == [{"y": 6.0}]
    assert metrics_by_name(store) == {"square-2": 4.0, "square-3": 9.0, "size-4": 6.0}
    tags = {run.info.run_name: run.data.tags for run in store.runs(pickled.EXPERIMENT)}
    assert tags["square-2"]["emstrack.function_path"] == "helpers.pickled:square"


def test_pickle_by_reference_and_copies_are_the_same_object(store):
    """The decorator's wrapper comes back as itself; copy and deepcopy keep it."""
    assert pickle.loads(pickle.dumps(pickled.square)) is pickled.square
    assert copy.copy(pickled.square) is pickled.square
    holder = {"pipeline": pickled.square, "days": [1, 2]}
    copied = copy.deepcopy(holder)
    assert copied["pipeline"] is pickled.square
    assert copied["days"] == [1, 2]
    assert copied["days"] is not holder["days"]
    assert store.runs(pickled.EXPERIMENT) == []


def test_a_wrapper_applied_from_outside_arrives_tracked_with_its_options(store):
    """Not found under its name, it is pickled as the function plus options, tracked again."""
    tracked = tracked_optimization(experiment=pickled.EXPERIMENT, run_name="cube-{x}")(pickled.cube)
    arrived = pickle.loads(pickle.dumps(tracked))
    assert arrived is not tracked
    assert arrived(2) == {"y": 8.0}
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.map(tracked, [3]) == [{"y": 27.0}]
    assert metrics_by_name(store) == {"cube-2": 8.0, "cube-3": 27.0}


def test_a_scripts_own_function_on_spawned_workers_can_be_rerun(store, tmp_path: Path):
    """Defined in ``python script.py``: its workers' runs record the script, and rerun works."""
    script = tmp_path / "pool_script.py"
    script.write_text(
        textwrap.dedent(
            """\
            import multiprocessing

            import emstrack

            @emstrack.tracked_optimization(experiment="pickled", run_name="double-{x}")
            def double(x: int) -> dict:
                return {"y": 2.0 * x}

            if __name__ == "__main__":
                with multiprocessing.get_context("spawn").Pool(2) as pool:
                    print(pool.map(double, [1, 2]))
            """
        ),
        encoding="utf-8",
    )
    done = plain(store, str(script), text=True)
    assert done.returncode == 0, done.stderr
    assert "[{'y': 2.0}, {'y': 4.0}]" in done.stdout
    assert metrics_by_name(store) == {"double-1": 2.0, "double-2": 4.0}
    run = store.runs(pickled.EXPERIMENT)[0]
    assert run.data.tags["emstrack.function_path"] == "__main__:double"
    assert run.data.tags["emstrack.function_file"] == str(script.resolve())
    again = subprocess.run(
        [*emstrack_command(), "rerun", run.info.run_id],
        cwd=store.root,
        env=environment(store),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert "every metric the same" in again.stdout


DASK_SCRIPT = """\
import emstrack

@emstrack.tracked_optimization(experiment="pickled", run_name="half-{x}")
def half(x: int) -> dict:
    return {"y": x / 2}

if __name__ == "__main__":
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster, Client(cluster) as client:
        print(client.gather(client.map(half, [1, 3])))
"""


def test_a_scripts_own_function_on_dask_workers_is_tracked(store, tmp_path: Path):
    """Dask workers do not run the script: they load it by file, so their calls are tracked."""
    script = tmp_path / "dask_script.py"
    script.write_text(DASK_SCRIPT, encoding="utf-8")
    done = plain(store, str(script), text=True)
    assert done.returncode == 0, done.stderr
    assert "[{'y': 0.5}, {'y': 1.5}]" in done.stdout
    assert metrics_by_name(store) == {"half-1": 0.5, "half-3": 1.5}
    tags = store.runs(pickled.EXPERIMENT)[0].data.tags
    assert (tags["emstrack.function_path"], tags["emstrack.function_file"]) == (
        "__main__:half",
        str(script.resolve()),
    )


def test_an_instrumented_script_still_hands_its_function_to_a_pool(store, tmp_path: Path):
    """``emstrack run --track double``: the pool gets the function, the script's own call is a run.

    The instrumentation is the parent's: a spawned worker imports the script afresh, so its calls
    run untracked, as an unedited script's would. Before, pickling the wrapper crashed the script.
    """
    script = tmp_path / "pool_unedited.py"
    script.write_text(
        textwrap.dedent(
            """\
            import multiprocessing

            def double(x: int) -> dict:
                return {"y": 2.0 * x}

            if __name__ == "__main__":
                with multiprocessing.get_context("spawn").Pool(2) as pool:
                    print(pool.map(double, [1, 2]))
                print(double(5))
            """
        ),
        encoding="utf-8",
    )
    done = tracked(
        store, "-e", pickled.EXPERIMENT, "--track", "double", "--", str(script), text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[{'y': 2.0}, {'y': 4.0}]\n{'y': 10.0}\n"
    runs = store.runs(pickled.EXPERIMENT)
    assert sorted(run.info.run_name for run in runs) == ["double", "pool_unedited.py"]
    [call] = [run for run in runs if run.info.run_name == "double"]
    assert call.data.metrics == {"y": 10.0}
