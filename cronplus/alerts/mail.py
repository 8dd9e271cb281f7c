"""Mail as cron sends it (README "Alerts", MAILTO): who gets it, the message, the mailer command. Pure except
`mailer_missing` (one stat) and `read_output` (reads a run's log).

Contract:
- `mailto(job) -> tuple[str, ...]`: the recipients of the `MAILTO` in effect for the job's
  line, split on commas; () when MAILTO is unset, `""`, or not safe (`address_problem`).
  Unlike cronie, an unset MAILTO mails nobody (cronie mails the crontab owner): cronplus mails
  only when MAILTO is non-empty, and a run's output is kept in history anyway.
- `cron_message(...) -> str`: the message cronie's `child_process()` (src/do_command.c)
  writes to the mailer: `From: "(Cron Daemon)" <MAILFROM or USER>`, `To:`, `Subject: Cron
  <USER@HOST> COMMAND` (HOST cut at its first dot, as cronie's `first_word(hostname, ".")`),
  `MIME-Version: 1.0`, `Content-Type: text/plain; charset=UTF-8` (or $CONTENT_TYPE, newlines
  made spaces), `Content-Transfer-Encoding` when $CONTENT_TRANSFER_ENCODING is set,
  `Auto-Submitted: auto-generated` (RFC 3834), one `X-Cron-Env: <NAME=value>` per variable of
  the job's environment, a blank line, the output, and (a cronplus extension) a last line with
  the run's status. Headers that are not ASCII are RFC 2047-encoded (cronie writes them raw).
- `alert_message(...)`: the same envelope for `alert=mailto:ADDR`, with the alert's title as
  the subject and its summary and output tail as the body.
- `mailer_argv(mailer, recipients)`: the default is Debian cron's
  `/usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem RECIPIENTS`; a `--mailer CMD` (or
  $CRONPLUS_MAILER) replaces it, as `crond -m CMD` does: run by `/bin/sh -c CMD` with the
  recipients as its positional parameters ("$@"), reading the message on stdin;
  `smtp://HOST[:PORT]` sends to that SMTP server instead (maildelivery.py).
- The output is capped at `MAX_OUTPUT_BYTES` (the head, then a note with the bytes left out):
  cronie mails all of it, but the message is stored in the outbox row until it is delivered.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from email.header import Header
from typing import TYPE_CHECKING, Any

from cronplus.crontab.mailto import MAILTO_SCHEME, address_problem

if TYPE_CHECKING:
    from cronplus.model import Crontab, JobSpec

DEFAULT_SENDMAIL = "/usr/sbin/sendmail"
DEFAULT_MAILER_ARGS = ("-FCronDaemon", "-i", "-B8BITMIME", "-oem")  # Debian cron's do_command.c
MAILER_ENV = "CRONPLUS_MAILER"
MAX_OUTPUT_BYTES = 256 * 1024
def env_value(job: JobSpec, name: str) -> str | None:
    """The value of the crontab variable `name` in effect at the job's line (the last one wins)."""
    for key, value in reversed(job.env):
        if key == name:
            return value
    return None


