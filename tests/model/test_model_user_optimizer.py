"""A user's optimizer that is not installed: its code ships with the model."""

from __future__ import annotations

import json
import math
import shutil
import textwrap
from pathlib import Path

import mlflow

import emstrack
from emstrack.model import log_optimization_model
from helpers.models import fresh_process

FLAT_RATE = textwrap.dedent(
    """
    def quote(row, config):
        factor = 1.0 if row["mode"] == "cost" else 1.5
        cost = 2.5 * row["n_days"] * factor + config.battery.capacity_kwh
        if row["building_id"] == "explode":
            raise RuntimeError("no tariff for this building")
        return {"predicted_cost": cost, "solver_status": "closed_form"}
    """
)
PACKAGE_MODULE = textwrap.dedent(
    """
    from .rates import PER_DAY

    def quote(row, config):
        return {"predicted_cost": PER_DAY * row["n_days"], "savings_eur": 0.0,
                "optimization_feasible": True, "mystery": 1}
    """
)


def test_user_optimizers_from_a_file_and_a_package_load_in_a_fresh_process(
    store, tmp_path, monkeypatch
):
    """Logged from tmp_path (not installed), moved away, then loaded and predicted elsewhere."""
    code_dir = tmp_path / "user_code"
    (code_dir / "userpkg").mkdir(parents=True)
    (code_dir / "flat_rate.py").write_text(FLAT_RATE)
    (code_dir / "userpkg" / "__init__.py").write_text("")
    (code_dir / "userpkg" / "rates.py").write_text("PER_DAY = 7.25\n")
    (code_dir / "userpkg" / "pricing.py").write_text(PACKAGE_MODULE)
    monkeypatch.syspath_prepend(str(code_dir))
    with emstrack.tracked_run("user-optimizers") as run:
        from_file = log_optimization_model(
            {"battery": {"capacity_kwh": 3}},
            name="flat_rate",
            optimizer=f"{code_dir / 'flat_rate.py'}:quote",
        )
        from_package = log_optimization_model(name="pricing", optimizer="userpkg.pricing:quote")
    assert from_file.run_id == from_package.run_id == run.run_id
    assert mlflow.active_run() is None
    shutil.rmtree(code_dir)  # nothing left to import it from but the model

    rows = [
        {"building_id": "DE_KN_residential1", "n_days": 2, "mode": "self_consumption"},
        {"building_id": "explode", "n_days": 1},
        {"building_id": "DE_KN_residential4", "n_days": 0},
    ]
    code = f"""
        import json, sys, mlflow, pandas as pd
        assert not any("user_code" in p for p in sys.path)
        frame = pd.DataFrame({rows!r})
        result = {{}}
        for name in ("flat_rate", "pricing"):
            model = mlflow.pyfunc.load_model("runs:/{run.run_id}/" + name)
            result[name] = model.predict(frame).to_dict("records")
        json.dump(result, open(OUTPUT, "w"))
    """
    result = fresh_process(code, cwd=tmp_path, tracking_uri=store.uri, output=tmp_path / "o.json")
    flat = result["flat_rate"]
    assert flat[0]["predicted_cost"] == 2.5 * 2 * 1.5 + 3
    assert flat[0]["solver_status"] == "closed_form"
    assert flat[0]["optimization_feasible"] is True
    assert math.isnan(flat[0]["savings_eur"])  # the optimizer gave no saving
    assert flat[1]["optimization_feasible"] is False
    assert math.isnan(flat[1]["predicted_cost"])
    assert "RuntimeError: no tariff for this building" in flat[1]["error"]
    assert "n_days: must be >= 1, got 0" in flat[2]["error"]
    pricing = result["pricing"]
    assert "unknown figure(s) ['mystery']" in pricing[0]["error"]
    assert pricing[0]["optimization_feasible"] is False


def test_code_paths_and_config_reference_the_shipped_module(store, tmp_path):
    """The file ships under code/ and the configuration names it as module:function."""
    source = tmp_path / "tariff_rule.py"
    source.write_text("def run(row, config):\n    return {'predicted_cost': 1.0}\n")
    info = log_optimization_model(optimizer=f"{source}:run")
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "code" / "tariff_rule.py").is_file()
    config = json.loads(Path(local, "artifacts", "model_config.json").read_text())
    assert config["optimizer"] == "tariff_rule:run"
