"""scikit-learn's stochastic solvers ('sgd', 'adam') as a run of ``nnmath.training.fit``.

``fit`` runs the epochs and the mini-batch steps; what scikit-learn does around them is here, in
its order:

1. (early stopping) hold out ``validation_fraction`` of the rows with ``train_test_split`` on the
   estimator's random state, stratified for a binary classifier, as scikit-learn does;
2. each epoch visits the rows in scikit-learn's order (:class:`ScikitLearnOrder`) in batches of
   ``batch_size`` ('auto': min(200, S));
3. after each epoch (:class:`ScikitLearnRules`, a ``fit`` callback): ``loss_`` is the mean of the
   epoch's batch costs weighted by batch size, appended to ``loss_curve_``; ``t_`` grows by S;
   the stopping counter grows when the training loss has not fallen below ``best_loss_ − tol``
   (or, with early stopping, the validation score has not risen above its best + tol) and resets
   otherwise; when it exceeds ``n_iter_no_change`` training stops (or 'adaptive' divides the rate
   by 5); 'invscaling' sets the next epoch's rate; reaching ``max_iter`` warns
   (``ConvergenceWarning``);
4. (early stopping) the weights of the best validation score are restored.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from nnmath.errors import DivergenceError
from nnmath.sklearn import engine, layout
from nnmath.sklearn.parameters import ParameterError, training_dtype
from nnmath.sklearn.solvers import adaptive_rules, invscaling, make_optimizer, trigger_stopping

Array = Any


class SolverDivergedError(DivergenceError, ValueError):
    """Training produced a NaN or Inf loss (a ValueError, as scikit-learn's non-finite weights)."""


class ScikitLearnOrder:
    """The rows' order per epoch, as scikit-learn's MLP visits them: ``permutation(S)`` shuffles
    the previous epoch's order on the estimator's random state (``shuffle=True``), or returns
    0 … S − 1 (``shuffle=False``). ``fit`` calls it once per epoch."""

    def __init__(self, random_state: np.random.RandomState, shuffle: bool) -> None:
        self.random_state, self.shuffle = random_state, shuffle
        self.order: np.ndarray | None = None

    def permutation(self, n_samples: int) -> np.ndarray:
        """This epoch's order of the S rows: the previous order shuffled on the random state, or
        0 … S − 1 without shuffling."""
        if self.order is None or len(self.order) != n_samples:
            self.order = np.arange(n_samples)
        if self.shuffle:  # sklearn.utils.shuffle(order, random_state), without its overhead
            indices = np.arange(n_samples)
            self.random_state.shuffle(indices)
            self.order = self.order[indices]
        return self.order


class ScikitLearnRules:
    """scikit-learn's end-of-epoch bookkeeping and stopping rules, on the estimator's attributes."""

    def __init__(self, estimator: Any, n_samples: int, validation: tuple | None, incremental: bool):
        self.estimator, self.n_samples = estimator, n_samples
        self.validation, self.incremental = validation, incremental
        self.adaptive = adaptive_rules(estimator.get_params(deep=False))

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
        """Update ``n_iter_``, ``loss_``, ``t_`` and ``loss_curve_`` as scikit-learn does after an
        epoch, adapt the learning rate (invscaling), warn at ``max_iter``, and return True when
        training ends here: a stopping rule fired, or the one epoch of ``partial_fit`` is done."""
        est = self.estimator
        est.n_iter_ += 1
        est.loss_ = logs["loss"]
        est.t_ += self.n_samples
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        self._count_no_improvement()
        if est.solver == "sgd" and est.learning_rate == "invscaling":
            est._optimizer.learning_rate = invscaling(est.learning_rate_init, est.power_t, est.t_)
        if est._no_improvement_count > est.n_iter_no_change:
            if trigger_stopping(est._optimizer, self.adaptive, self._message(), est.verbose):
                return True
            est._no_improvement_count = 0
        if self.incremental:
            return True
        if est.n_iter_ == est.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return False

    def _count_no_improvement(self) -> None:
        """scikit-learn's ``_update_no_improvement_count``: on the validation score or the loss."""
        est = self.estimator
        if self.validation is None:
            loss = est.loss_curve_[-1]
            improved = loss <= est.best_loss_ - est.tol
            est._no_improvement_count = 0 if improved else est._no_improvement_count + 1
            est.best_loss_ = min(est.best_loss_, loss)
            return
        score = est._score(*self.validation)
        est.validation_scores_.append(score)
        if est.verbose:
            print(f"Validation score: {score:f}")
        improved = not score < est.best_validation_score_ + est.tol
        est._no_improvement_count = 0 if improved else est._no_improvement_count + 1
        if score > est.best_validation_score_:
            est.best_validation_score_ = score
            est._best_parameters = layout.snapshot(est.model_)

    def _message(self) -> str:
        est = self.estimator
        what = "Validation score" if self.validation is not None else "Training loss"
        return (
            f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} "
            "consecutive epochs."
        )


