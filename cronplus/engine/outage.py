"""What the scheduler does while its shared store's database is away (issue 14 item 3): a
PostgreSQL restart, a network cut. The store's side is storeguard.Store (held writes, the
reconnect timer, `away`, `on_back`); this is the engine's.

- A run starts only after its row is inserted: on a shared store the row is its claim, and
  another host may run that tick. So while the database is away no run starts: the launcher's
  `Store.start_runs` raises StoreAway and the scheduler fires STORE_AWAY (runstate.py) for each
  run of the chunk, whose effect NOT_STARTED is `Outage.not_started`:
  - a tick's run (schedule, catch_up): its tick goes back to the Ticker (ticking.Ticker.unhandled),
    which hands no tick over while the store is away and, once it is back, records the ticks
    that fell meanwhile `missed`, once, catch-up=last running the newest;
  - a retry: the ended attempt before it becomes the run's final row ("retry abandoned: ..."),
    a held write of that row's own id, its alert decided when it is written;
  - a manual run (a chain's downstream): nothing is recorded; one line says so.
- `check_trigger()`: a manual trigger is refused while the store is away (one line: it cannot
  get a row, so it cannot start).
- What was started before goes on: its pid, end, output excerpt and alert decision are held in
  order by the Store (each keyed by its row's own run_id: no provisional id on a shared store)
  and written when the database is back.
- `Store.on_back` wakes the scheduler, so the missed ticks are recorded at once.
- A supervisor stopped while run ends are still held keeps them on disk (Store.spool,
  store/heldwrites.py); `replay_held(history, crontab, bus, path)`, at the next start before the
  start-up sweep (recovery.py), writes them, each with its RunEnded (its alert decision).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from cronplus.engine.chain import TriggerRefused
from cronplus.engine.dagrun import Run
from cronplus.engine.events import Bus, RunEnded, from_backfill
from cronplus.engine.records import Records
from cronplus.engine.runstate import Event
from cronplus.engine.ticking import TICK_TRIGGERS, Ticker
from cronplus.model import Crontab, RunRecord
from cronplus.store.api import HistoryStore
from cronplus.store.storeguard import Store

log = logging.getLogger("cronplus")

AWAY = "its row cannot be inserted while the history database is away"


class Outage:
    def __init__(self, store: Store, ticker: Ticker, records: Records, wake: Callable[[], None]) -> None:
        self.store = store
        self.ticker = ticker
        self.records = records
        store.on_back = wake

    def not_started(self, run: Run, event: Event) -> None:
        """A run whose row could not be inserted (event.reason: the store's problem, logged once by it)."""
        if run.record is not None:  # a retry that cannot start: its ended attempt is final
            run.attempt, run.attempt_id = run.record.attempt, run.record.run_id
            run.record = self.records.abandon_retry(run, AWAY)
        elif run.trigger in TICK_TRIGGERS:
            self.ticker.unhandled(run)
            log.warning("job %s: tick %s not started: %s; recorded missed once it is back", run.job.name,
                        run.tick.isoformat(), AWAY)
        else:
            log.warning("job %s: %s run not started: %s", run.job.name, run.trigger, AWAY)

    def check_trigger(self) -> None:
        if self.store.away:
            raise TriggerRefused(f"cannot start a run now: {self.store.problem}; try again once it is back")


def replay_held(history: HistoryStore, crontab: Crontab, bus: Bus, path: Path) -> int:
    """The run ends a supervisor stopped with while its database was away (heldwrites.py), written
    with their RunEnded (a job gone from the crontab took its alerts with it, as in recovery.py)."""
    from cronplus.store.heldwrites import replay

    jobs = {job.name: job for job in crontab.jobs}

    def decide(record: RunRecord, will_retry: bool) -> None:
        job = jobs.get(record.job)
        if job is not None:
            bus.publish(RunEnded(job=job, record=record, will_retry=will_retry, backfill=from_backfill(record)))

    return replay(history, path, decide)
