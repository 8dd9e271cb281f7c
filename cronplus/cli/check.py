"""`cronplus check [FILE]`: validate a crontab (README "Using it day to day").

Errors and warnings go to stderr, one `FILE:LINE:COL: message` line each (warnings say
`warning:`). Exit 0 when valid (warnings allowed), 1 when invalid. On success one line
`ok: N jobs, W warnings` goes to stdout. No FILE: the managed crontab (paths.from_args,
`--system` for the system one). FILE `-` reads stdin.
"""

from __future__ import annotations

import argparse
import os
import sys

HELP = "validate a crontab: FILE:LINE:COL: message, exit 1 when invalid"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", metavar="FILE", help="crontab to check (default: the managed one; - for stdin)")


def run(args: argparse.Namespace) -> int:
    from cronplus.crontab.parser import load_crontab, parse_crontab
    from cronplus.errors import CrontabError, capped

    system_flag = bool(getattr(args, "system", False))
    try:
        if args.file == "-":
            # bytes, decoded as load_crontab does: undecodable bytes are kept, never a crash
            text = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
            crontab = parse_crontab(text, path="<stdin>", system=system_flag)
        elif args.file:
            crontab = load_crontab(args.file, system=True if system_flag else None)
        else:
            from cronplus import paths

            where = paths.from_args(args)
            crontab = load_crontab(where.crontab, system=where.system)
    except CrontabError as exc:
        found = sorted([*exc.diagnostics, *getattr(exc, "warnings", ())], key=lambda d: (d.loc.line, d.loc.col))
        for line in capped(found):  # the first 20 and a count: a binary file is not 150 KB of errors
            print(line, file=sys.stderr)
        errors = len(exc.diagnostics)
        print(f"invalid: {errors} error{'s' if errors != 1 else ''}", file=sys.stderr)
        return 1
    for line in capped(crontab.warnings):
        print(line, file=sys.stderr)
    n, w = len(crontab.jobs), len(crontab.warnings)
    from cronplus.alerts.mail import mailer_warning

    no_mailer = mailer_warning(crontab, None, os.environ)  # MAILTO set, no sendmail, no $CRONPLUS_MAILER
    if no_mailer:
        print(no_mailer, file=sys.stderr)
        w += 1
    from cronplus.engine.limits import check_lines

    enforced, not_enforced = check_lines(crontab.jobs)  # resource limits: how this host enforces each
    for line in not_enforced:
        print(line, file=sys.stderr)
    w += len(not_enforced)
    for line in enforced:
        print(line)
    print(f"ok: {n} job{'s' if n != 1 else ''}, {w} warning{'s' if w != 1 else ''}")
    return 0
