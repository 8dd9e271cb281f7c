"""The engine: which runs start when, and each run from its tick to its final record. Reads the
crontab's model (crontab/), records through the store (store/); knows nothing of alerts, the
service or the command line: it publishes run events (events.py) that alerting (a
transactional subscriber) and the service (after-commit subscribers) hear (service/daemon.py
wires them).

- scheduler: the decision core and driver (Scheduler), the one place a run's effects are carried
  out; runstate: a run's states, events and effects (pure, a table); ticking: which ticks are
  due; launcher: the one place rows are inserted and attempts started; records: a run's rows
  and the run events they publish; dagrun: a run (Run) and dependency waiting; chain: a manual
  trigger's runs and what it may start; policy: pure decisions (outcome, retry delay, overlap);
  ticks: what persists between supervisors.
- executor: the seam where an attempt is carried out (Executor, Attempt, AttemptResult,
  OutputRef: a Celery executor plugs in there); local: the local subprocess executor; runner,
  spawned, supervise: one local attempt as cron runs it; output: its output pump; procgroup,
  runprocs, orphans: its processes; recovery, leftovers: runs a dead supervisor left;
  events: the run events and their Bus (transactional and after-commit subscribers); explain,
  findings, pipelinefindings: why a job did or did not run at a time (`cronplus why`), from history.
- celeryexec: `queue=` attempts sent to Celery workers (RoutedExecutor, CeleryExecutor); remote:
  the message and a worker's side of one attempt (the local executor's code); celeryapp: the
  Celery application (celery imported only there, only when a job has queue=).

May import: foundation, crontab, store.
"""
