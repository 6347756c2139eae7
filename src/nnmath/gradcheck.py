"""Numerical gradients and Jacobians, relative errors, and the kink-aware gradient check.

Central differences in float64: ∂f/∂θ_i ≈ (f(θ + ε e_i) − f(θ − ε e_i)) / 2ε, with truncation error
O(ε²) and round-off O(u/ε) (u ≈ 1.1e-16), so ε = 1e-5 balances them near 1e-11.

A coordinate whose perturbation ±ε moves any pre-activation of a kinked function (ReLU, leaky ReLU)
across its kink at 0 does not have a two-sided derivative that the difference quotient can see; such
coordinates are reported as kinks and left out of the error, never counted as failures.

The error of one parameter is the norm-wise relative error ‖g − ĝ‖ / (‖g‖ + ‖ĝ‖) over its
non-kink coordinates; a parameter passes when that is at most ``rtol`` or the largest absolute
difference is at most ``atol`` (a gradient that is zero up to round-off has no meaningful relative
error).

Batch norm and dropout are checked in training mode by default, where the gradients are used: batch
norm normalizes with the batch's own statistics (so perturbing one sample moves every output of the
batch, and the differences see that), and dropout's masks come from a generator seeded afresh for
every evaluation of the cost, so every evaluation uses the same masks and the check is exact.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nnmath.backend import convert, namespace, to_numpy
from nnmath.errors import SpecError, WrongTypeError
from nnmath.layers import EVALUATION, Elementwise, Mode
from nnmath.losses import Loss, as_targets
from nnmath.network import MLP, Gradients
from nnmath.pairing import check_pair, default_loss_name
from nnmath.spec import NetworkSpec

__all__ = [  # default_loss_name lives in pairing; callers have imported it from here
    "DEFAULT_ATOL",
    "DEFAULT_EPS",
    "DEFAULT_RTOL",
    "GradcheckReport",
    "ParameterCheck",
    "check_gradients",
    "check_size",
    "check_steps",
    "default_loss_name",
    "kink_pattern",
    "numerical_gradient",
    "numerical_jacobian",
    "random_problem",
    "relative_error",
]

DEFAULT_EPS = 1e-5
DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-9
MAX_EPS = 0.1
"""A larger step measures a secant, not the derivative."""
MAX_SAMPLES = 100_000
"""Samples a check may draw: more says nothing more about a formula's correctness."""
WORK_BUDGET = 1e12
"""Multiply-adds a check may take. Central differences evaluate the cost twice per parameter and
input entry, each evaluation about 2·S·P: 784-128relu-10softmax at S = 8 is 3e11 (under a minute);
3-100000000relu-3 would be 1e19 and is refused at once."""


def numerical_gradient(
    f: Callable[[], float], x: np.ndarray, eps: float = DEFAULT_EPS
) -> np.ndarray:
    """Central differences of the scalar f() with respect to x, which is perturbed in place."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, out = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        f_plus = f()
        flat[i] = saved - eps
        f_minus = f()
        flat[i] = saved
        out[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def numerical_jacobian(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, eps: float = DEFAULT_EPS
) -> np.ndarray:
    """Central-difference Jacobian J[i, j] = ∂f_i/∂x_j of f: ℝⁿ → ℝᵐ (x flattened row-major)."""
    x = np.array(x, dtype=np.float64)
    flat = x.reshape(-1)
    columns = []
    for j in range(flat.size):
        saved = flat[j]
        flat[j] = saved + eps
        # np.array copies: f may return x itself (identity), which the next step perturbs
        f_plus = np.array(f(x), dtype=np.float64).reshape(-1)
        flat[j] = saved - eps
        f_minus = np.array(f(x), dtype=np.float64).reshape(-1)
        flat[j] = saved
        columns.append((f_plus - f_minus) / (2.0 * eps))
    return np.stack(columns, axis=1)


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """‖g − ĝ‖ / (‖g‖ + ‖ĝ‖), and 0 when both are exactly zero."""
    denominator = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    return 0.0 if denominator == 0.0 else float(np.linalg.norm(analytic - numeric)) / denominator


def kink_pattern(model: MLP, X: np.ndarray, mode: Mode = EVALUATION) -> list[np.ndarray]:
    """Which side of 0 every pre-activation of a kinked activation lies on, for the batch X."""
    _, caches = model.forward(X, check=False, training=mode.training, rng=mode.rng)
    return [
        cache[0] > 0
        for layer, cache in zip(model.layers, caches, strict=True)
        if isinstance(layer, Elementwise) and layer.activation.kinked
    ]


@dataclass(frozen=True)
class ParameterCheck:
    """The comparison of one parameter's analytic gradient with central differences."""

    name: str
    shape: tuple[int, ...]
    relative_error: float
    max_abs_error: float
    kinks: int
    passed: bool


