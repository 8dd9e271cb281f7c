"""The vocabulary of cronplus as StrEnums: stored in SQLite and printed by the CLI as their values."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """The state of one run (one job at one tick). `running` is the only non-final state."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    MISSED = "missed"
    INTERRUPTED = "interrupted"
    WAITING = "waiting"  # a sensor (wait-for=): not started, not final (shown by `jobs` and the snapshot)

    @property
    def is_final(self) -> bool:
        return self is not RunStatus.RUNNING and self is not RunStatus.WAITING


class Trigger(StrEnum):
    """Why a run exists."""

    SCHEDULE = "schedule"
    CATCH_UP = "catch-up"
    MANUAL = "manual"
    REBOOT = "reboot"
    RETRY = "retry"
    BACKFILL = "backfill"  # `cronplus backfill`: a past tick run now (engine/backfill.py)


class Overlap(StrEnum):
    """What to do when a job's previous run still runs at its next tick."""

    SKIP = "skip"
    QUEUE = "queue"
    REPLACE = "replace"
    ALLOW = "allow"


class TriggerRule(StrEnum):
    """Airflow's trigger rules for `after=` dependencies."""

    ALL_SUCCESS = "all_success"
    ALL_DONE = "all_done"
    ONE_SUCCESS = "one_success"
    ALL_FAILED = "all_failed"
    ONE_FAILED = "one_failed"
    NONE_FAILED = "none_failed"


class CatchUp(StrEnum):
    NONE = "none"
    LAST = "last"


class AlertEvent(StrEnum):
    FAILURE = "failure"
    TIMEOUT = "timeout"
    RETRY = "retry"
    RECOVERY = "recovery"
    MISSED = "missed"
    UPSTREAM_FAILED = "upstream_failed"
    SUCCESS = "success"
    CONFIG_ERROR = "config_error"
    TEST = "test"
    SLOW = "slow"  # an attempt still running past its expected duration (engine/slowness.py)


class AlertFormat(StrEnum):
    JSON = "json"
    SLACK = "slack"
    DISCORD = "discord"
    TEAMS = "teams"
    NTFY = "ntfy"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


DEFAULT_ALERT_EVENTS: frozenset[AlertEvent] = frozenset(
    {
        AlertEvent.FAILURE,
        AlertEvent.TIMEOUT,
        AlertEvent.RECOVERY,
        AlertEvent.MISSED,
        AlertEvent.UPSTREAM_FAILED,
        AlertEvent.CONFIG_ERROR,
    }
)
