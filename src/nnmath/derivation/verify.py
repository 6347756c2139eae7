"""Every equation of a derivation, evaluated on numbers and compared with an independent computation.

The equations are evaluated in the order the document prints them, each from its own NumPy code
(the printed formula, not the engine's backward pass), with the forward pass's values bound and each
gradient bound to the value its equation gave, so that an error anywhere in the printed chain shows
up where it happens. Each value is then compared with a computation that shares nothing with it:

- a gradient with central differences of the cost C (or of the summed loss ℓ = S·C for the output
  layer's per-sample steps), perturbing that very quantity (a weight, a bias, an entry of Z_l, A_l,
  Ŷ or X) and running the engine's forward pass from there;
- a Jacobian with the numerical Jacobian of the activation, sample by sample;
- a forward equation with the engine's forward pass, the cost with the engine's cost;
- an identity (a step of a simplification, or its assumption) by evaluating both of its sides.

Central differences use ``nnmath.gradcheck``'s step, tolerances, relative error and numerical
Jacobian. A coordinate whose ±ε moves a ReLU-type pre-activation across its kink is left out and
counted, as the gradient checker does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.derivation.document import Check, Derivation, Equation
from nnmath.derivation.evaluate import TRUSTED, evaluate
from nnmath.errors import NNMathError, ShapeError
from nnmath.gradcheck import (
    DEFAULT_ATOL,
    DEFAULT_EPS,
    DEFAULT_RTOL,
    numerical_jacobian,
    random_problem,
    relative_error,
)
from nnmath.layers import Elementwise
from nnmath.losses import as_targets, cost, fuse
from nnmath.network import MLP, as_generator


@dataclass
class Problem:
    """The numbers a derivation is checked on: a float64 network, inputs X and targets T (engine
    layout, one sample per row), and where they came from."""

    model: MLP
    X: np.ndarray
    T: np.ndarray
    source: str

    @property
    def S(self) -> int:
        return int(self.X.shape[0])


def make_problem(
    derivation: Derivation,
    *,
    samples: int = 4,
    seed: int = 0,
    model: MLP | None = None,
    X: np.ndarray | None = None,
    T: np.ndarray | None = None,
    weights: str = "",
) -> Problem:
    """Random inputs and targets suited to the loss, for the given network or random weights;
    ``X`` and ``T`` (one sample per row; T may be class labels) replace the random ones, and
    ``weights`` says where the model's weights came from."""
    rng = as_generator(seed, None)  # a whole seed ≥ 0
    if model is None:
        network = MLP(derivation.spec, rng=rng)
        source = f"random weights and data, seed {seed}"
    else:
        if str(model.spec) != str(derivation.spec):
            raise ShapeError(
                f"the model is {model.spec} but the derivation is for {derivation.spec}; "
                "derive the model's own spec"
            )
        network, source = model, f"the model's weights, random data (seed {seed})"
    network = network.astype(np.float64)
    if (X is None) != (T is None):
        raise ShapeError("give both the inputs and the targets, or neither")
    if X is not None and T is not None:
        X, T = np.atleast_2d(np.asarray(X, dtype=np.float64)), np.asarray(T, dtype=np.float64)
        if X.shape[1] != network.n_in or len(T) != len(X):
            raise ShapeError(
                f"{len(X)} input rows of {X.shape[1]} values and {len(T)} target rows; the "
                f"network takes {network.n_in} inputs per sample and one target row per input row"
            )
        origin = weights or "the model's weights"
        source = f"{origin if model is not None else f'random weights (seed {seed})'}, your inputs and targets"
        return Problem(network, X, as_targets(T, network.n_out, np.float64), source)
    if samples < 1:
        raise ShapeError(f"--samples must be at least 1, got {samples}")
    X, T = random_problem(network, derivation.loss, samples, rng)
    return Problem(network, X, as_targets(T, network.n_out, np.float64), source)


# ---- the forward pass in the derivation's notation --------------------------------------------


def forward_values(problem: Problem) -> list[np.ndarray]:
    """[X, Z_1, A_1, …, Z_K, A_K] in the engine's layout: the input and every layer's output."""
    values = [problem.X]
    for layer in problem.model.layers:
        values.append(layer.forward(values[-1])[0])
    return values


