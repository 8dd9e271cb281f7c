"""The run state machine as a table: every row of runstate.TABLE is pinned here, written out
again by hand (state, event -> state, effects), so a change to the machine is a change to this
table too; what the table does not allow raises."""

from __future__ import annotations

import pytest

from cronplus.engine.runstate import (
    TABLE,
    Effect,
    Event,
    IllegalTransition,
    Kind,
    RunState,
    Step,
    transition,
)

S, K, E = RunState, Kind, Effect
UNSTARTED = (E.RECORD_UNSTARTED, E.RELEASE)

EXPECTED: list[tuple[RunState, Kind, RunState, tuple[Effect, ...]]] = [
    # admission
    (S.NEW, K.ADMIT_WAIT, S.WAITING, (E.WAKE,)),
    (S.QUEUED, K.ADMIT_WAIT, S.WAITING, (E.WAKE,)),
    (S.NEW, K.ADMIT_DELAY, S.DELAYED, (E.WAKE,)),
    (S.QUEUED, K.ADMIT_DELAY, S.DELAYED, (E.WAKE,)),
    (S.WAITING, K.ADMIT_DELAY, S.DELAYED, (E.WAKE,)),
    (S.NEW, K.ADMIT_QUEUE, S.QUEUED, ()),
    (S.NEW, K.START, S.LAUNCHING, (E.LAUNCH,)),
    (S.WAITING, K.START, S.LAUNCHING, (E.LAUNCH,)),
    (S.QUEUED, K.START, S.LAUNCHING, (E.LAUNCH,)),
    (S.DELAYED, K.START, S.LAUNCHING, (E.LAUNCH,)),
    (S.RETRY_WAIT, K.START, S.LAUNCHING, (E.LAUNCH,)),
    (S.NEW, K.NOT_RUN, S.FINAL, (E.RECORD_NOT_RUN, E.RELEASE)),
    (S.WAITING, K.NOT_RUN, S.FINAL, (E.RECORD_NOT_RUN, E.RELEASE)),
    # an attempt
    (S.LAUNCHING, K.SPAWNED, S.RUNNING, (E.SUPERVISE,)),
    (S.RUNNING, K.ENDED_RETRY, S.RETRY_WAIT, (E.RECORD_END, E.RETRY_TIMER)),
    (S.RUNNING, K.ENDED, S.FINAL, (E.RECORD_END, E.RELEASE)),
    # overlap=replace
    (S.WAITING, K.REPLACED, S.WAITING, ()),
    (S.QUEUED, K.REPLACED, S.QUEUED, ()),
    (S.DELAYED, K.REPLACED, S.FINAL, UNSTARTED),
    (S.LAUNCHING, K.REPLACED, S.LAUNCHING, (E.CANCEL,)),
    (S.RUNNING, K.REPLACED, S.RUNNING, (E.CANCEL,)),
    (S.RETRY_WAIT, K.REPLACED, S.FINAL, UNSTARTED),
    (S.FINAL, K.REPLACED, S.FINAL, ()),
    # reload removed the job
    (S.WAITING, K.REMOVED, S.FINAL, UNSTARTED),
    (S.QUEUED, K.REMOVED, S.FINAL, UNSTARTED),
    (S.DELAYED, K.REMOVED, S.FINAL, UNSTARTED),
    (S.LAUNCHING, K.REMOVED, S.LAUNCHING, ()),
    (S.RUNNING, K.REMOVED, S.RUNNING, ()),
    (S.RETRY_WAIT, K.REMOVED, S.RETRY_WAIT, ()),
    (S.FINAL, K.REMOVED, S.FINAL, ()),
    # shutdown: STOP, then INTERRUPT after the grace
    (S.WAITING, K.STOP, S.FINAL, UNSTARTED),
    (S.QUEUED, K.STOP, S.FINAL, UNSTARTED),
    (S.DELAYED, K.STOP, S.FINAL, UNSTARTED),
    (S.LAUNCHING, K.STOP, S.FINAL, UNSTARTED),
    (S.RETRY_WAIT, K.STOP, S.FINAL, UNSTARTED),
    (S.RUNNING, K.STOP, S.RUNNING, ()),
    (S.FINAL, K.STOP, S.FINAL, ()),
    (S.WAITING, K.INTERRUPT, S.FINAL, UNSTARTED),
    (S.QUEUED, K.INTERRUPT, S.FINAL, UNSTARTED),
    (S.DELAYED, K.INTERRUPT, S.FINAL, UNSTARTED),
    (S.LAUNCHING, K.INTERRUPT, S.FINAL, UNSTARTED),
    (S.RETRY_WAIT, K.INTERRUPT, S.FINAL, UNSTARTED),
    (S.RUNNING, K.INTERRUPT, S.RUNNING, (E.CANCEL,)),
    (S.FINAL, K.INTERRUPT, S.FINAL, ()),
    # a bug in the supervisor
    *((s, K.CRASHED, S.FINAL, (E.KILL, E.RELEASE)) for s in RunState if s is not S.FINAL),
    # pools (engine/pools.py): no free slot; a granted slot; what will not start ends unstarted
    *((s, K.ADMIT_POOL, S.POOLED, ()) for s in (S.NEW, S.WAITING, S.QUEUED, S.DELAYED, S.RETRY_WAIT)),
    (S.POOLED, K.START, S.LAUNCHING, (E.LAUNCH,)),
    (S.POOLED, K.STOP, S.FINAL, UNSTARTED),
    (S.POOLED, K.INTERRUPT, S.FINAL, UNSTARTED),
    (S.POOLED, K.REMOVED, S.FINAL, UNSTARTED),
    (S.POOLED, K.REPLACED, S.FINAL, UNSTARTED),
    # pause: a tick's run not started ends (skipped); a started one goes on, its retries too
    (S.WAITING, K.PAUSED, S.FINAL, UNSTARTED),
    (S.QUEUED, K.PAUSED, S.FINAL, UNSTARTED),
    (S.DELAYED, K.PAUSED, S.FINAL, UNSTARTED),
    (S.POOLED, K.PAUSED, S.FINAL, UNSTARTED),
    (S.LAUNCHING, K.PAUSED, S.LAUNCHING, ()),
    (S.RUNNING, K.PAUSED, S.RUNNING, ()),
    (S.RETRY_WAIT, K.PAUSED, S.RETRY_WAIT, ()),
    (S.FINAL, K.PAUSED, S.FINAL, ()),
    # sensors (wait-for=)
    *((s, K.SENSE, S.SENSING, (E.PROBE,)) for s in (S.NEW, S.WAITING, S.QUEUED, S.DELAYED, S.RETRY_WAIT)),
    (S.SENSING, K.START, S.LAUNCHING, (E.END_SENSOR, E.LAUNCH)),
    (S.SENSING, K.ADMIT_POOL, S.POOLED, (E.END_SENSOR,)),
    (S.SENSING, K.SENSE_TIMEOUT, S.FINAL, (E.RECORD_WAIT_END, E.END_SENSOR, E.RELEASE)),
    (S.SENSING, K.SENSE_TIMEOUT_RETRY, S.RETRY_WAIT, (E.RECORD_WAIT_END, E.END_SENSOR, E.RETRY_TIMER)),
    (S.SENSING, K.REPLACED, S.FINAL, (E.RECORD_UNSTARTED, E.END_SENSOR, E.RELEASE)),
    (S.SENSING, K.REMOVED, S.FINAL, (E.RECORD_UNSTARTED, E.END_SENSOR, E.RELEASE)),
    (S.SENSING, K.STOP, S.FINAL, (E.KEEP_SENSOR, E.RELEASE)),
    (S.SENSING, K.INTERRUPT, S.FINAL, (E.KEEP_SENSOR, E.RELEASE)),
    (S.SENSING, K.PAUSED, S.FINAL, (E.RECORD_UNSTARTED, E.END_SENSOR, E.RELEASE)),
    # a shared store's database away (outage.py): a run whose row could not be inserted never starts
    (S.LAUNCHING, K.STORE_AWAY, S.FINAL, (E.NOT_STARTED, E.RELEASE)),
    # a cluster (claims.py): another supervisor's row holds the attempt's claim: no row, no process here
    (S.LAUNCHING, K.CLAIMED_ELSEWHERE, S.FINAL, (E.RELEASE,)),
]
EXPECTED += [  # leases (engine/takeover.py): fenced, no row of ours; a taken run's retry follows on the taker
    (S.RUNNING, K.FENCED, S.FINAL, (E.KILL, E.RELEASE)),
    (S.RETRY_WAIT, K.FENCED, S.FINAL, (E.KILL, E.RELEASE)),
    (S.NEW, K.ADOPT_RETRY, S.RETRY_WAIT, (E.RETRY_TIMER,)),
]


