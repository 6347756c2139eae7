"""The scikit-learn estimators: scikit-learn's own estimator checks, its API (signature, errors,
warnings, partial_fit rules, multilabel, sample_weight, AdaBoost), a one-step example of
``loss_`` worked out by hand, and nnmath's extras.

Same-settings-same-model comparisons with scikit-learn are in test_sklearn_parity.py.
"""

from __future__ import annotations

import inspect
import math
import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as reference
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.ensemble import AdaBoostClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import mean_poisson_deviance
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import shuffle
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from nnmath.errors import DivergenceError, NNMathError, SpecError
from nnmath.gradcheck import numerical_gradient
from nnmath.network import MLP
from nnmath.sklearn import DEFAULT_DTYPE, MLPClassifier, MLPRegressor, ParameterError
from nnmath.sklearn.poisson import PoissonDeviance


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_scikit_learn_estimator_checks(estimator, check) -> None:
    """Every check of scikit-learn's, on the default estimators; none is expected to fail."""
    check(estimator)


@pytest.mark.parametrize("make", [MLPClassifier, MLPRegressor])
def test_sample_weight_is_repetition_in_float32(make) -> None:
    """scikit-learn's check_sample_weight_equivalence (integer weights, zeros included, against
    repeated rows; the weighted rows shuffled) for dtype="auto", at float32's tolerance: after the
    check's 200 Adam epochs a float32 run's outputs are known only to about 1e-3 of themselves
    (here 9e-4 from the float64 fit; the numba kernel, whose sums are reassociated, puts the
    weighted and the repeated fit 3.8e-4 apart, NumPy's 3e-7). Ignoring the weights moves the
    outputs by far more, which the last assertion shows the tolerance would catch."""
    rng = np.random.RandomState(42)
    X, y, w = rng.rand(15, 30), rng.randint(0, 3, 15), rng.randint(0, 5, 15)
    X_weighted, y_weighted, w_weighted = shuffle(X, y, w, random_state=0)
    outputs = "predict_proba" if make is MLPClassifier else "predict"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = {
            "repeated": make(random_state=0, dtype="auto").fit(X.repeat(w, axis=0), y.repeat(w)),
            "weighted": make(random_state=0, dtype="auto").fit(
                X_weighted, y_weighted, sample_weight=w_weighted
            ),
            "unweighted": make(random_state=0, dtype="auto").fit(X_weighted, y_weighted),
        }
    repeated, weighted, unweighted = (getattr(fits[k], outputs)(X) for k in fits)
    assert_allclose(weighted, repeated, rtol=2e-3)
    assert np.max(np.abs(unweighted - repeated) / np.abs(repeated)) > 0.1


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, ...]:
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return tuple(train_test_split(X, y, stratify=y, random_state=0))


# ---- the same signature and the same errors as scikit-learn ------------------------------------


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_every_parameter_of_scikit_learn_with_its_default_and_position(name: str) -> None:
    theirs = inspect.signature(getattr(reference, name)).parameters
    ours = inspect.signature(globals()[name]).parameters
    assert list(ours)[: len(theirs)] == list(theirs)  # same order: positional use works too
    for key, parameter in theirs.items():
        assert ours[key].default == parameter.default, key
        assert ours[key].kind == parameter.kind, key
    extras = ["dtype", "dropout", "batch_norm"] + (["class_weight"] if "Class" in name else [])
    assert list(ours)[len(theirs) :] == extras  # nnmath's extras, after scikit-learn's
    assert ours["dtype"].default == DEFAULT_DTYPE
    assert ours["dropout"].default is None and ours["batch_norm"].default is False


def raised(estimator, method: str, *args, **kwargs) -> BaseException:
    with pytest.raises(Exception) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(estimator, method)(*args, **kwargs)
    return info.value


BAD_PARAMETERS = [
    {"solver": "newton"},
    {"learning_rate": "cyclic"},
    {"learning_rate_init": 0.0},
    {"alpha": -1.0},
    {"batch_size": 0},
    {"batch_size": "big"},
    {"max_iter": 0},
    {"momentum": 1.5},
    {"beta_1": 1.0},
    {"beta_2": -0.1},
    {"epsilon": 0.0},
    {"power_t": -1.0},
    {"tol": -1.0},
    {"n_iter_no_change": 0},
    {"validation_fraction": 1.0},
    {"max_fun": 0},
    {"shuffle": "yes"},
    {"hidden_layer_sizes": (10, 0)},
    {"hidden_layer_sizes": -3},
]


