"""Pipe plumbing for one attempt, inside the asyncio loop: the output pump (stdout+stderr pipe ->
run log, with the head/tail cap) and the stdin feeder (the `%` text -> the job's stdin).

Contract:
- `open_log(path)` opens the run log 0600 (truncated; a symlink as the log or as its job's
  directory is refused: ELOOP / ENOTDIR), creating missing directories 0700 only on ENOENT.
  `devnull_fd()` is one shared /dev/null fd (close-on-exec) for the stdin of jobs without `%`
  text; never close it.
- `prepare_log(path)`: the spawn's part (what is in the log's place; the log left to the first byte).
- `OutputPump(read_fd, log_fd, max_bytes, create=)` owns `read_fd` (set non-blocking here, closed by
  `close()`); it never closes `log_fd`; with `log_fd` -1, `create()` opens the log at the first
  byte (a job that writes nothing has no log file; a failure is `error`, the output drained). `start(loop)` registers a reader; `eof` is a future that
  completes when every writer of the pipe has closed it.
- The pipe is always drained, however much the job writes, so a chatty job never blocks on a
  full pipe and memory stays bounded.
- Capture cap (`max_log_size`): the log keeps the first `max_bytes - tail` bytes (the head) and
  the last `tail` bytes, with one marker line between them:
  `[cronplus: N bytes dropped]`. `tail = min(max_bytes // 4, TAIL_MAX)` (1 MiB): the end of
  the output is what explains a failure (alerts quote it), the head shows how the run began.
  Memory per pump: nothing while under the cap; one ring buffer of `RING_SIZE` (1 MiB) once
  the head is full. The marker line is not counted against the cap.
- `total` counts every byte the job wrote; `dropped` the bytes not kept.

Speed: the head goes pipe -> file with `os.splice` (no copy through user space) in chunks of up
to 1 MiB per call; when a read finds the pipe full, the pipe is enlarged to 1 MiB
(F_SETPIPE_SZ) so a heavy writer costs few wake-ups. Pipes start at the kernel default because
the per-user pipe budget (fs.pipe-user-pages-soft, 64 MiB) would otherwise be used up by a
thousand idle jobs and shrink every later pipe to one page. Past the head, bytes are read
straight into the ring with `os.readv` (no allocation per read). A move that gets less than
it asked for has emptied the pipe, so the pump goes back to the loop instead of asking again
only to get EAGAIN (a 200 MB writer: ~2.5x fewer splice calls, EAGAIN from hundreds to tens).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable
from pathlib import Path

MiB = 1024 * 1024
TAIL_MAX = MiB  # most of the tail kept in memory per over-cap job
RING_SIZE = MiB  # read size once dropping; >= TAIL_MAX
CHUNK = MiB  # bytes moved per splice/read call
BIG_PIPE = MiB  # fs.pipe-max-size's default: the most an unprivileged process may ask
_BUDGET = 16  # calls per wake-up before yielding to other jobs in the loop
STDIN_CHUNK = 65536
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


# -- the run log and stdin --------------------------------------------------------------


_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
# The job's directory is opened without following a symlink and the log is opened relative to
# it, so no symlink under the log root is followed (the root itself was checked by
# paths.ensure: only root or we can write it).
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _make_dirs(path: Path) -> None:
    """Create missing directories owner-only (pathlib's mkdir gives only the last one `mode`)."""
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = path.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, 0o700)


def _open_dir(directory: str) -> int:
    try:
        return os.open(directory, _DIR_FLAGS)
    except FileNotFoundError:  # a new job: usually only its own directory is missing
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:  # there after all (a dangling symlink?): the open below says why
            pass
        except FileNotFoundError:  # the log root is missing too
            _make_dirs(Path(directory))
        return os.open(directory, _DIR_FLAGS)


