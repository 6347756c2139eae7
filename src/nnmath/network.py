"""The multi-layer perceptron: forward pass, the δ recursion, and full Jacobians by the chain rule.

Symbols (column notation of the notes, applied to each row of a batch):
a⁽⁰⁾ = x,  z⁽ˡ⁾ = W⁽ˡ⁾ a⁽ˡ⁻¹⁾ + b⁽ˡ⁾,  a⁽ˡ⁾ = f⁽ˡ⁾(z⁽ˡ⁾),  δ⁽ˡ⁾ = ∂C/∂z⁽ˡ⁾,  for l = 1 … K.

Backward is the textbook recursion, written as a loop over the layers' VJPs:
δ⁽ᴷ⁾ = ∂C/∂z⁽ᴷ⁾ (from the fused output pair, or ∂C/∂a⁽ᴷ⁾ through f⁽ᴷ⁾'s VJP), then for each l
∂C/∂W⁽ˡ⁾ = δ⁽ˡ⁾ᵀ A⁽ˡ⁻¹⁾,  ∂C/∂b⁽ˡ⁾ = 1ᵀ δ⁽ˡ⁾,  δ⁽ˡ⁻¹⁾ = (δ⁽ˡ⁾ W⁽ˡ⁾) ⊙ f′(Z⁽ˡ⁻¹⁾).

A layer of the spec may add batch normalization between its linear map and its activation and
dropout after the activation (``64-128relu+bn+dropout(0.3)-10``): Linear → BatchNorm → f → Dropout.
The loop stays the same; each of them is one more VJP in it. They make the network depend on the
mode: ``forward(X, training=True, rng=...)`` normalizes with the batch's statistics (and updates the
running ones, as PyTorch does) and draws dropout masks from ``rng``; evaluation (the default of
``forward``, ``predict`` and ``cost``) uses the running statistics and no dropout.
``loss_and_gradients`` computes the quantities of a training step, so it runs in training mode.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnmath.archive import MEMORY_FRACTION, available_memory, size_text
from nnmath.backend import check_same_namespace, convert, dtype_name, namespace, to_numpy
from nnmath.dropout import Dropout
from nnmath.errors import DataError, ShapeError, SpecError, WrongTypeError
from nnmath.initializers import initialize
from nnmath.layers import Elementwise, Linear, Mode, Softmax, activation_layer
from nnmath.losses import Loss, as_sample_weight, as_targets, cost, cost_gradient, fuse
from nnmath.normalization import BatchNorm
from nnmath.pairing import check_pair
from nnmath.penalties import Penalty, penalty_scale
from nnmath.spec import LayerSpec, NetworkSpec, parse_spec

Array = Any
Layer = Linear | BatchNorm | Elementwise | Softmax | Dropout
STATISTICS = ("running_mean", "running_var")


@dataclass
class Gradients:
    """∂C/∂W⁽ˡ⁾ and ∂C/∂b⁽ˡ⁾ for every layer (l = 1 … K), ∂C/∂X, and ∂C/∂γ, ∂C/∂β for every batch
    norm (in layer order)."""

    W: list[Array]
    b: list[Array]
    X: Array
    gamma: list[Array] = field(default_factory=list)
    beta: list[Array] = field(default_factory=list)

    def flat(self) -> list[Array]:
        """[dW1, db1, …, dWK, dbK, dγ, dβ, …], in the order of ``MLP.parameters()``."""
        pairs = [*zip(self.W, self.b, strict=True), *zip(self.gamma, self.beta, strict=True)]
        return [g for pair in pairs for g in pair]


class MLP:
    """A K-layer perceptron: K Linear layers, each followed by its activation layer, with batch
    norm before the activation and dropout after it where the spec asks for them."""

    def __init__(
        self,
        spec: NetworkSpec | str,
        *,
        init: str = "auto",
        rng: np.random.Generator | None = None,
        seed: int = 0,
        dtype: Any = np.float64,
    ) -> None:
        self.spec = spec if isinstance(spec, NetworkSpec) else parse_spec(spec)
        dtype = float_dtype(dtype)
        check_memory(self.spec, dtype)
        rng = as_generator(seed, rng)
        self.linears: list[Linear] = []
        self.batch_norms: list[BatchNorm | None] = []
        self.activations: list[Elementwise | Softmax] = []
        self.dropouts: list[Dropout | None] = []
        for n_in, layer in zip(self.spec.sizes[:-1], self.spec.layers, strict=True):
            activation = activation_layer(layer.activation, layer.parameter)
            scheme = init if init != "auto" else _default_init(activation)
            W, b = initialize(n_in, layer.size, scheme, rng, dtype)
            self.linears.append(Linear(W, b))
            self.batch_norms.append(
                BatchNorm.initial(layer.size, dtype) if layer.batch_norm else None
            )
            self.activations.append(activation)
            self.dropouts.append(None if layer.dropout is None else Dropout(layer.dropout))

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

    @classmethod
    def from_arrays(cls, spec: NetworkSpec | str, arrays: dict[str, Array]) -> MLP:
        """An MLP from every array that defines it, by the names of :meth:`named_arrays`."""
        spec = parse_spec(spec) if isinstance(spec, str) else spec
        missing = [name for name in array_names(spec) if name not in arrays]
        if missing:
            raise ShapeError(f"spec {spec} needs the arrays {', '.join(missing)}; they are missing")
        K = len(spec.layers)
        model = cls.from_weights(
            spec, [(arrays[f"W{l}"], arrays[f"b{l}"]) for l in range(1, K + 1)]
        )
        for l, norm in enumerate(model.batch_norms, 1):
            if norm is None:
                continue
            for name in ("gamma", "beta", *STATISTICS):
                value = arrays[f"{name}{l}"]
                if tuple(value.shape) != (norm.n,) or value.dtype != model.dtype:
                    raise ShapeError(
                        f"layer {l}'s batch norm expects {name} of shape ({norm.n},) and dtype "
                        f"{dtype_name(model.dtype)}, got {tuple(value.shape)} "
                        f"{dtype_name(value.dtype)}"
                    )
                setattr(norm, name, value)
        return model

    def named_arrays(self) -> dict[str, Array]:
        """W1, b1, …, WK, bK, and gamma{l}, beta{l}, running_mean{l}, running_var{l} for the batch
        norm of layer l: everything a copy or a model file needs."""
        arrays = {}
        for l, linear in enumerate(self.linears, 1):
            arrays[f"W{l}"], arrays[f"b{l}"] = linear.W, linear.b
        for l, norm in enumerate(self.batch_norms, 1):
            if norm is not None:
                arrays.update({f"{k}{l}": v for k, v in {**norm.params, **norm.statistics}.items()})
        return arrays

    def astype(self, dtype: Any) -> MLP:
        """A copy with every parameter (and running statistic) converted to ``dtype`` (NumPy)."""
        arrays = {k: to_numpy(v).astype(dtype) for k, v in self.named_arrays().items()}
        return MLP.from_arrays(self.spec, arrays)

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
        """Linear⁽¹⁾, [BatchNorm⁽¹⁾], f⁽¹⁾, [Dropout⁽¹⁾], Linear⁽²⁾, …: the order of the forward pass."""
        return [layer for _, layer in self.numbered_layers()]

    def numbered_layers(self) -> list[tuple[int, Layer]]:
        """(l, layer) for every layer of the forward pass, l = 1 … K the spec's layer it belongs to."""
        groups = zip(self.linears, self.batch_norms, self.activations, self.dropouts, strict=True)
        return [
            (l, layer) for l, group in enumerate(groups, 1) for layer in group if layer is not None
        ]

    @property
    def mode_dependent(self) -> bool:
        """True when training and evaluation differ (some layer has batch norm or dropout)."""
        return self.spec.mode_dependent

    @property
    def dtype(self) -> Any:
        """The dtype of the parameters (the first weight matrix's)."""
        return self.linears[0].W.dtype

    @property
    def n_in(self) -> int:
        """n₀, the number of inputs (X has shape (S, n₀))."""
        return self.spec.n_in

    @property
    def n_out(self) -> int:
        """n_K, the number of outputs (the predictions have shape (S, n_K))."""
        return self.spec.n_out

    @property
    def output(self) -> str:
        """The output activation's name (``softmax``, ``sigmoid``, ``identity``, …)."""
        return self.spec.output

    def parameters(self) -> list[Array]:
        """[W1, b1, …, WK, bK, γ, β, …]: the arrays an optimizer updates in place; each batch
        norm's γ, β come after all the linear layers, in layer order (running statistics are state,
        not parameters)."""
        linear = [p for L in self.linears for p in (L.W, L.b)]
        return linear + [p for B in self.batch_norms if B is not None for p in (B.gamma, B.beta)]

    def parameter_names(self) -> list[str]:
        """["W1", "b1", …, "gamma2", "beta2", …], in the order of :meth:`parameters`."""
        K = len(self.linears)
        names = [f"{kind}{l}" for l in range(1, K + 1) for kind in "Wb"]
        norms = [l for l, B in enumerate(self.batch_norms, 1) if B is not None]
        return names + [f"{kind}{l}" for l in norms for kind in ("gamma", "beta")]

    @property
    def parameter_count(self) -> int:
        """The number of scalars in :meth:`parameters` (weights, biases, γ and β)."""
        return sum(int(np.prod(p.shape)) for p in self.parameters())

    def summary(self) -> str:
        """A table of the layers, their shapes and parameter counts."""
        rows = [
            f"MLP {self.spec}  ({dtype_name(self.dtype)}, {self.parameter_count} parameters)",
            f"{'layer':<7}{'W':<14}{'b':<10}{'activation':<26}{'parameters':>10}",
        ]
        groups = zip(self.linears, self.batch_norms, self.activations, self.dropouts, strict=True)
        for index, (linear, norm, activation, dropout) in enumerate(groups, 1):
            count = linear.n_out * linear.n_in + linear.n_out + (0 if norm is None else 2 * norm.n)
            steps = [layer.describe() for layer in (norm, activation, dropout) if layer is not None]
            rows.append(
                f"{index:<7}{f'{linear.n_out}×{linear.n_in}':<14}{linear.n_out:<10}"
                f"{' → '.join(steps):<26}{count:>10}"
            )
        return "\n".join(rows)

    def __repr__(self) -> str:
        return f"MLP('{self.spec}', dtype={dtype_name(self.dtype)})"

    def _repr_markdown_(self) -> str:
        """The summary as a notebook shows it: one row per layer, z = W a + b then the activation."""
        rows = [
            f"**MLP {self.spec}** ({dtype_name(self.dtype)}, {self.parameter_count} parameters)",
            "",
            "| layer | $W$ | $b$ | activation | parameters |",
            "| ---: | --- | --- | --- | ---: |",
        ]
        for index, (linear, activation) in enumerate(
            zip(self.linears, self.activations, strict=True), 1
        ):
            rows.append(
                f"| {index} | ${linear.n_out} \\times {linear.n_in}$ | ${linear.n_out}$ | "
                f"{activation.describe()} | {linear.n_out * linear.n_in + linear.n_out} |"
            )
        return "\n".join(rows)

    # ---- forward -----------------------------------------------------------------------------

    def check_input(self, X: Array) -> None:
        """Refuse an input that is not an array of numbers, not (S, n_in), or holds NaN/Inf,
        naming the layer or row."""
        first = self.linears[0]
        if not (hasattr(X, "shape") and hasattr(X, "dtype")):
            raise WrongTypeError(
                f"X must be an array of shape (S, {first.n_in}), one sample per row, got "
                f"{type(X).__name__}; make one with numpy.asarray(X, dtype=float)"
            )
        if isinstance(X, np.ndarray) and X.dtype.kind not in "fiub":
            raise WrongTypeError(
                f"X must hold numbers, got an array of dtype {X.dtype}; convert it with "
                "X.astype(float) (text columns need encoding first)"
            )
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
        self,
        X: Array,
        *,
        stop: int | None = None,
        check: bool = True,
        training: bool = False,
        rng: np.random.Generator | None = None,
    ) -> tuple[Array, list[Any]]:
        """Run the layers in order, collecting each layer's cache; ``stop`` ends early.

        Returns (output of the last layer run, caches). With ``stop = len(layers) − 1`` the output
        is the logits z⁽ᴷ⁾, which is what the fused output pairs take. ``training=True`` runs batch
        norm on the batch's statistics (then updates its running statistics) and dropout with
        masks drawn from ``rng``; the default is evaluation mode.
        """
        if check:
            self.check_input(X)
        mode = Mode(training, rng)
        layers, caches = self.layers[:stop], []
        for layer in layers:
            X, cache = layer.forward(X, mode)
            caches.append(cache)
        if training:
            for layer, cache in zip(layers, caches, strict=True):
                if isinstance(layer, BatchNorm):
                    layer.update_statistics(cache)
        return X, caches

    def predict(self, X: Array) -> Array:
        """The network's output a⁽ᴷ⁾ for a batch X, in evaluation mode."""
        return self.forward(X)[0]

    # ---- backward ----------------------------------------------------------------------------

    def backward(self, caches: list[Any], dY: Array) -> Gradients:
        """Back through the layers that produced ``caches``, from dY = ∂C/∂(their output)."""
        found: dict[str, list[Array]] = {"W": [], "b": [], "gamma": [], "beta": []}
        for layer, cache in zip(
            reversed(self.layers[: len(caches)]), reversed(caches), strict=True
        ):
            dY, grads = layer.vjp(cache, dY)
            for name, grad in grads.items():  # W, b of a Linear; γ, β of a batch norm
                found[name].append(grad)
        return Gradients(X=dY, **{name: grads[::-1] for name, grads in found.items()})

    def loss_and_gradients(
        self,
        X: Array,
        T: Array,
        loss: Loss,
        *,
        check: bool = True,
        training: bool = True,
        rng: np.random.Generator | None = None,
        sample_weight: Array | None = None,
        penalty: Penalty | None = None,
    ) -> tuple[float, Gradients]:
        """The cost C and ∂C/∂(every W, b, γ, β, X); uses the fused output pair when there is one.

        C = Σ_s w_s ℓ_s / Σ_s w_s + k P(W): the mean of ℓ (weighted by ``sample_weight`` w, (S,),
        when given) plus the ``penalty`` P on the weight matrices, k = 1 or 1/Σ_s w_s (see
        ``penalties``); each ∂C/∂W⁽ˡ⁾ then gains k ∂P/∂W⁽ˡ⁾. T may be class labels (S,) or targets
        (S, n_out). ``check=False`` skips the input check (a training loop validates X once).
        These are a training step's numbers, so the pass runs in training mode (batch statistics,
        running ones updated; dropout masks from ``rng``, which a network with dropout needs);
        ``training=False`` differentiates the evaluation-mode network instead. A network without
        batch norm or dropout is the same function in both modes.
        """
        check_pair(self.output, self.n_out, loss)
        T = as_targets(T, self.n_out, self.dtype)
        w = None if sample_weight is None else as_sample_weight(sample_weight, len(T), self.dtype)
        fused = fuse(self.output, loss)
        options = {"check": check, "training": training, "rng": rng}
        if fused is not None:
            Z, caches = self.forward(X, stop=len(self.layers) - 1, **options)
            value = float(cost(fused, Z, T, w))
            grads = self.backward(caches, cost_gradient(fused, Z, T, w))
        else:
            A, caches = self.forward(X, **options)
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
        training: bool = False,
        rng: np.random.Generator | None = None,
        sample_weight: Array | None = None,
        penalty: Penalty | None = None,
    ) -> float:
        """C = Σ_s w_s ℓ(a_s, t_s) / Σ_s w_s + k P(W) (the plain mean (1/S) Σ ℓ without weights and
        penalty), through the fused pair where there is one; in evaluation mode unless
        ``training=True`` (which, like any training pass, updates batch norm's running
        statistics)."""
        check_pair(self.output, self.n_out, loss)
        T = as_targets(T, self.n_out, self.dtype)
        w = None if sample_weight is None else as_sample_weight(sample_weight, len(T), self.dtype)
        fused = fuse(self.output, loss)
        options = {"check": check, "training": training, "rng": rng}
        if fused is not None:
            Z = self.forward(X, stop=len(self.layers) - 1, **options)[0]
            value = float(cost(fused, Z, T, w))
        else:
            value = float(cost(loss, self.forward(X, **options)[0], T, w))
        if penalty is not None:
            k = penalty_scale(penalty, _weight_sum(T, w))
            value += k * penalty.value([L.W for L in self.linears])
        return value

    # ---- Jacobians by the chain rule -----------------------------------------------------------

    def jacobians(self, X: Array) -> tuple[Array, list[dict[str, Array]]]:
        """Per-sample ∂a⁽ᴷ⁾/∂x (S, n_out, n_in) and, for each layer l, ∂a⁽ᴷ⁾/∂vec(W⁽ˡ⁾),
        ∂a⁽ᴷ⁾/∂b⁽ˡ⁾ (and ∂a⁽ᴷ⁾/∂γ⁽ˡ⁾, ∂a⁽ᴷ⁾/∂β⁽ˡ⁾ where layer l has batch norm).

        Assembled from the layers' own Jacobians: ∂a⁽ᴷ⁾/∂x = J_m ⋯ J_2 J_1 (batched matmul), and
        for a parameter θ of layer i, ∂a⁽ᴷ⁾/∂θ = (J_m ⋯ J_{i+1}) ∂(layer i's output)/∂θ. In
        evaluation mode, where each output depends on its own sample alone (in training, batch norm
        couples the samples: see ``BatchNorm.jacobian``).
        """
        _, caches = self.forward(X)
        numbered = self.numbered_layers()
        xp = namespace(X)
        n = self.n_out
        after = xp.broadcast_to(xp.eye(n, dtype=X.dtype)[None, :, :], (X.shape[0], n, n))
        params: list[dict[str, Array]] = [{} for _ in self.linears]
        for (l, layer), cache in zip(reversed(numbered), reversed(caches), strict=True):
            params[l - 1].update({k: after @ P for k, P in layer.param_jacobians(cache).items()})
            after = after @ layer.jacobian(cache)
        return after, params


