"""Full training runs as users run them: nnmath against scikit-learn's MLPClassifier.fit.

Two data sets, each split once and standardised with the training rows' statistics:

- digits: the 1797 8×8 images, a stratified 80/20 split (seed 0); 64-512relu-10softmax, Adam at
  η = 1e-3, batch 32, 30 epochs (the defaults of ``nnmath train --data digits``);
- MNIST-1D: ``mnist1d.data.make_dataset(get_dataset_args())`` (generated offline; never
  ``get_dataset``), its own 4000/1000 split; 40-256relu-256relu-10softmax, Adam at η = 1e-2,
  batch 100, 80 epochs (``nnmath train --data mnist1d``, with a constant rate as scikit-learn's).

Every contestant trains the same network with the same optimizer, batch size and epochs, from the
data as loaded (float64), and is scored on the same held-out rows:

- scikit-learn: ``MLPClassifier(hidden, solver="adam", alpha=0, batch_size, learning_rate_init,
  max_iter=epochs, tol=0, n_iter_no_change=epochs + 1)``: every epoch runs, no L2 term;
- nnmath fit: ``fit(MLP(spec), X, y, optimizer="adam", learning_rate, epochs, batch_size)``, its
  defaults otherwise (a float64 model trained in float32, running metrics), with the kernel its
  default "auto" chooses for these runs in a fresh process: NumPy (fewer than 20,000 steps; the
  benchmark's own process has numba loaded, so the kernel is named here);
- nnmath fit, numba: the same with ``kernel="numba"`` (when numba is installed);
- nnmath estimator: ``nnmath.sklearn.MLPClassifier`` with the same settings and alpha=0;
- scikit-learn / nnmath estimator with their default L2 term (alpha = 1e-4): the estimators as a
  user of either calls them.

Runs alternate between the contestants (the order rotates), so that drift in the machine's load
hits them alike; each is timed from the call to the fitted model: wall time (``perf_counter``) and
the process's CPU time (``process_time``, which a busy machine disturbs less at one thread). Round
r uses seed r for every contestant (weights and shuffling), so the accuracies are means over as
many initialisations (MNIST-1D's spread over seeds is a few points).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.network import MLP


@dataclass(frozen=True)
class Job:
    """A data set and the training run both libraries do on it."""

    name: str
    hidden: tuple[int, ...]
    learning_rate: float
    batch_size: int
    epochs: int

    def spec(self, n_in: int, n_out: int) -> str:
        return "-".join([str(n_in), *(f"{n}relu" for n in self.hidden), f"{n_out}softmax"])


JOBS = {
    "digits": Job("digits", (512,), 1e-3, 32, 30),
    "mnist1d": Job("mnist1d", (256, 256), 1e-2, 100, 80),
}


def load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X, y, X_test, y_test), standardised with the training rows' mean and deviation."""
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        X, y = load_digits(return_X_y=True)
        X, X_test, y, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    else:
        from mnist1d.data import get_dataset_args, make_dataset

        data = make_dataset(get_dataset_args())
        X, y, X_test, y_test = data["x"], data["y"], data["x_test"], data["y_test"]
    mean, deviation = X.mean(axis=0), X.std(axis=0)
    deviation[deviation == 0] = 1.0
    return (X - mean) / deviation, np.asarray(y), (X_test - mean) / deviation, np.asarray(y_test)