def open_log(log_path: str | os.PathLike[str]) -> int:
    """Open first, create the directories only on ENOENT: a job's directory exists from its
    second run on, so the usual cost is two opens (no stat walk up the tree per attempt).
    A symlink in place of the job's directory or of the log file is refused (ENOTDIR, ELOOP)."""
    directory, name = os.path.split(os.fspath(log_path))
    dir_fd = _open_dir(directory or ".")
    try:
        fd = os.open(name, _LOG_FLAGS | os.O_NONBLOCK, 0o600, dir_fd=dir_fd)  # O_NONBLOCK: a FIFO must not hang us
    finally:
        os.close(dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        # A device or FIFO in the log's place (planted, or a log dir pointed at /dev): never
        # chmod it (a /dev/null made 0600 breaks every other user of the machine), never write it.
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", os.fspath(log_path))
    os.set_blocking(fd, True)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
    return fd


def prepare_log(log_path: str | os.PathLike[str]) -> int:
    """At the spawn: the log (and a new job's directory) is left to the job's first byte
    (`OutputPump(create=)`, `open_log`): most cron jobs print nothing, and an inode per run was a
    quarter of the supervisor's CPU (docs/BENCHMARKS.md). Returns -1, or the fd of what is already
    in the log's place, opened now as `open_log` opens it (truncated, or refused: a symlink, a
    FIFO; a symlink as the job's directory: ENOTDIR/ELOOP), so a reused path (a sensor's 0.log)
    starts empty as before."""
    try:  # one lstat: whatever is found (through a symlinked directory too) goes to open_log, which refuses it
        os.lstat(log_path)
    except FileNotFoundError:  # a new run's path, a new job (or log root): nothing in the log's place
        return -1
    return open_log(log_path)


_devnull_fd: int | None = None


def devnull_fd() -> int:
    """One /dev/null fd for every job's stdin, opened once (subprocess.DEVNULL opens it again on
    each Popen); close-on-exec here, the child's dup2 onto fd 0 clears that flag."""
    global _devnull_fd
    if _devnull_fd is None:
        _devnull_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return _devnull_fd


# -- the pump ---------------------------------------------------------------------------


def marker_line(dropped: int) -> bytes:
    """The line written where output was cut out."""
    return f"\n[cronplus: {dropped} bytes dropped]\n".encode()


class OutputPump:
    """Drain one pipe into one log file with a head/tail cap. Single-threaded (the loop's)."""

    def __init__(self, read_fd: int, log_fd: int, max_bytes: int, *, create: Callable[[], int] | None = None) -> None:
        self.read_fd = read_fd
        self.log_fd = log_fd  # -1 with `create`: the log is made at the first byte to keep
        self._create = create
        max_bytes = max(0, max_bytes)
        self.tail_size = min(max_bytes // 4, TAIL_MAX)
        self.head_size = max_bytes - self.tail_size
        self.total = 0
        self.written = 0  # head bytes in the file
        self._ring: bytearray | None = None
        self._ring_pos = 0  # next write position in the ring
        self._ring_fill = 0  # valid bytes in the ring (<= RING_SIZE)
        self._splice = hasattr(os, "splice")
        self._enlarged = False
        self._asked = 0  # bytes the last move asked for
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.error: OSError | None = None
        self.eof: asyncio.Future[None] | None = None
        os.set_blocking(read_fd, False)

    @property
    def dropped(self) -> int:
        return self.total - self.written - min(self._ring_fill, self.tail_size)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.eof = loop.create_future()
        loop.add_reader(self.read_fd, self._on_readable)

    def drain_now(self) -> None:
        """Read whatever the pipe holds right now (used before giving up on a straggler)."""
        if not self._closed:
            self._on_readable()

    def close(self) -> None:
        """Stop reading, close the pipe, write the marker and the tail. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not None:
            self._loop.remove_reader(self.read_fd)
        os.close(self.read_fd)
        self._finish_file()
        if self.eof is not None and not self.eof.done():
            self.eof.set_result(None)

    # -- reading -------------------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            for _ in range(_BUDGET):
                n = self._move_once()
                if n is None:  # pipe empty for now
                    return
                if n == 0:  # every writer closed the pipe
                    self._at_eof()
                    return
                if n < self._asked:  # it held less than asked: empty now, so the next call would
                    return  # only fail with EAGAIN (a syscall and an exception per wake-up)
        except OSError as exc:
            if self.written < self.head_size:  # splice to the log failed: nothing taken, drain on
                self._write_failed(exc, self.written)
            else:  # the pipe itself failed (should not happen): stop, never spin on a dead fd
                self.error = self.error or exc
                self._at_eof()

    def _move_once(self) -> int | None:
        """Move one chunk. Returns bytes taken from the pipe, 0 at EOF, None when it is empty."""
        room = self.head_size - self.written
        try:
            if room > 0:
                self._asked = min(room, CHUNK)
                n, kept = self._to_file(self._asked)
                self.written += kept
            else:
                self._asked = RING_SIZE
                n = self._to_ring()
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return None
            raise
        self.total += n
        if n >= 65536 and not self._enlarged:
            self._enlarge_pipe()
        return n

    def _has_log(self) -> bool:
        """The log is open, or is created now (once); a failure is the output's error."""
        if self.log_fd >= 0:
            return True
        create, self._create = self._create, None
        if create is None:
            return False
        try:
            self.log_fd = create()
        except OSError as exc:
            self._write_failed(exc, 0)
            return False
        return True

    def _to_file(self, count: int) -> tuple[int, int]:
        """Move up to `count` bytes pipe -> log. Returns (taken from the pipe, written)."""
        if self.log_fd < 0:  # no log yet: EOF here means the job wrote nothing, and gets no file
            data = os.read(self.read_fd, count)
            return self._write(data) if not data or self._has_log() else (len(data), 0)
        if self._splice:
            try:
                n = os.splice(self.read_fd, self.log_fd, count, flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK)
                return n, n
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise  # nothing was taken from the pipe
                self._splice = False  # e.g. a file system without splice support
        return self._write(os.read(self.read_fd, count))

    def _write(self, data: bytes) -> tuple[int, int]:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.log_fd, view) :]
        except OSError as exc:  # the bytes left in `view` were taken but not kept
            self._write_failed(exc, self.written + len(data) - len(view))
        return len(data), len(data) - len(view)

    def _write_failed(self, exc: OSError, in_file: int) -> None:
        """A full disk must not stall the job: keep draining (into the tail ring), note it."""
        self.error = self.error or exc
        self._splice = False
        self.head_size = in_file

    def _to_ring(self) -> int:
        if self._ring is None:
            self._ring = bytearray(RING_SIZE)
        mv = memoryview(self._ring)
        pos = self._ring_pos
        n = os.readv(self.read_fd, [mv[pos:], mv[:pos]] if pos else [mv])
        self._ring_pos = (pos + n) % RING_SIZE
        self._ring_fill = min(RING_SIZE, self._ring_fill + n)
        return n

    def _enlarge_pipe(self) -> None:
        self._enlarged = True
        try:
            fcntl.fcntl(self.read_fd, _F_SETPIPE_SZ, BIG_PIPE)
        except OSError:
            pass  # over the per-user pipe budget or not Linux: the default pipe still works

    def _at_eof(self) -> None:
        if self.eof is not None and not self.eof.done():
            self.eof.set_result(None)
        if self._loop is not None:
            self._loop.remove_reader(self.read_fd)

    # -- the end of the file ---------------------------------------------------------------

    def _tail_bytes(self) -> bytes:
        if self._ring is None:
            return b""
        keep = min(self._ring_fill, self.tail_size)
        end = self._ring_pos
        start = end - keep
        if start >= 0:
            return bytes(self._ring[start:end])
        return bytes(self._ring[start:]) + bytes(self._ring[:end])

    def _finish_file(self) -> None:
        tail = self._tail_bytes()
        dropped = self.dropped
        self._ring = None
        if (dropped <= 0 and not tail) or not self._has_log():
            return
        try:
            out = (marker_line(dropped) if dropped > 0 else b"") + tail
            view = memoryview(out)
            while view:
                view = view[os.write(self.log_fd, view) :]
        except OSError as exc:
            self.error = self.error or exc