@pytest.mark.parametrize("params", BAD_PARAMETERS, ids=lambda p: "-".join(map(str, p.items())))
def test_bad_parameters_raise_scikit_learn_s_error(params: dict, iris) -> None:
    X, _, y, _ = iris
    theirs = raised(reference.MLPClassifier(**params), "fit", X, y)
    ours = raised(MLPClassifier(**params), "fit", X, y)
    assert isinstance(ours, type(theirs)) and isinstance(ours, NNMathError)
    if {"solver", "learning_rate"} & set(params):  # nnmath's options are listed too
        head, _ = str(theirs).split(" among ")
        assert str(ours).startswith(head) and str(ours).endswith(str(theirs).split("}. ")[-1])
    else:
        assert str(ours) == str(theirs)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"activation": "softmax"}, "'activation' parameter of MLPClassifier must be"),
        ({"activation": "swish"}, "'leaky_relu', 'elu'"),
        ({"learning_rate": 0.01}, "Got 0.01 instead. The step size is learning_rate_init"),
        ({"dtype": "float16"}, "'dtype' parameter of MLPClassifier must be a str among"),
        ({"dtype": np.float16}, "'float64', 'float32' or None"),
    ],
)
def test_bad_extras_are_named(params: dict, message: str, iris) -> None:
    X, _, y, _ = iris
    with pytest.raises(InvalidParameterError, match=message) as info:
        MLPClassifier(**params).fit(X, y)  # no error before fit: scikit-learn validates there
    assert isinstance(info.value, SpecError)


def test_loss_parameter_of_the_regressor_is_checked() -> None:
    error = raised(MLPRegressor(loss="absolute_error"), "fit", np.eye(3), np.arange(3.0))
    assert isinstance(error, ParameterError) and "'loss' parameter" in str(error)


@pytest.mark.parametrize(
    ("scenario", "make"),
    [
        ("nan", lambda X, y: ({}, "fit", (np.where(X > 1, np.nan, X), y))),
        ("3-D X", lambda X, y: ({}, "fit", (X[:, :, None], y))),
        ("rows", lambda X, y: ({}, "fit", (X, y[:-1]))),
        ("no classes", lambda X, y: ({"solver": "sgd"}, "partial_fit", (X, y))),
        ("early", lambda X, y: ({"early_stopping": True}, "partial_fit", (X, y, None, [0, 1, 2]))),
        ("tiny validation", lambda X, y: ({"early_stopping": True}, "fit", (X[:8], y[:8]))),
        ("lbfgs partial_fit", lambda X, y: ({"solver": "lbfgs"}, "partial_fit", (X, y))),
    ],
)
def test_bad_data_and_calls_raise_scikit_learn_s_error(scenario: str, make, iris) -> None:
    X, _, y, _ = iris
    params, method, args = make(X, y)
    theirs = raised(reference.MLPClassifier(max_iter=5, **params), method, *args)
    ours = raised(MLPClassifier(max_iter=5, **params), method, *args)
    assert isinstance(ours, type(theirs)), (type(ours), type(theirs))
    assert str(ours).split(".")[0] == str(theirs).split(".")[0]


def test_partial_fit_checks_classes_as_scikit_learn(iris) -> None:
    X, _, y, _ = iris
    ours, theirs = MLPClassifier(max_iter=5), reference.MLPClassifier(max_iter=5)
    for estimator in (ours, theirs):
        estimator.partial_fit(X, y, classes=[0, 1, 2])
    assert str(raised(ours, "partial_fit", X, y + 5)) == str(
        raised(theirs, "partial_fit", X, y + 5)
    )
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")


def test_warm_start_refuses_new_classes(iris) -> None:
    X, _, y, _ = iris
    clf = MLPClassifier(warm_start=True, max_iter=3).fit(X, y)
    theirs = reference.MLPClassifier(warm_start=True, max_iter=3).fit(X, y)
    y2 = np.where(y == 2, 1, y)
    assert str(raised(clf, "fit", X, y2)) == str(raised(theirs, "fit", X, y2))


