"""Losses and costs: a loss is a sum over one sample's outputs; the cost is its mean over the batch.

**The cost owns 1/S.** ``value(A, T)`` returns the S per-sample losses ℓ(a_s, t_s) and ``grad(A, T)``
returns their gradients ∂ℓ/∂a_s row by row, with no 1/S. ``cost`` and ``cost_gradient`` take the mean
over the batch, so the 1/S appears exactly once, here; layer VJPs then sum over the batch. With
sample weights w the mean is weighted, C = Σ_s w_s ℓ_s / Σ_s w_s: 1/Σw takes the place of 1/S (and
is 1/S when every w_s = 1). Penalties on the weights (``penalties``) are added by the network.

Fused output pairs take the logits Z (the output layer's input) instead of its activation, and are
what training uses: softmax + cross-entropy gives ∂ℓ/∂z = ((t·1) y − t)/ln b, which is (y − t)/ln b
when each row of T sums to one, and sigmoid + binary cross-entropy gives ∂ℓ/∂z = σ(z) − t. Both are
computed from the logits (log-softmax, log(1 + e^{−|z|})), so no log(0) and no overflow can occur.

Unfused cross-entropies clamp probabilities to [tiny, 1] before the log (tiny is the dtype's smallest
normal number), so a probability of exactly 0 costs −log(tiny) ≈ 708 in float64, never inf.

Formula placeholders: ``<A>``/``<a>`` the prediction, ``<T>``/``<t>`` the target, ``<Z>``/``<z>`` logits.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Protocol

from nnmath.activations import SIGMOID
from nnmath.backend import namespace
from nnmath.errors import DataError, SpecError, WrongTypeError
from nnmath.layers import Formula, Rule, log_softmax, softmax

Array = Any


class Loss(Protocol):
    """A per-sample loss ℓ(a, t) = Σ over outputs, with its gradient and formula."""

    name: str
    tex: Formula

    def value(self, A: Array, T: Array) -> Array:
        """ℓ_s = ℓ(a_s, t_s) for each row: predictions A and targets T (S, C) → (S,)."""

    def grad(self, A: Array, T: Array) -> Array:
        """∂ℓ_s/∂a_s row by row: (S, C), with no 1/S (the cost owns it)."""


def _loss_notations(
    value: str, value_code: str, grad: str, grad_code: str, grad_element: str
) -> dict[str, dict[str, Rule]]:
    """The Rules of a loss summed over its outputs, for the derivations.

    ``value`` is ℓ_s for one sample, with ``value_code`` the sum ℓ = Σ_s ℓ_s over the batch; ``grad``
    is ∂ℓ/∂A, whose row (column) s is ∂ℓ_s/∂a_s. No 1/S here: the cost owns it. ``samples`` is the
    vector of the S losses ℓ_s (a column in the row notation, a row in the column notation), what
    a weighted cost Σ_s w_s ℓ_s / Σ_s w_s needs; its code is ``value_code`` summed over the outputs
    only.
    """
    shared = {"grad": Rule(tex=grad, code=grad_code, element=grad_element)}
    return {
        notation: {
            "value": Rule(tex=value, code=value_code),
            "samples": Rule(tex=value, code=_summed_over_outputs(value_code, axis)),
            **shared,
        }
        for notation, axis in (("row", 1), ("column", 0))
    }


def _summed_over_outputs(code: str, axis: int) -> str:
    """``-sum(T * log(A))`` → ``-sum(T * log(A), axis=1, keepdims=True)``: the first ``sum(…)``
    of a loss's code taken along the outputs' axis only, giving one loss per sample."""
    start = code.index("sum(") + len("sum(")
    depth = 1
    for end in range(start, len(code)):
        depth += {"(": 1, ")": -1}.get(code[end], 0)
        if depth == 0:
            return f"{code[:end]}, axis={axis}, keepdims=True{code[end:]}"
    raise ValueError(f"unbalanced parentheses in {code!r}")  # pragma: no cover - our own code


def _tiny(A: Array) -> float:
    """The dtype's smallest normal number (``smallest_normal`` is the Array API's name for tiny)."""
    xp = namespace(A)
    return float(xp.finfo(A.dtype).smallest_normal)


def _clamped_log(A: Array) -> Array:
    """ln(max(a, tiny)): the log that never sees 0."""
    xp = namespace(A)
    return xp.log(xp.clip(A, _tiny(A), None))


@dataclass(frozen=True)
class SquaredError:
    """ℓ = ½ Σ_j (t_j − a_j)²;  ∂ℓ/∂a = a − t.  (The notes print t − a: the sign is wrong.)"""

    name: str = "squared-error"
    tex: Formula = Formula(
        forward=r"\ell = \tfrac{1}{2} \lVert <t> - <a> \rVert^{2}",
        forward_element=r"\ell_s = \tfrac{1}{2} \sum_{j} (<T>_{sj} - <A>_{sj})^{2}",
        backward=r"\frac{\partial \ell}{\partial <A>} = <A> - <T>",
        backward_element=r"\frac{\partial \ell_s}{\partial <A>_{sj}} = <A>_{sj} - <T>_{sj}",
        jacobian=r"\frac{\partial \ell}{\partial a} = (a - t)^\top",
        text="ℓ = ½ Σ (t − a)²;  ∂ℓ/∂a = a − t",
        notations=_loss_notations(
            r"\tfrac{1}{2} \sum_{j} (<T>_{<sj>} - <A>_{<sj>})^{2}",
            "sum((<T> - <A>) ** 2) / 2",
            r"<A> - <T>",
            "<A> - <T>",
            r"\frac{\partial \ell_s}{\partial <A>_{<sj>}} = <A>_{<sj>} - <T>_{<sj>}",
        ),
    )

    def value(self, A: Array, T: Array) -> Array:
        """ℓ_s = ½ Σ_j (t_sj − a_sj)² for each row: A, T (S, C) → (S,)."""
        xp = namespace(A)
        return 0.5 * xp.sum((T - A) ** 2, axis=1)

    def grad(self, A: Array, T: Array) -> Array:
        """∂ℓ_s/∂a_s = a_s − t_s row by row: (S, C), no 1/S."""
        return A - T


@dataclass(frozen=True)
class MeanSquaredError:
    """ℓ = (1/C) Σ_j (t_j − a_j)² over the C outputs;  ∂ℓ/∂a = 2(a − t)/C."""

    name: str = "mse"
    tex: Formula = Formula(
        forward=r"\ell = \tfrac{1}{C} \lVert <t> - <a> \rVert^{2}",
        forward_element=r"\ell_s = \tfrac{1}{C} \sum_{j} (<T>_{sj} - <A>_{sj})^{2}",
        backward=r"\frac{\partial \ell}{\partial <A>} = \tfrac{2}{C} (<A> - <T>)",
        backward_element=r"\frac{\partial \ell_s}{\partial <A>_{sj}} = \tfrac{2}{C}(<A>_{sj} - <T>_{sj})",
        jacobian=r"\frac{\partial \ell}{\partial a} = \tfrac{2}{C}(a - t)^\top",
        text="ℓ = (1/C) Σ (t − a)²;  ∂ℓ/∂a = 2(a − t)/C",
        notations=_loss_notations(
            r"\tfrac{1}{<n>} \sum_{j} (<T>_{<sj>} - <A>_{<sj>})^{2}",
            "sum((<T> - <A>) ** 2) / <n>",
            r"\tfrac{2}{<n>} (<A> - <T>)",
            "2 / <n> * (<A> - <T>)",
            r"\frac{\partial \ell_s}{\partial <A>_{<sj>}} = \tfrac{2}{<n>}(<A>_{<sj>} - <T>_{<sj>})",
        ),
    )

    def value(self, A: Array, T: Array) -> Array:
        """ℓ_s = (1/C) Σ_j (t_sj − a_sj)² for each row: A, T (S, C) → (S,)."""
        xp = namespace(A)
        return xp.mean((T - A) ** 2, axis=1)

    def grad(self, A: Array, T: Array) -> Array:
        """∂ℓ_s/∂a_s = 2(a_s − t_s)/C row by row: (S, C), no 1/S."""
        return (2.0 / A.shape[1]) * (A - T)


def _per_ln(base: float) -> str:
    """The code for the 1/ln b factor of a log base: nothing for the natural log."""
    return "" if base == math.e else f" / log({base!r})"


_DL_DA = r"\frac{\partial \ell}{\partial <A>}"
"""G = ∂ℓ/∂Ŷ in the simplification's LaTeX (``<dA>`` in its code)."""


