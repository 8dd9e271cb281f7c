"""Tables that fit the terminal, as `ps` and `systemctl` do: on a terminal narrower than the table,
long free-text columns (a reason, a command) are shortened with `…` down to a minimum, then
low-priority columns are dropped in a fixed order, then the free text gets what is left; every
line is at most the terminal's width. In a pipe, or with `--wide`, nothing is cut (scripts and
`grep` see everything).

`Column(header, drop=N, flex=M)`: `drop` orders the columns that may go (1 first; 0 never),
`flex` is the width a shortened column keeps at least (0: never shortened); twice that is kept
while a column can still be dropped instead. The separator is two
spaces, as tabulate's "plain" and "simple" formats put between columns.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

SEP = 2
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    drop: int = 0  # 1 goes first; 0: always kept
    flex: int = 0  # shortened down to this many characters; 0: never shortened


def terminal_width(*, wide: bool) -> int | None:
    """The width to fit: the terminal's when stdout is one (COLUMNS wins, as in `ps`), None (no
    limit) in a pipe or with --wide."""
    import shutil

    if wide or not sys.stdout.isatty():
        return None
    return max(20, shutil.get_terminal_size().columns)


def visible_len(text: str) -> int:
    return len(_ANSI.sub("", text))


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def plan(columns: Sequence[Column], natural: Sequence[int], width: int | None,
         *, header_pad: int = 0) -> tuple[list[int], list[int]]:
    """Which columns to keep (indices, in order) and each one's width, for `natural` content widths
    (header included, plus `header_pad`) and a line `width` (None: everything, natural widths)."""
    keep = list(range(len(columns)))
    widths = list(natural)
    if width is None:
        return keep, widths

    def total() -> int:
        return sum(widths[i] for i in keep) + SEP * (len(keep) - 1)

    def squeeze(factor: int) -> None:  # flex columns down to factor x their minimum, the widest first
        for i in sorted((i for i in keep if columns[i].flex), key=lambda i: -widths[i]):
            over = total() - width
            if over <= 0:
                return
            floor = min(widths[i], max(columns[i].flex * factor, len(columns[i].header) + header_pad))
            widths[i] = max(floor, widths[i] - over)

    squeeze(2)  # free text keeps a readable width before a column goes...
    for i in sorted((i for i in keep if columns[i].drop), key=lambda i: columns[i].drop):
        if total() <= width:
            break
        keep.remove(i)
    squeeze(1)  # ...and is cut to its minimum only when nothing else can go
    # give the room won by dropping back to the shortened columns, up to their natural width
    for i in (i for i in keep if columns[i].flex):
        room = width - total()
        if room <= 0:
            break
        widths[i] = min(natural[i], widths[i] + room)
    return keep, widths


def fit_rows(columns: Sequence[Column], rows: Sequence[Sequence[str]],
             width: int | None) -> tuple[list[str], list[list[str]], list[int]]:
    """The headers and rows to print for `width` (see plan): kept columns only, long cells shortened.
    Also returns the kept columns' widths. Cells may carry ANSI colour codes (not counted)."""
    from tabulate import MIN_PADDING  # tabulate makes a column at least its header + this wide

    natural = [max([len(c.header) + MIN_PADDING] + [visible_len(row[i]) for row in rows]) for i, c in enumerate(columns)]
    keep, widths = plan(columns, natural, width, header_pad=MIN_PADDING)
    headers = [columns[i].header for i in keep]
    out = [[row[i] if visible_len(row[i]) <= widths[i] else shorten(_ANSI.sub("", row[i]), widths[i]) for i in keep]
           for row in rows]
    return headers, out, [widths[i] for i in keep]


def clip(text: str, width: int | None) -> str:
    """Last resort (nothing left to drop or shorten): cut each line at `width`, as `ps` does."""
    if width is None:
        return text
    return "\n".join(line if visible_len(line) <= width else shorten(_ANSI.sub("", line), width)
                     for line in text.split("\n"))


def table(columns: Sequence[Column], rows: Sequence[Sequence[str]], *, width: int | None,
          tablefmt: str = "plain") -> str:
    """A tabulate table of `rows` fitted to `width` (None: full width)."""
    from tabulate import tabulate

    headers, cells, _ = fit_rows(columns, rows, width)
    text = str(tabulate(cells, headers=headers, tablefmt=tablefmt, disable_numparse=True))
    return clip("\n".join(line.rstrip() for line in text.split("\n")), width)
