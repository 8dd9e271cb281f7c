"""The systemd unit of a `cronplus worker` (docs/workers.md "Running workers"), rendered from one
place (pure: no I/O), with the conventions of the supervisor's unit (units.py, docs/systemd.md).

Contract:
- `render_worker_unit(*, user, exec_start, env_file)` -> the text of cronplus-worker.service:
  the system unit (`user=False`, /etc/systemd/system) or the user unit. `Type=notify`: the
  worker sends READY=1 once its consumer is up (service/worker.py), STOPPING=1 at its warm
  shutdown; `NotifyAccess=main`. Its queue(s), broker and database come from `env_file`
  (`EnvironmentFile=`: CRONPLUS_QUEUE, CRONPLUS_BROKER, CRONPLUS_DB), so the URLs with their
  passwords are in a root-only file, not on the command line (`ps`, `systemctl show`).
  Restart=on-failure; KillMode=control-group (a job of a worker that died must not run on
  unrecorded); TimeoutStopSec= bounds the warm shutdown. The system unit runs `--system` (jobs
  as their crontab line's users) with StateDirectory=/LogsDirectory=cronplus-worker (paths.py
  takes $STATE_DIRECTORY / $LOGS_DIRECTORY) and RuntimeDirectory=cronplus-worker (rundir.py:
  the $CRONPLUS_OUTPUT files); the user unit leaves the state to cronplus.
- `env_file_text(values)`: KEY="value" lines as systemd's EnvironmentFile= reads them (double
  quotes, backslash escapes); a value with a newline or control character is refused.
- The shipped systemd/cronplus-worker.service is exactly `shipped_worker_unit()`;
  tests/test_worker_unit.py checks that, and `python -m cronplus.service.workerunit systemd/`
  rewrites it after a change here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from cronplus.service.units import SHIPPED_BINARY, exec_line

WORKER_UNIT = "cronplus-worker.service"
SYSTEM_ENV_FILE = "/etc/default/cronplus-worker"

_HEADER = """\
# cronplus-worker.service ({scope} unit): a `cronplus worker` that runs the attempts of `queue=`
# jobs sent by cronplus supervisors (docs/workers.md). Written by `cronplus install-service
# --worker{user_flag} --queue NAME --broker URL --db URL`{shipped}.
# The queue(s), the broker and the shared history are in {env_file}
# (CRONPLUS_QUEUE=gpu, CRONPLUS_BROKER=redis://..., CRONPLUS_DB=postgresql://...; readable by
# {reader} only: the URLs hold passwords).

[Unit]
Description=cronplus worker (runs queue= jobs for cronplus supervisors)
"""

_SYSTEM_AFTER = """\
# As the supervisor's unit: jobs run as their crontab's users, in their homes; the broker and
# the database are on the network.
After=network-online.target remote-fs.target nss-user-lookup.target time-sync.target
Wants=network-online.target
"""

_SERVICE = """\

[Service]
# READY=1 once the worker consumes its queue(s); STOPPING=1 at its warm shutdown.
Type=notify
# Only the worker may report state, never a job it started.
NotifyAccess=main
# CRONPLUS_QUEUE (a comma list), CRONPLUS_BROKER, CRONPLUS_DB (and CRONPLUS_HOST_ID= when the
# host name is not the name to show in runs' host column).
EnvironmentFile={env_file}
ExecStart={exec_start}
Restart=on-failure
RestartSec=5s
# SIGTERM: Celery's warm shutdown: no new attempt is taken, running ones end and are reported.
# Jobs are children of the worker: when its main process dies (a crash, an OOM kill), systemd
# stops the unit and `control-group` kills what is left of them, so no job of a lost attempt
# runs on unrecorded (the supervisor records it `interrupted` after the worker's lease); the next
# start of the worker reports any attempt its predecessor left. TimeoutStopSec= bounds how long
# a stop waits for running jobs.
KillMode=control-group
TimeoutStopSec={timeout_stop_sec}
# Jobs get the default SIGPIPE disposition, as under cron.
IgnoreSIGPIPE=false
SyslogIdentifier=cronplus-worker
SyslogFacility=cron
"""

_SYSTEM_DIRECTORIES = """\
# Run logs (kept here too; their head and tail go to the shared history): root-only, as the
# supervisor's.
StateDirectory=cronplus-worker
StateDirectoryMode=0700
LogsDirectory=cronplus-worker
LogsDirectoryMode=0700
# $CRONPLUS_OUTPUT files on a tmpfs (/run/cronplus-worker, not the supervisor's /run/cronplus:
# systemd removes a unit's RuntimeDirectory= when that unit stops); 0711 as the supervisor's: a
# job of another user reaches its own 0600 file by its path, no one lists or creates there.
RuntimeDirectory=cronplus-worker
RuntimeDirectoryMode=0711
# No sandboxing, for the supervisor unit's reasons (docs/systemd.md): it would apply to the jobs.
"""

_USER_DIRECTORIES = """\
# No StateDirectory=/LogsDirectory=, as in the supervisor's user unit: cronplus keeps its state
# in $XDG_STATE_HOME/cronplus. No sandboxing (docs/systemd.md): it would apply to the jobs.
"""

_INSTALL = """\

[Install]
WantedBy={target}
"""


def render_worker_unit(*, user: bool, exec_start: Sequence[str], env_file: str,
                       timeout_stop_sec: str = "1h", shipped: bool = False) -> str:
    """The unit file text. Raises ValueError for an ExecStart= that cannot be written."""
    header = _HEADER.format(scope="user" if user else "system", user_flag=" --user" if user else "",
                            shipped=(";\n# a copy ships as systemd/cronplus-worker.service (its ExecStart= assumes"
                                     " `pip install\n# 'cronplus[celery,cluster]'` put cronplus in /usr/local/bin)")
                            if shipped else "",
                            env_file=env_file, reader="you" if user else "root")
    service = _SERVICE.format(env_file=env_file, exec_start=exec_line(exec_start), timeout_stop_sec=timeout_stop_sec)
    if user:
        return header + service + _USER_DIRECTORIES + _INSTALL.format(target="default.target")
    return header + _SYSTEM_AFTER + service + _SYSTEM_DIRECTORIES + _INSTALL.format(target="multi-user.target")


def env_file_text(values: Mapping[str, str]) -> str:
    lines = []
    for key, value in values.items():
        if any(ord(ch) < 0x20 or ch == "\x7f" for ch in value):
            raise ValueError(f"{key}: a control character cannot go into an environment file")
        lines.append(f'{key}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"')
    return "".join(line + "\n" for line in lines)


def shipped_worker_unit() -> str:
    return render_worker_unit(user=False, exec_start=[SHIPPED_BINARY, "worker", "--system"],
                              env_file=SYSTEM_ENV_FILE, shipped=True)


if __name__ == "__main__":  # python -m cronplus.service.workerunit systemd/   (regenerate the shipped file)
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "systemd") / WORKER_UNIT
    target.write_text(shipped_worker_unit())
    print(f"wrote {target}")
