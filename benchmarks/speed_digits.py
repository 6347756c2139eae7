"""A full training run on the digits data set: nnmath against scikit-learn's MLPClassifier.

Both train the same network (64-128relu-64relu-10softmax, float32) with plain mini-batch SGD (no
momentum, no weight decay) at the same learning rate, batch size and number of epochs, on the same
stratified 80/20 split of the 1797 images (pixels scaled to [0, 1]), and are scored on the same
held-out 20 %. Each run is timed from the call to the fitted model; runs alternate between the
contestants so that drift in the machine's load hits them alike.

- nnmath fit: ``nnmath.training.fit(model, X, y, optimizer=SGD(η), …)`` exactly as a user calls it
  (for a float32 model it trains through ``FastStep``, plain SGD fused into its backward pass, and
  evaluates the loss and accuracy of the whole training set after every epoch).
- nnmath fit (running metrics): ``fit(..., train_metrics="running")``: the training loss logged
  as the running mean of the batch costs, with no pass over the training set after each epoch.
  This is what scikit-learn's ``fit`` logs (``loss_curve_``), so it is the like-for-like row.
- nnmath loop: ``datasets.batches`` and ``FastStep.sgd_step``: the bare training loop.
- nnmath numba fit / fit (running metrics) / loop: the same with FastStep's numba kernel
  (``fit(..., kernel="numba")``, when numba is installed).
- nnmath engine: ``fit`` with the engine's clear gradients (``training.backprop``) and
  ``optimizers.SGD``, for reference.
- scikit-learn: ``MLPClassifier(solver="sgd", momentum=0, alpha=0, tol=0)``, all epochs run.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from nnmath.datasets import batches
from nnmath.fast import FastStep
from nnmath.losses import get_loss
from nnmath.network import MLP
from nnmath.optimizers import SGD

HIDDEN = (128, 64)
EPOCHS = 20
BATCH_SIZE = 32
LEARNING_RATE = 0.1


def load_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return tuple(train_test_split(X, y, test_size=0.2, stratify=y, random_state=seed))  # type: ignore[return-value]


def _spec(n_in: int, n_out: int) -> str:
    return "-".join([str(n_in), *(f"{n}relu" for n in HIDDEN), f"{n_out}softmax"])


def nnmath_fit(
    X: np.ndarray, y: np.ndarray, epochs: int, kernel: str | None, train_metrics: str = "exact"
) -> Callable[[np.ndarray], Any]:
    """``training.fit`` as a user calls it (kernel "numpy" or "numba"), or with the engine's
    gradients (None); ``train_metrics`` "exact" (the default) or "running"."""
    from nnmath.training import backprop, fit

    model = MLP(_spec(X.shape[1], 10), seed=0, dtype=np.float32)
    loss = get_loss("cross-entropy")
    options: dict[str, Any] = {"kernel": kernel} if kernel else {"gradients": backprop(model, loss)}
    fit(
        model,
        X,
        y,
        loss=loss,
        optimizer=SGD(LEARNING_RATE),
        epochs=epochs,
        batch_size=BATCH_SIZE,
        seed=0,
        train_metrics=train_metrics,
        **options,
    )
    return model.predict


def nnmath_loop(
    X: np.ndarray, y: np.ndarray, epochs: int, kernel: str = "numpy"
) -> Callable[[np.ndarray], Any]:
    model = MLP(_spec(X.shape[1], 10), seed=0, dtype=np.float32)
    step = FastStep(model, get_loss("cross-entropy"), BATCH_SIZE, kernel=kernel)
    step.check(X, y)
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        for rows in batches(len(X), BATCH_SIZE, rng):
            step.sgd_step(X[rows], y[rows], LEARNING_RATE)
    return step.predict


def sklearn_fit(X: np.ndarray, y: np.ndarray, epochs: int) -> Callable[[np.ndarray], Any]:
    from sklearn.neural_network import MLPClassifier

    classifier = MLPClassifier(
        hidden_layer_sizes=HIDDEN,
        activation="relu",
        solver="sgd",
        alpha=0.0,
        batch_size=BATCH_SIZE,
        learning_rate="constant",
        learning_rate_init=LEARNING_RATE,
        momentum=0.0,
        nesterovs_momentum=False,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        shuffle=True,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as intended
        classifier.fit(X, y)
    return classifier.predict_proba


def run(rounds: int, epochs: int = EPOCHS, numba: bool = False) -> dict[str, Any]:
    """Time ``rounds`` full training runs of each contestant, alternating; score each on the test set."""
    X, X_test, y, y_test = load_split()
    contestants: dict[str, Callable[[], Callable[[np.ndarray], Any]]] = {
        "nnmath fit": lambda: nnmath_fit(X, y, epochs, "numpy"),
        "nnmath fit (running metrics)": lambda: nnmath_fit(X, y, epochs, "numpy", "running"),
        "nnmath loop": lambda: nnmath_loop(X, y, epochs),
    }
    if numba:
        contestants["nnmath numba fit"] = lambda: nnmath_fit(X, y, epochs, "numba")
        contestants["nnmath numba fit (running metrics)"] = lambda: nnmath_fit(
            X, y, epochs, "numba", "running"
        )
        contestants["nnmath numba loop"] = lambda: nnmath_loop(X, y, epochs, "numba")
    contestants["nnmath engine"] = lambda: nnmath_fit(X, y, epochs, None)
    contestants["scikit-learn"] = lambda: sklearn_fit(X, y, epochs)
    seconds: dict[str, list[float]] = {name: [] for name in contestants}
    accuracy: dict[str, float] = {}
    names = list(contestants)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            began = time.perf_counter()
            predict = contestants[name]()
            seconds[name].append(time.perf_counter() - began)
            accuracy[name] = float(np.mean(np.argmax(predict(X_test), axis=1) == y_test))
    return {
        "network": _spec(X.shape[1], 10),
        "epochs": epochs,
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "optimizer": "SGD (no momentum, no weight decay)",
        "n_train": len(X),
        "n_test": len(X_test),
        "seconds": seconds,
        "median_seconds": {name: float(np.median(v)) for name, v in seconds.items()},
        "test_accuracy": accuracy,
    }
