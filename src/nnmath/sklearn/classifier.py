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
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from nnmath.errors import DataError
from nnmath.losses import BinaryCrossEntropy, CrossEntropy, Loss
from nnmath.sklearn.base import BaseMLP
from nnmath.training import CLASSIFICATION, REGRESSION

Array = Any


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's parameters, attributes and behaviour,
    trained by ``nnmath.training.fit`` (sgd, adam) or L-BFGS on the engine's gradient.

    See docs/sklearn.md for every parameter and attribute, and :mod:`nnmath.sklearn` for
    nnmath's extras (``dtype``, more activations, solvers and schedules) and ``model_``.
    """

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
