"""How fast the outbox drains: alerts per second a DeliveryWorker delivers to a local receiver.

    .venv/bin/python bench/bench_alerts.py [--alerts 2000] [--repeat 3]

Figures (medians of --repeat runs, one process, shared noisy machine):
- enqueue: outbox rows written per second by Alerting.on_end-sized inserts (the loop-thread cost);
- worker, 1 destination: alerts/s when every alert goes to one receiver (one request in flight
  per destination, by design: order and a dead receiver's isolation);
- worker, 4 destinations: alerts/s spread over 4 receivers (4 pool threads);
- bare loop: a plain `requests.Session().post` loop to the same receiver, no database: the floor.

Measured here (2 shared cores, 2,000 alerts, medians of 3): enqueue 21,000 rows/s (47 us/row);
worker 916 alerts/s to 1 destination, 939/s to 4; bare loop 1,246/s (ratio 0.73). The receiver
runs in the same process (GIL), which caps both figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cronplus.alerts.alerting import new_payload  # noqa: E402
from cronplus.alerts.delivery import DeliveryWorker, Policy  # noqa: E402
from cronplus.store import history, outbox  # noqa: E402
from tests.http_receiver import Receiver  # noqa: E402


def data(i: int) -> dict:
    return {"event": "failure", "job": f"job{i % 50}", "run_id": i, "attempt": 1, "status": "failed",
            "exit_code": 1, "host": "bench", "output_tail": "x" * 400, "cronplus_version": "0.1.0"}


def fill(db: Path, urls: list[str], n: int) -> float:
    conn = history.connect(db)
    started = time.perf_counter()
    now = time.time()
    for i in range(n):
        outbox.enqueue(conn, kind="alert", event="failure", job=f"job{i % 50}", run_id=i, target=urls[i % len(urls)],
                       format="json", secret_ref=None, payload=new_payload(data(i), now=now), now=now)
    elapsed = time.perf_counter() - started
    conn.close()
    return n / elapsed


def drain(n: int, destinations: int) -> tuple[float, float]:
    receivers = [Receiver() for _ in range(destinations)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "history.db"
            enqueue_rate = fill(db, [r.url() for r in receivers], n)
            worker = DeliveryWorker(db, policy=Policy(), max_workers=max(4, destinations),
                                    env={"CRONPLUS_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
            started = time.perf_counter()
            worker.start()
            for r in receivers:
                r.wait_for(n // destinations, timeout=300, ok_only=True)
            elapsed = time.perf_counter() - started
            worker.stop()
            conn = history.connect(db)
            assert outbox.counts(conn).get("delivered") == n, outbox.counts(conn)
            conn.close()
            return n / elapsed, enqueue_rate
    finally:
        for r in receivers:
            r.stop()


def bare_loop(n: int) -> float:
    import json

    import requests

    with Receiver() as rx, requests.Session() as session:
        body = json.dumps({"type": "cronplus.job.failure", "data": data(0)}).encode()
        started = time.perf_counter()
        for _ in range(n):
            session.post(rx.url(), data=body, headers={"Content-Type": "application/json"}, timeout=(5, 15))
        return n / (time.perf_counter() - started)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--alerts", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    one, four, bare, enq = [], [], [], []
    for _ in range(args.repeat):
        rate, e = drain(args.alerts, 1)
        one.append(rate)
        enq.append(e)
        four.append(drain(args.alerts, 4)[0])
        bare.append(bare_loop(args.alerts))
    med = statistics.median
    print(f"alerts: {args.alerts}, repeats: {args.repeat} (medians)")
    print(f"enqueue (outbox insert, autocommit WAL): {med(enq):8.0f} rows/s  ({1e6 / med(enq):.0f} us/row)")
    print(f"worker, 1 destination (signed json):     {med(one):8.0f} alerts/s")
    print(f"worker, 4 destinations (signed json):    {med(four):8.0f} alerts/s")
    print(f"bare requests loop, no db, 1 dest:       {med(bare):8.0f} alerts/s")
    print(f"worker/bare ratio, 1 destination:        {med(one) / med(bare):8.2f}")


if __name__ == "__main__":
    main()
