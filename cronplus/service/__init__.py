"""Service and operations: the supervisor as a process under systemd, and the crontab's life
on disk (install, edit).

- daemon: `cronplus run`'s wiring (lock, load, READY=1, signals, reload, control socket);
  control: the control socket; systemd: sd_notify and the journal's log format; loopwatch: the
  scheduling task's supervision; stats: counters since start for /metrics (an after-commit
  subscriber of the run events); units: the systemd unit files; installer: validate and write
  a crontab atomically; editor: `cronplus edit`'s session; serving: the shape of `--http`'s
  server (built in web/, handed over by cli); crontabwatch: the crontab's directory watched
  for edits; remotes: `queue=` wired into `cronplus run` (the routed executor, adoption of
  remote runs at start); worker: `cronplus worker`'s process (heartbeat, Celery's worker).

May import: foundation, crontab, store, engine, alerts.
"""
