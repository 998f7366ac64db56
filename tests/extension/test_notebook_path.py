"""Finding the notebook's path and the default history file."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbconductor.extension.notebook_path import default_db_path, detect_notebook_path


def test_a_plain_shell_has_no_notebook_path(shell, tmp_path: Path) -> None:
    assert detect_notebook_path(shell.user_ns, {}, tmp_path) == (None, "none")


def test_vscode_sets_a_variable_in_the_user_namespace(shell, tmp_path: Path) -> None:
    shell.run_cell(f"__vsc_ipynb_file__ = {str(tmp_path / 'orders.ipynb')!r}")
    assert detect_notebook_path(shell.user_ns, {}, tmp_path) == (
        tmp_path / "orders.ipynb",
        "vscode",
    )


def test_jupyter_session_in_the_namespace(tmp_path: Path) -> None:
    ns = {"__session__": "/work/project/orders.ipynb"}
    assert detect_notebook_path(ns, {}, tmp_path) == (
        Path("/work/project/orders.ipynb"),
        "jupyter-session",
    )


def test_jpy_session_name_in_the_environment(tmp_path: Path) -> None:
    env = {"JPY_SESSION_NAME": "/work/project/orders.ipynb"}
    assert detect_notebook_path({}, env, tmp_path) == (
        Path("/work/project/orders.ipynb"),
        "JPY_SESSION_NAME",
    )


def test_sources_are_tried_in_order(tmp_path: Path) -> None:
    ns = {"__vsc_ipynb_file__": "/a/vscode.ipynb", "__session__": "/a/session.ipynb"}
    env = {"JPY_SESSION_NAME": "/a/env.ipynb"}
    assert detect_notebook_path(ns, env, tmp_path)[1] == "vscode"
    del ns["__vsc_ipynb_file__"]
    assert detect_notebook_path(ns, env, tmp_path)[1] == "jupyter-session"
    assert detect_notebook_path({}, env, tmp_path)[1] == "JPY_SESSION_NAME"


@pytest.mark.parametrize(
    "value",
    ["console-1-abc", "/work/script.py", "", "   ", "/work/notebook.ipynb.bak"],
)
def test_values_that_are_not_notebooks_are_ignored(value: str, tmp_path: Path) -> None:
    ns = {"__vsc_ipynb_file__": value, "__session__": value}
    assert detect_notebook_path(ns, {"JPY_SESSION_NAME": value}, tmp_path) == (None, "none")


def test_a_non_string_value_is_ignored(tmp_path: Path) -> None:
    assert detect_notebook_path({"__session__": 42}, {}, tmp_path) == (None, "none")


def test_a_relative_session_path_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "orders.ipynb").write_text("{}")
    ns = {"__session__": "sub/orders.ipynb"}
    assert detect_notebook_path(ns, {}, tmp_path) == (
        tmp_path / "sub" / "orders.ipynb",
        "jupyter-session",
    )


def test_a_server_relative_session_path_lands_in_the_kernels_folder(tmp_path: Path) -> None:
    # jupyter_server without a file name gives a path relative to its root, while
    # the kernel runs in the notebook's own folder.
    ns = {"__session__": "projects/shop/orders.ipynb"}
    assert detect_notebook_path(ns, {}, tmp_path) == (tmp_path / "orders.ipynb", "jupyter-session")


def test_default_db_from_the_environment_variable(tmp_path: Path) -> None:
    ns = {"__vsc_ipynb_file__": "/a/orders.ipynb"}
    assert default_db_path(ns, {"NBCONDUCTOR_DB": "/data/h.duckdb"}, tmp_path) == (
        Path("/data/h.duckdb"),
        "from NBCONDUCTOR_DB",
    )
    assert default_db_path(ns, {"NBCONDUCTOR_DB": "h.duckdb"}, tmp_path)[0] == tmp_path / "h.duckdb"


def test_an_empty_environment_variable_does_not_count(tmp_path: Path) -> None:
    path, _ = default_db_path({}, {"NBCONDUCTOR_DB": " "}, tmp_path)
    assert path == tmp_path / ".nbconductor" / "default.duckdb"


def test_default_db_next_to_the_notebook(shell, tmp_path: Path) -> None:
    shell.user_ns["__session__"] = str(tmp_path / "shop" / "orders.ipynb")
    path, why = default_db_path(shell.user_ns, {}, tmp_path)
    assert path == tmp_path / "shop" / ".nbconductor" / "orders.duckdb"
    assert (
        why
        == f"next to the notebook {tmp_path / 'shop' / 'orders.ipynb'} (its path from jupyter-session)"
    )


def test_default_db_in_the_working_directory_says_how_to_choose(shell, tmp_path: Path) -> None:
    path, why = default_db_path(shell.user_ns, {}, tmp_path)
    assert path == tmp_path / ".nbconductor" / "default.duckdb"
    assert "could not be detected" in why
    assert "NBCONDUCTOR_DB" in why and "%conductor db PATH" in why
    assert list(tmp_path.iterdir()) == []  # nothing was created