def sklearn_fit(job: Job, X: np.ndarray, y: np.ndarray, seed: int, alpha: float = 0.0) -> Callable:
    from sklearn.neural_network import MLPClassifier

    classifier = MLPClassifier(
        hidden_layer_sizes=job.hidden,
        solver="adam",
        alpha=alpha,
        batch_size=job.batch_size,
        learning_rate_init=job.learning_rate,
        max_iter=job.epochs,
        tol=0.0,
        n_iter_no_change=job.epochs + 1,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as intended
        classifier.fit(X, y)
    return classifier.predict


def nnmath_fit(
    job: Job, X: np.ndarray, y: np.ndarray, seed: int = 0, kernel: str = "numpy"
) -> Callable:
    from nnmath.training import fit

    model = MLP(job.spec(X.shape[1], 10), seed=seed)
    fit(model, X, y, optimizer="adam", learning_rate=job.learning_rate, epochs=job.epochs,
        batch_size=job.batch_size, kernel=kernel, seed=seed)  # fmt: skip
    return lambda X_test: np.argmax(model.predict(X_test), axis=1)


def nnmath_estimator(
    job: Job, X: np.ndarray, y: np.ndarray, seed: int, alpha: float = 0.0
) -> Callable:
    """nnmath.sklearn.MLPClassifier with the job's settings (whatever its parameters are named)."""
    from nnmath.sklearn import MLPClassifier

    names = MLPClassifier().get_params()
    settings: dict[str, Any] = {
        "hidden_layer_sizes": job.hidden,
        "solver": "adam",
        "alpha": alpha,
        "batch_size": job.batch_size,
        "max_iter": job.epochs,
        "random_state": seed,
    }
    rate = "learning_rate_init" if "learning_rate_init" in names else "learning_rate"
    settings[rate] = job.learning_rate
    if "tol" in names:
        settings["tol"] = 0.0
    if "n_iter_no_change" in names:
        settings["n_iter_no_change"] = job.epochs + 1
    classifier = MLPClassifier(**{k: v for k, v in settings.items() if k in names})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classifier.fit(X, y)
    return classifier.predict


def contestants(job: Job, X: np.ndarray, y: np.ndarray, numba: bool) -> dict[str, Callable]:
    """name -> (seed -> the fitted model's predict)."""
    runs: dict[str, Callable] = {
        "scikit-learn": lambda seed: sklearn_fit(job, X, y, seed),
        "nnmath fit": lambda seed: nnmath_fit(job, X, y, seed),
    }
    if numba:
        runs["nnmath fit, numba"] = lambda seed: nnmath_fit(job, X, y, seed, "numba")
    runs["nnmath estimator"] = lambda seed: nnmath_estimator(job, X, y, seed)
    runs["scikit-learn, alpha=1e-4"] = lambda seed: sklearn_fit(job, X, y, seed, 1e-4)
    runs["nnmath estimator, alpha=1e-4"] = lambda seed: nnmath_estimator(job, X, y, seed, 1e-4)
    return runs


def run(name: str, rounds: int, numba: bool = False, epochs: int | None = None) -> dict[str, Any]:
    """``rounds`` timed runs of every contestant on the job ``name``, alternating."""
    job = JOBS[name]
    if epochs is not None:
        job = Job(job.name, job.hidden, job.learning_rate, job.batch_size, epochs)
    X, y, X_test, y_test = load(name)
    runs = contestants(job, X, y, numba)
    seconds: dict[str, list[float]] = {key: [] for key in runs}
    cpu: dict[str, list[float]] = {key: [] for key in runs}
    accuracy: dict[str, list[float]] = {key: [] for key in runs}
    names = list(runs)
    for r in range(rounds):
        for key in names[r % len(names) :] + names[: r % len(names)]:
            began, began_cpu = time.perf_counter(), time.process_time()
            predict = runs[key](r)
            seconds[key].append(time.perf_counter() - began)
            cpu[key].append(time.process_time() - began_cpu)
            accuracy[key].append(float(np.mean(predict(X_test) == y_test)))
    median = {key: float(np.median(v)) for key, v in seconds.items()}
    median_cpu = {key: float(np.median(v)) for key, v in cpu.items()}
    return {
        "network": job.spec(X.shape[1], 10),
        "optimizer": f"Adam, η = {job.learning_rate:g}",
        "batch_size": job.batch_size,
        "epochs": job.epochs,
        "n_train": len(X),
        "n_test": len(X_test),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "median_seconds": median,
        "median_cpu_seconds": median_cpu,
        "test_accuracies": accuracy,
        "test_accuracy": {key: float(np.mean(v)) for key, v in accuracy.items()},
        "ratio_to_sklearn": _ratios(median),
        "cpu_ratio_to_sklearn": _ratios(median_cpu),
    }


def _ratios(median: dict[str, float]) -> dict[str, float]:
    """scikit-learn's time / each nnmath contestant's (the alpha=1e-4 rows against each other)."""
    return {
        key: median["scikit-learn" if "alpha" not in key else "scikit-learn, alpha=1e-4"] / value
        for key, value in median.items()
        if key.startswith("nnmath")
    }
