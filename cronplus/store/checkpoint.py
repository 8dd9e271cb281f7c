"""Checkpoints of the history's write-ahead log on a thread of their own, so that the supervisor's
writer (the event loop's thread) never waits on the disk.

In WAL mode with `synchronous = NORMAL` (schema.connect) a commit appends its pages to the
-wal file and returns: no fsync. The disk is waited on only by a checkpoint, which copies the
log back into the database file and fsyncs both (sqlite.org/wal.html, "Checkpointing";
sqlite.org/pragma.html#pragma_synchronous). By default SQLite runs it inside the COMMIT that
takes the log past 1,000 pages, on the committing thread: measured on this machine, one insert
chunk in ~100 took 4 ms instead of 0.15 ms, and on a loaded disk a checkpoint's fsyncs take
tens to hundreds of milliseconds, all of it spent holding the scheduler's loop at a tick.

Contract:
- `Checkpointer(db_path)` opens a connection of its own; `start()` sets the writer's connection
  (given) to `wal_autocheckpoint = 0` and starts the thread. `poke()` (after a commit: one
  Event.set) asks for a look; the thread waits DELAY_S to take a burst of commits in one go,
  then, once COMMITS commits were made since the last (about SQLite's own threshold), runs
  `PRAGMA wal_checkpoint(PASSIVE)`, which never waits for the writer nor for readers (it
  checkpoints what it can; the rest at the next poke). Idle, the thread sleeps without a
  timeout: no wake-ups, no CPU.
- A checkpoint that fails (a full disk, an I/O error) is logged once at WARNING and tried again
  at the next poke; the log then grows, nothing is lost (the commits are in it).
- `stop()` wakes it, lets it run a last checkpoint (whatever the log's size), and joins it;
  then closes its connection.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("cronplus")

DELAY_S = 0.2  # after a poke: a tick's chunks of commits make one checkpoint, not one each
# About SQLite's own threshold (wal_autocheckpoint: 1,000 pages; a commit of the supervisor
# writes ~5 pages: a row, its indexes, run_stats). Not oftener: a checkpoint that completes makes
# the next commit restart the log, and that commit syncs the log's header (on the writer's
# thread; sqlite.org/pragma.html#pragma_synchronous, NORMAL): as rare as it was, no rarer.
# Counted, not read from the -shm file: opening and closing a file descriptor of it would drop
# every POSIX lock this process holds on it (fcntl(2)), SQLite's included, and another process
# would then take the wal-index for unused and reset it under the supervisor (seen: SIGBUS).
COMMITS = 200


class Checkpointer:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._conn = sqlite3.connect(db_path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.checkpoints = 0  # how many ran (tests and the bench read it)
        self.commits = 0  # since the last one

    def start(self, writer: sqlite3.Connection) -> None:
        writer.execute("PRAGMA wal_autocheckpoint = 0")  # commits no longer checkpoint: we do
        self._thread = threading.Thread(target=self._run, name="cronplus-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """After a commit (the writer's thread)."""
        self.commits += 1
        self._wanted.set()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._wanted.set()
            self._thread.join(timeout=30.0)
            self._thread = None
        self._conn.close()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if not self._stopping.is_set():
                self._stopping.wait(DELAY_S)
            self._wanted.clear()
            self.checkpoint(force=self._stopping.is_set())
            if self._stopping.is_set():
                return

    def checkpoint(self, *, force: bool = False) -> None:
        if not force and self.commits < COMMITS:
            return
        self.commits = 0  # a poke racing this reset is counted in the next round at worst
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            if not self._failing:
                from cronplus.store.schema import db_problem

                log.warning("history checkpoint failed, retried at the next write: %s", db_problem(self.db_path, exc))
                self._failing = True
            return
        self._failing = False
        self.checkpoints += 1
