"""The engine: which runs start when, and each run from spawn to its final record. Reads the
crontab's model (crontab/), records through the store (store/); knows nothing of alerts, the
service or the command line (the supervisor hands the Scheduler its alerting object:
service/daemon.py).

- scheduler: ticks, dependency waits, overlap, retries, fan-out (Scheduler); dagrun: a run's
  state (Run); chain: a manual trigger's runs and what it may start; policy: pure decisions
  (outcome, retry delay, overlap); ticks: what persists between supervisors; shutdown: stop
  with every run recorded; runner: one attempt as cron runs it; output: its output pump;
  procgroup, runprocs, orphans: its processes; recovery, leftovers: runs a dead supervisor left;
  alertsink: the shape of the alerting object (AlertSink).

May import: foundation, crontab, store.
"""
