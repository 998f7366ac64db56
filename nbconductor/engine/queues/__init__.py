"""Task queues: admission control in the engine (concurrency, rate, priority), durable
in the history file's ``queues`` table."""