def split_recipients(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def mailto(job: JobSpec) -> tuple[str, ...]:
    """Who gets the job's cron mail; () for none (see the module docstring)."""
    value = env_value(job, "MAILTO")
    if not value or address_problem(value):
        return ()
    return split_recipients(value)


def unset_mailto(crontab: Crontab) -> list[JobSpec]:
    """The jobs with no MAILTO in effect at all (not even `MAILTO=""`): cron mails their output
    to the crontab's owner, cronplus does not (module docstring). `cronplus import` names them."""
    return [job for job in crontab.jobs if env_value(job, "MAILTO") is None]


def mailfrom(job: JobSpec, user: str) -> str:
    """cronie: MAILFROM if set and safe, else the crontab's user."""
    value = env_value(job, "MAILFROM")
    return value if value and not address_problem(value) else user


def envelope_sender(sender: str, hostname: str) -> str:
    """The SMTP envelope sender (smtp:// mailer): a bare user name gets the host's name."""
    return sender if "@" in sender else f"{sender}@{hostname}"


def mail_enabled(crontab: Crontab) -> list[JobSpec]:
    """The jobs that send mail: a non-empty MAILTO in effect, or an `alert=mailto:` target.

    One pass over the file's env lines, not one per job (a file alternating N env and N job
    lines would cost N*N/2): every job's env lines are a prefix of the file's (the parser's
    EnvLines), so the jobs are visited by the length of that prefix."""
    jobs = sorted(crontab.jobs, key=lambda j: len(j.env))
    lines = jobs[-1].env if jobs else ()
    value, seen, out = None, 0, []
    for job in jobs:
        while seen < len(job.env):
            key, v = lines[seen]
            value = v if key == "MAILTO" else value
            seen += 1
        safe = bool(value) and address_problem(value or "") is None
        if safe or (job.options.alert or "").startswith(MAILTO_SCHEME):
            out.append(job)
    return sorted(out, key=lambda j: (j.loc.line, j.loc.col))


def mailer_command(mailer: str | None, env: Mapping[str, str]) -> str | None:
    """The configured mailer command (`--mailer`, else $CRONPLUS_MAILER), None for the default."""
    return mailer or env.get(MAILER_ENV) or None


def mailer_argv(mailer: str | None, recipients: Iterable[str]) -> list[str]:
    if mailer:
        return ["/bin/sh", "-c", mailer, "cronplus-mailer", *recipients]
    return [DEFAULT_SENDMAIL, *DEFAULT_MAILER_ARGS, *recipients]


def mailer_missing(mailer: str | None, env: Mapping[str, str]) -> str | None:
    """A one-line problem when mail would have no mailer (the default sendmail is not installed
    and none is configured), else None."""
    if mailer_command(mailer, env) is not None or os.access(DEFAULT_SENDMAIL, os.X_OK):
        return None
    return (f"no mailer: {DEFAULT_SENDMAIL} is not installed, so MAILTO mail stays queued in the outbox;"
            " install one (e.g. postfix, msmtp-mta) or run `cronplus run --mailer CMD`")


def mailer_warning(crontab: Crontab, mailer: str | None, env: Mapping[str, str]) -> str | None:
    """`FILE:LINE:COL: warning: ...` when some job mails and there is no mailer, else None."""
    jobs = mail_enabled(crontab)
    problem = mailer_missing(mailer, env) if jobs else None
    if problem is None:
        return None
    return f"{jobs[0].loc}: warning: {problem}"


def _header(name: str, value: str) -> str:
    value = " ".join(value.splitlines())  # a newline would start a header of the job's choosing
    if value.isascii():
        return f"{name}: {value}"
    return f"{name}: " + Header(value, "utf-8", header_name=name).encode()


def _headers(*, sender: str, recipients: tuple[str, ...], subject: str, env: Mapping[str, str],
             cron_env: Iterable[tuple[str, str]]) -> list[str]:
    lines = [
        _header("From", f'"(Cron Daemon)" <{sender}>'),
        _header("To", ", ".join(recipients)),
        _header("Subject", subject),
        "MIME-Version: 1.0",
        _header("Content-Type", env.get("CONTENT_TYPE") or "text/plain; charset=UTF-8"),
    ]
    if env.get("CONTENT_TRANSFER_ENCODING"):
        lines.append(_header("Content-Transfer-Encoding", env["CONTENT_TRANSFER_ENCODING"]))
    lines.append("Auto-Submitted: auto-generated")
    lines.extend(_header("X-Cron-Env", f"<{key}={value}>") for key, value in cron_env)
    return lines


def short_host(hostname: str) -> str:
    return hostname.split(".", 1)[0]


def cron_message(*, job: JobSpec, recipients: tuple[str, ...], user: str, hostname: str, output: str,
                 status_line: str, cron_env: Iterable[tuple[str, str]]) -> str:
    """The message for one run's cron mail (module docstring)."""
    env = dict(cron_env)
    headers = _headers(sender=mailfrom(job, user), recipients=recipients,
                       subject=f"Cron <{user}@{short_host(hostname)}> {job.command}", env=env,
                       cron_env=env.items())
    body = output if not output or output.endswith("\n") else output + "\n"
    return "\n".join(headers) + "\n\n" + body + status_line + "\n"


def alert_message(*, recipients: tuple[str, ...], sender: str, data: Mapping[str, Any]) -> str:
    """The message for an `alert=mailto:` alert: title as subject, summary and output below."""
    from cronplus.alerts import payloads

    headers = _headers(sender=sender, recipients=recipients, subject=f"cronplus: {payloads.title(dict(data))}",
                       env={}, cron_env=())
    body = payloads.summary(dict(data))
    facts = [f"{label}: {value}" for label, value in payloads.facts(dict(data))]
    text = "\n".join([body, "", *facts]) if body else "\n".join(facts)
    if data.get("output_tail"):
        cut = " (the last lines)" if data.get("output_truncated") else ""
        text += f"\n\nOutput{cut}:\n{data['output_tail']}"
    return "\n".join(headers) + "\n\n" + text.rstrip("\n") + "\n"


def status_line(*, job: str, run_id: int, attempt: int, status: str, reason: str | None) -> str:
    """The cronplus extension: the run's outcome as the message's last line."""
    why = f" ({reason})" if reason and reason != status else ""
    return f"-- cronplus: job {job}, run {run_id} attempt {attempt}: {status}{why}"


def read_output(log_path: str | None, *, max_bytes: int = MAX_OUTPUT_BYTES) -> tuple[str, int]:
    """The head of a run's log (at most `max_bytes`, cut on a line when it can) and the number of
    bytes left out. An unreadable log reads as empty."""
    if not log_path:
        return "", 0
    try:
        with open(log_path, "rb") as f:
            raw = f.read(max_bytes + 1)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return "", 0
    if len(raw) > max_bytes:
        raw = raw[:max_bytes]
        cut = raw.rfind(b"\n")
        raw = raw[: cut + 1] if cut > max_bytes // 2 else raw
    text = raw.decode("utf-8", errors="replace")
    return text, max(0, size - len(raw))
