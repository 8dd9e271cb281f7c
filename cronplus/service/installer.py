"""Installing a crontab: validate with the real parser, write atomically, keep a backup, and say
what changed.

Contract:
- `validate(text, path=, system=)` -> Crontab, or raises CrontabError (every error, FILE:LINE:COL).
- `install_text(text, target, system=)` validates first and installs nothing on error. The write is
  atomic: a temp file in the target's directory, fsync, rename over the target, fsync the
  directory. The file is 0600; a missing parent directory is created 0700. The version it
  replaces is kept as `<target>.bak` (a hard link to the old inode, so it is byte-exact).
  A running supervisor watches the crontab's directory and reloads on the rename by itself.
- `diff_jobs(old, new)` names added / removed / changed jobs; `summary_lines` renders them with
  their next run times (schedule.next_fire) for the CLI, which alone prints.
"""

from __future__ import annotations

import os
import signal
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cronplus.errors import CronplusError, Diagnostic
from cronplus.model import Crontab, JobSpec

BACKUP_SUFFIX = ".bak"
MAX_SUMMARY_LINES = 40  # a 500-job import should not scroll the result off the screen


@dataclass(frozen=True, kw_only=True, slots=True)
class JobChange:
    kind: str  # "added" | "removed" | "changed"
    job: JobSpec  # the new spec (the old one for "removed")


@dataclass(frozen=True, kw_only=True, slots=True)
class InstallResult:
    path: Path
    backup: Path | None  # where the replaced version now lives; None when there was none
    crontab: Crontab
    changes: tuple[JobChange, ...]
    warnings: tuple[Diagnostic, ...] = field(default=())
    unchanged_text: bool = False  # the new text equals the installed one: nothing was written


def validate(text: str, *, path: str, system: bool) -> Crontab:
    """Parse with the real parser; CrontabError lists every error of the file."""
    from cronplus.crontab.parser import parse_crontab

    return parse_crontab(text, path=path, system=system)


def read_installed(target: Path) -> str | None:
    try:
        return target.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CronplusError(f"cannot read {target}: {exc.strerror or exc}") from None


def _parse_quietly(text: str | None, *, path: str, system: bool) -> Crontab | None:
    """The installed crontab for the diff; an invalid old file diffs as 'everything is new'."""
    if text is None:
        return None
    try:
        return validate(text, path=path, system=system)
    except CronplusError:
        return None


def install_text(text: str, target: Path, *, system: bool, display_path: str | None = None) -> InstallResult:
    """Validate `text` (errors name `display_path`, default the target) and install it atomically."""
    new = validate(text, path=display_path or str(target), system=system)
    old_text = read_installed(target)
    old = _parse_quietly(old_text, path=str(target), system=system)
    changes = tuple(diff_jobs(old, new))
    if old_text == text:
        return InstallResult(path=target, backup=None, crontab=new, changes=changes, warnings=new.warnings, unchanged_text=True)
    try:
        backup = atomic_write(target, text.encode("utf-8", "surrogateescape"))  # the bytes as they came
    except OSError as exc:
        raise CronplusError(f"cannot install {target}: {exc.strerror or exc}") from None
    return InstallResult(path=target, backup=backup, crontab=new, changes=changes, warnings=new.warnings)


def atomic_write(target: Path, data: bytes, *, mode: int = 0o600) -> Path | None:
    """Write `data` to `target` atomically, keeping the old version as `<target>.bak`.

    Returns the backup path, or None when there was no previous file. Readers (the supervisor,
    `cronplus list`) see either the old or the new file, never a half-written one. A symlinked
    crontab (dotfiles) stays a symlink: the file it points to is the one replaced.
    """
    if target.is_symlink():
        target = target.resolve()
    parent = target.parent
    if not parent.exists():
        parent.mkdir(parents=True, mode=0o700)
        os.chmod(parent, 0o700)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        backup = _keep_backup(target)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(parent)
    return backup


