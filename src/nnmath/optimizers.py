"""Optimizers: rules that move parameters against their gradients, from simple to complex.

Symbols used in every docstring below: θ a parameter array, g its gradient, η the learning rate,
λ the weight decay, t the number of steps taken (t = 1 on the first step); squares, square roots
and divisions of arrays are elementwise.

Each rule is torch.optim's, term by term, with torch's defaults where both have one (the tests
compare against torch to 1e-12): what a PyTorch user knows carries over unchanged.

The common interface:

- ``step(params, grads)`` updates the arrays of ``params`` in place from the matching ``grads``
  (neither list is reallocated, the gradients are not modified).
- ``learning_rate`` is a plain attribute: a schedule may set it between steps.
- State (momentum buffers, moment estimates) is created on the first step with the shape and dtype
  of each parameter, so float32 parameters keep float32 state and are never upcast.
- ``state_dict()`` returns flat keys ``"<slot>.<i>"`` (slot ``"v"``, ``"m"``, ... of parameter i)
  plus ``"t"`` and ``"learning_rate"``: plain NumPy arrays and numbers, ready for ``np.savez``.
  ``load_state_dict`` restores them, so training resumed from a checkpoint continues
  bit-identically.
- ``hyperparameters()`` returns the registry name and the constructor arguments:
  ``make_optimizer(**optimizer.hyperparameters())`` builds an equal, fresh optimizer.

Each rule is written once, as ``apply(theta, g, state, work)`` on arrays of any shape, so the same
lines serve ``step`` (one call per parameter array) and the fast path's ``FlatUpdate`` (one call on
the vector that holds every parameter, whose views the optimizer's state arrays become): a step
then costs one NumPy call per formula, not one per formula and array. Every formula is computed
in place into the state or the scratch array (no temporaries), in the parameters' dtype.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

import numpy as np

from nnmath.errors import ModelFileError, ShapeError, SpecError, WrongTypeError

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "AdamW",
    "FlatUpdate",
    "Optimizer",
    "RMSprop",
    "clip_grad_norm",
    "make_optimizer",
]


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise WrongTypeError(f"optimizer {name} must be a number, got {value!r}")


def _check_at_least(name: str, value: float, low: float) -> float:
    """Return ``value`` as a float, or raise SpecError unless low ≤ value."""
    _check_number(name, value)
    if not value >= low:  # also rejects NaN
        raise SpecError(f"optimizer {name} must be >= {low}, got {value!r}")
    return float(value)


def _check_beta(name: str, value: float) -> float:
    """Return ``value`` as a float, or raise SpecError unless 0 ≤ value < 1."""
    _check_number(name, value)
    if not 0.0 <= value < 1.0:
        raise SpecError(f"optimizer {name} must be in [0, 1), got {value!r}")
    return float(value)


class Optimizer:
    """The shared machinery: argument checks, lazy state, state_dict and hyperparameters.

    A subclass sets ``name`` (its registry name) and ``slots`` (the names of its per-parameter
    state arrays) and implements ``apply(theta, g, state, work)``: one step of its rule on θ in
    place, from the gradient g, the state arrays of θ (one per slot, in the order of ``slots``)
    and a scratch array shaped like θ; ``self.t`` already counts the step when ``apply`` runs.
    """

    name: ClassVar[str]

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = _check_at_least("learning_rate", learning_rate, 0.0)
        self.initial_learning_rate = self.learning_rate
        self.slots: tuple[str, ...] = ()
        self.t = 0
        self.state: dict[str, list[np.ndarray]] = {}
        # Scratch arrays, one per parameter, reused every step to hold intermediate terms (not
        # state: never saved, and created again after a load).
        self._work: list[np.ndarray] = []

    def step(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """Update each array of ``params`` in place from the gradient of the same index.

        The first step creates the state, zeros shaped and typed like the parameters.
        """
        self._check_arrays(params, grads)
        if not self._work:
            self._work = [np.empty_like(theta) for theta in params]
            if not self.state:
                self.state = {
                    slot: [np.zeros_like(theta) for theta in params] for slot in self.slots
                }
        self.t += 1
        for i, (theta, g) in enumerate(zip(params, grads, strict=True)):
            self.apply(theta, g, [self.state[slot][i] for slot in self.slots], self._work[i])

    def apply(
        self, theta: np.ndarray, g: np.ndarray, state: list[np.ndarray], work: np.ndarray
    ) -> None:
        """One step of the rule on θ in place (see the class docstring)."""
        raise NotImplementedError

    def _check_arrays(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """Raise ShapeError unless params, grads and any existing state match one to one."""
        if len(params) != len(grads):
            raise ShapeError(f"{len(params)} parameter arrays but {len(grads)} gradient arrays")
        for i, (theta, g) in enumerate(zip(params, grads, strict=True)):
            if theta.shape != g.shape:
                raise ShapeError(
                    f"gradient {i} has shape {g.shape}, its parameter has shape {theta.shape}"
                )
        for slot, arrays in self.state.items():
            if len(arrays) != len(params):
                raise ShapeError(
                    f"optimizer state holds {len(arrays)} arrays per slot, "
                    f"but step was given {len(params)} parameters"
                )
            for i, (state, theta) in enumerate(zip(arrays, params, strict=True)):
                if state.shape != theta.shape or state.dtype != theta.dtype:
                    raise ShapeError(
                        f"optimizer state {slot}.{i} is {state.dtype} {state.shape}, "
                        f"its parameter is {theta.dtype} {theta.shape}"
                    )

    def state_dict(self) -> dict[str, Any]:
        """Copies of the state: ``"t"``, ``"learning_rate"`` and ``"<slot>.<i>"`` arrays."""
        state: dict[str, Any] = {"t": self.t, "learning_rate": self.learning_rate}
        for slot, arrays in self.state.items():
            for i, array in enumerate(arrays):
                state[f"{slot}.{i}"] = array.copy()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned (also as read back from an .npz file)."""
        kind = type(self).__name__
        for key in ("t", "learning_rate"):
            if key not in state:
                raise ModelFileError(f"{kind} state lacks {key!r}")
        t = int(state["t"])
        arrays = {key: state[key] for key in state if key not in ("t", "learning_rate")}
        n = sum(key.startswith(f"{self.slots[0]}.") for key in arrays) if self.slots else 0
        expected = [f"{slot}.{i}" for slot in self.slots for i in range(n)]
        if set(arrays) != set(expected) or (t > 0 and self.slots and n == 0):
            raise ModelFileError(
                f"{kind} state after {t} steps should hold 't', 'learning_rate' and "
                f"'<slot>.<i>' arrays for each slot in {list(self.slots)}; got {sorted(state)}"
            )
        self.t = t
        self.learning_rate = float(state["learning_rate"])
        self.state = {}  # an empty state is created again on the next step
        if n:
            self.state = {
                slot: [np.array(arrays[f"{slot}.{i}"], copy=True) for i in range(n)]
                for slot in self.slots
            }
        self._work = []

    def hyperparameters(self) -> dict[str, Any]:
        """The registry name and the constructor arguments (learning_rate as constructed)."""
        names = inspect.signature(type(self)).parameters
        arguments = {name: getattr(self, name) for name in names}
        arguments["learning_rate"] = self.initial_learning_rate
        return {"name": self.name, **arguments}

    def __repr__(self) -> str:
        arguments = self.hyperparameters()
        del arguments["name"]
        listed = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
        return f"{type(self).__name__}({listed})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum, Nesterov momentum and L2 decay.

    g ← g + λ θ
    v ← g                 on the first step (momentum μ > 0)
    v ← μ v + g           on later steps
    θ ← θ − η v           (μ > 0, classical momentum)
    θ ← θ − η (g + μ v)   (μ > 0, Nesterov)
    θ ← θ − η g           (μ = 0)
    """

    name = "sgd"

    def __init__(
        self,
        learning_rate: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(learning_rate)
        self.momentum = _check_at_least("momentum", momentum, 0.0)
        self.nesterov = bool(nesterov)
        self.weight_decay = _check_at_least("weight_decay", weight_decay, 0.0)
        if self.nesterov and self.momentum == 0.0:
            raise SpecError("Nesterov momentum needs momentum > 0, e.g. momentum=0.9")
        self.slots = ("v",) if self.momentum else ()

    def apply(
        self, theta: np.ndarray, g: np.ndarray, state: list[np.ndarray], work: np.ndarray
    ) -> None:
        """One SGD step on θ in place: g ← g + λθ, then θ ← θ − η g, or with momentum v ← μ v + g
        and θ ← θ − η v (Nesterov: θ − η (g + μ v)); ``work`` is scratch shaped like θ."""
        eta = self.learning_rate
        if self.weight_decay:
            np.multiply(theta, self.weight_decay, out=work)
            g = np.add(work, g, out=work)  # g ← g + λ θ
        if not self.momentum:
            theta -= np.multiply(g, eta, out=work)  # θ ← θ − η g
            return
        (v,) = state
        if self.t == 1:
            np.copyto(v, g)  # v ← g
        else:
            v *= self.momentum
            v += g  # v ← μ v + g
        if self.nesterov:  # θ ← θ − η (g + μ v), as θ − η g − η μ v
            theta -= np.multiply(g, eta, out=work)
            theta -= np.multiply(v, eta * self.momentum, out=work)
        else:
            theta -= np.multiply(v, eta, out=work)  # θ ← θ − η v


class RMSprop(Optimizer):
    """RMSprop: divide the step by a running root mean square of the gradient.

    g ← g + λ θ
    v ← α v + (1 − α) g²
    b ← μ b + g / (√v + ε)     (momentum μ > 0; b starts at 0)
    θ ← θ − η b                (μ > 0)
    θ ← θ − η g / (√v + ε)     (μ = 0)
    """

    name = "rmsprop"

    def __init__(
        self,
        learning_rate: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(learning_rate)
        self.alpha = _check_at_least("alpha", alpha, 0.0)
        self.eps = _check_at_least("eps", eps, 0.0)
        self.momentum = _check_at_least("momentum", momentum, 0.0)
        self.weight_decay = _check_at_least("weight_decay", weight_decay, 0.0)
        self.slots = ("v", "b") if self.momentum else ("v",)

    def apply(
        self, theta: np.ndarray, g: np.ndarray, state: list[np.ndarray], work: np.ndarray
    ) -> None:
        """One RMSprop step on θ in place: v ← α v + (1 − α) g², θ ← θ − η g / (√v + ε) (with
        momentum through b ← μ b + g / (√v + ε)); ``work`` is scratch shaped like θ."""
        if self.weight_decay:
            g = g + self.weight_decay * theta  # g ← g + λ θ (a new array: g is read twice)
        v = state[0]
        np.multiply(g, g, out=work)
        work *= 1.0 - self.alpha
        v *= self.alpha
        v += work  # v ← α v + (1 − α) g²
        np.sqrt(v, out=work)
        work += self.eps
        np.divide(g, work, out=work)  # g / (√v + ε)
        if self.momentum:
            b = state[1]
            b *= self.momentum
            b += work  # b ← μ b + g / (√v + ε)
            theta -= np.multiply(b, self.learning_rate, out=work)  # θ ← θ − η b
        else:
            theta -= np.multiply(work, self.learning_rate, out=work)  # θ ← θ − η g / (√v + ε)


class Adam(Optimizer):
    """Adam with L2 weight decay coupled into the gradient (torch.optim.Adam).

    g ← g + λ θ
    m ← β₁ m + (1 − β₁) g
    v ← β₂ v + (1 − β₂) g²
    θ ← θ − η m̂ / (√v̂ + ε),   m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
    """

    name = "adam"

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(learning_rate)
        self.beta1 = _check_beta("beta1", beta1)
        self.beta2 = _check_beta("beta2", beta2)
        self.eps = _check_at_least("eps", eps, 0.0)
        self.weight_decay = _check_at_least("weight_decay", weight_decay, 0.0)
        self.slots = ("m", "v")

    def apply(
        self, theta: np.ndarray, g: np.ndarray, state: list[np.ndarray], work: np.ndarray
    ) -> None:
        """One Adam step on θ in place: g ← g + λθ (coupled decay), then the moments and
        θ ← θ − η m̂ / (√v̂ + ε); ``work`` is scratch shaped like θ."""
        if self.weight_decay:
            g = g + self.weight_decay * theta  # g ← g + λ θ (a new array: g is read twice)
        self._moments_and_step(theta, g, state, work)

    def _moments_and_step(
        self, theta: np.ndarray, g: np.ndarray, state: list[np.ndarray], work: np.ndarray
    ) -> None:
        """The moment updates and the step, shared by Adam and AdamW."""
        m, v = state
        m *= self.beta1
        m += np.multiply(g, 1.0 - self.beta1, out=work)  # m ← β₁ m + (1 − β₁) g
        np.multiply(g, g, out=work)
        work *= 1.0 - self.beta2
        v *= self.beta2
        v += work  # v ← β₂ v + (1 − β₂) g²
        # θ ← θ − η/(1 − β₁ᵗ) · m / (√v / c + ε) with c = √(1 − β₂ᵗ) (torch's grouping), computed
        # as θ − (η c/(1 − β₁ᵗ)) · m / (√v + ε c): the same number, one pass fewer.
        c = math.sqrt(1.0 - self.beta2**self.t)
        np.sqrt(v, out=work)
        work += self.eps * c
        np.divide(m, work, out=work)
        theta -= np.multiply(work, self.learning_rate * c / (1.0 - self.beta1**self.t), out=work)


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW): the decay skips the moments.

    θ ← θ (1 − η λ)
    m ← β₁ m + (1 − β₁) g
    v ← β₂ v + (1 − β₂) g²
    θ ← θ − η m̂ / (√v̂ + ε),   m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
    """

    name = "adamw"

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(learning_rate, beta1, beta2, eps, weight_decay)

    def apply(
        self, theta: np.ndarray, g: np.ndarray, state: list[np.ndarray], work: np.ndarray
    ) -> None:
        """One AdamW step on θ in place: θ ← θ (1 − η λ) (decoupled decay), then Adam's moments and
        θ ← θ − η m̂ / (√v̂ + ε); ``work`` is scratch shaped like θ."""
        if self.weight_decay:
            theta *= 1.0 - self.learning_rate * self.weight_decay  # θ ← θ (1 − η λ)
        self._moments_and_step(theta, g, state, work)


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": SGD,
    "momentum": partial(SGD, momentum=0.9),
    "nesterov": partial(SGD, momentum=0.9, nesterov=True),
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}


