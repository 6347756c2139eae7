"""The multi-layer perceptron: forward pass, the δ recursion, and full Jacobians by the chain rule.

Symbols (column notation of the notes, applied to each row of a batch):
a⁽⁰⁾ = x,  z⁽ˡ⁾ = W⁽ˡ⁾ a⁽ˡ⁻¹⁾ + b⁽ˡ⁾,  a⁽ˡ⁾ = f⁽ˡ⁾(z⁽ˡ⁾),  δ⁽ˡ⁾ = ∂C/∂z⁽ˡ⁾,  for l = 1 … K.

Backward is the textbook recursion, written as a loop over the layers' VJPs:
δ⁽ᴷ⁾ = ∂C/∂z⁽ᴷ⁾ (from the fused output pair, or ∂C/∂a⁽ᴷ⁾ through f⁽ᴷ⁾'s VJP), then for each l
∂C/∂W⁽ˡ⁾ = δ⁽ˡ⁾ᵀ A⁽ˡ⁻¹⁾,  ∂C/∂b⁽ˡ⁾ = 1ᵀ δ⁽ˡ⁾,  δ⁽ˡ⁻¹⁾ = (δ⁽ˡ⁾ W⁽ˡ⁾) ⊙ f′(Z⁽ˡ⁻¹⁾).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.backend import check_same_namespace, convert, dtype_name, namespace, to_numpy
from nnmath.errors import DataError, ShapeError
from nnmath.initializers import initialize
from nnmath.layers import Elementwise, Linear, Softmax, activation_layer
from nnmath.losses import Loss, as_sample_weight, as_targets, cost, cost_gradient, fuse
from nnmath.penalties import Penalty, penalty_scale
from nnmath.spec import LayerSpec, NetworkSpec, parse_spec

Array = Any
Layer = Linear | Elementwise | Softmax


@dataclass
class Gradients:
    """∂C/∂W⁽ˡ⁾ and ∂C/∂b⁽ˡ⁾ for every layer (l = 1 … K), and ∂C/∂X."""

    W: list[Array]
    b: list[Array]
    X: Array

    def flat(self) -> list[Array]:
        """[dW1, db1, dW2, db2, …], in the order of ``MLP.parameters()``."""
        return [g for pair in zip(self.W, self.b, strict=True) for g in pair]


class MLP:
    """A K-layer perceptron: K Linear layers, each followed by its activation layer."""

    def __init__(
        self,
        spec: NetworkSpec | str,
        *,
        init: str = "auto",
        rng: np.random.Generator | None = None,
        seed: int = 0,
        dtype: Any = np.float64,
    ) -> None:
        self.spec = parse_spec(spec) if isinstance(spec, str) else spec
        rng = np.random.default_rng(seed) if rng is None else rng
        self.linears: list[Linear] = []
        self.activations: list[Elementwise | Softmax] = []
        for n_in, layer in zip(self.spec.sizes[:-1], self.spec.layers, strict=True):
            activation = activation_layer(layer.activation, layer.parameter)
            scheme = init if init != "auto" else _default_init(activation)
            W, b = initialize(n_in, layer.size, scheme, rng, np.dtype(dtype))
            self.linears.append(Linear(W, b))
            self.activations.append(activation)

    # ---- construction -------------------------------------------------------------------------

    @classmethod
    def from_weights(cls, spec: NetworkSpec | str, weights: list[tuple[Array, Array]]) -> MLP:
        """An MLP with the given (W, b) per layer; shapes are checked against the spec."""
        model = cls(spec)
        if len(weights) != len(model.linears):
            raise ShapeError(
                f"spec {model.spec} has {len(model.linears)} layers, got weights for {len(weights)}"
            )
        for index, (linear, (W, b)) in enumerate(zip(model.linears, weights, strict=True), 1):
            if tuple(W.shape) != tuple(linear.W.shape) or tuple(b.shape) != tuple(linear.b.shape):
                raise ShapeError(
                    f"layer {index} ({linear.describe()}) expects W of shape {linear.W.shape} and "
                    f"b of shape {linear.b.shape}, got {tuple(W.shape)} and {tuple(b.shape)}"
                )
            linear.W, linear.b = W, b
        return model

    def astype(self, dtype: Any) -> MLP:
        """A copy with every parameter converted to ``dtype`` (NumPy)."""
        return MLP.from_weights(
            self.spec,
            [(to_numpy(L.W).astype(dtype), to_numpy(L.b).astype(dtype)) for L in self.linears],
        )

    def copy(self) -> MLP:
        """An independent copy, in the same array library, dtype and device as this model."""
        W = self.linears[0].W
        if isinstance(W, np.ndarray):
            return self.astype(self.dtype)
        import array_api_compat

        return convert(self, namespace(W), dtype=self.dtype, device=array_api_compat.device(W))

    # ---- description -------------------------------------------------------------------------

    @property
    def layers(self) -> list[Layer]:
        """Linear⁽¹⁾, f⁽¹⁾, Linear⁽²⁾, f⁽²⁾, …: the order in which the forward pass runs."""
        return [
            layer for pair in zip(self.linears, self.activations, strict=True) for layer in pair
        ]

    @property
    def dtype(self) -> Any:
        return self.linears[0].W.dtype

    @property
    def n_in(self) -> int:
        return self.spec.n_in

    @property
    def n_out(self) -> int:
        return self.spec.n_out

    @property
    def output(self) -> str:
        """The output activation's name (``softmax``, ``sigmoid``, ``identity``, …)."""
        return self.spec.output

    def parameters(self) -> list[Array]:
        """[W1, b1, W2, b2, …]: the arrays an optimizer updates in place."""
        return [p for L in self.linears for p in (L.W, L.b)]

    @property
    def parameter_count(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.parameters())

    def summary(self) -> str:
        """A table of the layers, their shapes and parameter counts."""
        rows = [
            f"MLP {self.spec}  ({dtype_name(self.dtype)}, {self.parameter_count} parameters)",
            f"{'layer':<7}{'W':<14}{'b':<10}{'activation':<18}{'parameters':>10}",
        ]
        for index, (linear, activation) in enumerate(
            zip(self.linears, self.activations, strict=True), 1
        ):
            count = linear.n_out * linear.n_in + linear.n_out
            rows.append(
                f"{index:<7}{f'{linear.n_out}×{linear.n_in}':<14}{linear.n_out:<10}"
                f"{activation.describe():<18}{count:>10}"
            )
        return "\n".join(rows)

    def __repr__(self) -> str:
        return f"MLP('{self.spec}', dtype={dtype_name(self.dtype)})"

    # ---- forward -----------------------------------------------------------------------------

    def check_input(self, X: Array) -> None:
        """Refuse an input that is not (S, n_in) or holds NaN/Inf, naming the layer or row."""
        first = self.linears[0]
        check_same_namespace("input X", X, first.W)
        if X.ndim != 2 or X.shape[1] != first.n_in:
            raise ShapeError(
                f"layer 1 ({first.describe()}) expects inputs of shape (S, {first.n_in}), one "
                f"sample per row; got shape {tuple(X.shape)}"
            )
        xp = namespace(X)
        finite = xp.all(xp.isfinite(X), axis=1)
        if not bool(xp.all(finite)):
            row = int(xp.argmin(xp.astype(finite, xp.int64)))
            raise DataError(f"input row {row} holds NaN or Inf; clean or drop that row")

    def forward(
        self, X: Array, *, stop: int | None = None, check: bool = True
    ) -> tuple[Array, list[Any]]:
        """Run the layers in order, collecting each layer's cache; ``stop`` ends early.

        Returns (output of the last layer run, caches). With ``stop = len(layers) − 1`` the output
        is the logits z⁽ᴷ⁾, which is what the fused output pairs take.
        """
        if check:
            self.check_input(X)
        caches = []
        for layer in self.layers[:stop]:
            X, cache = layer.forward(X)
            caches.append(cache)
        return X, caches

    def predict(self, X: Array) -> Array:
        """The network's output a⁽ᴷ⁾ for a batch X."""
        return self.forward(X)[0]

    # ---- backward ----------------------------------------------------------------------------

    def backward(self, caches: list[Any], dY: Array) -> Gradients:
        """Back through the layers that produced ``caches``, from dY = ∂C/∂(their output)."""
        grads_W: list[Array] = []
        grads_b: list[Array] = []
        for layer, cache in zip(
            reversed(self.layers[: len(caches)]), reversed(caches), strict=True
        ):
            dY, grads = layer.vjp(cache, dY)
            if grads:
                grads_W.append(grads["W"])
                grads_b.append(grads["b"])
        return Gradients(W=grads_W[::-1], b=grads_b[::-1], X=dY)

    def loss_and_gradients(
        self,
        X: Array,
        T: Array,
        loss: Loss,
        *,
        check: bool = True,
        sample_weight: Array | None = None,
        penalty: Penalty | None = None,
    ) -> tuple[float, Gradients]:
        """The cost C and ∂C/∂(every W, b, X); uses the fused output pair when there is one.

        C = Σ_s w_s ℓ_s / Σ_s w_s + k P(W): the mean of ℓ (weighted by ``sample_weight`` w, (S,),
        when given) plus the ``penalty`` P on the weight matrices, k = 1 or 1/Σ_s w_s (see
        ``penalties``); each ∂C/∂W⁽ˡ⁾ then gains k ∂P/∂W⁽ˡ⁾. T may be class labels (S,) or targets
        (S, n_out). ``check=False`` skips the input check (a training loop validates X once).
        """
        T = as_targets(T, self.n_out, self.dtype)
        w = None if sample_weight is None else as_sample_weight(sample_weight, len(T), self.dtype)
        fused = fuse(self.output, loss)
        if fused is not None:
            Z, caches = self.forward(X, stop=len(self.layers) - 1, check=check)
            value = float(cost(fused, Z, T, w))
            grads = self.backward(caches, cost_gradient(fused, Z, T, w))
        else:
            A, caches = self.forward(X, check=check)
            value = float(cost(loss, A, T, w))
            grads = self.backward(caches, cost_gradient(loss, A, T, w))
        if penalty is not None:
            k = penalty_scale(penalty, _weight_sum(T, w))
            value += k * penalty.value([L.W for L in self.linears])
            grads.W = [
                dW + k * penalty.grad(L.W) for dW, L in zip(grads.W, self.linears, strict=True)
            ]
        return value, grads

    def cost(
        self,
        X: Array,
        T: Array,
        loss: Loss,
        *,
        check: bool = True,
        sample_weight: Array | None = None,
        penalty: Penalty | None = None,
    ) -> float:
        """C = Σ_s w_s ℓ(a_s, t_s) / Σ_s w_s + k P(W) (the plain mean (1/S) Σ ℓ without weights and
        penalty), through the fused pair where there is one."""
        T = as_targets(T, self.n_out, self.dtype)
        w = None if sample_weight is None else as_sample_weight(sample_weight, len(T), self.dtype)
        fused = fuse(self.output, loss)
        if fused is not None:
            Z = self.forward(X, stop=len(self.layers) - 1, check=check)[0]
            value = float(cost(fused, Z, T, w))
        else:
            value = float(cost(loss, self.forward(X, check=check)[0], T, w))
        if penalty is not None:
            k = penalty_scale(penalty, _weight_sum(T, w))
            value += k * penalty.value([L.W for L in self.linears])
        return value

    # ---- Jacobians by the chain rule -----------------------------------------------------------

    def jacobians(self, X: Array) -> tuple[Array, list[dict[str, Array]]]:
        """Per-sample ∂a⁽ᴷ⁾/∂x (S, n_out, n_in) and ∂a⁽ᴷ⁾/∂vec(W⁽ˡ⁾), ∂a⁽ᴷ⁾/∂b⁽ˡ⁾ for each l.

        Assembled from the layers' own Jacobians: ∂a⁽ᴷ⁾/∂x = J_{2K} ⋯ J_2 J_1 (batched matmul), and
        for a parameter θ of layer i, ∂a⁽ᴷ⁾/∂θ = (J_{2K} ⋯ J_{i+1}) ∂(layer i's output)/∂θ.
        """
        _, caches = self.forward(X)
        layer_jacobians = [layer.jacobian(c) for layer, c in zip(self.layers, caches, strict=True)]
        xp = namespace(X)
        n = self.n_out
        after = xp.broadcast_to(xp.eye(n, dtype=X.dtype)[None, :, :], (X.shape[0], n, n))
        params: list[dict[str, Array]] = []
        for layer, cache, J in zip(
            reversed(self.layers), reversed(caches), reversed(layer_jacobians), strict=True
        ):
            if isinstance(layer, Linear):
                params.append({k: after @ P for k, P in layer.param_jacobians(cache).items()})
            after = after @ J
        return after, params[::-1]


def _weight_sum(T: Array, w: Array | None) -> float:
    """Σ_s w_s, or S without weights: the denominator of the weighted mean."""
    return float(T.shape[0]) if w is None else float(namespace(w).sum(w))


def _default_init(activation: Elementwise | Softmax) -> str:
    """Glorot for sigmoid, tanh, identity and softmax; He for the ReLU family."""
    return activation.activation.init if isinstance(activation, Elementwise) else "glorot_uniform"


def make_mlp(sizes: list[int], activations: list[str], **kwargs: Any) -> MLP:
    """An MLP from layer sizes [n_in, n_1, …, n_K] and K activation names."""
    if len(activations) != len(sizes) - 1:
        raise ShapeError(
            f"{len(sizes)} sizes need {len(sizes) - 1} activations, got {len(activations)}"
        )
    spec = NetworkSpec(
        sizes[0], tuple(LayerSpec(s, a) for s, a in zip(sizes[1:], activations, strict=True))
    )
    return MLP(parse_spec(str(spec)), **kwargs)
