"""``MLPClassifier``: scikit-learn's multi-layer perceptron classifier, trained by nnmath's engine.

The labels go through scikit-learn's own ``LabelBinarizer``, so ``classes_``, the targets and the
predictions are scikit-learn's:

| y                                 | output layer (``out_activation_``) | loss                      |
|-----------------------------------|------------------------------------|---------------------------|
| two classes                       | 1 unit, logistic (σ)               | binary cross-entropy      |
| three or more classes             | one unit per class, softmax        | cross-entropy             |
| multilabel (an indicator matrix)  | one unit per label, logistic (σ)   | binary cross-entropy, Σ   |

Each loss sums over a sample's outputs; the cost is their (weighted) mean over the batch, plus
scikit-learn's L2 term (see :mod:`nnmath.sklearn.engine`). ``predict`` thresholds σ at ½ or takes
the most probable class; for multilabel y it returns the indicator matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from nnmath.errors import DataError
from nnmath.losses import BinaryCrossEntropy, CrossEntropy, Loss
from nnmath.sklearn.base import BaseMLP
from nnmath.sklearn.parameters import DEFAULT_DTYPE
from nnmath.training import CLASSIFICATION, REGRESSION

Array = Any


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's parameters, attributes and behaviour,
    trained by ``nnmath.training.fit`` (sgd, adam) or L-BFGS on the engine's gradient.

    See docs/sklearn.md for every parameter and attribute, and :mod:`nnmath.sklearn` for
    nnmath's extras (``dtype``, ``dropout``, ``batch_norm``, ``class_weight``, more activations,
    solvers and schedules) and ``model_``.
    """

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
        class_weight: Any = None,
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
        self.class_weight = class_weight

    def _sample_weight(self, X: Array, Y: Array, sample_weight: Any) -> Array | None:
        """w_s = (the class weight of row s's class) · sample_weight_s: scikit-learn's
        ``compute_sample_weight(class_weight, y)`` ('balanced': n / (n_classes · count)), per
        label column for multilabel y."""
        sample_weight = super()._sample_weight(X, Y, sample_weight)
        if self.class_weight is None:
            return sample_weight
        multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        y = Y.astype(np.int64) if multilabel else self._label_binarizer.inverse_transform(Y)
        weights = compute_sample_weight(self.class_weight, y).astype(X.dtype)
        return weights if sample_weight is None else weights * sample_weight

    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        """X and the binarised targets Y (bool, n × n_outputs), as scikit-learn validates them."""
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=self._input_dtype(reset),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and set(classes) != set(self.classes_):
                raise DataError(
                    "warm_start can only be used where `y` has the same classes as in the "
                    f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                )
            if not self.warm_start and len(np.setdiff1d(classes, self.classes_)):
                raise DataError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        return X, self._label_binarizer.transform(y).astype(bool)

    def _multiclass(self) -> bool:
        return self._label_binarizer.y_type_ == "multiclass"

    def _out_activation(self) -> str:
        return "softmax" if self._multiclass() else "logistic"

    def _loss(self) -> Loss:
        return CrossEntropy() if self.out_activation_ == "softmax" else BinaryCrossEntropy()

    def _engine_task(self) -> str:
        """Labels for one-of-C outputs; a multilabel indicator matrix trains as targets."""
        multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        return REGRESSION if multilabel else CLASSIFICATION

    def _engine_targets(self, Y: Array) -> Array:
        """What the engine trains on: class indices (softmax), 0/1 (one σ unit), or Y itself."""
        if self.out_activation_ == "softmax":
            return np.argmax(Y, axis=1).astype(np.int64)
        if self._engine_task() == REGRESSION:
            return Y.astype(self.model_.dtype)
        return Y[:, 0].astype(np.int64)

    def _validation_targets(self, Y: Array) -> Array:
        return self._label_binarizer.inverse_transform(Y)

    def _stratify_validation(self) -> bool:
        """scikit-learn stratifies the early-stopping split when there is one output unit."""
        return self.n_outputs_ == 1

    def _score(self, X: Array, y: Array, sample_weight: Array | None = None) -> float:
        return self._score_with(X, y, sample_weight, accuracy_score)

    # ---- fitting and predicting -----------------------------------------------------------------

    @available_if(lambda est: est._check_solver())
    def partial_fit(
        self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None
    ) -> MLPClassifier:
        """One epoch over (X, y) from the current weights; the first call needs ``classes``."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def _predict(self, X: Any, check_input: bool = True) -> np.ndarray:
        outputs = self._forward(X, check_input)
        if self.n_outputs_ == 1:
            outputs = outputs.ravel()
        return self._label_binarizer.inverse_transform(outputs)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted classes (n,), or the label indicator matrix for multilabel y."""
        check_is_fitted(self, "model_")
        return self._predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities (n, n_classes) in the order of ``classes_``; [1 − p, p] for one σ unit."""
        check_is_fitted(self, "model_")
        outputs = self._forward(X)
        if self.n_outputs_ == 1:
            return np.hstack([1 - outputs, outputs])
        return outputs

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """ln ``predict_proba``; a probability of 0 gives ln(smallest normal), never −inf."""
        P = self.predict_proba(X)
        return np.log(np.maximum(P, np.finfo(P.dtype).smallest_normal))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
