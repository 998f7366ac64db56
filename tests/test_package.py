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


ROOT = Path(__file__).resolve().parent.parent


def _floors() -> dict[str, str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {}
    for spec in project["dependencies"]:
        name, _, version = spec.partition(">=")
        floors[name.strip().lower()] = version.strip()
    return floors


def test_ci_installs_exactly_the_declared_floors():
    # .ci/package-check runs the tests on these pins: a floor raised in pyproject.toml
    # without raising the pin (or the reverse) would test versions nobody declared.
    pins = {}
    for line in (ROOT / ".ci" / "lowest.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    assert pins.keys() == _floors().keys()
    for name, pin in pins.items():
        floor = _floors()[name]
        # "7.1" is the floor of the pin "7.1.0": compare with trailing ".0"s dropped.
        same = pin.removesuffix(".0").removesuffix(".0") == floor.removesuffix(".0")
        assert same, f"{name}: pinned {pin} in .ci/lowest.txt, floor {floor} in pyproject.toml"


def test_every_dependency_has_a_floor():
    assert all(_floors().values())


def test_the_package_is_typed_and_licensed():
    assert (ROOT / "nbconductor" / "py.typed").is_file()
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_readme_has_no_relative_links():
    # A package index renders the README away from the repository: a relative link
    # there leads nowhere. Docs are named as paths instead.
    import re

    links = re.findall(r"\]\(([^)]+)\)", (ROOT / "README.md").read_text())
    assert [link for link in links if not link.startswith(("https://", "#"))] == []
