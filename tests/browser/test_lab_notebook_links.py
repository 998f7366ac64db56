"""The tutorials' links to ../docs/*.md open in JupyterLab as `make lab` serves them:
the repository, starting in notebooks/ (issue: they were 404 with Lab on notebooks/)."""

from __future__ import annotations

import shutil
from pathlib import Path

from labtools import ARTIFACTS, DEADLINE, open_notebook
from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[2]


def test_a_link_to_the_docs_opens_the_page(lab, page):
    # The repository's layout under the server's root, as `make lab` serves it.
    (lab.root / "notebooks").mkdir(exist_ok=True)
    shutil.copy(ROOT / "notebooks" / "01-quickstart.ipynb", lab.root / "notebooks")
    shutil.copytree(ROOT / "docs", lab.root / "docs", dirs_exist_ok=True)
    open_notebook(page, lab, "notebooks/01-quickstart.ipynb")
    link = page.locator(".jp-RenderedMarkdown a", has_text="Concepts").first
    expect(link).to_be_visible(timeout=DEADLINE)
    link.click()
    tab = page.locator(".lm-TabBar-tab", has_text="concepts.md")
    expect(tab).to_be_visible(timeout=DEADLINE)
    heading = page.get_by_role("heading", name="Workflows and tasks").first
    expect(heading).to_be_visible(timeout=DEADLINE)
    expect(page.locator(".jp-Dialog")).to_have_count(0)  # no "Cannot open" error
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "notebook-link-to-docs-light.png"))