def float_dtype(dtype: Any) -> np.dtype:
    """The parameters' dtype: a NumPy floating type (float32, float64, …), else an nnmath error."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise WrongTypeError(
            f"dtype must be a floating type such as 'float32', got {dtype!r}"
        ) from None
    if resolved.kind != "f":
        raise SpecError(
            f"dtype must be a floating type (float32 or float64), got {resolved}: the gradients "
            "of a network are real numbers"
        )
    return resolved


def as_generator(seed: Any, rng: Any) -> np.random.Generator:
    """``rng`` when given (a numpy Generator), else ``default_rng(seed)`` for a whole seed ≥ 0."""
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise WrongTypeError(
                f"rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), got "
                f"{type(rng).__name__}"
            )
        return rng
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise WrongTypeError(f"the seed must be a whole number ≥ 0, got {seed!r}"[:200])
    if seed < 0:
        raise SpecError(f"the seed must be a whole number ≥ 0, got {seed}")
    return np.random.default_rng(int(seed))


def check_memory(spec: NetworkSpec, dtype: Any, copies: int = 1, rows: int = 0) -> None:
    """Refuse, before allocating, a network whose parameters (``copies`` of them: gradients,
    optimizer state) and the outputs of ``rows`` rows of every layer (the buffers of a training
    step) need more than MEMORY_FRACTION of the memory available now."""
    count, itemsize = spec.parameter_count, np.dtype(dtype).itemsize
    units = sum(layer.size for layer in spec.layers)
    n_bytes = (copies * count + 3 * rows * units) * itemsize  # Z, δ and a mask per unit and row
    available = available_memory()
    if available is None or n_bytes <= MEMORY_FRACTION * available:
        return
    copies_text = f"{copies} copies of " if copies > 1 else ""
    rows_text = f" and the outputs of {rows:,} rows of every layer" if rows else ""
    widest = max(layer.size for layer in spec.layers)
    raise SpecError(
        f"the network {spec} is too large for this machine: {copies_text}its {count:.3g} "
        f"{np.dtype(dtype)} parameters{rows_text} need {size_text(n_bytes)}, and "
        f"{size_text(available)} of memory are available; make the layers narrower (the widest "
        f"has {widest:,} units)" + (" or the batch smaller" if rows else "")
    )


def array_names(spec: NetworkSpec) -> list[str]:
    """The names of :meth:`MLP.named_arrays` for a spec: W{l}, b{l}, and each batch norm's four."""
    names = [f"{kind}{l}" for l in range(1, len(spec.layers) + 1) for kind in "Wb"]
    norms = [l for l, layer in enumerate(spec.layers, 1) if layer.batch_norm]
    return names + [f"{kind}{l}" for l in norms for kind in ("gamma", "beta", *STATISTICS)]


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