def test_divergence_is_a_value_error(iris) -> None:
    X, _, y, _ = iris
    error = raised(MLPRegressor(solver="sgd", learning_rate_init=10.0, max_iter=50), "fit", X, X)
    assert isinstance(error, ValueError) and isinstance(error, DivergenceError)
    assert "diverged" in str(error)


# ---- warnings ---------------------------------------------------------------------------------


def test_convergence_warning_when_max_iter_is_reached(iris) -> None:
    X, _, y, _ = iris
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier(max_iter=3).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge after 3 iteration"):
        MLPClassifier(solver="lbfgs", max_iter=3).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = MLPClassifier(solver="sgd", max_iter=500, tol=0.5, n_iter_no_change=2).fit(X, y)
    assert clf.n_iter_ == 4  # no warning: the first epoch improves on ∞, the next 3 > 2 do not


# ---- loss_: a one-step example worked out by hand ----------------------------------------------


def test_loss_is_the_penalised_cost_before_the_step_worked_by_hand() -> None:
    """Two samples x = (1, 0), (0, 1) with labels 1, 0; one identity hidden unit h = (ln 3) x₁;
    one logistic output p = σ(h). So p = (3/4, 1/2), the log-losses are ln(4/3) and ln 2, and
    with α = ½ scikit-learn's loss_ adds α/(2S) ‖W‖² = ((ln 3)² + 1)/8 (biases are 0):
    loss_ = ½ ln(8/3) + ((ln 3)² + 1)/8. One full-batch SGD step (η = 0.1, no momentum) then
    moves the output weight v = 1 by −η ∂C/∂v, ∂C/∂v = (1/S) Σ (p − y) h + α v / S
    = ½ (−¼ ln 3) + ¼, and its bias by −η · ½ (−¼ + ½)."""
    X, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1, 0])
    coefs = [np.array([[math.log(3)], [0.0]]), np.array([[1.0]])]
    settings = {
        "hidden_layer_sizes": (1,),
        "activation": "identity",
        "solver": "sgd",
        "learning_rate_init": 0.1,
        "momentum": 0.0,
        "alpha": 0.5,
        "shuffle": False,
        "max_iter": 1,
        "warm_start": True,
    }
    expected = 0.5 * math.log(8 / 3) + (math.log(3) ** 2 + 1) / 8
    for estimator in (
        MLPClassifier(**settings, dtype="float64"),
        reference.MLPClassifier(**settings),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator.fit(X, y)  # initialises; then the weights of the example
            estimator.coefs_ = [c.copy() for c in coefs]
            estimator.intercepts_ = [np.zeros(1), np.zeros(1)]
            estimator.fit(X, y)
        assert estimator.loss_ == pytest.approx(expected, rel=1e-14)
        assert estimator.loss_curve_[-1] == estimator.loss_
        step = 0.5 * (-0.25 * math.log(3)) + 0.25
        assert estimator.coefs_[1][0, 0] == pytest.approx(1 - 0.1 * step, rel=1e-14)
        assert estimator.intercepts_[1][0] == pytest.approx(-0.1 * 0.5 * 0.25, rel=1e-14)


# ---- multilabel, sample_weight and AdaBoost -------------------------------------------------------


def test_multilabel_predicts_the_indicator_matrix() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 4))
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] > 0.5]).astype(int)
    clf = MLPClassifier((16,), solver="lbfgs", max_iter=300, random_state=0).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 3
    assert_array_equal(clf.classes_, [0, 1, 2])
    P = clf.predict_proba(X)
    assert P.shape == (150, 3) and not np.allclose(P.sum(axis=1), 1.0)  # independent units
    assert_array_equal(clf.predict(X), (P > 0.5).astype(int))
    assert clf.score(X, Y) > 0.9  # subset accuracy


def test_zero_weight_removes_a_sample_and_integer_weight_repeats_it(iris) -> None:
    X, _, y, _ = iris
    weights = np.tile([0, 1, 2], len(y) // 3 + 1)[: len(y)]
    settings = {"solver": "lbfgs", "max_iter": 40, "random_state": 0, "hidden_layer_sizes": (5,)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = MLPClassifier(**settings).fit(X, y, sample_weight=weights)
        repeated = MLPClassifier(**settings).fit(X.repeat(weights, 0), y.repeat(weights))
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-6, atol=1e-8)
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-10)


