"""The Celery executor (`queue=NAME`, docs/workers.md): an attempt is a message on the queue, carried out
by a `cronplus worker` (remote.WorkerRuns) on whatever host consumes it; the supervisor keeps
the schedule, retries, dependencies and alerts. The contract is executor.py's; the row fencing
is store/remoteruns.py's.

* `RoutedExecutor(local, history=, broker=, host=, clock=)`: the supervisor's executor: a job
  with `queue=` goes to the Celery executor (made, and celery imported, at its first use or by
  `prepare(crontab)`), every other job to the local one.
* `CeleryExecutor.start(spec)`: the row gets its queue (`send_to_queue`: no host until a
  worker claims it), then the message is sent (synchronous: the attempt is on its way when it
  returns). A broker that cannot be reached: the supervisor claims the row itself and the
  attempt fails with one line naming the broker (redacted); for BROKER_DOWN_S after that, sends
  fail at once (a tick's loop never waits on a dead broker per job).
* Results are awaited by polling the pending rows (`remote_states`, one query for all, every
  POLL_S): a report ends the attempt; no worker took it within `queue-timeout`: the supervisor
  claims it and it fails; its worker stopped heart-beating for longer than its lease: it is
  `interrupted` (the job's retries follow; a late report is refused by the row).
* `cancel()`/`kill()`: not yet taken: the supervisor claims it (the message, when it comes, is
  dropped) and it ends cancelled at once; taken: a cancel request on the row, which the worker
  watches (it terminates the group: SIGTERM, SIGKILL after kill-grace) and then reports.
* `abandon()`: stop awaiting; the next supervisor adopts the row (`adopt`). `let_go()`: the
  same when our lease is lost (the host that took our runs over adopts it), the task answered.
* `adopt(run_ids, finish)`: await remote runs this supervisor did not send (its predecessor's at
  its start, a taken-over host's): `finish` each (engine/adoptremote.py records the end and
  follows the job's retries).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cronplus.clock import Clock
from cronplus.engine.executor import AttemptResult, AttemptSpec, Executor, OutputRef
from cronplus.engine.remote import TASK_NAME, payload_of, result_of
from cronplus.model import Crontab
from cronplus.redact import redact_url
from cronplus.store.remoteruns import CANCEL_REQUEST, RemoteState

if TYPE_CHECKING:
    from cronplus.store.api import RunWriter

log = logging.getLogger("cronplus")

POLL_S = 0.05  # how often pending rows are read (one query for all of them)
POLL_MANY_S = 0.5  # with more than MANY pending: a big fan-out waits longer, the database rests
MANY = 200
BROKER_DOWN_S = 5.0  # after a failed send, the sends of this long fail at once: a tick never waits per job


class RemoteAttempt:
    """One attempt sent to a queue (executor.Attempt)."""

    def __init__(self, owner: CeleryExecutor, spec: AttemptSpec, queue: str, started_at: float) -> None:
        self.owner = owner
        self.spec = spec
        self.queue = queue
        self._started_at = started_at
        self.sent_mono = time.monotonic()
        self.run_id = spec.attempt_id
        self.worker_pid: int | None = None
        self.done: AttemptResult | None = None  # known before a loop awaits it (a send failure)
        self.future: asyncio.Future[AttemptResult] | None = None
        self.cancel_wanted = False
        self.cancel_sent = False

    @property
    def pid(self) -> int | None:
        return None  # no process of ours: the worker records its own pid on the row

    @property
    def started_at(self) -> float:
        return self._started_at

    async def result(self) -> AttemptResult:
        if self.done is not None:
            return self.done
        loop = asyncio.get_running_loop()
        self.future = loop.create_future()
        self.owner.watch(self)
        return await self.future

    def settle(self, result: AttemptResult) -> None:
        self.done = result
        self.owner.pending.pop(self.run_id, None)
        if self.future is not None and not self.future.done():
            self.future.set_result(result)

    def cancel(self) -> None:
        self.cancel_wanted = True
        self.owner.cancel(self)

    def kill(self) -> None:
        self.cancel()

    def abandon(self) -> None:
        self.owner.pending.pop(self.run_id, None)

    def let_go(self) -> None:
        """Our lease is lost (engine/adoptremote.let_go): stop awaiting, cancel nothing on the worker;
        the awaiting task gets an interrupted result that its fenced run does not record."""
        self.abandon()
        self.settle(AttemptResult(exit_code=None, signal=None, timed_out=False, cancelled=False,
                                  started_at=self.started_at, ended_at=self.owner.clock.time(), pid=None,
                                  output_bytes=0, truncated=False, error="this supervisor lost its lease", host=None,
                                  output=None, interrupted=True))


class CeleryExecutor:
    """Sends attempts to Celery queues (see the module docstring)."""

    def __init__(self, history: RunWriter, *, broker: str, host: str, clock: Clock) -> None:
        from cronplus.engine.celeryapp import make_app

        self.history = history
        self.broker = broker
        self.host = host
        self.clock = clock
        self.app = make_app(broker)
        self.pending: dict[int, RemoteAttempt] = {}
        self._down_until = 0.0  # a send failed: until then the next ones fail at once (_down_why)
        self._down_why = ""
        self._poller: asyncio.Task[None] | None = None

    def connect(self) -> None:
        """Open the broker connection now, so that the first tick's send does not pay for it."""
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        except Exception as exc:  # noqa: BLE001 - kombu/redis/OS errors alike: said, retried at the send
            log.warning("broker %s not reachable yet: %s", redact_url(self.broker), exc)

    def start(self, spec: AttemptSpec) -> RemoteAttempt:
        queue = spec.job.options.queue
        assert queue is not None
        attempt = RemoteAttempt(self, spec, queue, self.clock.time())
        try:
            self.history.send_to_queue(spec.attempt_id, queue)
            if time.monotonic() < self._down_until:  # a tick's other sends do not wait for it again
                self._give_up(attempt, self._down_why)
                return attempt
            self.app.send_task(TASK_NAME, args=[payload_of(spec, queue)], queue=queue,
                               retry=True, retry_policy={"max_retries": 2, "interval_start": 0.1})
        except Exception as exc:  # noqa: BLE001 - any failure to send fails the attempt, never the tick
            self._down_why = f"cannot send to queue {queue} (broker {redact_url(self.broker)}): {exc}"
            self._down_until = time.monotonic() + BROKER_DOWN_S
            log.error("job %s: run %d: %s", spec.job.name, spec.attempt_id, self._down_why)
            self._give_up(attempt, self._down_why)
        return attempt

    def _give_up(self, attempt: RemoteAttempt, why: str, *, cancelled: bool = False) -> None:
        """The supervisor takes the row (no worker will run it) and ends the attempt."""
        try:
            taken = self.history.claim_attempt(attempt.run_id, host=self.host, started_at=self.clock.time())
        except Exception as exc:  # noqa: BLE001 - a database error (either backend's): said, settled at the next start
            log.warning("run %d: cannot take its row back: %s", attempt.run_id, exc)
            taken = True  # the row says running with no host; the next start's adoption settles it
        if not taken:  # a worker took it meanwhile: await its report
            return
        now = self.clock.time()
        attempt.settle(AttemptResult(exit_code=None, signal=None, timed_out=False, cancelled=cancelled,
                                     started_at=attempt.started_at, ended_at=now, pid=None, output_bytes=0,
                                     truncated=False, error=None if cancelled else why, host=self.host,
                                     output=None))

    def cancel(self, attempt: RemoteAttempt) -> None:
        if attempt.done is not None or attempt.cancel_sent:
            return
        try:
            state = self.history.remote_states([attempt.run_id])
            if state and state[0].host is None:
                self._give_up(attempt, "cancelled before a worker took it", cancelled=True)
                if attempt.done is not None:
                    return
            self.history.request_cancel(attempt.run_id)
            attempt.cancel_sent = True
        except Exception as exc:  # noqa: BLE001 - a database error: the next poll tries again (cancel_wanted)
            log.warning("run %d: cannot ask its worker to stop yet: %s", attempt.run_id, exc)

    def watch(self, attempt: RemoteAttempt) -> None:
        self.pending[attempt.run_id] = attempt
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll(), name="celery-results")

    async def _poll(self) -> None:
        while self.pending:
            await asyncio.sleep(POLL_S if len(self.pending) <= MANY else POLL_MANY_S)
            try:
                states = self.history.remote_states(list(self.pending))
            except Exception as exc:  # noqa: BLE001 - the database away: the attempts go on, we look again
                log.warning("cannot read %d remote run(s): %s", len(self.pending), exc)
                continue
            for state in states:
                attempt = self.pending.get(state.run_id)
                if attempt is not None:
                    self._check(attempt, state)

    def _check(self, attempt: RemoteAttempt, state: RemoteState) -> None:
        if state.report is not None and state.report != CANCEL_REQUEST:
            result = result_of(state.report)
            offset = self.clock.time() - time.time()  # the worker's times on our clock (a shifted test clock)
            attempt.settle(dataclasses.replace(result, started_at=result.started_at + offset,
                                               ended_at=result.ended_at + offset))
            return
        if state.status != "running":
            attempt.settle(self._lost(attempt, f"run {attempt.run_id} was ended elsewhere ({state.status})"))
            return
        if attempt.cancel_wanted and not attempt.cancel_sent:
            self.cancel(attempt)
        if state.host is None:
            limit = attempt.spec.job.options.queue_timeout
            if limit is not None and time.monotonic() - attempt.sent_mono > limit:
                self._give_up(attempt, f"no worker of queue {attempt.queue} took it within {limit:g}s (queue-timeout)")
            return
        if state.heartbeat_at is not None and state.lease_s is not None:
            silent = time.time() - state.heartbeat_at
            if silent > state.lease_s:
                attempt.settle(self._lost(attempt, f"worker {state.host} stopped heart-beating {silent:.0f}s ago"))

    def _lost(self, attempt: RemoteAttempt, why: str) -> AttemptResult:
        log.warning("job %s: run %d: %s: interrupted", attempt.spec.job.name, attempt.run_id, why)
        return AttemptResult(exit_code=None, signal=None, timed_out=False, cancelled=False,
                             started_at=attempt.started_at, ended_at=self.clock.time(), pid=None, output_bytes=0,
                             truncated=False, error=why, host=None, output=None, interrupted=True)


