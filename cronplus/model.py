"""Frozen records of a parsed crontab and of runs. Built once by the parser; nothing downstream
re-validates them or needs the raw text to explain an error."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import overload

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


Pair = tuple[str, str]


class _Chain:
    """The env lines of one file, and the SHA-256 chain over them, filled only when asked for:
    `digests[k]` covers `lines[:k]`."""

    __slots__ = ("digests", "lines")

    def __init__(self, lines: list[Pair]) -> None:
        self.lines = lines
        self.digests: list[bytes] = [b""]

    def digest(self, n: int) -> bytes:
        import hashlib  # here: `cronplus next EXPR` loads the model but never hashes env lines

        digests, lines = self.digests, self.lines
        while len(digests) <= n:
            name, value = lines[len(digests) - 1]
            step = f"{len(name)}:{name}{len(value)}:{value}".encode("utf-8", "surrogatepass")
            digests.append(hashlib.sha256(digests[-1] + step).digest())
        return digests[n]


class EnvLines(Sequence[Pair]):
    """The env lines in effect at a job line, in file order: a prefix of one shared list.

    Every job of a file shares the parser's one list of env lines and keeps only its length, so a
    file that alternates N env lines and N job lines holds N pairs, not N*N/2. Two EnvLines of
    different files compare by a SHA-256 chained over the pairs (computed once per line, when a
    comparison first needs it), so a reload's job diff is O(1) per job. Compares equal to a tuple
    of the same pairs, and hashes as one.
    """

    __slots__ = ("_chain", "_hash", "_n")

    def __init__(self, chain: _Chain | None = None, n: int = 0) -> None:
        """Use `EnvLines.of(pairs)` or `extend`; this is the view of `chain.lines[:n]`."""
        self._chain = chain if chain is not None else _Chain([])
        self._n = n
        self._hash: int | None = None

    @classmethod
    def of(cls, pairs: Iterable[Pair] = ()) -> EnvLines:
        lines = list(pairs)
        return cls(_Chain(lines), len(lines))

    def extend(self, name: str, value: str) -> EnvLines:
        """These lines plus one more: O(1) on the shared list when this view is its whole length
        (the parser's case), else on a copy."""
        chain = self._chain
        if len(chain.lines) != self._n:
            chain = _Chain(chain.lines[: self._n])
        chain.lines.append((name, value))
        return EnvLines(chain, self._n + 1)

    @property
    def digest(self) -> bytes:
        return self._chain.digest(self._n)

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> Pair: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Pair, ...]: ...
    def __getitem__(self, i: int | slice) -> Pair | tuple[Pair, ...]:
        if isinstance(i, slice):
            return tuple(self)[i]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("env line index out of range")
        return self._chain.lines[i]

    def __iter__(self) -> Iterator[Pair]:
        return islice(self._chain.lines, self._n)

    def __reversed__(self) -> Iterator[Pair]:
        lines = self._chain.lines
        return (lines[i] for i in range(self._n - 1, -1, -1))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EnvLines):
            if self._n != other._n:
                return False
            return self._chain is other._chain or self.digest == other.digest
        if isinstance(other, tuple):
            return len(other) == self._n and tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self))
        return self._hash

    def __repr__(self) -> str:
        return f"EnvLines({tuple(self)!r})"


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
    slow_factor: float = 3.0  # alert-on=slow: the learned p95 duration times this
    expected_duration: float | None = None  # alert-on=slow: this threshold instead of the learned one
    # resource limits (engine/limits.py): None = not set
    nice: int | None = None
    memory_max: int | None = None  # bytes
    cpu_max: float | None = None  # CPUs (0.5 = 50%, systemd's CPUQuota=50%)
    tasks_max: int | None = None
    pool: str | None = None  # pool=NAME: one of the crontab's `# cronplus-pools:` (engine/pools.py)
    # a sensor (engine/sensors.py): probe `wait_for` every `wait_every` until it exits 0
    wait_for: str | None = None
    wait_every: float = 30.0
    wait_timeout: float = 3600.0
    wait_timeout_status: str = "failed"  # or "skipped"
    # queue=NAME: attempts go to Celery workers of that queue (engine/celeryexec.py); None: run here
    queue: str | None = None
    queue_timeout: float | None = None  # fail an attempt no worker took within this; None: wait
    run_on: str = "any"  # run-on=any|all|HOST: which supervisors of a cluster schedule it (crontab/runon.py)


@dataclass(frozen=True, kw_only=True, slots=True)
class JobSpec:
    """One job line of a crontab plus its options."""

    loc: SourceLoc
    name: str
    schedule: Schedule
    command: str  # the shell command, `%` handling done, `\\%` -> `%`
    stdin: str | None  # text after an unescaped `%`, with `%` -> newline; None when absent
    env: Sequence[Pair]  # crontab env lines in effect at this line, in order (EnvLines from the parser)
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
    pools: tuple[tuple[str, int], ...] = ()  # `# cronplus-pools: gpu=1 db=4`: (name, slots), in file order

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
    signal: int | None = None  # the signal that killed the job's shell (exit_code is then 128+signal)
    host: str | None = None  # the host whose supervisor ran (or decided) it; None for old rows
    # What the pipeline features record (store schema version 3); empty / None where none applies.
    params: tuple[tuple[str, str], ...] = ()  # a manual run's --param K=V, in the order given
    outputs: tuple[tuple[str, str], ...] = ()  # KEY=VALUE lines the run wrote to $CRONPLUS_OUTPUT
    queued_s: float | None = None  # seconds it waited for a pool slot before it started
    sensor_s: float | None = None  # seconds its sensor (wait-for=) waited before the command
    peak_memory_bytes: int | None = None  # its processes' peak memory (cgroup v2 only)
    cpu_s: float | None = None  # CPU seconds its processes used (cgroup v2 only)
    slow_at: datetime | None = None  # when it ran past its expected duration (alert-on=slow)
    queue: str | None = None  # the worker queue its attempt was sent to (queue=); None: the supervisor ran it
    log_bytes: int | None = None  # its log's size once it ended; 0: it wrote nothing; None: running, or evicted

    @property
    def log_absent_is_empty(self) -> bool:
        """A missing log file means no output, not a deleted one: logs are created at the job's
        first byte, so a run still running or ended with log_bytes 0 may have none."""
        return self.status is RunStatus.RUNNING or self.log_bytes == 0

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()