def _softmax_cross_entropy_notations(base: float) -> dict[str, dict[str, Rule]]:
    """The output-layer simplification of softmax + cross-entropy, step by step, in both notations.

    Into the softmax VJP Ŷ ⊙ (G − (G ⊙ Ŷ)11ᵀ) goes G = ∂ℓ/∂Ŷ = −(1/ln b) T ⊘ Ŷ (placeholder ``<dA>``):
    then Ŷ ⊙ G = −T/ln b and (G ⊙ Ŷ)11ᵀ = −T11ᵀ/ln b, so ∂ℓ/∂Z = ((T11ᵀ) ⊙ Ŷ − T)/ln b, which is
    (Ŷ − T)/ln b exactly when each sample's targets sum to one (row notation; the column notation
    sums columns with 11ᵀ on the left).
    """
    _, k = _base_tex(base)  # the 1/ln b factor, empty for the natural log
    per_ln = _per_ln(base)
    substitute = Rule(
        lhs=rf"<A> \odot {_DL_DA}", lhs_code="<A> * <dA>", tex=rf"-{k} <T>", code=f"-<T>{per_ln}"
    )
    return {
        "row": {"substitute": substitute, **_softmax_cross_entropy_rows(k, per_ln)},
        "column": {"substitute": substitute, **_softmax_cross_entropy_columns(k, per_ln)},
    }


