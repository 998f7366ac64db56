"""What ``%load_ext nbconductor`` and ``%unload_ext nbconductor`` do: wire the pieces.

The one module that knows all the others: it installs output capture, the handle's
display, the live views and the magics, puts the definition announcer on the
registry, registers the exit hooks and gives the kernel its engine
(:mod:`~nbconductor.extension.lifecycle`). Nothing imports it but the package's
``load_ipython_extension`` and ``unload_ipython_extension``, so the modules it wires
never import each other in a circle.
"""

from __future__ import annotations

from typing import Any

from nbconductor.engine.definition import REGISTRY
from nbconductor.extension import define, display, lifecycle, magics, output, widget_bridge
from nbconductor.extension.session import state

__all__ = ("load", "unload")


def load(shell: Any) -> None:
    """Everything ``%load_ext nbconductor`` does; harmless when repeated."""
    kernel = state()
    kernel.shell = shell
    output.install()
    display.register(shell)
    widget_bridge.register(shell)
    magics.register(shell)
    kernel.announcer = define.on_registered
    lifecycle.announce_last()
    lifecycle.register_exit_hook()
    lifecycle.start_on_load(shell)


def unload(shell: Any) -> None:
    """Everything ``%unload_ext nbconductor`` does.

    Inside ``%reload_ext`` the engine keeps running for the load that follows.
    """
    kernel = state()
    if kernel.announcer is not None:
        REGISTRY.remove_listener(kernel.announcer)
    kernel.announcer = None
    magics.unregister(shell)
    widget_bridge.unregister(shell)
    display.unregister(shell)
    output.uninstall()
    kernel.shell = None
    lifecycle.stop_on_unload()
