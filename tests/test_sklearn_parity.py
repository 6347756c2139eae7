"""nnmath.sklearn against scikit-learn itself: same parameters, same random_state, same model.

nnmath's estimators draw scikit-learn's initial weights, row order and validation split from the
same random_state, and follow its solvers' rules; the gradients come from nnmath's engine. So for
sgd and lbfgs, in float64 (``dtype="float64"``, or None with float64 input: scikit-learn's
arithmetic), every parameter below must give scikit-learn's fitted model to round-off: the
weights (``coefs_``, ``intercepts_``), ``loss_``, ``loss_curve_``, ``best_loss_``, ``n_iter_``,
``t_``, ``validation_scores_``, ``best_validation_score_`` and the predictions. Adam differs only
in where ε enters (nnmath adds it to √v̂, scikit-learn to √v), so its runs agree to ~1e-5.

Each case is one of scikit-learn's documented parameters (docs/sklearn.md); the data is small so
that the whole file runs in a few seconds.
"""

from __future__ import annotations

import io
import re
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as reference

from nnmath import sklearn as nnmath_sklearn

ATTRIBUTES = (
    "loss_",
    "best_loss_",
    "n_iter_",
    "t_",
    "n_layers_",
    "n_outputs_",
    "out_activation_",
    "n_features_in_",
    "best_validation_score_",
)


def data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    rs = np.random.RandomState(0)
    X = rs.normal(size=(90, 5))
    score = X[:, 0] + X[:, 1] - 0.5 * X[:, 2]
    if kind == "multiclass":
        return X, np.digitize(score, [-0.7, 0.7])
    if kind == "binary":
        return X, np.where(score > 0, "yes", "no")
    if kind == "multilabel":
        return X, np.column_stack([score > 0, X[:, 3] > 0.3, X[:, 4] + X[:, 0] > 0]).astype(int)
    if kind == "counts":  # Poisson: y ≥ 0 with log-mean 0.5 score
        return X, rs.poisson(np.exp(0.5 * score)).astype(float)
    return X, np.column_stack([score, np.sin(X[:, 3])]) if kind == "regression2" else score


def estimators(kind: str, **params) -> tuple:
    """scikit-learn's estimator and nnmath's with the same parameters; nnmath's computes in
    float64 (``dtype="float64"``, pinned: the default None follows the input's dtype, and
    "auto" would train in float32; docs/sklearn.md)."""
    name = "MLPRegressor" if kind.startswith("regression") or kind == "counts" else "MLPClassifier"
    params = {"hidden_layer_sizes": (6,), "max_iter": 15, "random_state": 0, **params}
    ours = getattr(nnmath_sklearn, name)(dtype="float64", **params)
    return getattr(reference, name)(**params), ours


def assert_same_model(theirs, ours, X, rtol: float = 1e-9, atol: float = 1e-12) -> None:
    for p, q in zip(
        theirs.coefs_ + theirs.intercepts_, ours.coefs_ + ours.intercepts_, strict=True
    ):
        assert p.shape == q.shape
        assert_allclose(q, p, rtol=rtol, atol=atol)
    for name in ATTRIBUTES:
        expected = getattr(theirs, name, "absent")
        got = getattr(ours, name, "absent")
        if isinstance(expected, float) and np.isfinite(expected):
            assert got == pytest.approx(expected, rel=rtol, abs=atol), name
        else:
            assert got == expected, name
    for name in ("loss_curve_", "validation_scores_"):
        expected = getattr(theirs, name, None)
        got = getattr(ours, name, None)
        if expected is None:
            assert got is None, name
        else:
            assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=name)
    if hasattr(theirs, "predict_proba"):
        assert_array_equal(ours.predict(X), theirs.predict(X))
    else:
        assert_allclose(ours.predict(X), theirs.predict(X), rtol=rtol, atol=atol)
    if hasattr(theirs, "predict_proba"):
        assert_array_equal(ours.classes_, theirs.classes_)
        assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=rtol, atol=atol)