def _softmax_cross_entropy_rows(k: str, per_ln: str) -> dict[str, Rule]:
    """The simplification's steps after the substitution, one sample per row: the sums over a
    sample's outputs are products with 11ᵀ on the right. ``k`` and ``per_ln`` are the 1/ln b
    factor in LaTeX and in code."""
    return {
        "substitute_sum": Rule(
            lhs=rf"\left({_DL_DA} \odot <A>\right)\mathbf{{1}}\mathbf{{1}}^\top",
            lhs_code="(<dA> * <A>) @ ones(<n>, <n>)",
            tex=rf"-{k} <T>\mathbf{{1}}\mathbf{{1}}^\top",
            code=f"-<T> @ ones(<n>, <n>){per_ln}",
        ),
        "general": Rule(
            tex=rf"{k}\left(\left(<T>\mathbf{{1}}\mathbf{{1}}^\top\right) \odot <A> - <T>\right)",
            code=f"((<T> @ ones(<n>, <n>)) * <A> - <T>){per_ln}",
            element=rf"\frac{{\partial \ell_s}}{{\partial <Z>_{{sj}}}} = {k}\left(<A>_{{sj}}"
            r" \sum_{k} <T>_{sk} - <T>_{sj}\right)",
            element_code=f"(einsum('sk,j->sj', <T>, ones(<n>)) * <A> - <T>){per_ln}",
        ),
        "assumption": Rule(
            lhs=r"<T>\mathbf{1}",
            lhs_code="<T> @ ones(<n>, 1)",
            tex=r"\mathbf{1}",
            code="ones(S, 1)",
        ),
        "simplified": Rule(
            tex=rf"{k}(<A> - <T>)",
            code=f"(<A> - <T>){per_ln}",
            element=rf"\frac{{\partial \ell_s}}{{\partial <Z>_{{sj}}}} = {k}(<A>_{{sj}} - <T>_{{sj}})",
        ),
    }


