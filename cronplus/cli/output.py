"""`cronplus output RUN_ID [--tail N]`: the captured output of one run, bytes as they were
written (no decoding), streamed in chunks so a 1 GB log costs no memory. `--tail N` prints the
last N lines, read backwards from the end of the file.

Exit 1 with a message for: no history yet, an unknown run, a run that never started (skipped,
missed, upstream_failed: no process, no output), a log file that is gone (deleted by log
retention or by hand), and a run whose output was lost (its log disk was full: the reason the
runner recorded, after whatever part of the output was kept). A run still running prints what it has written so far.
A run that wrote nothing has no log file (logs are made at the first byte; runs.log_bytes 0):
it prints nothing, exit 0, as an empty log did.

With a shared store (PostgreSQL: several hosts), a run that ran on another host (its `host` is
not $CRONPLUS_HOST_ID / this host's name), or whose log file is gone here, prints the capped head
and tail its row keeps (engine/outputexcerpt.py) with a line between them saying how many bytes
are not shown and where the full log is: "[... N bytes not shown: the full log is on HOST at
PATH ...]" (`--tail N`: the last N lines of that). `--json` prints that head and tail (or, for a
log on this host that its row does not keep, its first and last 8 KiB) as one JSON object:
run_id, job, host, path, head, tail, log_bytes, bytes_not_shown (null: size unknown), lost.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, BinaryIO

from cronplus.errors import CronplusError, UsageError

if TYPE_CHECKING:
    from cronplus.model import RunRecord
    from cronplus.store.api import OutputExcerpt

HELP = "print the captured output of a run"
CHUNK = 1 << 16


def add_arguments(p: argparse.ArgumentParser) -> None:
    from cronplus.cli.dbopt import add_db_option

    add_db_option(p)
    p.add_argument("run_id", metavar="RUN_ID", help="the run's id (the RUN column of `cronplus log`)")
    p.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    p.add_argument("--json", action="store_true",
                   help="the first and last 8 KiB as JSON: head, tail, bytes_not_shown, host, path")


def run(args: argparse.Namespace) -> int:
    from contextlib import closing

    from cronplus import paths
    from cronplus.store.open import open_reader
    from cronplus.store.readhistory import NoHistoryError

    try:
        run_id = int(str(args.run_id).lstrip("#"))
    except ValueError:
        raise UsageError(f"RUN_ID must be a number, not '{args.run_id}'") from None
    if args.tail is not None and args.tail < 0:
        raise UsageError("--tail takes a number >= 0")
    try:
        hist = open_reader(paths.from_args(args).db)
    except NoHistoryError as exc:
        raise CronplusError(f"no run {run_id}: {exc}") from None
    with closing(hist):
        record = hist.get_run(run_id)
        shared = hist.shared
        excerpt = hist.output_excerpt(run_id) if record is not None and shared else None
    if record is None:
        raise CronplusError(f"no run {run_id} in history (see `cronplus log`)")
    if not record.log_path:
        raise CronplusError(f"run {run_id} ({record.job}, {record.status}) has no output: it never started")
    lost = output_lost(record.reason)
    if args.json:
        return print_json(record, excerpt, here=record.host in (None, this_host(args)))
    if excerpt is not None and record.host not in (None, this_host(args)):  # the log is on the host that ran it
        return print_excerpt(record, excerpt, args.tail, gone=False)
    try:
        log = open(record.log_path, "rb")  # noqa: SIM115 (closed below; open errors handled apart from write errors)
    except FileNotFoundError:
        if not lost and record.log_absent_is_empty and record.host in (None, this_host(args)):
            return 0  # it wrote nothing (yet): its log is made at the first byte
        if excerpt is not None:
            return print_excerpt(record, excerpt, args.tail, gone=True)
        if shared and record.host not in (None, this_host(args)):  # no excerpt yet: it runs there
            still = " (it is still running: its first and last 8 KiB are kept in history when it ends)" if (
                record.status == "running") else ""
            raise CronplusError(f"the output of run {run_id} ({record.job}) is on {record.host} at {record.log_path}:"
                                f" run `cronplus output {run_id}` there{still}") from None
        if lost:
            raise CronplusError(f"run {run_id} ({record.job}, {record.status}) has no output: {lost}") from None
        raise CronplusError(
            f"the output of run {run_id} ({record.job}) is no longer available: {record.log_path} was"
            " deleted (log retention keeps the newest logs within the disk budget)"
        ) from None
    except OSError as exc:
        raise CronplusError(f"cannot read the output of run {run_id}: {exc.strerror}: {record.log_path}") from None
    out = sys.stdout.buffer
    with log:
        if args.tail is not None:
            log.seek(tail_offset(log, args.tail))
        copy(log, out)
    out.flush()
    if lost:  # what was printed is not all the job wrote
        print(f"cronplus: run {run_id} ({record.job}): {lost}", file=sys.stderr)
        return 1
    return 0


def this_host(args: argparse.Namespace) -> str:
    """This host's name in a cluster: $CRONPLUS_HOST_ID, as `cronplus run` reads it, else the host name."""
    import socket

    from cronplus import paths

    return paths.environ_of(args).get("CRONPLUS_HOST_ID") or socket.gethostname()


