"""The scikit-learn bridge: fitted estimators (scikit-learn's and nnmath's) as nnmath networks and
model files, and nnmath networks and model files as fitted scikit-learn estimators, with equal
outputs; the model file is read back by ``nnmath predict``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as reference
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning

from nnmath import sklearn as nnmath_sklearn
from nnmath.cli import main
from nnmath.datasets import Standardizer
from nnmath.errors import SpecError
from nnmath.interop import estimator_model, from_sklearn, save_estimator, to_sklearn
from nnmath.losses import get_loss
from nnmath.modelfile import TrainedModel, load_model
from nnmath.network import MLP


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def fitted(library, kind: str, X: np.ndarray, y: np.ndarray, **params):
    labels = {
        "multiclass": y,
        "binary": np.where(y == 1, "versicolor", "other"),
        "text": np.array(["setosa", "versicolor", "virginica"])[y],
        "multilabel": np.column_stack([y == 0, y == 1, X[:, 0] > 0]).astype(int),
        "regression": np.column_stack([X[:, 0] + X[:, 1], X[:, 2]]),
    }[kind]
    name = "MLPRegressor" if kind == "regression" else "MLPClassifier"
    settings = {"hidden_layer_sizes": (7, 5), "activation": "tanh", "max_iter": 30}
    estimator = getattr(library, name)(**{**settings, "random_state": 0, **params})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, labels)


def outputs(estimator, X: np.ndarray) -> np.ndarray:
    if hasattr(estimator, "predict_proba"):
        P = estimator.predict_proba(X)
        return P[:, 1:] if estimator.n_outputs_ == 1 else P  # the σ unit is P(classes_[1])
    return estimator.predict(X).reshape(len(X), -1)


KINDS = ["multiclass", "binary", "text", "multilabel", "regression"]


@pytest.mark.parametrize("library", [reference, nnmath_sklearn], ids=["sklearn", "nnmath"])
@pytest.mark.parametrize("kind", KINDS)
def test_from_sklearn_computes_the_estimator_s_outputs(library, kind: str, iris) -> None:
    X, y = iris
    estimator = fitted(library, kind, X, y)
    network = from_sklearn(estimator)
    expected_output = {"multiclass": "softmax", "text": "softmax", "regression": "identity"}
    assert str(network.spec) == f"4-7tanh-5tanh-{network.n_out}" + (
        "" if expected_output.get(kind) == "identity" else expected_output.get(kind, "sigmoid")
    )
    assert_allclose(network.predict(X), outputs(estimator, X), rtol=1e-13, atol=1e-15)
    for W, coef in zip((L.W for L in network.linears), estimator.coefs_, strict=True):
        assert not np.shares_memory(W, coef)  # copies: the network is independent


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_back_to_scikit_learn(kind: str, iris) -> None:
    X, y = iris
    estimator = fitted(reference, kind, X, y)
    classes = getattr(estimator, "classes_", None) if kind != "multilabel" else None
    back = to_sklearn(from_sklearn(estimator), classes=classes)
    assert type(back) is type(estimator)
    assert_allclose(outputs(back, X), outputs(estimator, X), rtol=1e-13, atol=1e-15)
    if kind == "regression":
        assert_allclose(back.predict(X), estimator.predict(X), rtol=1e-13, atol=1e-15)
    else:
        assert_array_equal(back.predict(X), estimator.predict(X))


def test_to_sklearn_keeps_the_class_order_and_folds_a_two_unit_softmax() -> None:
    X = np.random.default_rng(0).normal(size=(20, 4))
    model = MLP("4-6relu-3softmax", seed=1)
    estimator = to_sklearn(model, classes=["z", "y", "x"])
    assert_array_equal(estimator.classes_, ["x", "y", "z"])  # scikit-learn sorts its classes
    assert_allclose(estimator.predict_proba(X), model.predict(X)[:, ::-1], rtol=1e-13)
    assert_array_equal(estimator.predict(X), np.array(["z", "y", "x"])[model.predict(X).argmax(1)])
    pair = MLP("4-6relu-2softmax", seed=2)  # softmax(z)₁ = σ(z₁ − z₀): one logistic unit
    estimator = to_sklearn(pair, classes=["yes", "no"])
    assert estimator.out_activation_ == "logistic" and estimator.coefs_[-1].shape == (6, 1)
    assert_allclose(estimator.predict_proba(X), pair.predict(X)[:, ::-1], rtol=1e-12, atol=1e-15)


def test_a_model_file_folds_its_standardizers_into_the_estimator() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3)) * [2.0, 50.0, 0.1] + [10.0, -400.0, 3.0]
    classifier = TrainedModel(
        MLP("3-5tanh-3softmax", seed=4),
        get_loss("cross-entropy"),
        class_names=["b", "a", "c"],
        feature_names=["u", "v", "w"],
        standardizer=Standardizer.fit(X),
    )
    estimator = to_sklearn(classifier)
    assert list(estimator.feature_names_in_) == ["u", "v", "w"]
    with pytest.warns(UserWarning, match="fitted with feature names"):  # X has no names here
        P = estimator.predict_proba(X)
    assert_allclose(P, classifier.predict_proba(X)[:, [1, 0, 2]], rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert_array_equal(estimator.predict(X), classifier.predict(X))
    regressor = TrainedModel(
        MLP("3-4relu-2", seed=5),
        get_loss("mse"),
        "regression",
        standardizer=Standardizer.fit(X),
        target_standardizer=Standardizer(np.array([100.0, -1.0]), np.array([20.0, 0.5])),
    )
    assert_allclose(to_sklearn(regressor).predict(X), regressor.predict(X), rtol=1e-10)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("4-5relu-3tanh-2softmax", "one activation for every hidden layer"),
        ("4-5gelu-2softmax", "one activation for every hidden layer"),
        ("4-5relu-2softplus", "end in softmax, logistic"),
    ],
)
def test_networks_scikit_learn_cannot_hold_are_refused(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        to_sklearn(MLP(spec))


def test_wrong_class_labels_are_refused() -> None:
    with pytest.raises(SpecError, match="one distinct label per class"):
        to_sklearn(MLP("4-3softmax"), classes=["a", "a", "b"])


@pytest.mark.parametrize("library", [reference, nnmath_sklearn], ids=["sklearn", "nnmath"])
@pytest.mark.parametrize("kind", ["text", "binary", "regression"])
def test_an_estimator_saved_as_a_model_file_predicts_from_a_pipe(
    library, kind: str, iris, tmp_path, capsys, monkeypatch
) -> None:
    X, y = iris
    estimator = fitted(library, kind, X, y)
    path = save_estimator(estimator, tmp_path / "model.nnm")
    model = load_model(path)
    assert model.task == ("regression" if kind == "regression" else "classification")
    if kind == "regression":
        assert_allclose(model.predict(X), estimator.predict(X), rtol=1e-12)
        return
    assert model.class_names == [str(c) for c in estimator.classes_]
    assert_array_equal(model.predict(X), estimator.predict(X).astype(str))
    csv = tmp_path / "rows.csv"
    np.savetxt(csv, X[:5], delimiter=",", header="a,b,c,d", comments="")
    assert main(["predict", str(path), str(csv)]) == 0
    printed = capsys.readouterr().out
    for label in estimator.predict(X[:5]):
        assert str(label) in printed


def test_multilabel_has_no_model_file_form(iris) -> None:
    X, y = iris
    with pytest.raises(SpecError, match="multilabel"):
        estimator_model(fitted(nnmath_sklearn, "multilabel", X, y))


def test_poisson_output_is_refused_by_name() -> None:
    X = np.random.default_rng(0).normal(size=(30, 2))
    poisson = reference.MLPRegressor(loss="poisson", hidden_layer_sizes=(3,), max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        poisson.fit(X, np.exp(X[:, 0]))
    for estimator in (poisson, nnmath_sklearn.MLPRegressor(**poisson.get_params())):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X, np.exp(X[:, 0]))
        with pytest.raises(SpecError, match="'exp' has no nnmath layer"):
            from_sklearn(estimator)


def test_derive_explains_a_model_trained_in_scikit_learn(iris, tmp_path, capsys) -> None:
    X, y = iris
    path = save_estimator(fitted(reference, "multiclass", X, y), tmp_path / "sk.nnm")
    assert main(["derive", "--model", str(path), "--example", "--verify"]) == 0
    document = capsys.readouterr().out
    assert "4-7tanh-5tanh-3softmax" in document and "W_{3}" in document