@pytest.mark.parametrize(
    ("solver", "batch_size"), [("sgd", 32), ("sgd", "auto"), ("lbfgs", "auto")]
)
def test_sample_weight_as_scikit_learn(solver: str, batch_size, iris) -> None:
    """The weighted cost Σ w ℓ / Σ w + α‖W‖²/(2 Σ w) per batch gives scikit-learn's weights (in
    float64, to round-off). The
    logged loss_ agrees when an epoch is one batch; over several batches scikit-learn averages
    the batch costs by row counts, nnmath by batch weights (docs/sklearn.md)."""
    X, _, y, _ = iris
    weights = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    settings = {"solver": solver, "max_iter": 10, "random_state": 0, "batch_size": batch_size}
    settings |= {"hidden_layer_sizes": (5,), "alpha": 0.1, "learning_rate_init": 0.05}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**settings, dtype="float64").fit(X, y, sample_weight=weights)
        theirs = reference.MLPClassifier(**settings).fit(X, y, sample_weight=weights)
    for p, q in zip(
        theirs.coefs_ + theirs.intercepts_, ours.coefs_ + ours.intercepts_, strict=True
    ):
        assert_allclose(q, p, rtol=1e-9, atol=1e-12)
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9, atol=1e-12)
    if batch_size == "auto":
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-12)


