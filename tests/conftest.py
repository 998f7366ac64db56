"""Suite-wide hooks and fixtures.

The ``registry`` fixture gives a test the process's definition registry, restored at
teardown to what it held before (definitions the test registered or forgot are undone).

With NBCONDUCTOR_REQUIRE_BROWSER=1 (set by .ci/run) a skipped browser test fails the
session: CI must never go green because the browser tests did not run.
"""

from __future__ import annotations

import os

import pytest

from nbconductor.engine.definition import REGISTRY, Registry

_skipped_browser: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "browser" in report.keywords:
        _skipped_browser.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("NBCONDUCTOR_REQUIRE_BROWSER") == "1" and _skipped_browser:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if os.environ.get("NBCONDUCTOR_REQUIRE_BROWSER") == "1" and _skipped_browser:
        terminalreporter.section("browser tests skipped", red=True)
        for nodeid in _skipped_browser:
            terminalreporter.line(f"{nodeid} was skipped, but NBCONDUCTOR_REQUIRE_BROWSER=1")


def pytest_collection_modifyitems(config, items) -> None:
    # Playwright's sync API keeps an asyncio loop running on the main thread while its
    # session fixture lives; tests that call asyncio.run() must come before it.
    items.sort(key=lambda item: "tests/browser/" in item.nodeid)


@pytest.fixture
def registry() -> Registry:
    """The process's registry, as it was before the test once the test ends."""
    with REGISTRY.isolated():
        yield REGISTRY
