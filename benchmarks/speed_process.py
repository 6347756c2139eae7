"""Whole processes: ``nnmath train`` against the scikit-learn script that does the same job.

Each side is a fresh Python process, timed from its start to its exit, so that imports, loading
the data, training, scoring and saving the model all count, as they do for a user:

- nnmath: ``python -m nnmath train --data NAME --spec HIDDEN --optimizer adam --learning-rate η
  --batch-size B --epochs E --validation-fraction 0 --schedule constant -o DIR/model.nnm --json``
  (its defaults otherwise: float32, a 20 % test split for digits, standardised inputs), with
  ``--no-plots`` and, in a second row, with its default PNG plots;
- scikit-learn: the script below: load the same data (``load_digits``; MNIST-1D generated with
  ``make_dataset(get_dataset_args())``), the same split sizes, ``StandardScaler``,
  ``MLPClassifier`` with the same network, optimizer, batch size and epochs (alpha=0, every epoch
  run), score on the test rows, and pickle the scaler and the classifier to a file.

Rounds alternate between the commands; wall time (``perf_counter`` around ``subprocess.run``) and
CPU time (the children's user + system time from ``resource.getrusage``) are both recorded.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import speed_fit

SKLEARN_SCRIPT = """
import json, pickle, sys, warnings
import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

name, hidden, rate, batch, epochs, out = sys.argv[1], eval(sys.argv[2]), float(sys.argv[3]), \\
    int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
if name == "digits":
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    X, y = load_digits(return_X_y=True)
    X, X_test, y, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
else:
    from mnist1d.data import get_dataset_args, make_dataset
    data = make_dataset(get_dataset_args())
    X, y, X_test, y_test = data["x"], data["y"], data["x_test"], data["y_test"]
scaler = StandardScaler().fit(X)
classifier = MLPClassifier(hidden_layer_sizes=hidden, solver="adam", alpha=0.0,
    batch_size=batch, learning_rate_init=rate, max_iter=epochs, tol=0.0,
    n_iter_no_change=epochs + 1, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    classifier.fit(scaler.transform(X), y)
accuracy = classifier.score(scaler.transform(X_test), y_test)
with open(out, "wb") as file:
    pickle.dump((scaler, classifier), file)
print(json.dumps({"accuracy": accuracy}))
"""


def commands(name: str, directory: Path, epochs: int | None) -> dict[str, list[str]]:
    """The command lines compared: nnmath train (without and with plots) and the sklearn script."""
    job = speed_fit.JOBS[name]
    epochs = job.epochs if epochs is None else epochs
    hidden = "-".join(f"{n}relu" for n in job.hidden)
    nnmath = [
        sys.executable, "-m", "nnmath", "train", "--data", name, "--spec", hidden,
        "--optimizer", "adam", "--learning-rate", f"{job.learning_rate:g}",
        "--batch-size", str(job.batch_size), "--epochs", str(epochs),
        "--validation-fraction", "0", "--schedule", "constant", "--json",
    ]  # fmt: skip
    script = directory / "sklearn_train.py"
    script.write_text(SKLEARN_SCRIPT)
    return {
        "nnmath train --no-plots": [*nnmath, "--no-plots", "-o", str(directory / "a.nnm")],
        "nnmath train (with plots)": [*nnmath, "-o", str(directory / "b" / "model.nnm")],
        "scikit-learn script": [
            sys.executable,
            str(script),
            name,
            repr(job.hidden),
            f"{job.learning_rate:g}",
            str(job.batch_size),
            str(epochs),
            str(directory / "model.pickle"),
        ],  # fmt: skip
    }


def accuracy_of(output: str) -> float:
    """The held-out accuracy a command printed (its JSON report)."""
    report = json.loads(output)
    return float(report["test"]["accuracy"] if "test" in report else report["accuracy"])


def run(name: str, rounds: int, env: dict[str, str], epochs: int | None = None) -> dict[str, Any]:
    """``rounds`` alternating runs of each command, in the environment ``env``."""
    with tempfile.TemporaryDirectory() as tmp:
        lines = commands(name, Path(tmp), epochs)
        wall: dict[str, list[float]] = {key: [] for key in lines}
        cpu: dict[str, list[float]] = {key: [] for key in lines}
        accuracy: dict[str, float] = {}
        keys = list(lines)
        for r in range(rounds):
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                began = time.perf_counter()
                done = subprocess.run(lines[key], env=env, capture_output=True, text=True)
                wall[key].append(time.perf_counter() - began)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[key].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
                if done.returncode != 0:
                    raise RuntimeError(f"{key} failed:\n{done.stderr[-2000:]}")
                accuracy[key] = accuracy_of(done.stdout)
    median = {key: sorted(v)[len(v) // 2] for key, v in wall.items()}
    median_cpu = {key: sorted(v)[len(v) // 2] for key, v in cpu.items()}
    sk = "scikit-learn script"
    return {
        "commands": {
            key: " ".join(Path(w).name if w == sys.executable else w for w in line)
            for key, line in lines.items()
        },  # fmt: skip
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "median_wall_seconds": median,
        "median_cpu_seconds": median_cpu,
        "test_accuracy": accuracy,
        "ratio_to_sklearn": {k: median[sk] / v for k, v in median.items() if k != sk},
        "cpu_ratio_to_sklearn": {k: median_cpu[sk] / v for k, v in median_cpu.items() if k != sk},
    }
