"""The fast training step: the network's mathematics, computed in place in buffers reused every step.

``network.MLP.loss_and_gradients`` is the clear reference: one layer object after another, each
returning fresh arrays. ``FastStep`` computes the same numbers (tests/test_fast.py ties the two to
float32 round-off, and to 1e-12 in float64) for training, where the same shapes come back every
batch. What it does differently, each because a profile showed it mattered (docs/speed.md):

- every array of the step lives in a buffer allocated once and reused; a last, smaller batch uses
  the leading rows of the same buffers (views made once per batch size, no copy);
- every NumPy call writes into its output (``out=``) and calls the ufunc itself (``np.add.reduce``,
  not ``np.sum``, whose Python wrapper costs more than the sum of a small array);
- ReLU runs in place, Z ← max(Z, 0), against a stored array of zeros (NumPy's array-array
  ``maximum`` is several times faster than its array-scalar form); its backward pass is
  dA ⊙ 𝟙[A > 0], the mask written into a stored boolean array (𝟙[a > 0] = 𝟙[z > 0]);
- the output layer is computed transposed, Zᵀ = W Aᵀ + b 1ᵀ of shape (C, S), so that the softmax's
  reductions over the C classes run along contiguous rows of length S, not S short rows of length C;
- softmax + cross-entropy is fused on the logits and, with class labels, never builds the one-hot
  matrix: ∂C/∂Z = (softmax(Z) − onehot(y)) / (S ln b), the 1 subtracted at the S label entries;
- no input gradient for the first layer: training never needs ∂C/∂X;
- transposes are views (W.T, δ.T), so BLAS is handed transpose flags, never copies;
- the bias gradient 1ᵀ δ is a matrix-vector product with a stored vector of ones;
- the plain SGD step θ ← θ − η ∂C/∂θ is fused into the backward pass: the output delta is scaled by
  η/S instead of 1/S, so each gradient buffer holds η ∂C/∂θ, and the update is one in-place
  subtract, made as soon as the layer's gradients are done (W after δ has gone back through it);
- checks of the values (NaN/Inf, label range) run once per data set (``check``), not per batch.

dtype follows the model: a float32 model trains in float32 end to end. Inputs or targets of another
dtype are converted once per batch into the step's own buffers (never upcast); labels stay integers.

Hidden activations other than ReLU and identity take the engine's own h and h′ from the
``activations`` table, and output/loss pairs other than softmax + cross-entropy take the engine's
``losses`` and output ``layers`` (these allocate); every network the engine trains, this trains.

Two kernels compute the step. ``kernel="numpy"`` (the default) is the code of the class below: one
NumPy call per formula. ``kernel="numba"`` (optional: ``pip install 'nnmath[numba]'``) compiles
the whole step of a ReLU/identity network with a softmax + cross-entropy output into one function
(the ``_kernel_*`` functions at the end of this file): the matrix products still go to BLAS, and
everything elementwise becomes one loop, so a small network's step is not dominated by the cost of
forty NumPy calls. ``kernel="auto"`` takes numba where it is installed and can compute the network.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.errors import DataError, ShapeError, SpecError
from nnmath.layers import Elementwise, Linear
from nnmath.losses import Loss, SoftmaxCrossEntropy, as_sample_weight, as_targets, fuse
from nnmath.network import MLP
from nnmath.optimizers import SGD, Adam, AdamW, FlatUpdate, Optimizer, RMSprop
from nnmath.penalties import L2, Penalty, penalty_scale

Array = np.ndarray

__all__ = ["FastStep", "flat_parameters", "parameter_views"]

IN_PLACE = ("relu", "identity")  # hidden activations computed in place in the Z buffer


@dataclass
class _Hidden:
    """Buffers of one hidden layer l, for one batch size S (views of the step's storage)."""

    name: str  # the activation's name: "relu", "identity" or another (the engine's h)
    Z: Array  # (S, n): z⁽ˡ⁾, overwritten by a⁽ˡ⁾ when the activation runs in place
    delta: Array  # (S, n): ∂C/∂a⁽ˡ⁾, then δ⁽ˡ⁾ = ∂C/∂z⁽ˡ⁾ in place
    mask: Array | None  # (S, n) bool: 𝟙[a⁽ˡ⁾ > 0], ReLU only
    zeros: Array | None  # (S, n) zeros: the other operand of max(Z, 0), ReLU only
    A: Array | None = None  # a⁽ˡ⁾ = h(z⁽ˡ⁾) when h is not computed in place (allocated by h)

    @property
    def output(self) -> Array:
        """a⁽ˡ⁾, the next layer's input."""
        return self.Z if self.A is None else self.A


@dataclass
class _Output:
    """Buffers of the output layer K for one batch size S: the logits are stored transposed."""

    ZT: Array  # (C, S): z⁽ᴷ⁾ᵀ, overwritten by scale · δ⁽ᴷ⁾ᵀ
    row: Array  # (S,): max_j z_sj, then Σ_j e^{z_sj − max}, then scale / (S ln b) / Σ_j e^{…}
    log_sum: Array  # (S,): ln Σ_j e^{z_sj − max}
    work: Array  # (C, S): T ⊙ Z, then k T (targets given as a matrix)
    rows: Array  # (S,) int: 0 … S − 1, the column index of each sample's label entry
    ones: Array  # (S,) ones: 1ᵀ δ = δᵀ 1 as a matrix-vector product


@dataclass
class BatchScore:
    """What a step measured of the network's outputs before it changed the weights (kept only when
    ``FastStep.keep_score`` is set): Σ_s w_s 𝟙[ŷ_s = y_s] for class labels; Σ_s w_s (a_sj − t_sj)²
    per output j and Σ_s w_s Σ_j |a_sj − t_sj| for targets (w_s = 1 without weights)."""

    correct: float = 0.0
    squared: Array | None = None
    absolute: float = 0.0


class FastStep:
    """Cost, gradients and the SGD step of an MLP, for mini-batches of up to ``batch_size`` rows.

    - ``loss_and_gradients(X, T) -> (C, [∂C/∂W⁽¹⁾, ∂C/∂b⁽¹⁾, …])``, in the order of
      ``model.parameters()``: the numbers of ``model.loss_and_gradients(X, T, loss)``. The arrays
      are the step's buffers, overwritten by the next call: copy them to keep them.
    - ``sgd_step(X, T, learning_rate) -> C``: also θ ← θ − η ∂C/∂θ on every parameter, in place;
      C is the cost before the update.
    - ``check(X, T)``: validate a whole data set once (the steps check shapes only).
    - ``predict(X) -> A`` and ``evaluate(X, T) -> (C, A)``: the output a⁽ᴷ⁾ (and the cost) of a
      whole data set, computed through the same buffers in chunks of ``batch_size`` rows.

    T is class labels (S,) or targets (S, n_out). Batches larger than ``batch_size`` grow the
    buffers; smaller ones use their leading rows. The step reads the model's current W and b on
    every call, so an optimizer's in-place updates are seen by the next batch.
    """

    def __init__(
        self,
        model: MLP,
        loss: Loss,
        batch_size: int,
        kernel: str = "numpy",
        penalty: Penalty | None = None,
    ) -> None:
        if not all(isinstance(p, np.ndarray) for p in model.parameters()):
            raise SpecError(
                "the fast step computes with NumPy arrays; convert the model with "
                "model.astype(np.float32), or use model.loss_and_gradients"
            )
        # batch norm and dropout are not implemented here: refuse rather than compute another network
        if model.mode_dependent:
            raise SpecError(
                f"the fast step computes plain Linear-activation networks; {model.spec} has batch "
                "norm or dropout: use model.loss_and_gradients(X, T, loss, training=True, rng=rng)"
            )
        self.dtype = np.dtype(model.dtype)
        if self.dtype.kind != "f":
            raise SpecError(f"the model's parameters must be floating point, got {self.dtype}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise SpecError(f"batch_size must be a whole number ≥ 1, got {batch_size!r}")
        self.model = model
        self.loss = loss
        self.penalty = penalty
        self.fused = fuse(model.output, loss)
        self.n_in, self.n_out = model.n_in, model.n_out
        self.ln_b = self.fused.log_base if isinstance(self.fused, SoftmaxCrossEntropy) else 1.0
        self.names = [
            a.name if isinstance(a, Elementwise) else "softmax" for a in model.activations[:-1]
        ]
        self.kernel = _choose_kernel(kernel, self)
        self._relu = np.array([name == "relu" for name in self.names])  # for the numba kernel
        # ∂C/∂θ in one vector laid out as flat_parameters lays out θ; ``gradients`` are its views
        self.gradient = np.empty(parameter_count(model), self.dtype)
        transposed = stored_transposed(model.linears[0].W)
        self.gradients = parameter_views(model, self.gradient, transposed)  # [dW1, db1, …]
        self._transposed = [transposed] + [False] * (len(model.linears) - 1)  # W⁽ˡ⁾ held as Wᵀ
        self.keep_score = False  # fit's running metrics set it: each step then fills ``score``
        self.score = BatchScore()
        self.capacity = 0
        self._allocate(batch_size)

    # ---- buffers ---------------------------------------------------------------------------------

    def _allocate(self, capacity: int) -> None:
        """One buffer per intermediate array, with room for ``capacity`` rows."""
        dtype, model = self.dtype, self.model
        self._Z = [np.empty((capacity, L.n_out), dtype) for L in model.linears[:-1]]
        self._delta = [np.empty_like(Z) for Z in self._Z]
        # one mask and one array of zeros serve every layer (views of the widest layer's size):
        # a mask is made and used within one layer's backward step
        widest = max((L.n_out for L in model.linears[:-1]), default=0)
        self._mask = np.empty(capacity * widest, bool)
        self._zeros = np.zeros(capacity * widest, dtype)
        self._ZT = np.empty((model.n_out, capacity), dtype)
        self._work = np.empty_like(self._ZT)
        self._row = np.empty(capacity, dtype)
        self._log_sum = np.empty(capacity, dtype)
        self._rows = np.arange(capacity)
        self._ones = np.ones(capacity, dtype)
        self._w = np.empty(capacity, dtype)  # sample weights of another dtype land here
        self._X = np.empty((capacity, model.n_in), dtype)  # inputs of another dtype land here
        self._T = np.empty((capacity, model.n_out), dtype)  # and targets of another dtype here
        self._Z_out = np.empty((capacity, model.n_out), dtype)  # the compiled kernel's logits
        self._predicted = np.empty(capacity, np.int64)  # and its argmax of each row
        self.capacity = capacity
        self._views: dict[int, tuple[list[_Hidden], _Output]] = {}

    def _buffers(self, S: int) -> tuple[list[_Hidden], _Output]:
        """The buffers' first S rows (columns of the transposed output), made once per S."""
        views = self._views.get(S)
        if views is None:
            if self.capacity < S:
                self._allocate(S)
            if len(self._views) >= 4:  # keep the full size and a few others (last batch, predict)
                self._views = {key: v for key, v in self._views.items() if key == self.capacity}
            hidden = []
            for name, Z, delta in zip(self.names, self._Z, self._delta, strict=True):
                shape, size = (S, Z.shape[1]), S * Z.shape[1]
                relu = name == "relu"
                hidden.append(
                    _Hidden(
                        name=name,
                        Z=Z[:S],
                        delta=delta[:S],
                        mask=self._mask[:size].reshape(shape) if relu else None,
                        zeros=self._zeros[:size].reshape(shape) if relu else None,
                    )
                )
            output = _Output(
                ZT=self._ZT[:, :S],
                row=self._row[:S],
                log_sum=self._log_sum[:S],
                work=self._work[:, :S],
                rows=self._rows[:S],
                ones=self._ones[:S],
            )
            if self.capacity != S:  # a (C, S) slice of (C, capacity) is strided: use its own
                output.ZT = np.empty((self.n_out, S), self.dtype)
                output.work = np.empty_like(output.ZT)
            views = self._views[S] = (hidden, output)
        return views

    # ---- checks ----------------------------------------------------------------------------------

    def check(self, X: Array, T: Array, sample_weight: Array | None = None) -> None:
        """Validate a whole data set once: X (S, n_in) finite; T labels in range or finite
        targets; sample weights finite, ≥ 0 and not all 0."""
        self.model.check_input(X)
        T = np.asarray(T)
        if len(T) != len(X):
            raise DataError(f"{len(X)} input rows but {len(T)} targets; give one target per row")
        targets = as_targets(T, self.n_out, self.dtype)  # raises on bad labels or shapes
        if T.ndim == 2 and not bool(np.all(np.isfinite(targets))):
            raise DataError("targets hold NaN or Inf; clean or drop those rows")
        if sample_weight is not None:
            as_sample_weight(np.asarray(sample_weight), len(X), self.dtype)

    def _weights(self, sample_weight: Array | None, S: int) -> tuple[Array | None, float]:
        """(w, Σ_s w_s) of one batch in the step's dtype; (None, S) without weights."""
        if sample_weight is None:
            return None, float(S)
        w = np.asarray(sample_weight)
        if w.shape != (S,):
            raise DataError(f"sample_weight has shape {w.shape}; give one weight per row, ({S},)")
        if w.dtype != self.dtype:
            np.copyto(self._w[:S], w, casting="unsafe")
            w = self._w[:S]
        total = float(np.add.reduce(w))
        if not total > 0:
            raise DataError(
                f"the sample weights of this batch sum to {total}; a batch needs a positive total"
            )
        return w, total

    def _inputs(self, X: Array, T: Array | None) -> tuple[Array, Array | None]:
        """X and T as the step computes with them: shapes checked, floats in the model's dtype."""
        S = X.shape[0]
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ShapeError(
                f"the network takes inputs of shape (S, {self.n_in}), one sample per row; "
                f"got shape {X.shape}"
            )
        if self.capacity < S:
            self._allocate(S)
        if X.dtype != self.dtype:
            np.copyto(self._X[:S], X, casting="same_kind")
            X = self._X[:S]
        if T is None:
            return X, None
        if T.shape[0] != S or T.ndim > 2 or (T.ndim == 2 and T.shape[1] != self.n_out):
            raise DataError(
                f"targets of shape {T.shape} do not fit {S} inputs and {self.n_out} outputs;"
                f" give labels of shape ({S},) or targets of shape ({S}, {self.n_out})"
            )
        if T.ndim == 2 and T.dtype != self.dtype:
            np.copyto(self._T[:S], T, casting="same_kind")
            T = self._T[:S]
        elif T.ndim == 1 and T.dtype.kind not in "iu":  # labels given as floats or booleans
            if not bool(np.all(np.round(T) == T)):
                raise DataError("class labels must be whole numbers 0, 1, 2, …; got fractions")
            T = T.astype(np.int64)
        return X, T

    # ---- the step --------------------------------------------------------------------------------

    def loss_and_gradients(
        self, X: Array, T: Array, sample_weight: Array | None = None
    ) -> tuple[float, list[Array]]:
        """C and [∂C/∂W⁽¹⁾, ∂C/∂b⁽¹⁾, …] (the step's buffers, valid until its next call).

        C = Σ_s w_s ℓ_s / Σ_s w_s + k P(W) (the plain mean without ``sample_weight``; the penalty
        term only with the step's ``penalty``), as ``MLP.loss_and_gradients`` computes it."""
        X, T = self._inputs(X, T)
        w, total = self._weights(sample_weight, X.shape[0])
        penalty = self._penalty_value(total)
        if self.kernel == "numba":
            cost = self._compiled(X, T, 1.0, False, w, total)
        else:
            hidden, output = self._buffers(X.shape[0])
            cost = self._forward(X, T, hidden, output, 1.0, w, total)
            self._backward(X, hidden, output, update=False)
        if self.penalty is not None:
            self._penalty_gradients(penalty_scale(self.penalty, total))
        return cost + penalty, self.gradients

    def sgd_step(
        self, X: Array, T: Array, learning_rate: float, sample_weight: Array | None = None
    ) -> float:
        """θ ← θ − η ∂C/∂θ for every parameter, in place; returns C, the cost before the step.

        The gradient buffers then hold η ∂C/∂θ of the cost without its penalty (η is folded into
        the output delta); a penalty's η k ∂P/∂W is taken in the same update (for L2, W is
        scaled by 1 − η k α before η ∂C/∂W is subtracted)."""
        X, T = self._inputs(X, T)
        eta = float(learning_rate)
        w, total = self._weights(sample_weight, X.shape[0])
        penalty = self._penalty_value(total)
        shrink = None if self.penalty is None else eta * penalty_scale(self.penalty, total)
        if self.kernel == "numba" and shrink is None:
            return self._compiled(X, T, eta, True, w, total)
        if self.kernel == "numba":  # the kernel's gradients, then the penalised update here
            cost = self._compiled(X, T, eta, False, w, total)
            for index, linear in enumerate(self.model.linears):
                self._penalty_step(linear.W, shrink)
                np.subtract(linear.W, self.gradients[2 * index], out=linear.W)
                np.subtract(linear.b, self.gradients[2 * index + 1], out=linear.b)
            return cost + penalty
        hidden, output = self._buffers(X.shape[0])
        cost = self._forward(X, T, hidden, output, eta, w, total)
        self._backward(X, hidden, output, update=True, shrink=shrink)
        return cost + penalty

    # ---- the penalty -----------------------------------------------------------------------------

    def _penalty_value(self, weight_sum: float) -> float:
        """k P(W) on the weights before the step (0 without a penalty)."""
        if self.penalty is None:
            return 0.0
        k = penalty_scale(self.penalty, weight_sum)
        return k * self.penalty.value([linear.W for linear in self.model.linears])

    def _penalty_gradients(self, k: float) -> None:
        """∂C/∂W⁽ˡ⁾ += k ∂P/∂W⁽ˡ⁾ in the gradient buffers (biases are not penalised)."""
        for index, linear in enumerate(self.model.linears):
            dW = self.gradients[2 * index]
            if isinstance(self.penalty, L2):
                dW += np.multiply(linear.W, k * self.penalty.alpha, out=self._scratch(dW))
            else:
                dW += self._scaled_penalty_grad(linear.W, k)

    def _penalty_step(self, W: Array, shrink: float | None) -> None:
        """W ← W − η k ∂P/∂W in place (``shrink`` = η k); for L2 that is W ← (1 − η k α) W."""
        if shrink is None:
            return
        if isinstance(self.penalty, L2):
            np.multiply(W, 1.0 - shrink * self.penalty.alpha, out=W)
        else:
            W -= self._scaled_penalty_grad(W, shrink)

    def _scaled_penalty_grad(self, W: Array, k: float) -> Array:
        """k ∂P/∂W for any penalty, in a scratch buffer shaped like W."""
        out = self._scratch(W)
        np.copyto(out, self.penalty.grad(W), casting="same_kind")
        out *= k
        return out

    def _scratch(self, W: Array) -> Array:
        """A buffer shaped like W and laid out like it (a W⁽¹⁾ stored transposed gets a transposed
        buffer), reused: the penalty's terms are computed in it, and elementwise operations on
        arrays of one layout run through contiguous memory, not strided (a profile of the
        estimators' default fit found the penalty's gradient a third of the step on digits)."""
        scratch = getattr(self, "_penalty_scratch", None)
        if scratch is None or scratch.size < W.size:
            widest = max(linear.W.size for linear in self.model.linears)
            scratch = self._penalty_scratch = np.empty(widest, self.dtype)
        if stored_transposed(W):
            return scratch[: W.size].reshape(W.shape[::-1]).T
        return scratch[: W.size].reshape(W.shape)

    def _compiled(
        self,
        X: Array,
        T: Array,
        scale: float,
        update: bool,
        w: Array | None = None,
        weight_sum: float | None = None,
    ) -> float:
        """The whole step in one call of the numba kernel (``_kernel_step_labels``/``_targets``)."""
        S, linears, grads = X.shape[0], self.model.linears, self.gradients
        if not (X.flags.c_contiguous or X.flags.f_contiguous):  # np.dot in numba needs either
            np.copyto(self._X[:S], X)
            X = self._X[:S]
        step = _numba_kernels()[T.ndim]
        weights = self._ones[:S] if w is None else w
        total = float(S) if weight_sum is None else weight_sum
        try:
            cost = step(
                X,
                T,
                weights,
                total,
                tuple(L.W for L in linears),
                tuple(L.b for L in linears),
                tuple(grads[0::2]),
                tuple(grads[1::2]),
                tuple(Z[:S] for Z in self._Z),
                tuple(delta[:S] for delta in self._delta),
                self._Z_out[:S],
                self._predicted[:S],
                self._relu,
                scale,
                self.ln_b,
                update,
            )
        except IndexError:  # a label outside 0 … C − 1, refused before any parameter changes
            self.check(X, T)  # raises a DataError naming the label and its row
            raise
        if self.keep_score and T.ndim == 1:
            right = self._predicted[:S] == T
            self.score.correct = float(np.count_nonzero(right) if w is None else np.dot(w, right))
        return float(cost)

    def _forward(
        self,
        X: Array,
        T: Array,
        hidden: list[_Hidden],
        output: _Output,
        scale: float,
        w: Array | None = None,
        weight_sum: float = 0.0,
    ) -> float:
        """The forward pass into the buffers; returns C and leaves scale · δ⁽ᴷ⁾ᵀ in output.ZT."""
        self._logits(self._hidden_forward(X, hidden), output)
        if self.keep_score:
            self._score(output.ZT, T, w)
        if w is not None:
            return self._weighted_output(output, T, scale, w, weight_sum)
        if isinstance(self.fused, SoftmaxCrossEntropy):
            return self._softmax_cross_entropy(output, T, scale)
        return self._other_output(output, T, scale)

    def _score(self, ZT: Array, T: Array, w: Array | None) -> None:
        """``score`` of the batch from its logits Zᵀ (C, S): the predicted class is argmax_j z_sj
        (z > 0 for one sigmoid unit), the prediction a = f(z)."""
        if T.ndim == 1:
            predicted = ZT.argmax(axis=0) if ZT.shape[0] > 1 else (ZT[0] > 0)
            right = predicted == T
            self.score.correct = float(np.count_nonzero(right) if w is None else np.dot(w, right))
            return
        A = ZT.T if self.model.output == "identity" else self.model.activations[-1].forward(ZT.T)[0]
        error = A - T
        if w is None:
            self.score.squared = np.einsum("sj,sj->j", error, error)
            self.score.absolute = float(np.add.reduce(np.abs(error), axis=None))
        else:
            self.score.squared = np.einsum("s,sj,sj->j", w, error, error)
            self.score.absolute = float(np.dot(w, np.add.reduce(np.abs(error), axis=1)))

    def _hidden_forward(self, X: Array, hidden: list[_Hidden]) -> Array:
        """a⁽ᴷ⁻¹⁾, through the hidden layers: z = a Wᵀ + 1 bᵀ, a = h(z), in the Z buffers."""
        linears, A = self.model.linears, X
        for i, layer in enumerate(hidden):
            linear, Z = linears[i], layer.Z
            np.matmul(A, linear.W.T, out=Z)  # Z = A Wᵀ
            np.add(Z, linear.b, out=Z)  # Z = A Wᵀ + 1 bᵀ
            if layer.name == "relu":
                np.maximum(Z, layer.zeros, out=Z)  # a = max(z, 0), in place
            elif layer.name != "identity":
                layer.A = self.model.activations[i].activation.f(Z)  # a = h(z), the engine's h
            A = layer.output
        return A

    def _logits(self, A: Array, output: _Output) -> None:
        """The output layer's logits, transposed: Zᵀ = W Aᵀ + b 1ᵀ (C, S) into output.ZT."""
        last = self.model.linears[-1]
        np.matmul(last.W, A.T, out=output.ZT)  # Zᵀ = W Aᵀ
        np.add(output.ZT, last.b[:, None], out=output.ZT)  # Zᵀ = W Aᵀ + b 1ᵀ

    def predict(self, X: Array) -> Array:
        """The network's output a⁽ᴷ⁾ (S, n_out), as ``model.predict``, in chunks of the buffers."""
        return self._outputs(np.asarray(X), None)[1]

    def evaluate(
        self, X: Array, T: Array, sample_weight: Array | None = None
    ) -> tuple[float, Array]:
        """(C, a⁽ᴷ⁾) on a whole data set, in chunks of the buffers: the cost and the outputs.

        C = Σ_s w_s ℓ_s / Σ_s w_s + k P(W) as in ``loss_and_gradients`` (k with Σw over the whole
        set), the plain mean without weights."""
        X, T = np.asarray(X), np.asarray(T)
        if sample_weight is None:
            cost, A = self._outputs(X, T)
            total = float(len(X))
        else:
            w = as_sample_weight(np.asarray(sample_weight), len(X), self.dtype)
            cost, A = self._outputs(X, T, w)
            total = float(np.add.reduce(w))
        return cost + self._penalty_value(total), A

    def _outputs(self, X: Array, T: Array | None, w: Array | None = None) -> tuple[float, Array]:
        """Σ over chunks of (the chunk's weight · C of the chunk) / Σ weights and a⁽ᴷ⁾, chunk by
        chunk (C = 0 without T); the weight of a chunk is its rows, or its Σ w_s."""
        S = X.shape[0]
        self._inputs(X[:0], None if T is None else T[:0])  # shapes checked once, up front
        if T is not None and len(T) != S:
            raise DataError(f"{S} input rows but {len(T)} targets; give one target per row")
        if T is not None and T.ndim == 1 and S and (T.min() < 0 or T.max() >= max(2, self.n_out)):
            self.check(X, T)  # raises a DataError naming the first bad label and its row
        result = np.empty((S, self.n_out), self.dtype)
        total = 0.0
        for start in range(0, S, self.capacity):
            stop = min(S, start + self.capacity)
            chunk, targets = self._inputs(X[start:stop], None if T is None else T[start:stop])
            hidden, output = self._buffers(stop - start)
            self._logits(self._hidden_forward(chunk, hidden), output)
            chunk_w = None if w is None else w[start:stop]
            chunk_sum = float(stop - start) if w is None else float(np.add.reduce(chunk_w))
            if targets is not None and not chunk_sum > 0:
                targets = None  # rows of weight 0 add nothing to the cost: their outputs only
            if chunk_w is not None and targets is not None:
                total += chunk_sum * self._weighted_output(
                    output, targets, None, chunk_w, chunk_sum
                )
            elif isinstance(self.fused, SoftmaxCrossEntropy) and targets is not None:
                total += (stop - start) * self._softmax_cross_entropy(output, targets, None)
            elif targets is not None:
                total += (stop - start) * self._other_output(output, targets, None)
            elif self.model.output == "softmax":
                self._softmax(output)
            else:
                np.copyto(output.ZT.T, self.model.activations[-1].forward(output.ZT.T)[0])
            result[start:stop] = output.ZT.T
        if w is not None:
            return total / float(np.add.reduce(w)), result
        return total / max(S, 1), result

    def _softmax(self, out: _Output) -> None:
        """Zᵀ ← softmax(Z)ᵀ in place: e^{z − max z} / Σ e^{z − max z}, column by column."""
        ZT, row = out.ZT, out.row
        np.maximum.reduce(ZT, axis=0, out=row)
        np.subtract(ZT, row, out=ZT)
        np.exp(ZT, out=ZT)
        np.add.reduce(ZT, axis=0, out=row)
        np.divide(ZT, row, out=ZT)

    def _softmax_cross_entropy(self, out: _Output, T: Array, scale: float | None) -> float:
        """C = −(1/S) Σ_s t_s·log_b softmax(z_s); out.ZT ← k ((Σt) softmax(Z) − T)ᵀ, k = scale/(S ln b).

        Computed as C = (1/(S ln b)) Σ_s [(Σ_j t_sj) ln Σ_j e^{z_sj − m_s} − Σ_j t_sj (z_sj − m_s)]
        with m_s = max_j z_sj, so no exponential overflows and no log sees 0. Labels y stand for the
        one-hot rows t_s = e_{y_s}, whose sums are 1. With ``scale`` None, out.ZT ← softmax(Z)ᵀ.
        """
        ZT, row, log_sum = out.ZT, out.row, out.log_sum
        S = ZT.shape[1]
        ln_b = self.ln_b
        k = 0.0 if scale is None else scale / (S * ln_b)
        np.maximum.reduce(ZT, axis=0, out=row)  # m_s
        np.subtract(ZT, row, out=ZT)  # z − m ≤ 0
        if T.ndim == 1:  # labels
            picked = float(np.add.reduce(ZT[T, out.rows]))  # Σ_s (z_{s,y_s} − m_s)
            np.exp(ZT, out=ZT)
            np.add.reduce(ZT, axis=0, out=row)  # Σ_j e^{z_sj − m_s}
            np.log(row, out=log_sum)
            cost = float(np.add.reduce(log_sum)) - picked
            if scale is None:
                np.divide(ZT, row, out=ZT)  # softmax(Z)ᵀ
                return cost / (S * ln_b)
            np.divide(k, row, out=row)
            np.multiply(ZT, row, out=ZT)  # k softmax(Z)ᵀ
            ZT[T, out.rows] -= k  # k (softmax(Z) − onehot(y))ᵀ
            return cost / (S * ln_b)
        TT, work = T.T, out.work
        weights = np.add.reduce(TT, axis=0)  # Σ_j t_sj (1 for one-hot or probability rows)
        picked = float(np.add.reduce(np.multiply(TT, ZT, out=work), axis=None))
        np.exp(ZT, out=ZT)
        np.add.reduce(ZT, axis=0, out=row)
        np.log(row, out=log_sum)
        cost = float(np.dot(weights, log_sum)) - picked
        if scale is None:
            np.divide(ZT, row, out=ZT)
            return cost / (S * ln_b)
        np.divide(weights, row, out=row)
        np.multiply(row, k, out=row)
        np.multiply(ZT, row, out=ZT)  # k (Σt) softmax(Z)ᵀ
        np.subtract(ZT, np.multiply(TT, k, out=work), out=ZT)  # k ((Σt) softmax(Z) − T)ᵀ
        return cost / (S * ln_b)

    def _weighted_output(
        self, out: _Output, T: Array, scale: float | None, w: Array, weight_sum: float
    ) -> float:
        """C = Σ_s w_s ℓ_s / Σ_s w_s, and scale · δ⁽ᴷ⁾ᵀ into out.ZT, where row s of δ⁽ᴷ⁾ is
        (w_s / Σw) ∂ℓ_s/∂z_s (with ``scale`` None, the output a⁽ᴷ⁾ᵀ)."""
        if not isinstance(self.fused, SoftmaxCrossEntropy):
            return self._other_output(out, T, scale, w, weight_sum)
        ZT, row, log_sum = out.ZT, out.row, out.log_sum
        ln_b = self.ln_b
        TT = None if T.ndim == 1 else T.T
        np.maximum.reduce(ZT, axis=0, out=row)  # m_s
        np.subtract(ZT, row, out=ZT)  # z − m ≤ 0
        if TT is None:  # labels: t_s = e_{y_s}, Σ_j t_sj = 1
            picked = ZT[T, out.rows]  # z_{s,y_s} − m_s
            mass = None
        else:
            picked = np.add.reduce(np.multiply(TT, ZT, out=out.work), axis=0)  # Σ_j t_sj (z − m)
            mass = np.add.reduce(TT, axis=0)  # Σ_j t_sj
        np.exp(ZT, out=ZT)
        np.add.reduce(ZT, axis=0, out=row)  # Σ_j e^{z_sj − m_s}
        np.log(row, out=log_sum)
        weighted = w if mass is None else w * mass
        cost = (float(np.dot(weighted, log_sum)) - float(np.dot(w, picked))) / (weight_sum * ln_b)
        if scale is None:
            np.divide(ZT, row, out=ZT)  # softmax(Z)ᵀ
            return cost
        k = scale / (weight_sum * ln_b)
        np.divide(weighted, row, out=row)
        np.multiply(row, k, out=row)
        np.multiply(ZT, row, out=ZT)  # k w_s (Σt) softmax(z_s), column by column
        if TT is None:
            ZT[T, out.rows] -= k * w  # − k w_s at each label entry
        else:
            np.subtract(ZT, np.multiply(TT, k * w, out=out.work), out=ZT)  # − k w_s t_s
        return cost

    def _other_output(
        self,
        out: _Output,
        T: Array,
        scale: float | None,
        w: Array | None = None,
        weight_sum: float = 0.0,
    ) -> float:
        """Any other output and loss, by the engine's formulas: C, and scale · δ⁽ᴷ⁾ᵀ into out.ZT
        (with ``scale`` None, the output a⁽ᴷ⁾ᵀ). Row s of δ⁽ᴷ⁾ is ∂ℓ_s/∂z_s times 1/S, or w_s/Σw
        with sample weights."""
        Z = out.ZT.T  # (S, C) view
        S = Z.shape[0]
        if T.ndim == 1:
            T = as_targets(T, self.n_out, self.dtype)

        def mean(values: Array) -> float:
            return float(np.mean(values) if w is None else np.dot(w, values) / weight_sum)

        if scale is None:
            A = self.model.activations[-1].forward(Z)[0]
            fused = self.fused is not None
            cost = mean(self.fused.value(Z, T) if fused else self.loss.value(A, T))
            np.copyto(Z, A)
            return cost
        if self.fused is not None:  # sigmoid + binary cross-entropy, on the logits
            cost = mean(self.fused.value(Z, T))
            delta = self.fused.grad(Z, T)  # σ(Z) − T
        else:  # a = f(z) by the output layer, then the loss, then back through f
            A, cache = self.model.activations[-1].forward(Z)
            cost = mean(self.loss.value(A, T))
            delta, _ = self.model.activations[-1].vjp(cache, self.loss.grad(A, T))
        if w is None:
            np.multiply(delta, scale / S, out=Z)  # scale · ∂C/∂Z: the cost owns the 1/S
        else:
            np.multiply(delta, (scale / weight_sum) * w[:, None], out=Z)  # w_s/Σw per row
        return cost

    def _backward(
        self,
        X: Array,
        hidden: list[_Hidden],
        out: _Output,
        update: bool,
        shrink: float | None = None,
    ) -> None:
        """The δ recursion from δ⁽ᴷ⁾ down to layer 1, with no ∂C/∂X; with ``update``, SGD steps
        (and the penalty's W ← W − η k ∂P/∂W, ``shrink`` = η k, before each W ← W − η ∂C/∂W).

        ∂C/∂W⁽ˡ⁾ = δ⁽ˡ⁾ᵀ a⁽ˡ⁻¹⁾,  ∂C/∂b⁽ˡ⁾ = δ⁽ˡ⁾ᵀ 1,  δ⁽ˡ⁻¹⁾ = (δ⁽ˡ⁾ W⁽ˡ⁾) ⊙ f′(z⁽ˡ⁻¹⁾).
        """
        linears, grads = self.model.linears, self.gradients
        ones = out.ones
        K = len(linears)
        deltaT = out.ZT  # (C, S)
        A_prev = hidden[-1].output if hidden else X
        W, b = linears[-1].W, linears[-1].b
        dW, db = grads[2 * K - 2], grads[2 * K - 1]
        np.matmul(deltaT, A_prev, out=dW)  # dW = δᵀ A
        np.matmul(deltaT, ones, out=db)  # db = δᵀ 1
        if hidden:
            np.matmul(deltaT.T, W, out=hidden[-1].delta)  # ∂C/∂a⁽ᴷ⁻¹⁾ = δ W, before W changes
        if update:
            self._penalty_step(W, shrink)
            np.subtract(W, dW, out=W)  # W ← W − η ∂C/∂W
            np.subtract(b, db, out=b)
        for i in range(K - 2, -1, -1):
            layer = hidden[i]
            delta = layer.delta
            if layer.name == "relu":
                np.greater(layer.Z, layer.zeros, out=layer.mask)  # 𝟙[a > 0] = 𝟙[z > 0]
                np.multiply(delta, layer.mask, out=delta)  # δ = ∂C/∂a ⊙ 𝟙[z > 0]
            elif layer.name != "identity":
                h = self.model.activations[i].activation
                np.multiply(delta, h.df(layer.Z, layer.A), out=delta)  # δ = ∂C/∂a ⊙ h′(z)
            A_prev = hidden[i - 1].output if i else X
            W, b = linears[i].W, linears[i].b
            dW, db = grads[2 * i], grads[2 * i + 1]
            if self._transposed[i]:
                np.matmul(A_prev.T, delta, out=dW.T)  # dWᵀ = Aᵀ δ, into W's transposed layout
            else:
                np.matmul(delta.T, A_prev, out=dW)  # dW = δᵀ A
            np.matmul(ones, delta, out=db)  # db = 1ᵀ δ
            if i:
                np.matmul(delta, W, out=hidden[i - 1].delta)  # ∂C/∂a⁽ˡ⁻¹⁾ = δ W
            if update:
                self._penalty_step(W, shrink)
                np.subtract(W, dW, out=W)
                np.subtract(b, db, out=b)


# ---- every parameter in one vector -----------------------------------------------------------------


def parameter_count(model: MLP) -> int:
    """The number of scalars in W⁽¹⁾, b⁽¹⁾, …, W⁽ᴷ⁾, b⁽ᴷ⁾."""
    return sum(L.n_out * L.n_in + L.n_out for L in model.linears)


def parameter_views(model: MLP, vector: Array, transposed_first: bool = False) -> list[Array]:
    """[W1, b1, W2, b2, …] as views of ``vector`` laid out [W1, …, WK, b1, …, bK]: the weights
    first, so that a penalty on the weights touches one leading slice.

    With ``transposed_first`` the block of W⁽¹⁾ holds W⁽¹⁾ᵀ row by row (W⁽¹⁾ is then an
    F-contiguous view): the first layer's product X W⁽¹⁾ᵀ multiplies two C-contiguous matrices,
    which BLAS computes faster than with a transposed operand (docs/speed.md)."""
    sizes = [L.n_out * L.n_in for L in model.linears] + [L.n_out for L in model.linears]
    ends = np.cumsum(sizes)
    parts = [vector[end - size : end] for size, end in zip(sizes, ends, strict=True)]
    K = len(model.linears)
    views = []
    for index, L in enumerate(model.linears):
        if index == 0 and transposed_first:
            views.append(parts[0].reshape(L.n_in, L.n_out).T)
        else:
            views.append(parts[index].reshape(L.n_out, L.n_in))
        views.append(parts[K + index].reshape(L.n_out))
    return views


def stored_transposed(W: Array) -> bool:
    """True for a W held as the rows of Wᵀ (an F-contiguous view, see ``parameter_views``)."""
    return bool(W.flags.f_contiguous and not W.flags.c_contiguous)


def flat_parameters(
    model: MLP, dtype: np.dtype, transposed_first: bool = False
) -> tuple[MLP, Array]:
    """(a copy of ``model`` in ``dtype`` whose W and b are views of one vector θ, θ).

    The copy shares the model's activation layers; its parameters are the model's values, cast.
    An optimizer then updates every parameter with one call per formula (``FlatUpdate``).
    ``transposed_first`` (for a network with a hidden layer) stores W⁽¹⁾ transposed."""
    theta = np.empty(parameter_count(model), dtype)
    views = parameter_views(model, theta, transposed_first and len(model.linears) > 1)
    for view, value in zip(views, model.parameters(), strict=True):
        np.copyto(view, np.asarray(value), casting="unsafe")
    trained = copy.copy(model)
    trained.linears = [Linear(W, b) for W, b in zip(views[0::2], views[1::2], strict=True)]
    return trained, theta


# ---- the compiled kernel (optional: pip install 'nnmath[numba]') -----------------------------------


def _choose_kernel(kernel: str, step: FastStep) -> str:
    """The kernel to use: "numba" where asked for (or "auto") and able to compute this network."""
    if kernel not in ("numpy", "numba", "auto"):
        raise SpecError(f"kernel must be 'numpy', 'numba' or 'auto', got {kernel!r}")
    if kernel == "numpy":
        return "numpy"
    supported = (
        isinstance(step.fused, SoftmaxCrossEntropy)
        and len(step.names) >= 1
        and all(name in IN_PLACE for name in step.names)
        and all(p.flags.c_contiguous for p in step.model.parameters())
    )
    if not supported and kernel == "auto":
        return "numpy"
    try:
        _numba_kernels()
    except ImportError:
        if kernel == "numba":
            raise SpecError(
                "the numba kernel needs numba and scipy: pip install 'nnmath[numba]', "
                "or use kernel='numpy'"
            ) from None
        return "numpy"
    if supported:
        return "numba"
    raise SpecError(
        "the numba kernel computes networks with ReLU or identity hidden layers (at least "
        "one) and a softmax output trained with cross-entropy; use kernel='numpy' for "
        f"{step.model.spec} with {step.loss.name}"
    )


_KERNELS: dict[int, object] = {}


def numba_loaded() -> bool:
    """True once this process has loaded the numba kernel (its import cost is already paid)."""
    return bool(_KERNELS)


def _numba_kernels() -> dict[int, object]:
    """{1: the step for labels, 2: the step for a target matrix}, compiled on first use."""
    if not _KERNELS:
        import numba
        import scipy  # noqa: F401  (numba's np.dot calls scipy's BLAS)

        # reassociation lets sums vectorise; no nnan/ninf flags, so a NaN still reaches the cost;
        # NumPy's error model (x/0 is ±inf or NaN, not an exception) lets divisions vectorise
        jit = numba.njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
        # The steps call the helpers by their global names: compile those first, in their place.
        module = globals()
        for name in ("_kernel_forward", "_kernel_backward", "_kernel_labels", "_kernel_targets"):
            module[name] = jit(module[name])
        _KERNELS[1] = jit(_kernel_step_labels)
        _KERNELS[2] = jit(_kernel_step_targets)
    return _KERNELS


# The kernel's functions are plain Python over NumPy arrays (they run, slowly, without numba);
# numba compiles them into one machine-code function per step. Matrix products call BLAS
# (np.dot with an output array); everything elementwise is one fused loop.


Arrays = tuple[Array, ...]


def _kernel_forward(
    X: Array, Ws: Arrays, bs: Arrays, Zs: Arrays, Z_out: Array, relu: Array
) -> None:
    """Z⁽ˡ⁾ = A⁽ˡ⁻¹⁾ W⁽ˡ⁾ᵀ + 1 b⁽ˡ⁾ᵀ and a⁽ˡ⁾ = max(z⁽ˡ⁾, 0) (or z⁽ˡ⁾) in place; logits into Z_out."""
    A = X
    for index in range(len(Zs)):
        Z, b = Zs[index], bs[index]
        np.dot(A, Ws[index].T, Z)
        for s in range(Z.shape[0]):
            for j in range(Z.shape[1]):
                z = Z[s, j] + b[j]
                Z[s, j] = 0 if relu[index] and z < 0 else z  # max(z, 0); a NaN stays NaN
        A = Z
    np.dot(A, Ws[-1].T, Z_out)
    b = bs[-1]
    for s in range(Z_out.shape[0]):
        for j in range(Z_out.shape[1]):
            Z_out[s, j] += b[j]


def _kernel_labels(Z: Array, y: Array, k: float, w: Array, predicted: Array) -> float:
    """Σ_s w_s [ln Σ_j e^{z_sj − m_s} − (z_{s,y_s} − m_s)]; Z ← k w_s (softmax(Z) − onehot(y));
    predicted_s ← argmax_j z_sj."""
    total = 0.0
    C = Z.shape[1]
    for s in range(Z.shape[0]):
        label = y[s]
        if label < 0 or label >= C:
            raise IndexError("a class label lies outside 0 … C − 1")
        m = Z[s, 0]
        best = 0
        for j in range(1, C):
            if Z[s, j] > m:
                m, best = Z[s, j], j
        predicted[s] = best
        picked = Z[s, label] - m
        row_sum = 0.0
        for j in range(C):
            e = np.exp(Z[s, j] - m)
            Z[s, j] = e
            row_sum += e
        total += w[s] * (np.log(row_sum) - picked)
        ks = k * w[s]
        r = ks / row_sum
        for j in range(C):
            Z[s, j] *= r
        Z[s, label] -= ks
    return total


def _kernel_targets(Z: Array, T: Array, k: float, w: Array) -> float:
    """Σ_s w_s [(Σ_j t_sj) ln Σ_j e^{z_sj − m_s} − Σ_j t_sj (z_sj − m_s)];
    Z ← k w_s ((Σt) softmax(Z) − T)."""
    total = 0.0
    C = Z.shape[1]
    for s in range(Z.shape[0]):
        m = Z[s, 0]
        for j in range(1, C):
            m = max(m, Z[s, j])
        weight = 0.0
        picked = 0.0
        row_sum = 0.0
        for j in range(C):
            weight += T[s, j]
            picked += T[s, j] * (Z[s, j] - m)
            e = np.exp(Z[s, j] - m)
            Z[s, j] = e
            row_sum += e
        total += w[s] * (weight * np.log(row_sum) - picked)
        ks = k * w[s]
        r = ks * weight / row_sum
        for j in range(C):
            Z[s, j] = Z[s, j] * r - ks * T[s, j]
    return total


def _kernel_backward(
    X: Array,
    Ws: Arrays,
    bs: Arrays,
    dWs: Arrays,
    dbs: Arrays,
    Zs: Arrays,
    deltas: Arrays,
    Z_out: Array,
    relu: Array,
    update: bool,
) -> None:
    """dW⁽ˡ⁾ = δᵀ A, db⁽ˡ⁾ = 1ᵀ δ, δ⁽ˡ⁻¹⁾ = (δ W⁽ˡ⁾) ⊙ 𝟙[a > 0]; with ``update``, θ ← θ − dθ."""
    K = len(Ws)
    delta = Z_out
    for index in range(K - 1, -1, -1):
        A = X if index == 0 else Zs[index - 1]
        W, b, dW, db = Ws[index], bs[index], dWs[index], dbs[index]
        np.dot(delta.T, A, dW)
        for j in range(db.shape[0]):
            db[j] = 0
        for s in range(delta.shape[0]):
            for j in range(delta.shape[1]):
                db[j] += delta[s, j]
        if index > 0:
            below = deltas[index - 1]
            np.dot(delta, W, below)
            if relu[index - 1]:
                for s in range(below.shape[0]):
                    for j in range(below.shape[1]):
                        if not A[s, j] > 0:
                            below[s, j] = 0  # δ = ∂C/∂a ⊙ 𝟙[a > 0]
        if update:
            for i in range(W.shape[0]):
                b[i] -= db[i]
                for j in range(W.shape[1]):
                    W[i, j] -= dW[i, j]
        if index > 0:
            delta = deltas[index - 1]


def _kernel_step_labels(
    X: Array,
    y: Array,
    w: Array,
    weight_sum: float,
    Ws: Arrays,
    bs: Arrays,
    dWs: Arrays,
    dbs: Arrays,
    Zs: Arrays,
    deltas: Arrays,
    Z_out: Array,
    predicted: Array,
    relu: Array,
    scale: float,
    ln_b: float,
    update: bool,
) -> float:
    """One step for class labels y with sample weights w: returns C = Σ w ℓ / Σ w; gradients
    (× scale) in dWs, dbs; SGD if update; each row's argmax in ``predicted``."""
    _kernel_forward(X, Ws, bs, Zs, Z_out, relu)
    total = _kernel_labels(Z_out, y, scale / (weight_sum * ln_b), w, predicted)
    _kernel_backward(X, Ws, bs, dWs, dbs, Zs, deltas, Z_out, relu, update)
    return total / (weight_sum * ln_b)


def _kernel_step_targets(
    X: Array,
    T: Array,
    w: Array,
    weight_sum: float,
    Ws: Arrays,
    bs: Arrays,
    dWs: Arrays,
    dbs: Arrays,
    Zs: Arrays,
    deltas: Arrays,
    Z_out: Array,
    predicted: Array,
    relu: Array,
    scale: float,
    ln_b: float,
    update: bool,
) -> float:
    """One step for a target matrix T; otherwise as ``_kernel_step_labels`` (``predicted`` unused)."""
    _kernel_forward(X, Ws, bs, Zs, Z_out, relu)
    total = _kernel_targets(Z_out, T, scale / (weight_sum * ln_b), w)
    _kernel_backward(X, Ws, bs, dWs, dbs, Zs, deltas, Z_out, relu, update)
    return total / (weight_sum * ln_b)


# ---- the optimizers' rules as compiled loops (the numba kernel's FlatUpdate) ---------------------


class CompiledUpdate(FlatUpdate):
    """A ``FlatUpdate`` whose rule is one compiled loop over θ: each parameter is read and written
    once per step, every state value once, instead of once per formula.

    The loops below compute each entry with the very operations, in the same order and precision,
    as the optimizers' ``apply`` (the scalars cast to θ's dtype first, as NumPy does), so they give
    the same numbers bit for bit (tests/test_fast.py)."""

    def step(self) -> None:
        """θ ← the optimizer's rule on θ and g in one compiled loop (plain SGD stays two NumPy
        calls)."""
        optimizer, theta, grad, state = self.optimizer, self.theta, self.grad, list(self.state)
        if type(optimizer) is SGD and not optimizer.momentum:  # θ ← θ − η (g + λθ): two calls
            super().step()
            return
        optimizer.t += 1
        kernel, scalars = _rule_of(optimizer, theta.dtype.type)
        if isinstance(optimizer, RMSprop) and not optimizer.momentum:
            state.append(state[0])  # the loop's momentum buffer b, unused when μ = 0
        kernel(theta, grad, *state, *scalars)


COMPILED_RULES = (SGD, RMSprop, Adam, AdamW)
"""The optimizers whose rules have a compiled loop; a subclass (its own ``apply``) has none."""


def has_compiled_rule(optimizer: Optimizer) -> bool:
    """True when ``CompiledUpdate`` computes ``optimizer``'s own rule: one of ``COMPILED_RULES``
    exactly (not a subclass with a rule of its own)."""
    return type(optimizer) in COMPILED_RULES


def _rule_of(optimizer: Optimizer, real: type) -> tuple[Any, tuple]:
    """The compiled loop of ``optimizer``'s rule and its scalars for this step, in θ's dtype."""
    if not has_compiled_rule(optimizer):
        raise SpecError(f"no compiled rule for {optimizer!r}")
    rules = _numba_rules()
    eta, t = optimizer.learning_rate, optimizer.t
    if isinstance(optimizer, Adam):  # AdamW is an Adam
        c = math.sqrt(1.0 - optimizer.beta2**t)
        decoupled = isinstance(optimizer, AdamW)
        decay = optimizer.weight_decay
        return rules["adam"], (
            real(optimizer.beta1), real(1.0 - optimizer.beta1), real(optimizer.beta2),
            real(1.0 - optimizer.beta2), real(optimizer.eps * c),
            real(eta * c / (1.0 - optimizer.beta1**t)),
            real(0.0 if decoupled else decay), real(1.0 - eta * decay if decoupled else 1.0),
        )  # fmt: skip
    if isinstance(optimizer, RMSprop):
        return rules["rmsprop"], (
            real(optimizer.alpha), real(1.0 - optimizer.alpha), real(optimizer.eps),
            real(optimizer.momentum), real(optimizer.weight_decay), real(eta),
        )  # fmt: skip
    if isinstance(optimizer, SGD) and optimizer.momentum:
        return rules["momentum"], (
            real(optimizer.momentum), real(optimizer.weight_decay), real(eta),
            real(eta * optimizer.momentum), optimizer.nesterov, t == 1,
        )  # fmt: skip
    raise SpecError(f"no compiled rule for {optimizer!r}")


_RULES: dict[str, Any] = {}


def _numba_rules() -> dict[str, Any]:
    """The optimizers' loops, compiled on first use: no fastmath (the same rounding as NumPy), and
    NumPy's error model (x/0 is ±inf or NaN, as in NumPy), without which no division vectorises."""
    if not _RULES:
        import numba

        jit = numba.njit(cache=True, error_model="numpy")
        _RULES.update(
            adam=jit(_loop_adam), rmsprop=jit(_loop_rmsprop), momentum=jit(_loop_momentum)
        )
    return _RULES


def _loop_adam(theta, g, m, v, b1, one_b1, b2, one_b2, eps_c, step, decay, shrink):  # noqa: ANN001
    """Adam (and AdamW) entry by entry: θ ← θ·shrink; g ← g + λθ; m ← β₁m + (1−β₁)g;
    v ← β₂v + (1−β₂)g²; θ ← θ − step · m / (√v + εc)."""
    for i in range(theta.size):
        if shrink != 1:
            theta[i] = theta[i] * shrink  # AdamW: θ ← θ (1 − η λ)
        gi = g[i] + decay * theta[i] if decay != 0 else g[i]
        m[i] = m[i] * b1 + gi * one_b1
        v[i] = v[i] * b2 + (gi * gi) * one_b2
        theta[i] = theta[i] - (m[i] / (np.sqrt(v[i]) + eps_c)) * step


def _loop_rmsprop(theta, g, v, b, alpha, one_alpha, eps, mu, decay, eta):  # noqa: ANN001
    """RMSprop entry by entry: g ← g + λθ; v ← αv + (1−α)g²; d = g / (√v + ε);
    b ← μb + d and θ ← θ − η b (μ > 0), or θ ← θ − η d."""
    for i in range(theta.size):
        gi = g[i] + decay * theta[i] if decay != 0 else g[i]
        v[i] = v[i] * alpha + (gi * gi) * one_alpha
        d = gi / (np.sqrt(v[i]) + eps)
        if mu != 0:
            b[i] = b[i] * mu + d
            theta[i] = theta[i] - b[i] * eta
        else:
            theta[i] = theta[i] - d * eta


def _loop_momentum(theta, g, v, mu, decay, eta, eta_mu, nesterov, first):  # noqa: ANN001
    """SGD with momentum entry by entry: g ← g + λθ; v ← g (first step) or μv + g;
    θ ← θ − η v, or θ − η g − η μ v (Nesterov)."""
    for i in range(theta.size):
        gi = theta[i] * decay + g[i] if decay != 0 else g[i]
        v[i] = gi if first else v[i] * mu + gi
        if nesterov:
            theta[i] = theta[i] - gi * eta
            theta[i] = theta[i] - v[i] * eta_mu
        else:
            theta[i] = theta[i] - v[i] * eta
