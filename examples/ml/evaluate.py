"""Compare the candidate with the deployed model on a fixed held-out set.

Exit 0 when the candidate is better (deploy may run), exit 99 (the crontab's skip-exit) when it
is not: the run is recorded `skipped` and deploy, `after=evaluate`, is skipped too. Exit 1 when
there is no candidate at all (a real failure: train did not produce one). Under cronplus the
candidate is the one train's run output ($CRONPLUS_UPSTREAM_TRAIN_CANDIDATE), by hand the latest
(candidate.json)."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

import mlcommon as ml


def main() -> int:
    d = ml.data_dir()
    given = ml.upstream("train", "candidate")  # train's output for this run; by hand: the latest
    path = Path(given) if given else d / "candidate.json"
    candidate = ml.read_json(path)
    if candidate is None:
        print(f"no candidate at {path}: run train first", file=sys.stderr)
        return 1
    train_mse = ml.upstream("train", "train_mse")
    if train_mse:
        print(f"candidate {candidate['id']} from {path} (train MSE {float(train_mse):.4f})")
    xs, ys = ml.synthetic(ml.EVAL_SEED, 500, 1.0)
    cand_mse = ml.mse(candidate["coef"], xs, ys)
    deployed = ml.read_json(d / "model.json")
    prod_mse = ml.mse(deployed["coef"], xs, ys) if deployed else None
    better = prod_mse is None or cand_mse < prod_mse
    verdict = {
        "candidate": candidate["id"],
        "candidate_path": str(path),
        "candidate_mse": cand_mse,
        "deployed": deployed["id"] if deployed else None,
        "deployed_mse": prod_mse,
        "better": better,
        "evaluated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    ml.write_json(d / "evaluation.json", verdict)
    ml.output(candidate=path, eval_mse=cand_mse)
    if not better:
        print(f"candidate {candidate['id']} MSE {cand_mse:.4f} is not better than deployed {deployed['id']} MSE {prod_mse:.4f}: skip")
        return ml.SKIP_EXIT
    shown = "none" if prod_mse is None else f"{prod_mse:.4f}"
    print(f"candidate {candidate['id']} MSE {cand_mse:.4f} beats deployed ({shown}): deploy it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
