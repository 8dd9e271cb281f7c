"""A run's output readable from any host: the capped head and tail of its log, kept in its
history row (runs.output_head / output_tail, schema 4) when the store is shared by several
hosts (PostgreSQL), while the full log stays on the host that ran it (issue 14, item 4).

- `read_excerpt(path) -> (head, tail) | None`: the first EXCERPT_BYTES of the log file and the
  last EXCERPT_BYTES after those (nothing twice: a log of at most 2 x EXCERPT_BYTES is whole in
  the two), cut at UTF-8 character boundaries and decoded with U+FFFD for bytes that are not
  UTF-8 (the columns are text on both backends). None when the file cannot be read. Two reads
  at the run's end; the local executor does it only when asked (`LocalExecutor(excerpts=True)`:
  a shared store), so the single-host path pays nothing and a SQLite history does not grow.
- `render(excerpt, host=, path=, gone=) -> bytes` (excerpt: store.api.OutputExcerpt): what `cronplus output` and the HTTP API print for a run
  whose log is on another host (or gone): the head, one line
  "[... N bytes not shown: the full log is on HOST at PATH ...]", the tail; a log that fits
  in the two is printed whole, without that line. N is the log's size (runs.log_bytes) less
  what is shown (exact for UTF-8 output).

Pure but for the two reads of `read_excerpt`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronplus.store.api import OutputExcerpt

EXCERPT_BYTES = 8192  # each of head and tail: a screenful of a stack trace or of a summary


def read_excerpt(path: str, cap: int = EXCERPT_BYTES) -> tuple[str, str] | None:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            if size <= 2 * cap:  # whole: split where a character ends, nothing dropped
                data = f.read(2 * cap)
                cut = _char_end(data[:cap])
                head, tail = data[:cut], data[cut:]
            else:  # a character cut by either cap is dropped whole (it is in the part not shown)
                head = f.read(cap)
                f.seek(size - cap)
                tail = f.read(cap)
                head, tail = head[:_char_end(head)], tail[_char_start(tail):]
    except OSError:
        return None
    return head.decode("utf-8", "replace"), tail.decode("utf-8", "replace")


def _char_end(data: bytes) -> int:
    """Where `data` ends without a partly cut UTF-8 character."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # a lead byte: whole when its sequence fits in what follows it
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= need else len(data) - back
    return len(data)


def _char_start(data: bytes) -> int:
    """Where `data` starts after the continuation bytes of a character cut in front of it."""
    index = 0
    while index < min(3, len(data)) and 0x80 <= data[index] < 0xC0:
        index += 1
    return index


def not_shown(excerpt: OutputExcerpt) -> int | None:
    """Bytes of the log between head and tail (None: the log's size is not known)."""
    if excerpt.log_bytes is None:
        return None
    return max(0, excerpt.log_bytes - len(excerpt.head.encode()) - len(excerpt.tail.encode()))


def render(excerpt: OutputExcerpt, *, host: str | None, path: str | None, gone: bool = False) -> bytes:
    """Head, the line saying what is not shown and where the whole log is, tail."""
    head, tail = excerpt.head, excerpt.tail
    hidden = not_shown(excerpt)
    if hidden == 0:  # the whole log is in the row: as the job wrote it
        return (head + tail).encode()
    where = f"on {host or 'the host that ran it'} at {path}" + (" (no longer there)" if gone else "")
    if hidden is None:
        note = f"[... the middle may not be shown: the full log is {where} ...]"
    else:
        note = f"[... {hidden} bytes not shown: the full log is {where} ...]"
    body = head.encode()
    if body and not body.endswith(b"\n"):
        body += b"\n"
    body += note.encode() + b"\n" + tail.encode()
    return body
