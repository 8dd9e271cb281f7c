"""Dependencies: after= errors, cycles, duplicate names, Airflow trigger rules, order."""

from __future__ import annotations

import pytest

from cronplus.crontab.deps import DepVerdict, evaluate, topological_order
from cronplus.crontab.parser import parse_crontab
from cronplus.errors import CrontabError
from cronplus.status import RunStatus, TriggerRule

S, F, T, INT, U, K, M, R = (
    RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.INTERRUPTED,
    RunStatus.UPSTREAM_FAILED, RunStatus.SKIPPED, RunStatus.MISSED, RunStatus.RUNNING,
)
RUN, WAIT, SKIP, UPF = DepVerdict.RUN, DepVerdict.WAIT, DepVerdict.SKIP, DepVerdict.UPSTREAM_FAILED


def errors(text: str) -> list[str]:
    with pytest.raises(CrontabError) as info:
        parse_crontab(text, path="ct", system=False)
    return [str(d) for d in info.value.diagnostics]


def job(name: str, after: str = "") -> str:
    extra = f" after={after}" if after else ""
    return f"# cronplus: name={name}{extra}\n0 0 * * * {name}\n"


def test_after_naming_no_job_says_did_you_mean() -> None:
    assert errors(job("train") + job("predict", "trian")) == [
        "ct:3:32: after: no job named 'trian' (did you mean 'train'?)"
    ]


def test_after_points_at_each_missing_name_in_the_list() -> None:
    assert errors(job("a") + job("b", "a,zzz")) == ["ct:3:28: after: no job named 'zzz'"]


def test_a_cycle_names_every_job_in_it() -> None:
    assert errors(job("a", "c") + job("b", "a") + job("c", "b")) == [
        "ct:1:26: dependency cycle: a after c after b after a (after= must not lead back to the job itself)"
    ]


def test_a_job_after_itself_is_a_cycle() -> None:
    assert errors(job("x", "x")) == ["ct:1:26: dependency cycle: x after x (after= must not lead back to the job itself)"]


def test_every_separate_cycle_is_reported() -> None:
    got = errors(job("a", "b") + job("b", "a") + job("c", "d") + job("d", "c") + job("e", "a"))
    assert [g.split(": ", 2)[1] for g in got] == ["dependency cycle", "dependency cycle"]
    assert "a after b after a" in got[0] and "c after d after c" in got[1]


def test_duplicate_names_are_errors_at_the_second_job() -> None:
    assert errors(job("a") + job("a")) == ["ct:4:1: duplicate job name 'a' (first at line 2) (give each job its own name=)"]


def test_a_broken_upstream_line_is_not_reported_again_as_missing() -> None:
    got = errors("# cronplus: name=a\n99 0 * * * a\n" + job("b", "a"))
    assert got == ["ct:2:1: bad minute: 99 is out of range 0-59"]


# Airflow's trigger rules. None = upstream run of this tick not final yet.
@pytest.mark.parametrize(
    ("rule", "upstream", "verdict"),
    [
        (TriggerRule.ALL_SUCCESS, [S, S], RUN),
        (TriggerRule.ALL_SUCCESS, [S, None], WAIT),
        (TriggerRule.ALL_SUCCESS, [S, R], WAIT),
        (TriggerRule.ALL_SUCCESS, [F, None], UPF),  # decided early, as Airflow
        (TriggerRule.ALL_SUCCESS, [S, T], UPF),
        (TriggerRule.ALL_SUCCESS, [S, INT], UPF),
        (TriggerRule.ALL_SUCCESS, [S, U], UPF),
        (TriggerRule.ALL_SUCCESS, [S, K], SKIP),
        (TriggerRule.ALL_SUCCESS, [S, M], SKIP),  # missed counts as skipped
        (TriggerRule.ALL_SUCCESS, [], RUN),
        (TriggerRule.ALL_DONE, [S, F, K, U], RUN),
        (TriggerRule.ALL_DONE, [F, None], WAIT),
        (TriggerRule.ONE_SUCCESS, [None, S], RUN),
        (TriggerRule.ONE_SUCCESS, [F, None], WAIT),
        (TriggerRule.ONE_SUCCESS, [F, K], UPF),
        (TriggerRule.ONE_SUCCESS, [K, K], SKIP),
        (TriggerRule.ALL_FAILED, [F, T, U], RUN),
        (TriggerRule.ALL_FAILED, [F, None], WAIT),
        (TriggerRule.ALL_FAILED, [F, S], SKIP),
        (TriggerRule.ALL_FAILED, [K, None], SKIP),
        (TriggerRule.ONE_FAILED, [None, F], RUN),
        (TriggerRule.ONE_FAILED, [None, U], RUN),
        (TriggerRule.ONE_FAILED, [S, None], WAIT),
        (TriggerRule.ONE_FAILED, [S, K], SKIP),
        (TriggerRule.NONE_FAILED, [S, K], RUN),
        (TriggerRule.NONE_FAILED, [S, None], WAIT),
        (TriggerRule.NONE_FAILED, [F, None], UPF),
        (TriggerRule.NONE_FAILED, [S, U], UPF),
    ],
)
def test_trigger_rules_follow_airflow(rule: TriggerRule, upstream: list[RunStatus | None], verdict: DepVerdict) -> None:
    assert evaluate(rule, upstream) is verdict


def test_topological_order_puts_upstream_first_and_keeps_file_order_otherwise() -> None:
    ct = parse_crontab(job("c", "b") + job("a") + job("b", "a") + job("z"), path="ct", system=False)
    assert topological_order(ct.jobs) == ["a", "b", "c", "z"]
