"""Default job names: a stable slug of the command (README "The crontab language": `name`'s default).

Rule (documented for users, deterministic across runs and machines):
1. Split the command (before any unescaped `%`) at shell operators (`;`, `&`, `|`), drop
   redirections (`>file`, `2>&1`, `< in`), and take the first part that is not a `cd`
   (Debian's `cd / && run-parts ...`), or the whole command when that leaves nothing.
2. Lowercase it; replace every run of characters outside `[a-z0-9]` by `-`; strip `-` at both
   ends; cut to 40 characters at a `-` boundary when possible; `job` when nothing is left.
3. Explicit `name=` values are taken first. The first job (in file order) with a given slug gets
   it plain; a later job whose slug is taken gets `-` plus the first 6 hex digits of
   sha1(schedule text + NUL + command, as UTF-8 with the file's undecodable bytes as they were),
   and, for an exact duplicate line, `-2`, `-3`, ... too.
So `/opt/ml/train.sh --full > /tmp/log 2>&1` is named `opt-ml-train-sh-full`. Pure.
"""

from __future__ import annotations

import hashlib
import re

_OPERATOR = re.compile(r"[|;&]+")
_REDIRECT = re.compile(r"\d*[<>]+&?\s*\S*")
_NON_SLUG = re.compile(r"[^a-z0-9]+")
MAX_SLUG = 40


def slug(command: str) -> str:
    head = command
    for part in _OPERATOR.split(command):
        part = _REDIRECT.sub(" ", part).strip()
        if part and part.split(None, 1)[0] != "cd":
            head = part
            break
    text = _NON_SLUG.sub("-", head.lower()).strip("-")
    if len(text) > MAX_SLUG:
        cut = text[:MAX_SLUG]
        text = cut.rsplit("-", 1)[0] if "-" in cut[MAX_SLUG // 2 :] else cut
        text = text.strip("-")
    return text or "job"


def assign_names(jobs: list[tuple[str | None, str, str]]) -> list[str]:
    """(explicit name or None, schedule text, command) per job, in file order -> names."""
    taken = {name for name, _, _ in jobs if name}
    slugs: dict[str, str] = {}  # command -> slug: big generated files repeat commands
    next_n: dict[str, int] = {}  # hashed name -> the next -N to try: N duplicates cost O(N), not O(N^2)
    names: list[str] = []
    for name, sched, command in jobs:
        if name:
            names.append(name)
            continue
        base = slugs.get(command) or slugs.setdefault(command, slug(command))
        candidate = base
        if candidate in taken:
            # surrogateescape: a command's undecodable bytes (crontab.load_crontab) hash as themselves
            digest = hashlib.sha1(f"{sched}\0{command}".encode("utf-8", "surrogateescape")).hexdigest()[:6]
            hashed = candidate = f"{base}-{digest}"
            n = next_n.get(hashed, 2)
            while candidate in taken:
                candidate = f"{hashed}-{n}"
                n += 1
            next_n[hashed] = n
        taken.add(candidate)
        names.append(candidate)
    return names
