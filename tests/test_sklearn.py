"""The scikit-learn estimators: scikit-learn's own estimator checks, Pipelines and GridSearchCV,
partial_fit, pickling, the L2 penalty's gradient against central differences, and clear errors.

BLAS is held to one thread here: these are many tiny matrix products, for which a second thread on
a shared two-core machine costs more than it gives.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from nnmath.errors import DataError, SpecError
from nnmath.gradcheck import numerical_gradient
from nnmath.losses import get_loss
from nnmath.network import MLP
from nnmath.sklearn import MLPClassifier, MLPRegressor, l2_gradients

# Checks that fail, with the reason (see docs/ecosystem.md): none at present. Kept as the one place
# to list any, through scikit-learn's own mechanism.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@parametrize_with_checks(
    [MLPClassifier(), MLPRegressor()],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_scikit_learn_estimator_checks(estimator, check) -> None:
    check(estimator)


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, ...]:
    X, y = load_iris(return_X_y=True)
    return tuple(train_test_split(X, y, stratify=y, random_state=0))


def test_pipeline_and_grid_search(iris) -> None:
    X_train, X_test, y_train, y_test = iris
    pipeline = make_pipeline(
        StandardScaler(),
        MLPClassifier(learning_rate=1e-2, batch_size=16, max_iter=40, random_state=0),
    )
    grid = {
        "mlpclassifier__hidden_layer_sizes": [(8,), (16,)],
        "mlpclassifier__alpha": [1e-4, 1e-2],
    }
    search = GridSearchCV(pipeline, grid, cv=3).fit(X_train, y_train)
    assert search.best_params_["mlpclassifier__hidden_layer_sizes"] in [(8,), (16,)]
    assert search.score(X_test, y_test) > 0.9


def test_same_seed_same_model_and_clone_is_unfitted(iris) -> None:
    X_train, _, y_train, _ = iris
    a = MLPClassifier((10,), max_iter=20, random_state=3).fit(X_train, y_train)
    b = clone(a)
    assert not hasattr(b, "model_") and b.get_params() == a.get_params()
    b.fit(X_train, y_train)
    for p, q in zip(a.model_.parameters(), b.model_.parameters(), strict=True):
        assert_array_equal(p, q)


def test_predict_proba_is_the_network_output(iris) -> None:
    X_train, X_test, y_train, _ = iris
    clf = MLPClassifier((10,), activation="tanh", max_iter=30, random_state=0).fit(X_train, y_train)
    P = clf.predict_proba(X_test)
    assert_allclose(P, clf.model_.predict(X_test))
    assert_allclose(P.sum(axis=1), 1.0)
    assert_array_equal(clf.predict(X_test), clf.classes_[P.argmax(axis=1)])
    assert_allclose(np.exp(clf.predict_log_proba(X_test)), P)
    assert str(clf.model_.spec) == "4-10tanh-3softmax"


def test_binary_classes_use_one_sigmoid_unit() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    clf = MLPClassifier((8,), learning_rate=1e-2, max_iter=100, random_state=0).fit(X, y)
    assert str(clf.model_.spec) == "3-8relu-1sigmoid"
    P = clf.predict_proba(X)
    assert P.shape == (120, 2) and list(clf.classes_) == ["no", "yes"]
    assert_allclose(P[:, 1:], clf.model_.predict(X))  # column 1 is P(classes_[1])
    assert clf.score(X, y) > 0.9


def test_regressor_single_and_multiple_targets() -> None:
    X, y = make_regression(n_samples=200, n_features=4, n_targets=2, noise=1.0, random_state=0)
    y = y / y.std(axis=0)
    reg = MLPRegressor((32,), learning_rate=1e-2, max_iter=200, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (200, 2) and reg.score(X, y) > 0.95
    reg1 = clone(reg).fit(X, y[:, 0])
    assert reg1.predict(X).shape == (200,)
    assert str(reg1.model_.spec) == "4-32relu-1"


def test_partial_fit_continues(iris) -> None:
    X_train, _, y_train, _ = iris
    clf = MLPClassifier((16,), learning_rate=1e-2, random_state=0)
    with pytest.raises(DataError, match="classes="):
        clf.partial_fit(X_train, y_train)
    losses = []
    for _ in range(15):
        clf.partial_fit(X_train, y_train, classes=[0, 1, 2])
        losses.append(clf.loss_)
    assert clf.n_iter_ == 15 and len(clf.loss_curve_) == 15
    assert losses[-1] < 0.5 * losses[0]  # the optimizer state carries over between calls
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X_train[:, :3], y_train)
    with pytest.raises(DataError, match="not one of the classes"):
        clf.partial_fit(X_train, y_train + 5)


def test_pickle_round_trip(iris) -> None:
    X_train, X_test, y_train, _ = iris
    clf = MLPClassifier((8,), activation="leaky_relu(0.1)", max_iter=10, random_state=0)
    clf.fit(X_train, y_train)
    back = pickle.loads(pickle.dumps(clf))
    assert back.model_ is not clf.model_ and str(back.model_.spec) == "4-8leaky_relu(0.1)-3softmax"
    assert_array_equal(back.predict_proba(X_test), clf.predict_proba(X_test))
    back.partial_fit(X_train, y_train)  # and training can continue


def test_float32(iris) -> None:
    X_train, X_test, y_train, _ = iris
    clf = MLPClassifier((8,), max_iter=5, dtype="float32", random_state=0).fit(X_train, y_train)
    assert clf.model_.dtype == np.float32
    assert clf.predict_proba(X_test).dtype == np.float32


def test_early_stopping_holds_out_validation_rows(iris) -> None:
    X_train, _, y_train, _ = iris
    clf = MLPClassifier(
        (8,),
        learning_rate=0.05,
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=500,
        random_state=0,
    )
    clf.fit(X_train, y_train)
    assert "val_loss" in clf.history_
    assert clf.n_iter_ < 500 and clf.history_.stopped_early


def test_l2_gradient_matches_central_differences() -> None:
    rng = np.random.default_rng(1)
    model = MLP("3-5tanh-4softmax", rng=rng)
    loss, alpha = get_loss("cross-entropy"), 0.3
    X, y = rng.normal(size=(6, 3)), rng.integers(0, 4, size=6)
    T = np.eye(4)[y]
    value, grads = l2_gradients(model, loss, alpha)(X, T)

    def penalised_cost() -> float:
        penalty = 0.5 * alpha * sum(float(np.sum(L.W**2)) for L in model.linears)
        return model.cost(X, T, loss) + penalty

    assert value == pytest.approx(penalised_cost(), rel=1e-12)
    for param, analytic in zip(model.parameters(), grads, strict=True):
        assert_allclose(analytic, numerical_gradient(penalised_cost, param), rtol=1e-6, atol=1e-9)


def test_alpha_shrinks_the_weights(iris) -> None:
    X_train, _, y_train, _ = iris
    norms = []
    for alpha in (0.0, 1.0):
        clf = MLPClassifier((16,), alpha=alpha, learning_rate=1e-2, batch_size=16, max_iter=50)
        clf.set_params(random_state=0).fit(X_train, y_train)
        norms.append(sum(float(np.sum(L.W**2)) for L in clf.model_.linears))
    assert norms[1] < 0.5 * norms[0]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"solver": "lbfgs"}, "unknown solver 'lbfgs'; choose one of: sgd"),
        ({"learning_rate": "adaptive"}, "learning_rate_init"),
        ({"activation": "softmax"}, "hidden-layer activation"),
        ({"activation": "swish"}, "unknown activation"),
        ({"hidden_layer_sizes": (10, 0)}, "positive integers"),
        ({"alpha": -1.0}, "alpha"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_iter": 0}, "max_iter"),
        ({"dtype": "float16"}, "float64' or 'float32"),
        ({"dtype": "bfloat7"}, "float64' or 'float32"),
        ({"schedule": "invscaling"}, "unknown schedule"),
        ({"early_stopping": True, "validation_fraction": 1.5}, "validation_fraction"),
    ],
)
def test_bad_hyperparameters_are_named_at_fit(params: dict, message: str, iris) -> None:
    X_train, _, y_train, _ = iris
    clf = MLPClassifier(**params)  # no error yet: scikit-learn validates in fit
    with pytest.raises(SpecError, match=message):
        clf.fit(X_train, y_train)


def test_one_class_is_refused() -> None:
    with pytest.raises(DataError, match="at least 2 classes"):
        MLPClassifier().fit(np.zeros((4, 2)), np.ones(4))
