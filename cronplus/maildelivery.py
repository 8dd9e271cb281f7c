"""Deliver one `mail` outbox row: run the mailer with the stored message on stdin.

`send_mail(row, mailer=, env=, timeout=) -> Outcome`, never raises. The row's payload holds
`recipients` and the whole `message` (built when the run became final, mail.py), so a log
pruned meanwhile loses nothing. Outcomes, as the outbox's other deliveries (delivery.py):

- exit 0: delivered (cronie too only knows the mailer's exit status).
- the mailer missing, a non-zero exit, killed by a signal, or still running after `timeout`
  (its whole process group is killed): retried with the outbox's backoff until the row is too
  old; the error names the mailer and quotes the end of its stderr.
- a payload without recipients or message (never written by cronplus): failed.

The mailer runs in its own session with the supervisor's environment (PATH defaulted), its
stdout and stderr captured, so its noise never reaches the supervisor's log unasked.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cronplus import mail

if TYPE_CHECKING:
    from cronplus.delivery import Outcome
    from cronplus.outbox import OutboxRow

DEFAULT_TIMEOUT_S = 60.0
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _tail(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return " ".join(text.splitlines()[-3:])[-200:]


def send_mail(row: OutboxRow, *, mailer: str | None, env: Mapping[str, str],
              timeout: float = DEFAULT_TIMEOUT_S) -> Outcome:
    from cronplus.delivery import Outcome

    recipients = [str(r) for r in row.payload.get("recipients") or ()]
    message = row.payload.get("message")
    if not recipients or not isinstance(message, str):
        return Outcome("failed", error="mail row without recipients or message")
    command = mail.mailer_command(mailer, env)
    argv = mail.mailer_argv(command, recipients)
    shown = command or argv[0]
    child_env = {**env}
    child_env.setdefault("PATH", _DEFAULT_PATH)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=child_env, start_new_session=True, close_fds=True)
    except OSError as exc:
        return Outcome("retry", error=f"mailer {shown} cannot start: {exc.strerror or exc}")
    try:
        _, err = proc.communicate(message.encode("utf-8"), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return Outcome("retry", error=f"mailer {shown} still running after {timeout:g}s: killed")
    except OSError as exc:  # e.g. EPIPE when the mailer exits without reading
        _kill_group(proc)
        return Outcome("retry", error=f"mailer {shown}: {exc.strerror or exc}")
    if proc.returncode == 0:
        return Outcome("delivered")
    how = f"exit {proc.returncode}" if proc.returncode > 0 else f"killed by signal {-proc.returncode}"
    if proc.returncode == 127 and command:
        how += " (command not found?)"
    said = _tail(err)
    return Outcome("retry", error=f"mailer {shown}: {how}" + (f": {said}" if said else ""))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.communicate()
