"""Smoke test of an installed wheel: the engine, the magic and the CLI.

Run by .ci/package-check with the interpreter of a fresh venv that has the wheel and
nothing else: it must pass with no extras and no test dependencies installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbconductor as nc


@nc.task
def double(x: int) -> int:
    return 2 * x


@nc.workflow
async def twice(x: int) -> int:
    return await double(await double(x))


def engine(db: Path) -> None:
    eng = nc.Engine(db)
    try:
        assert eng.start(twice, 3).result(timeout=60) == 12
    finally:
        eng.stop()


def magic(db: Path) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    os.environ["NBCONDUCTOR_DB"] = str(db)
    shell.run_line_magic("load_ext", "nbconductor")
    shell.run_cell_magic("workflow", "plus_one(x: int)", "return x + 1")
    result = shell.run_cell("assert plus_one.start(41).result(timeout=60) == 42")
    result.raise_error()
    shell.run_line_magic("conductor", "stop")


def cli(db: Path) -> None:
    exe = Path(sys.executable).with_name("nbconductor")
    version = subprocess.run([exe, "-V"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"nbconductor {nc.__version__}", version
    listed = subprocess.run(
        [exe, "--json", "list", "--db", str(db)], capture_output=True, text=True, check=True
    )
    assert '"twice"' in listed.stdout, listed.stdout


def main() -> None:
    home = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # where the magic's default history would go
        try:
            engine(Path(tmp, "engine.duckdb"))
            magic(Path(tmp, "magic.duckdb"))
            cli(Path(tmp, "engine.duckdb"))
        finally:
            os.chdir(home)
    print(f"smoke ok: nbconductor {nc.__version__} on Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
