"""The systemd unit files, rendered from one place (pure: no I/O).

Contract:
- `render_unit(*, user, exec_start)` returns the text of cronplus.service: the system unit
  (`user=False`, for /etc/systemd/system) or the user unit (`user=True`, for
  ~/.config/systemd/user). `exec_start` is the argv of the supervisor, e.g.
  `["/usr/local/bin/cronplus", "run"]`; each word is quoted for systemd's command-line syntax.
  `ExecReload=` is the same argv with `run` replaced by `reload` (`reload_argv`), so it finds the
  supervisor through the same --state-dir and waits for its answer: `systemctl reload` returns
  once the reload is done, and fails when the crontab is refused (`/bin/kill -HUP` could not).
- The shipped files systemd/cronplus.service and systemd/user/cronplus.service are exactly
  `render_unit(..., exec_start=shipped_exec_start())`; tests/test_units.py checks that, and
  `python -m cronplus.service.units systemd/` rewrites them after a change here.

Both units are named cronplus.service so that `systemctl [--user] status cronplus` works;
the user copy lives in a `user/` folder as in a distribution's /usr/lib/systemd/user.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

UNIT_NAME = "cronplus.service"
SHIPPED_BINARY = "/usr/local/bin/cronplus"  # where `pip install` as root puts the script

# A word needs quotes when systemd would otherwise split it or read quotes/escapes in it.
_NEEDS_QUOTES = re.compile(r"""[\s"'\\;]""")


def exec_quote(word: str, *, program: bool = False) -> str:
    """One word of an Exec*= line: '%' doubled (systemd expands specifiers even inside quotes),
    '$' doubled in arguments (variables are expanded there, not in the program's path), quoted
    when it has blanks, quotes, backslashes or ';'. systemd refuses a program path containing
    quotes or backslashes ("Executable name contains special characters"), so do we."""
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in word):
        raise ValueError(f"control character in {word!r}: cannot go into a unit file")
    if program and any(ch in word for ch in "'\"\\"):
        raise ValueError(f"systemd cannot run a program whose path has quotes or backslashes: {word!r}")
    text = word.replace("%", "%%")
    if not program:
        text = text.replace("$", "$$")
    if word and not _NEEDS_QUOTES.search(word):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def exec_line(argv: Sequence[str]) -> str:
    if not argv or not argv[0].startswith("/"):
        raise ValueError("ExecStart= needs an absolute path to the program")
    return " ".join([exec_quote(argv[0], program=True), *(exec_quote(word) for word in argv[1:])])


def reload_argv(exec_start: Sequence[str]) -> list[str]:
    """`cronplus ... run OPTIONS` -> `cronplus ... reload OPTIONS`: the global options
    (--state-dir, --system, ...) that `cronplus install-service` puts after `run` find the same
    state dir, hence the same control socket."""
    words = list(exec_start)
    if "run" not in words[1:]:
        raise ValueError(f"ExecStart= has no 'run' command to derive ExecReload= from: {words!r}")
    words[words.index("run", 1)] = "reload"
    return words


def shipped_exec_start() -> list[str]:
    return [SHIPPED_BINARY, "run"]


_SYSTEM_HEADER = """\
# cronplus.service (system unit): the cronplus supervisor for /etc/cronplus/crontab.
# Written by `cronplus install-service` to /etc/systemd/system/cronplus.service; a copy ships as
# systemd/cronplus.service (its ExecStart= assumes `pip install` put cronplus in /usr/local/bin).
# Why each setting is here, and why the usual sandboxing is not: docs/systemd.md.

[Unit]
Description=cronplus job supervisor (cron with retries, dependencies, history and alerts)
# As cronie's and Debian's cron units do: start once user lookups (NSS/LDAP), remote home
# directories and user logins work, and the clock is synchronised, because jobs run as their
# crontab's users, in their homes, at wall-clock times. After=network.target makes us stop
# before the network goes down, so a final alert can still leave.
After=network.target remote-fs.target nss-user-lookup.target systemd-user-sessions.service time-sync.target
"""