@pytest.mark.parametrize(("state", "kind", "to", "effects"), EXPECTED,
                         ids=[f"{s.value}-{k.value}" for s, k, _, _ in EXPECTED])
def test_each_transition(state: RunState, kind: Kind, to: RunState, effects: tuple[Effect, ...]) -> None:
    assert transition(state, kind) == Step(to, effects)


def test_the_table_has_no_row_that_is_not_pinned_here() -> None:
    assert set(TABLE) == {(s, k) for s, k, _, _ in EXPECTED}
    assert len(EXPECTED) == len(TABLE)  # no row twice


@pytest.mark.parametrize(("state", "kind"), [
    (S.FINAL, K.START),  # a final run never starts again (a retry timer that fired late)
    (S.RUNNING, K.START),
    (S.NEW, K.SPAWNED),  # a row and a process only from the launch queue
    (S.RETRY_WAIT, K.ENDED),  # no attempt runs to end
    (S.FINAL, K.ENDED),
    (S.RUNNING, K.NOT_RUN),  # a started run is never recorded as not run
    (S.FINAL, K.CRASHED),
])
def test_what_the_table_does_not_allow_raises(state: RunState, kind: Kind) -> None:
    with pytest.raises(IllegalTransition, match=f"event {kind.value} in state {state.value}"):
        transition(state, kind)


