"""Batch normalization (Ioffe & Szegedy, 2015), after the linear map and before the activation.

Training mode, for a batch X ∈ ℝ^{S×n} and every feature i (a column of X):

    μ_i = (1/S) Σ_s x_si,   σ²_i = (1/S) Σ_s (x_si − μ_i)²   (the batch's biased variance),
    x̂_si = (x_si − μ_i) / √(σ²_i + ε),   y_si = γ_i x̂_si + β_i,   ε = 1e-5.

Every output of a column depends on every input of that column, so the samples are coupled: the
Jacobian is taken over the whole batch, ∂vec(Y)/∂vec(X) of shape (S·n, S·n) with vec row-major,
and not sample by sample as for the other layers. Evaluation mode puts running statistics in place
of μ and σ²; it is then an affine map of each feature, with a per-sample Jacobian.

Running statistics follow PyTorch's ``BatchNorm1d`` (momentum m = 0.1): each training forward pass
of the network updates running_mean ← (1 − m)·running_mean + m·μ and running_var ← (1 − m)·running_var
+ m·σ²·S/(S − 1), the batch's unbiased variance. They start at 0 and 1; γ starts at 1 and β at 0.

A feature that is constant over the batch has σ² = 0: then x̂ = 0 and y = β, finite thanks to ε. A
training batch of a single sample is refused, as PyTorch does: its unbiased variance is 0/0.
(After batch norm the linear layer's bias b is redundant: its gradient 1ᵀ dZ is zero in training.)

Placeholders of the formula templates, beyond those of ``layers``: ``<gamma>``, ``<beta>``,
``<dgamma>``, ``<dbeta>``, ``<mu>`` (μ, a row), ``<var>`` (σ², a row), ``<Xhat>`` (X̂).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.backend import namespace
from nnmath.errors import ShapeError
from nnmath.layers import EVALUATION, Formula, Mode, Rule, diagonal_jacobians

Array = Any
EPS = 1e-5
MOMENTUM = 0.1


def _grouped(code: str) -> str:
    """``code`` as one operand of a product: a placeholder or a parenthesized group as it is, any
    other expression in parentheses."""
    depth, closes_at_end = 0, code.startswith("(")
    for position, char in enumerate(code):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and position < len(code) - 1:
            closes_at_end = False
    if closes_at_end or (code.startswith("<") and code.endswith(">") and code.count("<") == 1):
        return code
    return f"({code})"


@dataclass(frozen=True)
class _Layout:
    """How a notation sums a batch over its samples and repeats a per-unit vector for every sample:
    in the row notation μ, σ², γ, β are rows (1 × n) and ``ones(1, S) @ M`` sums M over the samples;
    in the column notation they are columns and ``M @ ones(S, 1)`` does."""

    rows: bool

    def total(self, M: str) -> str:
        return f"ones(1, S) @ {_grouped(M)}" if self.rows else f"{_grouped(M)} @ ones(S, 1)"

    def spread(self, v: str) -> str:
        return f"ones(S, 1) @ {v}" if self.rows else f"{v} @ ones(1, S)"

    def tex_total(self, M: str) -> str:
        return rf"\mathbf{{1}}^\top {M}" if self.rows else rf"{M}\, \mathbf{{1}}"

    def tex_spread(self, v: str) -> str:
        return rf"\mathbf{{1}} {v}" if self.rows else rf"{v} \mathbf{{1}}^\top"

    @property
    def centered(self) -> str:  # X − 1μ
        return f"(<X> - {self.spread('<mu>')})"

    @property
    def tex_centered(self) -> str:
        return r"\left(<X> - " + self.tex_spread("<mu>") + r"\right)"

    @property
    def tex_roots(self) -> str:  # 1 √(σ² + ε)
        return r"\left(" + self.tex_spread(_TEX_ROOT) + r"\right)"


_ROOT, _TEX_ROOT = "sqrt(<var> + eps)", r"\sqrt{<var> + \epsilon}"


def _d(symbol: str) -> str:
    """∂C/∂symbol in LaTeX."""
    return r"\frac{\partial <C>}{\partial " + symbol + "}"


def batch_norm_rules(samples_are_rows: bool) -> dict[str, Rule]:
    """Batch norm's equations for the derivations, in the row or the column notation.

    The forward pass in four steps (μ, σ², X̂, Y), the parameters' gradients, then ∂C/∂X derived
    through the computational graph X → (μ, σ², X̂) → Y: ∂C/∂X̂, ∂C/∂σ² (μ held), ∂C/∂μ (through σ²
    and X̂), their sum ∂C/∂X, the same as one product with the Jacobian over the whole batch, and
    the compact form the engine computes. ``eps`` is ε.
    """
    layout = _Layout(samples_are_rows)
    return {
        **_forward_rules(layout),
        **_parameter_rules(layout),
        **_graph_rules(layout),
        **_jacobian_rules(layout),
    }


def _forward_rules(L: _Layout) -> dict[str, Rule]:
    """μ = (1/S) 1ᵀX, σ² = (1/S) 1ᵀ(X − 1μ)², X̂ = (X − 1μ) ⊘ 1√(σ² + ε), Y = X̂ ⊙ 1γ + 1β."""
    return {
        "mean": Rule(
            tex=r"\tfrac{1}{S} " + L.tex_total("<X>"),
            code=f"{L.total('<X>')} / S",
            element=r"<mu>_{i} = \frac{1}{S} \sum_{s} <X>_{<si>}",
        ),
        "var": Rule(
            tex=r"\tfrac{1}{S} " + L.tex_total(L.tex_centered + r"^{\odot 2}"),
            code=f"{L.total(L.centered + ' ** 2')} / S",
            element=r"<var>_{i} = \frac{1}{S} \sum_{s} \left(<X>_{<si>} - <mu>_{i}\right)^{2}",
        ),
        "normalize": Rule(
            tex=L.tex_centered + r" \oslash " + L.tex_roots,
            code=f"{L.centered} / ({L.spread(_ROOT)})",
            element=r"<Xhat>_{<si>} = \frac{<X>_{<si>} - <mu>_{i}}{\sqrt{<var>_{i} + \epsilon}}",
        ),
        "forward": Rule(
            tex=r"<Xhat> \odot \left(" + L.tex_spread("<gamma>") + r"\right) + "
            + L.tex_spread("<beta>"),
            code=f"<Xhat> * ({L.spread('<gamma>')}) + {L.spread('<beta>')}",
            element=r"<Y>_{<si>} = <gamma>_{i} <Xhat>_{<si>} + <beta>_{i}",
        ),
    }  # fmt: skip


def _parameter_rules(L: _Layout) -> dict[str, Rule]:
    """dγ = 1ᵀ(dY ⊙ X̂), dβ = 1ᵀ dY: the sums over the batch."""
    return {
        "dgamma": Rule(
            tex=L.tex_total(r"\left(<dY> \odot <Xhat>\right)"),
            code=L.total("<dY> * <Xhat>"),
            element=_d("<gamma>_{i}") + r" = \sum_{s} " + _d("<Y>_{<si>}") + " <Xhat>_{<si>}",
        ),
        "dbeta": Rule(
            tex=L.tex_total("<dY>"),
            code=L.total("<dY>"),
            element=_d("<beta>_{i}") + r" = \sum_{s} " + _d("<Y>_{<si>}"),
        ),
    }


def _graph_rules(L: _Layout) -> dict[str, Rule]:
    """∂C/∂X̂, ∂C/∂σ², ∂C/∂μ (and the identity that empties its second term), then ∂C/∂X along
    the three paths: node by node through X → (μ, σ², X̂) → Y."""
    centered, tex_centered = L.centered, L.tex_centered
    return {
        "dXhat": Rule(
            tex=r"<dY> \odot \left(" + L.tex_spread("<gamma>") + r"\right)",
            code=f"<dY> * ({L.spread('<gamma>')})",
            element=_d("<Xhat>_{<si>}") + " = " + _d("<Y>_{<si>}") + " <gamma>_{i}",
        ),
        "dvar": Rule(
            tex=r"-\tfrac{1}{2} \left(" + L.tex_total(r"\left(<dXhat> \odot " + tex_centered
            + r"\right)") + r"\right) \odot \left(<var> + \epsilon\right)^{\odot -3/2}",
            code=f"-0.5 * ({L.total('<dXhat> * ' + centered)}) * (<var> + eps) ** -1.5",
            element=_d("<var>_{i}") + r" = -\frac{1}{2} \sum_{s} " + _d("<Xhat>_{<si>}")
            + r" \left(<X>_{<si>} - <mu>_{i}\right) \left(<var>_{i} + \epsilon\right)^{-3/2}",
        ),
        "dmu": Rule(
            tex=r"-\left(" + L.tex_total("<dXhat>") + r"\right) \oslash " + _TEX_ROOT
            + r" - \tfrac{2}{S}\, <dvar> \odot " + L.tex_total(tex_centered),
            code=f"-({L.total('<dXhat>')}) / {_ROOT} - 2 / S * <dvar> * ({L.total(centered)})",
            element=_d("<mu>_{i}") + r" = -\sum_{s} " + _d("<Xhat>_{<si>}")
            + r" \frac{1}{\sqrt{<var>_{i} + \epsilon}} - \frac{2}{S} " + _d("<var>_{i}")
            + r" \sum_{s} \left(<X>_{<si>} - <mu>_{i}\right)",
        ),
        "centered_sum": Rule(
            lhs=L.tex_total(tex_centered), lhs_code=L.total(centered), tex=r"\mathbf{0}",
            code="0 * <mu>",
        ),
        "dX_steps": Rule(
            tex=r"<dXhat> \oslash " + L.tex_roots + r" + \tfrac{2}{S} " + tex_centered
            + r" \odot \left(" + L.tex_spread("<dvar>") + r"\right) + \tfrac{1}{S} "
            + L.tex_spread("<dmu>"),
            code=f"<dXhat> / ({L.spread(_ROOT)}) + 2 / S * {centered} * ({L.spread('<dvar>')})"
            f" + {L.spread('<dmu>')} / S",
            element=_d("<X>_{<si>}") + " = " + _d("<Xhat>_{<si>}")
            + r" \frac{1}{\sqrt{<var>_{i} + \epsilon}} + " + _d("<var>_{i}")
            + r" \frac{2\left(<X>_{<si>} - <mu>_{i}\right)}{S} + " + _d("<mu>_{i}")
            + r" \frac{1}{S}",
        ),
    }  # fmt: skip


def _jacobian_rules(L: _Layout) -> dict[str, Rule]:
    """The Jacobian over the whole batch and its vector-Jacobian product, then the identity
    X − 1μ = X̂ ⊙ 1√(σ² + ε) and the compact form ∂C/∂X the engine computes."""
    jacobian, vjp, vector, pair = (
        ("sitj", "si,sitj->tj", "ki", "si,ti") if L.rows else ("isjt", "is,isjt->jt", "ik", "is,it")
    )
    per_unit = "<gamma> / " + _ROOT  # γ ⊘ √(σ² + ε)
    entry = r"\frac{\partial <Y>_{<si>}}{\partial <X>_{<tj>}}"
    return {
        "jacobian": Rule(
            tex=r"\left[" + entry + r"\right]",
            code=f"einsum('{vector},ij,st->{jacobian}', {per_unit}, eye(<n>), eye(S) - ones(S, S) / S)"
            f" - einsum('{vector},ij,{pair}->{jacobian}', {per_unit}, eye(<n>), <Xhat>, <Xhat>) / S",
            element=entry + r" = \delta_{ij} \frac{<gamma>_{i}}{\sqrt{<var>_{i} + \epsilon}}"
            r" \left(\delta_{st} - \frac{1}{S} - \frac{<Xhat>_{<si>} <Xhat>_{<ti>}}{S}\right)",
        ),
        "dX_jacobian": Rule(
            tex=r"\left[\sum_{s,i} " + _d("<Y>_{<si>}") + " " + entry + r"\right]",
            code=f"einsum('{vjp}', <dY>, <J>)",
        ),
        "centered": Rule(
            lhs=L.tex_centered, lhs_code=L.centered, tex=r"<Xhat> \odot " + L.tex_roots,
            code=f"<Xhat> * ({L.spread(_ROOT)})",
        ),
        "dX": Rule(
            tex=r"\tfrac{1}{S} \left(S\, <dY> - " + L.tex_spread("<dbeta>") + r" - <Xhat> \odot "
            r"\left(" + L.tex_spread("<dgamma>") + r"\right)\right) \odot \left("
            + L.tex_spread(r"\left(<gamma> \oslash " + _TEX_ROOT + r"\right)") + r"\right)",
            code=f"(S * <dY> - {L.spread('<dbeta>')} - <Xhat> * ({L.spread('<dgamma>')}))"
            f" * ({L.spread('(' + per_unit + ')')}) / S",
            element=_d("<X>_{<si>}") + r" = \frac{<gamma>_{i}}{S\sqrt{<var>_{i} + \epsilon}}"
            r" \left(S " + _d("<Y>_{<si>}") + " - " + _d("<beta>_{i}") + r" - <Xhat>_{<si>} "
            + _d("<gamma>_{i}") + r"\right)",
        ),
    }  # fmt: skip


BATCH_NORM_TEX = Formula(
    forward=(
        r"<mu> = \tfrac{1}{S}\mathbf{1}^\top <X>, \quad "
        r"<var> = \tfrac{1}{S}\mathbf{1}^\top \left(<X> - \mathbf{1}<mu>\right)^{\odot 2}, \quad "
        r"<Xhat> = \left(<X> - \mathbf{1}<mu>\right) \operatorname{diag}\left(<var> + \epsilon\right)^{-1/2}, \quad "
        r"<Y> = <Xhat> \operatorname{diag}(<gamma>) + \mathbf{1}<beta>^\top"
    ),
    forward_element=(
        r"<Y>_{si} = <gamma>_{i} \frac{<X>_{si} - <mu>_{i}}{\sqrt{<var>_{i} + \epsilon}} + <beta>_{i},"
        r" \quad <mu>_{i} = \frac{1}{S}\sum_{t} <X>_{ti},"
        r" \quad <var>_{i} = \frac{1}{S}\sum_{t} \left(<X>_{ti} - <mu>_{i}\right)^{2}"
    ),
    backward=(
        r"<dgamma> = \mathbf{1}^\top \left(<dY> \odot <Xhat>\right), \quad "
        r"<dbeta> = \mathbf{1}^\top <dY>, \quad "
        r"<dX> = \tfrac{1}{S}\left(S\,<dY> - \mathbf{1}\,<dbeta>^\top - <Xhat> \operatorname{diag}(<dgamma>)\right)"
        r" \operatorname{diag}\left(<gamma> \oslash \sqrt{<var> + \epsilon}\right)"
    ),
    backward_element=(
        r"\frac{\partial L}{\partial <gamma>_{i}} = \sum_{s} \frac{\partial L}{\partial <Y>_{si}} <Xhat>_{si},"
        r" \quad \frac{\partial L}{\partial <beta>_{i}} = \sum_{s} \frac{\partial L}{\partial <Y>_{si}},"
        r" \quad \frac{\partial L}{\partial <X>_{si}} = \frac{<gamma>_{i}}{S\sqrt{<var>_{i} + \epsilon}}"
        r" \left(S \frac{\partial L}{\partial <Y>_{si}} - \sum_{t} \frac{\partial L}{\partial <Y>_{ti}}"
        r" - <Xhat>_{si} \sum_{t} \frac{\partial L}{\partial <Y>_{ti}} <Xhat>_{ti}\right)"
    ),
    jacobian=(
        r"\frac{\partial <Y>_{si}}{\partial <X>_{tj}} = \delta_{ij}\,"
        r"\frac{<gamma>_{i}}{\sqrt{<var>_{i} + \epsilon}}"
        r" \left(\delta_{st} - \frac{1}{S} - \frac{<Xhat>_{si} <Xhat>_{ti}}{S}\right)"
        r" \quad \text{(over the whole batch: } \partial \operatorname{vec}(<Y>) / \partial"
        r" \operatorname{vec}(<X>) \text{ is } Sn \times Sn \text{, the samples are coupled)}"
    ),
    text=(
        "Y = γ ⊙ (X − μ)/√(σ² + ε) + β with the batch's mean μ and biased variance σ² (training); "
        "dγ = 1ᵀ(dY ⊙ X̂), dβ = 1ᵀ dY, dX = (1/S)(S dY − 1 dβᵀ − X̂ diag(dγ)) diag(γ/√(σ² + ε)); "
        "J over the whole batch, S·n × S·n (the samples are coupled)"
    ),
    notations={"row": batch_norm_rules(True), "column": batch_norm_rules(False)},
)

BATCH_NORM_EVALUATION_TEX = Formula(
    forward=(
        r"<Y> = \left(<X> - \mathbf{1}<mu>\right)"
        r" \operatorname{diag}\left(<gamma> \oslash \sqrt{<var> + \epsilon}\right) + \mathbf{1}<beta>^\top"
    ),
    forward_element=(
        r"<Y>_{si} = <gamma>_{i} \frac{<X>_{si} - <mu>_{i}}{\sqrt{<var>_{i} + \epsilon}} + <beta>_{i}"
    ),
    backward=(
        r"<dgamma> = \mathbf{1}^\top \left(<dY> \odot <Xhat>\right), \quad "
        r"<dbeta> = \mathbf{1}^\top <dY>, \quad "
        r"<dX> = <dY> \operatorname{diag}\left(<gamma> \oslash \sqrt{<var> + \epsilon}\right)"
    ),
    backward_element=(
        r"\frac{\partial L}{\partial <X>_{si}} = \frac{\partial L}{\partial <Y>_{si}}"
        r" \frac{<gamma>_{i}}{\sqrt{<var>_{i} + \epsilon}}"
    ),
    jacobian=(
        r"\frac{\partial y}{\partial x} = \operatorname{diag}\left(<gamma> \oslash \sqrt{<var> + \epsilon}\right)"
    ),
    text=(
        "Y = γ ⊙ (X − μ̂)/√(σ̂² + ε) + β with the running statistics μ̂, σ̂² (evaluation); "
        "dX = dY ⊙ γ/√(σ̂² + ε), J = diag(γ/√(σ̂² + ε)) per sample"
    ),
)


@dataclass(frozen=True)
class BatchNormCache:
    """What backward needs: X̂, 1/√(σ² + ε), and the statistics used (the batch's in training)."""

    Xhat: Array
    inv_std: Array
    mean: Array
    var: Array
    training: bool


class BatchNorm:
    """Y = γ ⊙ X̂ + β, X̂ the features standardized by the batch's (training) or running (evaluation)
    mean and variance; γ, β, running_mean, running_var all of shape (n,)."""

    name = "bn"
    tex = BATCH_NORM_TEX
    tex_evaluation = BATCH_NORM_EVALUATION_TEX

    def __init__(
        self,
        gamma: Array,
        beta: Array,
        running_mean: Array,
        running_var: Array,
        *,
        eps: float = EPS,
        momentum: float = MOMENTUM,
    ) -> None:
        self.gamma, self.beta = gamma, beta
        self.running_mean, self.running_var = running_mean, running_var
        self.eps, self.momentum = eps, momentum

    @classmethod
    def initial(cls, n: int, dtype: Any = np.float64) -> BatchNorm:
        """γ = 1, β = 0, running mean 0 and running variance 1, as PyTorch starts."""
        ones, zeros = np.ones(n, dtype=dtype), np.zeros(n, dtype=dtype)
        return cls(ones, zeros.copy(), zeros, ones.copy())

    @property
    def n(self) -> int:
        """n, the number of features normalized (γ's length)."""
        return int(self.gamma.shape[0])

    @property
    def params(self) -> dict[str, Array]:
        """{"gamma": γ (n,), "beta": β (n,)}: the arrays an optimizer updates, by name."""
        return {"gamma": self.gamma, "beta": self.beta}

    @property
    def statistics(self) -> dict[str, Array]:
        """The running statistics: state, not parameters (no optimizer updates them)."""
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def describe(self) -> str:
        """``"bn"``, for summaries."""
        return "bn"

    def forward(self, X: Array, mode: Mode = EVALUATION) -> tuple[Array, BatchNormCache]:
        """Y = γ ⊙ X̂ + β; X̂ from the batch's μ, σ² in training, the running ones in evaluation."""
        xp = namespace(X)
        if mode.training:
            if X.shape[0] < 2:
                raise ShapeError(
                    "batch norm in training mode needs at least 2 samples per batch (the variance "
                    f"of one sample is 0/0); got a batch of {X.shape[0]}: use a larger batch, or "
                    "evaluation mode"
                )
            mean = xp.mean(X, axis=0)
            centered = X - mean
            var = xp.mean(centered * centered, axis=0)
        else:
            mean, var = self.running_mean, self.running_var
            centered = X - mean
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        Xhat = centered * inv_std
        return Xhat * self.gamma + self.beta, BatchNormCache(
            Xhat, inv_std, mean, var, mode.training
        )

    def update_statistics(self, cache: BatchNormCache) -> None:
        """After a training pass: running ← (1 − m)·running + m·batch, the variance unbiased."""
        if not cache.training:
            return
        S, m = cache.Xhat.shape[0], self.momentum
        self.running_mean = (1.0 - m) * self.running_mean + m * cache.mean
        self.running_var = (1.0 - m) * self.running_var + m * cache.var * (S / (S - 1))

    def vjp(self, cache: BatchNormCache, dY: Array) -> tuple[Array, dict[str, Array]]:
        """dγ = 1ᵀ(dY ⊙ X̂), dβ = 1ᵀ dY; dX = (1/S)(S dY − 1dβᵀ − X̂ diag(dγ)) diag(γ/√(σ² + ε)) in
        training, dX = dY ⊙ γ/√(σ̂² + ε) in evaluation."""
        xp = namespace(dY)
        Xhat, scale = cache.Xhat, self.gamma * cache.inv_std
        dgamma, dbeta = xp.sum(dY * Xhat, axis=0), xp.sum(dY, axis=0)
        if not cache.training:
            return dY * scale, {"gamma": dgamma, "beta": dbeta}
        S = dY.shape[0]
        return (scale / S) * (S * dY - dbeta - Xhat * dgamma), {"gamma": dgamma, "beta": dbeta}

    def jacobian(self, cache: BatchNormCache) -> Array:
        """Training: ∂vec(Y)/∂vec(X) over the whole batch, (S·n, S·n), entry (s·n + i, t·n + j) =
        δ_ij γ_i/√(σ²_i + ε) (δ_st − 1/S − x̂_si x̂_ti / S). Evaluation: diag(γ/√(σ̂² + ε)) per
        sample, (S, n, n), like every other layer."""
        xp = namespace(cache.Xhat)
        S, n = cache.Xhat.shape
        scale = self.gamma * cache.inv_std
        if not cache.training:
            return diagonal_jacobians(xp.broadcast_to(scale[None, :], (S, n)))
        XhatT = cache.Xhat.T  # (n, S): K[i, s, t] = δ_st − 1/S − x̂_si x̂_ti / S
        K = (
            xp.eye(S, dtype=XhatT.dtype)[None, :, :]
            - 1.0 / S
            - XhatT[:, :, None] * XhatT[:, None, :] / S
        )
        M = xp.permute_dims(
            scale[:, None, None] * K, (1, 0, 2)
        )  # M[s, i, t] = γ_i/√(σ²_i+ε) K[i, s, t]
        eye = xp.eye(n, dtype=XhatT.dtype)
        return xp.reshape(M[:, :, :, None] * eye[None, :, None, :], (S * n, S * n))

    def param_jacobians(self, cache: BatchNormCache) -> dict[str, Array]:
        """∂y_s/∂γ = diag(x̂_s) and ∂y_s/∂β = I, per sample (S, n, n), in both modes."""
        xp = namespace(cache.Xhat)
        S, n = cache.Xhat.shape
        eye = xp.eye(n, dtype=cache.Xhat.dtype)
        return {
            "gamma": diagonal_jacobians(cache.Xhat),
            "beta": xp.broadcast_to(eye[None, :, :], (S, n, n)),
        }
