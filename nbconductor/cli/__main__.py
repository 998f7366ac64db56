"""``python -m nbconductor.cli``: the ``nbconductor`` command."""

from __future__ import annotations

import sys

from nbconductor.cli.runner import main

sys.exit(main())