class RoutedExecutor:
    """The supervisor's executor: `queue=` jobs to Celery, the others to `local`."""

    def __init__(self, local: Executor, *, history: RunWriter, broker: str | None, host: str, clock: Clock) -> None:
        self.local = local
        self.history = history
        self.broker = broker
        self.host = host
        self.clock = clock
        self._celery: CeleryExecutor | None = None

    def celery(self) -> CeleryExecutor:
        if self._celery is None:
            if self.broker is None:
                raise RuntimeError("no broker")  # prepare() refused the crontab first
            self._celery = CeleryExecutor(self.history, broker=self.broker, host=self.host, clock=self.clock)
        return self._celery

    def prepare(self, crontab: Crontab) -> str | None:
        """Make the Celery side now when the crontab has a queue= job (its import and the broker
        connection are not paid by the first tick); what is wrong when it has one and no broker."""
        queued = [job.name for job in crontab.jobs if job.options.queue]
        if not queued:
            return None
        if self.broker is None:
            return (f"job {queued[0]} has queue= but no broker is given: "
                    "cronplus run --broker redis://HOST:6379/0 (or CRONPLUS_BROKER)")
        self.celery().connect()
        return None

    def output_for(self, job: str, attempt_id: int) -> OutputRef:
        return self.local.output_for(job, attempt_id)  # a queued one's is replaced by its worker's

    def start(self, spec: AttemptSpec) -> Any:
        if spec.job.options.queue is None:
            return self.local.start(spec)
        if self.broker is None:  # refused at load; a safety net: fail it, with the row taken back
            return self._no_broker(spec)
        return self.celery().start(spec)

    def _no_broker(self, spec: AttemptSpec) -> Any:
        now = self.clock.time()
        failed = AttemptResult(exit_code=None, signal=None, timed_out=False, cancelled=False, started_at=now,
                               ended_at=now, pid=None, output_bytes=0, truncated=False, host=self.host,
                               error=f"queue={spec.job.options.queue} needs --broker (or CRONPLUS_BROKER)")
        return _Ready(failed)

    def adopt(self, run_ids: list[int], finish: Callable[[int, AttemptResult], None]) -> list[asyncio.Task[None]]:
        """Await the remote runs a previous supervisor left (store adopt_remote), `finish` each."""
        if not run_ids or self.broker is None:
            return []
        celery = self.celery()
        tasks = []
        for run_id in run_ids:
            spec = _adopted_spec(run_id)
            attempt = RemoteAttempt(celery, spec, "", self.clock.time())

            async def wait(attempt: RemoteAttempt = attempt, run_id: int = run_id) -> None:
                finish(run_id, await attempt.result())

            tasks.append(asyncio.get_running_loop().create_task(wait(), name=f"adopted-{run_id}"))
        return tasks


class _Ready:
    """An attempt that never started; its result is known."""

    def __init__(self, result: AttemptResult) -> None:
        self._result = result
        self.pid: int | None = None
        self.started_at = result.started_at

    async def result(self) -> AttemptResult:
        return self._result

    def cancel(self) -> None:
        pass

    def kill(self) -> None:
        pass

    def abandon(self) -> None:
        pass


def _adopted_spec(run_id: int) -> AttemptSpec:
    """What an adopted run's polling needs of a spec: its run id (no queue-timeout: it was sent)."""
    from datetime import UTC, datetime

    from cronplus.engine.remote import NO_SCHEDULE
    from cronplus.errors import SourceLoc
    from cronplus.model import JobSpec

    job = JobSpec(loc=SourceLoc(path="<adopted>", line=0), name=f"run-{run_id}", schedule=NO_SCHEDULE, command="",
                  stdin=None, env=())
    return AttemptSpec(job=job, attempt_id=run_id, attempt=1, scheduled_at=datetime.now(UTC), output=OutputRef("", ""))