def test_loss_does_not_depend_on_the_scale_of_the_weights() -> None:
    """Σ w ℓ / Σ w is the same for w and c w (to float64 round-off); scikit-learn's loss_ is (α = 0)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), (rng.normal(size=50) > 0).astype(int)
    settings = {"hidden_layer_sizes": (4,), "solver": "sgd", "max_iter": 1, "alpha": 0.0}
    settings |= {"dtype": "float64"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ones = MLPClassifier(**settings, random_state=0).fit(X, y, sample_weight=np.ones(50))
        small = MLPClassifier(**settings, random_state=0).fit(X, y, sample_weight=np.full(50, 0.01))
    assert small.loss_ == pytest.approx(ones.loss_, rel=1e-12)


def test_adaboost_boosts_the_classifier_through_sample_weight(iris) -> None:
    X_train, X_test, y_train, y_test = iris
    base = MLPClassifier((4,), solver="lbfgs", max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        boosted = AdaBoostClassifier(base, n_estimators=4, random_state=0).fit(X_train, y_train)
    assert len(boosted.estimators_) >= 2
    assert all(isinstance(e, MLPClassifier) for e in boosted.estimators_)
    assert boosted.score(X_test, y_test) > 0.85


# ---- fitted attributes, pickling, pipelines -------------------------------------------------------


def test_coefs_are_views_of_the_network_in_scikit_learn_layout(iris) -> None:
    X, _, y, _ = iris
    clf = MLPClassifier((8, 5), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(4, 8), (8, 5), (5, 3)]
    assert [b.shape for b in clf.intercepts_] == [(8,), (5,), (3,)]
    assert clf.n_layers_ == 4 and clf.out_activation_ == "softmax"
    assert isinstance(clf.model_, MLP) and str(clf.model_.spec) == "4-8relu-5relu-3softmax"
    clf.coefs_[2][:] = 0.0  # a view: writing it changes the network
    clf.intercepts_[2][:] = [0.0, 5.0, 0.0]
    assert_array_equal(clf.predict(X), np.ones(len(X)))
    clf.coefs_ = [np.zeros((4, 8)), np.zeros((8, 5)), np.ones((5, 3))]  # assignment copies
    assert_allclose(clf.model_.linears[2].W, np.ones((3, 5)))
    assert not hasattr(MLPClassifier(), "coefs_")


def test_lbfgs_has_no_curve_and_stochastic_solvers_have_one(iris) -> None:
    X, _, y, _ = iris
    lbfgs = MLPClassifier(solver="lbfgs", max_iter=500, random_state=0).fit(X, y)
    assert not hasattr(lbfgs, "loss_curve_") and not hasattr(lbfgs, "best_loss_")
    assert lbfgs.t_ == 0 and lbfgs.n_iter_ <= 500
    early = MLPClassifier(early_stopping=True, max_iter=300, random_state=0).fit(X, y)
    assert early.best_loss_ is None
    assert early.best_validation_score_ == max(early.validation_scores_)
    assert len(early.validation_scores_) == len(early.loss_curve_) == early.n_iter_


def test_feature_names_in(iris) -> None:
    pyarrow = pytest.importorskip("pyarrow")  # a data frame with named columns (as pandas')
    X, _, y, _ = iris
    frame = pyarrow.table({name: X[:, i] for i, name in enumerate("abcd")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(solver="lbfgs", max_iter=20).fit(frame, y)
    assert list(clf.feature_names_in_) == ["a", "b", "c", "d"] and clf.n_features_in_ == 4


def test_pickle_round_trip_and_training_continues(iris) -> None:
    X, X_test, y, _ = iris
    clf = MLPClassifier((8,), activation="leaky_relu(0.1)", max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    assert back.model_ is not clf.model_ and str(back.model_.spec) == "4-8leaky_relu(0.1)-3softmax"
    assert_array_equal(back.predict_proba(X_test), clf.predict_proba(X_test))
    back.partial_fit(X, y)  # the optimizer's state travelled too
    clf.partial_fit(X, y)
    assert_array_equal(back.predict_proba(X_test), clf.predict_proba(X_test))


def test_pipeline_grid_search_and_clone(iris) -> None:
    X_train, X_test, y_train, y_test = iris
    pipeline = make_pipeline(
        StandardScaler(), MLPClassifier(solver="lbfgs", max_iter=100, random_state=0)
    )
    grid = {"mlpclassifier__hidden_layer_sizes": [(4,), (8,)], "mlpclassifier__alpha": [1e-4, 1]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(pipeline, grid, cv=3).fit(X_train, y_train)
    assert search.score(X_test, y_test) > 0.9
    fresh = clone(search.best_estimator_[-1])
    assert (
        not hasattr(fresh, "model_")
        and fresh.get_params() == search.best_estimator_[-1].get_params()
    )


# ---- nnmath's extras --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"activation": "gelu"},
        {"activation": "elu(0.5)"},
        {"activation": "sigmoid"},
        {"solver": "rmsprop"},
        {"solver": "adamw"},
        {"learning_rate": "cosine", "solver": "sgd", "learning_rate_init": 0.1},
        {"learning_rate": "exponential", "learning_rate_init": 0.05},
        {"dtype": "float32"},
    ],
    ids=lambda p: "-".join(map(str, p.values())),
)
def test_nnmath_extras_train(params: dict, iris) -> None:
    X_train, X_test, y_train, y_test = iris
    clf = MLPClassifier((16,), learning_rate_init=0.01, batch_size=16, max_iter=60, random_state=0)
    clf.set_params(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.85
    dtype = np.float32 if params.get("dtype") == "float32" else np.float64
    assert clf.model_.dtype == dtype and clf.predict_proba(X_test).dtype == dtype


def fitted(dtype, X, y, **params):
    settings = {"hidden_layer_sizes": (8,), "max_iter": 20, "random_state": 0, "dtype": dtype}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(**settings | params).fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_auto_dtype_keeps_scikit_learns_dtypes_and_trains_in_float32(solver, iris) -> None:
    """dtype="auto": the network in the input's dtype (float64 here: coefs_, predict_proba as in
    scikit-learn), its values those of the float32 network trained in float32, exactly."""
    X, X_test, y, _ = iris
    auto, single = fitted("auto", X, y, solver=solver), fitted("float32", X, y, solver=solver)
    assert MLPClassifier().dtype == DEFAULT_DTYPE is None
    assert auto.model_.dtype == np.float64 and single.model_.dtype == np.float32
    assert auto.predict_proba(X_test).dtype == np.float64
    for p, q in zip(
        auto.coefs_ + auto.intercepts_, single.coefs_ + single.intercepts_, strict=True
    ):
        assert_array_equal(p, q.astype(np.float64))
    assert auto.loss_curve_ == single.loss_curve_
    float32_input = fitted("auto", X.astype(np.float32), y, solver=solver)
    assert float32_input.model_.dtype == np.float32  # scikit-learn's rule: the input's dtype
    assert_array_equal(float32_input.coefs_[0], single.coefs_[0])


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_dtype_none_and_lbfgs_under_auto_compute_in_float64(solver, iris) -> None:
    """None is scikit-learn's rule (float64 input: float64 arithmetic), and lbfgs keeps the
    network's dtype under "auto": both give dtype="float64"'s model exactly."""
    X, _, y, _ = iris
    double = fitted("float64", X, y, solver=solver)
    for dtype in (None, "auto") if solver == "lbfgs" else (None,):
        other = fitted(dtype, X, y, solver=solver)
        for p, q in zip(other.coefs_, double.coefs_, strict=True):
            assert_array_equal(p, q)
    assert fitted("auto", X, y, solver=solver).coefs_[0].dtype == np.float64


def test_cosine_schedule_reaches_zero_at_max_iter(iris) -> None:
    X, _, y, _ = iris
    clf = MLPClassifier(solver="sgd", learning_rate="cosine", learning_rate_init=0.1, max_iter=8)
    clf.set_params(tol=0.0, n_iter_no_change=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf._optimizer.learning_rate == pytest.approx(
        0.1 * 0.5 * (1 + math.cos(math.pi * 7 / 8))
    )


def test_predict_proba_is_the_network_output(iris) -> None:
    X, X_test, y, _ = iris
    clf = MLPClassifier((10,), activation="tanh", solver="lbfgs", max_iter=30).fit(X, y == 1)
    P = clf.predict_proba(X_test)
    assert_allclose(P[:, 1:], clf.model_.predict(X_test))  # one σ unit: P(classes_[1])
    assert_allclose(np.exp(clf.predict_log_proba(X_test)), P, atol=1e-300)  # ln 0 is clamped
    assert str(clf.model_.spec) == "4-10tanh-1sigmoid"


# ---- the Poisson regressor's loss -------------------------------------------------------------------


def test_poisson_deviance_against_central_differences_and_torch() -> None:
    """ℓ = Σ (y ln y − y z − y + e^z) on log-means z: its gradient e^z − y against central
    differences, and against PyTorch's poisson_nll_loss(log_input=True), e^z − y z, which differs
    from ℓ by the constant y ln y − y (so the values differ by exactly that, the gradients not)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    Z, Y = rng.normal(size=(5, 3)), rng.poisson(2.0, size=(5, 3)).astype(float)
    loss = PoissonDeviance()
    numerical = numerical_gradient(lambda: float(np.sum(loss.value(Z, Y))), Z)
    assert_allclose(loss.grad(Z, Y), numerical, rtol=1e-7, atol=1e-9)
    z = torch.tensor(Z, requires_grad=True)
    nll = torch.nn.functional.poisson_nll_loss(z, torch.tensor(Y), log_input=True, reduction="sum")
    nll.backward()
    assert_allclose(loss.grad(Z, Y), z.grad.numpy(), rtol=1e-14)
    constant = np.sum(np.where(Y > 0, Y * np.log(np.where(Y > 0, Y, 1)), 0.0) - Y)
    assert float(np.sum(loss.value(Z, Y))) == pytest.approx(nll.item() + constant, rel=1e-13)
    assert_array_equal(loss.value(np.zeros((1, 2)), np.zeros((1, 2))), [2.0])  # y = 0: no ln 0