def _softmax_cross_entropy_columns(k: str, per_ln: str) -> dict[str, Rule]:
    """The same steps one sample per column: the sums are products with 11ᵀ on the left."""
    return {
        "substitute_sum": Rule(
            lhs=rf"\mathbf{{1}}\mathbf{{1}}^\top\left({_DL_DA} \odot <A>\right)",
            lhs_code="ones(<n>, <n>) @ (<dA> * <A>)",
            tex=rf"-{k} \mathbf{{1}}\mathbf{{1}}^\top <T>",
            code=f"-ones(<n>, <n>) @ <T>{per_ln}",
        ),
        "general": Rule(
            tex=rf"{k}\left(\left(\mathbf{{1}}\mathbf{{1}}^\top <T>\right) \odot <A> - <T>\right)",
            code=f"((ones(<n>, <n>) @ <T>) * <A> - <T>){per_ln}",
            element=rf"\frac{{\partial \ell_s}}{{\partial <Z>_{{js}}}} = {k}\left(<A>_{{js}}"
            r" \sum_{k} <T>_{ks} - <T>_{js}\right)",
            element_code=f"(einsum('ks,j->js', <T>, ones(<n>)) * <A> - <T>){per_ln}",
        ),
        "assumption": Rule(
            lhs=r"\mathbf{1}^\top <T>",
            lhs_code="ones(1, <n>) @ <T>",
            tex=r"\mathbf{1}^\top",
            code="ones(1, S)",
        ),
        "simplified": Rule(
            tex=rf"{k}(<A> - <T>)",
            code=f"(<A> - <T>){per_ln}",
            element=rf"\frac{{\partial \ell_s}}{{\partial <Z>_{{js}}}} = {k}(<A>_{{js}} - <T>_{{js}})",
        ),
    }


def _base_tex(base: float) -> tuple[str, str]:
    """(log symbol, 1/ln b factor) for a log base: natural log prints as ln with no factor."""
    if base == math.e:
        return r"\ln", ""
    return rf"\log_{{{base:g}}}", rf"\frac{{1}}{{\ln {base:g}}}"


@dataclass(frozen=True)
class CrossEntropy:
    """ℓ = −Σ_j t_j log_b a_j;  ∂ℓ/∂a = −(1/ln b) t ⊘ a.  Any log base b > 1, e by default."""

    base: float = math.e
    name: str = "cross-entropy"
    tex: Formula = field(init=False)

    def __post_init__(self) -> None:
        if isinstance(self.base, bool) or not isinstance(self.base, numbers.Real):
            raise WrongTypeError(
                f"cross-entropy log base must be a number > 1, got {self.base!r}"
            )
        if not (self.base > 1 and math.isfinite(self.base)):
            raise SpecError(
                f"cross-entropy log base must be > 1 and finite, got {self.base}; e (the "
                "default), 2 (bits) or 10 are the usual ones"
            )
        log, factor = _base_tex(self.base)
        object.__setattr__(
            self,
            "tex",
            Formula(
                forward=rf"\ell = -<t>^\top {log} <a>",
                forward_element=rf"\ell_s = -\sum_{{j}} <T>_{{sj}} {log} <A>_{{sj}}",
                backward=rf"\frac{{\partial \ell}}{{\partial <A>}} = -{factor} <T> \oslash <A>",
                backward_element=(
                    rf"\frac{{\partial \ell_s}}{{\partial <A>_{{sj}}}} = -{factor}"
                    r" \frac{<T>_{sj}}{<A>_{sj}}"
                ),
                jacobian=rf"\frac{{\partial \ell}}{{\partial a}} = -{factor} (t \oslash a)^\top",
                text=f"ℓ = −Σ t log_{self.base:g} a;  ∂ℓ/∂a = −(1/ln {self.base:g}) t ⊘ a",
                notations=_loss_notations(
                    rf"-\sum_{{j}} <T>_{{<sj>}} {log} <A>_{{<sj>}}",
                    f"-sum(<T> * log(<A>)){_per_ln(self.base)}",
                    rf"-{factor} <T> \oslash <A>",
                    f"-<T> / <A>{_per_ln(self.base)}",
                    rf"\frac{{\partial \ell_s}}{{\partial <A>_{{<sj>}}}} = -{factor}"
                    r" \frac{<T>_{<sj>}}{<A>_{<sj>}}",
                ),
            ),
        )

    @property
    def log_base(self) -> float:
        """ln b, the factor that turns a natural log into log_b."""
        return math.log(self.base)

    def value(self, A: Array, T: Array) -> Array:
        """ℓ_s = −Σ_j t_sj log_b max(a_sj, tiny) for each row: A, T (S, C) → (S,)."""
        xp = namespace(A)
        # t·log a with the convention 0·log 0 = 0, so a zero target never meets log(0)
        return -xp.sum(T * _clamped_log(A), axis=1) / self.log_base

    def grad(self, A: Array, T: Array) -> Array:
        """∂ℓ_s/∂a_s = −t_s ⊘ (max(a_s, tiny) ln b) row by row: (S, C), no 1/S."""
        xp = namespace(A)
        return -T / (xp.clip(A, _tiny(A), None) * self.log_base)


