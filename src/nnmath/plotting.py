"""Plots of a training run as PNG files: loss and metric curves, confusion matrix, decision boundary.

matplotlib is an optional extra (``pip install 'nnmath[plot]'``), imported only when a plot is
drawn. Figures are built with matplotlib's object API (``Figure`` + the Agg canvas), so nothing
here touches pyplot's global state or the user's chosen backend. Every file is written atomically.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnmath.metrics import confusion_matrix
from nnmath.modelfile import TrainedModel, atomic_write

PLOT_EXTRA = "pip install 'nnmath[plot]'"


def available() -> bool:
    """True when matplotlib can be imported (the ``plot`` extra is installed)."""
    return importlib.util.find_spec("matplotlib") is not None


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(f"plots need matplotlib: {PLOT_EXTRA}") from error
    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: str | Path) -> Path:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return atomic_write(path, lambda file: file.write(buffer.getvalue()))


def plot_history(history: Any, path: str | Path, *, title: str = "") -> Path:
    """Loss (left) and accuracy or R² (right) per epoch, training and validation; best epoch marked."""
    metrics = history.metrics
    epochs = metrics["epoch"]
    # running training metrics log the loss alone: accuracy or R² may be there for validation only
    second = "accuracy" if "accuracy" in metrics or "val_accuracy" in metrics else "r2"
    figure = _figure(10, 4)
    for axes, key, label in zip(
        figure.subplots(1, 2), ("loss", second), ("loss (cost C)", second), strict=True
    ):
        if key in metrics:
            axes.plot(epochs, metrics[key], label="training", color="tab:blue")
        if f"val_{key}" in metrics:
            axes.plot(epochs, metrics[f"val_{key}"], label="validation", color="tab:orange")
        if history.best_epoch:
            axes.axvline(history.best_epoch, color="gray", ls="--", lw=1, label="best epoch")
        if key == "loss" and min(metrics[key]) > 0:  # the training loss is always logged
            axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:  # R² of a run without validation: not logged
            axes.legend()
    if title:
        figure.suptitle(title)
    return _save(figure, path)


def plot_confusion_matrix(
    M: np.ndarray, class_names: Sequence[str], path: str | Path, *, title: str = ""
) -> Path:
    """The confusion matrix M[true, predicted] as a heat map with the counts written in."""
    n = len(class_names)
    size = min(12.0, 3.0 + 0.5 * n)
    figure = _figure(size + 1.0, size)
    axes = figure.subplots()
    image = axes.imshow(M, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8, label="samples")
    axes.set_xticks(
        range(n),
        labels=class_names,
        rotation=45 if max(map(len, class_names)) > 3 else 0,
        ha="right",
    )
    axes.set_yticks(range(n), labels=class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if n <= 25:
        threshold = M.max() / 2 if M.size else 0
        for i in range(n):
            for j in range(n):
                color = "white" if M[i, j] > threshold else "black"
                axes.text(j, i, str(M[i, j]), ha="center", va="center", color=color, fontsize=9)
    accuracy = np.trace(M) / max(1, M.sum())
    axes.set_title(f"{title + ': ' if title else ''}accuracy {accuracy:.2%} on {M.sum()} samples")
    return _save(figure, path)


def plot_decision_boundary(
    model: TrainedModel, X: np.ndarray, y: np.ndarray, path: str | Path, *, title: str = ""
) -> Path:
    """The class the model predicts at every point of the plane, with the samples (X, y) on top.

    Only for classifiers of two raw input features.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2 or model.task != "classification":
        raise ValueError("a decision boundary needs a classifier of two input features")
    low, high = X.min(axis=0), X.max(axis=0)
    margin = 0.1 * (high - low) + 1e-9
    u = np.linspace(low[0] - margin[0], high[0] + margin[0], 300)
    v = np.linspace(low[1] - margin[1], high[1] + margin[1], 300)
    U, V = np.meshgrid(u, v)
    grid = np.column_stack([U.ravel(), V.ravel()])
    P = model.predict_proba(grid)
    classes = P.argmax(axis=1).reshape(U.shape)
    n = P.shape[1]
    figure = _figure(6.5, 5.5)
    axes = figure.subplots()
    from matplotlib.colors import ListedColormap

    colors = [f"C{c % 10}" for c in range(n)]
    cmap = ListedColormap(colors)
    axes.contourf(U, V, classes, levels=np.arange(n + 1) - 0.5, cmap=cmap, alpha=0.25)
    axes.contour(U, V, classes, levels=np.arange(n) + 0.5, colors="black", linewidths=0.8)
    names = model.class_names or [str(c) for c in range(n)]
    for c in range(n):
        rows = y == c
        axes.scatter(
            *X[rows].T,
            s=14,
            color=colors[c],
            edgecolors="black",
            linewidths=0.3,
            label=f"class {names[c]}",
        )
    features = model.feature_names or ["x0", "x1"]
    axes.set_xlabel(features[0])
    axes.set_ylabel(features[1])
    axes.legend(loc="best", fontsize=8)
    axes.set_title(title or "decision regions")
    return _save(figure, path)


def plot_predictions(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
    target: str = "",
) -> Path:
    """Regression: predicted against true values (first target), with the line ŷ = y."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)[:, 0]
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)[:, 0]
    figure = _figure(5.5, 5.5)
    axes = figure.subplots()
    axes.scatter(y_true, y_pred, s=14, alpha=0.7, edgecolors="black", linewidths=0.3)
    low, high = min(y_true.min(), y_pred.min()), max(y_true.max(), y_pred.max())
    axes.plot([low, high], [low, high], color="gray", ls="--", label="ŷ = y")
    axes.set_xlabel(f"true {target or 'value'}")
    axes.set_ylabel(f"predicted {target or 'value'}")
    axes.grid(alpha=0.3)
    axes.legend()
    axes.set_title(title or "held-out predictions")
    return _save(figure, path)


def save_training_plots(
    directory: str | Path,
    model: TrainedModel,
    history: Any,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    X_train: np.ndarray | None = None,
    y_train: np.ndarray | None = None,
    name: str = "",
) -> list[Path]:
    """Write the plots that fit the task into ``directory``; returns their paths.

    history.png always; confusion.png (classification, on the test data); decision_boundary.png
    for two-feature classifiers (training points when given, else test points); predictions.png
    for regression.
    """
    directory = Path(directory)
    paths = [plot_history(history, directory / "history.png", title=name)]
    if model.task == "classification":
        M = confusion_matrix(y_test, model.predict_classes(X_test), model.n_classes)
        names = model.class_names or [str(c) for c in range(model.n_classes)]
        title = f"{name} held-out" if name else "held-out"
        paths.append(plot_confusion_matrix(M, names, directory / "confusion.png", title=title))
        if model.network.n_in == 2:
            X, y = (X_test, y_test) if X_train is None else (X_train, y_train)
            which = "held-out" if X_train is None else "training"
            title = f"{name}: decision regions, {which} points" if name else ""
            paths.append(
                plot_decision_boundary(
                    model, X, y, directory / "decision_boundary.png", title=title
                )
            )
    else:
        paths.append(
            plot_predictions(
                y_test,
                model.predict(X_test),
                directory / "predictions.png",
                title=f"{name} held-out predictions" if name else "",
                target=model.target_name or "",
            )
        )
    return paths
