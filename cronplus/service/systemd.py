"""Talking to systemd: the sd_notify protocol and a journald-friendly log format.

Contract (see docs/ARCHITECTURE.md):

- `Notifier.from_env()` reads `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`. Its methods
  `ready()`, `reloading()`, `stopping()`, `status(text)` and `watchdog()` send one datagram
  each; all are no-ops without `NOTIFY_SOCKET` and never raise (a failed send is logged at
  debug and reported as False). `watchdog_interval()` is how often to call `watchdog()`.
- `format_status(jobs, running, next_job, next_in_s)` is the one-line STATUS= text.
- `setup_logging(stream=None)` configures the "cronplus" logger: one line per event; with a
  `<N>` syslog priority prefix and no timestamp when the stream is the journal (its dev:inode
  equals `$JOURNAL_STREAM`), a timestamp and level name otherwise. Calling it again replaces
  its handler instead of adding a second one. Every line has its URLs cut to their host
  (redact.redact_urls_in), tracebacks included; threads' uncaught exceptions go to this log.

The protocol is small enough to write here instead of depending on python-systemd/sdnotify:
sd_notify(3) is "send `VAR=value` lines in one datagram to the AF_UNIX socket named by
$NOTIFY_SOCKET; a leading '@' means the abstract namespace". We do not unset NOTIFY_SOCKET:
jobs never inherit the supervisor's environment (runner.build_env starts from scratch), the
socket is opened close-on-exec, and the units say NotifyAccess=main anyway.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from typing import TextIO

from cronplus.redact import redact_urls_in

log = logging.getLogger("cronplus.systemd")

# Python has no NOTICE level; syslog's sits between INFO (6) and WARNING (4).
NOTICE = 25

_SEND_TIMEOUT_S = 0.5  # a stuck notify socket must not stall the scheduler loop


class Notifier:
    """Sends sd_notify(3) state changes to the service manager. Safe to use when not under
    systemd: every method is then a no-op returning False."""

    def __init__(
        self,
        address: str | None,
        *,
        watchdog_usec: str | None = None,
        watchdog_pid: str | None = None,
    ) -> None:
        self._address = _socket_address(address)
        self._watchdog_usec = watchdog_usec
        self._watchdog_pid = watchdog_pid
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        return cls(
            env.get("NOTIFY_SOCKET"),
            watchdog_usec=env.get("WATCHDOG_USEC"),
            watchdog_pid=env.get("WATCHDOG_PID"),
        )

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send `VAR=value` assignments in one datagram. True when the datagram was sent."""
        if self._address is None:
            return False
        payload = "\n".join(assignments).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.settimeout(_SEND_TIMEOUT_S)
            self._sock.sendto(payload, self._address)
        except OSError as exc:  # no listener, queue full, socket gone: never the job's problem
            log.debug("sd_notify to %r failed: %s", self._address, exc)
            return False
        return True

    def ready(self) -> bool:
        return self.notify("READY=1")

    def reloading(self) -> bool:
        # systemd >= 253 wants the monotonic timestamp with RELOADING=1 to tell this reload
        # apart from an earlier one; older managers ignore the extra variable.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        # A newline would start a new assignment (e.g. "READY=1") inside our datagram.
        return self.notify("STATUS=" + " ".join(text.splitlines()))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog() calls: half of WATCHDOG_USEC, as sd_watchdog_enabled(3)
        advises. None when there is no watchdog for this process (no socket, no or bad
        WATCHDOG_USEC, or WATCHDOG_PID naming another process)."""
        if self._address is None or not self._watchdog_usec:
            return None
        if self._watchdog_pid and self._watchdog_pid.strip() != str(os.getpid()):
            return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        return usec / 2 / 1_000_000 if usec > 0 else None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _socket_address(value: str | None) -> str | None:
    """The address to send to: a filesystem path, or '\\0name' for '@name' (abstract)."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    # e.g. "vsock:..." (systemd >= 253 inside VMs): not something a cron host needs.
    log.debug("unsupported NOTIFY_SOCKET address %r; not notifying", value)
    return None