def _split(est: Any, X: Array, Y: Array, sample_weight: Array | None) -> tuple:
    """(X_train, Y_train, w_train, validation): scikit-learn's early-stopping split, or none."""
    if not est.early_stopping:
        return X, Y, sample_weight, None
    stratify = Y if est._stratify_validation() else None
    arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
    parts = train_test_split(
        *arrays,
        random_state=est._random_state,
        test_size=est.validation_fraction,
        stratify=stratify,
    )
    X_train, X_val, Y_train, Y_val = parts[:4]
    w_train, w_val = (None, None) if sample_weight is None else parts[4:]
    if X_val.shape[0] < 2:
        raise ParameterError(
            "The validation set is too small. Increase 'validation_fraction' or the size of "
            "your dataset."
        )
    return X_train, Y_train, w_train, (X_val, est._validation_targets(Y_val), w_val)


def _batch_size(est: Any, n_samples: int) -> int:
    if est.batch_size == "auto":
        return min(200, n_samples)
    if est.batch_size > n_samples:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
            stacklevel=3,
        )
    return int(np.clip(est.batch_size, 1, n_samples))


def _mask_seed(est: Any) -> int:
    """The seed of dropout's masks, drawn from the estimator's random state (only with dropout,
    so that every other run draws exactly scikit-learn's numbers)."""
    return int(est._random_state.randint(2**31 - 1)) if est.dropout else 0


def fit_stochastic(est: Any, X: Array, Y: Array, sample_weight: Array | None, incremental: bool):
    """Train ``est.model_`` with its stochastic solver on (X, Y) by the rules above."""
    if not incremental or not hasattr(est, "_optimizer"):
        est._optimizer = make_optimizer(est.get_params(deep=False))
    if est.early_stopping and incremental:
        raise ParameterError("partial_fit does not support early_stopping=True")
    X_train, Y_train, w_train, validation = _split(est, X, Y, sample_weight)
    n_samples = X_train.shape[0]
    rules = ScikitLearnRules(est, n_samples, validation, incremental)
    schedule = est.learning_rate if est.learning_rate not in ("invscaling", "adaptive") else None
    est.n_iter_ = 0
    try:
        engine.train(
            est.model_,
            X_train,
            est._engine_targets(Y_train),
            loss=est._loss(),
            optimizer=est._optimizer,
            epochs=1 if incremental else int(est.max_iter),
            batch_size=_batch_size(est, n_samples),
            order=ScikitLearnOrder(est._random_state, est.shuffle),
            schedule=None if schedule == "constant" else schedule,
            callbacks=[rules],
            task=est._engine_task(),
            alpha=float(est.alpha),
            sample_weight=w_train,
            dtype=training_dtype(est.dtype, est.model_.dtype, est.solver),
            seed=_mask_seed(est),
        )
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", stacklevel=2)
    except DivergenceError as error:
        raise SolverDivergedError(str(error)) from None
    if validation is not None:
        layout.restore(est.model_, est._best_parameters)