def test_a_final_state_is_reached_only_through_a_row_and_release() -> None:
    """Every way into FINAL records something (or kills what a bug left) and releases the run."""
    for (state, kind), step in TABLE.items():
        if step.state is S.FINAL and state is not S.FINAL:
            assert step.effects[-1] is E.RELEASE, (state, kind)
            if kind is K.CLAIMED_ELSEWHERE:  # its tick's row is the supervisor's that holds the claim
                continue
            # KEEP_SENSOR: a sensor's wait at shutdown is recorded in the store, resumed by the next supervisor
            # NOT_STARTED: its tick is recorded missed when the shared store is back, a retry's attempt final (outage.py)
            assert step.effects[0] in (E.RECORD_END, E.RECORD_NOT_RUN, E.RECORD_UNSTARTED, E.KILL, E.KEEP_SENSOR,
                                       E.RECORD_WAIT_END, E.NOT_STARTED), (state, kind)


def test_the_words_the_control_socket_shows_are_those_it_always_showed() -> None:
    assert {s: s.shown for s in RunState} == {
        S.NEW: "new", S.WAITING: "waiting", S.QUEUED: "queued", S.DELAYED: "delayed",
        S.LAUNCHING: "active", S.RUNNING: "active", S.RETRY_WAIT: "active", S.FINAL: "done",
        S.POOLED: "queued",  # waiting for a pool slot (pools.py): the socket adds which pool
        S.SENSING: "sensing"}
    assert [s for s in RunState if s.started] == [S.LAUNCHING, S.RUNNING, S.RETRY_WAIT]


def test_a_skipped_row_says_the_run_did_not_start_except_when_replaced() -> None:
    assert Event(K.STOP, reason="supervisor shutdown").unstarted_reason == "supervisor shutdown before it could start"
    assert Event(K.REMOVED, reason="job removed from the crontab").unstarted_reason == \
        "job removed from the crontab before it could start"
    assert Event(K.REPLACED, reason="replaced by run 7").unstarted_reason == "replaced by run 7"
