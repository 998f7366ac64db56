"""The widgets package: its public names, its static files, its imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbconductor.widgets as widgets
from nbconductor.widgets import hooks
from nbconductor.widgets.panel import STATIC, Panel

PACKAGE = Path(widgets.__file__).parent


def test_all_matches_the_public_names():
    public = {
        name
        for name, value in vars(widgets).items()
        if not name.startswith("_")
        and not isinstance(value, type(sys))
        and name not in {"annotations", "Callable", "TYPE_CHECKING", "Any"}
        and getattr(value, "__module__", "nbconductor.widgets").startswith("nbconductor.widgets")
    }
    exported = set(widgets.__all__)
    assert exported <= set(vars(widgets)), exported - set(vars(widgets))
    internal = {
        "ExecutionReader", "HistoryQuery", "load_chart", "load_page", "render",
        "render_history", "snapshot_text", "summary_text", "preview_html", "schedules_text",
    }  # fmt: skip
    assert public - internal - {"log_source", "snapshot_publisher", "traceback_mapper"} <= exported
    for name in exported - {"log_source", "snapshot_publisher", "traceback_mapper"}:
        assert (getattr(widgets, name).__doc__ or "").strip(), f"{name} has no docstring"


def test_hooks_have_harmless_defaults():
    assert widgets.log_source("any-id") == []
    assert widgets.traceback_mapper("File x") == "File x"


def test_the_es_module_and_css_ship_in_the_package():
    assert (STATIC / "panel.js").is_file() and (STATIC / "panel.css").is_file()
    assert STATIC.parent == PACKAGE  # hatchling ships everything under nbconductor/
    panel = Panel()
    assert "export default { render }" in panel._esm
    assert ".nbc-panel" in panel._css
    panel.close()


def test_the_es_module_handles_what_python_emits():
    js = (STATIC / "panel.js").read_text()
    for hook in ("data-nbc-action", "data-nbc-since", "data-nbc-until", "data-nbc-time",
                 "data-nbc-key", "data-nbc-scroll", "change:html", "change:query",
                 "change:options"):  # fmt: skip
        assert hook in js, hook


def test_widgets_import_only_downwards():
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith("nbconductor.extension"), path
                assert name.split(".")[0] not in {"IPython", "ipykernel", "duckdb"}, path


def test_no_module_of_the_package_imports_the_package():
    # The package imports every view; a view importing it back (even inside a function)
    # closes an import circle. Submodules are fine: ``from nbconductor.widgets import hooks``.
    for path in PACKAGE.rglob("*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert all(a.name != "nbconductor.widgets" for a in node.names), path
            elif isinstance(node, ast.ImportFrom) and node.module == "nbconductor.widgets":
                for alias in node.names:
                    assert (PACKAGE / f"{alias.name}.py").is_file(), (path, alias.name)


def test_the_views_read_the_hooks_set_on_the_package(monkeypatch):
    monkeypatch.setattr(widgets, "traceback_mapper", lambda text: text.upper())
    assert hooks.holder.traceback_mapper("cell") == "CELL"


def test_importing_the_engine_still_loads_no_widgets():
    code = (
        "import sys, nbconductor, nbconductor.engine.engine\n"
        "print(any(m.startswith(('anywidget', 'nbconductor.widgets')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
