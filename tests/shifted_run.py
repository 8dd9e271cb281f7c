"""`cronplus run` whose scheduler clock is the system clock plus a fixed offset (argv[1], seconds):
a test puts the next minute's tick a second away instead of waiting for it. The rest is the real
supervisor (`cronplus ARGS... run`), as the command line builds it.

Usage: python -m tests.shifted_run OFFSET --crontab FILE --state-dir DIR run

The offset is the clock's known shift (Settings.clock_shift_s), so a cluster of such supervisors
does not look skewed from the database's clock; CRONPLUS_TEST_SKEW=S makes this one S seconds
off (its clock's shift less S is what it says it is), to test the clock skew refusal.
"""

from __future__ import annotations

import os
import sys
import time

from cronplus import paths
from cronplus.cli import build_command_parser
from cronplus.cli.run import _host_id, _http, _lease, _max_running
from cronplus.service.daemon import Settings, run_supervisor


class ShiftedClock:
    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


def main() -> int:
    offset = float(sys.argv[1])
    parser, _ = build_command_parser("run")
    args = parser.parse_args([a for a in sys.argv[2:] if a != "run"])
    return run_supervisor(Settings(paths=paths.from_args(args), shutdown_grace=args.shutdown_grace,
                                   clock=ShiftedClock(offset), max_running=_max_running(args),
                                   host_id=_host_id(args), lease_s=_lease(args), http=_http(args), broker=args.broker,
                                   clock_shift_s=offset - float(os.environ.get("CRONPLUS_TEST_SKEW", "0"))))


if __name__ == "__main__":
    sys.exit(main())
