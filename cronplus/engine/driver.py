"""The scheduler's driver (a mixin of scheduler.Scheduler): the serve loop and its state.

* `serve()`: step, start what it launched (launcher.py: rows, then attempts back to back, a
  chunk per yield), then sleep exactly until the next due instant (capped at
  scheduler.MAX_SLEEP_S so clock changes and suspends are noticed) or until `wake()` (reload,
  trigger, run end, signal). No polling: idle costs one wake-up per minute at most. Without a
  driver, every entry point (step, trigger, a run's end, a retry's timer) starts what it
  launched before it returns (`_launched`).
* `wait_idle()`: until no run is in flight.
* `shutdown(grace, reason)`: STOP every run, wait `grace` for the running ones, INTERRUPT the rest.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from cronplus.engine import events, policy
from cronplus.engine.runstate import Event, Kind
from cronplus.status import RunStatus

if TYPE_CHECKING:
    from cronplus.clock import Clock
    from cronplus.engine.dagrun import Run
    from cronplus.engine.launcher import Launcher
    from cronplus.engine.sensors import Sensors
    from cronplus.engine.ticking import Ticker

log = logging.getLogger("cronplus")


class Host(Protocol):
    """What the driver takes of its scheduler (scheduler.Scheduler), said here: no import circle."""

    clock: Clock
    launcher: Launcher
    ticker: Ticker
    sensors: Sensors
    bus: events.Bus
    runs: dict[Run, None]
    stopping: bool
    stop_reason: str
    _event: asyncio.Event
    _served: bool

    def step(self, now: float) -> None: ...
    def next_wake(self, now: float) -> float: ...
    def _fire(self, run: Run, event: Event) -> None: ...
    def wake(self) -> None: ...


class Driver:
    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._served = False  # serve() runs: it starts what was launched, a chunk per yield

    def _launched(self: Host) -> None:
        """An entry point outside step() launched runs: the driver starts them, else now."""
        if not self.launcher:
            return
        if self._served:
            self.wake()
        else:
            self.launcher.flush()

    def wake(self) -> None:
        self._event.set()

    async def serve(self: Host) -> None:
        """Step, sleep until the next due instant or a wake(); until shutdown() is called."""
        self._served = True
        try:
            while not self.stopping:
                self._event.clear()
                now = self.clock.time()
                self.step(now)
                await self.launcher.launch_all()
                self.ticker.settle(now)
                self.bus.publish(events.Stepped(now=now))  # after-commit subscribers: the daemon's STATUS=
                try:
                    await asyncio.wait_for(self._event.wait(), timeout=policy.approach(self.next_wake(self.clock.time())))
                except TimeoutError:
                    pass
        finally:
            self._served = False
            self.launcher.flush()

    async def wait_idle(self: Host) -> None:
        while self.runs:
            await asyncio.gather(*(r.done.wait() for r in list(self.runs)))

    async def shutdown(self: Host, grace: float, reason: str = "supervisor shutdown") -> None:
        """Stop starting runs (STOP: what has not started is recorded `skipped`, a pending
        retry's ended attempt final); give running ones `grace` seconds, then cancel them
        (INTERRUPT: recorded `interrupted`, `reason`). Every run ends recorded."""
        self.stopping = True
        self.stop_reason = reason
        self.wake()
        self.launcher.supervise_started()  # a tick being launched: its runs started so far run
        stop = Event(Kind.STOP, reason=reason)
        for run in [*self.launcher.take_queued(), *self.runs]:
            self._fire(run, stop)
        active = [r.task for r in self.runs if r.task is not None]
        if active:
            log.info("shutdown: waiting up to %gs for %d run(s)", grace, len(active))
            await asyncio.wait(active, timeout=grace)
        interrupt = Event(Kind.INTERRUPT, reason=reason, status=RunStatus.INTERRUPTED)
        for run in list(self.runs):
            self._fire(run, interrupt)
        rest = [r.task for r in self.runs if r.task is not None] + list(self.sensors.probes)  # probes STOP stopped
        if rest:
            await asyncio.wait(rest)
