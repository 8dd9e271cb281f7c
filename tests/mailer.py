"""A recording mailer for the mail tests: a real executable that stores its argv and the
message it read on stdin (one JSON file per call in DIR), and can be told to fail its first N
calls (exit 75, EX_TEMPFAIL, with a line on stderr) to prove retries."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

SCRIPT = """#!{python}
import json, pathlib, sys
box = pathlib.Path({box!r})
calls = sorted(box.glob("call-*.json"))
n = len(calls) + len(list(box.glob("fail-*")))
message = sys.stdin.buffer.read().decode("utf-8", "replace")
if n < {fail_first}:
    (box / f"fail-{{n:04d}}").write_text(message)
    print("sendmail: temporary failure, try later", file=sys.stderr)
    sys.exit(75)
(box / f"call-{{n:04d}}.json").write_text(json.dumps({{"argv": sys.argv[1:], "message": message}}))
"""


@dataclass(frozen=True)
class Mail:
    argv: list[str]
    message: str

    @property
    def headers(self) -> dict[str, list[str]]:
        head = self.message.split("\n\n", 1)[0]
        out: dict[str, list[str]] = {}
        for line in head.splitlines():
            name, _, value = line.partition(": ")
            out.setdefault(name, []).append(value)
        return out

    def header(self, name: str) -> str:
        [value] = self.headers[name]
        return value

    @property
    def body(self) -> str:
        return self.message.split("\n\n", 1)[1]


class Mailbox:
    def __init__(self, tmp_path: Path, *, fail_first: int = 0) -> None:
        self.dir = tmp_path / f"mailbox-{fail_first}"
        self.dir.mkdir()
        self.script = tmp_path / f"recording-mailer-{fail_first}"
        self.script.write_text(SCRIPT.format(python=sys.executable, box=str(self.dir), fail_first=fail_first))
        self.script.chmod(0o755)

    @property
    def command(self) -> str:
        """A `--mailer` / $CRONPLUS_MAILER value passing the recipients on ("$@")."""
        return f'{self.script} "$@"'

    def mails(self) -> list[Mail]:
        return [Mail(**json.loads(p.read_text())) for p in sorted(self.dir.glob("call-*.json"))]

    def failures(self) -> int:
        return len(list(self.dir.glob("fail-*")))
