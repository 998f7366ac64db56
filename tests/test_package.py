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


# Extras whose tests .ci/package-check runs on the lowest versions too.
TESTED_EXTRAS = ("progress", "otel")
# The test extra's packages those tests need (their floor pinned as well).
TESTED_WITH = ("opentelemetry-sdk",)


def _floors(extras: tuple[str, ...] = (), test: tuple[str, ...] = ()) -> dict[str, str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += optional[extra]
    specs += [s for s in optional["test"] if s.partition(">=")[0].strip() in test]
    floors = {}
    for spec in specs:
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
    floors = _floors(TESTED_EXTRAS, TESTED_WITH)
    assert pins.keys() == floors.keys()
    for name, pin in pins.items():
        floor = floors[name]
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


def test_importing_the_package_the_cli_or_the_worker_pays_for_nothing_unused():
    # croniter only where a cron expression is parsed; the command and the headless worker
    # never need IPython's completer (jedi) or debugger (debugpy) to start.
    probe = (
        "import sys, nbconductor, nbconductor.cli, nbconductor.extension.worker\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'croniter', 'jedi', 'debugpy', 'IPython', 'ipykernel', 'tqdm'}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_cron_schedule_still_finds_croniter_when_it_needs_it():
    probe = (
        "import sys\n"
        "from datetime import datetime, timezone\n"
        "from nbconductor.engine.schedules.cron import CronTrigger\n"
        "assert 'croniter' not in sys.modules\n"
        "t = CronTrigger('0 9 * * *', 'UTC')\n"
        "print(t.next_after(datetime(2026, 1, 1, tzinfo=timezone.utc)).isoformat())"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2026-01-01T09:00:00+00:00"
