"""An attempt carried out by a worker (`queue=NAME`, `cronplus worker`): what travels in the
message, what comes back in the run row, and the worker's side of one attempt. No Celery here
(celeryapp.py wraps `WorkerRuns.run` in a task), so the protocol is tested on its own.

* `payload_of(spec, queue)` -> a JSON-able dict: the run id, attempt, tick, system mode, a
  manual run's parameters, the upstream outputs and the job as the runner needs it (name,
  command, `%` stdin, env lines, user, the options that shape one attempt: timeout, kill-grace,
  max-log-size, nice and the resource limits). `spec_of(payload)` is its inverse on the worker.
* `WorkerRuns.run(payload)`: the worker's side of one attempt, with the local executor's own
  code (runner.spawn_attempt, supervise.supervise: cron's environment, `$SHELL -c` in its own
  process group, timeout/kill-grace killing the whole group, max-log-size, user switching in
  system mode, CRONPLUS_* variables):
  1. claim the row (store `claim_attempt`: host = this worker's id). A row already claimed
     (a redelivered message: the worker that had it died, or Redis' visibility timeout ran
     out) or no longer running (cancelled, queue-timeout) is not run: nothing is doubled.
  2. spawn, record the pid; while it runs, watch the row every WATCH_S: a cancel request
     (store `request_cancel`: overlap=replace, the supervisor's shutdown) terminates the group
     as a timeout does.
  3. report: the result as JSON (`result_json`) and the log's head and tail (HEAD_BYTES,
     TAIL_BYTES) into the row (store `report_attempt`); the supervisor records the end.
* `WorkerRuns.settle_leftovers()`: at a worker's start, attempts this host id had claimed and
  not reported (the previous worker process was killed) are stopped (their processes, found
  by their environment, leftovers.py) and reported lost: the supervisor records them
  `interrupted` and the job's retries follow.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from cronplus.clock import SystemClock
from cronplus.engine import leftovers, runner
from cronplus.engine.executor import AttemptResult, AttemptSpec, OutputRef
from cronplus.engine.supervise import supervise
from cronplus.errors import SourceLoc
from cronplus.model import JobOptions, JobSpec, Schedule
from cronplus.store.api import HistoryStore
from cronplus.store.remoteruns import CANCEL_REQUEST

LEFTOVER_WINDOW_S = 7 * 86400.0  # how far back a starting worker looks for its ended, unsupervised attempts
LEFTOVER_ROWS = 500

log = logging.getLogger("cronplus")

PAYLOAD_VERSION = 1
TASK_NAME = "cronplus.attempt"
HEAD_BYTES = 32 * 1024  # the start of a run's output kept in its row (runs.output_head)
TAIL_BYTES = 32 * 1024  # and its end (runs.output_tail): `cronplus output` from any host
WATCH_S = 0.25  # how often a running attempt's row is read for a cancel request
REPORT_TRY_S = 3600.0  # a report the database refuses is retried this long (the run stays `running`)
# The options that shape one attempt on the worker; the rest (retries, alerts, after=) stay with
# the supervisor.
_ATTEMPT_OPTIONS = ("timeout", "kill_grace", "max_log_size", "nice", "memory_max", "cpu_max", "tasks_max", "queue")
NO_SCHEDULE = Schedule(text="@queue", minutes=frozenset(), hours=frozenset(), days=frozenset(), months=frozenset(),
                        weekdays=frozenset(), dom_star=False, dow_star=False, minute_star=False, hour_star=False,
                        reboot=True)


def payload_of(spec: AttemptSpec, queue: str) -> dict[str, Any]:
    job = spec.job
    return {
        "v": PAYLOAD_VERSION, "run_id": spec.attempt_id, "attempt": spec.attempt, "queue": queue,
        "scheduled_at": spec.scheduled_at.isoformat(), "system": spec.system,
        "params": [list(p) for p in spec.params],
        "upstream": [[name, [list(p) for p in pairs]] for name, pairs in spec.upstream],
        "job": {"name": job.name, "command": job.command, "stdin": job.stdin, "env": [list(p) for p in job.env],
                "user": job.user, "tz": job.tz, "loc": str(job.loc),
                "options": {k: getattr(job.options, k) for k in _ATTEMPT_OPTIONS}},
        "sent_at": time.time(),  # for the dispatch latency (bench/bench_celery.py)
    }


def spec_of(payload: dict[str, Any], *, output: OutputRef) -> AttemptSpec:
    if payload.get("v") != PAYLOAD_VERSION:
        raise ValueError(f"attempt message of version {payload.get('v')!r}: this worker reads {PAYLOAD_VERSION}")
    j = payload["job"]
    job = JobSpec(loc=SourceLoc(path=j["loc"], line=0), name=j["name"], schedule=NO_SCHEDULE, command=j["command"],
                  stdin=j["stdin"], env=tuple((k, v) for k, v in j["env"]), options=JobOptions(**j["options"]),
                  tz=j["tz"], user=j["user"])
    return AttemptSpec(job=job, attempt_id=int(payload["run_id"]), attempt=int(payload["attempt"]),
                       scheduled_at=datetime.fromisoformat(payload["scheduled_at"]), output=output,
                       system=bool(payload["system"]), params=tuple((k, v) for k, v in payload["params"]),
                       upstream=tuple((n, tuple((k, v) for k, v in pairs)) for n, pairs in payload["upstream"]))


def result_json(result: AttemptResult) -> str:
    fields = dataclasses.asdict(result)
    fields["output"] = dataclasses.asdict(result.output) if result.output is not None else None
    return json.dumps(fields)


def result_of(text: str) -> AttemptResult:
    fields = json.loads(text)
    output = fields.pop("output", None)
    fields["outputs"] = tuple((k, v) for k, v in fields.get("outputs", ()))
    known = {f.name for f in dataclasses.fields(AttemptResult)}
    return AttemptResult(**{k: v for k, v in fields.items() if k in known},
                         output=OutputRef(**output) if output else None)


def head_tail(path: Path) -> tuple[str | None, str | None]:
    """The start and the end of a log (the whole of it in the head when it is short)."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
            size = os.fstat(f.fileno()).st_size
            tail = b""
            if size > HEAD_BYTES:
                f.seek(max(HEAD_BYTES, size - TAIL_BYTES))
                tail = f.read(TAIL_BYTES)
    except OSError:
        return None, None
    return head.decode(errors="replace"), (tail.decode(errors="replace") if tail else None)