def format_duration(seconds: float) -> str:
    """Compact, rounded: 45s, 4min, 2h5min, 3d4h. Zero or negative is "now"."""
    s = round(seconds)
    if s <= 0:
        return "now"
    if s < 60:
        return f"{s}s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes}min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}min" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def format_status(jobs: int, running: int, next_job: str | None, next_in_s: float | None) -> str:
    """The STATUS= line `systemctl status cronplus` shows:
    "12 jobs, 1 running, next: backup in 4min"."""
    text = f"{jobs} job{'' if jobs == 1 else 's'}, {running} running"
    if next_job is None:
        return text + ", nothing scheduled"
    text += f", next: {next_job}"
    if next_in_s is not None:
        when = format_duration(next_in_s)
        text += " now" if when == "now" else f" in {when}"
    return text


# --- logging ----------------------------------------------------------------------------


def syslog_priority(levelno: int) -> int:
    """sd-daemon.h priorities: <2> crit, <3> err, <4> warning, <5> notice, <6> info, <7> debug."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno > logging.INFO:
        return 5
    if levelno >= logging.INFO:
        return 6
    return 7


def is_journal_stream(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is connected to journald: systemd.exec(5) says to compare
    $JOURNAL_STREAM ("<device>:<inode>", decimal) with fstat() of the fd, because the variable
    is inherited by children whose stderr may have been redirected elsewhere."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep:
        return False
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(dev), int(ino))
    except (OSError, ValueError, AttributeError):  # StringIO has no fileno (io.UnsupportedOperation)
        return False


class _OneLineFormatter(logging.Formatter):
    """One event, one line: a traceback or a multi-line message is folded with " | " so
    journald keeps it as one entry with one priority and `grep` sees it whole."""

    def __init__(self, *, journal: bool) -> None:
        if journal:
            super().__init__("%(message)s")
        else:
            super().__init__("%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        # Our own messages print URLs through redact_url already; a library's message or a
        # traceback may quote one whole (requests/urllib3 put the URL in their exceptions).
        text = " | ".join(line for line in redact_urls_in(super().format(record)).splitlines() if line.strip())
        if self.journal:
            # The journal adds its own timestamp; the prefix sets the entry's PRIORITY=.
            return f"<{syslog_priority(record.levelno)}>{text}"
        return text


def _level_from_env() -> int:
    name = os.environ.get("CRONPLUS_LOG_LEVEL", "").strip().upper()
    level = logging.getLevelName(name) if name else logging.INFO
    return level if isinstance(level, int) else logging.INFO


def setup_logging(stream: TextIO | None = None, *, level: int | None = None) -> logging.Logger:
    """Configure and return the "cronplus" logger, writing to `stream` (default: sys.stderr
    at call time). `level` defaults to $CRONPLUS_LOG_LEVEL or INFO. Idempotent."""
    logging.addLevelName(NOTICE, "NOTICE")
    target = sys.stderr if stream is None else stream
    logger = logging.getLogger("cronplus")
    for old in [h for h in logger.handlers if getattr(h, "_cronplus_handler", False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(target)
    handler.setFormatter(_OneLineFormatter(journal=is_journal_stream(target)))
    handler._cronplus_handler = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(_level_from_env() if level is None else level)
    logger.propagate = False  # the root logger's handlers would print every line twice
    # A library's warning (watchdog, urllib3) must not reach stderr raw through logging's
    # last-resort handler: it gets the same one-line format and priority prefix as ours.
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_cronplus_handler", False)]:
        root.removeHandler(old)
    library_handler = logging.StreamHandler(target)
    library_handler.setFormatter(_OneLineFormatter(journal=is_journal_stream(target)))
    library_handler.setLevel(logging.WARNING)
    library_handler._cronplus_handler = True  # type: ignore[attr-defined]
    root.addHandler(library_handler)
    # A thread's uncaught exception would go to stderr raw (threading.excepthook): through the
    # log instead, one line, URLs cut to their host like every other line.
    threading.excepthook = _log_thread_exception
    return logger


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    logging.getLogger("cronplus").error("uncaught exception in thread %s", name, exc_info=exc_info)