@dataclass(frozen=True)
class GradcheckReport:
    """Every parameter's check, the settings used, and whether all passed."""

    spec: str
    loss: str
    dtype: str
    eps: float
    rtol: float
    atol: float
    checks: list[ParameterCheck] = field(default_factory=list)
    mode: str = "training mode"

    @property
    def passed(self) -> bool:
        """True when every parameter's check passed."""
        return all(check.passed for check in self.checks)

    @property
    def worst_relative_error(self) -> float:
        """The largest relative error over the parameters."""
        return max(check.relative_error for check in self.checks)

    def to_dict(self) -> dict:
        """The report as plain data (JSON's), with ``passed``."""
        return {**asdict(self), "passed": self.passed}

    def _repr_markdown_(self) -> str:
        """The report as a notebook shows it: a Markdown table, one row per parameter."""
        rows = [
            f"**Gradient check of {self.spec} with {self.loss}**: "
            + ("all gradients match" if self.passed else "gradient MISMATCH")
            + f" (central differences, ε = {self.eps:g}; pass: rel. error ≤ {self.rtol:g} or "
            f"max abs error ≤ {self.atol:g})",
            "",
            "| parameter | shape | rel. error | max abs error | kinks | result |",
            "| --- | --- | ---: | ---: | ---: | --- |",
        ]
        for c in self.checks:
            shape = " × ".join(map(str, c.shape))
            rows.append(
                f"| `{c.name}` | {shape} | {c.relative_error:.2e} | {c.max_abs_error:.2e} | "
                f"{c.kinks} | {'✓' if c.passed else '✗ MISMATCH'} |"
            )
        return "\n".join(rows)

    def format(self) -> str:
        """A table a person can read: one row per parameter."""
        lines = [
            f"gradient check of {self.spec} with {self.loss} ({self.dtype}, {self.mode}, "
            f"central differences, eps={self.eps:g})",
            f"{'parameter':<11}{'shape':<12}{'rel. error':>12}{'max abs err':>13}{'kinks':>7}  result",
        ]
        for c in self.checks:
            shape = "×".join(map(str, c.shape))
            lines.append(
                f"{c.name:<11}{shape:<12}{c.relative_error:>12.2e}{c.max_abs_error:>13.2e}"
                f"{c.kinks:>7}  {'ok' if c.passed else 'MISMATCH'}"
            )
        verdict = "all gradients match" if self.passed else "gradient MISMATCH"
        lines.append(
            f"{verdict} (pass: rel. error ≤ {self.rtol:g} or max abs error ≤ {self.atol:g})"
        )
        return "\n".join(lines)


def check_size(spec: NetworkSpec, samples: Any) -> None:
    """Refuse, before anything is built, a check on ``samples`` samples of ``spec`` that is not a
    whole number of samples from 1 to MAX_SAMPLES or whose central differences would take more
    than WORK_BUDGET multiply-adds (which also bounds its memory)."""
    if isinstance(samples, bool) or not isinstance(samples, numbers.Integral):
        raise WrongTypeError(f"the number of samples must be a whole number, got {samples!r}")
    if not 1 <= samples <= MAX_SAMPLES:
        raise SpecError(f"the number of samples must be from 1 to {MAX_SAMPLES:,}, got {samples}")
    P = spec.parameter_count
    work = 4.0 * (P + samples * spec.n_in) * samples * P
    if work > WORK_BUDGET:
        raise SpecError(
            f"checking {spec} ({P:,} parameters) on {samples} samples by central differences "
            f"would take about {work:.1e} multiply-adds, more than the {WORK_BUDGET:.0e} a check "
            "may take; check a narrower network (the formulas are the same for every width) or "
            "fewer samples"
        )


