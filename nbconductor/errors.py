"""The exception tree: one root, names for conditions, messages that say what to do."""

from __future__ import annotations


class NbconductorError(Exception):
    """Something went wrong in nbconductor."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


# --- definitions and input -------------------------------------------------------------


class DefinitionError(NbconductorError, TypeError):
    """A workflow or task definition is not valid."""


class WorkflowNotRegistered(NbconductorError, LookupError):
    """No workflow of that name is registered in this process."""


class InvalidDuration(NbconductorError, ValueError):
    """A duration could not be understood; use seconds, a timedelta or a string like '30s'."""


class ScheduleError(NbconductorError, ValueError):
    """A schedule is not valid (cron expression, time zone, policy or time window)."""


class PayloadError(NbconductorError, TypeError):
    """A value cannot be stored in history (arguments, results, signal payloads)."""


class NotInWorkflow(NbconductorError, RuntimeError):
    """This helper only works inside a running workflow."""


class NotInTask(NbconductorError, RuntimeError):
    """This helper only works inside a running task attempt."""


# --- executions ------------------------------------------------------------------------


class ExecutionNotFound(NbconductorError, LookupError):
    """No execution with that id exists in this history."""


class ExecutionClosed(NbconductorError, RuntimeError):
    """The execution has already closed."""


class ExecutionAlreadyExists(NbconductorError, ValueError):
    """The execution id is taken by an execution of another workflow; use another id."""


class ExecutionFailed(NbconductorError):
    """The execution ended without a result (failed, cancelled, terminated or timed out).

    ``status`` says how, ``error`` is the stored error, ``details`` the details of the
    workflow's ApplicationError (a value, through the codec).
    """

    def __init__(
        self,
        message: str,
        *,
        status: str = "failed",
        error: dict | None = None,
        details: object = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error or {}
        self.details = details  # the workflow's ApplicationError details, as a value


class NonDeterminismError(NbconductorError, RuntimeError):
    """Replaying an execution's history produced different commands than were recorded."""


class TaskFailed(NbconductorError):
    """A task failed for good (non-retryable error, attempts exhausted, or timeout).

    Raised inside the workflow at the ``await`` of the task, so the workflow can catch it.
    ``error_type``, ``error_message`` and ``traceback`` describe the last attempt's error,
    ``details`` the details of its ApplicationError (a value, through the codec);
    ``last_heartbeat_details`` is what that attempt last passed to ``heartbeat(details=)``
    (None if it did not).
    """

    def __init__(
        self,
        message: str,
        *,
        task: str = "",
        attempts: int = 0,
        error_type: str = "",
        error_message: str = "",
        traceback: str = "",
        last_heartbeat_details: object = None,
        details: object = None,
    ) -> None:
        super().__init__(message)
        self.last_heartbeat_details = last_heartbeat_details
        self.details = details
        self.task = task
        self.attempts = attempts
        self.error_type = error_type
        self.error_message = error_message
        self.traceback = traceback


class TaskTimeout(NbconductorError, TimeoutError):
    """A task attempt ran past one of its timeouts."""


class TaskCancelled(NbconductorError):
    """The workflow no longer needs this task's result; stop the work."""


class WorkerLost(NbconductorError):
    """The process or cluster worker running a task attempt died mid-attempt.

    The attempt failed; the task's retry policy decides whether it runs again.
    """


class TaskNotLoadable(NbconductorError):
    """Where the task was sent, its code could not be loaded (a missing module, an
    incompatible version): install the module there; a retry would fail the same way."""


class UnknownRunner(NbconductorError, LookupError):
    """A task names a runner the engine does not have."""


class QueueError(NbconductorError, ValueError):
    """A task queue was named or configured wrongly (a bad name, limit or rate), or a
    task names a queue the engine does not have."""


class ApplicationError(NbconductorError):
    """An error raised by user code on purpose; ``non_retryable=True`` stops retries."""

    def __init__(
        self, message: str, *, non_retryable: bool = False, details: object = None
    ) -> None:
        super().__init__(message)
        self.non_retryable = non_retryable
        self.details = details


# --- storage ---------------------------------------------------------------------------


class StoreError(NbconductorError, RuntimeError):
    """The history store cannot be used."""


class PayloadNotStored(StoreError):
    """A large value (a DataFrame, an array) could not be written to the history store,
    e.g. on a full disk; the engine stops, as on a failed commit."""


class StoreLocked(StoreError):
    """Another process (or engine) holds this history file."""


class NotAHistoryFile(StoreError):
    """The file is not an nbconductor history (not a DuckDB file, or not ours)."""


class SchemaTooNew(StoreError):
    """The history file was written by a newer nbconductor; upgrade to open it."""


class StopTimedOut(NbconductorError, TimeoutError):
    """An engine did not close its history file in time; it closes in the background."""


class EngineStopped(NbconductorError, RuntimeError):
    """The engine is not running; start it (or open a new Engine) first."""


# --- workflow control ------------------------------------------------------------------


class UpdateRejected(NbconductorError, ValueError):
    """The workflow's update validator rejected the update; nothing was recorded."""


class ContinueAsNew(BaseException):
    """Raised by ``continue_as_new()`` to end this run and start the next one.

    A BaseException so that ``except Exception`` in workflow code does not swallow it.
    """

    def __init__(self, input_text: str) -> None:
        super().__init__("continue as new")
        self.input_text = input_text


class ChildFailed(NbconductorError):
    """A child workflow ended without a result (failed, cancelled, terminated, timed out).

    Raised inside the parent at ``await child(...)``; ``status`` and ``error`` say how,
    ``details`` are the child's ApplicationError details (a value, through the codec).
    """

    def __init__(
        self,
        message: str,
        *,
        child_id: str = "",
        status: str = "failed",
        error=None,
        details: object = None,
    ) -> None:
        super().__init__(message)
        self.details = details
        self.child_id = child_id
        self.status = status
        self.error = error or {}
