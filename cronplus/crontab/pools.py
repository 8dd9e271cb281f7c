"""`# cronplus-pools: gpu=1 db=4` (README "Pools"): named pools of run slots, and `pool=NAME`. Pure.

Contract:
- `DIRECTIVE` matches the line's start; `parse_line(text, base_col) -> (pools, problems)`:
  `pools` is [(name, slots, col)] (slots None when bad: an error in `problems`, the name still
  known), `problems` [(col, message, hint)] (cols 1-based, in the line).
  A name is [A-Za-z0-9_.-]+, slots a whole number 0-100000 (0 is legal: lint warns, its jobs
  never run). Several directive lines are allowed; a pool defined twice is an error (the
  parser says where the first one is).
- `misspelt_directive(comment) -> str | None`: a hint for `# cronplus-pool:` and the like, and
  for `# cronplus-pools gpu=1` (no colon).
- `named(comment)`: the names a misspelt pools line meant (no undefined-pool cascade at its jobs).
- `pool=NAME` is annotations.py's key (`NAME_RE`, the same names).
The checks across jobs (an undefined pool, an unused one, one of 0 slots) are lint.py's `lint_pools`.
"""

from __future__ import annotations

import difflib
import re

from cronplus.crontab.annotations import POOL_NAME_RE, parse_pairs
from cronplus.errors import shown

DIRECTIVE = re.compile(r"#\s*cronplus-pools\s*:")
_NEAR_DIRECTIVE = re.compile(r"#\s*cronplus-([A-Za-z_]+)\s*(:?)")
_NAME_RE = re.compile(POOL_NAME_RE)
_SLOTS_RE = re.compile(r"\d{1,6}\Z", re.ASCII)
MAX_SLOTS = 100_000


def parse_line(text: str, base_col: int) -> tuple[list[tuple[str, int | None, int]], list[tuple[int, str, str | None]]]:
    """The pools of one directive's text (after the colon, which is at column base_col - 1); a
    pool whose slots are bad has None (named, so its jobs get no "not defined" error too)."""
    pools: list[tuple[str, int | None, int]] = []
    problems: list[tuple[int, str, str | None]] = []
    any_pair = False
    for item in parse_pairs(text):
        if isinstance(item, int):
            problems.append((base_col + item, "bad pools line: expected NAME=SLOTS", "like '# cronplus-pools: gpu=1 db=4'"))
            return pools, problems
        any_pair = True
        key_col, value_col = base_col + item.key_offset, base_col + item.value_offset
        if not _NAME_RE.match(item.key):
            problems.append((key_col, f"'{shown(item.key)}' is not a pool name", "use letters, digits, _ . -"))
        elif not _SLOTS_RE.match(item.value) or int(item.value) > MAX_SLOTS:
            problems.append((value_col, f"bad pool {item.key}: '{shown(item.value)}' is not a whole number 0-{MAX_SLOTS}",
                             "the most runs of the pool's jobs at once"))
            pools.append((item.key, None, key_col))
        else:
            pools.append((item.key, int(item.value), key_col))
    if not any_pair:
        problems.append((base_col, "empty pools line", "like '# cronplus-pools: gpu=1 db=4'"))
    return pools, problems


def named(comment: str) -> set[str]:
    """The pool names a misspelt or colon-less pools directive meant to define: the parser's
    undefined-pool check does not repeat that line's error at their jobs."""
    m = _NEAR_DIRECTIVE.match(comment)
    if m is None or (m.group(1) != "pools" and misspelt_directive(comment) != "did you mean '# cronplus-pools:'?"):
        return set()
    return {item.key for item in parse_pairs(comment[m.end():]) if not isinstance(item, int)}


def misspelt_directive(comment: str) -> str | None:
    m = _NEAR_DIRECTIVE.match(comment)
    if m is None:
        return None
    if m.group(1) in ("defaults", "pools"):  # the colon is missing (with it, it is no mistake)
        return None if m.group(2) else f"add the colon: '# cronplus-{m.group(1)}: ...'"
    close = difflib.get_close_matches(m.group(1), ["pools", "defaults"], n=1, cutoff=0.6)
    return f"did you mean '# cronplus-{close[0]}:'?" if close else None