@dataclass(frozen=True)
class BinaryCrossEntropy:
    """ℓ = −Σ_j [t_j ln a_j + (1 − t_j) ln(1 − a_j)];  ∂ℓ/∂a = (a − t) ⊘ (a ⊙ (1 − a))."""

    name: str = "binary-cross-entropy"
    tex: Formula = Formula(
        forward=r"\ell = -<t>^\top \ln <a> - (\mathbf{1} - <t>)^\top \ln(\mathbf{1} - <a>)",
        forward_element=(
            r"\ell_s = -\sum_{j} \left[<T>_{sj} \ln <A>_{sj} + (1 - <T>_{sj}) \ln(1 - <A>_{sj})\right]"
        ),
        backward=r"\frac{\partial \ell}{\partial <A>} = (<A> - <T>) \oslash (<A> \odot (1 - <A>))",
        backward_element=(
            r"\frac{\partial \ell_s}{\partial <A>_{sj}} = \frac{<A>_{sj} - <T>_{sj}}"
            r"{<A>_{sj}(1 - <A>_{sj})}"
        ),
        jacobian=r"\frac{\partial \ell}{\partial a} = \left((a - t) \oslash (a \odot (1 - a))\right)^\top",
        text="ℓ = −Σ [t ln a + (1 − t) ln(1 − a)];  ∂ℓ/∂a = (a − t) ⊘ (a(1 − a))",
        notations=_loss_notations(
            r"-\sum_{j} \left[<T>_{<sj>} \ln <A>_{<sj>} + (1 - <T>_{<sj>}) \ln(1 - <A>_{<sj>})\right]",
            "-sum(<T> * log(<A>) + (1 - <T>) * log(1 - <A>))",
            r"(<A> - <T>) \oslash (<A> \odot (1 - <A>))",
            "(<A> - <T>) / (<A> * (1 - <A>))",
            r"\frac{\partial \ell_s}{\partial <A>_{<sj>}} = \frac{<A>_{<sj>} - <T>_{<sj>}}"
            r"{<A>_{<sj>}(1 - <A>_{<sj>})}",
        ),
    )

    def value(self, A: Array, T: Array) -> Array:
        """ℓ_s = −Σ_j [t_sj ln a_sj + (1 − t_sj) ln(1 − a_sj)] for each row, each log's argument
        clamped to ≥ tiny: A, T (S, C) → (S,)."""
        xp = namespace(A)
        return -xp.sum(T * _clamped_log(A) + (1.0 - T) * _clamped_log(1.0 - A), axis=1)

    def grad(self, A: Array, T: Array) -> Array:
        """∂ℓ_s/∂a_s = (a_s − t_s) ⊘ max(a_s ⊙ (1 − a_s), tiny) row by row: (S, C), no 1/S."""
        xp = namespace(A)
        tiny = _tiny(A)
        return (A - T) / xp.clip(A * (1.0 - A), tiny, None)


