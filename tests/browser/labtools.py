"""Helpers for browser tests: the Lab server handle and notebook actions."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path


class LabServer:
    def __init__(self, root: Path, port: int, token: str, process: subprocess.Popen) -> None:
        self.root, self.port, self.token, self.process = root, port, token, process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, relative: str) -> str:
        return f"{self.url}/lab/tree/{relative}?token={self.token}"

    def api(self, path: str):
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


def copy_notebook(lab: LabServer, source: Path, name: str | None = None) -> str:
    """Put a notebook into the server's scratch directory; returns its relative path."""
    target = lab.root / (name or source.name)
    shutil.copy(source, target)
    return target.name


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