_USER_HEADER = """\
# cronplus.service (user unit): the cronplus supervisor for your own crontab
# (~/.config/cronplus/crontab), run by your systemd user manager.
# Written by `cronplus install-service --user` to ~/.config/systemd/user/cronplus.service; a copy
# ships as systemd/user/cronplus.service. User services stop when your last session ends unless
# lingering is on for you: loginctl enable-linger $USER
# Why each setting is here, and why the usual sandboxing is not: docs/systemd.md.

[Unit]
Description=cronplus job supervisor for your crontab (retries, dependencies, history and alerts)
"""

_SERVICE = """\

[Service]
# READY=1 after the first clean load of the crontab; STATUS= shows job counts and the next run;
# RELOADING=1/STOPPING=1 around reloads and shutdown.
Type=notify
# Only the supervisor may report state, never a job it started.
NotifyAccess=main
ExecStart={exec_start}
# `cronplus reload` asks the supervisor to re-read the crontab and waits for its answer, so
# `systemctl reload` returns after the reload and fails when an invalid file is refused (the
# old one stays in effect). SIGHUP still reloads too, but its sender learns nothing.
ExecReload={exec_reload}
# The supervisor sends WATCHDOG=1 every WatchdogSec/2; a hung scheduler loop gets restarted.
WatchdogSec={watchdog_sec}s
Restart=on-failure
RestartSec=10s
# On stop, SIGTERM goes to the supervisor only: it stops scheduling, gives running jobs their
# grace, then terminates and records them itself. cronie and Debian's cron use KillMode=process
# so that jobs outlive a cron restart; here a job outliving the supervisor would run unrecorded
# and be marked interrupted while still running. mixed = SIGTERM to the main process, SIGKILL
# to whatever is left once it has exited (or after TimeoutStopSec=, which must stay longer than
# the supervisor's shutdown grace plus a job's kill-grace).
KillMode=mixed
TimeoutStopSec={timeout_stop_sec}s
# Jobs get the default SIGPIPE disposition, as under Debian's cron.service, so that in
# `producer | head` the producer ends quietly instead of seeing EPIPE errors.
IgnoreSIGPIPE=false
# The supervisor's own log lines (job output goes to run logs): `journalctl -t cronplus` whether
# it runs as the cronplus script or as `python -m cronplus`; facility cron as in Debian's
# cron.service, so a syslog rule for cron.* gets them too.
SyslogIdentifier=cronplus
SyslogFacility=cron
"""

_SYSTEM_DIRECTORIES = """\
# history.db and the control socket in /var/lib/cronplus, run logs in /var/log/cronplus;
# both root-only, since run logs hold whatever the jobs print.
StateDirectory=cronplus
StateDirectoryMode=0700
LogsDirectory=cronplus
LogsDirectoryMode=0700
# The jobs' $CRONPLUS_OUTPUT files in /run/cronplus (a tmpfs: making one there costs the
# supervisor a few microseconds, on a disk up to a few hundred); systemd removes it, and
# whatever a killed supervisor left in it, when the unit stops. 0711: a job of another user
# reaches its own file (0600, chowned to it) by its path; no one may list or create there.
RuntimeDirectory=cronplus
RuntimeDirectoryMode=0711
"""

_USER_DIRECTORIES = """\
# No StateDirectory=/LogsDirectory= here: in user units systemd < 254 puts them under
# $XDG_CONFIG_HOME (next to the crontab) and later versions under $XDG_STATE_HOME. cronplus
# creates $XDG_STATE_HOME/cronplus (0700) itself, the same place as when run by hand.
# $CRONPLUS_OUTPUT files go to the unit's own runtime directory ($XDG_RUNTIME_DIR/cronplus, a
# tmpfs, given as $RUNTIME_DIRECTORY): it lives as long as the unit; a supervisor run by hand,
# which may outlive the login that $XDG_RUNTIME_DIR belongs to, keeps them in its state dir.
RuntimeDirectory=cronplus
RuntimeDirectoryMode=0700
"""