def fit_both(kind: str, **params) -> tuple:
    X, y = data(kind)
    theirs, ours = estimators(kind, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.fit(X, y)
        ours.fit(X, y)
    return theirs, ours, X


SGD = {"solver": "sgd", "learning_rate_init": 0.05}
CASES = {
    "sgd": ("multiclass", SGD),
    "momentum=0": ("multiclass", {**SGD, "momentum": 0.0}),
    "nesterovs_momentum=False": ("multiclass", {**SGD, "nesterovs_momentum": False}),
    "momentum=0.5": ("multiclass", {**SGD, "momentum": 0.5}),
    "invscaling": ("multiclass", {**SGD, "learning_rate": "invscaling", "power_t": 0.25}),
    "invscaling-no-momentum": ("multiclass", {**SGD, "learning_rate": "invscaling", "momentum": 0}),
    "adaptive": (
        "multiclass",
        {**SGD, "learning_rate": "adaptive", "tol": 0.02, "n_iter_no_change": 1, "max_iter": 30},
    ),
    "tol-stops": ("multiclass", {**SGD, "tol": 0.02, "n_iter_no_change": 2, "max_iter": 50}),
    "n_iter_no_change=inf": ("multiclass", {**SGD, "tol": 1.0, "n_iter_no_change": np.inf}),
    "shuffle=False": ("multiclass", {**SGD, "shuffle": False}),
    "batch_size=16": ("multiclass", {**SGD, "batch_size": 16}),
    "alpha=0.3": ("multiclass", {**SGD, "alpha": 0.3, "batch_size": 32}),
    "alpha=0": ("multiclass", {**SGD, "alpha": 0.0}),
    "hidden_layer_sizes=(7,4)": ("multiclass", {**SGD, "hidden_layer_sizes": (7, 4)}),
    "hidden_layer_sizes=()": ("multiclass", {**SGD, "hidden_layer_sizes": ()}),
    "hidden_layer_sizes=5": ("multiclass", {**SGD, "hidden_layer_sizes": 5}),
    "identity": ("multiclass", {**SGD, "activation": "identity"}),
    "logistic": ("multiclass", {**SGD, "activation": "logistic"}),
    "tanh": ("multiclass", {**SGD, "activation": "tanh"}),
    "early_stopping": (
        "multiclass",
        {**SGD, "early_stopping": True, "validation_fraction": 0.2, "max_iter": 40},
    ),
    "early_stopping-binary": (
        "binary",
        {**SGD, "early_stopping": True, "n_iter_no_change": 2, "tol": 0.05, "max_iter": 40},
    ),
    "binary": ("binary", SGD),
    "multilabel": ("multilabel", SGD),
    "random_state=7": ("multiclass", {**SGD, "random_state": 7}),
    "lbfgs": ("multiclass", {"solver": "lbfgs", "max_iter": 25, "alpha": 0.01}),
    "lbfgs-max_fun": ("multiclass", {"solver": "lbfgs", "max_iter": 50, "max_fun": 10}),
    "lbfgs-tol": ("binary", {"solver": "lbfgs", "max_iter": 200, "tol": 1e-3}),
    "lbfgs-multilabel": ("multilabel", {"solver": "lbfgs", "max_iter": 20}),
    "regressor-sgd": ("regression", {**SGD, "learning_rate_init": 0.01}),
    "regressor-lbfgs": ("regression", {"solver": "lbfgs", "max_iter": 30}),
    "regressor-early_stopping": (
        "regression",
        {**SGD, "learning_rate_init": 0.01, "early_stopping": True, "max_iter": 30},
    ),
    "regressor-one-output-column": ("regression", {**SGD, "learning_rate_init": 0.01}),
    "poisson-sgd": ("counts", {**SGD, "loss": "poisson", "learning_rate_init": 0.01}),
    "poisson-lbfgs": ("counts", {"loss": "poisson", "solver": "lbfgs", "max_iter": 30}),
    "poisson-early_stopping": (
        "counts",
        {**SGD, "loss": "poisson", "learning_rate_init": 0.01, "early_stopping": True},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_model_as_scikit_learn(case: str) -> None:
    kind, params = CASES[case]
    theirs, ours, X = fit_both(kind, **params)
    assert_same_model(theirs, ours, X)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"beta_1": 0.5, "learning_rate_init": 0.01},
        {"beta_2": 0.9, "learning_rate_init": 0.01},
        {"early_stopping": True, "max_iter": 30},
    ],
    ids=["defaults", "beta_1", "beta_2", "early_stopping"],
)
def test_adam_agrees_up_to_where_epsilon_enters(params: dict) -> None:
    theirs, ours, X = fit_both("multiclass", **params)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-4)
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-4)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    assert ours._optimizer.eps == 1e-8 and ours._optimizer.beta1 == params.get("beta_1", 0.9)


