"""Whole-file checks before the crontab is read line by line: a file that is not text, a UTF-8
byte order mark, CRLF line ends. Pure; works on the text as load_crontab decodes it (UTF-8,
undecodable bytes kept as surrogate escapes: a Latin-1 comment is bytes cron does not care about).

- Not text: among the first 8 KiB, at least 8 control bytes that no text file holds (NUL and the
  C0 controls other than tab, newline, VT, FF, CR and ESC), or 2 and 1 % of it. An executable or
  an image is then ONE error, "not a crontab: binary data at byte N" (N counts from 1, as cmp
  does), instead of one per line; a single stray NUL in a crontab keeps its column error
  (crontab.py).
- A UTF-8 BOM (EF BB BF) is an error: cron reads it as part of the first line, so a job there
  has a bad minute, a comment is no longer a comment, and `MAILTO=` sets a variable whose
  name starts with the BOM. The rest of the file is still checked, without the BOM.
- CRLF line ends are an error: cron ends a line at `\\n` only and keeps the `\\r` in the
  command and in values, so `/bin/sh` runs `cmd\\r` ("not found") and `MAILTO=a@b\\r` is a
  bad address; the job would run and fail, every time. One error for the file, at the first such
  line, with the count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SAMPLE = 8192
BINARY_MIN = 8
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f]")
BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class TextProblem:
    line: int
    col: int
    message: str
    hint: str


def binary_at(text: str) -> int | None:
    """The character index of the first non-text byte when `text` is not text, else None."""
    sample = text[:SAMPLE]
    found = _NOT_TEXT.findall(sample)
    if len(found) < BINARY_MIN and not (len(found) >= 2 and len(found) * 100 >= len(sample)):
        return None
    first = _NOT_TEXT.search(sample)
    return first.start() if first else None


def not_text(text: str) -> TextProblem | None:
    at = binary_at(text)
    if at is None:
        return None
    offset = len(text[:at].encode("utf-8", "surrogateescape")) + 1
    line = text.count("\n", 0, at) + 1
    col = at - (text.rfind("\n", 0, at) + 1) + 1
    return TextProblem(line, col, f"not a crontab: binary data at byte {offset}",
                       "is this the right file? a crontab is text")


def bom(text: str) -> TextProblem | None:
    if not text.startswith(BOM):
        return None
    return TextProblem(1, 1, "UTF-8 byte order mark at the start of the file: cron reads it as part of the first line",
                       "save it as UTF-8 without a BOM: sed -i '1s/^\\xEF\\xBB\\xBF//' FILE")


def crlf(lines: list[str]) -> TextProblem | None:
    first = next((i for i, raw in enumerate(lines) if raw.endswith("\r")), None)
    if first is None:
        return None
    count = sum(1 for raw in lines if raw.endswith("\r"))
    more = f" (and {count - 1} more line{'s' if count > 2 else ''})" if count > 1 else ""
    return TextProblem(first + 1, len(lines[first]),
                       f"CRLF line ends (a Windows editor?){more}: cron keeps the \\r in commands and values, "
                       "so /bin/sh runs 'cmd\\r'", "convert with dos2unix")
