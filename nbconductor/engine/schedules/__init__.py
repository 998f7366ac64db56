"""Schedules: cron and interval specs, their policies, and the engine's scheduler."""
