"""scripts/make_demo_sample.py regenerates the shipped sample byte for byte."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_demo_sample.py"
OPSD_FOLDER = Path("/work/shared/data/opsd-household")


@pytest.mark.skipif(
    not OPSD_FOLDER.exists() or importlib.util.find_spec("pyarrow") is None,
    reason=f"needs the shared OPSD folder {OPSD_FOLDER} and pyarrow",
)
class TestMakeDemoSample:
    def test_regenerated_files_equal_the_shipped_ones(self, tmp_path: Path) -> None:
        """Running the script into a fresh folder reproduces every shipped file exactly."""
        subprocess.run(
            [sys.executable, str(SCRIPT), "--source", str(OPSD_FOLDER), "--output", str(tmp_path)],
            check=True,
            capture_output=True,
        )
        shipped = resources.files("emstrack.ems").joinpath("data")
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["ATTRIBUTION.md", "device_start_probabilities.csv", "households.csv.gz"]
        for name in names:
            assert (tmp_path / name).read_bytes() == shipped.joinpath(name).read_bytes(), name