def check_steps(eps: Any, rtol: Any, atol: Any) -> None:
    """Refuse a finite-difference step outside (0, MAX_EPS] and tolerances that are not finite
    and ≥ 0: a step of 0 divides by zero, a negative one flips every difference."""
    for name, value in (("eps", eps), ("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise WrongTypeError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise SpecError(f"{name} must be finite and ≥ 0, got {value}")
    if not 0 < eps <= MAX_EPS:
        raise SpecError(
            f"eps, the finite-difference step, must be > 0 and at most {MAX_EPS:g}, got {eps:g}; "
            f"the default {DEFAULT_EPS:g} balances truncation and round-off in float64"
        )


def check_gradients(
    model: MLP,
    X: np.ndarray,
    T: np.ndarray,
    loss: Loss,
    *,
    eps: float = DEFAULT_EPS,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    training: bool = True,
    seed: int = 0,
) -> GradcheckReport:
    """Compare the backward pass of ``model`` with central differences of its cost, in float64.

    Checks ∂C/∂W⁽ˡ⁾, ∂C/∂b⁽ˡ⁾ for every layer, ∂C/∂γ⁽ˡ⁾, ∂C/∂β⁽ˡ⁾ for every batch norm and ∂C/∂X;
    the model is copied to float64 first and left unchanged. ``training`` chooses the mode (batch
    statistics and dropout masks drawn from a generator seeded with ``seed``, the same masks for
    every evaluation; or running statistics and no dropout). A model whose parameters belong to
    another Array API library (PyTorch, array-api-strict, ...) runs its backward pass in that
    library, in float64; the differences are taken in NumPy.
    """
    check_steps(eps, rtol, atol)
    check_pair(model.output, model.n_out, loss)
    xp = namespace(model.linears[0].W)
    model, X, T = _in_float64(model, X, T)

    def mode() -> Mode:  # a fresh generator each time: the same dropout masks for every cost
        return Mode(training, np.random.default_rng(seed))

    # the check's own copy: its running statistics may move, the cost in training mode does not
    # depend on them; evaluation mode reads them, and no evaluation-mode pass changes them
    _, grads = _analytic_gradients(model, X, T, loss, xp, mode())
    reference = kink_pattern(model, X, mode())

    def cost() -> float:
        m = mode()
        return model.cost(X, T, loss, training=m.training, rng=m.rng)

    def crossed() -> bool:
        pattern = kink_pattern(model, X, mode())
        return any(np.any(a != b) for a, b in zip(pattern, reference, strict=True))

    checks = []
    for name, param, analytic in zip(
        [*model.parameter_names(), "X"],
        [*model.parameters(), X],
        [*grads.flat(), grads.X],
        strict=True,
    ):
        numeric, kink = _differences(param, cost, crossed, eps)
        checks.append(_compare(name, analytic, numeric, kink, rtol, atol))
    return GradcheckReport(
        str(model.spec), loss.name, "float64", eps, rtol, atol, checks,
        mode=_mode_text(model, training, seed),
    )  # fmt: skip


def _in_float64(model: MLP, X: Any, T: Any) -> tuple[MLP, np.ndarray, np.ndarray]:
    """A float64 copy of the model, and X, T (of any Array API library) checked against it and
    converted to float64 NumPy arrays, T as (S, n_out) targets."""
    model = model.astype(np.float64)
    X = np.asarray(to_numpy(X))
    model.check_input(X)
    check_size(model.spec, int(X.shape[0]))
    X = X.astype(np.float64)
    return model, X, as_targets(to_numpy(T), model.n_out, np.float64)


def _mode_text(model: MLP, training: bool, seed: int) -> str:
    """The mode the check ran in, as its report says it."""
    text = "training mode" if training else "evaluation mode"
    if training and any(d is not None for d in model.dropouts):
        text += f", dropout masks from seed {seed}"
    return text


def _differences(
    param: np.ndarray, cost: Callable[[], float], crossed: Callable[[], bool], eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of cost() over each entry of ``param`` (perturbed in place and restored),
    and which entries moved a kinked pre-activation across its kink."""
    numeric = np.zeros_like(param)
    kink = np.zeros(param.shape, dtype=bool)
    flat, flat_numeric, flat_kink = param.reshape(-1), numeric.reshape(-1), kink.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        values, moved = [], False
        for shift in (eps, -eps):
            flat[i] = saved + shift
            values.append(cost())
            moved = moved or crossed()
        flat[i] = saved
        flat_numeric[i] = (values[0] - values[1]) / (2.0 * eps)
        flat_kink[i] = moved
    return numeric, kink


def _compare(
    name: str, analytic: np.ndarray, numeric: np.ndarray, kink: np.ndarray, rtol: float, atol: float
) -> ParameterCheck:
    """One parameter's verdict over its non-kink entries."""
    keep = ~kink
    rel = relative_error(analytic[keep], numeric[keep])
    abs_err = float(np.max(np.abs(analytic[keep] - numeric[keep]), initial=0.0))
    ok = math.isfinite(rel) and (rel <= rtol or abs_err <= atol)
    return ParameterCheck(name, tuple(numeric.shape), rel, abs_err, int(kink.sum()), ok)


def _analytic_gradients(
    model: MLP, X: np.ndarray, T: np.ndarray, loss: Loss, xp: Any, mode: Mode
) -> tuple[float, Gradients]:
    """The backward pass of the float64 NumPy ``model``, run in the namespace ``xp``."""
    options = {"training": mode.training, "rng": mode.rng}
    if xp is np:
        return model.loss_and_gradients(X, T, loss, **options)
    value, grads = convert(model, xp).loss_and_gradients(
        xp.asarray(X), xp.asarray(T), loss, **options
    )
    back = {
        name: [to_numpy(g) for g in getattr(grads, name)] for name in ("W", "b", "gamma", "beta")
    }
    return value, Gradients(X=to_numpy(grads.X), **back)


def random_problem(
    model: MLP, loss: Loss, n_samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs X ~ N(0, 1) and targets that suit the loss: one-hot, 0/1, or N(0, 1)."""
    X = rng.normal(size=(n_samples, model.n_in))
    if loss.name == "cross-entropy":
        T = np.eye(model.n_out)[rng.integers(0, model.n_out, size=n_samples)]
    elif loss.name == "binary-cross-entropy":
        T = rng.integers(0, 2, size=(n_samples, model.n_out)).astype(np.float64)
    else:
        T = rng.normal(size=(n_samples, model.n_out))
    return X, T
