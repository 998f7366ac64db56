"""What the ``%conductor`` subcommands do, as plain functions over the engine's API.

The magic (:mod:`nbconductor.extension.magics`) only parses arguments; everything
here takes an :class:`~nbconductor.Engine` and returns text to print or an object to
display. Operations the engine does not offer yet (signals, cancel, terminate,
schedules) are looked up when called, so they work as soon as the engine has them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from nbconductor.engine.duration import format_duration, parse_duration
from nbconductor.engine.engine import Engine
from nbconductor.engine.failure import summary
from nbconductor.errors import InvalidDuration, NbconductorError
from nbconductor.extension import lifecycle
from nbconductor.extension.display import (
    Table,
    decoded,
    error_of,
    event_table,
    execution_table,
    format_time,
    map_traceback,
)
from nbconductor.extension.output import execution_log
from nbconductor.storage.records import Status

__all__ = (
    "NotAvailable",
    "cancel",
    "history",
    "list_executions",
    "parse_since",
    "resume",
    "schedules",
    "send_signal",
    "show",
    "sql",
    "status",
    "terminate",
)


class NotAvailable(NbconductorError, RuntimeError):
    """This operation is not available in this version of the engine yet."""


def _operation(engine: Engine, name: str, what: str):
    method = getattr(engine, name, None)  # looked up per call: the engine is growing
    if method is None:
        raise NotAvailable(f"{what} is not available in this version of the nbconductor engine yet")
    return method


# --- status, list, show, history -------------------------------------------------------------


def status() -> str:
    """Engine health: thread, history file, executions by state, timers, tasks."""
    state = lifecycle.state()
    engine = lifecycle.kernel_engine()
    path = lifecycle.shown_path(state.path) if state.path else "(none chosen)"
    if engine is None:
        lines = ["engine: not running", f"history: {path}"]
        crashed = state.engine.error if state.engine is not None else None
        if crashed is not None:  # the engine thread ended on an error
            lines.append(f"the engine thread ended with {crashed!r}")
        lines.append(
            state.problem
            or "start it with `%conductor start`, or choose a file with `%conductor db PATH`"
        )
        return "\n".join(lines)
    info = engine.status()
    counts = info.get("counts") or {}
    by_state = ", ".join(f"{Status(k).title} {n}" for k, n in sorted(counts.items()) if n) or "none"
    started = info.get("started_at")
    lines = [
        "engine: running (thread alive)",
        f"history: {path}" + (f" ({state.reason})" if state.reason else ""),
        _socket_line(state),
        f"started: {format_time(started)} UTC" if isinstance(started, datetime) else "",
        f"executions: {by_state}",
        f"open: {info.get('open_executions', 0)} "
        f"(waiting for a definition: {info.get('waiting_for_definition', 0)}, "
        f"blocked: {info.get('blocked', 0)})",
        f"pending timers: {info.get('pending_timers', 0)}",
        f"running tasks: {info.get('running_tasks', 0)}",
    ]
    if info.get("error"):
        lines.append(f"error: {info['error']}")
    return "\n".join(line for line in lines if line)


def _socket_line(state: lifecycle.KernelState) -> str:
    """Where the ``nbconductor`` command reaches this engine, or why it cannot."""
    socket = lifecycle.socket_path()
    if socket is not None:
        return f"control socket: {socket} (for the `nbconductor` command)"
    why = state.socket_problem or "no control server runs"
    return f"control socket: none; the `nbconductor` command cannot reach this kernel ({why})"


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``--since``: a duration ago (``2h``, ``1 day``) or an ISO date/time.

    A date/time without a zone is taken as local time.

    Raises:
        ValueError: neither form.
    """
    now = now or datetime.now(timezone.utc)
    try:
        return now - timedelta(seconds=parse_duration(text, what="--since"))
    except InvalidDuration:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a duration ago (30m, 2h, 1 day) or a date/time "
            "(2024-05-01, 2024-05-01T12:00)"
        ) from None
    return moment.astimezone(timezone.utc)


def list_executions(
    engine: Engine,
    *,
    status: list[str] | None = None,
    name: str | None = None,
    since: datetime | None = None,
    limit: int = 20,
) -> Table:
    """``%conductor list``: executions, newest first."""
    records = engine.list(status=status or None, name=name, since=since, limit=limit)
    return execution_table(records)


def show(engine: Engine, execution_id: str, *, shell: Any = None) -> str:
    """``%conductor show``: one execution: state, input, result or error, output log."""
    record = engine.describe(execution_id)
    lines = [
        f"execution {record.id}",
        f"  workflow:  {record.workflow} (version {record.version})",
        f"  status:    {record.status.title}",
        f"  created:   {format_time(record.created_at)} UTC",
    ]
    if record.closed_at is not None:
        lines.append(f"  closed:    {format_time(record.closed_at)} UTC")
    if record.condition:
        lines.append(f"  condition: {record.condition}")
    waiting = getattr(engine, "waiting_signals", None)
    if waiting is not None and record.status is Status.RUNNING:
        try:
            names = waiting(execution_id)
        except NbconductorError:
            names = []
        if names:
            lines.append(f"  waiting for signal{'s' * (len(names) != 1)}: {', '.join(names)}")
    lines.append(f"  input:     {decoded(record.input, input=True)}")
    if record.status is Status.COMPLETED:
        lines.append(f"  result:    {decoded(record.result)}")
    error = error_of(record)
    if error:
        lines.append(f"  error:     {summary(error)}")
        trace = error.get("traceback")
        if trace:
            lines.append("  traceback:")
            lines.extend(
                "    " + line for line in map_traceback(trace, shell).rstrip().splitlines()
            )
    log = execution_log(execution_id)
    if log:
        lines.append(f"  output ({len(log)} line{'s' * (len(log) != 1)}):")
        lines.extend("    " + line for line in log)
    else:
        lines.append("  output:    (none captured in this kernel)")
    return "\n".join(lines)


