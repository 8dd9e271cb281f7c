"""What the scheduler persists between supervisor runs (History's kv table), split out of
scheduler.py:

* `LastTicks`: the last tick handled per job (kv `scheduler.tick.<job>`, Unix s), so a restart
  records the ticks missed while down and never re-runs a tick already done (also after the
  clock went back). A tick is persisted in the same transaction as the row that handles it (the
  run's `running` row, or its skipped / missed row), never before: a supervisor killed between
  deciding a tick and writing its rows leaves that tick due, and the next start records it
  (missed) instead of dropping it. A job first seen gets a baseline (the instant it was first
  scheduled), so a tick after it that no row handled is seen missed too.
* `reboot_due(history, jobs)`: the @reboot jobs due at this start: all at the first start since
  the machine booted (per state dir, the boot id kept in kv), else those that a kill -9 kept
  from their row (marked with `reboot_ran` in the row's transaction): none twice, none lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronplus.store.api import KvReader
    from cronplus.store.storeguard import Ids, Store

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
TICK_PREFIX = "scheduler.tick."  # kv: one row per job, its last tick handled (Unix s)
LEGACY_TICKS_KEY = "scheduler.last_ticks"  # before: one JSON row for all jobs (still read)
REBOOT_PREFIX = "scheduler.reboot."  # kv: per @reboot job, "pending" this boot until its row exists


class LastTicks:
    """Read at start (from the Store: held writes included); `record` gives the kv entries the
    caller writes in the transaction of the rows that handle those ticks."""

    def __init__(self, store: KvReader) -> None:
        self.ticks: dict[str, float] = {}
        try:
            legacy = json.loads(store.kv_get(LEGACY_TICKS_KEY) or "{}")
            self.ticks = {str(k): float(v) for k, v in legacy.items()}
        except (ValueError, AttributeError):
            pass
        for key, value in store.kv_prefixed(TICK_PREFIX).items():
            try:
                name, tick = key[len(TICK_PREFIX):], float(value)
            except ValueError:
                continue
            self.ticks[name] = max(tick, self.ticks.get(name, tick))

    def get(self, name: str) -> float | None:
        return self.ticks.get(name)

    def record(self, handled: Iterable[tuple[str, float]]) -> list[tuple[str, str]]:
        """(job, tick) pairs whose rows the caller writes -> the kv entries to write with them."""
        items = []
        for name, tick in handled:
            if tick > self.ticks.get(name, float("-inf")):
                self.ticks[name] = tick
                items.append((TICK_PREFIX + name, repr(tick)))
        return items


    def forget(self, name: str, tick: float) -> None:
        """The rows handling `tick` were not written after all (a shared store away): a later
        `record` of it (its missed row) gives its kv entry again."""
        if self.ticks.get(name, float("-inf")) >= tick:
            self.ticks[name] = tick - 1.0


def reboot_scope(host: str, *, shared: bool) -> str:
    """The prefix of the @reboot kv keys: none on SQLite (one host), `host.<id>.` on a store
    several supervisors share (engine/claims.py): each host's boots are its own."""
    return f"host.{host}." if shared else ""


def reboot_due(store: Store, jobs: list[str], scope: str = "") -> list[str]:
    """The @reboot jobs to run at this start: every one at the first start since the machine
    booted (for this state dir), else only those whose run a kill -9 kept from getting its row
    (kv `scheduler.reboot.<job>` stays "pending" until `reboot_ran` is written with that row)."""
    try:
        boot_id = BOOT_ID_FILE.read_text().strip()
    except OSError:
        boot_id = "unknown"
    if store.kv_get(scope + "boot_id") != boot_id:
        def op(_: Ids) -> None:
            store.history.kv_set_many([(scope + "boot_id", boot_id),
                                       *((scope + REBOOT_PREFIX + name, "pending") for name in jobs)])

        store.write(op, lambda _: None, what="boot id", own_transaction=True)
        return jobs
    marks = store.kv_prefixed(scope + REBOOT_PREFIX)
    return [name for name in jobs if marks.get(scope + REBOOT_PREFIX + name) == "pending"]


def reboot_ran(names: Iterable[str], scope: str = "") -> list[tuple[str, str]]:
    """The kv entries saying these @reboot jobs have their row this boot (written with it)."""
    return [(scope + REBOOT_PREFIX + name, "ran") for name in names]
