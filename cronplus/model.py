"""Frozen records of a parsed crontab and of runs. Built once by the parser; nothing downstream
re-validates them or needs the raw text to explain an error."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cronplus.errors import Diagnostic, SourceLoc
from cronplus.status import (
    DEFAULT_ALERT_EVENTS,
    AlertEvent,
    AlertFormat,
    CatchUp,
    Overlap,
    RunStatus,
    Trigger,
    TriggerRule,
)

MiB = 1024 * 1024


@dataclass(frozen=True, kw_only=True, slots=True)
class Schedule:
    """A cron schedule as value sets, the way cron's own parser stores it.

    `dom_star`/`dow_star` follow Vixie cron: a day field whose text *starts* with `*` is
    unrestricted. `minute_star`/`hour_star` mark a *wildcard* job for cron's DST handling
    (minute or hour field starting with `*`). `reboot` schedules have empty sets.
    """

    text: str  # as written: "*/10 * * * *" or "@daily"
    minutes: frozenset[int]  # 0-59
    hours: frozenset[int]  # 0-23
    days: frozenset[int]  # 1-31
    months: frozenset[int]  # 1-12
    weekdays: frozenset[int]  # 0-6, Sunday 0 (7 is folded into 0)
    dom_star: bool
    dow_star: bool
    minute_star: bool
    hour_star: bool
    reboot: bool = False

    @property
    def is_wildcard(self) -> bool:
        """True when cron's DST rules treat this job as wildcard (minute or hour starts with `*`)."""
        return self.minute_star or self.hour_star


@dataclass(frozen=True, kw_only=True, slots=True)
class JobOptions:
    """The `# cronplus:` annotations of one job, defaults applied. Durations in seconds."""

    retries: int = 0
    retry_delay: float = 10.0
    backoff: float = 1.0
    max_retry_delay: float = 3600.0
    timeout: float | None = None
    kill_grace: float = 10.0
    overlap: Overlap = Overlap.SKIP
    after: tuple[str, ...] = ()
    trigger: TriggerRule = TriggerRule.ALL_SUCCESS
    skip_exit: int = 99
    catch_up: CatchUp = CatchUp.NONE
    jitter: float = 0.0
    tz: str | None = None
    alert: str | None = None  # URL or "env:VAR"; a secret, never print whole
    alert_format: AlertFormat = AlertFormat.JSON
    alert_on: frozenset[AlertEvent] = DEFAULT_ALERT_EVENTS
    alert_secret: str | None = None  # "env:VAR"; None means $CRONPLUS_WEBHOOK_SECRET
    alert_remind: float = 24 * 3600.0  # while an incident lasts, re-alert at most this often
    ping: str | None = None  # healthchecks-style base URL; a secret, never print whole
    max_log_size: int = 100 * MiB


@dataclass(frozen=True, kw_only=True, slots=True)
class JobSpec:
    """One job line of a crontab plus its options."""

    loc: SourceLoc
    name: str
    schedule: Schedule
    command: str  # the shell command, `%` handling done, `\\%` -> `%`
    stdin: str | None  # text after an unescaped `%`, with `%` -> newline; None when absent
    env: tuple[tuple[str, str], ...]  # crontab env lines in effect at this line, in order
    options: JobOptions = field(default_factory=JobOptions)
    tz: str | None = None  # effective zone: tz= annotation, else CRON_TZ in effect, else None=local
    user: str | None = None  # system crontabs only: the user field
    explicit_name: bool = False  # name= was given (else a stable slug of the command)

    @property
    def shell(self) -> str:
        for key, value in reversed(self.env):
            if key == "SHELL":
                return value
        return "/bin/sh"


@dataclass(frozen=True, kw_only=True, slots=True)
class Crontab:
    """A whole parsed, valid crontab. `warnings` are lint findings; errors raise CrontabError."""

    path: str
    system: bool
    jobs: tuple[JobSpec, ...]
    defaults: JobOptions  # the last `# cronplus-defaults:` in effect at end of file (config_error alerts)
    warnings: tuple[Diagnostic, ...] = ()

    def job(self, name: str) -> JobSpec | None:
        for job in self.jobs:
            if job.name == name:
                return job
        return None


@dataclass(frozen=True, kw_only=True, slots=True)
class RunRecord:
    """One row of history: one attempt of one job at one tick (attempts share scheduled_at)."""

    run_id: int
    job: str
    attempt: int
    status: RunStatus
    trigger: Trigger
    scheduled_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    log_path: str | None
    pid: int | None = None
    reason: str | None = None  # why: "exit 3", "timeout after 30s", "upstream train failed", ...

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()
