"""The one place a run's attempt gets its history row and is started (runs in LAUNCHING).

Chunks of INSERT_CHUNK runs: their rows in one transaction (with the ticks they handle:
ticks.py), then their attempts started back to back (Executor.start, synchronous), then their
pids in one commit. Each started run is handed to `on_started` (the scheduler fires SPAWNED, whose
effect hands it back: `supervise_later`); its task (its bookkeeping: start alert, awaiting the
result) is created later, by `supervise`.

* `flush()`: every queued run now, synchronously (no driver is running: tests' step(), a
  trigger without a supervisor) with the runs' tasks right after.
* `launch_all()`: the driver's way, a chunk per yield to the loop, so that the control socket,
  signals and the watchdog are served during a 2,000-job tick (without it `cronplus jobs` waited
  for the whole tick, ~12 s). A yield runs whatever is ready, so the runs' tasks are created a
  chunk per yield only after the spawns: their bookkeeping must not hold back the spawns of a
  big fan-out, nor, all at once, the loop. Once the spawns have gone on for LAUNCH_SLICE_S, a
  chunk of tasks goes with each chunk of spawns, oldest first, so that no run waits for its
  supervision much longer than that.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Callable

from cronplus.clock import Clock
from cronplus.engine import claims
from cronplus.engine.dagrun import Run
from cronplus.engine.executor import AttemptSpec, Executor
from cronplus.store.api import HistoryStore
from cronplus.store.history import RunStart
from cronplus.store.storeguard import Store, StoreAway

log = logging.getLogger("cronplus")

LAUNCH_SLICE_S = 5.0  # spawn a tick's runs back to back for at most this long before supervising them
INSERT_CHUNK = 10  # rows per transaction when a tick starts many runs; spawns between two yields


class Launcher:
    def __init__(self, *, store: Store, history: HistoryStore, executor: Executor, clock: Clock, owner: str,
                 handled: Callable[[list[Run]], list[tuple[str, str]]], on_started: Callable[[Run], None],
                 supervise: Callable[[Run], None], system: Callable[[], bool],
                 away: Callable[[Run, str], None] | None = None,
                 claimed_elsewhere: Callable[[Run], None] = lambda run: None) -> None:
        self.store = store
        self.history = history
        self.executor = executor
        self.clock = clock
        self.owner = owner
        self.handled = handled  # the kv entries saying these runs' ticks are handled (written with the rows)
        self.on_started = on_started
        self.supervise = supervise
        self.system = system
        self.away = away  # a shared store's database is away: the run gets no row, so it must not start (outage.py)
        self.claimed_elsewhere = claimed_elsewhere  # a run whose row's claim another supervisor holds (claims.py)
        self.queue: deque[Run] = deque()
        self.unsupervised: deque[Run] = deque()  # started, no task yet

    def __bool__(self) -> bool:
        return bool(self.queue or self.unsupervised)

    def add(self, run: Run) -> None:
        self.queue.append(run)

    def supervise_later(self, run: Run) -> None:
        """A started run's task comes with the next chunk (or `flush`, `supervise_started`)."""
        self.unsupervised.append(run)

    def start_now(self, *runs: Run) -> None:
        """Start these queued runs at once, ahead of the queue (a manual trigger: its row exists
        when the trigger is answered), INSERT_CHUNK rows a transaction; not one that is not
        queued (waiting for a pool slot)."""
        queued = [run for run in runs if run in self.queue]
        for run in queued:
            self.queue.remove(run)
        for at in range(0, len(queued), INSERT_CHUNK):
            self._start(queued[at:at + INSERT_CHUNK])

    def discard(self, run: Run) -> None:
        """A queued run that will not start after all."""
        if run in self.queue:
            self.queue.remove(run)

    def take_queued(self) -> list[Run]:
        """Every run not yet started (shutdown records them), out of the queue."""
        runs, self.queue = list(self.queue), deque()
        return runs

    def flush(self) -> None:
        while self.queue:
            self._start(self._chunk(self.queue))
        self.supervise_started()

    def supervise_started(self) -> None:
        """Every started run gets its task now (also at shutdown: every run ends recorded)."""
        runs, self.unsupervised = list(self.unsupervised), deque()
        for run in runs:
            self.supervise(run)

    async def launch_all(self) -> None:
        slice_end = time.monotonic() + LAUNCH_SLICE_S
        while self.queue or self.unsupervised:
            if self.queue:
                self._start(self._chunk(self.queue))
            if not self.queue or time.monotonic() >= slice_end:
                for run in self._chunk(self.unsupervised):
                    self.supervise(run)
            await asyncio.sleep(0)

    @staticmethod
    def _chunk(queue: deque[Run]) -> list[Run]:
        return [queue.popleft() for _ in range(min(INSERT_CHUNK, len(queue)))]

    def _start(self, runs: list[Run]) -> None:
        """Rows (one transaction), then attempts, then pids (one commit)."""
        try:
            runs = self._insert(runs)  # those whose claim was another's ended: not started
        except StoreAway as exc:  # no row, no start: another host may claim the tick (outage.py)
            if self.away is None:
                raise
            for run in runs:
                self.away(run, str(exc))
            return
        system = self.system()
        for run in runs:
            assert run.attempt_id is not None and run.output is not None
            run.handle = self.executor.start(AttemptSpec(job=run.job, attempt_id=run.attempt_id, attempt=run.attempt,
                                                         scheduled_at=run.tick, output=run.output, system=system,
                                                         params=run.params, upstream=self._upstream(run)))
        self._record_pids(runs)
        for run in runs:
            self.on_started(run)

    def _insert(self, runs: list[Run]) -> list[Run]:
        now = self.clock.time()
        starts = []
        for run in runs:
            job = run.job
            run.started_at = now
            starts.append(RunStart(job=job.name, attempt=run.attempt, trigger=run.attempt_trigger,
                                   scheduled_at=run.tick.timestamp(), tz=job.tz, started_at=now, owner=self.owner,
                                   log_path=functools.partial(self._output_text, job.name),
                                   claim=claims.run_claim(run, self.history.host)))
        handled = self.handled([run for run in runs if run.attempt == 1])
        won = []
        for run, attempt_id in zip(runs, self.store.start_runs(starts, kv=handled), strict=True):
            if attempt_id is None:  # another supervisor's row holds this attempt's claim
                claims.lost(run)
                self.claimed_elsewhere(run)
                continue
            run.attempt_id = attempt_id
            run.output = self.executor.output_for(run.job.name, attempt_id)
            won.append(run)
        self._record_params([run for run in won if run.params])
        return won

    def _record_params(self, runs: list[Run]) -> None:
        """A manual run's parameters on each attempt's row (rare: its own commit)."""
        for run in runs:
            assert run.attempt_id is not None
            self._write_params(run.attempt_id, run.params)

    def _write_params(self, attempt_id: int, params: tuple[tuple[str, str], ...]) -> None:
        self.store.write(lambda _: self.history.set_params(attempt_id, params), lambda _: None,
                         what=f"parameters of run {attempt_id}", own_transaction=True)

    def _upstream(self, run: Run) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
        """The outputs of the upstream runs this run's tick uses (dagrun's rule: the newest final
        run at or before the tick), for CRONPLUS_UPSTREAM_<JOB>_<KEY>."""
        found = []
        for name in run.job.options.after:
            record = self.store.last_final_run(name, at_or_before=run.tick.timestamp())
            if record is not None and record.outputs:
                found.append((name, record.outputs))
        return tuple(found)

    def _output_text(self, job: str, attempt_id: int) -> str:
        """The row's log_path (a held write asks for it when it is written back)."""
        return self.executor.output_for(job, attempt_id).path

    def _record_pids(self, runs: list[Run]) -> None:
        """The chunk's pids, one commit, right after its starts (the restart sweep finds a run's
        processes by their environment, leftovers.py; the pid is for `cronplus log`)."""
        pids = [(run.attempt_id, run.handle.pid) for run in runs
                if run.attempt_id is not None and run.handle is not None and run.handle.pid is not None]
        if not pids:
            return
        try:
            self.store.write(lambda _: self.history.set_pids(pids), lambda _: None,
                             what=lambda: f"pids of {len(pids)} run(s)", own_transaction=True)
        except Exception:  # the processes run and are supervised; only the pid column misses them
            log.exception("recording the pids of %d run(s) failed", len(pids))
