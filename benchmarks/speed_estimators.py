"""The estimators as users call them: ``MLPClassifier(random_state=seed).fit(X, y)``, nnmath's
against scikit-learn's, every parameter at its default.

Both libraries' defaults are the same settings: one hidden layer of 100 ReLU units, Adam at
η = 10⁻³, batches of min(200, S) rows, α = 10⁻⁴, at most 200 epochs, stopping once the training
loss has not improved by tol = 10⁻⁴ for 10 epochs. nnmath's default ``dtype=None`` computes as
scikit-learn does (float64 for float64 input); the row "nnmath, dtype='auto'" keeps the network in
float64 and trains it in float32 (nnmath's fast path), one option away.

The data are speed_fit.py's (digits, MNIST-1D; standardised with the training rows' statistics).
After one untimed epoch of each (imports, first calls), contestants alternate (the order rotates
each round), round r uses random_state=r for all of them, and each is timed from the call to ``fit`` to the fitted model (wall and CPU time). Since
the stopping rule decides the number of epochs, ``n_iter_`` is reported beside the time: the
ratio compares the two fits users get, and the time per epoch compares the work.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import speed_fit

CONTESTANTS = ("scikit-learn", "nnmath", "nnmath, dtype='auto'")
SETTINGS = (
    "MLPClassifier() defaults: hidden_layer_sizes=(100,), relu, adam η = 1e-3, batch_size "
    "min(200, S), alpha = 1e-4, max_iter = 200, tol = 1e-4, n_iter_no_change = 10"
)


def estimator(name: str, seed: int, max_iter: int | None) -> Any:
    """The contestant ``name`` with its defaults (``max_iter`` only for a smoke run)."""
    if name == "scikit-learn":
        from sklearn.neural_network import MLPClassifier

        params: dict[str, Any] = {}
    else:
        from nnmath.sklearn import MLPClassifier

        params = {"dtype": "auto"} if "auto" in name else {}
    if max_iter is not None:
        params["max_iter"] = max_iter
    return MLPClassifier(random_state=seed, **params)


def timed_fit(model: Any, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``model.fit(X, y)``."""
    began, began_cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning at max_iter, in either library
        model.fit(X, y)
    return time.perf_counter() - began, time.process_time() - began_cpu


def run(name: str, rounds: int, max_iter: int | None = None) -> dict[str, Any]:
    """``rounds`` alternating fits of every contestant on the data set ``name``."""
    X, y, X_test, y_test = speed_fit.load(name)
    keys = ("seconds", "cpu_seconds", "n_iter", "test_accuracies")
    measured: dict[str, dict[str, list[float]]] = {k: {c: [] for c in CONTESTANTS} for k in keys}
    for contestant in CONTESTANTS:  # imports and first calls, untimed
        timed_fit(estimator(contestant, 0, 1), X, y)
    for r in range(rounds):
        for contestant in CONTESTANTS[r % 3 :] + CONTESTANTS[: r % 3]:
            model = estimator(contestant, r, max_iter)
            wall, cpu = timed_fit(model, X, y)
            measured["seconds"][contestant].append(wall)
            measured["cpu_seconds"][contestant].append(cpu)
            measured["n_iter"][contestant].append(float(model.n_iter_))
            accuracy = float(np.mean(model.predict(X_test) == y_test))
            measured["test_accuracies"][contestant].append(accuracy)
    median = _medians(measured["seconds"])
    median_cpu = _medians(measured["cpu_seconds"])
    per_epoch = {
        c: float(np.median(np.divide(measured["seconds"][c], measured["n_iter"][c])))
        for c in CONTESTANTS
    }
    return {
        "settings": SETTINGS if max_iter is None else f"{SETTINGS} (max_iter={max_iter})",
        "n_train": len(X),
        "n_test": len(X_test),
        **measured,
        "median_seconds": median,
        "median_cpu_seconds": median_cpu,
        "median_seconds_per_epoch": per_epoch,
        "mean_n_iter": {c: float(np.mean(v)) for c, v in measured["n_iter"].items()},
        "test_accuracy": {c: float(np.mean(v)) for c, v in measured["test_accuracies"].items()},
        "ratio_to_sklearn": _ratios(median),
        "cpu_ratio_to_sklearn": _ratios(median_cpu),
        "per_epoch_ratio_to_sklearn": _ratios(per_epoch),
    }


def _medians(values: dict[str, list[float]]) -> dict[str, float]:
    return {key: float(np.median(v)) for key, v in values.items()}


def _ratios(median: dict[str, float]) -> dict[str, float]:
    """scikit-learn's time / each nnmath contestant's."""
    return {c: median["scikit-learn"] / median[c] for c in CONTESTANTS if c != "scikit-learn"}


def _ratio_cell(result: dict[str, Any], key: str, contestant: str) -> str:
    if contestant not in result[key]:
        return "–"
    text = f"{result[key][contestant]:.2f}×"
    return f"**{text}**" if key == "ratio_to_sklearn" else text


def table(job: str, result: dict[str, Any]) -> list[str]:
    """The markdown rows of one data set's result."""
    runs = len(result["seconds"]["scikit-learn"])
    lines = [
        f"{job}, the estimators with their defaults ({result['settings']}); {result['n_train']} "
        f"training / {result['n_test']} held-out rows; medians of {runs} alternating runs (run "
        "r with random_state=r), the held-out accuracy's and n_iter_'s means:",
        "",
        "| | wall s | CPU s | n_iter_ | ms per epoch | held-out accuracy | scikit-learn / this "
        "(wall) | (CPU) | (per epoch) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in CONTESTANTS:
        lines.append(
            f"| {c} | {result['median_seconds'][c]:.3f} | {result['median_cpu_seconds'][c]:.3f} | "
            f"{result['mean_n_iter'][c]:.1f} | {1e3 * result['median_seconds_per_epoch'][c]:.2f} | "
            f"{result['test_accuracy'][c]:.4f} | "
            + " | ".join(
                _ratio_cell(result, key, c)
                for key in (
                    "ratio_to_sklearn",
                    "cpu_ratio_to_sklearn",
                    "per_epoch_ratio_to_sklearn",
                )
            )
            + " |"
        )
    return [*lines, ""]
