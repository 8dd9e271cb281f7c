"""What `cronplus next EXPR` loads: the schedule fields and next-fire code, not the whole crontab
language (parser, annotations, dependencies, lint) nor hashlib. Start-up time is a budget
(`cronplus next` is typed interactively and used in scripts; bench/bench_startup.py measures it);
this pins the import set, which does not depend on how loaded the machine is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NOT_FOR_NEXT = ("cronplus.crontab.parser", "cronplus.crontab.annotations", "cronplus.crontab.deps",
                "cronplus.crontab.lint", "hashlib")


def modules_after(argv: list[str]) -> set[str]:
    code = (
        "import runpy, sys\n"
        f"sys.argv = {['cronplus', *argv]!r}\n"
        "try:\n    runpy.run_module('cronplus', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stderr.split())


def test_next_with_an_expression_loads_neither_the_crontab_parser_nor_hashlib() -> None:
    # monthly: the times are weeks apart, so the general search (croniter) runs too
    loaded = modules_after(["next", "0 0 1 * *", "--from", "2025-06-01T10:58:00+00:00", "--tz", "UTC"])
    assert "cronplus.crontab.schedule" in loaded and "croniter" in loaded  # it did compute the times
    assert sorted(m for m in NOT_FOR_NEXT if m in loaded) == []


def test_next_with_a_bad_expression_still_reports_it_without_the_parser() -> None:
    loaded = modules_after(["next", "61 * * * *"])
    assert "cronplus.crontab.parser" not in loaded
