"""Deploy the evaluated candidate: it becomes model.json (atomically) and is archived in models/.

Refuses (exit 1) unless evaluation.json approves exactly this candidate, so a deploy triggered
by hand cannot ship a model that lost its evaluation."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import mlcommon as ml


def main() -> int:
    d = ml.data_dir()
    given = ml.upstream("evaluate", "candidate")  # the one evaluate approved in this run; by hand: the latest
    candidate = ml.read_json(Path(given) if given else d / "candidate.json")
    verdict = ml.read_json(d / "evaluation.json")
    if candidate is None or verdict is None:
        print("nothing to deploy: run train and evaluate first", file=sys.stderr)
        return 1
    if verdict.get("candidate") != candidate["id"] or not verdict.get("better"):
        print(f"candidate {candidate['id']} is not approved by the last evaluation; not deploying", file=sys.stderr)
        return 1
    model = dict(candidate, eval_mse=verdict["candidate_mse"])
    model["deployed_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    ml.write_json(d / "models" / f"{candidate['id']}.json", model)
    ml.write_json(d / "model.json", model)
    print(f"deployed model {candidate['id']} (eval MSE {verdict['candidate_mse']:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
