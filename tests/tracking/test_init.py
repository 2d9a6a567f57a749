"""The public surface: exactly __all__, sorted, documented, and cheap to import."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import emstrack


class TestExports:
    def test_all_is_sorted(self):
        """__all__ is sorted."""
        assert emstrack.__all__ == sorted(emstrack.__all__)

    def test_exported_names_are_exactly_all(self):
        """Every name in __all__ resolves and no other public name exists."""
        for name in emstrack.__all__:
            assert getattr(emstrack, name) is not None
        public = {
            name
            for name, value in vars(emstrack).items()
            if not name.startswith("_") and not inspect.ismodule(value)
        }
        assert public == {name for name in emstrack.__all__ if not name.startswith("_")}
        assert set(dir(emstrack)) == set(emstrack.__all__)

    def test_unknown_name_is_an_attribute_error(self):
        """A name that is not exported raises AttributeError."""
        with pytest.raises(AttributeError, match="does_not_exist"):
            emstrack.does_not_exist  # noqa: B018

    def test_public_callables_have_docstrings(self):
        """Every exported class and function is documented."""
        for name in emstrack.__all__:
            value = getattr(emstrack, name)
            if inspect.isclass(value) or inspect.isfunction(value) or callable(value):
                assert inspect.getdoc(value), name


class TestImportCost:
    def test_import_loads_neither_mlflow_nor_pandas(self):
        """`import emstrack` leaves MLflow, pandas, pydantic and wrapt unloaded."""
        code = (
            "import sys, emstrack; "
            "print(sorted(m for m in ('mlflow', 'pandas', 'pydantic', 'wrapt', 'pulp') "
            "if m in sys.modules))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "[]"

    def test_version(self):
        """The version is a dotted string and matches the package metadata."""
        from importlib.metadata import version

        assert emstrack.__version__ == version("emstrack")
