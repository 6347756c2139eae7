"""One training step (and one prediction) per framework, all built from the same weights and data.

Every step here is a real training step on a batch: forward pass, softmax + cross-entropy cost,
backward pass and a plain SGD update θ ← θ − η ∂C/∂θ of every weight and bias, in float32.

- nnmath: ``FastStep.sgd_step`` (the fast path), and the engine's clear path
  (``MLP.loss_and_gradients`` + ``optimizers.SGD``) for reference.
- PyTorch eager: ``nn.Sequential`` of ``nn.Linear``/``nn.ReLU``, ``nn.CrossEntropyLoss`` and
  ``optim.SGD``: ``zero_grad(); loss.backward(); step()``.
- JAX: the whole step (value_and_grad and the update) under one ``jax.jit``, parameters donated,
  so XLA may update them in place.
- scikit-learn: ``MLPClassifier(solver="sgd")``; one ``partial_fit`` call runs one epoch of
  ``batch_size`` mini-batches, so a step is the epoch's time divided by its number of batches.

The GEMM reference runs only the matrix products that the nnmath step needs, in the same
layouts and into the same kinds of buffers: the rate of the machine's float32 BLAS at the step's
shapes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.fast import FastStep, flat_parameters
from nnmath.losses import get_loss
from nnmath.network import MLP
from nnmath.optimizers import SGD

Weights = list[tuple[np.ndarray, np.ndarray]]

MODELS: dict[str, tuple[tuple[int, ...], int]] = {
    "tiny": ((3, 10, 6, 3), 32),
    "small": ((64, 128, 64, 10), 64),
    "medium": ((784, 256, 128, 10), 128),
    "large": ((784, 1024, 1024, 10), 512),
}
LEARNING_RATE = 0.01


def spec_of(sizes: tuple[int, ...]) -> str:
    """'784-256relu-128relu-10softmax' for sizes (784, 256, 128, 10)."""
    hidden = [f"{n}relu" for n in sizes[1:-1]]
    return "-".join([str(sizes[0]), *hidden, f"{sizes[-1]}softmax"])


def step_flops(sizes: tuple[int, ...], S: int) -> int:
    """FLOPs a training step needs: 2·S·in·out per layer forward, the same for dW, and the same
    again for dX in every layer but the first (no input gradient)."""
    total = 0
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        total += 2 * S * n_in * n_out * (2 if index == 0 else 3)
    return total


@dataclass
class Problem:
    """A model size, its initial weights (He-normal, float32) and one batch of data."""

    name: str
    sizes: tuple[int, ...]
    batch: int
    weights: Weights
    X: np.ndarray  # (batch, n_in) float32, standard normal
    y: np.ndarray  # (batch,) int64 labels
    learning_rate: float = LEARNING_RATE

    @property
    def spec(self) -> str:
        return spec_of(self.sizes)

    def copy_weights(self) -> Weights:
        return [(W.copy(), b.copy()) for W, b in self.weights]


def make_problem(name: str, seed: int = 0) -> Problem:
    sizes, batch = MODELS[name]
    rng = np.random.default_rng(seed)
    model = MLP(spec_of(sizes), rng=rng, dtype=np.float32)
    for linear in model.linears:  # small random biases, so that no bias gradient is trivially 0
        linear.b[:] = rng.normal(0.0, 0.1, linear.b.shape).astype(np.float32)
    X = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    return Problem(name, sizes, batch, [(L.W.copy(), L.b.copy()) for L in model.linears], X, y)


# ---- training steps -------------------------------------------------------------------------------


@dataclass
class Runner:
    """A framework's training step: ``step()`` runs ``steps_per_call`` steps (dispatches them, for
    JAX); ``sync()`` waits for the last to finish; ``weights()`` reads the current parameters."""

    step: Callable[[], object]
    weights: Callable[[], Weights]
    sync: Callable[[], object] = lambda: None
    steps_per_call: int = 1


def nnmath_step(p: Problem, kernel: str = "numpy") -> Runner:
    """The step ``fit`` runs: ``FastStep.sgd_step`` (forward, cost, backward and SGD update fused)
    on the flat parameter vector, W⁽¹⁾ stored transposed for the NumPy kernel (fast.py)."""
    model, _ = flat_parameters(
        MLP.from_weights(p.spec, p.copy_weights()), np.dtype(np.float32), kernel == "numpy"
    )
    fast = FastStep(model, get_loss("cross-entropy"), p.batch, kernel=kernel)
    fast.check(p.X, p.y)  # once per data set, as a training loop does
    X, y, lr = p.X, p.y, p.learning_rate
    return Runner(lambda: fast.sgd_step(X, y, lr), lambda: _mlp_weights(model))


def engine_step(p: Problem) -> Runner:
    """The clear reference: ``MLP.loss_and_gradients`` then ``SGD.step``."""
    model = MLP.from_weights(p.spec, p.copy_weights())
    loss, optimizer = get_loss("cross-entropy"), SGD(p.learning_rate)
    X, y = p.X, p.y

    def step() -> float:
        cost, grads = model.loss_and_gradients(X, y, loss)
        optimizer.step(model.parameters(), grads.flat())
        return cost

    return Runner(step, lambda: _mlp_weights(model))


def _mlp_weights(model: MLP) -> Weights:
    return [(L.W.copy(), L.b.copy()) for L in model.linears]


def torch_model(p: Problem) -> Any:
    import torch

    layers: list[Any] = []
    for index, (W, b) in enumerate(p.copy_weights()):
        linear = torch.nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if index < len(p.weights) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def torch_step(p: Problem) -> Runner:
    """PyTorch eager: Sequential + CrossEntropyLoss + optim.SGD, zero_grad/backward/step."""
    import torch

    net = torch_model(p)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=p.learning_rate)
    X, y = torch.from_numpy(p.X), torch.from_numpy(p.y)

    def step() -> object:
        optimizer.zero_grad()
        loss = criterion(net(X), y)
        loss.backward()
        optimizer.step()
        return loss

    def weights() -> Weights:
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        return [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()) for m in linears]

    return Runner(step, weights)


def jax_step(p: Problem) -> Runner:
    """JAX: value_and_grad and the SGD update under one jit, the parameters donated.

    ``step`` dispatches a step asynchronously, as JAX does in a training loop; ``sync`` blocks
    until the last one is done, and every timed block of steps ends with it.
    """
    import jax
    import jax.numpy as jnp

    lr = p.learning_rate

    def cost(params: Any, X: Any, y: Any) -> Any:
        a = X
        for index, (W, b) in enumerate(params):
            a = a @ W.T + b
            if index < len(params) - 1:
                a = jax.nn.relu(a)
        log_p = jax.nn.log_softmax(a)
        return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))

    def update(params: Any, X: Any, y: Any) -> Any:
        value, grads = jax.value_and_grad(cost)(params, X, y)
        return jax.tree_util.tree_map(lambda w, g: w - lr * g, params, grads), value

    jitted = jax.jit(update, donate_argnums=0)
    state: dict[str, Any] = {"params": [(jnp.array(W), jnp.array(b)) for W, b in p.copy_weights()]}
    X, y = jnp.asarray(p.X), jnp.asarray(p.y)

    def step() -> object:
        state["params"], state["value"] = jitted(state["params"], X, y)
        return state["value"]

    def sync() -> object:
        return jax.block_until_ready(state["value"])

    def weights() -> Weights:
        return [(np.array(W), np.array(b)) for W, b in state["params"]]

    step()  # compile
    sync()
    state["params"] = [(jnp.array(W), jnp.array(b)) for W, b in p.copy_weights()]  # start over
    return Runner(step, weights, sync)


def sklearn_step(p: Problem, batches: int) -> Runner:
    """scikit-learn: one partial_fit call is one epoch of ``batches`` SGD steps of ``p.batch`` rows."""
    from sklearn.neural_network import MLPClassifier

    classifier = MLPClassifier(
        hidden_layer_sizes=p.sizes[1:-1],
        activation="relu",
        solver="sgd",
        alpha=0.0,
        batch_size=p.batch,
        learning_rate="constant",
        learning_rate_init=p.learning_rate,
        momentum=0.0,
        nesterovs_momentum=False,
        shuffle=False,
        max_iter=1,
    )
    X, y = np.tile(p.X, (batches, 1)), np.tile(p.y, batches)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classifier.partial_fit(X[: p.batch], y[: p.batch], classes=np.arange(p.sizes[-1]))
    classifier.coefs_ = [W.T.copy() for W, _ in p.weights]
    classifier.intercepts_ = [b.copy() for _, b in p.weights]

    def weights() -> Weights:
        return [
            (W.T.copy(), b.copy())
            for W, b in zip(classifier.coefs_, classifier.intercepts_, strict=True)
        ]

    return Runner(lambda: classifier.partial_fit(X, y), weights, steps_per_call=batches)


def gemm_reference(p: Problem) -> Callable[[], None]:
    """Only the step's matrix products, in FastStep's layouts, into preallocated buffers."""
    rng = np.random.default_rng(1)
    S, sizes = p.batch, p.sizes
    W = [w.copy() for w, _ in p.weights]
    dW = [np.empty_like(w) for w in W]
    W1t, dW1t = np.ascontiguousarray(W[0].T), np.empty_like(W[0].T, order="C")  # as fit stores W⁽¹⁾
    A = [p.X] + [rng.standard_normal((S, n)).astype(np.float32) for n in sizes[1:-1]]
    hidden_out = [np.empty((S, n), np.float32) for n in sizes[1:-1]]
    ZT = np.empty((sizes[-1], S), np.float32)
    K = len(W)

    def products() -> None:
        for i in range(K - 1):
            np.matmul(A[i], W1t if i == 0 else W[i].T, out=hidden_out[i])  # Z = A Wᵀ
        np.matmul(W[-1], A[-1].T, out=ZT)  # Zᵀ = W Aᵀ (output layer)
        np.matmul(ZT, A[-1], out=dW[-1])  # dW = δᵀ A
        if K > 1:
            np.matmul(ZT.T, W[-1], out=hidden_out[-1])  # dA = δ W
        for i in range(K - 2, -1, -1):
            if i == 0:
                np.matmul(A[0].T, hidden_out[0], out=dW1t)  # dW⁽¹⁾ᵀ = Xᵀ δ
            else:
                np.matmul(hidden_out[i].T, A[i], out=dW[i])
            if i:
                np.matmul(hidden_out[i], W[i], out=hidden_out[i - 1])

    return products


def square_gemm(n: int) -> tuple[Callable[[], None], int]:
    """C = A B for n×n float32 matrices, and its 2n³ FLOPs."""
    rng = np.random.default_rng(2)
    A = rng.standard_normal((n, n)).astype(np.float32)
    B = rng.standard_normal((n, n)).astype(np.float32)
    C = np.empty((n, n), np.float32)
    return (lambda: np.matmul(A, B, out=C)), 2 * n**3


# ---- prediction ------------------------------------------------------------------------------------


def nnmath_predict(p: Problem, X: np.ndarray) -> Callable[[], np.ndarray]:
    model = MLP.from_weights(p.spec, p.copy_weights())
    fast = FastStep(model, get_loss("cross-entropy"), min(len(X), 1024))
    return lambda: fast.predict(X)


def engine_predict(p: Problem, X: np.ndarray) -> Callable[[], np.ndarray]:
    model = MLP.from_weights(p.spec, p.copy_weights())
    return lambda: model.predict(X)


def torch_predict(p: Problem, X: np.ndarray) -> Callable[[], object]:
    import torch

    net = torch_model(p).eval()
    Xt = torch.from_numpy(X)

    def predict() -> object:
        with torch.inference_mode():
            return torch.softmax(net(Xt), dim=1)

    return predict


def jax_predict(p: Problem, X: np.ndarray) -> Callable[[], object]:
    import jax
    import jax.numpy as jnp

    params = [(jnp.asarray(W), jnp.asarray(b)) for W, b in p.copy_weights()]

    @jax.jit
    def forward(params: Any, X: Any) -> Any:
        a = X
        for index, (W, b) in enumerate(params):
            a = a @ W.T + b
            if index < len(params) - 1:
                a = jax.nn.relu(a)
        return jax.nn.softmax(a)

    Xj = jnp.asarray(X)
    forward(params, Xj).block_until_ready()
    return lambda: forward(params, Xj).block_until_ready()


def sklearn_predict(p: Problem, X: np.ndarray) -> Callable[[], np.ndarray]:
    from sklearn.neural_network import MLPClassifier

    classifier = MLPClassifier(hidden_layer_sizes=p.sizes[1:-1], activation="relu", max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classifier.partial_fit(p.X, p.y, classes=np.arange(p.sizes[-1]))
    classifier.coefs_ = [W.T.copy() for W, _ in p.weights]
    classifier.intercepts_ = [b.copy() for _, b in p.weights]
    return lambda: classifier.predict_proba(X)
