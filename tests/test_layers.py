"""The architecture stays visible: imports point down, heavy libraries stay in one place."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbconductor

PACKAGE = Path(nbconductor.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules_importing(prefix: str) -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        if any(name == prefix or name.startswith(prefix + ".") for name in imported_modules(path)):
            found.add(path.relative_to(PACKAGE).as_posix())
    return found


def test_engine_and_storage_do_not_load_jupyter():
    code = (
        "import sys, nbconductor, nbconductor.engine.engine, nbconductor.testing, "
        "nbconductor.storage.duckdb.duckdb_store\n"
        "bad = [m for m in ('IPython', 'ipywidgets', 'ipykernel') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_layers_import_downwards():
    for path in (PACKAGE / "storage").rglob("*.py"):
        for name in imported_modules(path):
            assert not name.startswith(("nbconductor.engine", "nbconductor.extension")), path
            assert not name.startswith(
                ("nbconductor.widgets", "nbconductor.remote", "nbconductor.operations")
            ), path
    for path in (PACKAGE / "engine").rglob("*.py"):
        for name in imported_modules(path):
            assert not name.startswith(
                (
                    "nbconductor.extension",
                    "nbconductor.widgets",
                    "nbconductor.remote",
                    "nbconductor.operations",
                )
            ), path
            assert name.split(".")[0] not in {"IPython", "ipywidgets", "ipykernel"}, path


def test_heavy_libraries_live_in_one_module_each():
    assert modules_importing("duckdb") == {"storage/duckdb/duckdb_store.py"}
    assert modules_importing("croniter") == {"engine/schedules/cron.py"}
    assert modules_importing("cloudpickle") == {"engine/shipping.py"}
    assert modules_importing("distributed") == {"engine/runners/dask_runner.py"}
    # The spans, and where an attempt runs, its trace context made current.
    assert modules_importing("opentelemetry") == {
        "telemetry/otel.py",
        "engine/trace_context.py",
    }


def test_public_names_are_exported_and_documented():
    for name in nbconductor.__all__:
        value = getattr(nbconductor, name)
        if name == "__version__":
            continue
        assert (getattr(value, "__doc__", None) or "").strip(), f"{name} has no docstring"
    public = {n for n in vars(nbconductor) if not n.startswith("_")}
    submodules = {
        "engine",
        "errors",
        "storage",
        "extension",
        "widgets",
        "testing",
        "cli",
        "remote",
        "operations",
        "logs",
        "telemetry",
    }
    undeclared = (
        public
        - set(nbconductor.__all__)
        - submodules
        - {
            "annotations",
            "load_ipython_extension",
            "unload_ipython_extension",
        }
    )
    assert not undeclared, f"public but not in __all__: {sorted(undeclared)}"
