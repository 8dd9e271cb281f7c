"""Time as an injectable dependency. The scheduler asks a Clock, never `time` directly, so tests
can move a FakeClock across minute boundaries, DST transitions and clock jumps instantly."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (jumps when the system clock is set)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; for durations and timeouts."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told. `advance` moves both clocks; `jump` only wall time."""

    def __init__(self, start: float) -> None:
        self._wall = float(start)
        self._mono = 1000.0
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._wall += seconds
            self._mono += seconds

    def jump(self, seconds: float) -> None:
        """The system clock was set: wall time moves, monotonic time does not."""
        with self._lock:
            self._wall += seconds
