"""`cronplus run`: wiring of the supervisor. Lock, load, READY=1, serve; signals, file watch
(watchdog on the crontab's directory: editors replace files by rename), parse-then-swap reload,
control socket (answered by service/commands.py's Commands facade), retention timer, delivery
worker, systemd notify; orderly shutdown.
Run events (engine/events.py): one `bus`; alerting its transactional subscriber, `stats` (the
/metrics counters) and STATUS= after-commit ones; the delivery's AlertSettled goes via the loop.

`cronplus trigger` with no supervisor running: service/intrigger.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cronplus.clock import Clock, SystemClock
from cronplus.engine import events
from cronplus.engine.orphans import OrphanReaper
from cronplus.engine.scheduler import Scheduler
from cronplus.errors import CronplusError, CrontabError, capped, escape
from cronplus.model import Crontab, JobOptions
from cronplus.paths import Paths
from cronplus.service import remotes
from cronplus.service.commands import Commands
from cronplus.service.control import ControlServer, SupervisorLock
from cronplus.service.crontabwatch import stop_watching, watch_crontab
from cronplus.service.loopwatch import LoopWatch
from cronplus.service.serving import NO_HTTP, HttpServing
from cronplus.service.stats import RunStats

if TYPE_CHECKING:
    from cronplus.service.heartbeat import Lease

log = logging.getLogger("cronplus")

RELOAD_DEBOUNCE_S = 0.15  # an editor's save is several file events; reload once after them
PRUNE_INTERVAL_S = 300.0  # each prune does bounded work (retention.py): a backlog goes in steps


@dataclass(frozen=True, kw_only=True)
class Settings:
    paths: Paths
    shutdown_grace: float = 30.0
    max_age_s: float | None = None
    max_runs_per_job: int | None = None
    max_log_bytes: int | None = None
    clock: Clock | None = None  # the scheduler's; tests shift it to reach a minute's tick at once
    mailer: str | None = None  # `--mailer CMD` (mail.py); None: $CRONPLUS_MAILER, else sendmail
    http: HttpServing = NO_HTTP  # `--http HOST:PORT` (web/mount.py); by default nothing is served or imported
    max_running: int | None = None  # `--max-running N`: runs of all jobs at once (engine/pools.py)
    host_id: str | None = None  # `--host-id ID`: this supervisor's name in a cluster; None: the host name
    lease_s: float = 60.0  # `--lease DURATION`: a shared store's heartbeat lease (service/heartbeat.py)
    clock_shift_s: float = 0.0  # how far `clock` is from real time on purpose (tests); the skew check subtracts it
    broker: str | None = None  # `--broker URL`: Celery's broker for queue= jobs (service/remotes.py)


def owner_id(host: str | None = None) -> str:
    """This supervisor's id (runs.owner): unique per process start, led by its host id."""
    return f"{host or socket.gethostname()}:{os.getpid()}:{int(time.time())}"


def load(paths: Paths) -> Crontab:
    """Parse the crontab; a missing file is an empty crontab (the supervisor waits for one)."""
    from cronplus.crontab.parser import load_crontab

    if not paths.crontab.exists():
        return Crontab(path=str(paths.crontab), system=paths.system, jobs=(), defaults=JobOptions())
    return load_crontab(paths.crontab, system=paths.system)


def missing_crontab(paths: Paths) -> str:
    """The warning for a supervisor started (or reloaded) on a crontab that does not exist."""
    return f"crontab {escape(str(paths.crontab))} does not exist: running 0 jobs until it appears"


