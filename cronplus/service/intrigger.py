"""`cronplus trigger` with no supervisor running (`trigger_in_process`): the same Scheduler,
History, runner and Alerting as `cronplus run`, without scheduling ticks; `UnknownJob` (one line
with did-you-mean) and `TriggerInterrupted` (Ctrl-C / SIGTERM: the run recorded `interrupted`).

May import: foundation, crontab, store, engine, alerts, service.daemon (load, owner_id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cronplus.clock import SystemClock
from cronplus.engine.scheduler import Scheduler
from cronplus.errors import CronplusError
from cronplus.paths import Paths
from cronplus.service import remotes
from cronplus.service.control import suggest
from cronplus.service.daemon import load, owner_id
from cronplus.service.stopsignals import StoppedBySignal, StopSignals

if TYPE_CHECKING:
    from cronplus.engine.dagrun import Chain, Run


def trigger_in_process(paths: Paths, name: str, *, force: bool = False, params: tuple[tuple[str, str], ...] = (),
                       on_started: Callable[[Run], None] | None = None,
                       on_event: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """`cronplus trigger` with no supervisor: the same Scheduler code path (history, runner,
    alerts, downstream chain and its events), no ticks; returns the chain's done message.
    Raises chain.TriggerRefused when after= does not allow the run (and not `force`)."""
    from cronplus.alerts.alerting import Alerting
    from cronplus.alerts.delivery import DeliveryWorker
    from cronplus.rundir import outputs_dir_of
    from cronplus.store.open import open_writer

    crontab = load(paths)
    job = crontab.job(name)
    if job is None:
        raise UnknownJob(name, [j.name for j in crontab.jobs])
    if job.options.queue:  # its attempts go through a broker, which only `cronplus run --broker` has
        raise CronplusError(f"job {name} has queue={job.options.queue}: trigger it through the running supervisor"
                            " (cronplus run --broker URL)")

    async def main() -> dict[str, Any]:
        history = open_writer(paths.db)
        worker = DeliveryWorker(paths.db)
        try:
            alerting = Alerting(history, wake=worker.wake)
            outputs = outputs_dir_of(paths)  # a runtime dir (tmpfs) when there is one
            scheduler = Scheduler(crontab, history=history, alerting=alerting, log_dir=paths.log_dir,
                                  owner=owner_id(), scheduling=False, outputs_dir=outputs,
                                  executor=remotes.executor(
                                      history=history, broker=None, log_dir=paths.log_dir,
                                      outputs_dir=outputs, clock=SystemClock()))  # queue=: fails, said so
            loop = asyncio.get_running_loop()
            signals = StopSignals(loop)  # before the row exists: no run is left `running`
            serve = loop.create_task(scheduler.serve())
            try:
                run = scheduler.trigger(name, force=force, params=params)
            except BaseException:
                scheduler.stopping = True
                scheduler.wake()
                await serve
                scheduler.store.close()
                raise
            worker.start()  # after the run's first write: a corrupt history.db is one line, not a thread's
            assert run.chain is not None
            if on_started is not None:
                on_started(run)
            final: dict[str, Any] = {}

            async def follow(chain: Chain) -> None:
                async for event in chain.events():
                    if event.get("done"):
                        final.update(event)
                    elif on_event is not None:
                        on_event(event)

            following = loop.create_task(follow(run.chain))
            stopped = loop.create_task(signals.event.wait())
            await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if signals.got:  # Ctrl-C / SIGTERM: the same cancel path as a supervisor's shutdown, no grace
                await scheduler.shutdown(0.0, f"trigger stopped by {signals.name()}")
                await following  # every run of the chain is final now: its events are out
            stopped.cancel()
            scheduler.stopping = True
            scheduler.wake()
            await serve
            scheduler.store.close()
            if signals.got:
                raise TriggerInterrupted(signals.got[0], final)
            return final
        finally:
            worker.stop(timeout=5.0)
            history.close()

    return asyncio.run(main())


class TriggerInterrupted(StoppedBySignal):
    """An in-process trigger got SIGINT/SIGTERM; its run was cancelled and recorded `interrupted`."""


class UnknownJob(CronplusError):
    def __init__(self, name: str, names: list[str]) -> None:
        hint = suggest(name, names)
        super().__init__(f"no job named '{name}'" + (f" (did you mean '{hint}'?)" if hint else ""))
