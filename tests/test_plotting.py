"""Plots are written as real PNG files (skipped without matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnmath.losses import get_loss
from nnmath.modelfile import TrainedModel
from nnmath.network import MLP
from nnmath.training import History, fit

pytest.importorskip("matplotlib")
from nnmath import plotting  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path: Path) -> bool:
    return path.exists() and path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


def two_moons(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    t = rng.uniform(0, np.pi, n)
    X = np.column_stack([np.cos(t) + y, np.sin(t) * (1 - 2 * y) + 0.5 * y])
    return X + rng.normal(0, 0.1, X.shape), y


def test_training_plots_of_a_two_feature_classifier(tmp_path: Path) -> None:
    X, y = two_moons()
    network = MLP("2-8tanh-2softmax", seed=0)
    history = fit(
        network, X, y, epochs=4, learning_rate=0.05, validation_fraction=0.25, patience=10
    )
    model = TrainedModel(network, get_loss("cross-entropy"), "classification", ["a", "b"])
    paths = plotting.save_training_plots(tmp_path / "plots", model, history, X, y, name="moons")
    assert [p.name for p in paths] == ["history.png", "confusion.png", "decision_boundary.png"]
    assert all(is_png(p) for p in paths)
    assert not list((tmp_path / "plots").glob(".*tmp"))


def test_regression_plots(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    y = X[:, :1] - X[:, 1:2]
    network = MLP("3-4tanh-1", seed=0)
    history = fit(network, X, y, epochs=3)
    model = TrainedModel(network, get_loss("mse"), "regression")
    paths = plotting.save_training_plots(tmp_path, model, history, X, y)
    assert [p.name for p in paths] == ["history.png", "predictions.png"]
    assert all(is_png(p) for p in paths)


def test_confusion_matrix_of_many_classes(tmp_path: Path) -> None:
    M = np.diag(np.arange(1, 31))
    path = plotting.plot_confusion_matrix(M, [f"class{c}" for c in range(30)], tmp_path / "c.png")
    assert is_png(path)


def test_history_with_one_epoch(tmp_path: Path) -> None:
    history = History()
    history.append({"epoch": 1.0, "loss": 0.0, "r2": 1.0, "learning_rate": 0.1}, 0.01)
    assert is_png(plotting.plot_history(history, tmp_path / "h.png"))


def test_decision_boundary_needs_two_features(tmp_path: Path) -> None:
    model = TrainedModel(MLP("3-4tanh-2softmax"), get_loss("cross-entropy"), "classification")
    with pytest.raises(ValueError, match="two input features"):
        plotting.plot_decision_boundary(model, np.zeros((4, 3)), np.zeros(4), tmp_path / "d.png")


@pytest.mark.parametrize(
    "metrics",
    [
        {"epoch": [1, 2], "loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "val_accuracy": [0.5, 0.7]},
        {"epoch": [1, 2], "loss": [1.0, 0.5]},  # running metrics, no validation: the loss alone
    ],
)
def test_the_history_plot_draws_what_was_logged(tmp_path: Path, metrics, recwarn) -> None:
    """Running training metrics log the loss alone (a network with dropout, say)."""
    history = History(metrics={key: list(map(float, values)) for key, values in metrics.items()})
    assert is_png(plotting.plot_history(history, tmp_path / "h.png"))
    assert not [w for w in recwarn if "legend" in str(w.message)]