def test_epsilon_reaches_adam() -> None:
    _, ours, _ = fit_both("multiclass", epsilon=1e-3, beta_2=0.99)
    assert (ours._optimizer.eps, ours._optimizer.beta2) == (1e-3, 0.99)


def test_warm_start_continues_as_scikit_learn_does() -> None:
    X, y = data("multiclass")
    theirs, ours = estimators("multiclass", **SGD, warm_start=True, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for estimator in (theirs, ours):
            estimator.fit(X, y)
            estimator.set_params(max_iter=4, learning_rate_init=0.01).fit(X, y)
    assert len(ours.loss_curve_) == 9 and ours.t_ == 9 * len(X) and ours.n_iter_ == 4
    assert_same_model(theirs, ours, X)


def test_without_warm_start_fit_starts_again() -> None:
    X, y = data("multiclass")
    _, ours = estimators("multiclass", **SGD, max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = [c.copy() for c in ours.fit(X, y).coefs_]
        second = ours.fit(X, y).coefs_
    assert len(ours.loss_curve_) == 5
    for p, q in zip(first, second, strict=True):
        assert_array_equal(p, q)


@pytest.mark.parametrize("kind", ["multiclass", "regression", "multilabel"])
def test_partial_fit_as_scikit_learn(kind: str) -> None:
    X, y = data(kind)
    theirs, ours = estimators(kind, **SGD)
    classes = {"multiclass": np.unique(y), "multilabel": np.arange(3)}
    extra = {"classes": classes[kind]} if kind in classes else {}
    for estimator in (theirs, ours):
        for start in (0, 30, 60, 0):
            estimator.partial_fit(X[start : start + 30], y[start : start + 30], **extra)
    assert ours.n_iter_ == 1 and ours.t_ == 120 and len(ours.loss_curve_) == 4
    assert_same_model(theirs, ours, X)


def test_two_targets_same_weights_and_the_loss_that_was_minimised() -> None:
    """With several targets, scikit-learn's gradient is that of ½ Σ_j (t_j − a_j)² per sample,
    but its loss_ divides that sum by the number of targets. nnmath reports the loss whose
    gradient it follows (docs/sklearn.md): with α = 0, exactly n_outputs times scikit-learn's."""
    theirs, ours, X = fit_both("regression2", **{**SGD, "learning_rate_init": 0.01}, alpha=0.0)
    for p, q in zip(
        theirs.coefs_ + theirs.intercepts_, ours.coefs_ + ours.intercepts_, strict=True
    ):
        assert_allclose(q, p, rtol=1e-9, atol=1e-12)
    assert_allclose(ours.loss_curve_, 2 * np.array(theirs.loss_curve_), rtol=1e-12)
    assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9, atol=1e-12)


def test_partial_fit_after_fit() -> None:
    X, y = data("multiclass")
    theirs, ours = estimators("multiclass", **SGD, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for estimator in (theirs, ours):
            estimator.fit(X, y).partial_fit(X[:40], y[:40])
    assert_same_model(theirs, ours, X)


def test_verbose_prints_scikit_learn_lines() -> None:
    X, y = data("multiclass")
    outputs = []
    params = {**SGD, "verbose": True, "early_stopping": True, "n_iter_no_change": 1, "tol": 0.5}
    for estimator in estimators("multiclass", **params):
        with redirect_stdout(io.StringIO()) as out:
            estimator.fit(X, y)
        outputs.append(out.getvalue())
    assert outputs[1] == outputs[0]
    first, second = outputs[1].splitlines()[:2]
    assert re.fullmatch(r"Iteration 1, loss = \d\.\d{8}", first)
    assert re.fullmatch(r"Validation score: \d\.\d{6}", second)
    assert (
        "did not improve more than tol=0.500000 for 1 consecutive epochs. Stopping." in outputs[1]
    )


def test_dtype_none_follows_float32_input_as_scikit_learn_does() -> None:
    X, y = data("multiclass")
    X = X.astype(np.float32)
    theirs, ours = estimators("multiclass", **SGD)
    ours.set_params(dtype=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.fit(X, y)
        ours.fit(X, y)
    assert ours.coefs_[0].dtype == np.float32 == theirs.coefs_[0].dtype
    assert_same_model(theirs, ours, X, rtol=1e-4, atol=1e-5)
