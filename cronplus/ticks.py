"""What the scheduler persists between supervisor runs (History's kv table), split out of
scheduler.py:

* `LastTicks`: the last tick handled per job (`scheduler.last_ticks`, one JSON row written at
  most once per step, not once per job), so a restart records the ticks missed while down and
  never re-runs a tick already done (also after the clock went back).
* `new_boot(history)`: True once per boot per state dir (@reboot jobs), the boot id kept in kv.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
TICKS_KEY = "scheduler.last_ticks"  # kv: {"job": last tick handled, Unix s}


class LastTicks:
    def __init__(self, history: Any) -> None:
        self.history = history
        self.dirty = False
        try:
            self.ticks = {str(k): float(v) for k, v in json.loads(history.kv_get(TICKS_KEY) or "{}").items()}
        except (ValueError, AttributeError):
            self.ticks = {}

    def get(self, name: str) -> float | None:
        return self.ticks.get(name)

    def set(self, name: str, tick: float) -> None:
        self.ticks[name] = tick
        self.dirty = True

    def save(self) -> None:
        if self.dirty:
            self.history.kv_set(TICKS_KEY, json.dumps(self.ticks, sort_keys=True))
            self.dirty = False


def new_boot(history: Any) -> bool:
    """First call since this machine booted (for this state dir): @reboot jobs are due."""
    try:
        boot_id = BOOT_ID_FILE.read_text().strip()
    except OSError:
        boot_id = "unknown"
    if history.kv_get("boot_id") == boot_id:
        return False
    history.kv_set("boot_id", boot_id)
    return True
