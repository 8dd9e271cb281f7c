"""Crontab environment lines: cronie's load_env (src/env.c) state machine, one line at a time;
and the `%` rule of job commands (cronie src/do_command.c), `split_percent`.

`parse_env_line(line) -> (name, value) | None`: None means "not an env line" (cron then parses
it as a job line). Rules, as cronie: `NAME=value`, blanks allowed around `=`; the name or the
value may be in single or double quotes (quotes removed, nothing may follow the closing quote
but blanks); an unquoted value runs to the end of the line with trailing blanks trimmed; no
variable expansion. `NAME=` with nothing after it is NOT an env line in cronie (its state
machine ends in EQ2), so it is reported as a bad job line; write `NAME=""`. Pure.
"""

from __future__ import annotations

import re

# Fast path: "0 * * * * cmd" has a first word without '=' followed by a non-'=' word.
_JOB_LIKE = re.compile(r"\s*[^\s=\"']+\s+[^\s=]")
# Fast path: `NAME=value` with no quote in the name or at the value's start: what the state
# machine below gives for it, in one match (blanks around `=` and at the ends dropped).
_PLAIN_ENV = re.compile(r"\s*([^\s=\"']+)\s*=\s*([^\s\"'](?:.*\S)?)\s*\Z")


def parse_env_line(line: str) -> tuple[str, str] | None:
    if _JOB_LIKE.match(line):
        return None
    plain = _PLAIN_ENV.match(line)
    if plain is not None:
        return plain.group(1), plain.group(2)
    s = line.strip()
    if not s:
        return None
    name, rest = _take(s, is_name=True)
    if name is None or rest is None:
        return None
    rest = rest.lstrip()
    if not rest.startswith("="):
        return None
    rest = rest[1:].lstrip()
    if not rest:
        return None  # cronie: state EQ2 at end of line -> not an env setting
    value, tail = _take(rest, is_name=False)
    if value is None or (tail is not None and tail.strip()):
        return None
    if not name:
        return None  # "=x": cronie would set a nameless variable; treat it as a bad line
    return name, value


_BARE_NAME = re.compile(r"[^\s=]*")


def _take(s: str, *, is_name: bool) -> tuple[str | None, str | None]:
    """A quoted or bare token at the start of `s`: (token, rest after it)."""
    if s[0] in "'\"":
        q = s[0]
        end = s.find(q, 1)
        if end < 0:
            return None, None  # cronie: unterminated quote -> not an env line
        token = s[1:end]
        if is_name and "=" in token:
            return None, None
        return token, s[end + 1 :]
    if is_name:
        m = _BARE_NAME.match(s)
        assert m is not None
        return m.group(), s[m.end() :]
    return s.rstrip(), None


def split_percent(command: str) -> tuple[str, str | None]:
    """cronie do_command.c: an unescaped `%` ends the command and starts stdin, where every
    unescaped `%` is a newline; `\\%` is a literal `%`; any other backslash pair is kept."""
    if "%" not in command:
        return command, None
    out: list[str] = []
    i, n = 0, len(command)
    stdin: list[str] | None = None
    target = out
    while i < n:
        ch = command[i]
        if ch == "\\" and i + 1 < n:
            nxt = command[i + 1]
            target.append("%" if nxt == "%" else ch + nxt)
            i += 2
            continue
        if ch == "%":
            if stdin is None:
                stdin = []
                target = stdin
            else:
                target.append("\n")
        else:
            target.append(ch)
        i += 1
    return "".join(out), None if stdin is None else "".join(stdin)
