"""Pause and resume (README, "Pause and resume"): which jobs are paused, since when and by whom, persisted in the
store's key-value table (store/api.py KeyValue: SQLite and PostgreSQL alike), so a pause
survives restarts and reloads.

* kv `pause.job.<name>`: `{"since": UNIX_S, "by": USER}` while the job is paused, "" once
  resumed (the kv table has no delete); kv `pause.all`: the same for the global pause (a
  maintenance window: every job's ticks).
* `Pauses.read(kv)` loads them (one kv range read, `pause.`): the supervisor at start
  (ticking.Ticker), and on a shared store again before each step with a tick due (another
  host's pause, a `--db` command's: ticking.Ticker.due), and every reader (`jobs`, `log`,
  `why`, the API, /metrics). `newly_paused(before)`: what is paused here that was not.
* `pause(names, by, now)` / `resume(names)` (names None: the global pause) change the loaded
  state and return the kv entries the caller writes: the supervisor through its Store, a
  command with no supervisor running straight into the store (a supervisor on that store reads
  it at start; one on a shared store also before its next tick).
* `of(name)` -> the `Pause` that holds a job (its own, else the global one), or None.

A paused job's ticks are skipped by the ticker (not run, no row each); its runs not yet started
are ended by runstate's PAUSED event; a manual trigger still runs it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cronplus.store.api import KvReader

PREFIX = "pause."  # every key below: one range read
JOB_PREFIX = "pause.job."
ALL_KEY = "pause.all"


@dataclass(frozen=True, slots=True)
class Pause:
    since: float  # Unix seconds
    by: str  # the user who paused
    everything: bool = False  # the global pause (`pause --all`)

    @property
    def shown(self) -> str:
        """"paused since 2026-12-02 02:10:00+00:00 (by alice)"; "all paused ..." for --all."""
        when = datetime.fromtimestamp(self.since, UTC).astimezone().isoformat(" ", "seconds")
        return f"{'all jobs paused' if self.everything else 'paused'} since {when} (by {self.by})"

    def to_json(self) -> dict[str, Any]:
        return {"paused": True, "paused_since": datetime.fromtimestamp(self.since, UTC).astimezone().isoformat(),
                "paused_by": self.by, "paused_all": self.everything}


NOT_PAUSED: dict[str, Any] = {"paused": False, "paused_since": None, "paused_by": None, "paused_all": False}


def _parse(value: str | None, *, everything: bool = False) -> Pause | None:
    if not value:
        return None
    try:
        data = json.loads(value)
        return Pause(since=float(data["since"]), by=str(data["by"]), everything=everything)
    except (ValueError, KeyError, TypeError):
        return None  # a value we did not write: not a pause


def _value(pause: Pause | None) -> str:
    return json.dumps({"since": pause.since, "by": pause.by}) if pause is not None else ""


class Pauses:
    def __init__(self, jobs: dict[str, Pause] | None = None, everything: Pause | None = None) -> None:
        self.jobs = jobs or {}
        self.everything = everything

    @classmethod
    def read(cls, kv: KvReader) -> Pauses:
        entries = kv.kv_prefixed(PREFIX)
        jobs = {}
        for key, value in entries.items():
            pause = _parse(value) if key.startswith(JOB_PREFIX) else None
            if pause is not None:
                jobs[key[len(JOB_PREFIX):]] = pause
        return cls(jobs, _parse(entries.get(ALL_KEY), everything=True))

    def newly_paused(self, before: Pauses) -> list[str]:
        """The jobs paused by name here and not in `before`, and "--all" for a global pause new here."""
        new = sorted(name for name in self.jobs if name not in before.jobs)
        return [*new, "--all"] if self.everything is not None and before.everything is None else new

    def of(self, name: str) -> Pause | None:
        return self.jobs.get(name) or self.everything

    def pause(self, names: Iterable[str] | None, by: str, now: float) -> list[tuple[str, str]]:
        """Pause `names` (None: all); a job already paused keeps its first pause (since, by)."""
        if names is None:
            if self.everything is None:
                self.everything = Pause(since=now, by=by, everything=True)
            return [(ALL_KEY, _value(self.everything))]
        items = []
        for name in names:
            pause = self.jobs.setdefault(name, Pause(since=now, by=by))
            items.append((JOB_PREFIX + name, _value(pause)))
        return items

    def resume(self, names: Iterable[str] | None) -> list[tuple[str, str]]:
        """Resume `names` (None: lift the global pause; each job's own pause stays)."""
        if names is None:
            self.everything = None
            return [(ALL_KEY, "")]
        items = []
        for name in names:
            self.jobs.pop(name, None)
            items.append((JOB_PREFIX + name, ""))
        return items
