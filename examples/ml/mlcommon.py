"""Shared helpers of the example pipeline: stdlib only, so it runs on any machine with python3.

The model is a linear regression y = w·x + b fitted by least squares (normal equations solved by
Gaussian elimination) on synthetic data drawn with random.Random(seed). Files live under
$CRONPLUS_EXAMPLE_DIR (default ./example-data, relative to the job's working directory):

    candidates/      every model train.py fitted (<id>.json); train passes its path and score
                     to evaluate as outputs ($CRONPLUS_OUTPUT -> $CRONPLUS_UPSTREAM_TRAIN_*)
    candidate.json   the model train.py just fitted (what a script run by hand falls back to)
    evaluation.json  evaluate.py's verdict on the candidate
    model.json       the deployed model (deploy.py), read by predict.py
    models/          every deployed version
    predictions/     predict.py's batches (CSV)
    reports/         report.py's daily summaries
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from pathlib import Path

TRUE_WEIGHTS = (3.0, -2.0, 0.5)  # the hidden relation the data follows
TRUE_BIAS = 1.0
FEATURES = len(TRUE_WEIGHTS)
EVAL_SEED = 12345  # a fixed held-out set, so candidates are compared on the same data
SKIP_EXIT = 99  # the crontab's skip-exit: "nothing to do", downstream is skipped


def data_dir() -> Path:
    d = Path(os.environ.get("CRONPLUS_EXAMPLE_DIR", "example-data"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def synthetic(seed: int, n: int, noise: float) -> tuple[list[list[float]], list[float]]:
    rng = random.Random(seed)
    xs, ys = [], []
    for _ in range(n):
        x = [rng.uniform(-5, 5) for _ in range(FEATURES)]
        y = sum(w * v for w, v in zip(TRUE_WEIGHTS, x)) + TRUE_BIAS + rng.gauss(0, noise)
        xs.append(x)
        ys.append(y)
    return xs, ys


def fit(xs: list[list[float]], ys: list[float]) -> list[float]:
    """Least squares: solve (AᵀA) β = Aᵀy with A = [x, 1]; returns weights then bias."""
    rows = [x + [1.0] for x in xs]
    k = len(rows[0])
    ata = [[sum(r[i] * r[j] for r in rows) for j in range(k)] for i in range(k)]
    aty = [sum(r[i] * y for r, y in zip(rows, ys)) for i in range(k)]
    m = [ata[i] + [aty[i]] for i in range(k)]
    for col in range(k):  # Gaussian elimination with partial pivoting
        pivot = max(range(col, k), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(k):
            if r != col and m[col][col] != 0:
                factor = m[r][col] / m[col][col]
                m[r] = [a - factor * b for a, b in zip(m[r], m[col])]
    return [m[i][k] / m[i][i] for i in range(k)]


def predict_one(coef: list[float], x: list[float]) -> float:
    return sum(c * v for c, v in zip(coef, x)) + coef[-1]


def mse(coef: list[float], xs: list[list[float]], ys: list[float]) -> float:
    return sum((predict_one(coef, x) - y) ** 2 for x, y in zip(xs, ys)) / len(ys)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def write_atomic(path: Path, text: str) -> None:
    """Readers (the next job) never see half a file: temp file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def model_id(coef: list[float]) -> str:
    return hashlib.sha256(json.dumps(coef).encode()).hexdigest()[:12]


def output(**pairs: object) -> None:
    """This run's outputs (cronplus: KEY=VALUE lines in $CRONPLUS_OUTPUT, handed to the after=
    jobs as $CRONPLUS_UPSTREAM_<JOB>_<KEY>); nothing when run by hand."""
    path = os.environ.get("CRONPLUS_OUTPUT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.writelines(f"{key}={value}\n" for key, value in pairs.items())


def upstream(job: str, key: str) -> str | None:
    """An upstream run's output of this tick (None when run by hand or it gave none)."""
    return os.environ.get(f"CRONPLUS_UPSTREAM_{job.upper()}_{key.upper()}") or None
