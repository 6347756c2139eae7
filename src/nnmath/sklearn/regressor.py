"""``MLPRegressor``: scikit-learn's multi-layer perceptron regressor, trained by nnmath's engine.

Identity outputs, one per target, and scikit-learn's ``loss``:

- "squared_error" is half the squared error, ℓ = ½ Σ_j (t_j − a_j)² over a sample's targets, so
  that ∂ℓ/∂a = a − t (nnmath's ``squared-error``);
- "poisson" is half the Poisson deviance of μ = e^a (:mod:`nnmath.sklearn.poisson`): the network
  computes a = ln μ and ``predict`` returns e^a (``out_activation_`` is scikit-learn's "exp").

The cost is the loss's (weighted) mean over the batch plus scikit-learn's L2 term.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from nnmath.losses import Loss, SquaredError
from nnmath.sklearn.base import BaseMLP
from nnmath.sklearn.parameters import DEFAULT_DTYPE
from nnmath.sklearn.poisson import PoissonDeviance
from nnmath.training import REGRESSION

Array = Any


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's parameters (``loss`` first, as there),
    attributes and behaviour, trained by ``nnmath.training.fit`` or L-BFGS on the engine.

    See docs/sklearn.md for every parameter and attribute.
    """

    def __init__(
        self,
        loss: str = "squared_error",
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
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dtype=dtype,
            dropout=dropout,
            batch_norm=batch_norm,
        )
        self.loss = loss

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=self._input_dtype(reset),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _loss(self) -> Loss:
        return PoissonDeviance() if self.loss == "poisson" else SquaredError()

    def _engine_task(self) -> str:
        return REGRESSION

    def _engine_targets(self, Y: Array) -> Array:
        return Y.astype(self.model_.dtype)

    def _validation_targets(self, Y: Array) -> Array:
        return Y

    def _stratify_validation(self) -> bool:
        return False

    def _score(self, X: Array, y: Array, sample_weight: Array | None = None) -> float:
        return self._score_with(X, y, sample_weight, r2_score)

    # ---- fitting and predicting -----------------------------------------------------------------

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over (X, y), continuing from the current weights and optimizer state."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _predict(self, X: Any, check_input: bool = True) -> np.ndarray:
        outputs = self._forward(X, check_input)
        if self.out_activation_ == "exp":  # μ = e^z: the network computes z = ln μ
            outputs = np.exp(outputs)
        return outputs.ravel() if outputs.shape[1] == 1 else outputs

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets: (n,) for one target, else (n, n_outputs)."""
        check_is_fitted(self, "model_")
        return self._predict(X)