@dataclass(frozen=True)
class SoftmaxCrossEntropy:
    """Fused softmax + cross-entropy on logits Z: ℓ = −Σ_j t_j log_b softmax(z)_j.

    ∂ℓ/∂z = ((Σ_j t_j) y − t)/ln b with y = softmax(z); when t sums to one this is (y − t)/ln b.
    """

    base: float = math.e
    name: str = "softmax+cross-entropy"
    output: str = "softmax"

    @property
    def log_base(self) -> float:
        """ln b, the factor that turns a natural log into log_b."""
        return math.log(self.base)

    @property
    def tex(self) -> Formula:
        """The fused pair's formula in the base b, with the output-layer simplification step by
        step."""
        log, factor = _base_tex(self.base)
        return Formula(
            forward=rf"\ell = -<t>^\top {log} \operatorname{{softmax}}(<z>)",
            forward_element=(
                rf"\ell_s = -\sum_{{j}} <T>_{{sj}} {log} \frac{{e^{{<Z>_{{sj}}}}}}{{\sum_k e^{{<Z>_{{sk}}}}}}"
            ),
            backward=(
                rf"\frac{{\partial \ell}}{{\partial <Z>}} = {factor} "
                r"\left((<T>\mathbf{1}) \odot \hat{Y} - <T>\right)"
            ),
            backward_element=(
                rf"\frac{{\partial \ell_s}}{{\partial <Z>_{{sj}}}} = {factor} "
                r"\left(\hat{Y}_{sj} \sum_{k} <T>_{sk} - <T>_{sj}\right)"
            ),
            jacobian=rf"\frac{{\partial \ell}}{{\partial z}} = {factor} ((t^\top \mathbf{{1}})\,\hat{{y}} - t)^\top",
            text=(
                f"ℓ = −Σ t log_{self.base:g} softmax(z);  ∂ℓ/∂z = ((Σt) ŷ − t)/ln {self.base:g}, "
                f"= (ŷ − t)/ln {self.base:g} when t sums to one"
            ),
            notations=_softmax_cross_entropy_notations(self.base),
        )

    def value(self, Z: Array, T: Array) -> Array:
        """ℓ_s = −Σ_j t_sj log_softmax(z_s)_j / ln b on the logits: Z, T (S, C) → (S,)."""
        xp = namespace(Z)
        return -xp.sum(T * log_softmax(Z), axis=1) / self.log_base

    def grad(self, Z: Array, T: Array) -> Array:
        """∂ℓ_s/∂z_s = ((Σ_j t_sj) softmax(z_s) − t_s)/ln b row by row: (S, C), no 1/S."""
        xp = namespace(Z)
        return (xp.sum(T, axis=1, keepdims=True) * softmax(Z) - T) / self.log_base


