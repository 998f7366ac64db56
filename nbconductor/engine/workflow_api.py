"""The functions workflow code calls: durable time, determinism helpers, combinators.

Each finds the running execution through the deterministic loop it runs on; called
anywhere else they raise :class:`NotInWorkflow` with what to do instead.
"""

from __future__ import annotations

import asyncio
import uuid as _uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from nbconductor.engine.duration import parse_duration
from nbconductor.engine.runtime import WorkflowRuntime, current_runtime
from nbconductor.errors import NotInWorkflow

T = TypeVar("T")


def _runtime(helper: str, instead: str) -> WorkflowRuntime:
    runtime = current_runtime()
    if runtime is None:
        raise NotInWorkflow(
            f"nbconductor.{helper}() only works inside a running workflow; {instead}"
        )
    return runtime


async def sleep(duration) -> None:
    """Wait durably: the timer is recorded, so the wait survives restarts.

    Example:
        >>> await sleep("1 day")
    """
    _runtime("sleep", "outside one use time.sleep or asyncio.sleep")
    await asyncio.sleep(parse_duration(duration, what="sleep()"))


async def sleep_until(when: datetime) -> None:
    """Wait durably until ``when`` (a timezone-aware datetime; naive means UTC)."""
    runtime = _runtime("sleep_until", "outside one compute the delay and sleep")
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delay = (when - runtime.now).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)


def now() -> datetime:
    """The workflow's current time (UTC): the time of the event being processed.

    The same value on every replay, unlike ``datetime.now()``.
    """
    return _runtime("now", "outside one use datetime.now(timezone.utc)").now


def random() -> float:
    """A random float in [0, 1) that is the same on every replay of this execution."""
    return _runtime("random", "outside one use the random module").rng.random()


def uuid4() -> _uuid.UUID:
    """A random UUID that is the same on every replay of this execution."""
    rng = _runtime("uuid4", "outside one use uuid.uuid4()").rng
    return _uuid.UUID(int=rng.getrandbits(128), version=4)


def side_effect(fn: Callable[[], T]) -> T:
    """Run ``fn`` once and record its result; replays return the recorded value.

    For small non-deterministic reads (a config value, a hostname). Its result must be
    storable. Anything slow or fallible belongs in a task.
    """
    runtime = _runtime("side_effect", "outside one just call the function")
    return runtime.side_effect(fn, what=f"the side_effect result of {fn!r}")


async def gather(*aws: Awaitable[Any], return_exceptions: bool = False) -> list[Any]:
    """Run awaitables (task calls, coroutines) concurrently; results in argument order."""
    _runtime("gather", "outside one use asyncio.gather")
    return list(await asyncio.gather(*aws, return_exceptions=return_exceptions))


async def race(*aws: Awaitable[T]) -> T:
    """The result of the first awaitable to finish; the others are cancelled.

    Example:
        >>> winner = await race(fetch_primary(), fetch_mirror())
    """
    _runtime("race", "outside one use asyncio.wait(..., return_when=FIRST_COMPLETED)")
    if not aws:
        raise ValueError("race() needs at least one awaitable")
    futures = [asyncio.ensure_future(a) for a in aws]
    await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    winner = next(f for f in futures if f.done())
    for future in futures:  # in argument order, so the cancel commands replay alike
        if not future.done():
            future.cancel()
    return winner.result()