def environment(derivation: Derivation, problem: Problem) -> dict[str, Any]:
    """The names a formula may use, bound to the forward pass's values in the derivation's notation."""
    notation, K = derivation.notation, derivation.K
    values = forward_values(problem)
    env: dict[str, Any] = {"S": problem.S}
    env.update({f"n{layer}": n for layer, n in enumerate(derivation.spec.sizes)})
    env["X"] = notation.from_engine("batch", values[0])
    for layer, linear in enumerate(problem.model.linears, start=1):
        env[f"W{layer}"] = notation.from_engine("W", linear.W)
        env[f"b{layer}"] = notation.from_engine("b", linear.b)
        env[f"Z{layer}"] = notation.from_engine("batch", values[2 * layer - 1])
        if layer < K:
            env[f"A{layer}"] = notation.from_engine("batch", values[2 * layer])
    env["Yhat"] = notation.from_engine("batch", values[-1])
    env["Y"] = notation.from_engine("batch", problem.T)
    return env


def _position(name: str, K: int) -> int:
    """Where a batch quantity sits in [X, Z_1, A_1, …, Z_K, A_K]."""
    if name == "X":
        return 0
    if name == "Yhat":
        return 2 * K
    layer = int(name[1:])
    return 2 * layer - 1 if name[0] == "Z" else 2 * layer


# ---- the objective as a function of one quantity (forward passes only) -----------------------


def objective(
    derivation: Derivation, problem: Problem, name: str, objective_name: str = "C"
) -> Callable[[np.ndarray], tuple[float, list[np.ndarray]]]:
    """f(value) = the cost C (or ℓ = S·C) with the quantity ``name`` (notation layout) set to value,
    and the sides of 0 of every kinked pre-activation downstream of it."""
    model, loss, notation, K = problem.model, derivation.loss, derivation.notation, derivation.K
    fused = fuse(model.output, loss)
    layers = model.layers
    scale = problem.S if objective_name == "l" else 1.0

    def run(position: int, current: np.ndarray, network: MLP) -> tuple[float, list[np.ndarray]]:
        masks = []
        stop = len(layers) - 1 if fused is not None and position <= len(layers) - 1 else len(layers)
        for layer in network.layers[position:stop]:
            if isinstance(layer, Elementwise) and layer.activation.kinked:
                masks.append(current > 0)
            current = layer.forward(current)[0]
        pair = fused if stop == len(layers) - 1 else loss
        return scale * float(cost(pair, current, problem.T)), masks

    if name[0] in "Wb" and name[1:].isdigit():
        layer = int(name[1:])
        kind = name[0]

        def parameter(value: np.ndarray) -> tuple[float, list[np.ndarray]]:
            network = model.copy()
            linear = network.linears[layer - 1]
            if kind == "W":
                linear.W = notation.to_engine("W", value)
            else:
                linear.b = notation.to_engine("b", value)
            return run(0, problem.X, network)

        return parameter
    position = _position(name, K)

    def batch(value: np.ndarray) -> tuple[float, list[np.ndarray]]:
        return run(position, notation.to_engine("batch", value), model)

    return batch


def central_differences(
    f: Callable[[np.ndarray], tuple[float, list[np.ndarray]]],
    x: np.ndarray,
    steps: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray]:
    """∂f/∂x by central differences with step ``steps`` (one per entry, or one for all), and the
    coordinates whose ±step crossed a kink."""
    x = np.array(x, dtype=np.float64)
    steps = np.broadcast_to(np.asarray(steps, dtype=np.float64), x.shape).reshape(-1)
    _, reference = f(x)
    grad, kinks = np.zeros_like(x), np.zeros(x.shape, dtype=bool)
    flat, out, crossed = x.reshape(-1), grad.reshape(-1), kinks.reshape(-1)
    for i in range(flat.size):
        saved, h = flat[i], steps[i]
        results = []
        for shift in (h, -h):
            flat[i] = saved + shift
            results.append(f(x))
        flat[i] = saved
        out[i] = (results[0][0] - results[1][0]) / (2.0 * h)
        crossed[i] = any(
            np.any(a != b) for _, masks in results for a, b in zip(masks, reference, strict=True)
        )
    return grad, kinks


