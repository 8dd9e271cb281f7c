"""The "did you mean" of an unknown `# cronplus:` key (annotations.convert). Pure.

Contract: `key_hint(key, keys) -> str`: "did you mean 'memory-max'?" for the closest key of the
parser's table `keys`, else "keys: ..." listing them all. A key is first compared written as the
table writes keys (lower case, `-` for `_`), then looked up among the names other schedulers and
systemd give the same setting (ALIASES: `cpus`, `priority`, `pids-max`, Airflow's
`poke-interval`...), where spelling alone finds nothing or the wrong key (`pids-max` is closer to
`cpu-max` than to `tasks-max`), then by difflib against the table.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

# another tool's name (normalised: lower case, no `-` or `_`) -> our key (or key=value)
ALIASES: dict[str, str] = {
    # systemd (MemoryMax=, CPUQuota=, TasksMax=, Nice=), docker / Kubernetes resources
    "memory": "memory-max", "mem": "memory-max", "memorylimit": "memory-max", "memlimit": "memory-max",
    "maxmemory": "memory-max", "rss": "memory-max",
    "cpus": "cpu-max", "cpuquota": "cpu-max", "cpulimit": "cpu-max", "cpu": "cpu-max",
    "pidsmax": "tasks-max", "pidslimit": "tasks-max", "maxtasks": "tasks-max", "nproc": "tasks-max",
    "maxprocs": "tasks-max", "maxprocesses": "tasks-max",
    "priority": "nice", "niceness": "nice",
    # pools (Airflow's pool=, a concurrency limit)
    "pools": "pool", "slots": "pool", "concurrency": "pool",
    # sensors (Airflow's poke_interval=, timeout=, soft_fail=)
    "sensor": "wait-for", "waituntil": "wait-for", "precondition": "wait-for", "wait": "wait-for",
    "pokeinterval": "wait-every", "pollinterval": "wait-every", "poll": "wait-every", "waitinterval": "wait-every",
    "sensortimeout": "wait-timeout", "softfail": "wait-timeout-status",
    # slow runs
    "slow": "alert-on=slow", "sla": "expected-duration", "expectedruntime": "expected-duration",
    # the rest
    "timezone": "tz", "crontz": "tz", "dependson": "after", "depends": "after", "upstream": "after",
    "webhook": "alert", "maxretries": "retries", "retry": "retries", "executiontimeout": "timeout",
    "maxruntime": "timeout", "timelimit": "timeout",
}


def key_hint(key: str, keys: Collection[str]) -> str:
    written = key.lower().replace("_", "-")
    if written in keys:  # `Memory_Max`: keys are lower case with `-`
        return f"did you mean '{written}'?"
    alias = ALIASES.get(written.replace("-", ""))
    if alias is not None and alias.partition("=")[0] in keys:
        return f"did you mean '{alias}'?"
    close = difflib.get_close_matches(written, list(keys), n=1)
    return f"did you mean '{close[0]}'?" if close else "keys: " + " ".join(keys)