def test_poisson_regressor_predicts_the_mean(iris) -> None:
    X, _, _, _ = iris
    rate = np.exp(0.5 * X[:, 0])
    y = np.random.default_rng(0).poisson(rate).astype(float)
    reg = MLPRegressor(loss="poisson", solver="lbfgs", hidden_layer_sizes=(4,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    assert reg.out_activation_ == "exp" and str(reg.model_.spec) == "4-4relu-1"
    assert_allclose(reg.predict(X), np.exp(reg.model_.predict(X).ravel()))  # μ = e^z
    constant = mean_poisson_deviance(y, np.full_like(y, y.mean()))
    assert mean_poisson_deviance(y, reg.predict(X)) < 0.8 * constant


# ---- nnmath's extras: class weights, dropout, batch norm ---------------------------------------


def imbalanced(iris):
    """Iris with most of class 2 left out: 37 + 37 + 7 rows."""
    X, _, y, _ = iris
    keep = (y != 2) | (np.arange(len(y)) % 5 == 0)
    return X[keep], y[keep]


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_class_weight_is_sample_weight_from_scikit_learns_compute_sample_weight(iris, solver):
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = imbalanced(iris)
    options = {"hidden_layer_sizes": (8,), "max_iter": 20, "random_state": 0, "solver": solver}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        balanced = MLPClassifier(class_weight="balanced", **options).fit(X, y)
        by_hand = MLPClassifier(**options).fit(X, y, compute_sample_weight("balanced", y))
        plain = MLPClassifier(**options).fit(X, y)
        weights = np.linspace(0.5, 2.0, len(y))
        both = MLPClassifier(class_weight={2: 3.0}, **options).fit(X, y, weights)
        product = MLPClassifier(**options).fit(X, y, weights * np.where(y == 2, 3.0, 1.0))
    for a, b in zip(balanced.coefs_, by_hand.coefs_, strict=True):
        assert_array_equal(a, b)
    assert not np.allclose(balanced.coefs_[0], plain.coefs_[0])  # the weights changed the fit
    for a, b in zip(both.coefs_, product.coefs_, strict=True):
        assert_array_equal(a, b)


def test_balanced_class_weight_raises_the_recall_of_a_rare_class():
    from sklearn.datasets import load_digits
    from sklearn.metrics import recall_score

    X, y = load_digits(return_X_y=True)
    keep = (y != 3) | (np.arange(len(y)) % 6 == 0)  # a thirtieth of the threes
    X, y = X[keep] / 16.0, y[keep]
    options = {"hidden_layer_sizes": (32,), "max_iter": 15, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = MLPClassifier(**options).fit(X, y)
        balanced = MLPClassifier(class_weight="balanced", **options).fit(X, y)
    recall = [recall_score(y, m.predict(X), labels=[3], average=None)[0] for m in (plain, balanced)]
    assert recall[1] > recall[0] + 0.1, recall


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"dropout": 1.0}, "'dropout' parameter"),
        ({"dropout": -0.1}, "'dropout' parameter"),
        ({"batch_norm": "yes"}, "'batch_norm' parameter"),
        ({"class_weight": "even"}, "'class_weight' parameter"),
        ({"dropout": 0.2, "solver": "lbfgs"}, "needs a stochastic solver"),
    ],
)
def test_bad_extras_are_refused_with_scikit_learns_error(iris, params, message):
    X, _, y, _ = iris
    with pytest.raises(ParameterError, match=message):
        MLPClassifier(**params).fit(X, y)


