"""Browser tests: one JupyterLab server per session, headless Debian Chromium.

The server serves a scratch copy of the notebooks (Lab writes checkpoints), with a
private settings directory and autosave off (docs/jupyter-platform.md). Screenshots of
failing tests are saved under test-artifacts/.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from labtools import ARTIFACTS, LATENCY_REPORT, LabServer

from nbconductor.testing import wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.browser)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    yield from _server(tmp_path_factory, "lab", "jupyterlab", ["--LabApp.news_url="])


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory):
    """A Notebook 7 server (the ``notebook`` package, in the dev extra), for the modules
    that test the views there; it shares nothing with the Lab server."""
    if importlib.util.find_spec("notebook") is None:
        raise RuntimeError(
            "Notebook 7 is missing: pip install 'notebook>=7' (the dev extra has it)"
        )
    yield from _server(tmp_path_factory, "nb7", "notebook", [])


def _server(tmp_path_factory, name: str, module: str, extra: list[str]):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    root = tmp_path_factory.mktemp(name)
    settings = root / ".settings"
    plugin = settings / "@jupyterlab" / "docmanager-extension"
    plugin.mkdir(parents=True)
    (plugin / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    news = settings / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    work = root / "work"
    work.mkdir()
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),
        "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces"),
    }
    log = (root / "lab.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            module,
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            "--ServerApp.allow_root=True",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *extra,
        ],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = LabServer(work, port, token, process)

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter {name} exited:\n{(root / 'lab.log').read_text()}")
        try:
            return bool(server.api("/api/status"))
        except OSError:
            return False

    try:
        wait_for(up, timeout=60, what=f"the {module} server to start")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, lab, request):
    yield from _page(browser, lab, request)


@pytest.fixture
def nb7_page(browser, notebook7, request):
    """A browser page for the Notebook 7 server."""
    yield from _page(browser, notebook7, request)


def _page(browser, server, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    # Idle kernels of earlier tests would share the two cores with the later ones.
    server.shut_down_kernels()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_terminal_summary(terminalreporter, config):
    report = config.stash.get(LATENCY_REPORT, None)
    if report is not None:
        terminalreporter.section("widget latency (browser)")
        terminalreporter.line(
            f"task finishing -> view showing it: median {report['median_ms']} ms, "
            f"p95 {report['p95_ms']} ms over {report['samples']} "
            f"(target median <= {report['target_median_ms']} ms); "
            "test-artifacts/widget-latency.json"
        )
