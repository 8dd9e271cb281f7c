"""engine/pools.Pools on its own: the lines, the cap, lazy removal and re-queueing (the real
scheduler's use is tests/test_pools.py). Runs are dagrun.Run over parsed jobs; states are set
as the scheduler's transitions would set them."""

from __future__ import annotations

from cronplus.clock import FakeClock
from cronplus.crontab.parser import parse_crontab
from cronplus.engine.dagrun import Run, utc
from cronplus.engine.pools import Pools
from cronplus.engine.runstate import RunState
from cronplus.status import Trigger

S = RunState


class Line:
    def __init__(self, text: str, sizes: dict[str, int], cap: int | None = None) -> None:
        self.jobs = {j.name: j for j in parse_crontab(text, path="c", system=False).jobs}
        self.clock = FakeClock(1000.0)
        self.started: list[str] = []
        self.waits: list[tuple[str, float]] = []
        self.stopping = False
        self.pools = Pools(sizes, cap, clock=self.clock, start=self._start,
                           record_wait=lambda run, s: self.waits.append((run.job.name, s)), stopping=lambda: self.stopping)

    def _start(self, run: Run) -> None:  # as _fire(run, START): POOLED -> LAUNCHING
        self.started.append(run.job.name)
        self.move(run, S.LAUNCHING)

    def move(self, run: Run, state: RunState) -> None:
        before, run.state = run.state, state
        self.pools.moved(run, before)

    def due(self, name: str) -> Run:
        run = Run(self.jobs[name], utc(self.clock.time()), Trigger.SCHEDULE)
        self.move(run, S.LAUNCHING if self.pools.take(run) else S.POOLED)
        return run


JOBS = "".join(f"# cronplus: name={n} pool={p}\n* * * * * true\n" for n, p in
               [("g1", "gpu"), ("g2", "gpu"), ("g3", "gpu"), ("d1", "db"), ("d2", "db")]) + \
    "# cronplus-pools: gpu=1 db=1\n# cronplus: name=free\n* * * * * true\n"


def test_a_full_pool_does_not_hold_back_another_pools_runs() -> None:
    w = Line(JOBS, {"gpu": 1, "db": 1})
    g1, g2, d1 = w.due("g1"), w.due("g2"), w.due("d1")
    assert (g1.state, g2.state, d1.state) == (S.LAUNCHING, S.POOLED, S.LAUNCHING)
    assert w.due("free").state is S.LAUNCHING  # no pool, no cap: not counted


def test_the_cap_lets_in_the_longest_waiting_run_of_any_line() -> None:
    w = Line(JOBS, {"gpu": 1, "db": 1}, cap=1)
    g1 = w.due("g1")
    d1, g2, d2 = w.due("d1"), w.due("g2"), w.due("d2")
    assert [r.state for r in (d1, g2, d2)] == [S.POOLED] * 3
    assert w.pools.positions() == {d1: ("pool db", 0), g2: ("pool gpu", 0), d2: ("pool db", 1)}
    w.clock.jump(5)
    w.move(g1, S.FINAL)
    assert w.started == ["d1"] and w.waits == []
    w.move(d1, S.RUNNING)  # spawned: its row gets the wait
    assert w.waits == [("d1", 5.0)]
    w.move(d1, S.FINAL)
    w.move(w.due("free"), S.FINAL)  # in no pool, yet under the cap: queued behind g2 and d2, let in last
    assert w.started == ["d1", "g2"]


def test_a_run_that_leaves_its_line_is_skipped_and_a_retry_queues_again_at_the_back() -> None:
    w = Line(JOBS, {"gpu": 1, "db": 1})
    g1, g2, g3 = w.due("g1"), w.due("g2"), w.due("g3")
    w.move(g2, S.FINAL)  # stopped while queued (shutdown, reload): its skipped row has no record here
    w.move(g1, S.RUNNING)
    w.move(g1, S.RETRY_WAIT)  # the attempt ended: a retry's wait gives the slot back
    assert w.started == ["g3"]
    w.move(g1, S.LAUNCHING if w.pools.take(g1) else S.POOLED)  # the retry is due: it queues again
    assert g1.state is S.POOLED and w.pools.positions() == {g1: ("pool gpu", 0)}
    w.move(g3, S.RUNNING)
    w.move(g3, S.FINAL)
    assert w.started == ["g3", "g1"]


def test_at_shutdown_a_freed_slot_lets_no_one_in() -> None:
    w = Line(JOBS, {"gpu": 1, "db": 1})
    g1, g2 = w.due("g1"), w.due("g2")
    w.stopping = True
    w.move(g1, S.FINAL)
    assert w.started == [] and g2.state is S.POOLED


def test_a_reload_that_drops_the_pool_lets_its_queued_runs_in() -> None:
    w = Line(JOBS, {"gpu": 1, "db": 1})
    w.due("g1")
    w.due("g2")
    w.due("g3")
    w.pools.configure({"db": 1}, None)
    assert w.started == ["g2", "g3"]
