"""`cronplus list`: print the installed crontab exactly (like `crontab -l`); when there is none,
say so on stderr and exit 1, as crontab(1) does ("no crontab for USER")."""

from __future__ import annotations

import argparse
import sys

HELP = "print the installed crontab (like crontab -l)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    import getpass

    from cronplus.errors import CronplusError
    from cronplus.paths import from_args

    paths = from_args(args)
    try:
        data = paths.crontab.read_bytes()
    except FileNotFoundError:
        print(f"no crontab for {getpass.getuser()} ({paths.crontab} does not exist; create it with `cronplus edit`)", file=sys.stderr)
        return 1
    except OSError as exc:
        raise CronplusError(f"cannot read {paths.crontab}: {exc.strerror}") from None
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0
