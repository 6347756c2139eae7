"""scikit-learn estimators on the nnmath engine: ``MLPClassifier`` and ``MLPRegressor``.

They follow scikit-learn's estimator contract (``fit``, ``partial_fit``, ``predict``, ``score``,
``get_params``/``set_params``, ``clone``, Pipelines, GridSearchCV) and train with
:func:`nnmath.training.fit`, the same loop as ``nnmath train``. The network is
``n_features → hidden_layer_sizes (activation) → output``, where the output is a softmax over the
classes (three or more), one sigmoid unit (two classes) or identity units (regression), each with
its matching loss (cross-entropy, binary cross-entropy, mean squared error).

The names are scikit-learn's where the idea is the same (``hidden_layer_sizes``, ``activation``,
``solver``, ``alpha``, ``batch_size``, ``max_iter``, ``tol``, ``n_iter_no_change``,
``early_stopping``, ``validation_fraction``, ``random_state``); two differ:

- ``learning_rate`` is the step size (scikit-learn's ``learning_rate_init``); a schedule is
  ``schedule=`` ("constant", "cosine", "step", "exponential").
- ``alpha`` is the L2 penalty in the cost C = mean ℓ + (α/2) Σ_l ‖W⁽ˡ⁾‖² (biases are not
  penalised), so ∂C/∂W⁽ˡ⁾ gains α W⁽ˡ⁾. scikit-learn divides the penalty by the batch size.

The fitted network is ``model_`` (an :class:`nnmath.network.MLP`); ``history_`` holds the metrics
of every epoch.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as error:  # pragma: no cover - scikit-learn is in the data extra
    raise ImportError(
        "nnmath.sklearn needs scikit-learn ≥ 1.6; install it with 'pip install nnmath[data]'"
    ) from error

from nnmath.activations import ACTIVATIONS
from nnmath.errors import DataError, SpecError
from nnmath.losses import Loss, get_loss
from nnmath.network import MLP
from nnmath.optimizers import OPTIMIZERS, Optimizer, make_optimizer
from nnmath.spec import LayerSpec, NetworkSpec, parse_spec
from nnmath.training import CLASSIFICATION, REGRESSION, GradientFn, backprop, fit

__all__ = ["MLPClassifier", "MLPRegressor", "l2_gradients"]

DTYPES = ("float64", "float32")
SCHEDULES = ("constant", "cosine", "step", "exponential")


def l2_gradients(model: MLP, loss: Loss, alpha: float) -> GradientFn:
    """Backprop for C = mean ℓ + (α/2) Σ_l ‖W⁽ˡ⁾‖²: each ∂C/∂W⁽ˡ⁾ gains α W⁽ˡ⁾ (biases untouched)."""
    gradients = backprop(model, loss)
    if alpha == 0:
        return gradients

    def penalised(X: Any, T: Any) -> tuple[float, list[Any]]:
        value, grads = gradients(X, T)
        for index, linear in enumerate(model.linears):
            grads[2 * index] = grads[2 * index] + alpha * linear.W  # [dW1, db1, dW2, db2, …]
            value += 0.5 * alpha * float(np.sum(linear.W * linear.W))
        return value, grads

    return penalised


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)


def _dtype_name(dtype: Any) -> str | None:
    try:
        return np.dtype(dtype).name
    except TypeError:
        return None


def _hidden_layers(sizes: Any, activation: str) -> tuple[LayerSpec, ...]:
    """The hidden LayerSpecs, validating sizes and the activation name (with its parameter)."""
    if isinstance(sizes, numbers.Integral):
        sizes = (sizes,)
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise SpecError(
            f"hidden_layer_sizes must be a tuple of positive integers, got {sizes!r}"
        ) from None
    if not all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes
    ):
        raise SpecError(f"hidden_layer_sizes must be a tuple of positive integers, got {sizes!r}")
    if not isinstance(activation, str) or activation.strip().lower().startswith("softmax"):
        raise SpecError(
            f"activation must name a hidden-layer activation ({', '.join(ACTIVATIONS)}, or "
            f"scikit-learn's 'logistic'), optionally with a parameter as in 'leaky_relu(0.1)'; "
            f"got {activation!r}"
        )
    if not sizes:
        return ()
    return parse_spec("-".join(["1", *(f"{s}{activation}" for s in sizes)])).layers


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: hyperparameters, building, training, pickling."""

    _task: str

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        learning_rate: float = 1e-3,
        schedule: str | None = None,
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        max_iter: int = 200,
        tol: float = 1e-4,
        n_iter_no_change: int = 10,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        random_state: Any = None,
        dtype: str = "float64",
        verbose: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose

    # ---- checks of the hyperparameters (in fit, never in __init__ or set_params) ---------------

    def _validate_hyperparameters(self) -> None:
        if self.solver not in OPTIMIZERS:
            raise SpecError(
                f"unknown solver {self.solver!r}; choose one of: {', '.join(OPTIMIZERS)}"
            )
        if not (_is_number(self.learning_rate) and self.learning_rate > 0):
            raise SpecError(
                f"learning_rate is the step size, a number > 0 (scikit-learn's learning_rate_init); "
                f"got {self.learning_rate!r}. A schedule goes in schedule= ({', '.join(SCHEDULES)})"
            )
        if self.schedule is not None and self.schedule not in SCHEDULES:
            raise SpecError(
                f"unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}"
            )
        if not (_is_number(self.alpha) and self.alpha >= 0):
            raise SpecError(f"alpha (the L2 penalty) must be a number ≥ 0, got {self.alpha!r}")
        if self.batch_size != "auto" and not (
            isinstance(self.batch_size, numbers.Integral) and self.batch_size >= 1
        ):
            raise SpecError(f"batch_size must be 'auto' or an integer ≥ 1, got {self.batch_size!r}")
        for name in ("max_iter", "n_iter_no_change"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise SpecError(f"{name} must be an integer ≥ 1, got {value!r}")
        if not (_is_number(self.tol) and self.tol >= 0):
            raise SpecError(f"tol must be a number ≥ 0, got {self.tol!r}")
        if self.early_stopping and not (
            _is_number(self.validation_fraction) and 0 < self.validation_fraction < 1
        ):
            raise SpecError(
                f"validation_fraction must lie strictly between 0 and 1, got {self.validation_fraction!r}"
            )
        if _dtype_name(self.dtype) not in DTYPES:
            raise SpecError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        _hidden_layers(self.hidden_layer_sizes, self.activation)

    # ---- building and training ------------------------------------------------------------------

    def _output_layer(self, n_outputs: int) -> LayerSpec:
        raise NotImplementedError

    def _new_model(self, n_features: int, n_outputs: int, rng: np.random.Generator) -> MLP:
        hidden = _hidden_layers(self.hidden_layer_sizes, self.activation)
        spec = NetworkSpec(n_features, (*hidden, self._output_layer(n_outputs)))
        return MLP(spec, rng=rng, dtype=np.dtype(self.dtype))

    def _loss_name(self) -> str:
        raise NotImplementedError

    def _train(self, X: np.ndarray, T: np.ndarray, *, epochs: int, incremental: bool) -> None:
        """Run nnmath.training.fit on the model built by the caller; record the history."""
        loss = get_loss(self._loss_name())
        batch_size = min(200, len(X)) if self.batch_size == "auto" else int(self.batch_size)
        stopping = {}
        if not incremental:
            stopping = {"patience": self.n_iter_no_change, "min_delta": float(self.tol)}
            if self.early_stopping:
                stopping["validation_fraction"] = float(self.validation_fraction)
        history = fit(
            self.model_,
            X,
            T,
            loss=loss,
            optimizer=self._optimizer,
            epochs=epochs,
            batch_size=min(batch_size, len(X)),
            rng=self._rng,
            schedule=None if incremental else self.schedule,
            gradients=l2_gradients(self.model_, loss, float(self.alpha)),
            task=self._task,
            progress=bool(self.verbose),
            **stopping,
        )
        self.history_ = history
        self.loss_curve_ = [*getattr(self, "loss_curve_", []), *history["loss"]]
        self.n_iter_ = (
            getattr(self, "n_iter_", 0) + history.epochs if incremental else history.epochs
        )
        self.loss_ = self.loss_curve_[-1]

    def _start(self, X: np.ndarray, n_outputs: int) -> None:
        """A fresh model, optimizer and shuffling generator, all drawn from random_state."""
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        self._rng = np.random.default_rng(seed)
        self.model_ = self._new_model(X.shape[1], n_outputs, self._rng)
        self._optimizer: Optimizer = make_optimizer(
            self.solver, learning_rate=float(self.learning_rate)
        )
        for name in ("loss_curve_", "n_iter_"):
            self.__dict__.pop(name, None)

    def _forward(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.dtype(self.dtype))
        return self.model_.predict(X)

    # ---- pickling: the MLP holds functions, so it travels as its spec and weights ---------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # scikit-learn's, with its version stamp
        model = state.pop("model_", None)
        if model is not None:
            state["_model_parts"] = (model.spec, [(L.W, L.b) for L in model.linears])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        parts = state.pop("_model_parts", None)
        super().__setstate__(state)
        if parts is not None:
            spec, weights = parts
            self.model_ = MLP.from_weights(spec, weights)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multi-layer perceptron classifier trained by nnmath's backprop.

    Two classes: one sigmoid output and binary cross-entropy; three or more: softmax and
    cross-entropy. ``predict_proba`` returns one column per class in the order of ``classes_``.
    """

    _task = CLASSIFICATION

    def _output_layer(self, n_outputs: int) -> LayerSpec:
        return LayerSpec(1, "sigmoid") if n_outputs == 2 else LayerSpec(n_outputs, "softmax")

    def _loss_name(self) -> str:
        return "cross-entropy" if self.model_.output == "softmax" else "binary-cross-entropy"

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Class labels → indices into classes_; labels never seen in the first fit are refused."""
        indices = np.searchsorted(self.classes_, y)
        indices = np.clip(indices, 0, len(self.classes_) - 1)
        unknown = self.classes_[indices] != y
        if np.any(unknown):
            raise DataError(
                f"label {y[np.argmax(unknown)]!r} is not one of the classes {list(self.classes_)} "
                f"given to the first partial_fit; pass every class there with classes="
            )
        return indices.astype(np.int64)

    def _data(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, reset=reset, dtype=np.dtype(self.dtype))
        check_classification_targets(y)
        if type_of_target(y) not in ("binary", "multiclass"):
            raise DataError(f"MLPClassifier takes one label per sample; got {type_of_target(y)} y")
        return X, y

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train a fresh network on (X, y) for up to max_iter epochs; return self."""
        self._validate_hyperparameters()
        X, y = self._data(X, y, reset=True)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise DataError(
                f"MLPClassifier needs at least 2 classes to learn from; y holds one class "
                f"({self.classes_[0]!r})"
            )
        self._start(X, len(self.classes_))
        self._train(X, self._encode(y), epochs=int(self.max_iter), incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y), continuing from the current weights and optimizer state.

        The first call needs ``classes``, every label that will ever appear (as in scikit-learn).
        """
        first = not hasattr(self, "model_")
        if first:
            self._validate_hyperparameters()
        X, y = self._data(X, y, reset=first)
        if first:
            if classes is None:
                raise DataError("the first call to partial_fit needs classes=, every label of y")
            self.classes_ = np.unique(np.asarray(classes))
            if len(self.classes_) < 2:
                raise DataError("classes= must hold at least 2 classes")
            self._start(X, len(self.classes_))
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise DataError(
                f"classes={list(np.unique(classes))} differ from the first call's {list(self.classes_)}"
            )
        self._train(X, self._encode(y), epochs=1, incremental=True)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns in the order of ``classes_``."""
        A = self._forward(X)
        if A.shape[1] == 1:  # one sigmoid unit: P(classes_[1]) = a
            return np.hstack([1.0 - A, A])
        return A

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """ln of ``predict_proba``, with probabilities of 0 clamped to the dtype's smallest normal."""
        P = self.predict_proba(X)
        return np.log(np.maximum(P, np.finfo(P.dtype).smallest_normal))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample (the first one on a tie)."""
        P = self.predict_proba(X)  # first: it raises NotFittedError before classes_ is read
        return self.classes_[np.argmax(P, axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multi-layer perceptron regressor trained by nnmath's backprop: identity outputs, mse loss.

    y may be (n_samples,) or (n_samples, n_targets); ``predict`` returns the same shape.
    """

    _task = REGRESSION

    def _output_layer(self, n_outputs: int) -> LayerSpec:
        return LayerSpec(n_outputs, "identity")

    def _loss_name(self) -> str:
        return "mse"

    def _data(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(
            self, X, y, reset=reset, dtype=np.dtype(self.dtype), multi_output=True, y_numeric=True
        )
        y = np.asarray(y, dtype=np.dtype(self.dtype))
        if reset:
            self._y_ndim = y.ndim
        return X, y.reshape(len(y), -1)

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        """Train a fresh network on (X, y) for up to max_iter epochs; return self."""
        self._validate_hyperparameters()
        X, T = self._data(X, y, reset=True)
        self.n_outputs_ = T.shape[1]
        self._start(X, self.n_outputs_)
        self._train(X, T, epochs=int(self.max_iter), incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch over (X, y), continuing from the current weights and optimizer state."""
        first = not hasattr(self, "model_")
        if first:
            self._validate_hyperparameters()
        X, T = self._data(X, y, reset=first)
        if first:
            self.n_outputs_ = T.shape[1]
            self._start(X, self.n_outputs_)
        elif T.shape[1] != self.n_outputs_:
            raise DataError(
                f"y has {T.shape[1]} targets but the model was fitted on {self.n_outputs_}"
            )
        self._train(X, T, epochs=1, incremental=True)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, (n_samples,) when fitted on 1-D y, else (n_samples, n_targets)."""
        A = self._forward(X)
        return A.ravel() if self._y_ndim == 1 else A

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
