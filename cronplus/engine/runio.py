"""Data into and out of a run (README "What a job sees"): a manual run's parameters and a job's outputs.

Parameters: `cronplus trigger JOB --param K=V` (or the API's `{"params": {...}}`) gives the
run's every attempt `CRONPLUS_PARAM_K=V`. K keeps its case (`--param day=2026-12-01` is
`$CRONPLUS_PARAM_day`): letters, digits and `_`, not starting with a digit, as a shell variable
name must be, at most MAX_KEY characters; a value is at most MAX_PARAM_VALUE bytes (UTF-8),
no NUL (an environment cannot carry one); at most MAX_PARAMS per run. A value goes into the
environment only, never into a command line: it is never executed. The downstream runs of a
triggered chain do not inherit them (they get their upstreams' outputs instead): a parameter
is the named job's.

Outputs (GitHub Actions' `$GITHUB_OUTPUT` convention): every attempt gets `$CRONPLUS_OUTPUT`,
the path of a fresh empty file (0600, created O_EXCL in the directory rundir.py picks: a runtime
directory (tmpfs) when there is one, else the state directory's `outputs`; removed after the
attempt). The `KEY=VALUE` lines written there are the attempt's outputs, read after it ended
(the first MAX_OUTPUT_BYTES only: a bigger file is cut there and the run's reason says so), and
also the multi-line form `KEY<<DELIM`, lines, `DELIM`. Keys as parameters' (case kept);
a bad line is skipped and named in the note; the last of a repeated key wins. The after= jobs of
the same tick get them as `CRONPLUS_UPSTREAM_<JOB>_<KEY>` (upper case, any character other than
a letter, digit or `_` as `_`).

Pure but for `OutputFile` (the file's creation, reading and removal).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cronplus.errors import UsageError

Pairs = tuple[tuple[str, str], ...]

MAX_PARAMS = 64
MAX_PARAM_VALUE = 4096  # bytes, UTF-8
MAX_KEY = 128
MAX_OUTPUT_BYTES = 64 * 1024
MAX_OUTPUTS = 256

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")


def key_problem(key: str) -> str | None:
    """Why `key` is no parameter or output name; None when it is one."""
    if not key:
        return "an empty name"
    if len(key) > MAX_KEY:
        return f"a name longer than {MAX_KEY} characters"
    if not _KEY.fullmatch(key):
        return f"'{_shown(key)}' is not a name (letters, digits and _, not starting with a digit)"
    return None


def _shown(text: str) -> str:
    from cronplus.errors import shown

    return shown(text)


def params_from_args(texts: Sequence[str]) -> Pairs:
    """`--param K=V` arguments as ordered pairs (a repeated K: the last wins, in its first
    place); UsageError in one line naming the bad one."""
    pairs: dict[str, str] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep:
            raise UsageError(f"--param {_shown(text)}: expected K=V (e.g. --param day=2026-12-01)")
        pairs[key] = value
    return check_params(pairs.items(), where="--param ")


def params_from_json(value: object) -> Pairs:
    """The control socket's / API's `params` (a JSON object of strings; None: none)."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise UsageError('params must be a JSON object of strings, e.g. {"day": "2026-12-01"}')
    return check_params(value.items())


def check_params(items: Iterable[tuple[object, object]], *, where: str = "") -> Pairs:
    """Validate parameters (from the CLI, the socket or the API): UsageError in one line."""
    pairs: dict[str, str] = {}
    for key, value in items:
        if not isinstance(key, str) or not isinstance(value, str):
            raise UsageError(f"{where}parameters are names and strings, got {type(value).__name__} for {key!r}")
        problem = key_problem(key)
        if problem:
            raise UsageError(f"{where}{_shown(key)}={_shown(value)}: {problem}")
        if "\0" in value:
            raise UsageError(f"{where}{key}: a value cannot hold a NUL character")
        size = len(value.encode("utf-8", "surrogateescape"))
        if size > MAX_PARAM_VALUE:
            raise UsageError(f"{where}{key}: the value has {size} bytes, at most {MAX_PARAM_VALUE} are allowed")
        pairs[key] = value
    if len(pairs) > MAX_PARAMS:
        raise UsageError(f"{where}{len(pairs)} parameters given, at most {MAX_PARAMS} are allowed")
    return tuple(pairs.items())


def param_env(params: Pairs) -> dict[str, str]:
    return {f"CRONPLUS_PARAM_{key}": value for key, value in params}


def env_name(text: str) -> str:
    """`model-v2.score` -> `MODEL_V2_SCORE`."""
    return _NOT_NAME.sub("_", text).upper()


