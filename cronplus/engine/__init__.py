"""The engine: which runs start when, and each run from spawn to its final record. Reads the
crontab's model (crontab/), records through the store (store/); knows nothing of alerts, the
service or the command line: it publishes run events (events.py) that alerting (a
transactional subscriber) and the service (after-commit subscribers) hear (service/daemon.py
wires them).

- scheduler: ticks, dependency waits, overlap, retries, fan-out (Scheduler); dagrun: a run's
  state (Run); chain: a manual trigger's runs and what it may start; policy: pure decisions
  (outcome, retry delay, overlap); ticks: what persists between supervisors; shutdown: stop
  with every run recorded; runner: one attempt as cron runs it; output: its output pump;
  procgroup, runprocs, orphans: its processes; recovery, leftovers: runs a dead supervisor left;
  events: the run events and their Bus (transactional and after-commit subscribers); explain,
  findings: why a job did or did not run at a time (`cronplus why`), from history.

May import: foundation, crontab, store.
"""
