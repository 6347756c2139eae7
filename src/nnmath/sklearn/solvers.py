"""The stochastic solvers and scikit-learn's learning-rate rules, on nnmath's optimizers.

solver      optimizer (nnmath.optimizers unless named here)
sgd         SGD(η₀) when momentum = 0; SGD(η₀, μ, nesterov) with a fixed rate; VelocitySGD(η₀, μ,
            nesterov) when the rate changes between epochs ('invscaling', 'adaptive')
adam        Adam(η₀, β₁, β₂, ε)
rmsprop     RMSprop(η₀, ε)              (nnmath extra)
adamw       AdamW(η₀, β₁, β₂, ε)        (nnmath extra)

η₀ is ``learning_rate_init``. The rate rules are scikit-learn's (``learning_rate``, sgd only, as
there): 'constant' keeps η₀; 'invscaling' sets η = η₀ / (t + 1)^power_t at the end of each epoch,
t the number of samples seen so far; 'adaptive' divides η by 5 each time the stopping rule fires,
and stops once η ≤ 10⁻⁶. nnmath's schedules ('cosine', 'step', 'exponential') set η at the start
of each epoch, for any stochastic solver.

Adam's ε: nnmath's (and PyTorch's) update adds ε to √v̂ = √v / √(1 − β₂ᵗ), scikit-learn's to √v;
the two agree once √(1 − β₂ᵗ) ≈ 1, and differ only where √v is as small as ε.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnmath.optimizers import SGD, Adam, AdamW, Optimizer, RMSprop


class VelocitySGD(Optimizer):
    """scikit-learn's SGD with momentum, where the velocity keeps the rate of the step it was made in.

    v ← μ v − η g
    θ ← θ + v                (classical momentum)
    θ ← θ + μ v − η g        (Nesterov)

    With a fixed η this is nnmath's SGD (v = −η v_SGD); when η changes between epochs the old
    velocity carries the old η, as in scikit-learn.
    """

    name = "velocity-sgd"

    def __init__(self, learning_rate: float, momentum: float = 0.9, nesterov: bool = True) -> None:
        super().__init__(learning_rate)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.slots = ("v",)

    def apply(
        self, theta: np.ndarray, g: np.ndarray, state: list[np.ndarray], work: np.ndarray
    ) -> None:
        """scikit-learn's momentum step on θ in place: v ← μ v − η g, then θ ← θ + μ v − η g
        (Nesterov) or θ ← θ + v; ``work`` is scratch shaped like θ."""
        (v,) = state
        v *= self.momentum
        v -= np.multiply(g, self.learning_rate, out=work)  # v ← μ v − η g
        if self.nesterov:
            theta += np.multiply(v, self.momentum, out=work)  # θ ← θ + μ v …
            theta -= np.multiply(g, self.learning_rate, out=work)  # … − η g
        else:
            theta += v  # θ ← θ + v


def make_optimizer(params: dict[str, Any]) -> Optimizer:
    """The optimizer of a stochastic ``solver``, from the estimator's parameters (see above)."""
    solver, rate = params["solver"], float(params["learning_rate_init"])
    beta1, beta2, eps = params["beta_1"], params["beta_2"], params["epsilon"]
    if solver == "adam":
        return Adam(rate, beta1=beta1, beta2=beta2, eps=eps)
    if solver == "adamw":
        return AdamW(rate, beta1=beta1, beta2=beta2, eps=eps)
    if solver == "rmsprop":
        return RMSprop(rate, eps=eps)
    momentum, nesterov = float(params["momentum"]), bool(params["nesterovs_momentum"])
    if momentum == 0:
        return SGD(rate)
    if params["learning_rate"] in ("invscaling", "adaptive"):
        return VelocitySGD(rate, momentum, nesterov)
    return SGD(rate, momentum=momentum, nesterov=nesterov)


def invscaling(learning_rate_init: float, power_t: float, samples_seen: int) -> float:
    """η = η₀ / (t + 1)^power_t, t the number of training samples seen (scikit-learn's rule)."""
    return float(learning_rate_init) / (samples_seen + 1) ** power_t


def adaptive_rules(params: dict[str, Any]) -> bool:
    """Whether the stopping rule lowers the rate instead of stopping: sgd with 'adaptive'."""
    return params["solver"] == "sgd" and params["learning_rate"] == "adaptive"


def trigger_stopping(optimizer: Optimizer, adaptive: bool, message: str, verbose: bool) -> bool:
    """scikit-learn's ``trigger_stopping``: stop, or (adaptive) divide η by 5 until η ≤ 10⁻⁶."""
    if not adaptive:
        if verbose:
            print(message + " Stopping.")
        return True
    if optimizer.learning_rate <= 1e-6:
        if verbose:
            print(message + " Learning rate too small. Stopping.")
        return True
    optimizer.learning_rate /= 5.0
    if verbose:
        print(message + f" Setting learning rate to {optimizer.learning_rate:f}")
    return False
