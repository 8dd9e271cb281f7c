"""Ctrl-C and SIGTERM for a command that runs jobs in its own process (`trigger` and `backfill`
with no supervisor running): `StopSignals` catches them on the event loop, so the command can
end its runs the supervisor's way (recorded `interrupted`, no grace); `StoppedBySignal` then says
so, with the shell's exit code for death by that signal, 128 + signum (130, 143).

May import: foundation.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from cronplus.errors import CronplusError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StoppedBySignal(CronplusError):
    def __init__(self, signum: int, final: dict[str, Any]) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum
        self.final = final


class StopSignals:
    """SIGINT/SIGTERM on `loop` set `event` and are kept in `got`, until `remove()`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.got: list[int] = []
        self.event = asyncio.Event()
        for sig in SIGNALS:
            loop.add_signal_handler(sig, self._caught, sig)

    def _caught(self, sig: int) -> None:
        self.got.append(sig)
        self.event.set()

    def name(self) -> str:
        """The first signal's name (call only once one was caught)."""
        return signal.Signals(self.got[0]).name

    def remove(self) -> None:
        for sig in SIGNALS:
            self.loop.remove_signal_handler(sig)
