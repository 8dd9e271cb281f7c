"""`cronplus import`: take the current `crontab -l` into cronplus's crontab.

Runs the real `crontab -l` (so it sees exactly what cron runs), keeps the text byte for byte
(comments, env lines, order), validates it with the parser before touching anything, refuses to
replace a non-empty cronplus crontab without --force, installs atomically, and then tells the
user to disable the cron copies so the jobs do not run twice."""

from __future__ import annotations

import argparse
import sys

HELP = "take the current `crontab -l` into cronplus's crontab"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="replace an existing non-empty cronplus crontab")


def read_user_crontab() -> str:
    """`crontab -l`'s output, or a CronplusError that says why there is none."""
    import shutil
    import subprocess

    from cronplus.errors import CronplusError

    exe = shutil.which("crontab")
    if exe is None:
        raise CronplusError("`crontab` command not found: is cron installed? nothing to import")
    proc = subprocess.run([exe, "-l"], capture_output=True, stdin=subprocess.DEVNULL)
    stderr = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        detail = stderr or f"exit status {proc.returncode}"
        if "no crontab" in stderr.lower():
            raise CronplusError(f"nothing to import: `crontab -l` says: {detail}")
        raise CronplusError(f"`crontab -l` failed: {detail}")
    try:
        return proc.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise CronplusError("`crontab -l` output is not UTF-8 text") from None


def run(args: argparse.Namespace) -> int:
    from cronplus import installer
    from cronplus.cli.install import print_install
    from cronplus.errors import CronplusError, CrontabError
    from cronplus.paths import from_args

    paths = from_args(args)
    if paths.system:
        raise CronplusError(
            f"{paths.crontab} is a system-format crontab (with a user field) and `crontab -l` has none: "
            "add the user field and use `cronplus install FILE`"
        )
    text = read_user_crontab()
    if not text.strip():
        raise CronplusError("nothing to import: `crontab -l` printed an empty crontab")
    try:
        installer.validate(text, path="crontab -l", system=False)
    except CrontabError as exc:
        print(str(exc), file=sys.stderr)
        print("cronplus rejects this crontab (lines above, as printed by `crontab -l`); nothing imported", file=sys.stderr)
        return 1
    existing = installer.read_installed(paths.crontab)
    if existing is not None and existing.strip() and existing != text and not args.force:
        raise CronplusError(
            f"{paths.crontab} already has content; see it with `cronplus list`. "
            "Use --force to replace it (the old version is kept as .bak)"
        )
    result = installer.install_text(text, paths.crontab, system=False, display_path="crontab -l")
    print_install(result, paths)
    print(
        "\nThese jobs are still in cron's crontab too. So that they do not run twice, disable them\n"
        "there once cronplus runs: check with `crontab -l`, then `crontab -r` (removes it all) or\n"
        "comment the lines out with `crontab -e`."
    )
    return 0
