"""The mistakes published derivations make, and how ``nnmath check`` tells them apart.

A user's value U of a quantity whose true value is G is compared, as a whole, with c·V and c·Vᵀ
for V among G itself and the values a backward pass gives when it makes a known mistake (a
:class:`Variant`):

- one layer's activation derivative left out (the ReLU mask, σ′, the softmax Jacobian);
- the softmax Jacobian replaced by its diagonal ŷ ⊙ (1 − ŷ) (notes 001 §1.1);
- the fused softmax + cross-entropy gradient written ((T ⊙ Ŷ)11ᵀ − T)/S (notes 002 §2a);

and the constant c is explained by a convention where one explains it (:func:`explain_factor`):
−1 (a flipped sign), S or 1/S (a missing or doubled 1/S), 2 or ½ (the ½ of the squared error),
the number of outputs (a mean where the loss sums, or a sum where it means), ln b (the log base),
or a product of two of them. Each explanation speaks about the loss at hand.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.derivation.document import Derivation
from nnmath.derivation.graph import engine_values, kind_of, layer_kind, masks, named_layers, run
from nnmath.derivation.verify import (
    Problem,
    as_graph,
    central_differences,
    environment,
    objective,
)
from nnmath.gradcheck import DEFAULT_EPS, relative_error
from nnmath.layers import Softmax
from nnmath.losses import cost_gradient, fuse
from nnmath.penalties import penalty_scale

MATCH_RTOL = 1e-6


# ---- the true values, and the ones a backward pass with a known mistake gives -----------------


@dataclass(frozen=True)
class Variant:
    """A known mistake in the backward pass: ``kind`` at layer ``layer``.

    kinds: ``skip`` (the activation's derivative left out), ``diagonal`` (a softmax Jacobian
    replaced by its diagonal ŷ(1 − ŷ)), ``row-sum`` (the fused gradient ((T ⊙ Ŷ)11ᵀ − T)/S),
    ``no-penalty`` (the penalty's gradient left out of every dW; layer 0: all layers).
    """

    kind: str
    layer: int


def _output(layer: Any, cache: Any) -> np.ndarray:
    """An activation layer's output from its cache: (Z, A) elementwise, A for softmax."""
    return cache if isinstance(layer, Softmax) else cache[1]


def _through_activation(
    activation: Any, cache: Any, dA: np.ndarray, kind: str | None
) -> np.ndarray:
    """dZ from dA through one activation, or through the mistaken version of it."""
    if kind == "skip":
        return dA
    if kind == "diagonal":
        A = _output(activation, cache)
        return dA * A * (1.0 - A)
    return activation.vjp(cache, dA)[0]


def _output_gradient(
    derivation: Derivation, problem: Problem, values: dict[str, np.ndarray], cache: Any,
    kind: str | None,
) -> dict[str, np.ndarray]:  # fmt: skip
    """∂C/∂Ŷ, ∂ℓ/∂Ŷ, ∂C/∂Z_K and ∂ℓ/∂Z_K (Z_K: the output activation's input, U_K after batch
    norm) in the engine's layout, with the output layer's mistake ``kind``."""
    loss, output, T, S = derivation.loss, problem.model.layers[-1], problem.T, problem.S
    w, pre = problem.sample_weight, derivation.pre(derivation.K)
    Z, Yhat = values[pre], values["Yhat"]
    out = {"dYhat": cost_gradient(loss, Yhat, T, w), "dl_dYhat": loss.grad(Yhat, T)}
    fused = fuse(problem.model.output, loss)
    if kind == "row-sum":
        per_ln = math.log(getattr(loss, "base", math.e))
        dl_dZ = ((T * Yhat).sum(axis=1, keepdims=True) - T) / per_ln
        return {**out, f"d{pre}": dl_dZ / S, f"dl_d{pre}": dl_dZ}
    if kind is None and fused is not None:
        return {**out, f"d{pre}": cost_gradient(fused, Z, T, w), f"dl_d{pre}": fused.grad(Z, T)}
    out[f"d{pre}"] = _through_activation(output, cache, out["dYhat"], kind)
    out[f"dl_d{pre}"] = _through_activation(output, cache, out["dl_dYhat"], kind)
    return out


def true_values(
    derivation: Derivation,
    problem: Problem,
    *,
    skip: int | None = None,
    variant: Variant | None = None,
) -> dict[str, np.ndarray]:
    """Every gradient of the derivation in its notation, from nnmath's layer VJPs (batch norm's
    inner nodes ∂C/∂Ẑ, ∂C/∂σ², ∂C/∂μ, which no layer computes, by central differences).

    ``variant`` makes one known mistake at one layer (``skip = l`` is ``Variant("skip", l)``):
    the values a derivation gets when it forgets the ReLU mask, σ′ or the softmax Jacobian of
    that layer, keeps only the softmax Jacobian's diagonal, or writes the fused gradient wrong.
    """
    if skip is not None:
        variant = Variant("skip", skip)

    def kind(layer: int) -> str | None:
        return variant.kind if variant is not None and variant.layer == layer else None

    graph = as_graph(derivation, problem)
    values, caches = engine_values(graph)
    named = named_layers(problem.model)
    out = _output_gradient(derivation, problem, values, caches[-1], kind(derivation.K))
    dY = out[f"d{derivation.pre(derivation.K)}"]
    for (name, l, layer), cache in zip(reversed(named[:-1]), reversed(caches[:-1]), strict=True):
        out[f"d{name}"] = dY
        if layer_kind(layer) == "activation":
            dY = _through_activation(layer, cache, dY, kind(l))
            continue
        dY, grads = layer.vjp(cache, dY)
        out.update({f"d{key}{l}": grad for key, grad in grads.items()})
    out["dX"] = dY
    if derivation.penalty is not None and not (variant and variant.kind == "no-penalty"):
        k = penalty_scale(derivation.penalty, float(np.sum(problem.weights)))
        for l, linear in enumerate(problem.model.linears, 1):
            out[f"dW{l}"] = out[f"dW{l}"] + k * derivation.penalty.grad(linear.W)
    notation = derivation.notation
    converted = {
        name: notation.from_engine(kind_of(name[1:]), value) for name, value in out.items()
    }
    converted[f"J{derivation.K}"] = np.asarray(problem.model.layers[-1].jacobian(caches[-1]))
    converted["C"] = np.asarray(run(graph, {}, masks(graph))[0])
    if variant is None:
        converted.update(_batch_norm_nodes(derivation, problem, caches))
    return converted


def _batch_norm_nodes(
    derivation: Derivation, problem: Problem, caches: list[Any]
) -> dict[str, np.ndarray]:
    """∂C/∂Ẑ_l, ∂C/∂σ²_l, ∂C/∂μ_l by central differences of the cost, and the engine's Jacobian
    ∂U_l/∂Z_l over the whole batch, for every batch norm (in the derivation's notation)."""
    env, found = environment(derivation, problem), {}
    named = named_layers(problem.model)
    for (_, l, layer), cache in zip(named, caches, strict=True):
        if layer_kind(layer) != "bn":
            continue
        for node in (f"Zhat{l}", f"var{l}", f"mu{l}"):
            f = objective(derivation, problem, node)
            found[f"d{node}"] = central_differences(f, env[node], DEFAULT_EPS)[0]
        S, n = cache.Xhat.shape
        J = np.asarray(layer.jacobian(cache)).reshape(S, n, S, n)
        found[f"Jbn{l}"] = J if derivation.notation.samples_are_rows else J.transpose(1, 0, 3, 2)
    return found


def variants(derivation: Derivation) -> list[Variant]:
    """The known mistakes that apply to this network and loss."""
    found = [Variant("skip", layer) for layer in range(1, derivation.K + 1)]
    for layer, spec in enumerate(derivation.spec.layers, start=1):
        if spec.activation == "softmax":
            found.append(Variant("diagonal", layer))
    if derivation.fused and derivation.spec.output == "softmax":
        found.append(Variant("row-sum", derivation.K))
    if derivation.penalty is not None:
        found.append(Variant("no-penalty", 0))
    return found


def variant_words(derivation: Derivation, variant: Variant) -> tuple[str, str]:
    """(mistake, explanation) of a variant, in words about this network."""
    layer, K = variant.layer, derivation.K
    if variant.kind == "no-penalty":
        term = "alpha * W" if derivation.penalty.name == "l2" else "alpha * sign(W)"
        return (
            "penalty left out",
            f"your formula leaves out the penalty's gradient: the cost holds the "
            f"{derivation.penalty.name.upper()} penalty, so every dW gains {term} (the biases "
            "gain nothing)",
        )
    A = "Yhat" if layer == K else f"A{layer}"
    if variant.kind == "diagonal":
        return (
            "softmax Jacobian replaced by its diagonal",
            f"your formula multiplies by {A} * (1 - {A}), the diagonal ŷ(1 − ŷ) of layer {layer}'s "
            f"softmax Jacobian, entry by entry; the Jacobian is diag(ŷ) − ŷŷᵀ, and its "
            f"off-diagonal terms −ŷᵢŷⱼ count: each sample's gradient is its row vector times "
            f"the whole Jacobian, vjp(dl_dYhat, J{K})",
        )
    if variant.kind == "row-sum":
        return (
            "Ŷ inside the row sum",
            "your value is ((T ⊙ Ŷ)11ᵀ − T)/S, as in notes 002 §2a: Ŷ was moved inside the row "
            "sum (·)11ᵀ, which it cannot pass through. Substituting ∂ℓ/∂Ŷ = −T ⊘ Ŷ into the "
            "softmax VJP gives ((T11ᵀ) ⊙ Ŷ − T)/S, which is (Ŷ − T)/S where each row of T sums to one",
        )
    activation = derivation.spec.layers[layer - 1].activation
    if activation == "softmax":
        what = f"the softmax Jacobian of layer {layer} (diag(ŷ) − ŷŷᵀ per sample)"
    elif activation == "relu":
        what = f"the ReLU mask of layer {layer}: multiply by (Z{layer} > 0)"
    elif activation == "sigmoid":
        what = f"the sigmoid derivative of layer {layer}: multiply by {A} * (1 - {A})"
    else:
        what = f"the {activation} derivative h′(Z{layer}) of layer {layer}"
    return "missing activation derivative", f"your formula leaves out {what}"


# ---- constant factors and the conventions that explain them ------------------------------------


@dataclass(frozen=True)
class Factor:
    """A constant by which a gradient is commonly off, and why."""

    family: str  # at most one factor of a family in an explanation
    value: float
    mistake: str
    reason: str


def _loss_gradient_words(derivation: Derivation) -> str:
    """'∂ℓ/∂Ŷ = Yhat - Y' (and ∂ℓ/∂Z_K through a fused output), from the derivation's equations."""
    K = derivation.K
    loss_gradient = derivation.defining("dl_dYhat")
    words = f"∂ℓ/∂Ŷ = {loss_gradient.code}" if loss_gradient else ""
    if derivation.fused:
        fused = [eq for eq in derivation.equations() if eq.name == f"dl_dZ{K}"][-1]
        words += f" and, through the {derivation.spec.output} output, ∂ℓ/∂Z{K} = {fused.code}"
    return words


def factors(derivation: Derivation, S: int) -> list[Factor]:
    """The constants that conventions explain, for this loss, batch size and output width."""
    equation = derivation.defining("C")
    cost_code = equation.code if equation else ""
    return [
        Factor(
            "sign",
            -1.0,
            "flipped sign",
            f"the sign is flipped: with {derivation.loss.name} (C = {cost_code}), "
            f"{_loss_gradient_words(derivation)}; the negative points uphill",
        ),
        Factor(
            "S",
            float(S),
            "missing 1/S",
            f"the 1/S of the cost C = (1/S) Σ ℓ_s (S = {S}) is missing",
        ),
        Factor(
            "S",
            1.0 / S,
            "doubled 1/S",
            "1/S is applied twice: the cost's 1/S enters once, at ∂C/∂Z of the output layer, "
            "and the layers below only pass it on",
        ),
        *_square_factors(derivation),
        *_log_base_factors(derivation),
    ]


def _square_factors(derivation: Derivation) -> list[Factor]:
    """The ½ of the squared error, and the 1/n of a mean over the n outputs."""
    name, n = derivation.loss.name, derivation.spec.sizes[-1]
    if name == "squared-error":
        return [
            Factor("half", 2.0, "missing ½", "the ½ of ℓ = ½ Σ (t − a)² is missing: it cancels "
                   "the 2 of the square, so ∂ℓ/∂a = a − t, not 2(a − t)"),
            Factor("half", 0.5, "extra ½", "an extra ½: the ½ of ℓ = ½ Σ (t − a)² already "
                   "cancelled the 2 of the square, so ∂ℓ/∂a = a − t, not (a − t)/2"),
        ] + _outputs_factor(derivation)  # fmt: skip
    if name == "mse":
        return [
            Factor("half", 0.5, "extra ½", f"an extra ½: mse, ℓ = (1/{n}) Σ (t − a)², has no ½, "
                   f"so its gradient keeps the 2 of the square, 2(a − t)/{n}"),
            Factor("outputs", float(n), "missing mean over the outputs", f"mse is a mean over "
                   f"the {n} outputs, ℓ = (1/{n}) Σ (t − a)², and its gradient carries the 1/{n}"),
        ]  # fmt: skip
    return _outputs_factor(derivation)


def _outputs_factor(derivation: Derivation) -> list[Factor]:
    """A mean over the outputs where the loss sums over them: the factor 1/n."""
    name, n = derivation.loss.name, derivation.spec.sizes[-1]
    if n == 1:
        return []
    return [
        Factor("outputs", 1.0 / n, "mean over the outputs", f"a mean over the {n} outputs, but "
               f"{name} sums over them (ℓ is a sum over j), so there is no 1/{n}")
    ]  # fmt: skip


def _log_base_factors(derivation: Derivation) -> list[Factor]:
    base = getattr(derivation.loss, "base", None)
    if base is None:
        return []
    here = "e" if base == math.e else f"{base:g}"
    carries = "no factor" if base == math.e else f"1/ln {base:g} = {1 / math.log(base):.4g}"
    found = []
    for b in sorted({2.0, 10.0, base} - {math.e}):
        ln = math.log(b)
        for value, name in ((ln, f"off by ln {b:g}"), (1 / ln, f"off by 1/ln {b:g}")):
            found.append(
                Factor(
                    "base",
                    value,
                    f"wrong log base ({name})",
                    f"a log-base factor "
                    f"{name[7:]}: the cross-entropy here is in base {here}, so its "
                    f"gradient carries {carries}",
                )
            )
    return found


def explain_factor(c: float, table: list[Factor]) -> list[list[Factor]] | None:
    """The simplest products of factors (one per family, at most two besides the sign) equal to c.

    [] when c is 1; several lists when several conventions explain c equally simply (a 2-output
    squared-error network: ½ is an extra ½ or a mean over the outputs); None when none does.
    """
    if math.isclose(c, 1.0, rel_tol=MATCH_RTOL):
        return []
    families = sorted({f.family for f in table} - {"sign"})
    sign = [f for f in table if f.family == "sign"]
    for size in range(0, 3):
        found = []
        for chosen in itertools.combinations(families, size):
            pools = [[f for f in table if f.family == family] for family in chosen]
            for combo in itertools.product(*pools):
                for signed in ([], sign):
                    parts = list(signed) + list(combo)
                    if parts and math.isclose(
                        math.prod(f.value for f in parts), c, rel_tol=MATCH_RTOL
                    ):
                        found.append(parts)
        if found:
            return found
    return None


def fit(U: np.ndarray, A: np.ndarray) -> float | None:
    """c with U = c·A (to MATCH_RTOL), or None."""
    norm = float(np.vdot(A, A))
    if norm == 0.0 or U.shape != A.shape:
        return None
    c = float(np.vdot(U, A)) / norm
    if c != 0.0 and relative_error(U, c * A) <= MATCH_RTOL:
        return c
    return None


def ratio_text(c: float) -> str:
    """−1, S-free integers, 1/n fractions, else four digits."""
    sign = "−" if c < 0 else ""
    a = abs(c)
    if math.isclose(a, round(a), rel_tol=1e-9) and round(a) >= 1:
        return f"{sign}{round(a)}"
    if math.isclose(1 / a, round(1 / a), rel_tol=1e-9):
        return f"{sign}1/{round(1 / a)}"
    return f"{sign}{a:.4g}"


def describe_factor(
    target: str, c: float, explanations: list[list[Factor]] | None
) -> tuple[str, str]:
    """(mistake, explanation) for a value that is c times a reference value."""
    if explanations is None:
        return f"off by a factor {c:.4g}", f"your {target} is {c:.4g} times the true value"
    if not explanations:
        return "", ""
    mistakes = [" + ".join(f.mistake for f in parts) for parts in explanations]
    reasons = ["; ".join(f.reason for f in parts) for parts in explanations]
    head = f"your {target} is {ratio_text(c)} times the true value"
    if len(explanations) == 1:
        return mistakes[0], f"{head}: {reasons[0]}"
    return " or ".join(mistakes), f"{head}, which two conventions explain: either " + (
        ", or ".join(reasons)
    )
