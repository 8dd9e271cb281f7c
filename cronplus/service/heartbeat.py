"""The supervisor's lease in a cluster (a PostgreSQL store shared by several supervisors;
store/leases.py has the SQL, docs/cluster.md the rules for users). Nothing of it runs on
SQLite: `start_lease` returns None there and the single-host path does no more than before.

- `Heartbeat`: a thread of its own with a connection of its own (the event loop, however busy,
  cannot hold a beat back): registers the owner id, then every lease/4 renews heartbeat_at =
  the database's now() and records this host's clock skew (its clock, less the clock's known
  shift from real time `Settings.clock_shift_s`, minus the database's now()). It tells its
  `Listener` (called on the heartbeat thread):
  - `lost(why, owner)`: the lease is gone: our row was taken, or expired before a beat renewed it
    (the UPDATE renewed nothing), or no beat succeeded for a whole lease on our monotonic clock
    (`check_lapse`, also run from the loop, so a host that was stopped past its lease notices at
    once). A new owner id is registered at once when the database answers (`owner`; else None,
    and the next beat retries).
  - `expired(owner)`: another host's row is past its lease. Only once our own heartbeat has been
    renewed without a break for at least a lease: after a database outage every heartbeat looks
    stale, and a host that just got through again must not take over hosts that merely could
    not beat either (a break: a failed beat, or two successes further apart than half a lease).
  - `skewed(skew_s)` when the skew goes above MAX_SKEW_S (and `skewed(None)` back under it).
- `Lease` (the loop's side): carries those out on the loop's thread: fence (engine/takeover.py:
  kill what runs, record none of it) and re-own; take the expired host over (one transaction,
  its alerts decided in it); while the clock is skewed or no lease is held, refuse to claim
  ticks (`Ticker.refusing`: the ticks pass without a run or a row; manual triggers still run,
  their rows claim no tick). `problem` says why, for STATUS= and /healthz; logged once per change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cronplus.clock import Clock
    from cronplus.engine.scheduler import Scheduler
    from cronplus.store.leases import LeaseDb, Leases

log = logging.getLogger("cronplus")

MAX_SKEW_S = 5.0  # a clock further than this from the database's refuses to claim ticks
DEFAULT_LEASE_S = 60.0


class Listener(Protocol):
    def lost(self, why: str, owner: str | None) -> None: ...
    def expired(self, owner: str) -> None: ...
    def skewed(self, skew_s: float | None) -> None: ...


class Heartbeat:
    def __init__(self, leases: Leases, listener: Listener, *, owner: str, new_owner: Callable[[], str],
                 lease_s: float, clock: Clock, shift_s: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.leases = leases
        self.listener = listener
        self.owner = owner
        self.new_owner = new_owner
        self.lease_s = lease_s
        self.interval = lease_s / 4
        self.clock = clock
        self.shift_s = shift_s
        self.monotonic = monotonic
        self.beats = 0  # successful ones (tests, the bench)
        self.skew_s: float | None = None
        self.valid_until = float("inf")  # monotonic: the lease surely holds until then
        self._lock = threading.Lock()
        self._lost = False  # told `lost`; a new owner id is registered by the next beat that can
        self._since: float | None = None  # monotonic start of the unbroken run of renewals
        self._last_ok: float | None = None
        self._failing = False
        self._skewed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: LeaseDb | None = None

    def _local(self) -> float:
        return self.clock.time() - self.shift_s

    def start(self, *, thread: bool = True) -> None:
        """Register (on the caller's thread: a database that does not answer is the caller's
        error), then beat on a thread of its own (without `thread`, whoever calls `beat()`)."""
        self._db = self.leases.connect()
        sent = self.monotonic()
        registered = self._db.register(self.owner, lease_s=self.lease_s, local_time=self._local())
        self._renewed(sent)
        self._skew(registered.skew_s)  # before the first tick: a skewed host claims none
        if thread:
            self._thread = threading.Thread(target=self._run, name="cronplus-heartbeat", daemon=True)
            self._thread.start()

    def stop(self, *, leave: bool = True) -> None:
        """Stop beating; `leave`: remove our row (a clean stop: every run of ours is recorded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._db is not None:
            try:
                if leave and not self._lost:
                    self._db.leave(self.owner)
            except Exception as exc:  # noqa: BLE001 - the row expires by itself; a stop must not fail on it
                log.warning("lease: could not remove this host's row (%s); it expires by itself", exc)
            self._db.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        """One heartbeat (the thread's loop; tests call it directly)."""
        assert self._db is not None
        sent = self.monotonic()
        try:
            if self._lost:
                self._reregister(sent, "")
                return
            beat = self._db.beat(self.owner, local_time=self._local())
        except Exception as exc:  # noqa: BLE001 - the database away, or any driver error: the beat failed
            self._failed(exc)
            return
        if beat.lost is not None:
            self._lose(beat.lost, sent)
            return
        self._renewed(sent)
        self._skew(beat.skew_s)
        if self._since is not None and sent - self._since >= self.lease_s:
            try:
                expired = self._db.expired(self.owner)
            except Exception as exc:  # noqa: BLE001
                self._failed(exc)
                return
            for owner in expired:
                self.listener.expired(owner)

    def check_lapse(self) -> None:
        """No beat renewed the lease for a whole lease (monotonic): it is lost (the loop calls
        this too: a thread may be starved, a host stopped, a connection hang)."""
        if self.monotonic() > self.valid_until:
            self._lose(f"no heartbeat renewed its lease for {self.lease_s:g}s", None)

    def _renewed(self, sent: float) -> None:
        with self._lock:
            if self._failing:
                log.info("lease: heartbeat renewed again")
                self._failing = False
            if self._last_ok is None or self._since is None or sent - self._last_ok > self.lease_s / 2:
                self._since = sent  # a break: the unbroken run starts again
            self._last_ok = sent
            self.valid_until = sent + self.lease_s  # the database's heartbeat_at is at or after `sent`
            self.beats += 1

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self._since = None
            if not self._failing:
                log.warning("lease: heartbeat failed (%s); retrying every %gs", exc, self.interval)
                self._failing = True
        self.check_lapse()

    def _lose(self, why: str, sent: float | None) -> None:
        with self._lock:
            if self._lost:
                return
            self._lost = True
            self._since = None
            self.valid_until = float("-inf")
        owner = None
        if sent is not None:  # the database answers: a new lease at once
            owner = self._reregister(sent, why)
            if owner is not None:
                return
        self.listener.lost(why, None)

    def _reregister(self, sent: float, why: str) -> str | None:
        """A new owner id and its row; tells the listener (lost, with it). None: not now."""
        assert self._db is not None
        owner = self.new_owner()
        try:
            registered = self._db.register(owner, lease_s=self.lease_s, local_time=self._local())
        except Exception as exc:  # noqa: BLE001 - the database away: the next beat tries again
            self._failed(exc)
            return None
        with self._lock:
            self.owner, self._lost = owner, False
        self._renewed(sent)
        self.listener.lost(why, owner)
        self._skew(registered.skew_s)
        return owner

    def _skew(self, skew_s: float | None) -> None:
        self.skew_s = skew_s
        skewed = skew_s is not None and abs(skew_s) > MAX_SKEW_S
        if skewed != self._skewed:
            self._skewed = skewed
            self.listener.skewed(skew_s if skewed else None)


class Lease:
    """The loop's side of the heartbeat (see the module docstring)."""

    def __init__(self, scheduler: Scheduler, loop: asyncio.AbstractEventLoop, leases: Leases, *,
                 on_change: Callable[[], None]) -> None:
        self.scheduler = scheduler
        self.loop = loop
        self.leases = leases
        self.on_change = on_change
        self.skew_s: float | None = None
        self.no_lease: str | None = None
        self.heartbeat: Heartbeat | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def problem(self) -> str | None:
        """Why this host claims no tick now (None: it does), for STATUS= and /healthz."""
        if self.no_lease is not None:
            return f"no lease ({self.no_lease}): claiming no ticks"
        if self.skew_s is not None:
            return (f"clock skew {self.skew_s:+.1f}s from the database's (over {MAX_SKEW_S:g}s):"
                    " claiming no ticks until it is back under")
        return None

    def _refuse(self) -> None:
        self.scheduler.ticker.refusing = self.problem
        self.on_change()

    def _soon(self, fn: Callable[..., None], *args: object) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: we are stopping
            pass

    # The Listener (called on the heartbeat thread): each carried out on the loop.
    def lost(self, why: str, owner: str | None) -> None:
        self._soon(self._lost, why, owner)

    def expired(self, owner: str) -> None:
        self._soon(self._take, owner)

    def skewed(self, skew_s: float | None) -> None:
        self._soon(self._skewed, skew_s)

    def _lost(self, why: str, owner: str | None) -> None:
        from cronplus.engine.takeover import fence, reown

        if why:
            fence(self.scheduler, why)
        if owner is not None:
            reown(self.scheduler, owner)
            log.warning("lease: registered again as %s", owner)
            self.no_lease = None
        else:
            self.no_lease = why
        self._refuse()

    def _take(self, owner: str) -> None:
        from cronplus.engine.takeover import take_over
        from cronplus.store.faults import is_storage_error

        if self.scheduler.stopping:  # its retries would start in a supervisor that stops: leave it to the others
            return
        try:
            take_over(self.scheduler, self.leases, owner)
        except Exception as exc:
            if not is_storage_error(exc):  # the database away: the next beat finds it again
                log.exception("lease: taking over %s failed", owner)

    def _skewed(self, skew_s: float | None) -> None:
        if skew_s is not None:
            log.error("clock skew: this host's clock is %+.1fs from the database's (over %gs): it claims no"
                      " ticks until they agree (fix its time sync: chrony, systemd-timesyncd)", skew_s, MAX_SKEW_S)
        elif self.skew_s is not None:
            log.warning("clock skew back under %gs: claiming ticks again", MAX_SKEW_S)
        self.skew_s = skew_s
        self._refuse()

    def _check(self) -> None:
        assert self.heartbeat is not None
        self.heartbeat.check_lapse()
        self._timer = self.loop.call_later(self.heartbeat.interval, self._check)

    def start(self, heartbeat: Heartbeat) -> None:
        self.heartbeat = heartbeat
        heartbeat.start()
        self._timer = self.loop.call_later(heartbeat.interval, self._check)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.heartbeat is not None:
            self.heartbeat.stop()


def start_lease(scheduler: Scheduler, db: str | os.PathLike[str], history: object, *, owner: str, new_owner: Callable[[], str],
                lease_s: float, clock: Clock, shift_s: float, on_change: Callable[[], None]) -> Lease | None:
    """The supervisor's lease on a shared store (registered before it returns), None on SQLite."""
    from cronplus.store.leases import leases_for

    leases = leases_for(db, history)
    if leases is None:
        return None
    lease = Lease(scheduler, asyncio.get_running_loop(), leases, on_change=on_change)
    lease.start(Heartbeat(leases, lease, owner=owner, new_owner=new_owner, lease_s=lease_s, clock=clock,
                          shift_s=shift_s))
    return lease
