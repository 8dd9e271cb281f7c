"""Run a `cronplus` command in-process, the way the real command runs it, without starting a
Python: `cronplus.cli.main(argv, env=...)` with the given environment (never os.environ) and
stdin, its stdout/stderr captured as bytes. The result looks like subprocess.CompletedProcess,
so a test can switch between the two without changing its assertions.

What cannot be injected this way stays with subprocesses: the local time zone (libc's, set by
$TZ at process start), a terminal on stdout, signals, and the command's own process (pid files,
process groups). Tests of those start the real command (`pytest -m e2e` selects them).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from cronplus.cli import main

Out = TypeVar("Out", str, bytes)


@dataclass(frozen=True, slots=True)
class Completed(Generic[Out]):
    args: list[str]
    returncode: int
    stdout: Out
    stderr: Out


def base_env(**extra: str) -> dict[str, str]:
    """What every command under test gets, and nothing else of the developer's shell: PATH, a
    UTF-8 locale and the session's $TMPDIR (conftest); a test adds HOME, CRONPLUS_*..."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
            "TMPDIR": tempfile.gettempdir(), **extra}


def _stream(data: bytes = b"") -> io.TextIOWrapper:
    # what a child's std streams are: UTF-8 text over bytes, not a terminal
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape", write_through=True)


def run_bytes(argv: list[str], *, env: Mapping[str, str], stdin: bytes = b"") -> Completed[bytes]:
    out, err, inp = _stream(), _stream(), _stream(stdin)
    saved_stdin = sys.stdin
    sys.stdin = inp
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv, env=dict(env))
            except SystemExit as exc:  # --help/--version of the top parser
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdin = saved_stdin
    out.flush()
    err.flush()
    return Completed(list(argv), code, out.buffer.getvalue(), err.buffer.getvalue())  # type: ignore[attr-defined]


def run(argv: list[str], *, env: Mapping[str, str], stdin: str | None = None) -> Completed[str]:
    """Like subprocess.run(["cronplus", *argv], env=env, input=stdin, capture_output=True, text=True)."""
    done = run_bytes(argv, env=env, stdin=(stdin or "").encode())
    return Completed(done.args, done.returncode, _text(done.stdout), _text(done.stderr))


def _text(data: bytes) -> str:
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read()  # universal newlines, as text=True