def print_excerpt(record: RunRecord, excerpt: OutputExcerpt, tail: int | None, *, gone: bool) -> int:
    """The head and tail its row keeps (a shared store), with a line saying where the whole log is."""
    import io

    from cronplus.engine.outputexcerpt import render

    text = render(excerpt, host=record.host, path=record.log_path, gone=gone)
    if tail is not None:
        text = text[tail_offset(io.BytesIO(text), tail):]
    out = sys.stdout.buffer
    out.write(text)
    out.flush()
    lost = output_lost(record.reason)
    if lost:
        print(f"cronplus: run {record.run_id} ({record.job}): {lost}", file=sys.stderr)
        return 1
    return 0


def print_json(record: RunRecord, excerpt: OutputExcerpt | None, *, here: bool) -> int:
    """`--json`: the head and tail its row keeps, or (not kept, and the log is on this host) read
    from its log file; `bytes_not_shown` null when the log's size is not known."""
    import json

    from cronplus.engine.outputexcerpt import not_shown, read_excerpt
    from cronplus.store.api import OutputExcerpt

    if excerpt is None and here and record.log_path:
        found = read_excerpt(record.log_path)
        if found is not None:
            excerpt = OutputExcerpt(*found, log_bytes=os.path.getsize(record.log_path))
    if excerpt is None:
        where = f"on {record.host} at {record.log_path}" if record.host else str(record.log_path)
        raise CronplusError(f"the output of run {record.run_id} ({record.job}) is not available here: its log is {where}")
    print(json.dumps({"run_id": record.run_id, "job": record.job, "host": record.host, "path": record.log_path,
                      "head": excerpt.head, "tail": excerpt.tail, "log_bytes": excerpt.log_bytes,
                      "bytes_not_shown": not_shown(excerpt), "lost": output_lost(record.reason)}, ensure_ascii=False))
    return 0


def output_lost(reason: str | None) -> str | None:
    """The part of a run's reason saying its output did not reach the log (runner.py: a full
    log disk), e.g. "output lost after 4096 bytes: No space left on device: /var/log/x/7.log"."""
    for part in (reason or "").split("; "):
        if part.startswith(("output lost", "log not created")):
            return part
    return None


def copy(src: BinaryIO, dst: BinaryIO) -> None:
    while chunk := src.read(CHUNK):
        dst.write(chunk)


def tail_offset(f: BinaryIO, lines: int) -> int:
    """Offset where the last `lines` lines of f begin (a final line without newline counts)."""
    end = f.seek(0, os.SEEK_END)
    if lines == 0 or end == 0:
        return end
    pos = end
    f.seek(end - 1)
    # A trailing newline ends the last line rather than starting an empty one.
    needed = lines + 1 if f.read(1) == b"\n" else lines
    while pos > 0:
        step = min(CHUNK, pos)
        pos -= step
        f.seek(pos)
        block = f.read(step)
        index = len(block)
        while True:
            index = block.rfind(b"\n", 0, index)
            if index < 0:
                break
            needed -= 1
            if needed == 0:
                return pos + index + 1
    return 0
