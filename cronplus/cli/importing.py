"""`cronplus import`: take the current `crontab -l` into cronplus's crontab.

Runs the real `crontab -l` (so it sees exactly what cron runs), keeps the text byte for byte
(comments, env lines, order), validates it with the parser before touching anything, refuses to
replace a non-empty cronplus crontab without --force, installs atomically, and then tells the
user to disable the cron copies so the jobs do not run twice.

`crontab -l` is user format (no user field). Into a system-format crontab (root's default,
/etc/cronplus/crontab, or --system) it goes with `--as-user USER`: USER is inserted as the sixth
field of every job line (after the 5 time fields or the @nickname; comments, `# cronplus:` and
env lines as they are). Without it the command says so, naming that flag and the other way: a
user-format crontab given with --crontab."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronplus.model import Crontab

HELP = "take the current `crontab -l` into cronplus's crontab"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="replace an existing non-empty cronplus crontab")
    p.add_argument("--as-user", metavar="USER",
                   help="into a system-format crontab (root's): run every imported job as USER (e.g. root)")


# A job line: optional indent, the schedule (an @nickname or 5 time fields), blanks, the command.
_JOB_LINE = re.compile(r"^(\s*)(@\S+|\S+\s+\S+\s+\S+\s+\S+\s+\S+)(\s+)(\S.*)$", re.DOTALL)


def add_user_field(text: str, user: str) -> str:
    """User-format crontab text -> system format: `user` after each job line's schedule. Blank
    lines, comments (annotations too) and env lines are kept as they are. Pure."""
    from cronplus.crontab.envlines import parse_env_line

    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        match = _JOB_LINE.match(body)
        if body.lstrip().startswith("#") or parse_env_line(body) is not None or match is None:
            out.append(line)
            continue
        indent, schedule, blank, command = match.groups()
        out.append(f"{indent}{schedule}{blank}{user}{blank}{command}{line[len(body):]}")
    return "".join(out)


def read_user_crontab(env: Mapping[str, str] | None = None) -> str:
    """`crontab -l`'s output (found on `env`'s PATH, default os.environ's), or a CronplusError
    that says why there is none."""
    import shutil
    import subprocess

    from cronplus.errors import CronplusError

    exe = shutil.which("crontab", path=None if env is None else env.get("PATH", os.defpath))
    if exe is None:
        raise CronplusError("`crontab` command not found: is cron installed? nothing to import")
    proc = subprocess.run([exe, "-l"], capture_output=True, stdin=subprocess.DEVNULL,
                          env=None if env is None else dict(env))
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        detail = stderr or f"exit status {proc.returncode}"
        if "no crontab" in stderr.lower():
            raise CronplusError(f"nothing to import: `crontab -l` says: {detail}")
        raise CronplusError(f"`crontab -l` failed: {detail}")
    return proc.stdout.decode("utf-8", "surrogateescape")  # bytes are bytes, as for check and install


def run(args: argparse.Namespace) -> int:
    from cronplus.cli.install import print_install
    from cronplus.errors import CronplusError, CrontabError, UsageError
    from cronplus.paths import environ_of, from_args
    from cronplus.service import installer

    paths = from_args(args)
    if paths.system and not args.as_user:
        import getpass

        raise CronplusError(
            f"{paths.crontab} is a system-format crontab (each job names its user) and `crontab -l` has no "
            f"user field: import it with `cronplus import --as-user {getpass.getuser()}` (every job runs as "
            "that user), or into a user-format crontab: `cronplus --crontab ~/.config/cronplus/crontab import`"
        )
    if args.as_user and not paths.system:
        raise UsageError(f"--as-user adds a user field, which only a system-format crontab has ({paths.crontab} "
                         "is user format: import without it)")
    if args.as_user:
        import pwd

        try:  # the parser only warns about a missing user (its jobs' runs fail); here it is a typo
            pwd.getpwnam(args.as_user)
        except (KeyError, ValueError):  # ValueError: a NUL in the name
            raise CronplusError(f"no such user {args.as_user!r} for --as-user; nothing imported") from None
    text = read_user_crontab(environ_of(args))
    if not text.strip():
        raise CronplusError("nothing to import: `crontab -l` printed an empty crontab")
    if args.as_user:
        text = add_user_field(text, args.as_user)
    try:
        crontab = installer.validate(text, path="crontab -l", system=paths.system)
    except CrontabError as exc:
        print(str(exc), file=sys.stderr)
        shown = f"`crontab -l` with the user field {args.as_user}" if args.as_user else "`crontab -l`"
        print(f"cronplus rejects this crontab (lines above, as printed by {shown}); nothing imported", file=sys.stderr)
        return 1
    existing = installer.read_installed(paths.crontab)
    if existing is not None and existing.strip() and existing != text and not args.force:
        raise CronplusError(
            f"{paths.crontab} already has content; see it with `cronplus list`. "
            "Use --force to replace it (the old version is kept as .bak)"
        )
    result = installer.install_text(text, paths.crontab, system=paths.system, display_path="crontab -l")
    print_install(result, paths)
    print(
        "\nThese jobs are still in cron's crontab too. So that they do not run twice, disable them\n"
        "there once cronplus runs: check with `crontab -l`, then `crontab -r` (removes it all) or\n"
        "comment the lines out with `crontab -e`."
    )
    _say_unset_mailto(crontab, args.as_user)
    return 0


def _say_unset_mailto(crontab: Crontab, as_user: str | None) -> None:
    """cron mails a job's output to the crontab's owner when MAILTO is unset; cronplus mails only
    a MAILTO that is set (mail.py). A migration is where that difference would go unnoticed."""
    import getpass

    from cronplus.alerts.mail import unset_mailto

    silent = unset_mailto(crontab)
    if not silent:
        return
    user = as_user or getpass.getuser()
    print(
        f"\ncron mailed the output of {len(silent)} of these job(s) to {user} (no MAILTO set); cronplus\n"
        "mails only when MAILTO is set, and keeps every run's output in `cronplus output RUN_ID`.\n"
        f"To keep cron's mail, add `MAILTO={user}` at the top of the crontab (`cronplus edit`)."
    )
