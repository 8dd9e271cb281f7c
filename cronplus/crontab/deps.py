"""Job dependencies (`after=`, `trigger=`): graph checks, trigger-rule verdicts, order. Pure.

Contract:
- `check(jobs, after_locs) -> list[Diagnostic]`: duplicate names, `after=` naming no job (with
  "did you mean"), and every dependency cycle, naming the jobs in it.
- `evaluate(rule, upstream) -> DepVerdict`: Airflow's trigger-rule semantics over the statuses
  of this tick's upstream runs (None = not final yet). Status mapping:
    success                          -> success
    failed, timeout, interrupted     -> failed
    upstream_failed                  -> upstream_failed
    skipped, missed                  -> skipped  (a missed run neither ran nor failed; it is
                                        alerted on its own, and failing the whole chain for
                                        a supervisor outage would be noisier than Airflow's
                                        "skipped" propagation)
    running / None                   -> not done
  WAIT while the rule cannot be decided; rules decide early where Airflow does (any failure
  fails all_success and none_failed at once, one success runs one_success, ...).
- `topological_order(jobs) -> list[str]`: upstream before downstream, ties in file order.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from enum import StrEnum

from cronplus.errors import Diagnostic, SourceLoc, shown
from cronplus.model import JobSpec
from cronplus.status import RunStatus, TriggerRule


class DepVerdict(StrEnum):
    WAIT = "wait"
    RUN = "run"
    SKIP = "skip"
    UPSTREAM_FAILED = "upstream_failed"


_OK, _FAIL, _UPFAIL, _SKIP = "success", "failed", "upstream_failed", "skipped"
_KIND = {
    RunStatus.SUCCESS: _OK,
    RunStatus.FAILED: _FAIL,
    RunStatus.TIMEOUT: _FAIL,
    RunStatus.INTERRUPTED: _FAIL,
    RunStatus.UPSTREAM_FAILED: _UPFAIL,
    RunStatus.SKIPPED: _SKIP,
    RunStatus.MISSED: _SKIP,
}


def evaluate(rule: TriggerRule, upstream: Sequence[RunStatus | None]) -> DepVerdict:
    """Airflow's TriggerRuleDep with flag_upstream_failed, for one tick's upstream runs."""
    kinds = [_KIND.get(RunStatus(s)) if s is not None else None for s in upstream]
    total = len(kinds)
    ok = kinds.count(_OK)
    failed = kinds.count(_FAIL) + kinds.count(_UPFAIL)
    skipped = kinds.count(_SKIP)
    done = ok + failed + skipped == total
    if rule is TriggerRule.ALL_SUCCESS:
        if failed:
            return DepVerdict.UPSTREAM_FAILED
        if skipped:
            return DepVerdict.SKIP
        return DepVerdict.RUN if done else DepVerdict.WAIT
    if rule is TriggerRule.ALL_FAILED:
        if ok or skipped:
            return DepVerdict.SKIP
        return DepVerdict.RUN if done else DepVerdict.WAIT
    if rule is TriggerRule.ALL_DONE:
        return DepVerdict.RUN if done else DepVerdict.WAIT
    if rule is TriggerRule.ONE_SUCCESS:
        if ok or not total:
            return DepVerdict.RUN
        if not done:
            return DepVerdict.WAIT
        return DepVerdict.SKIP if skipped == total else DepVerdict.UPSTREAM_FAILED
    if rule is TriggerRule.ONE_FAILED:
        if failed or not total:
            return DepVerdict.RUN
        return DepVerdict.SKIP if done else DepVerdict.WAIT
    if rule is TriggerRule.NONE_FAILED:
        if failed:
            return DepVerdict.UPSTREAM_FAILED
        return DepVerdict.RUN if done else DepVerdict.WAIT
    raise ValueError(f"unknown trigger rule {rule!r}")


# "did you mean" compares a missing name with every job name: capped per file, so a file of N
# jobs with N bad after= stays linear (hints go to the first ones; the errors are all reported).
_HINT_WORK = 50_000


def check(
    jobs: Sequence[JobSpec], after_locs: Mapping[str, SourceLoc], *, known: AbstractSet[str] = frozenset()
) -> list[Diagnostic]:
    """Every dependency error of a file. `after_locs`: job name -> where its after= value starts;
    `known`: names of job lines that had errors themselves (not reported again as missing)."""
    problems: list[Diagnostic] = []
    first: dict[str, JobSpec] = {}
    for job in jobs:
        if job.name in first:
            where = first[job.name].loc
            problems.append(
                Diagnostic(loc=job.loc, message=f"duplicate job name '{shown(job.name)}' (first at line {where.line})",
                           hint="give each job its own name=")
            )
        else:
            first[job.name] = job
    names = list(first)
    budget = _HINT_WORK
    edges: dict[str, list[str]] = {}
    for job in jobs:
        if job.name in edges or not job.options.after:
            continue
        edges[job.name] = []
        base = after_locs.get(job.name, job.loc)
        offset = 0
        for target in job.options.after:
            loc = SourceLoc(path=base.path, line=base.line, col=base.col + offset)
            offset += len(target) + 1
            if target in first:
                edges[job.name].append(target)
                continue
            if target in known:
                continue
            close: list[str] = []
            if budget >= len(names):
                budget -= len(names)
                close = difflib.get_close_matches(target, names, n=1)
            problems.append(
                Diagnostic(loc=loc, message=f"after: no job named '{shown(target)}'",
                           hint=f"did you mean '{shown(close[0])}'?" if close else None)
            )
    problems.extend(_cycles(edges, first, after_locs))
    return problems


def _cycles(
    edges: dict[str, list[str]], jobs: Mapping[str, JobSpec], after_locs: Mapping[str, SourceLoc]
) -> list[Diagnostic]:
    """Every cycle. graphlib finds one at a time (drop its jobs and look again), which is
    quadratic over a whole file of small cycles; so it looks inside each strongly connected
    component (a cycle never leaves one) on its own."""
    problems: list[Diagnostic] = []
    position = {name: i for i, name in enumerate(edges)}  # graphlib's pick depends on the order
    for component in _components(edges):
        members = set(component)
        graph = {n: [t for t in edges[n] if t in members] for n in sorted(component, key=position.__getitem__)}
        problems.extend(_component_cycles(graph, jobs, after_locs))
    return problems


def _components(edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """The strongly connected components that can hold a cycle (more than one job, or a job
    after itself): Tarjan's algorithm, iterative so a long after= chain cannot recurse deeply."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(edges.get(target, ()))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in edges.get(node, ()):
                        found.append(component)
    return found