def test_batch_norm_and_dropout_train_predict_pickle_and_keep_their_statistics(iris):
    X, X_test, y, y_test = iris
    options = {"hidden_layer_sizes": (16,), "max_iter": 100, "random_state": 0,
               "learning_rate_init": 0.02}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier(batch_norm=True, dropout=0.2, **options).fit(X, y)
        again = MLPClassifier(batch_norm=True, dropout=0.2, **options).fit(X, y)
    assert str(model.model_.spec) == "4-16relu+bn+dropout(0.2)-3softmax"
    assert model.score(X_test, y_test) > 0.85
    for a, b in zip(model.coefs_, again.coefs_, strict=True):
        assert_array_equal(a, b)  # dropout's masks come from random_state: reproducible
    norm = model.model_.batch_norms[0]
    assert np.abs(norm.running_mean).max() > 0  # predict uses the statistics the steps collected
    copy = pickle.loads(pickle.dumps(model))
    assert_array_equal(copy.predict_proba(X_test), model.predict_proba(X_test))
    model.coefs_ = [c * 1.0 for c in model.coefs_]  # the setter keeps γ, β and the statistics
    assert_array_equal(model.model_.batch_norms[0].running_var, norm.running_var)
    assert_array_equal(copy.predict_proba(X_test), model.predict_proba(X_test))


def test_early_stopping_with_batch_norm_restores_the_best_statistics(iris):
    X, _, y, _ = iris
    seen = []
    original = MLPClassifier._score

    def scored(self, *args):
        seen.append({k: np.array(v) for k, v in self.model_.named_arrays().items()})
        return original(self, *args)

    model = MLPClassifier((16,), batch_norm=True, early_stopping=True, max_iter=80,
                          n_iter_no_change=3, random_state=0, learning_rate_init=0.05)  # fmt: skip
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as patch:
        warnings.simplefilter("ignore", ConvergenceWarning)
        patch.setattr(MLPClassifier, "_score", scored)
        model.fit(X, y)
    best = int(np.argmax(model.validation_scores_))
    assert best < len(seen) - 1  # a later epoch was worse
    for name, value in seen[best].items():
        assert_array_equal(model.model_.named_arrays()[name], value, err_msg=name)
