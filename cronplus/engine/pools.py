"""Pool slots and the global cap (README "Pools": `# cronplus-pools: gpu=1`, `pool=NAME`,
`cronplus run --max-running N`): which runs may start now, and the first-come-first-served line
of those that may not. Pure bookkeeping on the scheduler's runs; no I/O, no clock of its own.

Contract (the scheduler's hook, runstate.py's POOLED rows):
- `gate(run, event) -> event` (scheduler._fire, before the transition): every START that does
  not come from POOLED asks `take(run)`. True: the run holds its slot (its pool's and the cap's)
  and starts; False: it is in line, and the event becomes ADMIT_POOL. A run in no pool, with no
  cap, is not tracked at all.
- `moved(run, before)`: after each state change (scheduler._fire), pools or not. Leaving POOLED,
  or QUEUED (overlap=queue, behind its job's run), adds how long it waited; its attempt's row gets
  the sum when spawned (`record_wait(run, seconds)`: runs.queued_s), a skipped row when it never starts. Leaving LAUNCHING/RUNNING (its attempt ended, or it was
  stopped before its spawn) gives its slot back; then, unless `stopping()` (shutdown starts
  nothing), `grant()` lets the next runs in, their slots already held, and `start(run)` each
  (the scheduler fires START: POOLED -> LAUNCHING), longest waiting first.
- `configure(sizes, cap)`: a reload's new sizes, then the runs it lets in are started (runs
  holding a slot keep it; a smaller pool lets none in until it is under its size).
- `positions() -> {run: (label, ahead)}`: for `jobs` and the control socket, O(queued);
  a manual trigger's run that gets no slot says where it waits in its chain's notes.

First come first served: each pool (and "no pool", for the cap) has its line, a deque of
(ticket, run); the next run let in is, among the heads whose pool has a free slot (and the cap
one), the one with the lowest ticket: the longest waiting. A run that leaves its line otherwise
(shutdown, reload) is dropped lazily when it reaches the head (its ticket no longer matches), so
each queued run costs O(1) amortised, plus O(pools) per slot freed: 1,000 runs in a pool of 1
drain in linear time (bench/bench_pools.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping

from cronplus.clock import Clock
from cronplus.engine.dagrun import Run
from cronplus.engine.runstate import Event, Kind, RunState
from cronplus.status import RunStatus, Trigger

NO_POOL = ""  # the line of runs in no pool, which only the cap holds back
ADMIT_POOL = Event(Kind.ADMIT_POOL)
_HOLDING = frozenset({RunState.LAUNCHING, RunState.RUNNING})


class Pools:
    def __init__(self, sizes: Mapping[str, int] | None = None, cap: int | None = None, *, clock: Clock,
                 start: Callable[[Run], None], record_wait: Callable[[Run, float], None],
                 stopping: Callable[[], bool]) -> None:
        self.clock = clock
        self.start = start
        self.record_wait = record_wait
        self.stopping = stopping
        self.sizes: dict[str, int] = dict(sizes or {})
        self.cap = cap
        self.used: dict[str, int] = {}  # pool -> runs holding one of its slots
        self.total = 0  # runs holding a slot (what the cap counts)
        self.holding: dict[Run, str] = {}  # run -> its line's key, while LAUNCHING or RUNNING
        self.lines: dict[str, deque[tuple[int, Run]]] = {}
        self.waiting: dict[Run, tuple[int, float, str]] = {}  # in line: run -> (ticket, since, its line)
        self.in_line: dict[str, int] = {}  # line -> its runs in `waiting` (a new run's "ahead": O(1))
        self.waited: dict[Run, float] = {}  # seconds the run's next attempt waited (its row's queued_s)
        self.queued_since: dict[Run, float] = {}  # overlap=queue: when the run entered QUEUED
        self._ticket = 0

    def __bool__(self) -> bool:
        """Anything to track: a pool, the cap, or runs still holding slots of a reload's old pools."""
        return bool(self.sizes or self.cap is not None or self.holding)

    def configure(self, sizes: Mapping[str, int], cap: int | None) -> None:
        self.sizes, self.cap = dict(sizes), cap
        self._let_in()

    def _key(self, run: Run) -> str | None:
        """The run's line, or None when nothing limits it."""
        pool = run.job.options.pool
        if pool is not None and pool in self.sizes:
            return pool
        return NO_POOL if self.cap is not None else None

    def _free(self, key: str) -> bool:
        if self.cap is not None and self.total >= self.cap:
            return False
        return key == NO_POOL or key not in self.sizes or self.used.get(key, 0) < self.sizes[key]

    def _hold(self, run: Run, key: str) -> None:
        self.holding[run] = key
        self.used[key] = self.used.get(key, 0) + 1
        self.total += 1

    def _head(self, key: str) -> tuple[int, Run] | None:
        """The first run still in `key`'s line (those that left are dropped here)."""
        line = self.lines.get(key)
        while line:
            ticket, run = line[0]
            if self.waiting.get(run, (None,))[0] == ticket:
                return line[0]
            line.popleft()
        return None

    def take(self, run: Run) -> bool:
        key = self._key(run)
        if key is None:
            return True
        if self._free(key) and self._head(key) is None:
            self._hold(run, key)
            return True
        self._ticket += 1
        self.lines.setdefault(key, deque()).append((self._ticket, run))
        self.waiting[run] = (self._ticket, self.clock.time(), key)
        self.in_line[key] = self.in_line.get(key, 0) + 1
        return False

    def gate(self, run: Run, event: Event) -> Event:
        """The event to fire: a START (not a granted one, from POOLED) that gets no slot is ADMIT_POOL."""
        if event.kind is Kind.START and run.state is not RunState.POOLED and self and not self.take(run):
            if run.state is RunState.NEW and run.trigger is Trigger.MANUAL and run.chain is not None:
                self._note(run, run.chain.notes)  # a manual trigger is answered with where it waits
            return ADMIT_POOL
        return event

    def moved(self, run: Run, before: RunState) -> None:
        if run.state is before:
            return
        self._time_wait(run, before)
        if not self or run.state in _HOLDING or run not in self.holding:
            return
        key = self.holding.pop(run)
        self.used[key] -= 1
        self.total -= 1
        self._let_in()

    def _time_wait(self, run: Run, before: RunState) -> None:
        """queued_s: the time in POOLED (a slot) and in QUEUED (overlap=queue: behind its job's
        run), on the row of the attempt that follows, or on the skipped row of one that never starts."""
        now = self.clock.time()
        if run.state is RunState.QUEUED:
            self.queued_since[run] = now
        elif before is RunState.QUEUED:
            self._add_wait(run, now - self.queued_since.pop(run, now))
        elif before is RunState.POOLED:
            entry = self.waiting.pop(run, None)
            if entry is not None:
                self._add_wait(run, now - entry[1])
                self.in_line[entry[2]] -= 1
        if run.state is RunState.RUNNING and before is RunState.LAUNCHING:
            self._record(run)
        elif run.state is RunState.FINAL:
            if run.record is not None and run.record.status is RunStatus.SKIPPED:
                self._record(run)  # it never started: its skipped row says how long it waited
            self.waited.pop(run, None)

    def _add_wait(self, run: Run, seconds: float) -> None:
        self.waited[run] = self.waited.get(run, 0.0) + seconds

    def _record(self, run: Run) -> None:
        seconds = self.waited.pop(run, None)
        if seconds is not None:
            self.record_wait(run, seconds)

    def _let_in(self) -> None:
        if not self.stopping():
            for run in self.grant():
                self.start(run)

    def grant(self) -> list[Run]:
        """The runs let in now (a slot freed, or a reload made room), longest waiting first."""
        granted: list[Run] = []
        while True:
            best: tuple[int, Run, str] | None = None
            for key in self.lines:
                head = self._head(key)
                if head is not None and self._free(key) and (best is None or head[0] < best[0]):
                    best = (head[0], head[1], key)
            if best is None:
                return granted
            _, run, key = best
            self.lines[key].popleft()
            self._hold(run, key)
            granted.append(run)

    def _note(self, run: Run, notes: list[str]) -> None:
        """Where a run just put in line waits: the last of its line (not positions(): O(queued)
        a trigger made 1,000 triggers into a pool O(n^2))."""
        key = self._key(run)
        line = "a slot" if key is None else f"pool {key}" if key != NO_POOL else f"--max-running {self.cap}"
        ahead = max(0, self.in_line.get(key, 1) - 1) if key is not None else 0
        notes.append(f"job {run.job.name} is queued for {line} ({ahead} ahead): it starts when a slot frees")
        pool = run.job.options.pool
        if pool is not None and self.sizes.get(pool) == 0:
            notes.append(f"pool {pool} has 0 slots: the run starts only once a reload gives it one")

    def positions(self) -> dict[Run, tuple[str, int]]:
        """Each queued run's line ("pool gpu", or "--max-running N") and how many are ahead of it."""
        out: dict[Run, tuple[str, int]] = {}
        for key, line in self.lines.items():
            label = f"pool {key}" if key != NO_POOL else f"--max-running {self.cap}"
            ahead = 0
            for ticket, run in line:
                if self.waiting.get(run, (None,))[0] == ticket:
                    out[run] = (label, ahead)
                    ahead += 1
        return out