def _component_cycles(
    graph: dict[str, list[str]], jobs: Mapping[str, JobSpec], after_locs: Mapping[str, SourceLoc]
) -> list[Diagnostic]:
    from graphlib import CycleError, TopologicalSorter

    problems: list[Diagnostic] = []
    while True:
        try:
            TopologicalSorter(graph).prepare()
            return problems
        except CycleError as exc:
            cycle: list[str] = exc.args[1]
        # graphlib gives [a, b, ..., a] walking dependencies; print it upstream-first.
        members = list(dict.fromkeys(cycle))
        start = min(members, key=lambda n: (jobs[n].loc.line, n))
        i = members.index(start)
        ordered = members[i:] + members[:i]
        walk = [shown(n) for n in reversed([*ordered, start])]
        if len(walk) > 9:  # one line: the start of a long cycle and its size
            walk = [*walk[:8], f"... ({len(members)} jobs in all)"]
        path = " after ".join(walk)
        loc = after_locs.get(start, jobs[start].loc)
        problems.append(Diagnostic(loc=loc, message=f"dependency cycle: {path}",
                                   hint="after= must not lead back to the job itself"))
        for name in members:
            graph.pop(name, None)
        graph = {n: [t for t in ts if t not in members] for n, ts in graph.items()}


def topological_order(jobs: Sequence[JobSpec]) -> list[str]:
    """Job names, every upstream before its downstream jobs, otherwise in file order."""
    import heapq

    index = {job.name: i for i, job in enumerate(jobs)}
    waiting = {job.name: {t for t in job.options.after if t in index} for job in jobs}
    downstream: dict[str, list[str]] = {name: [] for name in index}
    for name, ups in waiting.items():
        for up in ups:
            downstream[up].append(name)
    ready = [(index[n], n) for n, ups in waiting.items() if not ups]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for down in downstream[name]:
            waiting[down].discard(name)
            if not waiting[down]:
                heapq.heappush(ready, (index[down], down))
    if len(order) != len(index):
        raise ValueError("dependency cycle among: " + ", ".join(n for n in index if n not in order))
    return order
