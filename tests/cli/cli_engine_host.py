"""Child process for the CLI tests: an engine and its control server on a history file.

Usage: cli_engine_host.py DB MODULE. Imports MODULE (the test's workflows), starts
``Engine(DB)`` and a ``ControlServer``, prints ``READY <socket>`` and then obeys one
command per stdin line, answering ``DONE <command>``:

- ``stop``: stop the server and the engine (history committed), exit 0.
- ``lose-store``: close the history store under the engine, as if its file became
  unusable, and start an execution: the engine thread stops with an error.
- ``release``: let ``blocker`` executions (stuck in workflow code) go on.
"""

from __future__ import annotations

import importlib
import sys

from nbconductor.engine.engine import Engine
from nbconductor.remote import ControlServer


def main(db: str, module: str) -> None:
    flows = importlib.import_module(module)
    engine = Engine(db)
    server = ControlServer(engine).start()
    print("READY", server.socket_path, flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "stop":
            break
        if command == "lose-store":
            engine.store.close()
            engine.start(flows.doubler, 1)
        elif command == "release":
            flows.GATE.set()
        print("DONE", command, flush=True)
    flows.GATE.set()
    server.stop()
    engine.stop(grace=1.0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