@dataclass(frozen=True)
class SigmoidBinaryCrossEntropy:
    """Fused sigmoid + binary cross-entropy on logits Z: ∂ℓ/∂z = σ(z) − t.

    ℓ = Σ_j [max(z_j, 0) − t_j z_j + ln(1 + e^{−|z_j|})], which equals −t ln σ(z) − (1 − t) ln(1 − σ(z)).
    """

    name: str = "sigmoid+binary-cross-entropy"
    output: str = "sigmoid"
    tex: Formula = Formula(
        forward=r"\ell = -<t>^\top \ln \sigma(<z>) - (\mathbf{1} - <t>)^\top \ln(1 - \sigma(<z>))",
        forward_element=(
            r"\ell_s = \sum_{j} \left[\max(<Z>_{sj}, 0) - <T>_{sj} <Z>_{sj}"
            r" + \ln\left(1 + e^{-|<Z>_{sj}|}\right)\right]"
        ),
        backward=r"\frac{\partial \ell}{\partial <Z>} = \sigma(<Z>) - <T>",
        backward_element=r"\frac{\partial \ell_s}{\partial <Z>_{sj}} = \sigma(<Z>_{sj}) - <T>_{sj}",
        jacobian=r"\frac{\partial \ell}{\partial z} = (\sigma(z) - t)^\top",
        text="ℓ = −t ln σ(z) − (1 − t) ln(1 − σ(z));  ∂ℓ/∂z = σ(z) − t",
        notations=dict.fromkeys(
            ("row", "column"),
            {
                # σ′ = Ŷ ⊙ (1 − Ŷ) cancels the denominator of ∂ℓ/∂Ŷ: exact wherever 0 < Ŷ < 1
                "substitute": Rule(
                    lhs=r"(<A> - <T>) \oslash (<A> \odot (1 - <A>)) \odot <A> \odot (1 - <A>)",
                    lhs_code="(<A> - <T>) / (<A> * (1 - <A>)) * (<A> * (1 - <A>))",
                    tex=r"<A> - <T>",
                    code="<A> - <T>",
                ),
                "simplified": Rule(
                    tex=r"<A> - <T>",
                    code="<A> - <T>",
                    element=r"\frac{\partial \ell_s}{\partial <Z>_{<sj>}} = <A>_{<sj>} - <T>_{<sj>}",
                ),
            },
        ),
    )

    def value(self, Z: Array, T: Array) -> Array:
        """ℓ_s = Σ_j [max(z_sj, 0) − t_sj z_sj + ln(1 + e^{−|z_sj|})] on the logits:
        Z, T (S, C) → (S,)."""
        xp = namespace(Z)
        return xp.sum(xp.maximum(Z, 0.0) - T * Z + xp.log1p(xp.exp(-xp.abs(Z))), axis=1)

    def grad(self, Z: Array, T: Array) -> Array:
        """∂ℓ_s/∂z_s = σ(z_s) − t_s row by row: (S, C), no 1/S."""
        return SIGMOID.f(Z) - T


LOSSES: dict[str, type] = {
    "squared-error": SquaredError,
    "mse": MeanSquaredError,
    "cross-entropy": CrossEntropy,
    "binary-cross-entropy": BinaryCrossEntropy,
}

CLASSIFICATION_LOSSES = ("cross-entropy", "binary-cross-entropy")


def get_loss(name: str, base: float | None = None) -> Loss:
    """The loss called ``name``; ``base`` sets the log base of cross-entropy (e by default)."""
    if not isinstance(name, str):
        raise WrongTypeError(
            f"a loss is named by a string, one of {', '.join(LOSSES)}; got {name!r}"
        )
    key = name.lower().replace("_", "-")
    if key not in LOSSES:
        raise SpecError(f"unknown loss {name!r}; valid names: {', '.join(LOSSES)}")
    if base is not None:
        if key != "cross-entropy":
            raise SpecError(f"only cross-entropy takes a log base, not {key!r}")
        return CrossEntropy(base=base)
    return LOSSES[key]()


def fuse(output: str, loss: Loss) -> SoftmaxCrossEntropy | SigmoidBinaryCrossEntropy | None:
    """The fused pair for an output activation and a loss, or None where they do not fuse."""
    if output == "softmax" and isinstance(loss, CrossEntropy):
        return SoftmaxCrossEntropy(base=loss.base)
    if output == "sigmoid" and isinstance(loss, BinaryCrossEntropy):
        return SigmoidBinaryCrossEntropy()
    return None


