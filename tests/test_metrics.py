"""Metrics against scikit-learn's, on random data and on the edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from nnmath.errors import ShapeError
from nnmath.metrics import (
    accuracy,
    class_probabilities,
    classification_metrics,
    confusion_matrix,
    mean_absolute_error,
    mean_squared_error,
    per_class_scores,
    r2_score,
    regression_metrics,
)

sk = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_classes = 4
    y_true = rng.integers(0, n_classes, size=50)
    y_pred = np.where(rng.random(50) < 0.6, y_true, rng.integers(0, n_classes, size=50))
    assert accuracy(y_true, y_pred) == pytest.approx(sk.accuracy_score(y_true, y_pred), abs=0)
    M = confusion_matrix(y_true, y_pred, n_classes)
    np.testing.assert_array_equal(M, sk.confusion_matrix(y_true, y_pred, labels=range(n_classes)))
    scores = per_class_scores(M)
    precision, recall, f1, _ = sk.precision_recall_fscore_support(
        y_true, y_pred, labels=range(n_classes), zero_division=0
    )
    np.testing.assert_allclose(scores["precision"], precision, rtol=1e-15)
    np.testing.assert_allclose(scores["recall"], recall, rtol=1e-15)
    np.testing.assert_allclose(scores["f1"], f1, rtol=1e-15)


def test_a_class_never_predicted_scores_zero_not_nan() -> None:
    y_true, y_pred = np.array([0, 1, 2, 2]), np.array([0, 1, 1, 1])
    scores = per_class_scores(confusion_matrix(y_true, y_pred, 4))
    assert np.all(np.isfinite(scores["f1"]))
    assert scores["precision"][2] == 0 and scores["recall"][3] == 0


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("seed", range(3))
def test_regression_metrics_match_sklearn(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=(40, k)) * [1.0, 10.0, 0.1][:k]
    y_pred = y_true + rng.normal(scale=0.5, size=(40, k))
    assert mean_squared_error(y_true, y_pred) == pytest.approx(
        sk.mean_squared_error(y_true, y_pred), rel=1e-14
    )
    assert mean_absolute_error(y_true, y_pred) == pytest.approx(
        sk.mean_absolute_error(y_true, y_pred), rel=1e-14
    )
    assert r2_score(y_true, y_pred) == pytest.approx(sk.r2_score(y_true, y_pred), rel=1e-13)


def test_r2_of_one_dimensional_targets_and_of_a_constant_column() -> None:
    y = np.array([1.0, 2.0, 4.0, 8.0])
    p = np.array([1.5, 2.0, 3.0, 9.0])
    assert r2_score(y, p) == pytest.approx(sk.r2_score(y, p), rel=1e-14)
    constant = np.full(4, 3.0)
    assert r2_score(constant, constant) == sk.r2_score(constant, constant) == 1.0
    assert r2_score(constant, p) == sk.r2_score(constant, p) == 0.0
    both = np.column_stack([y, constant])
    assert r2_score(both, np.column_stack([p, p])) == pytest.approx(
        sk.r2_score(both, np.column_stack([p, p])), rel=1e-14
    )


def test_perfect_and_worst_predictions() -> None:
    y = np.array([0, 1, 2, 1])
    assert accuracy(y, y) == 1.0 and accuracy(y, (y + 1) % 3) == 0.0
    assert regression_metrics(y.astype(float), y.astype(float)) == {
        "mse": 0.0,
        "mae": 0.0,
        "r2": 1.0,
    }


def test_class_probabilities_of_a_single_sigmoid_output() -> None:
    A = np.array([[0.2], [0.9]])
    np.testing.assert_allclose(class_probabilities(A), [[0.8, 0.2], [0.1, 0.9]])
    P = np.array([[0.1, 0.7, 0.2]])
    assert class_probabilities(P) is P
    assert classification_metrics(np.array([1, 1]), A) == {"accuracy": 0.5}


def test_shape_mismatches_are_named() -> None:
    with pytest.raises(ShapeError, match="equal length"):
        accuracy(np.array([0, 1]), np.array([0]))
    with pytest.raises(ShapeError, match="same shape"):
        mean_squared_error(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(ShapeError, match=r"\(S,\)"):
        accuracy(np.zeros((2, 2)), np.zeros((2, 2)))