_NO_SANDBOX = """\
# No sandboxing, on purpose: every option below would apply to the jobs too (they are this
# service's children), and jobs must keep what cron gives them. cronie's and Debian's cron
# units enable none of these either. Left off, and why:
#   NoNewPrivileges=          jobs run sudo, su, ping, crontab and other setuid programs
#   ProtectSystem=, ProtectHome=, ReadOnlyPaths=, PrivateTmp=
#                             jobs write wherever their user may (/etc, /home, /srv, /tmp
#                             shared with the user's sessions: lock files, sockets)
#   PrivateDevices=           backup jobs read and write disks and tapes
#   PrivateUsers=, CapabilityBoundingSet=
#                             {capabilities}
#   PrivateNetwork=, RestrictAddressFamilies=, IPAddressDeny=
#                             jobs use the network, and alerts are webhooks
#   ProtectKernelTunables=, ProtectKernelModules=, ProtectKernelLogs=, ProtectClock=,
#   ProtectHostname=, ProtectControlGroups=
#                             maintenance jobs run sysctl, modprobe, dmesg, hwclock
#   SystemCallFilter=, SystemCallArchitectures=, MemoryDenyWriteExecute=, LockPersonality=,
#   RestrictNamespaces=, RestrictRealtime=, RestrictSUIDSGID=
#                             these break JIT runtimes (java, node), 32-bit programs,
#                             containers (podman, unshare), chrt and setuid helpers
#   UMask=                    jobs get cron's usual 0022; cronplus creates its own files
#                             0600 and directories 0700 explicitly
# A host whose jobs need less can add its own restrictions: systemctl {manager}edit cronplus
"""

_SYSTEM_CAPABILITIES = "the supervisor becomes each job's user (setuid/setgid, groups)\n#                             and root's jobs keep root's powers"
_USER_CAPABILITIES = "a user manager can only sandbox with PrivateUsers=, which hides\n#                             other users' files and groups from the jobs"

_SYSTEM_INSTALL = """\

[Install]
WantedBy=multi-user.target
"""

_USER_INSTALL = """\

[Install]
WantedBy=default.target
"""


def render_unit(
    *,
    user: bool,
    exec_start: Sequence[str],
    watchdog_sec: int = 60,
    timeout_stop_sec: int = 120,
) -> str:
    """The unit file text. Raises ValueError for an ExecStart= that cannot be written."""
    service = _SERVICE.format(
        exec_start=exec_line(exec_start), exec_reload=exec_line(reload_argv(exec_start)),
        watchdog_sec=watchdog_sec, timeout_stop_sec=timeout_stop_sec,
    )
    sandbox = _NO_SANDBOX.format(
        capabilities=_USER_CAPABILITIES if user else _SYSTEM_CAPABILITIES,
        manager="--user " if user else "",
    )
    if user:
        return _USER_HEADER + service + _USER_DIRECTORIES + sandbox + _USER_INSTALL
    return _SYSTEM_HEADER + service + _SYSTEM_DIRECTORIES + sandbox + _SYSTEM_INSTALL


def shipped_units() -> dict[str, str]:
    """Relative path under systemd/ -> text of the unit files in the source tree."""
    return {
        UNIT_NAME: render_unit(user=False, exec_start=shipped_exec_start()),
        f"user/{UNIT_NAME}": render_unit(user=True, exec_start=shipped_exec_start()),
    }


if __name__ == "__main__":  # python -m cronplus.service.units systemd/   (regenerate the shipped files)
    import sys

    root = Path(sys.argv[1] if len(sys.argv) > 1 else "systemd")
    for rel, text in shipped_units().items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(f"wrote {target}")
