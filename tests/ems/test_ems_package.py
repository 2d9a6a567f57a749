"""The emstrack.ems package surface: exports, import footprint, no pyarrow needed for the sample."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import emstrack.ems as ems


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=False
    )


class TestExports:
    def test_all_is_sorted_and_resolvable(self) -> None:
        """__all__ is isort-style sorted (constants, classes, functions) and fully resolvable."""

        def kind(name: str) -> tuple[int, str]:
            return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

        assert ems.__all__ == sorted(ems.__all__, key=kind)
        assert all(hasattr(ems, name) for name in ems.__all__)


class TestImportFootprint:
    def test_import_loads_neither_mlflow_nor_matplotlib_nor_scipy(self) -> None:
        """Importing emstrack.ems leaves tracking, plotting and scipy unloaded."""
        result = run_python(
            "import sys, emstrack.ems; "
            "print(sorted(m for m in ('mlflow', 'matplotlib', 'scipy') if m in sys.modules))"
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[]"


class TestWithoutPyarrow:
    def test_sample_loads_and_parquet_names_the_missing_package(self, tmp_path: Path) -> None:
        """With pyarrow unimportable the sample still loads; a parquet file asks for pyarrow."""
        parquet = tmp_path / "building.parquet"
        parquet.write_bytes(b"PAR1")
        result = run_python(
            "import sys; sys.modules['pyarrow'] = None\n"
            "import emstrack.ems as ems\n"
            "print(len(ems.load_household_data()))\n"
            "try:\n"
            f"    ems.load_household_data({str(parquet)!r})\n"
            "except ImportError as error:\n"
            "    print(error)\n"
        )
        assert result.returncode == 0, result.stderr
        count, message = result.stdout.splitlines()
        assert count == "6"
        assert "building.parquet needs pyarrow" in message
