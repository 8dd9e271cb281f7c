"""Supervision of the scheduling task: its death by an unexpected exception (a bug in cronplus)
is never silent, and the watchdog is fed only while it lives.

Contract:
- `LoopWatch(notifier, on_death)`; `watch(task)` supervises the scheduling task. The task ends
  only at shutdown (`stopping()` True, or cancelled); any other end is a death: the traceback is
  logged at ERROR (a bug in us is the one place a traceback belongs in the journal), STATUS=
  says "scheduling loop died: <exception>", `died` holds that text, and `on_death()` is called
  (the daemon stops in order and exits 1).
- `feed_watchdog()` sends WATCHDOG=1 every `Notifier.watchdog_interval()` seconds while the
  watched task lives, and returns when it has ended: a scheduler that no longer schedules must
  not look alive to systemd (WatchdogSec then restarts the service, should the stop hang).

Why stop rather than restart the task in place: what the dead task left half done is unknown,
while a new process starts from history (the start-up sweep records interrupted runs, missed
ticks are recorded), the tested path. Exiting 1 lets Restart=on-failure restart the service;
outside systemd whatever runs us sees the failure instead of a supervisor idling forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("cronplus")


class LoopWatch:
    def __init__(self, notifier: Any, *, on_death: Callable[[], None],
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.notifier = notifier
        self.on_death = on_death
        self.stopping = stopping
        self.died: str | None = None
        self._task: asyncio.Task[Any] | None = None

    def watch(self, task: asyncio.Task[Any]) -> None:
        self._task = task
        task.add_done_callback(self._ended)

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def _ended(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or self.stopping():
            return
        exc = task.exception()
        self.died = f"scheduling loop died: {type(exc).__name__}: {exc}" if exc else "scheduling loop ended"
        log.error("%s: a bug in cronplus; stopping (exit 1) so that the service manager restarts it",
                  self.died, exc_info=exc)
        self.notifier.status(f"{self.died}; stopping to be restarted")
        self.on_death()

    async def feed_watchdog(self) -> None:
        interval = self.notifier.watchdog_interval()
        if not interval:
            return
        while self.alive:
            self.notifier.watchdog()
            await asyncio.sleep(interval)
