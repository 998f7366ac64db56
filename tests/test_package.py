from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbconductor
from nbconductor._version import __version__


def test_version_is_exposed():
    assert nbconductor.__version__ == __version__
    assert __version__.count(".") == 2


def test_console_script_prints_version():
    script = Path(sys.executable).with_name("nbconductor")
    assert script.exists(), "the package is not installed with its console script"
    out = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"nbconductor {__version__}"


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "nbconductor.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "usage: nbconductor" in out.stdout
