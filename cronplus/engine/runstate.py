"""A run's state machine, written down once: the states of a run (one job at one tick, across its
attempts), the events that move it, and the effects each move asks of the scheduler. Pure: no
I/O, no clock; `transition(state, kind)` reads TABLE. The scheduler (scheduler.py `_fire`) is
the one place that carries the effects out.

The path of one tick: NEW -(admitted)-> WAITING (after=) / QUEUED (overlap=queue, busy) /
DELAYED (jitter) / LAUNCHING; -(START)-> LAUNCHING: in the launch queue, where its row is
inserted and its attempt started (launcher.py); -(SPAWNED)-> RUNNING: its task awaits the
executor's result; -(ENDED)-> FINAL, or -(ENDED_RETRY)-> RETRY_WAIT -(START after the delay)->
LAUNCHING again, for the next attempt's row and process.

Shutdown and reload are events too: STOP (no new runs: what has not started is recorded and
final, a running attempt gets its grace), INTERRUPT (the grace is over: cancel what runs),
REMOVED (its job left the crontab: a run not started is skipped), REPLACED (overlap=replace).

Pause is an event: PAUSED (its job was paused, pausing.py) ends a tick's run that has not
started (skipped, "job paused before it could start"); a started one goes on (a retry in POOLED
or SENSING too: its job ran, ticking.Ticker.pause sends it no PAUSED). The ticker steps
over a paused job's ticks, so no run is made for them at all (ticking.py).

Leases (engine/takeover.py): FENCED kills a RUNNING run's attempt and makes it FINAL with no row
of ours (the host that took it over recorded it); ADOPT_RETRY puts a run taken over from a host
that lost its lease into RETRY_WAIT here, so its next attempt follows on this host.

Room to grow (the pipeline features: sensors): a sensor's wait (WAITING, by its own events) is
a row of this table, not a new flag.

Pools (`pool=`, `--max-running`; engine/pools.py): a START that finds no free slot is turned
into ADMIT_POOL by the scheduler: POOLED (shown `queued`), from any state START leaves (NEW,
WAITING, QUEUED, DELAYED, RETRY_WAIT). pools.py grants slots first come first served and fires
START (POOLED -> LAUNCHING). Its own state, not QUEUED with a reason: an overlap-queued run is
not in flight (its job's run is; it is admitted again, upstreams and jitter included, when that
one is final), while a pooled run is (overlap= and after= count it busy, like WAITING), and is
released by a slot of any job. A slot is held while the run is LAUNCHING or RUNNING only: a
retry's wait gives it back (a backoff can last hours; the retry queues again, last in line).
A pooled run that will not start (STOP, INTERRUPT, REMOVED, REPLACED) ends as a not-started one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronplus.engine.executor import AttemptResult
    from cronplus.engine.policy import Outcome
    from cronplus.status import RunStatus


class RunState(enum.StrEnum):  # a str: "queued" == RunState.QUEUED
    NEW = "new"  # created, not yet admitted
    WAITING = "waiting"  # for its upstreams' runs of its tick (after=)
    QUEUED = "queued"  # behind a run of its own job (overlap=queue)
    DELAYED = "delayed"  # jitter: until Run.start_at on the clock
    LAUNCHING = "launching"  # to start: its row, then its attempt (launcher.py)
    RUNNING = "running"  # an attempt is under way (a process runs)
    RETRY_WAIT = "retry_wait"  # an attempt ended; the next starts after the retry delay
    FINAL = "final"  # its last row is final
    POOLED = "pooled"  # due, waiting for a pool / --max-running slot (pools.py); shown `queued`
    SENSING = "sensing"  # its sensor (wait-for=) is probed until it exits 0 (sensors.py); no row yet

    @property
    def started(self) -> bool:
        """An attempt was decided: the job runs, will run again, or is about to (overlap's "busy")."""
        return self in _STARTED

    @property
    def shown(self) -> str:
        """The word the control socket's `status` has always shown: active for a started run."""
        return "active" if self in _STARTED else "done" if self is RunState.FINAL else _SHOWN.get(self, self.value)


_STARTED = frozenset({RunState.LAUNCHING, RunState.RUNNING, RunState.RETRY_WAIT})
NOT_STARTED = frozenset({RunState.WAITING, RunState.QUEUED, RunState.DELAYED})
_SHOWN = {RunState.POOLED: "queued"}  # the user's word (README "Pools"); the socket adds which pool


class Kind(enum.Enum):
    ADMIT_WAIT = "admit_wait"  # admitted; it has upstreams
    ADMIT_QUEUE = "admit_queue"  # admitted while a run of its job is busy (overlap=queue)
    ADMIT_DELAY = "admit_delay"  # admitted; jitter picks its start instant
    START = "start"  # admitted to start now / verdict run / released from the queue / delay over
    NOT_RUN = "not_run"  # overlap=skip, or its upstreams' verdict (skip, upstream_failed)
    SPAWNED = "spawned"  # its row is written and its attempt started
    ENDED_RETRY = "ended_retry"  # the attempt ended and another follows
    ENDED = "ended"  # the attempt ended and is the run's last
    REPLACED = "replaced"  # a newer run of its job replaces it (overlap=replace)
    REMOVED = "removed"  # its job left the crontab (reload)
    STOP = "stop"  # shutdown: no run starts any more
    INTERRUPT = "interrupt"  # shutdown: the grace is over
    CRASHED = "crashed"  # a bug in the supervisor while it ran
    ADMIT_POOL = "admit_pool"  # START found no free pool / --max-running slot (pools.py)
    PAUSED = "paused"  # its job was paused (pausing.py): a tick's run not started never will
    SENSE = "sense"  # START for a job with wait-for=: probe its sensor first (scheduler._fire asks sensors.py)
    SENSE_TIMEOUT = "sense_timeout"  # wait-timeout passed: the run ends (failed or skipped), final
    SENSE_TIMEOUT_RETRY = "sense_timeout_retry"  # wait-timeout passed, a retry of the job follows
    FENCED = "fenced"  # our lease ran out (service/heartbeat.py): its attempt is killed, its end is the taker's
    ADOPT_RETRY = "adopt_retry"  # taken over from a host that lost its lease: its next attempt follows here
    STORE_AWAY = "store_away"  # its row (its claim) could not be inserted: a shared store's database is away
    CLAIMED_ELSEWHERE = "claimed_elsewhere"  # its row's claim is another supervisor's (claims.py): it never starts here


class Effect(enum.Enum):
    WAKE = "wake"  # the driver recomputes when to step (a deadline, a start instant)
    LAUNCH = "launch"  # into the launch queue: row, then attempt
    SUPERVISE = "supervise"  # the attempt gets its task (await the executor's result)
    RECORD_END = "record_end"  # the attempt's end row (final or not) and its alert
    RETRY_TIMER = "retry_timer"  # START after the retry delay
    RECORD_NOT_RUN = "record_not_run"  # a final row for a run that did not run (status, reason)
    RECORD_UNSTARTED = "record_unstarted"  # will not start (again): skipped row, or ended attempt final
    CANCEL = "cancel"  # terminate its attempt (now, or as soon as it starts)
    KILL = "kill"  # kill its attempt at once (a supervisor bug)
    RELEASE = "release"  # done: out of the tables, its job's queue moves, a manual chain fans out
    PROBE = "probe"  # its sensor starts: a probe now, then one every wait-every (sensors.py)
    END_SENSOR = "end_sensor"  # its sensor stops: a probe in flight is killed; its stored wait is forgotten
    KEEP_SENSOR = "keep_sensor"  # its sensor stops; its stored wait stays for the next supervisor
    RECORD_WAIT_END = "record_wait_end"  # its sensor gave up: the attempt's row, ended (final or not), RunEnded
    NOT_STARTED = "not_started"  # no row, no start (engine/outage.py): its tick is missed when the store is back, a retry abandoned


@dataclass(frozen=True, slots=True)
class Event:
    """An event and what its effects need: a row's status and reason, an attempt's result."""

    kind: Kind
    reason: str | None = None  # why (not run, cancelled, retry abandoned)
    status: RunStatus | None = None  # NOT_RUN's row; INTERRUPT's cancel status
    result: AttemptResult | None = None  # ENDED, ENDED_RETRY
    outcome: Outcome | None = None  # ENDED, ENDED_RETRY: policy.outcome of the result
    delay: float = 0.0  # ENDED_RETRY: seconds until the next attempt

    @property
    def unstarted_reason(self) -> str | None:
        """A skipped row's reason for a run that will not start: replaced says by which run."""
        if self.kind is Kind.REPLACED or self.reason is None:
            return self.reason
        return f"{self.reason} before it could start"


@dataclass(frozen=True, slots=True)
class Step:
    state: RunState
    effects: tuple[Effect, ...] = ()


class IllegalTransition(Exception):
    """An event the run's state has no row for: a bug in the scheduler."""


S, K, E = RunState, Kind, Effect
_ENDS = (E.RECORD_UNSTARTED, E.RELEASE)
_STAY = {state: Step(state) for state in RunState}

# (state, event) -> Step. What is not here is illegal.
TABLE: dict[tuple[RunState, Kind], Step] = {
    # admission (a run queued behind its job is admitted again when that run is final)
    **{(s, K.ADMIT_WAIT): Step(S.WAITING, (E.WAKE,)) for s in (S.NEW, S.QUEUED)},
    **{(s, K.ADMIT_DELAY): Step(S.DELAYED, (E.WAKE,)) for s in (S.NEW, S.QUEUED, S.WAITING)},
    (S.NEW, K.ADMIT_QUEUE): Step(S.QUEUED),
    **{(s, K.START): Step(S.LAUNCHING, (E.LAUNCH,))
       for s in (S.NEW, S.WAITING, S.QUEUED, S.DELAYED, S.RETRY_WAIT)},
    **{(s, K.NOT_RUN): Step(S.FINAL, (E.RECORD_NOT_RUN, E.RELEASE)) for s in (S.NEW, S.WAITING)},
    # an attempt
    (S.LAUNCHING, K.SPAWNED): Step(S.RUNNING, (E.SUPERVISE,)),
    (S.RUNNING, K.ENDED_RETRY): Step(S.RETRY_WAIT, (E.RECORD_END, E.RETRY_TIMER)),
    (S.RUNNING, K.ENDED): Step(S.FINAL, (E.RECORD_END, E.RELEASE)),
    # overlap=replace: what has not started never will; what runs is cancelled
    (S.WAITING, K.REPLACED): _STAY[S.WAITING],  # it waits for its own upstreams, as before
    (S.DELAYED, K.REPLACED): Step(S.FINAL, _ENDS),
    (S.LAUNCHING, K.REPLACED): Step(S.LAUNCHING, (E.CANCEL,)),
    (S.RUNNING, K.REPLACED): Step(S.RUNNING, (E.CANCEL,)),
    (S.RETRY_WAIT, K.REPLACED): Step(S.FINAL, _ENDS),
    (S.QUEUED, K.REPLACED): _STAY[S.QUEUED],  # not in flight: a newer run does not replace it
    (S.FINAL, K.REPLACED): _STAY[S.FINAL],
    # reload: a removed job's runs that have not started are skipped; started ones go on
    **{(s, K.REMOVED): Step(S.FINAL, _ENDS) for s in NOT_STARTED},
    **{(s, K.REMOVED): _STAY[s] for s in _STARTED | {S.FINAL}},
    # shutdown
    **{(s, K.STOP): Step(S.FINAL, _ENDS) for s in NOT_STARTED | {S.LAUNCHING, S.RETRY_WAIT}},
    (S.RUNNING, K.STOP): _STAY[S.RUNNING],  # its grace
    (S.FINAL, K.STOP): _STAY[S.FINAL],
    (S.RUNNING, K.INTERRUPT): Step(S.RUNNING, (E.CANCEL,)),
    **{(s, K.INTERRUPT): Step(S.FINAL, _ENDS) for s in NOT_STARTED | {S.LAUNCHING, S.RETRY_WAIT}},  # as STOP
    (S.FINAL, K.INTERRUPT): _STAY[S.FINAL],
    **{(s, K.CRASHED): Step(S.FINAL, (E.KILL, E.RELEASE)) for s in RunState if s is not S.FINAL},
    # pause (pausing.py): a tick's run not started is skipped; one started goes on (and retries)
    **{(s, K.PAUSED): Step(S.FINAL, _ENDS) for s in NOT_STARTED | {S.POOLED}},
    **{(s, K.PAUSED): _STAY[s] for s in _STARTED | {S.FINAL}},
    # sensors (wait-for=, sensors.py): SENSE stands for START; a probe exiting 0 is START (through the pool gate)
    **{(s, K.SENSE): Step(S.SENSING, (E.PROBE,))
       for s in (S.NEW, S.WAITING, S.QUEUED, S.DELAYED, S.RETRY_WAIT)},
    (S.SENSING, K.START): Step(S.LAUNCHING, (E.END_SENSOR, E.LAUNCH)),
    (S.SENSING, K.ADMIT_POOL): Step(S.POOLED, (E.END_SENSOR,)),
    (S.SENSING, K.SENSE_TIMEOUT): Step(S.FINAL, (E.RECORD_WAIT_END, E.END_SENSOR, E.RELEASE)),
    (S.SENSING, K.SENSE_TIMEOUT_RETRY): Step(S.RETRY_WAIT, (E.RECORD_WAIT_END, E.END_SENSOR, E.RETRY_TIMER)),
    (S.SENSING, K.REPLACED): Step(S.FINAL, (E.RECORD_UNSTARTED, E.END_SENSOR, E.RELEASE)),  # not started
    (S.SENSING, K.REMOVED): Step(S.FINAL, (E.RECORD_UNSTARTED, E.END_SENSOR, E.RELEASE)),
    # shutdown: the wait is recorded in the store (no row), the next supervisor resumes it with its deadline
    (S.SENSING, K.STOP): Step(S.FINAL, (E.KEEP_SENSOR, E.RELEASE)),
    (S.SENSING, K.INTERRUPT): Step(S.FINAL, (E.KEEP_SENSOR, E.RELEASE)),
    (S.SENSING, K.PAUSED): Step(S.FINAL, (E.RECORD_UNSTARTED, E.END_SENSOR, E.RELEASE)),  # paused: never started
}

# pools (engine/pools.py): no free slot -> POOLED; a granted slot is START; what does not start ends unstarted
TABLE.update({
    **{(s, K.ADMIT_POOL): Step(S.POOLED) for s in (S.NEW, S.WAITING, S.QUEUED, S.DELAYED, S.RETRY_WAIT)},
    (S.POOLED, K.START): Step(S.LAUNCHING, (E.LAUNCH,)),
    **{(S.POOLED, k): Step(S.FINAL, _ENDS) for k in (K.STOP, K.INTERRUPT, K.REMOVED, K.REPLACED)},
})

# leases (engine/takeover.py): a host that lost its lease kills what it runs and records nothing of
# it (the host that took its runs over recorded them `interrupted`), which then retries them itself
TABLE.update({
    (S.RUNNING, K.FENCED): Step(S.FINAL, (E.KILL, E.RELEASE)),
    (S.RETRY_WAIT, K.FENCED): Step(S.FINAL, (E.KILL, E.RELEASE)),  # its end was fenced: no retry here (nothing to kill)
    (S.NEW, K.ADOPT_RETRY): Step(S.RETRY_WAIT, (E.RETRY_TIMER,)),
})
# a shared store's database away (engine/outage.py): a run starts only once its row is in, so one
# whose row could not be inserted never starts
TABLE[(S.LAUNCHING, K.STORE_AWAY)] = Step(S.FINAL, (E.NOT_STARTED, E.RELEASE))


# a cluster (engine/claims.py): the launcher's insert found the attempt's claim taken by another
# supervisor's row: ours ends, with no row and no process (the other host runs and records it)
TABLE[(S.LAUNCHING, K.CLAIMED_ELSEWHERE)] = Step(S.FINAL, (E.RELEASE,))


def transition(state: RunState, kind: Kind) -> Step:
    """The state a run in `state` moves to on `kind`, and the effects to carry out, in order."""
    step = TABLE.get((state, kind))
    if step is None:
        raise IllegalTransition(f"event {kind.value} in state {state.value}")
    return step