def history(engine: Engine, execution_id: str) -> Table:
    """``%conductor history``: the execution's recorded events."""
    engine.describe(execution_id)  # ExecutionNotFound for an unknown id
    return event_table(engine.history(execution_id))


# --- acting on executions ----------------------------------------------------------------------


def send_signal(engine: Engine, execution_id: str, name: str, payload: Any = None) -> str:
    """``%conductor signal``: deliver a signal (durably) to an open execution."""
    _operation(engine, "signal", "sending signals")(execution_id, name, payload)
    return f"signal {name!r} sent to {execution_id}"


def cancel(engine: Engine, execution_id: str) -> str:
    """``%conductor cancel``: ask the workflow to stop (it may clean up)."""
    _operation(engine, "cancel", "cancelling executions")(execution_id)
    return f"cancel requested for {execution_id}"


def terminate(engine: Engine, execution_id: str, reason: str | None = None) -> str:
    """``%conductor terminate``: stop an execution at once; no more of its code runs."""
    _operation(engine, "terminate", "terminating executions")(execution_id, reason=reason)
    return f"terminated {execution_id}" + (f" ({reason})" if reason else "")


def resume(engine: Engine) -> str:
    """``%conductor resume``: look again at every open execution and carry on those
    whose definitions are now in this kernel (waiting or blocked ones)."""
    records = engine.list(status=Status.RUNNING, limit=None)
    if not records:
        return "no open executions"
    engine.rescan()  # returns once the engine replayed (or re-blocked) each of them
    lines = [f"{len(records)} open execution{'s' * (len(records) != 1)}:"]
    for record in records:
        condition = engine.get(record.id).condition
        lines.append(f"  {record.id}  {record.workflow}  {condition or 'running'}")
    return "\n".join(lines)


def schedules(engine: Engine) -> Table | str:
    """``%conductor schedules``: one row per schedule, or "no schedules"."""
    found = getattr(engine, "schedules", None)
    if found is None:
        return "no schedules"
    items = found.list() if callable(getattr(found, "list", None)) else list(found)
    if not items:
        return "no schedules"
    return Table(
        [
            "id",
            "workflow",
            "when",
            "paused",
            "next",
            "last",
            "open runs",
            "fired",
            "skipped",
            "waiting",
        ],
        (_schedule_row(item) for item in items),
    )


def _schedule_row(info: Any) -> tuple:
    # Read by attribute with defaults: the schedules API is young and may grow.
    spec = getattr(info, "spec", info)
    cron, every = getattr(spec, "cron", None), getattr(spec, "every", None)
    if cron:
        when = f"{cron} ({getattr(spec, 'timezone', 'UTC')})"
    else:
        when = f"every {format_duration(every)}" if every else ""
    return (
        getattr(spec, "id", "?"),
        getattr(spec, "workflow", "?"),
        when,
        "yes" if getattr(spec, "paused", False) else "",
        getattr(info, "next_fire", None),
        getattr(info, "last_nominal", None),
        len(getattr(info, "open_runs", ()) or ()),
        getattr(info, "fired", None),
        getattr(info, "skipped", None),
        getattr(info, "waiting", None) or "",
    )


def sql(engine: Engine, query: str) -> Table:
    """``%conductor sql``: a read-only query over the history, as a
    :class:`~nbconductor.extension.display.Table` (``.to_pandas()`` when pandas is
    installed): the same type whatever is installed, so saved outputs do not change."""
    run = getattr(engine.store, "sql", None)
    if run is None:
        raise NotAvailable("this engine's history store does not answer SQL (an in-memory store)")
    columns, rows = run(query)
    return Table(columns, rows)


def schedule(engine: Engine, args: Any) -> Any:
    """``%conductor schedule ACTION ID ...``: create, pause, resume, trigger, delete or
    describe one schedule. Returns what the notebook should show."""
    schedules_api = engine.schedules
    if args.action == "create":
        if not args.workflow:
            raise ValueError("schedule create ID WORKFLOW --cron EXPR | --every DURATION")
        options: dict[str, Any] = {}
        for key in ("cron", "every", "timezone", "overlap", "catchup", "jitter"):
            value = getattr(args, key)
            if value is not None:
                options[key] = value
        if args.args:
            try:
                options["args"] = json.loads(args.args)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"--args is not JSON ({exc}); write e.g. --args '[1, \"x\"]'"
                ) from None
        info = schedules_api.create(args.id, args.workflow, **options)
        nxt = info.next_fire.isoformat() if info.next_fire else "never"
        return f"schedule {info.id} created; next fire {nxt}"
    if args.action == "pause":
        schedules_api.pause(args.id, note=args.note)
        return f"schedule {args.id} paused"
    if args.action == "resume":
        schedules_api.resume(args.id)
        return f"schedule {args.id} resumed"
    if args.action == "trigger":
        return schedules_api.trigger_now(args.id) or f"schedule {args.id}: fire skipped (overlap)"
    if args.action == "delete":
        schedules_api.delete(args.id)
        return f"schedule {args.id} deleted"
    described = schedules_api.describe(args.id)
    return json.dumps(described, indent=2, default=str)