class Daemon:
    def __init__(self, settings: Settings, crontab: Crontab) -> None:
        from cronplus.service.systemd import Notifier

        self.settings = settings
        self.paths = settings.paths
        self.crontab = crontab
        self.notifier = Notifier.from_env()
        self.stop_event = asyncio.Event()
        self.loopwatch = LoopWatch(self.notifier, on_death=self._loop_died, stopping=self.stop_event.is_set)
        self._reload_handle: asyncio.TimerHandle | None = None
        self._file_sig: tuple[float, int] | None = self._signature()
        self.crontab_missing = not self.paths.crontab.exists()
        self.exit_code = 0
        self.stats = RunStats()
        self.lease: Lease | None = None  # a shared store's heartbeat (service/heartbeat.py); None on SQLite

    def _signature(self) -> tuple[float, int] | None:
        try:
            st = self.paths.crontab.stat()
            return (st.st_mtime, st.st_ino)
        except OSError:
            return None

    async def main(self) -> int:
        from cronplus.alerts.alerting import Alerting
        from cronplus.alerts.delivery import DeliveryWorker
        from cronplus.engine.outage import replay_held
        from cronplus.engine.recovery import recover
        from cronplus.rundir import outputs_dir_of
        from cronplus.store.heldwrites import HELD_FILE
        from cronplus.store.open import open_writer

        self.history = open_writer(self.paths.db, host=self.settings.host_id)
        self.owner = owner_id(self.settings.host_id)
        self.clock = clock = self.settings.clock or SystemClock()  # one clock for every record: rows, alerts, the outbox
        loop = asyncio.get_running_loop()
        self.bus = bus = events.Bus(self.history)
        self.worker = DeliveryWorker(self.paths.db, mailer=self.settings.mailer, clock=clock,
                                     on_settled=bus.from_thread(loop))
        Alerting(self.history, wake=self.worker.wake, clock=clock).subscribe(bus)
        self.stats.seed(self.history, (job.name for job in self.crontab.jobs))
        self.stats.subscribe(bus)
        bus.subscribe(events.Stepped, self._status_on, transactional=False)
        bus.subscribe(events.ConfigReloaded, self._status_on, transactional=False)
        replay_held(self.history, self.crontab, bus, self.paths.state_dir / HELD_FILE)  # ends kept while the database was away
        outputs = outputs_dir_of(self.paths)  # a runtime dir (tmpfs) when there is one
        # queue= jobs go to Celery workers (service/remotes.py); celery is imported only when the crontab has one
        self.executor = remotes.executor(history=self.history, broker=self.settings.broker, log_dir=self.paths.log_dir,
                                         outputs_dir=outputs, clock=clock)
        adopted = remotes.adopt(self.executor, self.history, owner=self.owner)  # awaited, not interrupted
        recover(self.history, self.crontab, bus, owner=self.owner, clock=clock)  # a killed supervisor's runs
        remotes.check(self.executor, self.crontab)
        self._prune()
        self.worker.start()  # after the first reads: a corrupt history.db is one line, not a thread's
        self.scheduler = Scheduler(self.crontab, history=self.history, alerting=None, bus=bus,
                                   log_dir=self.paths.log_dir, owner=self.owner, clock=clock,
                                   outputs_dir=outputs,
                                   max_running=self.settings.max_running, executor=self.executor)
        self.scheduler.store.on_change = self._status
        from cronplus.service.heartbeat import start_lease  # a shared store's lease; None on SQLite
        self.lease = start_lease(self.scheduler, self.paths.db, self.history, owner=self.owner, clock=clock,
                                 new_owner=lambda: owner_id(self.settings.host_id), lease_s=self.settings.lease_s,
                                 shift_s=self.settings.clock_shift_s, on_change=self._status)
        self.scheduler.store.spool = self.paths.state_dir / HELD_FILE  # held run ends kept there if we stop while they are
        self.adopted = remotes.await_adopted(self.scheduler, adopted)  # their retries follow here
        loop.add_signal_handler(signal.SIGTERM, self.stop_event.set)
        loop.add_signal_handler(signal.SIGINT, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        self.commands = Commands(self, on_change=self._status)
        self.control = ControlServer(self.paths.control_socket, self.commands.dispatch)
        try:
            await self.control.start()
        except OSError as exc:  # e.g. a state path longer than a unix socket address allows
            log.error("control socket %s unavailable (%s): `cronplus trigger` cannot reach this supervisor",
                      self.paths.control_socket, exc)
        self.settings.http.start(self)  # before READY=1; a bad address or token file: one line, exit 1
        observer = watch_crontab(self.paths.crontab, loop, self.request_reload)
        reaper = OrphanReaper(loop)
        if not reaper.start():
            log.warning("cannot become a child subreaper: orphans of jobs are left to PID 1")
        serve = loop.create_task(self.scheduler.serve(), name="scheduler")
        self.loopwatch.watch(serve)  # a bug that ends it is logged and stops us with exit 1
        timers = [loop.create_task(self._prune_timer()), loop.create_task(self.loopwatch.feed_watchdog())]
        from cronplus.store.open import shown

        log.info("cronplus supervisor started: %d job(s) from %s, state %s%s",
                 len(self.crontab.jobs), self.paths.crontab, self.paths.state_dir,
                 f", history {shown(self.paths.db)}" if self.paths.db_url else "")
        self.notifier.ready()
        self._status()
        await self.stop_event.wait()
        log.info("stopping: no new runs")
        self.notifier.stopping()
        await self.scheduler.shutdown(self.settings.shutdown_grace)
        for task in (serve, *timers):
            task.cancel()
        await loop.run_in_executor(None, self.settings.http.stop)  # its threads may wait on the loop meanwhile
        await self.control.stop()
        reaper.stop()
        stop_watching(observer)
        self.scheduler.store.close()
        if self.lease is not None:  # after the last end is written: our row goes
            self.lease.stop()
        self.worker.stop(timeout=2.0)
        self.history.close()
        log.info("cronplus supervisor stopped%s", " (exit 1: the scheduling loop died)" if self.exit_code else "")
        return self.exit_code

    # ---- reload --------------------------------------------------------------------------

    def request_reload(self, forced: bool = True) -> None:
        """SIGHUP (forced) or a file event: reload after a short debounce."""
        if self._reload_handle is not None:
            self._reload_handle.cancel()
        loop = asyncio.get_running_loop()
        self._reload_handle = loop.call_later(RELOAD_DEBOUNCE_S, self._reload_now, forced)

    def _reload_now(self, forced: bool) -> None:
        self._reload_handle = None
        if not forced and self._signature() == self._file_sig:
            return
        self.reload()

    def reload(self) -> str | None:
        """Parse-then-swap; returns None when applied, else the error text (old crontab kept)."""
        self.notifier.reloading()
        self._file_sig = self._signature()
        try:
            crontab = load(self.paths)
        except CrontabError as exc:
            for line in capped(exc.diagnostics):
                log.error("reload refused: %s", line)
            log.error("reload refused: keeping the previous crontab (%d job(s))", len(self.crontab.jobs))
            self._rejected(exc)
            return str(exc)
        except (CronplusError, OSError) as exc:
            log.error("reload refused: %s", escape(str(exc)))  # a path may hold control characters
            self._rejected(exc)
            return str(exc)
        self.crontab_missing = not self.paths.crontab.exists()
        if self.crontab_missing:
            log.warning("%s", missing_crontab(self.paths))
        old = {j.name for j in self.crontab.jobs}
        new = {j.name for j in crontab.jobs}
        self.crontab = crontab
        self.scheduler.reload(crontab)
        remotes.check(self.executor, crontab)  # a new queue= job: Celery now, or the missing broker said
        log.info("reload ok: %d job(s) (+%d -%d)", len(new), len(new - old), len(old - new))
        self.notifier.ready()
        self.bus.publish(events.ConfigReloaded(jobs=len(new), added=tuple(sorted(new - old)),
                                               removed=tuple(sorted(old - new))))
        return None

    def _rejected(self, exc: Exception) -> None:
        try:  # its config_error alert (a full disk is the one error the bus lets through)
            self.bus.publish(events.ConfigRejected(defaults=self.crontab.defaults, error=exc))
        except Exception:
            log.exception("config_error alert failed")
        self.notifier.ready()

    # ---- timers ----------------------------------------------------------------------------

    def _prune(self) -> None:
        s = self.settings
        try:
            counts = self.history.prune(now=self.clock.time(), log_dir=self.paths.log_dir, max_age_s=s.max_age_s,
                                        max_runs_per_job=s.max_runs_per_job, max_log_bytes=s.max_log_bytes)
            if any(counts.values()):
                log.info("retention: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
        except Exception as exc:
            from cronplus.store.faults import is_storage_error

            if not is_storage_error(exc):  # a full disk is said once, by the scheduler's Store
                log.exception("retention failed")

    async def _prune_timer(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_INTERVAL_S)
            self._prune()

    def _loop_died(self) -> None:
        self.exit_code = 1
        self.stop_event.set()

    def _status_on(self, _: events.Event) -> None:
        self._status()

    def _status(self) -> None:
        from cronplus.service.systemd import format_status

        if not self.notifier.enabled:
            return
        if self.loopwatch.died:
            return  # its STATUS= stays
        now = self.clock.time()  # the next tick is on that clock
        pending = [(t.timestamp(), n) for n, t in self.scheduler.next_tick.items() if t is not None]
        first = min(pending) if pending else None
        running = self.scheduler.running()  # a run in its retry wait has no process
        text = format_status(len(self.crontab.jobs), running, first[1] if first else None,
                             first[0] - now if first else None)
        if self.crontab_missing:
            text = f"{missing_crontab(self.paths)}; {text}"
        store = self.scheduler.store
        if store.problem:
            text += f"; {store.problem}: {len(store.held)} history write(s) held in memory"
        if self.lease is not None and self.lease.problem:
            text += f"; {self.lease.problem}"
        self.notifier.status(text)


def run_supervisor(settings: Settings) -> int:
    """The body of `cronplus run`. A disk that refuses a write of the start-up or the shutdown
    (full, read-only: store.faults.storage_problem) is one line and exit 1, not a traceback; under
    systemd, Restart=on-failure starts it again. While it runs, the Store handles a full disk."""
    from cronplus.store.faults import storage_problem
    from cronplus.store.open import sqlite_path
    from cronplus.store.schema import StoreError

    try:
        return _run_supervisor(settings)
    except (OSError, StoreError) as exc:
        db = sqlite_path(settings.paths.db) or settings.paths.db_path
        where = db if isinstance(exc, StoreError) else getattr(exc, "filename", None)
        problem = storage_problem(exc, where or settings.paths.state_dir)
        if problem is None:
            raise
        log.error("cronplus supervisor stopped: %s", problem)
        return 1


def _run_supervisor(settings: Settings) -> int:
    from cronplus.service.systemd import setup_logging

    setup_logging()
    paths = settings.paths
    paths.ensure()
    lock = SupervisorLock(paths.state_dir)
    lock.acquire()
    try:
        try:
            crontab = load(paths)
        except CrontabError as exc:
            for line in capped(exc.diagnostics):
                log.error("%s", line)
            log.error("cronplus supervisor not started: %s has %d error(s)", escape(str(paths.crontab)),
                      len(exc.diagnostics))
            return 1
        for line in capped(crontab.warnings):
            log.warning("%s", line)
        if not paths.crontab.exists():  # a typo in --crontab must not run nothing in silence
            log.warning("%s", missing_crontab(paths))
        _start_warnings(crontab, settings)

        async def main() -> int:
            return await Daemon(settings, crontab).main()

        return asyncio.run(main())
    finally:
        lock.release()


def _start_warnings(crontab: Crontab, settings: Settings) -> None:
    """Said once at start: MAILTO mail without a mailer (README "Alerts"), a malformed whsec_ secret."""
    from cronplus.alerts.mail import mailer_warning
    from cronplus.alerts.signing import secret_problems
    from cronplus.status import AlertFormat

    no_mailer = mailer_warning(crontab, settings.mailer, os.environ)
    if no_mailer:
        log.warning("%s", no_mailer)
    signed = [o.alert_secret for o in (*(j.options for j in crontab.jobs), crontab.defaults)
              if o.alert and o.alert_format == AlertFormat.JSON and not o.alert.startswith("mailto:")]
    for problem in secret_problems(signed, os.environ):
        log.warning("%s", problem)