class WorkerRuns:
    """A worker's attempts (see the module docstring). `open_store` opens a store for the
    calling thread (each of the worker's threads has its own connection)."""

    def __init__(self, open_store: Callable[[], HistoryStore], *, host: str, log_dir: Path, outputs_dir: Path,
                 system: bool) -> None:
        self.open_store = open_store
        self.host = host
        self.log_dir = Path(log_dir).absolute()
        self.outputs_dir = Path(outputs_dir).absolute()
        self.system = system
        self.clock = SystemClock()
        self._local = threading.local()

    def store(self) -> HistoryStore:
        store: HistoryStore | None = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = self.open_store()
        return store

    def run(self, payload: dict[str, Any]) -> str:
        """One message: "ran", or why it was not run ("taken": claimed before or no longer running)."""
        run_id = int(payload["run_id"])
        name = str(payload["job"]["name"])
        output = OutputRef(self.host, str(runner.log_path_for(self.log_dir, name, run_id)))
        spec = spec_of(payload, output=output)
        store = self.store()
        if not store.claim_attempt(run_id, host=self.host, started_at=self.clock.time()):
            log.info("job %s: run %d is taken or over: message dropped", name, run_id)
            return "taken"
        spawned = runner.spawn_attempt(spec.job, run_id=run_id, attempt=spec.attempt, scheduled_at=spec.scheduled_at,
                                       log_path=Path(output.path), system=self.system and spec.system,
                                       clock=self.clock, params=spec.params, upstream=dict(spec.upstream),
                                       outputs_dir=self.outputs_dir)
        spawned.host, spawned.output = self.host, output
        if spawned.failure is not None:
            spawned.failure = dataclasses.replace(spawned.failure, host=self.host, output=output)
        if spawned.pid is not None:
            log.info("job %s: run %d started, pid %d (%.1f ms after it was sent)", name, run_id, spawned.pid,
                     (time.time() - float(payload.get("sent_at", time.time()))) * 1000)
            self._try(lambda: store.set_pid(run_id, spawned.pid or 0), f"pid of run {run_id}")
        result = asyncio.run(self._supervise(spawned, run_id))
        self.report(run_id, result, Path(output.path))
        return "ran"

    async def _supervise(self, spawned: runner.Spawned, run_id: int) -> AttemptResult:
        cancel = asyncio.Event()
        watcher = asyncio.ensure_future(self._watch(run_id, cancel))
        try:
            return await supervise(spawned, cancel=cancel)
        finally:
            watcher.cancel()

    async def _watch(self, run_id: int, cancel: asyncio.Event) -> None:
        """Set `cancel` when the supervisor asks (the row's cancel request)."""
        store = self.store()
        while True:
            await asyncio.sleep(WATCH_S)
            try:
                states = store.remote_states([run_id])
            except Exception as exc:  # noqa: BLE001 - the database away a moment: the job runs on
                log.warning("run %d: cannot read its row: %s", run_id, exc)
                continue
            if not states or states[0].report == CANCEL_REQUEST or states[0].status != "running":
                cancel.set()
                return

    def report(self, run_id: int, result: AttemptResult, log_path: Path | None) -> None:
        head, tail = head_tail(log_path) if log_path is not None else (None, None)
        text = result_json(result)
        store = self.store()
        deadline = time.monotonic() + REPORT_TRY_S
        delay = 0.5
        while True:
            try:
                if not store.report_attempt(run_id, host=self.host, result=text, head=head, tail=tail,
                                            log_path=str(log_path) if log_path is not None else None):
                    log.warning("run %d: its result was not taken (the run was settled elsewhere)", run_id)
                return
            except Exception as exc:  # noqa: BLE001 - a database error: retried, the result is not dropped
                if time.monotonic() > deadline:
                    log.error("run %d: its result is lost: %s", run_id, exc)
                    return
                log.warning("run %d: cannot report its result yet: %s", run_id, exc)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def settle_leftovers(self) -> int:
        """Attempts this host id claimed and never reported (a killed worker): stop what is left of
        them and report them lost. Returns how many."""
        store = self.store()
        now = self.clock.time()
        self._stop_ended_leftovers(store, now)
        mine = [r for r in store.running() if r.host == self.host and r.queue]
        states = {s.run_id: s for s in store.remote_states([r.run_id for r in mine])}
        lost = [r for r in mine if states.get(r.run_id) is not None
                and states[r.run_id].report in (None, CANCEL_REQUEST)]
        if not lost:
            return 0
        notes = leftovers.sweep(lost, {})
        for rec in lost:
            what = notes.get(rec.run_id)
            error = f"worker {self.host} was restarted during the attempt" + (f" ({what})" if what else "")
            path = runner.log_path_for(self.log_dir, rec.job, rec.run_id)
            self.report(rec.run_id, AttemptResult(
                exit_code=None, signal=None, timed_out=False, cancelled=False,
                started_at=rec.started_at.timestamp() if rec.started_at else now, ended_at=now, pid=rec.pid,
                output_bytes=0, truncated=False, error=error, host=self.host, interrupted=True,
                output=OutputRef(self.host, str(path))), path)
            log.warning("job %s: run %d lost by a previous worker process: reported interrupted", rec.job, rec.run_id)
        return len(lost)

    def _stop_ended_leftovers(self, store: HistoryStore, now: float) -> None:
        """The processes of this host id's attempts the supervisor already ended `interrupted`
        (the killed worker stopped heart-beating before this one started) with no report of ours:
        nothing supervises them any more, so they are stopped (their rows stay as they are)."""
        ended = [r for r in store.iter_query(statuses=["interrupted"], since=now - LEFTOVER_WINDOW_S,
                                             limit=LEFTOVER_ROWS, newest_first=True)
                 if r.host == self.host and r.queue]
        states = {s.run_id: s for s in store.remote_states([r.run_id for r in ended])}
        unreported = [r for r in ended if states.get(r.run_id) is not None
                      and states[r.run_id].report in (None, CANCEL_REQUEST)]
        for run_id, what in leftovers.sweep(unreported, {}).items():
            log.warning("run %d (ended interrupted by the supervisor): %s", run_id, what)

    def _try(self, write: Callable[[], None], what: str) -> None:
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - only a column misses it; the job runs
            log.warning("cannot record the %s: %s", what, exc)