def cost(loss: Loss, A: Array, T: Array, sample_weight: Array | None = None) -> Array:
    """C = Σ_s w_s ℓ(a_s, t_s) / Σ_s w_s: the weighted mean of the per-sample losses, which is the
    plain mean (1/S) Σ_s ℓ(a_s, t_s) without weights (w_s = 1)."""
    xp = namespace(A)
    values = loss.value(A, T)
    if sample_weight is None:
        return xp.mean(values)
    return xp.sum(sample_weight * values) / xp.sum(sample_weight)


def cost_gradient(loss: Loss, A: Array, T: Array, sample_weight: Array | None = None) -> Array:
    """∂C/∂a_s = (w_s / Σ_s w_s) ∂ℓ/∂a_s row by row, (1/S) ∂ℓ/∂a_s without weights: the one
    place where 1/S (or 1/Σw) enters the backward pass."""
    if sample_weight is None:
        return loss.grad(A, T) / A.shape[0]
    xp = namespace(A)
    share = sample_weight / xp.sum(sample_weight)
    return loss.grad(A, T) * xp.reshape(share, (-1, 1))


def as_sample_weight(sample_weight: Array, n_samples: int, dtype: Any) -> Array:
    """Sample weights w (S,) in ``dtype``: finite, ≥ 0 and not all 0, else a DataError that says
    which rule the weights break."""
    xp = namespace(sample_weight)
    if sample_weight.ndim != 1 or sample_weight.shape[0] != n_samples:
        raise DataError(
            f"sample_weight has shape {tuple(sample_weight.shape)}; give one weight per row, "
            f"shape ({n_samples},)"
        )
    if not (xp.isdtype(sample_weight.dtype, ("real floating", "integral", "bool"))):
        raise DataError(f"sample_weight must hold numbers, got dtype {sample_weight.dtype}")
    w = xp.astype(sample_weight, dtype)
    if not bool(xp.all(xp.isfinite(w))):
        raise DataError("sample_weight holds NaN or Inf; give finite weights ≥ 0")
    if bool(xp.any(w < 0)):
        row = int(xp.argmax(xp.astype(w < 0, xp.int64)))
        raise DataError(f"sample_weight {float(w[row])} in row {row} is negative; weights are ≥ 0")
    if not float(xp.sum(w)) > 0:
        raise DataError("sample_weight sums to 0: at least one row needs a positive weight")
    return w


def as_targets(y: Array, n_outputs: int, dtype: Any) -> Array:
    """Targets as an (S, n_outputs) array: class labels (S,) become one-hot rows.

    Integer labels must lie in 0 … n_outputs − 1 (or be 0/1 for a single sigmoid output); a
    mismatch raises DataError naming the first bad label and its row.
    """
    xp = namespace(y)
    if y.ndim == 1:
        if n_outputs == 1:
            _check_labels(y, 2)
            return xp.astype(xp.reshape(y, (-1, 1)), dtype)
        _check_labels(y, n_outputs)
        return xp.astype(xp.reshape(y, (-1, 1)) == xp.arange(n_outputs)[None, :], dtype)
    if y.ndim != 2 or y.shape[1] != n_outputs:
        raise DataError(
            f"targets of shape {tuple(y.shape)} do not fit a network with {n_outputs} outputs; "
            f"give class labels of shape (S,) or targets of shape (S, {n_outputs})"
        )
    return xp.astype(y, dtype)


def _check_labels(y: Array, n_classes: int) -> None:
    xp = namespace(y)
    if xp.isdtype(y.dtype, "real floating") and not bool(xp.all(y == xp.round(y))):
        raise DataError("class labels must be whole numbers 0, 1, 2, ...; got fractional values")
    bad = (y < 0) | (y >= n_classes)
    if bool(xp.any(bad)):
        row = int(xp.argmax(xp.astype(bad, xp.int64)))
        raise DataError(
            f"label {y[row]} in row {row} is outside the {n_classes} classes 0 … {n_classes - 1}; "
            f"remap the labels or change the output layer's size"
        )