def prediction_steps(Yhat: np.ndarray, eps: float) -> np.ndarray:
    """Steps for differentiating a loss at the predictions: eps · min(1, |ŷ|, |1 − ŷ|).

    −ln ŷ and −ln(1 − ŷ) curve sharply near 0 and 1, where an absolute step would cost a
    truncation error ~ eps²/(3ŷ²) (and could step past 0); a relative step keeps it ~ eps²/3.
    """
    scale = np.minimum(1.0, np.minimum(np.abs(Yhat), np.abs(1.0 - Yhat)))
    return eps * np.where(scale > 0, scale, 1.0)


# ---- checking ----------------------------------------------------------------------------------


def _compare(
    value: np.ndarray, reference: np.ndarray, keep: np.ndarray | None = None
) -> tuple[float, float]:
    value, reference = np.asarray(value, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if value.shape != reference.shape:
        raise ShapeError(f"shape ({value.shape}) differs from the reference's ({reference.shape})")
    if keep is not None:
        value, reference = value[keep], reference[keep]
    rel = relative_error(value, reference)
    return rel, float(np.max(np.abs(value - reference), initial=0.0))


def _reference(
    equation: Equation,
    derivation: Derivation,
    problem: Problem,
    env: dict[str, Any],
    eps: float,
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The independent value an equation is compared with, the coordinates to keep, the method."""
    if equation.kind == "identity":
        return evaluate(equation.lhs_code, env, budget=TRUSTED), None, "its two sides evaluated"
    if equation.kind == "forward":
        return env[equation.name], None, "the engine's forward pass"
    if equation.kind == "cost":
        value = problem.model.cost(problem.X, problem.T, derivation.loss)
        return np.asarray(value), None, "the engine's cost"
    if equation.kind == "jacobian":
        layer = problem.model.layers[-1]
        Z = forward_values(problem)[-2]

        def h(z: np.ndarray) -> np.ndarray:
            return layer.forward(z[None, :])[0][0]

        J = np.stack([numerical_jacobian(h, z, eps) for z in Z])
        return J, None, "the numerical Jacobian of the activation"
    f = objective(derivation, problem, equation.wrt, equation.objective)
    x = env[equation.wrt]
    steps = prediction_steps(x, eps) if equation.wrt == "Yhat" else eps
    numeric, kinks = central_differences(f, x, steps)
    what = "C" if equation.objective == "C" else "ℓ"
    return numeric, ~kinks, f"central differences of {what}"


def verify(
    derivation: Derivation,
    problem: Problem,
    *,
    eps: float = DEFAULT_EPS,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> bool:
    """Check every equation of ``derivation`` on ``problem``; fills each ``equation.result``.

    Returns True when every equation passed (relative error ≤ rtol or max abs error ≤ atol).
    """
    env = environment(derivation, problem)
    for equation in derivation.equations():
        equation.result = _check(equation, derivation, problem, env, eps, rtol, atol)
    derivation.verification = {
        "source": problem.source,
        "samples": problem.S,
        "eps": eps,
        "rtol": rtol,
        "atol": atol,
    }
    return bool(derivation.passed)


def _check(
    equation: Equation,
    derivation: Derivation,
    problem: Problem,
    env: dict[str, Any],
    eps: float,
    rtol: float,
    atol: float,
) -> Check:
    method = "evaluation"
    try:
        value = evaluate(equation.code, env, budget=TRUSTED)
        reference, keep, method = _reference(equation, derivation, problem, env, eps)
        rel, max_abs = _compare(value, reference, keep)
        element = None
        if equation.element_code:
            element_value = evaluate(equation.element_code, env, budget=TRUSTED)
            element, element_abs = _compare(element_value, reference, keep)
            rel, max_abs = max(rel, element), max(max_abs, element_abs)
    except NNMathError as error:
        return Check(False, math.inf, math.inf, f"{method} failed: {error}")
    if equation.name and equation.kind != "forward":
        env[equation.name] = value
    kinks = 0 if keep is None else int(np.size(keep) - np.count_nonzero(keep))
    passed = math.isfinite(rel) and (rel <= rtol or max_abs <= atol)
    return Check(passed, rel, max_abs, method, kinks, element)
