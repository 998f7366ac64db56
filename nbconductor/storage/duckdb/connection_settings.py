"""The settings a history file's DuckDB connection opens with, and why each.

Measured on a 2-core machine; docs/operations.md#memory has the whole account.
"""

from __future__ import annotations

__all__ = ("READER", "WRITER")

# No extension is ever installed or loaded behind the user's back (a query naming an
# http:// file would otherwise fetch httpfs from the network).
NO_AUTOLOAD = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
# The engine's file is written by one thread (the engine's writer) and read by short
# queries, inside a process that also runs the engine and the tasks. So, on purpose
# (measured on a 2-core machine; docs/operations.md#memory has the whole account):
# - threads 1: DuckDB's worker threads (one per core by default) only parallelise large
#   scans; on a small machine they compete with the engine and the tasks for the same
#   cores, and each keeps allocator state of its own. Commits are single-threaded anyway.
# - async_threads 0: DuckDB starts 8 I/O threads per database by default, for prefetching
#   remote files; a local file is read on the querying thread, so they only idled (an
#   engine had 43 threads under load instead of 36; no change in speed or memory).
# - memory_limit 128MB: the default (80 % of RAM) lets the buffer pool keep every block
#   of a growing file cached, so a long-running kernel grows without a plateau; larger
#   queries spill to ``<file>.tmp`` instead of failing. It is a ceiling, not a target:
#   DuckDB's own accounting stays at 4-16 MB for an engine over 10,000-15,000 executions,
#   while a commit may need 8 MB at once (a 16 MB limit stopped an engine with "Out of
#   Memory" after ~10,000 executions), so the limit keeps a wide margin.
# - checkpoint_threshold 4MB: a crash leaves at most ~4 MB of WAL for the next open to
#   replay (the default 16 MB costs most of a second); the checkpoint runs on the
#   writer thread, not on the engine's. A clean close checkpoints the whole WAL.
# The allocator_* settings are left alone: they tune the jemalloc DuckDB links for its
# buffers, and a soak grew as much with a 1-4 MB flush threshold and background threads.
_TUNING = {
    "threads": 1,
    "async_threads": 0,
    "memory_limit": "128MB",
    "checkpoint_threshold": "4MB",
}

#: A read-only connection's settings.
READER = dict(NO_AUTOLOAD)
#: The engine's (writing) connection's settings.
WRITER = {**NO_AUTOLOAD, **_TUNING}
