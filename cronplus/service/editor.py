"""`cronplus edit` as `crontab -e` should have been: the session logic (no printing here beyond
the injected `out`/`err` streams, which are the CLI's).

Contract of `edit_session(paths, ...)`:
1. The editor is $VISUAL, then $EDITOR, then the first of sensible-editor / editor / vi on PATH.
   It runs as `sh -c '<editor> "$1"' sh FILE`, so `EDITOR="code --wait"` works.
2. The copy lives in a private directory from tempfile.mkdtemp (0700) under $TMPDIR (else the
   system's temp dir), not a predictable /tmp name. It is removed when the session ends, unless
   it holds edits that were not installed (then its path is printed, as crontab(1) does).
3. A change is detected by content, not mtime: unchanged -> "no changes made to crontab", exit 0.
4. The text is validated with the real parser (the target's system flag). Errors are printed as
   `<crontab path>:LINE:COL: message` (the lines are those of the text being edited). On a
   terminal the user is asked `Do you want to retry the same edit? (y/n)` and the same text is
   re-opened; without a terminal (stdin not a tty) nothing is asked: exit 1, edits kept in a file
   that is named.
5. A valid text is installed atomically with a backup (installer.install_text) and the change
   summary is printed. A missing crontab starts from a commented template.
The environment ($VISUAL, $EDITOR, $PATH, $TMPDIR, and the editor's own) is the `env` mapping,
os.environ when None.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cronplus.errors import CronplusError, CrontabError
from cronplus.paths import Paths
from cronplus.service import installer

FALLBACK_EDITORS = ("sensible-editor", "editor", "vi")

# Annotation examples are commented out with "## ": a "# cronplus:" line, even above a commented
# job, is parsed as an annotation (and would be an error with no job after it).
USER_TEMPLATE = """\
# Your crontab for cronplus: standard cron lines, plus annotations in comments plain cron ignores.
# Save and quit to install it; quit without changing anything to cancel.
#
# minute hour day-of-month month day-of-week  command
# Jobs run as under cron: /bin/sh, cwd $HOME, PATH=/usr/bin:/bin, not your shell's environment.
#
# Examples (remove the leading "## " to use them):
## # cronplus-defaults: retries=1 retry-delay=30s
## # cronplus: name=backup timeout=1h alert=env:OPS_WEBHOOK
## 30 2 * * *   /usr/local/bin/backup.sh
## # cronplus: name=report after=backup overlap=skip
## 30 2 * * *   $HOME/bin/report.sh
"""

SYSTEM_TEMPLATE = (
    USER_TEMPLATE.replace("day-of-week  command", "day-of-week  user  command")
    .replace("## 30 2 * * *   /usr", "## 30 2 * * *   root  /usr")
    .replace("## 30 2 * * *   $HOME", "## 30 2 * * *   root  $HOME")
)


@dataclass(frozen=True, slots=True)
class EditOutcome:
    exit_code: int
    installed: installer.InstallResult | None = None
    saved_edits: Path | None = None


def find_editor(env: Mapping[str, str] | None = None) -> str:
    """$VISUAL, then $EDITOR, then the first fallback found on PATH (as crontab(1) documents)."""
    env = os.environ if env is None else env
    for var in ("VISUAL", "EDITOR"):
        value = env.get(var, "").strip()
        if value:
            return value
    for name in FALLBACK_EDITORS:
        if shutil.which(name, path=env.get("PATH")):
            return name
    raise CronplusError("no editor found: set $VISUAL or $EDITOR (e.g. EDITOR=nano)")


def run_editor(editor: str, file: Path, env: Mapping[str, str] | None = None) -> int:
    """Run the editor on `file` through the shell so editor strings with arguments work; the
    file is passed as "$1", so its path is never re-split or glob-expanded."""
    return subprocess.run(["sh", "-c", f'{editor} "$1"', "sh", str(file)],
                          env=None if env is None else dict(env)).returncode


def _temp_root(env: Mapping[str, str]) -> str | None:
    """$TMPDIR of `env` when it names a directory (tempfile's own rule), else tempfile's default."""
    value = env.get("TMPDIR")
    return value if value and os.path.isdir(value) else None


def _ask_retry(stdin: TextIO, err: TextIO) -> bool:
    """`crontab -e`'s question; anything but y/n asks again; end of input means no."""
    while True:
        err.write("Do you want to retry the same edit? (y/n) ")
        err.flush()
        answer = stdin.readline()
        if not answer:
            err.write("\n")
            return False
        answer = answer.strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no"):
            return False
        err.write("Please answer y or n.\n")


def edit_session(
    paths: Paths,
    *,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> EditOutcome:
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    err = err or sys.stderr
    env = os.environ if env is None else env
    editor = find_editor(env)
    target = paths.crontab
    original = installer.read_installed(target)
    start_text = original if original is not None else (SYSTEM_TEMPLATE if paths.system else USER_TEMPLATE)
    workdir = Path(tempfile.mkdtemp(prefix="cronplus-edit-", dir=_temp_root(env)))  # 0700 by mkdtemp's contract
    work = workdir / target.name
    work.write_text(start_text, encoding="utf-8", errors="surrogateescape")
    os.chmod(work, 0o600)
    keep = False
    try:
        while True:
            status = run_editor(editor, work, env)
            text = work.read_text(encoding="utf-8", errors="surrogateescape")  # bytes, as install reads them
            if status != 0:
                keep = text != start_text
                err.write(f"cronplus edit: editor `{editor}` exited with status {status}; crontab not changed\n")
                if keep:
                    err.write(f"cronplus edit: your edits are saved in {work}\n")
                return EditOutcome(1, saved_edits=work if keep else None)
            if text == start_text:
                out.write("no changes made to crontab\n")
                return EditOutcome(0)
            if installer.read_installed(target) != original:
                # crontab(1) silently overwrites a concurrent change; at least say so (it is in .bak).
                err.write(f"cronplus edit: warning: {target} changed while you were editing; "
                          f"your version replaces it and the other is kept as {target.name}{installer.BACKUP_SUFFIX}\n")
            try:
                result = installer.install_text(text, target, system=paths.system)
            except CrontabError as exc:
                err.write(f"{exc}\n")
                err.write(f"errors in crontab: {len(exc.diagnostics)}; not installed\n")
                if stdin.isatty() and _ask_retry(stdin, err):
                    continue
                keep = True
                err.write(f"cronplus edit: your edits are saved in {work}\n")
                return EditOutcome(1, saved_edits=work)
            except CronplusError as exc:  # valid, but it could not be written (permissions, disk full)
                keep = True
                err.write(f"cronplus edit: {exc}\ncronplus edit: your edits are saved in {work}\n")
                return EditOutcome(1, saved_edits=work)
            return EditOutcome(0, installed=result)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
