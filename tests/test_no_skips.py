"""CI cannot go green on skipped tests: the suite's own hooks fail the session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def run_skipping(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(TESTS / "conftest.py", suite / "conftest.py")
    (suite / "test_it.py").write_text(
        "import pytest\n\n"
        "def test_runs():\n    assert True\n\n"
        "def test_skips():\n    pytest.skip('no cluster here')\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NBCONDUCTOR_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            str(suite),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**clean, **env},
        timeout=120,
    )


def test_a_skip_passes_by_default(tmp_path):
    assert run_skipping(tmp_path).returncode == 0


def test_a_skip_fails_the_session_when_none_may_be_skipped(tmp_path):
    result = run_skipping(tmp_path, NBCONDUCTOR_NO_SKIPS="1")
    assert result.returncode == 1
    assert "test_it.py::test_skips was skipped, but NBCONDUCTOR_NO_SKIPS=1" in result.stdout
