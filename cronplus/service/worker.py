"""`cronplus worker`: a Celery worker (engine/celeryapp.py) that carries out the attempts of
`queue=` jobs (engine/remote.py: the local executor's own code) and records them in the shared
store (`--db`, the supervisors' one).

* Before it consumes: its row in `hosts` (kind 'worker', heart-beating every `heartbeat_s` on a
  thread with a connection of its own; lease HEARTBEAT_LEASES beats), then the attempts this
  host id had claimed and not reported (a previous worker process killed) are stopped and
  reported lost (remote.WorkerRuns.settle_leftovers).
* Celery's thread pool (`concurrency` threads, one attempt each: a thread waits on its job's
  process group in an asyncio loop of its own), one queue or several, gossip, mingle and
  Celery's event heartbeats off (the row's heartbeat is what the supervisors read).
* systemd (Type=notify, service/workerunit.py): READY=1 when Celery's consumer is up, STOPPING=1
  when its warm shutdown begins (no-ops without $NOTIFY_SOCKET).
* SIGTERM (systemd's stop): Celery's warm shutdown: no new message is taken, running attempts
  end and are reported (TimeoutStopSec bounds it; a kill leaves them to the next start's
  settling, and the supervisor's lease check).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cronplus.engine.remote import WorkerRuns
from cronplus.paths import Paths

if TYPE_CHECKING:
    from cronplus.store.open import Db

log = logging.getLogger("cronplus")

HEARTBEAT_LEASES = 3  # a worker silent for this many beats is gone (its attempts: interrupted)


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    paths: Paths
    queues: tuple[str, ...]
    broker: str
    concurrency: int = 4
    host_id: str | None = None
    heartbeat_s: float = 10.0


class Heartbeat:
    """The worker's row in `hosts`, renewed every `every` seconds on a thread of its own."""

    def __init__(self, db: Db, *, host: str, every: float) -> None:
        from cronplus.store.open import open_writer

        self.store = open_writer(db, host=host)
        self.host = host
        self.every = every
        self.started = time.time()
        self.owner = f"{host}:{os.getpid()}:{int(self.started)}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cronplus-heartbeat", daemon=True)

    def beat(self) -> None:
        self.store.worker_heartbeat(owner=self.owner, host=self.host, pid=os.getpid(), started_at=self.started,
                                    now=time.time(), lease_s=self.every * HEARTBEAT_LEASES)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except Exception as exc:  # noqa: BLE001 - a database error: the next beat tries again
                log.warning("worker heartbeat failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.store.close()


def _refuse_a_twin(heartbeat: Heartbeat, lease_s: float) -> None:
    """Another live worker process of this host id on this machine: its running attempts would
    look like our leftovers (settle_leftovers would stop them). One line, exit 1."""
    from cronplus.errors import CronplusError

    for _owner, pid in heartbeat.store.worker_pids(heartbeat.host, since=time.time() - lease_s):
        if pid is None or pid == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # gone (a killed worker whose beat is recent): its leftovers are ours to settle
            continue
        if b"cronplus" in cmdline and b"worker" in cmdline:
            heartbeat.store.close()
            raise CronplusError(f"another cronplus worker (pid {pid}) runs as host id {heartbeat.host}: give this one"
                                " its own --host-id (or serve several queues from one: --queue A --queue B)")


def _notify_systemd() -> None:
    """Type=notify (service/workerunit.py): READY=1 once Celery consumes the queues (a unit that
    `systemctl start` waits for), STOPPING=1 when its warm shutdown begins."""
    from celery import signals  # type: ignore[import-untyped]  # the `celery` extra

    from cronplus.service.systemd import Notifier

    notifier = Notifier.from_env()
    signals.worker_ready.connect(lambda **_: notifier.ready(), weak=False)
    signals.worker_shutting_down.connect(lambda **_: notifier.stopping(), weak=False)


def run_worker(settings: WorkerSettings) -> int:
    from cronplus.engine.celeryapp import make_app, register
    from cronplus.rundir import outputs_dir_of
    from cronplus.service.systemd import setup_logging
    from cronplus.store.open import open_writer, shown

    setup_logging()
    paths = settings.paths
    paths.ensure()
    host = settings.host_id or socket.gethostname()
    db = paths.db
    runs = WorkerRuns(lambda: open_writer(db, host=host), host=host, log_dir=paths.log_dir,
                      outputs_dir=outputs_dir_of(paths), system=paths.system)
    heartbeat = Heartbeat(db, host=host, every=settings.heartbeat_s)
    _refuse_a_twin(heartbeat, settings.heartbeat_s * HEARTBEAT_LEASES)
    heartbeat.start()
    try:
        settled = runs.settle_leftovers()
        if settled:
            log.warning("%d attempt(s) of a previous worker process reported interrupted", settled)
        if paths.system:  # root by design: each job runs as its crontab line's user, as cron does
            import warnings

            from celery.platforms import SecurityWarning  # type: ignore[import-untyped]

            warnings.filterwarnings("ignore", category=SecurityWarning)
        app = make_app(settings.broker)
        register(app, runs.run)
        _notify_systemd()
        log.info("cronplus worker %s: queue(s) %s, %d thread(s), history %s, logs %s", host,
                 ",".join(settings.queues), settings.concurrency, shown(db), paths.log_dir)
        app.worker_main(["--quiet", "worker", "--pool", "threads", "--concurrency", str(settings.concurrency),
                         "--queues", ",".join(settings.queues), "--hostname", f"cronplus-{host}-{os.getpid()}@%h",
                         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"])
    finally:
        heartbeat.stop()
    return 0
