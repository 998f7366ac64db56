"""The workflow loop's tasks: a deterministic hash for replay, cheap to create by many."""

from __future__ import annotations

import asyncio

from nbconductor.engine.loop import WorkflowLoop


class _Driver:
    now_ts = 0.0

    def on_loop_error(self, context: dict) -> None:
        raise AssertionError(context)


async def _noop() -> None:
    return None


def _run(loops: list[WorkflowLoop]) -> None:
    for loop in loops:  # each task ends, as an execution's would
        loop.run_until_quiet()


def test_a_workflow_task_hashes_by_its_creation_order():
    # Sets of tasks (asyncio.wait's done/pending, a TaskGroup's) iterate the same way on
    # every replay only if the hash does not depend on memory addresses.
    loop = WorkflowLoop(_Driver())
    tasks = [loop.create_task(_noop()) for _ in range(3)]
    assert [hash(t) for t in tasks] == [1, 2, 3]
    _run([loop])


def test_asyncios_registry_keeps_the_first_tasks_of_many_executions_apart():
    # Every execution's main task is its loop's first (order 1). Registered under that
    # hash, 300 open executions made one bucket chain that each new start walked.
    loops = [WorkflowLoop(_Driver()) for _ in range(300)]
    tasks = [loop.create_task(_noop()) for loop in loops]
    registry = asyncio.tasks._all_tasks.data  # weak references, each with its first hash
    ours = {id(t) for t in tasks}
    hashes = {hash(ref) for ref in registry if id(ref()) in ours}
    assert len(hashes) == 300
    assert {hash(t) for t in tasks} == {1}
    _run(loops)
