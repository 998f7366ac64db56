"""JupyterLab opens a notebook in headless Chromium and runs a cell."""

from __future__ import annotations

import nbformat
from labtools import open_notebook, run_all


def test_lab_runs_a_cell(lab, page):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("print(6 * 7)"))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    (lab.root / "smoke.ipynb").write_text(nbformat.writes(nb))
    open_notebook(page, lab, "smoke.ipynb")
    run_all(page)
    page.wait_for_selector(".jp-OutputArea-output:has-text('42')", timeout=60_000)