def make_optimizer(name: str, **kwargs: Any) -> Optimizer:
    """Build the optimizer registered as ``name`` in OPTIMIZERS with the given arguments."""
    if name not in OPTIMIZERS:
        raise SpecError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    factory = OPTIMIZERS[name]
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as error:
        accepted = ", ".join(inspect.signature(factory).parameters)
        raise SpecError(f"optimizer {name!r} takes {accepted}: {error}") from None
    return factory(**kwargs)


class FlatUpdate:
    """``optimizer``'s step on one vector θ that holds every parameter, as one ``apply`` call.

    ``views(array)`` gives the parameter arrays as views of a vector shaped like θ (the caller's
    layout); ``theta`` and ``grad`` are those vectors. The optimizer's state becomes one vector per
    slot, and its per-parameter state arrays views of it: ``step(params, grads)``,
    ``state_dict`` and ``load_state_dict`` see the very numbers this updates, and a state already
    there (a resumed run's) is copied in. Elementwise rules give each entry the value the
    per-array ``step`` would (tests/test_optimizers.py checks it bit for bit).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        theta: np.ndarray,
        grad: np.ndarray,
        views: Callable[[np.ndarray], list[np.ndarray]],
    ) -> None:
        self.optimizer, self.theta, self.grad = optimizer, theta, grad
        self.work = np.empty_like(theta)
        self.state = [np.zeros_like(theta) for _ in optimizer.slots]
        for slot, vector in zip(optimizer.slots, self.state, strict=True):
            old = optimizer.state.get(slot)
            parts = views(vector)
            if old:
                for part, saved in zip(parts, old, strict=True):
                    np.copyto(part, saved)
            optimizer.state[slot] = parts
        optimizer._work = views(np.empty_like(theta))

    def step(self) -> None:
        """θ ← the optimizer's rule applied to θ and its gradient g (both whole vectors)."""
        self.optimizer.t += 1
        self.optimizer.apply(self.theta, self.grad, self.state, self.work)


def clip_grad_norm(grads: Sequence[np.ndarray], max_norm: float) -> float:
    """Scale all gradients in place so that their global L2 norm is at most ``max_norm``.

    ‖g‖ = √(Σᵢ ‖gᵢ‖²) over all arrays;  c = max_norm / (‖g‖ + 10⁻⁶);  gᵢ ← c gᵢ if c < 1.

    The 10⁻⁶ is torch.nn.utils.clip_grad_norm_'s. Returns ‖g‖ before clipping.
    """
    total_norm = math.sqrt(sum(float(np.linalg.norm(g)) ** 2 for g in grads))
    clip_coef = max_norm / (total_norm + 1e-6)
    if clip_coef < 1.0:
        for g in grads:
            g *= clip_coef
    return total_norm
