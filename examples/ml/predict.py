"""Score a batch of new inputs with the deployed model; write predictions/<tick>.csv.

Exit 99 (skip) when no model is deployed yet: nothing to do is not a failure. The batch is keyed
by $CRONPLUS_SCHEDULED_TIME (the logical tick), so a retry of the same tick rewrites the same file."""

from __future__ import annotations

import datetime
import os
import random

import mlcommon as ml

BATCH = 20


def main() -> int:
    d = ml.data_dir()
    model = ml.read_json(d / "model.json")
    if model is None:
        print("no model deployed yet: nothing to predict")
        return ml.SKIP_EXIT
    tick = os.environ.get("CRONPLUS_SCHEDULED_TIME") or datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    rng = random.Random(tick)
    lines = ["model,x1,x2,x3,prediction"]
    for _ in range(BATCH):
        x = [rng.uniform(-5, 5) for _ in range(ml.FEATURES)]
        lines.append(",".join([model["id"], *(f"{v:.4f}" for v in x), f"{ml.predict_one(model['coef'], x):.4f}"]))
    name = tick.replace(":", "").replace("+", "p") + ".csv"
    ml.write_atomic(d / "predictions" / name, "\n".join(lines) + "\n")
    print(f"wrote {BATCH} predictions with model {model['id']} to predictions/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
