"""The run ends of one loop pass written in one transaction: a commit per run end was most of
what history records lagged behind a bare loop's at a 1,000-job tick (docs/BENCHMARKS.md).

Contract:
* `await EndBatch.written(run, event)` (Scheduler._attempt, before it fires the event): for an
  ENDED / ENDED_RETRY of a RUNNING run (runstate.py: their effect is RECORD_END; the row's
  `final` is ENDED's), the run joins the loop pass's batch; once the pass's other callbacks ran,
  `Records.prewrite` writes the batch's end rows, each with its RunEnded (so its alert decision)
  in the same transaction, and the awaiting tasks go on: each fires its event, whose RECORD_END
  takes the record written (Records.ended). The state machine continues each run after the
  commit, so what it wakes (`trigger --wait`, a chain's `done`, `log` run right after) sees the row.
* A batch of one, held writes (a full disk) or any failure of the shared transaction: nothing
  is kept from it and each run's `ended` writes its own row as before (held, or raising into
  its own task).
* A run stays RUNNING (its task awaits) until its end is fired: shutdown's grace waits for it.
"""

from __future__ import annotations

import asyncio

from cronplus.engine.dagrun import Run
from cronplus.engine.records import Records
from cronplus.engine.runstate import Event, Kind, RunState


class EndBatch:
    def __init__(self, records: Records) -> None:
        self.records = records
        self.pending: list[tuple[Run, Event, asyncio.Future[None]]] = []

    async def written(self, run: Run, event: Event) -> None:
        """Returns once the run's end row is written with its pass's others (or left to `ended`)."""
        if run.state is not RunState.RUNNING or event.kind not in (Kind.ENDED, Kind.ENDED_RETRY):
            return
        loop = asyncio.get_running_loop()
        if not self.pending:
            loop.call_soon(self._write)  # after the callbacks ready now: the ends of this pass
        done = loop.create_future()
        self.pending.append((run, event, done))
        await done

    def _write(self) -> None:
        batch, self.pending = self.pending, []
        try:
            self.records.prewrite([(run, event.result, event.outcome, event.kind is Kind.ENDED)
                                   for run, event, _ in batch if event.result is not None and event.outcome is not None])
        finally:
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)
