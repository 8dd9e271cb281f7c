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

A mailer of the form `smtp://HOST[:PORT]` (port 25 by default) is not a command: the message
goes straight to that SMTP server (smtplib, no TLS, no auth: a local relay), envelope sender the
payload's `sender`, recipients the payload's. 2xx: delivered; a 5xx reply (every recipient
refused, sender refused, message refused): failed, it will not be accepted later; 4xx,
connection errors and timeouts: retried.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from cronplus.alerts import mail
from cronplus.alerts.outcome import Outcome

if TYPE_CHECKING:
    from cronplus.store.outbox import OutboxRow

log = logging.getLogger("cronplus.delivery")

DEFAULT_TIMEOUT_S = 60.0
SMTP_SCHEME = "smtp://"
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _tail(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return " ".join(text.splitlines()[-3:])[-200:]


def send_mail(row: OutboxRow, *, mailer: str | None, env: Mapping[str, str],
              timeout: float = DEFAULT_TIMEOUT_S) -> Outcome:

    recipients = [str(r) for r in row.payload.get("recipients") or ()]
    message = row.payload.get("message")
    if not recipients or not isinstance(message, str):
        return Outcome("failed", error="mail row without recipients or message")
    command = mail.mailer_command(mailer, env)
    if command and command.startswith(SMTP_SCHEME):
        return _send_smtp(command, str(row.payload.get("sender") or "root"), recipients, message, timeout)
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


def _send_smtp(url: str, sender: str, recipients: list[str], message: str, timeout: float) -> Outcome:
    import smtplib
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or 25
    except ValueError:
        host = None
    if not host:
        return Outcome("failed", error=f"mailer {url} is not smtp://HOST[:PORT]")
    where = f"smtp://{host}:{port}"
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            # SMTP lines end in CRLF (RFC 5321); smtplib fixes bare LFs only in str messages,
            # and a str would have to be ASCII: so the bytes are fixed here.
            wire = message.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
            smtp.ehlo_or_helo_if_needed()
            eight_bit = not message.isascii() and smtp.has_extn("8bitmime")  # as sendmail -B8BITMIME
            refused = smtp.sendmail(sender, recipients, wire, mail_options=["BODY=8BITMIME"] if eight_bit else [])
    except smtplib.SMTPRecipientsRefused as exc:
        return _smtp_outcome(where, "every recipient refused", exc.recipients.values())
    except smtplib.SMTPResponseException as exc:
        return _smtp_outcome(where, "refused", [(exc.smtp_code, exc.smtp_error)])
    except (OSError, smtplib.SMTPException) as exc:  # refused connection, timeout, dropped link
        reason = "timed out" if isinstance(exc, socket.timeout) else (str(exc) or type(exc).__name__)
        return Outcome("retry", error=f"mailer {where}: {reason}"[:300])
    if refused:  # some recipients took it: a retry would mail those twice, so it is said only
        log.warning("mail to %s via %s: refused %s", ", ".join(recipients), where, ", ".join(sorted(refused)))
    return Outcome("delivered")


def _smtp_outcome(where: str, what: str, replies: Iterable[tuple[int, bytes | str]]) -> Outcome:
    pairs = [(int(code), text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text))
             for code, text in replies]
    said = "; ".join(f"{code} {text}" for code, text in pairs)
    transient = any(400 <= code < 500 for code, _ in pairs)
    return Outcome("retry" if transient else "failed", error=f"mailer {where}: {what}: {said}"[:300])


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.communicate()
