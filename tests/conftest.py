"""Suite-wide hooks and fixtures.

The ``registry`` fixture gives a test the process's definition registry, restored at
teardown to what it held before (definitions the test registered or forgot are undone).

With NBCONDUCTOR_REQUIRE_BROWSER=1 (set by .ci/run) a skipped browser test fails the
session: CI must never go green because the browser tests did not run. With
NBCONDUCTOR_NO_SKIPS=1 (set by .ci/run for the whole suite) any skipped test does: the
cluster, disk-full and other-user tests must run too.
"""

from __future__ import annotations

import os

import pytest

from nbconductor.engine.definition import REGISTRY, Registry

_skipped: list[tuple[str, bool]] = []  # (node id, is a browser test)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append((report.nodeid, "browser" in report.keywords))


def _forbidden_skips() -> list[tuple[str, str]]:
    if os.environ.get("NBCONDUCTOR_NO_SKIPS") == "1":
        return [(nodeid, "NBCONDUCTOR_NO_SKIPS=1") for nodeid, _ in _skipped]
    if os.environ.get("NBCONDUCTOR_REQUIRE_BROWSER") == "1":
        return [(nodeid, "NBCONDUCTOR_REQUIRE_BROWSER=1") for nodeid, b in _skipped if b]
    return []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _forbidden_skips():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    forbidden = _forbidden_skips()
    if forbidden:
        terminalreporter.section("tests skipped where none may be", red=True)
        for nodeid, setting in forbidden:
            terminalreporter.line(f"{nodeid} was skipped, but {setting}")


def pytest_collection_modifyitems(config, items) -> None:
    # Playwright's sync API keeps an asyncio loop running on the main thread while its
    # session fixture lives; tests that call asyncio.run() must come before it.
    items.sort(key=lambda item: "tests/browser/" in item.nodeid)


@pytest.fixture
def registry() -> Registry:
    """The process's registry, as it was before the test once the test ends."""
    with REGISTRY.isolated():
        yield REGISTRY
