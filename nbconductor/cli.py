"""The ``nbconductor`` command: operations outside the notebook."""

from __future__ import annotations

import argparse
import sys

from nbconductor._version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbconductor",
        description="Inspect and steer nbconductor workflow executions outside the notebook.",
    )
    parser.add_argument("--version", action="version", version=f"nbconductor {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
