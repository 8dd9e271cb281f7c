"""Train a candidate model on this week's data (synthetic: the seed stands for the week).

TRAIN_SEED / TRAIN_SAMPLES / TRAIN_NOISE pick the data (defaults: the ISO week, 200, 1.0), so
each week's candidate differs a little and evaluation decides whether it is better. Its outputs
(cronplus's $CRONPLUS_OUTPUT): `candidate` (the model file's path) and `train_mse`."""

from __future__ import annotations

import datetime
import os

import mlcommon as ml


def main() -> int:
    year, week, _ = datetime.date.today().isocalendar()
    seed = int(os.environ.get("TRAIN_SEED", year * 100 + week))
    n = int(os.environ.get("TRAIN_SAMPLES", "200"))
    noise = float(os.environ.get("TRAIN_NOISE", "1.0"))
    xs, ys = ml.synthetic(seed, n, noise)
    coef = ml.fit(xs, ys)
    candidate = {
        "id": ml.model_id(coef),
        "coef": coef,
        "seed": seed,
        "samples": n,
        "train_mse": ml.mse(coef, xs, ys),
        "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "run_id": os.environ.get("CRONPLUS_RUN_ID"),
    }
    path = (ml.data_dir() / "candidates" / f"{candidate['id']}.json").resolve()
    ml.write_json(path, candidate)
    ml.write_json(ml.data_dir() / "candidate.json", candidate)
    ml.output(candidate=path, train_mse=candidate["train_mse"])  # evaluate reads these, no file name guessed
    print(f"trained candidate {candidate['id']} on {n} samples (seed {seed}): train MSE {candidate['train_mse']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