def upstream_env(upstreams: Mapping[str, Pairs]) -> dict[str, str]:
    """`CRONPLUS_UPSTREAM_<JOB>_<KEY>` for each upstream job's outputs (in the order given)."""
    return {f"CRONPLUS_UPSTREAM_{env_name(job)}_{env_name(key)}": value
            for job, outputs in upstreams.items() for key, value in outputs}


# ---- outputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outputs:
    pairs: Pairs
    note: str | None  # for the run's reason: the file was cut, lines were skipped


def parse_outputs(data: bytes, *, cut: int = 0) -> Outputs:
    """The KEY=VALUE / KEY<<DELIM lines of an outputs file (`cut`: bytes beyond what was read)."""
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if cut and lines:
        lines.pop()  # the last line was cut in the middle: not a value anyone wrote
    found: dict[str, str] = {}
    bad: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].removesuffix("\r")
        i += 1
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if sep and "<<" in key:
            sep = ""
        if not sep:
            key, heredoc, delim = line.partition("<<")
            if not heredoc or not delim:
                bad.append(f"line {i}: no '='")
                continue
            body: list[str] = []
            start = i
            while i < len(lines) and lines[i].removesuffix("\r") != delim:
                body.append(lines[i].removesuffix("\r"))
                i += 1
            if i >= len(lines):
                bad.append(f"line {start}: {_shown(key)}<<{_shown(delim)} never ended")
                continue
            i += 1
            value = "\n".join(body)
        problem = key_problem(key)
        if problem:
            bad.append(f"line {i}: {problem}")
            continue
        found.pop(key, None)
        found[key] = value
    notes = []
    if cut:
        notes.append(f"outputs file cut at {MAX_OUTPUT_BYTES // 1024} KiB ({cut + len(data)} bytes written)")
    if len(found) > MAX_OUTPUTS:
        notes.append(f"{len(found) - MAX_OUTPUTS} output(s) beyond {MAX_OUTPUTS} dropped")
        found = dict(list(found.items())[:MAX_OUTPUTS])
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        notes.append(f"outputs skipped: {'; '.join(bad[:3])}{more}")
    return Outputs(tuple(found.items()), "; ".join(notes) or None)


class OutputFile:
    """One attempt's `$CRONPLUS_OUTPUT`: created empty (0600, O_EXCL) in `directory` (made 0700
    when missing), read and removed by `collect`. Our fd stays open until then: reading it back
    costs no second open (a path lookup and an open are most of this file's cost per spawn)."""

    def __init__(self, directory: Path, run_id: int) -> None:
        self.path = directory / f"{run_id}.{os.getpid()}.out"
        flags = os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:  # the common case first: one open, no mkdir (W3: 1,000 spawns a minute)
            self.fd = os.open(self.path, flags, 0o600)
        except FileNotFoundError:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.fd = os.open(self.path, flags, 0o600)
        except FileExistsError:  # a leftover of a crashed supervisor whose run_id and pid came back
            self.path.unlink()
            self.fd = os.open(self.path, flags, 0o600)

    def collect(self) -> Outputs:
        """Read at most MAX_OUTPUT_BYTES (a job may have written a gigabyte: never read it all),
        then remove the file. The job writes through the path: a job that replaced the file
        (`mv`, `> "$CRONPLUS_OUTPUT"` after an `rm`) is read through the path too."""
        fd = self.fd
        try:
            if os.fstat(fd).st_nlink == 0:  # ours was unlinked and replaced: read the path's
                fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO: no wait
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    raise OSError(errno.EINVAL, "not a regular file")
        except OSError as exc:
            self.remove()
            return Outputs((), f"outputs lost: {exc.strerror or exc}: {self.path}")
        try:
            size = os.fstat(fd).st_size
            chunks, got = [], 0
            while got < MAX_OUTPUT_BYTES:
                chunk = os.pread(fd, MAX_OUTPUT_BYTES - got, got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        finally:
            if fd != self.fd:
                os.close(fd)
            self.remove()
        data = b"".join(chunks)
        return parse_outputs(data, cut=max(0, size - len(data)))

    def remove(self) -> None:
        """Close our fd and remove the file (once; idempotent)."""
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1
        with contextlib.suppress(OSError):
            self.path.unlink()


def sweep(directory: Path) -> int:
    """Remove the outputs files a dead supervisor left (killed between an attempt's start and its
    end: `<run_id>.<pid>.out` of another pid). Only one supervisor or in-process trigger runs
    per state directory (control.SupervisorLock), and each state directory has a directory of
    its own (rundir.py, also in a shared runtime directory), so another pid's file is nobody's now."""
    mine = f".{os.getpid()}.out"
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError:  # none yet
        return 0
    for name in names:
        if name.endswith(".out") and not name.endswith(mine):
            with contextlib.suppress(OSError):
                os.unlink(directory / name)
                removed += 1
    return removed
