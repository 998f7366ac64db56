"""Helpers for browser tests: the Lab server handle, notebooks and nbconductor's views."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Error as PlaywrightError

#: Screenshots of failing tests and the latency report.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: How long a browser-side wait may take (ms): a kernel start on a busy 2-core runner.
DEADLINE = 30_000
#: Where the latency benchmark leaves its numbers for the terminal summary.
LATENCY_REPORT = pytest.StashKey[dict]()


class LabServer:
    def __init__(self, root: Path, port: int, token: str, process: subprocess.Popen) -> None:
        self.root, self.port, self.token, self.process = root, port, token, process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, relative: str) -> str:
        # ?reset: a fresh workspace, so Lab does not reopen earlier tests' notebooks
        # (and start their kernels again) beside this one.
        return f"{self.url}/lab/tree/{relative}?reset&token={self.token}"

    def notebook7_url(self, relative: str) -> str:
        """The notebook in Notebook 7's own page (a ``notebook7`` server)."""
        return f"{self.url}/notebooks/{relative}?token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 5):
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every session and its kernel (a test's notebook, once the test is over)."""
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", method="DELETE", timeout=15)


def copy_notebook(lab: LabServer, source: Path, name: str | None = None) -> str:
    """Put a notebook into the server's scratch directory; returns its relative path."""
    target = lab.root / (name or source.name)
    shutil.copy(source, target)
    return target.name


def write_notebook(lab: LabServer, name: str, cells: list[str]) -> str:
    """Write a notebook into the scratch directory whose first cell loads nbconductor
    with a history file of its own (``<name>.duckdb``); returns its relative path."""
    db = lab.root / f"{name}.duckdb"
    setup = (
        f"import os\nos.environ['NBCONDUCTOR_DB'] = {str(db)!r}\n"
        "%load_ext nbconductor\nimport nbconductor as nc"
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in [setup, *cells]]
    relative = f"{name}.ipynb"
    (lab.root / relative).write_text(nbformat.writes(nb))
    return relative


def open_notebook(page, lab: LabServer, relative: str) -> None:
    """Open a notebook and wait until its kernel is idle and ready for input."""
    page.goto(lab.notebook_url(relative))
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_selector(".jp-StatusBar-TextItem:has-text('| Idle')", timeout=60_000)


def run_all(page) -> None:
    """Run every cell, as Run > Run All Cells does."""
    page.locator(".jp-Notebook .jp-Cell").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+a")  # select all cells in command mode
    page.keyboard.press("Shift+Enter")


def execution_view(page, execution_id: str):
    """The live view of one execution: its picture and its ipywidgets controls."""
    picture = page.locator(f'[data-testid=nbc-execution][data-execution-id="{execution_id}"]')
    return page.locator(".nbc-execution-view").filter(has=picture)


def badge(view):
    """The execution's status badge (in the header, not a step's)."""
    return view.locator(".nbc-header [data-testid=nbc-status-badge]")


def _set_theme(page, name: str) -> None:
    """Switch JupyterLab's theme through its menu (Settings > Theme)."""
    if page.locator(f'body[data-jp-theme-name="{name}"]').count():
        return
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=name).first.click()
    page.wait_for_selector(f'body[data-jp-theme-name="{name}"]', state="attached", timeout=DEADLINE)


def shoot(page, target, name: str) -> None:
    """Screenshots of ``target`` (a locator) in the light and the dark theme, for a
    reviewer: test-artifacts/<name>-light.png and -dark.png. Leaves Lab light."""
    ARTIFACTS.mkdir(exist_ok=True)
    for theme, suffix in (("JupyterLab Light", "light"), ("JupyterLab Dark", "dark")):
        _set_theme(page, theme)
        _screenshot(target, ARTIFACTS / f"{name}-{suffix}.png")
    _set_theme(page, "JupyterLab Light")


def _screenshot(target, path: Path, attempts: int = 5) -> None:
    """A live view re-renders its HTML as the execution changes, so the element the
    locator found may be replaced before the picture is taken: find it again."""
    for attempt in range(attempts):
        try:
            target.scroll_into_view_if_needed()
            target.screenshot(path=str(path))
            return
        except PlaywrightError as exc:
            if "not attached to the DOM" not in str(exc) or attempt == attempts - 1:
                raise
