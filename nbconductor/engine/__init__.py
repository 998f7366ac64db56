"""The durable execution engine; also callable: ``nbconductor.engine()`` returns this
process's engine (the kernel's once ``%load_ext nbconductor`` ran, else the last
``Engine`` created) and raises EngineStopped when none is running.

The package is made callable rather than shadowed by a function of the same name, so
that ``import nbconductor.engine.engine`` keeps working.
"""

from __future__ import annotations

import sys
import types

from nbconductor.engine.default import default_engine


class _CallablePackage(types.ModuleType):
    def __call__(self):
        return default_engine()


sys.modules[__name__].__class__ = _CallablePackage
