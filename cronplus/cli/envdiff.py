"""`cronplus exec JOB --diff`: how the environment a job gets from cron differs from the caller's,
the usual answer to "it works in my shell but not from cron".

Pure: two environments, the job's command, its working directory and the caller's in; lines out.
What is said, in order: the variables that most often explain it (PATH with the directories the
job lacks, HOME, LANG, SHELL, always; LC_ALL, LC_CTYPE, TZ, USER, LOGNAME, when they differ),
where the command's first word resolves on each PATH when that differs, the working directory,
then the other variables that differ, and the names only one side has.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

ALWAYS = ("PATH", "HOME", "LANG", "SHELL")
WHEN_DIFFERENT = ("LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME")


@dataclass(frozen=True, slots=True)
class EnvDiff:
    caller: Mapping[str, str]
    job: Mapping[str, str]

    @property
    def only_caller(self) -> list[str]:
        """Variables the job will not have."""
        return sorted(set(self.caller) - set(self.job))

    @property
    def only_job(self) -> list[str]:
        return sorted(set(self.job) - set(self.caller))

    @property
    def differing(self) -> list[str]:
        return sorted(k for k in set(self.caller) & set(self.job) if self.caller[k] != self.job[k])

    def path_lacks(self) -> list[str]:
        """Directories of the caller's PATH that the job's PATH does not have, in the caller's order."""
        job_dirs = set(self.job.get("PATH", "").split(":"))
        return [d for d in dict.fromkeys(self.caller.get("PATH", "").split(":")) if d and d not in job_dirs]


def _value(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "(unset)")


def first_word(command: str) -> str | None:
    """The program a shell command starts with, when it is a plain word (no assignment, no
    redirection, no shell syntax we cannot read)."""
    try:
        words = shlex.split(command, comments=False, posix=True)
    except ValueError:
        return None
    for word in words:
        if "=" in word.split("/")[0] and not word.startswith("="):
            continue  # VAR=value prefix
        if any(c in word for c in "|&;<>()$`*?[{}!"):
            return None
        return word
    return None


def resolve(word: str, path: str, cwd: str) -> str | None:
    """Where `word` runs from for a shell with this PATH in `cwd` (None: not found)."""
    if "/" in word:
        full = os.path.join(cwd, word)
        return full if os.access(full, os.X_OK) and not os.path.isdir(full) else None
    return shutil.which(word, path=path)


def render(diff: EnvDiff, *, command: str, job_cwd: str, caller_cwd: str) -> list[str]:
    lines = ["The job's environment (as cron gives it) against yours:"]
    for name in (*ALWAYS, *(n for n in WHEN_DIFFERENT if diff.caller.get(n) != diff.job.get(n))):
        mine, theirs = _value(diff.caller, name), _value(diff.job, name)
        if mine == theirs:
            lines.append(f"  {name}: the same ({mine})")
            continue
        lines.append(f"  {name}: yours {mine}; the job's {theirs}")
        if name == "PATH" and diff.path_lacks():
            lines.append(f"    the job's PATH lacks: {', '.join(diff.path_lacks())}")
        if name == "SHELL":
            lines.append(f"    the command runs as {theirs} -c '...', not in your shell")
    word = first_word(command)
    if word is not None:
        mine_at = resolve(word, diff.caller.get("PATH", ""), caller_cwd)
        theirs_at = resolve(word, diff.job.get("PATH", ""), job_cwd)
        if mine_at != theirs_at:
            lines.append(f"  The command's first word '{word}': for you {mine_at or 'not found'}; "
                         f"for the job {theirs_at or 'not found'}")
    if os.path.realpath(job_cwd) != os.path.realpath(caller_cwd):
        lines.append(f"  The job starts in {job_cwd} (its HOME); you are in {caller_cwd}")
    shown = set(ALWAYS) | set(WHEN_DIFFERENT)
    others = [n for n in diff.differing if n not in shown]
    if others:
        lines.append(f"  Also different ({len(others)}): {', '.join(others)}")
    if diff.only_caller:
        lines.append(f"  Only yours, missing for the job ({len(diff.only_caller)}): {', '.join(diff.only_caller)}")
    if diff.only_job:
        lines.append(f"  Only the job's ({len(diff.only_job)}): {', '.join(diff.only_job)}")
    return lines
