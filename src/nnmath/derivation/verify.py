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
from nnmath.derivation.graph import TRAINING, Graph, engine_values, kind_of
from nnmath.derivation.graph import objective as graph_objective
from nnmath.errors import NNMathError, ShapeError
from nnmath.gradcheck import (
    DEFAULT_ATOL,
    DEFAULT_EPS,
    DEFAULT_RTOL,
    numerical_jacobian,
    random_problem,
    relative_error,
)
from nnmath.losses import as_targets
from nnmath.network import MLP, as_generator


@dataclass
class Problem:
    """The numbers a derivation is checked on: a float64 network, inputs X and targets T (engine
    layout, one sample per row), and where they came from; the seed of the dropout masks (drawn
    as the engine draws them from ``default_rng(mask_seed)``) and the sample weights w (S,) of a
    weighted cost."""

    model: MLP
    X: np.ndarray
    T: np.ndarray
    source: str
    mask_seed: int = 0
    sample_weight: np.ndarray | None = None

    @property
    def S(self) -> int:
        """S, the number of samples (rows of X)."""
        return int(self.X.shape[0])

    @property
    def weights(self) -> np.ndarray:
        """w, or ones without sample weights."""
        return np.ones(self.S) if self.sample_weight is None else self.sample_weight


def randomize_batch_norms(model: MLP, rng: np.random.Generator, decimals: int | None = None) -> MLP:
    """γ ~ U(0.5, 1.5) and β ~ N(0, 0.5) for every batch norm (γ = 1, β = 0 would hide a γ or a
    β left out of a formula), rounded to ``decimals`` if given."""
    for norm in model.batch_norms:
        if norm is None:
            continue
        gamma, beta = rng.uniform(0.5, 1.5, size=norm.n), rng.normal(0.0, 0.5, size=norm.n)
        if decimals is not None:
            gamma, beta = np.round(gamma, decimals), np.round(beta, decimals)
        norm.gamma, norm.beta = gamma, beta
    return model


def draw_weights(
    derivation: Derivation, rng: np.random.Generator, S: int, decimals: int | None = None
) -> np.ndarray | None:
    """Sample weights w ~ U(0.5, 2) for a weighted derivation (rounded if asked), else None."""
    if not derivation.weighted:
        return None
    w = rng.uniform(0.5, 2.0, size=S)
    return np.round(w, decimals) if decimals is not None else w


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
        network = randomize_batch_norms(MLP(derivation.spec, rng=rng), rng)
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
        w = draw_weights(derivation, rng, len(X))
        T = as_targets(T, network.n_out, np.float64)
        return checked_problem(Problem(network, X, T, source, seed, w), derivation)
    if samples < 1:
        raise ShapeError(f"--samples must be at least 1, got {samples}")
    X, T = random_problem(network, derivation.loss, samples, rng)
    w = draw_weights(derivation, rng, samples)
    T = as_targets(T, network.n_out, np.float64)
    return checked_problem(Problem(network, X, T, source, seed, w), derivation)


def checked_problem(problem: Problem, derivation: Derivation) -> Problem:
    """Refuse a batch that batch norm cannot take in training mode (one sample)."""
    if problem.S < 2 and any(layer.batch_norm for layer in derivation.spec.layers):
        raise ShapeError(
            "batch norm in training mode needs at least 2 samples (the variance of one sample "
            "is 0/0); give --samples 2 or more"
        )
    return problem


# ---- the forward pass in the derivation's notation --------------------------------------------


def as_graph(derivation: Derivation, problem: Problem) -> Graph:
    """The problem as the forward graph of :mod:`nnmath.derivation.graph` checks it on."""
    return Graph(
        problem.model,
        problem.X,
        problem.T,
        derivation.loss,
        problem.mask_seed,
        problem.sample_weight,
        derivation.penalty,
    )


def forward_values(derivation: Derivation, problem: Problem) -> dict[str, np.ndarray]:
    """Every named value of the training-mode forward pass, in the engine's layout."""
    return engine_values(as_graph(derivation, problem))[0]


def environment(derivation: Derivation, problem: Problem) -> dict[str, Any]:
    """The names a formula may use, bound to the forward pass's values in the derivation's notation."""
    notation = derivation.notation
    env: dict[str, Any] = {"S": problem.S}
    env.update({f"n{layer}": n for layer, n in enumerate(derivation.spec.sizes)})
    for name, value in forward_values(derivation, problem).items():
        env[name] = notation.from_engine(kind_of(name), value)
    for layer, linear in enumerate(problem.model.linears, start=1):
        env[f"W{layer}"] = notation.from_engine("W", linear.W)
        env[f"b{layer}"] = notation.from_engine("b", linear.b)
    for layer, norm in enumerate(problem.model.batch_norms, start=1):
        if norm is not None:
            env[f"gamma{layer}"] = notation.from_engine("b", norm.gamma)
            env[f"beta{layer}"] = notation.from_engine("b", norm.beta)
            env["eps"] = norm.eps
    if derivation.penalty is not None:
        env["alpha"] = derivation.penalty.alpha
    if derivation.weighted:
        env["w"] = notation.from_engine("batch", problem.weights[:, None])
    env["Y"] = notation.from_engine("batch", problem.T)
    return env


# ---- the objective as a function of one quantity (forward passes only) -----------------------


def objective(
    derivation: Derivation, problem: Problem, name: str, objective_name: str = "C"
) -> Callable[[np.ndarray], tuple[float, list[np.ndarray]]]:
    """f(value) = the cost C (or ℓ = Σ_s ℓ_s) with the quantity ``name`` (notation layout) set to
    value, and the sides of 0 of every kinked pre-activation."""
    notation, kind = derivation.notation, kind_of(name)

    def to_engine(value: np.ndarray) -> np.ndarray:
        return notation.to_engine(kind, value)

    return graph_objective(as_graph(derivation, problem), name, to_engine, objective_name)


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
        value = problem.model.copy().cost(
            problem.X,
            problem.T,
            derivation.loss,
            training=True,
            rng=np.random.default_rng(problem.mask_seed),
            sample_weight=problem.sample_weight,
            penalty=derivation.penalty,
        )
        return np.asarray(value), None, "the engine's cost"
    if equation.kind == "jacobian" and equation.name.startswith("Jbn"):
        return (
            batch_jacobian(derivation, problem, int(equation.name[3:]), eps),
            None,
            ("the numerical Jacobian of batch norm over the whole batch"),
        )
    if equation.kind == "jacobian":
        layer = problem.model.layers[-1]
        Z = forward_values(derivation, problem)[derivation.pre(derivation.K)]

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


def batch_jacobian(derivation: Derivation, problem: Problem, layer: int, eps: float) -> np.ndarray:
    """∂U_l/∂Z_l of layer l's batch norm (training mode) by central differences over the whole
    batch, as an S × n × S × n array (n × S × n × S in the column notation)."""
    norm = problem.model.batch_norms[layer - 1]
    Z = forward_values(derivation, problem)[f"Z{layer}"]
    S, n = Z.shape

    def f(z: np.ndarray) -> np.ndarray:
        return norm.forward(z.reshape(S, n), TRAINING)[0].reshape(-1)

    J = numerical_jacobian(f, Z.reshape(-1), eps).reshape(S, n, S, n)
    return J if derivation.notation.samples_are_rows else J.transpose(1, 0, 3, 2)


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
    return Check(passed, rel, max_abs, method, kinks, element, absolute=passed and rel > rtol)