def _keep_backup(target: Path) -> Path | None:
    """Link the current file to `<target>.bak` (atomically replacing an older backup)."""
    if not target.exists():
        return None
    backup = target.with_name(target.name + BACKUP_SUFFIX)
    link_tmp = target.with_name(f".{target.name}.bak.{os.getpid()}.tmp")
    link_tmp.unlink(missing_ok=True)
    try:
        os.link(target, link_tmp)
    except OSError:  # filesystems without hard links: copy the bytes instead
        link_tmp.write_bytes(target.read_bytes())
        os.chmod(link_tmp, 0o600)
    os.replace(link_tmp, backup)
    return backup


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (rename(2) is atomic, but only durable after this)."""
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _identity(job: JobSpec) -> tuple[object, ...]:
    """Everything that changes how a job runs; not where it sits in the file."""
    return (job.schedule.text, job.command, job.stdin, job.env, job.options, job.tz, job.user)


def diff_jobs(old: Crontab | None, new: Crontab) -> list[JobChange]:
    """Added, removed and changed jobs by name, in the order of the new file (removed last)."""
    old_jobs = {j.name: j for j in old.jobs} if old is not None else {}
    new_names = {j.name for j in new.jobs}
    changes: list[JobChange] = []
    for job in new.jobs:
        before = old_jobs.get(job.name)
        if before is None:
            changes.append(JobChange(kind="added", job=job))
        elif _identity(before) != _identity(job):
            changes.append(JobChange(kind="changed", job=job))
    for name, job in old_jobs.items():
        if name not in new_names:
            changes.append(JobChange(kind="removed", job=job))
    return changes


def next_run(job: JobSpec, now: datetime) -> datetime | None:
    """The job's next fire time after `now`, or None (@reboot, never fires, schedule missing)."""
    from cronplus.crontab.schedule import next_fire

    if job.schedule.reboot:
        return None
    try:
        return next_fire(job.schedule, now, job.tz)
    except CronplusError:
        return None


def format_relative(when: datetime, now: datetime) -> str:
    """`in 4min`, `in 2h05m`, `3d ago`: short, for tables."""
    seconds = int((when - now).total_seconds())
    future = seconds >= 0
    s = abs(seconds)
    if s < 60:
        text = f"{s}s"
    elif s < 3600:
        text = f"{s // 60}min"
    elif s < 86400:
        text = f"{s // 3600}h{(s % 3600) // 60:02d}m"
    else:
        text = f"{s // 86400}d{(s % 86400) // 3600:02d}h"
    return f"in {text}" if future else f"{text} ago"


def format_local(when: datetime) -> str:
    """Local time for humans: `2026-11-24 15:40`."""
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


def schedule_text(job: JobSpec) -> str:
    return f"{job.schedule.text} ({job.tz})" if job.tz else job.schedule.text


def summary_lines(result: InstallResult, *, now: datetime | None = None) -> list[str]:
    """Human lines describing an install: where, the backup, each changed job with its next run."""
    now = now or datetime.now(UTC)
    if result.unchanged_text:
        return [f"{result.path} already has this content: nothing to install"]
    lines = [f"installed {result.path}" + (f" (previous version kept as {result.backup})" if result.backup else "")]
    if not result.changes:
        lines.append("no job changes")
    shown = result.changes if len(result.changes) <= MAX_SUMMARY_LINES else result.changes[: MAX_SUMMARY_LINES - 1]
    for change in shown:
        job = change.job
        mark = {"added": "+", "removed": "-", "changed": "~"}[change.kind]
        line = f"  {mark} {change.kind:<7} {job.name}  {schedule_text(job)}"
        if change.kind != "removed":
            when = next_run(job, now)
            line += f"  next: {format_local(when)} ({format_relative(when, now)})" if when else "  next: -"
        lines.append(line)
    if len(shown) < len(result.changes):
        counts = {k: sum(c.kind == k for c in result.changes) for k in ("added", "changed", "removed")}
        lines.append(f"  ... and {len(result.changes) - len(shown)} more ({counts['added']} added, "
                     f"{counts['changed']} changed, {counts['removed']} removed in all)")
    jobs = len(result.crontab.jobs)
    lines.append(f"{jobs} job{'s' if jobs != 1 else ''} in total")
    return lines


def signal_supervisor(pid_file: Path) -> int | None:
    """SIGHUP the supervisor named in `pid_file`, if it is alive and really cronplus.

    Redundant with the supervisor's directory watch, but it makes the reload immediate where
    file watching is unavailable. The /proc check avoids signalling a recycled pid.
    """
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if b"cronplus" not in cmdline:
        return None
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError:
        return None
    return pid
