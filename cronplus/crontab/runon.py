"""`run-on=any|all|HOST` (README "A cluster of supervisors": several sharing one PostgreSQL store): which
supervisors schedule a job. `any` (the default): every one computes its ticks and one claims each
(engine/claims.py); `all`: each runs every tick itself (its claim is its host id); HOST: only the
supervisor whose `--host-id` is HOST schedules it, the others do not even try. Pure."""

from __future__ import annotations

from cronplus.errors import shown

ANY, ALL = "any", "all"
MAX_HOST_ID = 200  # as `--host-id` (cli/run.py)


def host_id_problem(value: str) -> str | None:
    """Why `value` cannot be a host id (printable, no whitespace, at most MAX_HOST_ID), or None."""
    if not value:
        return "a host id cannot be empty"
    if len(value) > MAX_HOST_ID:
        return f"a host id has at most {MAX_HOST_ID} characters"
    if any(not ch.isprintable() or ch.isspace() for ch in value):
        return f"'{shown(value)}' is not a host id: printable characters, no whitespace"
    return None


def runs_here(run_on: str, host: str) -> bool:
    """Whether the supervisor named `host` schedules a job of this run-on= at all."""
    return run_on in (ANY, ALL) or run_on == host
