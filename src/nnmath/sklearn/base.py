"""What the classifier and the regressor share: parameters, the fit skeleton, the fitted weights.

``fit`` follows scikit-learn's ``BaseMultilayerPerceptron._fit`` step by step: check the
parameters and the data, draw a fresh network from ``random_state`` (unless ``warm_start`` or
``partial_fit`` continue the current one), then run the solver: :mod:`.stochastic` (``fit``
epochs) or :mod:`.lbfgs`. The network is ``model_``, an :class:`nnmath.network.MLP`;
``coefs_`` and ``intercepts_`` are views of its weights in scikit-learn's layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from nnmath.network import MLP
from nnmath.sklearn import layout, parameters
from nnmath.sklearn.lbfgs import fit_lbfgs
from nnmath.sklearn.parameters import (
    DEFAULT_DTYPE,
    ParameterError,
    hidden_layers,
    network_dtype,
    with_modifiers,
)
from nnmath.sklearn.stochastic import fit_stochastic

Array = Any


class BaseMLP(BaseEstimator):
    """scikit-learn's MLP parameters (same names, defaults and meanings) and nnmath's extras
    (``dtype``: see :mod:`nnmath.sklearn.parameters`)."""

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
        dtype: Any = DEFAULT_DTYPE,
        dropout: float | None = None,
        batch_norm: bool = False,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.dropout = dropout
        self.batch_norm = batch_norm

    # ---- what the classifier and the regressor define ------------------------------------------

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        raise NotImplementedError

    def _out_activation(self) -> str:
        raise NotImplementedError

    def _loss(self) -> Any:
        raise NotImplementedError

    # ---- fitting ---------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BaseMLP:
        """Fit the model to data matrix X and target(s) y (with optional sample weights)."""
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> BaseMLP:
        parameters.validate(self)
        first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = self._sample_weight(X, Y, sample_weight)
        X = X.toarray() if scipy.sparse.issparse(X) else X
        Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y
        self.n_outputs_ = Y.shape[1]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(Y, X.shape[1], X.dtype)
        X = np.asarray(X, dtype=self.model_.dtype)
        if self.solver == "lbfgs":
            fit_lbfgs(self, self.model_, X, self._engine_targets(Y), sample_weight)
        else:
            fit_stochastic(self, X, Y, sample_weight, incremental)
        if not all(np.isfinite(p).all() for p in self.model_.parameters()):
            raise ParameterError(
                "Solver produced non-finite parameter weights. The input data may contain large "
                "values and need to be preprocessed."
            )
        return self

    def _sample_weight(self, X: Array, Y: Array, sample_weight: Any) -> Array | None:
        """The rows' weights w (the classifier multiplies in its class weights), or None."""
        return None if sample_weight is None else _check_sample_weight(sample_weight, X)

    def _initialize(self, Y: Array, n_features: int, dtype: np.dtype) -> None:
        """scikit-learn's ``_initialize``: counters, the output activation and fresh weights."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        hidden = hidden_layers(self.hidden_layer_sizes, self.activation, type(self).__name__)
        hidden = with_modifiers(hidden, self.batch_norm, self.dropout)
        self.n_layers_ = len(hidden) + 2
        self.out_activation_ = self._out_activation()
        spec = layout.network_spec(n_features, hidden, self.n_outputs_, self.out_activation_)
        weights = layout.initial_weights(spec, self.activation, self._random_state, dtype)
        self.model_ = MLP.from_weights(spec, weights)
        self._best_parameters = layout.snapshot(self.model_)
        self.__dict__.pop("_optimizer", None)
        if self.solver == "lbfgs":
            return
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _input_dtype(self, reset: bool) -> Any:
        """The dtype the data is converted to: the network's when it continues, else ``dtype``'s
        ("auto" and None: float64 or float32 as given, scikit-learn's rule)."""
        if not reset:
            return self.model_.dtype
        chosen = network_dtype(self.dtype)
        return (np.float64, np.float32) if chosen is None else chosen

    def _check_solver(self) -> bool:
        """partial_fit exists for the stochastic solvers only (scikit-learn's ``available_if``)."""
        if self.solver == "lbfgs":
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers. {self.solver} is not "
                "stochastic."
            )
        return True

    # ---- the fitted network ----------------------------------------------------------------------

    def _forward(self, X: Any, check_input: bool = True) -> np.ndarray:
        """The network's output a⁽ᴷ⁾ for X (scikit-learn's ``_forward_pass_fast``)."""
        check_is_fitted(self, "model_")
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        X = X.toarray() if scipy.sparse.issparse(X) else X
        return self.model_.forward(np.asarray(X, dtype=self.model_.dtype), check=False)[0]

    def _score_with(self, X: Array, y: Array, sample_weight: Array | None, score: Any) -> float:
        """score(y, predictions) on already validated X; NaN when a prediction is not finite."""
        predictions = self._predict(X, check_input=False)
        if np.issubdtype(predictions.dtype, np.floating) and not np.isfinite(predictions).all():
            return np.nan
        return float(score(y, predictions, sample_weight=sample_weight))

    @property
    def coefs_(self) -> list[Array]:
        """scikit-learn's ``coefs_[l]`` = W⁽ˡ⁺¹⁾ᵀ, (n_in, n_out): views (writing them changes the
        network); assigning a list copies the arrays into the network."""
        check_is_fitted(self, "model_")
        return layout.coefs(self.model_)

    @coefs_.setter
    def coefs_(self, coefs: list[Array]) -> None:
        check_is_fitted(self, "model_")
        self.model_ = layout.with_coefs(self.model_, coefs, self.intercepts_)

    @property
    def intercepts_(self) -> list[Array]:
        """scikit-learn's ``intercepts_[l]`` = b⁽ˡ⁺¹⁾: the network's own arrays (not copies)."""
        check_is_fitted(self, "model_")
        return layout.intercepts(self.model_)

    @intercepts_.setter
    def intercepts_(self, intercepts: list[Array]) -> None:
        check_is_fitted(self, "model_")
        self.model_ = layout.with_coefs(self.model_, self.coefs_, intercepts)

    # ---- pickling: the MLP holds functions, so it travels as its spec and arrays ----------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # scikit-learn's, with its version stamp
        model = state.pop("model_", None)
        if model is not None:  # every array: W, b, and batch norm's γ, β and running statistics
            state["_model_parts"] = (model.spec, model.named_arrays())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        parts = state.pop("_model_parts", None)
        super().__setstate__(state)
        if parts is not None:
            spec, arrays = parts
            if isinstance(arrays, list):  # pickled before batch norm: [(W, b), …]
                self.model_ = MLP.from_weights(spec, arrays)
            else:
                self.model_ = MLP.from_arrays(spec, arrays)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
