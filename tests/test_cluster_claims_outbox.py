"""The alert outbox shared by the delivery workers of a cluster (store/postgres_outbox.py): a
row is leased by one worker only, and a worker never waits for a row another is claiming."""

from __future__ import annotations

import threading
from collections import Counter

from cronplus.store.postgres import open_postgres, open_postgres_outbox

T0 = 1_767_225_600.0


def fill(pg_url: str, n: int) -> list[int]:
    store = open_postgres(pg_url, host="a")
    try:
        return [store.enqueue_outbox(kind="alert", event="failure", job="backup", run_id=None, target=f"http://h{i}/",
                                     format="json", secret_ref=None, payload={"i": i}, now=T0) for i in range(n)]
    finally:
        store.close()


def test_workers_claiming_the_same_rows_at_once_lease_each_row_once(pg_url: str) -> None:
    ids = fill(pg_url, 60)
    queues = [open_postgres_outbox(pg_url) for _ in range(3)]
    won: list[int] = []
    barrier = threading.Barrier(len(queues))

    def claim(queue: object, order: list[int]) -> None:
        barrier.wait(10)
        for i in range(0, len(order), 5):
            won.extend(row.id for row in queue.claim(order[i:i + 5], now=T0 + 1, lease_s=300))  # type: ignore[attr-defined]

    orders = [ids, list(reversed(ids)), ids[30:] + ids[:30]]
    threads = [threading.Thread(target=claim, args=(q, o)) for q, o in zip(queues, orders, strict=True)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert Counter(won) == Counter(ids)
    finally:
        for queue in queues:
            queue.close()


def test_a_row_another_worker_is_claiming_is_skipped_not_waited_for(pg_url: str) -> None:
    ids = fill(pg_url, 4)
    first, second = open_postgres_outbox(pg_url), open_postgres_outbox(pg_url)
    try:
        got: list[int] = []
        other = threading.Thread(target=lambda: got.extend(row.id for row in second.claim(ids, now=T0 + 1, lease_s=300)))
        with first.batch():  # its lease is not committed yet: its row locks are held
            assert [row.id for row in first.claim(ids[:2], now=T0 + 1, lease_s=300)] == ids[:2]
            other.start()
            other.join(5.0)
            waited = other.is_alive()  # without SKIP LOCKED it waits until the batch ends
        other.join(10)
        assert not waited and got == ids[2:]
        assert second.claim(ids, now=T0 + 2, lease_s=300) == []  # leased: not due again before the lease runs out
    finally:
        first.close()
        second.close()
