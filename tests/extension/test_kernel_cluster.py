"""A task defined in a notebook cell (module ``__main__``) sent to a Dask cluster from a
real kernel (jupyter_client), with an argument and a result of a class the notebook
defined, on a runner added with ``%conductor runner add``.

The ``LocalCluster`` belongs to this test process, not to the kernel: its worker
processes know nothing of the kernel's ``__main__``, so the task, its argument's class
and its result's class must all travel by value.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import dask
import pytest
from distributed import LocalCluster
from test_kernel import Kernel

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.timeout(180)]

POINT_CELL = """
from dataclasses import dataclass

@dataclass
class CellPoint:
    x: int
    y: int
    pid: int = 0
"""

TASK_CELL = """%%task cell_shift(p: CellPoint, dx: int) -> CellPoint --runner cell_cluster
import os
return CellPoint(p.x + dx, p.y, os.getpid())
"""

WORKFLOW_CELL = """%%workflow cell_moves(p: CellPoint, dx: int) -> CellPoint
return await cell_shift(p, dx)
"""

CHECK_CELL = """
import os
moved = cell_moves.start(CellPoint(1, 2), 40).result(timeout=60)
print(json.dumps({
    "type": f"{type(moved).__module__}.{type(moved).__qualname__}",
    "is_point": isinstance(moved, CellPoint),
    "xy": [moved.x, moved.y],
    "kernel": os.getpid(),
    "ran_in": moved.pid,
}))
"""


@pytest.fixture(scope="module")
def cluster():
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        made = LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    yield made
    made.close()


@pytest.fixture
def kernel(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory):
    spec_root = tmp_path_factory.mktemp("kernels")
    spec = spec_root / "nbconductor-test"
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "nbconductor test", "language": "python"})
    )
    notebook = tmp_path / "notebook"
    notebook.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBCONDUCTOR_", "JPY_"))}
    env["JPY_SESSION_NAME"] = str(notebook / "scale.ipynb")
    env["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
    started = Kernel(spec_root, notebook, env)
    yield started
    started.close(now=True)


def test_a_cell_defined_task_runs_on_a_cluster_with_notebook_classes(kernel, cluster):
    kernel.run("%load_ext nbconductor")
    added = kernel.run(f"%conductor runner add cell_cluster {cluster.scheduler_address}")
    assert f"runner cell_cluster: DaskRunner('{cluster.scheduler_address}')" in added.text
    kernel.run(POINT_CELL)
    kernel.run(TASK_CELL)
    kernel.run(WORKFLOW_CELL)
    out = kernel.run("import json\n" + CHECK_CELL, timeout=90)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    worker_pids = _worker_pids(cluster)
    assert seen["type"] == "__main__.CellPoint" and seen["is_point"]
    assert seen["xy"] == [41, 2]
    assert seen["ran_in"] in worker_pids and seen["ran_in"] != seen["kernel"]


def _worker_pids(cluster) -> set[int]:
    from distributed import Client

    with Client(cluster, set_as_default=False) as client:
        return set(client.run(os.getpid).values())