# -- stdin ---------------------------------------------------------------------------------


class StdinFeeder:
    """Feed the `%` text into the job's stdin without blocking the loop (it may exceed a pipe).

    Give `read_fd` to the child, then `start(loop)`; `close()` when the attempt ends (a job
    that never reads its stdin, or a background child holding it, must not keep us writing)."""

    def __init__(self, data: bytes) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_CLOEXEC)
        self.view = memoryview(data)
        self.loop: asyncio.AbstractEventLoop | None = None
        os.set_blocking(self.write_fd, False)
        self._write()  # most texts fit the pipe buffer now

    def _write(self) -> None:
        try:
            while self.view:
                n = os.write(self.write_fd, self.view[:STDIN_CHUNK])
                self.view = self.view[n:]
        except BlockingIOError:
            return
        except OSError:  # EPIPE: the job closed its stdin or is gone
            self.view = self.view[:0]
        self.close_write()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        os.close(self.read_fd)  # the child has its own copy
        self.read_fd = -1
        if self.write_fd >= 0:
            self.loop = loop
            loop.add_writer(self.write_fd, self._write)

    def close_write(self) -> None:
        if self.write_fd >= 0:
            if self.loop is not None:
                self.loop.remove_writer(self.write_fd)
            os.close(self.write_fd)
            self.write_fd = -1

    def close(self) -> None:
        self.close_write()
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1
