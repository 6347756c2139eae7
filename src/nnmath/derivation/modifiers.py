"""Batch norm and dropout in a derivation: their symbols, forward equations and backward steps.

A layer ``128relu+bn+dropout(0.3)`` of the spec reads, in the derivation's symbols,

    Z_l = A_{l-1} W_l + 1 b_l,   μ_l, σ²_l, Ẑ_l, U_l = Ẑ_l ⊙ (1γ_l) + 1β_l,   H_l = h(U_l),
    A_l = H_l ⊙ D_l,

with D_l dropout's scaled mask, drawn once (so the layer is linear in H_l, and its derivative is
the mask). Batch norm's backward pass is derived through its computational graph, one node at a
time (Ẑ, σ², μ, then Z along its three paths), restated as one product with its Jacobian over the
whole batch (the samples are coupled: ∂U_l/∂Z_l is (S·n) × (S·n), not S blocks of n × n), and
collected into the compact form the engine computes. The Rules come from the primitives' own
records (``BatchNorm.tex.notations``, ``Dropout(p).tex.notations``).

:class:`ModifierSteps` is a part of the derivation's builder (``document._Builder`` derives from
it); it only calls the builder's ``equation``, ``sym`` and ``d``.
"""

from __future__ import annotations

from typing import Any

from nnmath.derivation.notation import Notation, Symbol
from nnmath.dropout import DROPOUT_RULES
from nnmath.layers import Rule
from nnmath.normalization import BATCH_NORM_TEX, EPS
from nnmath.spec import NetworkSpec

GIVEN = ("S", "X", "Y", "C", "eps", "alpha", "w")  # data and constants: no gradient, not checked


def is_given(code: str) -> bool:
    """True for what a derivation takes as given: data, constants, parameters, masks, sizes."""
    head = code.rstrip("0123456789")
    return code in GIVEN or (head != code and head in ("n", "W", "b", "gamma", "beta", "D"))


def modifier_symbols(notation: Notation, spec: NetworkSpec) -> dict[str, dict[str, Symbol]]:
    """The symbols batch norm and dropout add to layer l, keyed by where they go in the table:
    ``b{l}`` (after the bias: γ, β), ``Z{l}`` (after Z: μ, σ², Ẑ, U, the Jacobian, H, D)."""
    found: dict[str, dict[str, Symbol]] = {}
    for l, layer in enumerate(spec.layers, 1):
        n, vector = layer.size, (1, layer.size) if notation.samples_are_rows else (layer.size, 1)
        after_b, after_z = found.setdefault(f"b{l}", {}), found.setdefault(f"Z{l}", {})

        def add(where: dict[str, Symbol], code: str, letter: str, meaning: str, shape: Any) -> None:
            matrix, entry, sample = notation.layer(letter, l)  # noqa: B023 - used at once
            where[code] = Symbol(code, matrix, entry, sample, meaning, shape)

        if layer.batch_norm:
            add(after_b, f"gamma{l}", r"\gamma", f"batch norm's scale of layer {l}", vector)
            add(after_b, f"beta{l}", r"\beta", f"batch norm's shift of layer {l}", vector)
            add(after_z, f"mu{l}", r"\mu", f"the batch's mean of each unit of Z{l}", vector)
            add(after_z, f"var{l}", r"{\sigma^2}", f"the batch's (biased) variance of Z{l}", vector)
            add(after_z, f"Zhat{l}", r"\hat{Z}", f"Z{l} normalized by μ, σ²", notation.batch(n))
            add(after_z, f"U{l}", "U", f"batch norm's output, the input of layer {l}'s "
                "activation", notation.batch(n))  # fmt: skip
            shape = ("S", n, "S", n) if notation.samples_are_rows else (n, "S", n, "S")
            add(after_z, f"Jbn{l}", r"J^{\mathrm{bn}}", f"∂U{l}/∂Z{l} over the whole batch", shape)
        if layer.dropout is not None:
            add(after_z, f"H{l}", "H", f"the activations of layer {l} before dropout",
                notation.batch(n))  # fmt: skip
            add(after_z, f"D{l}", "D", f"dropout's mask of layer {l}, scaled: entries 0 or "
                f"1/(1 − {layer.dropout:g}), drawn once", notation.batch(n))  # fmt: skip
    if any(layer.batch_norm for layer in spec.layers):
        found.setdefault("S", {})["eps"] = Symbol(
            "eps", r"\epsilon", "", "", f"batch norm's ε (= {EPS:g}), added to the variance", ()
        )
    return found


class ModifierSteps:
    """The builder's equations for batch norm and dropout (see the module's docstring)."""

    notation: Notation
    spec: NetworkSpec

    # provided by the builder
    def equation(self, rule: Rule, bind: dict[str, Symbol], **kwargs: Any) -> Any:
        """An Equation from a Rule with its placeholders bound to symbols."""

    def sym(self, code: str) -> Symbol:
        """The symbol whose name in the code is ``code`` (``Z2``, ``gamma1``)."""

    def d(self, symbol: Symbol, objective: str = "C") -> Symbol:
        """The symbol of ∂objective/∂symbol (``dZ2`` for ∂C/∂Z₂)."""

    def bn_rules(self) -> dict[str, Rule]:
        """Batch norm's Rules in the derivation's notation."""
        return dict(BATCH_NORM_TEX.notations[self.notation.name])

    def bn_bind(self, l: int) -> dict[str, Symbol]:
        """Batch norm's placeholders bound to layer l's symbols (values and gradients)."""
        names = {"X": f"Z{l}", "Y": f"U{l}", "mu": f"mu{l}", "var": f"var{l}",
                 "Xhat": f"Zhat{l}", "gamma": f"gamma{l}", "beta": f"beta{l}", "J": f"Jbn{l}"}  # fmt: skip
        bind = {key: self.sym(code) for key, code in names.items()}
        for key in ("X", "Y", "mu", "var", "Xhat", "gamma", "beta"):
            bind[f"d{key}"] = self.d(bind[key])
        return bind

    def batch_norm_forward(self, l: int) -> list[Any]:
        """μ_l, σ²_l, Ẑ_l and U_l from Z_l, with the batch's statistics (training mode)."""
        rules, bind = self.bn_rules(), self.bn_bind(l)
        steps = (("mean", "mu"), ("var", "var"), ("normalize", "Xhat"), ("forward", "Y"))
        notes = {
            "mu": f"Batch norm of layer {l} (training mode: the batch's own mean and biased "
            "variance, unit by unit):",
            "Y": r"then the learned scale and shift ($\epsilon$ keeps a constant unit finite):",
        }
        return [
            self.equation(
                rules[role],
                bind,
                name=bind[key].code,
                lhs=bind[key].tex,
                kind="forward",
                width=l,
                note=notes.get(key, ""),
            )  # fmt: skip
            for role, key in steps
        ]

    def dropout_forward(self, l: int) -> Any:
        """A_l = H_l ⊙ D_l: dropout's forward equation for layer l, with the mask drawn once."""
        H, A = self.sym(f"H{l}"), self.sym("Yhat" if l == len(self.spec.layers) else f"A{l}")
        p = self.spec.layers[l - 1].dropout
        return self.equation(
            DROPOUT_RULES["forward"], {"X": H, "Y": A, "D": self.sym(f"D{l}")},
            name=A.code, lhs=A.tex, kind="forward", width=l,
            note=f"Dropout (p = {p:g}, training mode): each unit is kept with probability "
            f"{1 - p:g} and scaled by 1/{1 - p:g}; the mask ${self.sym(f'D{l}').tex}$ is drawn once.",
        )  # fmt: skip

    def dropout_backward(self, l: int) -> Any:
        """dH_l = dA_l ⊙ D_l: the gradient through dropout of layer l, the mask held fixed."""
        H, A, D = self.sym(f"H{l}"), self.sym(f"A{l}"), self.sym(f"D{l}")
        return self.equation(
            DROPOUT_RULES["dX"], {"X": H, "Y": A, "D": D, "dY": self.d(A)},
            name=self.d(H).code, lhs=self.d(H).tex, kind="gradient", width=l, wrt=H.code,
            note=f"Through dropout: with the mask fixed, ${A.tex} = {H.tex} \\odot {D.tex}$ is "
            "linear in its input, and its derivative is the mask:",
        )  # fmt: skip

    def batch_norm_backward(self, l: int) -> list[Any]:
        """dγ, dβ, then ∂C/∂Z_l through the graph, by the whole-batch Jacobian, and compact."""
        Z, U, Zhat = self.sym(f"Z{l}"), self.sym(f"U{l}"), self.sym(f"Zhat{l}")
        mu, var = self.sym(f"mu{l}"), self.sym(f"var{l}")
        gradient, identity = self.bn_gradient, self.bn_identity
        return [
            gradient(
                l,
                "dgamma",
                f"**Batch norm.** ${U.tex}$ is ${Zhat.tex}$ scaled and shifted "
                "unit by unit, so the parameters' gradients sum over the batch:",
            ),  # fmt: skip
            gradient(l, "dbeta"),
            gradient(
                l,
                "dXhat",
                "Batch norm couples the samples: the mean and the variance of a "
                f"unit depend on every sample, so ${Z.tex}$ reaches ${Zhat.tex}$ along three "
                f"paths: directly, through ${mu.tex}$ and through ${var.tex}$. Backward "
                "through that graph one node at a time; first the normalized values:",
            ),  # fmt: skip
            gradient(
                l, "dvar", "the variance (it divides the deviations from the mean, which are held):"
            ),  # fmt: skip
            gradient(l, "dmu", "the mean (through the deviations and through the variance):"),
            identity(
                l,
                "centered_sum",
                "whose second term vanishes: the deviations from the "
                "mean sum to zero over the batch,",
            ),  # fmt: skip
            gradient(
                l,
                "dX",
                "and the input, along its three paths (straight into the "
                "normalized values, into the variance, into the mean):",
                "dX_steps",
            ),  # fmt: skip
            self.batch_jacobian(l),
            gradient(
                l,
                "dX",
                "Its vector-Jacobian product sums over every sample and unit of "
                "the output; it is the same gradient:",
                "dX_jacobian",
            ),  # fmt: skip
            identity(
                l,
                "centered",
                "**The compact form.** With the deviations written through the normalized values,",
            ),  # fmt: skip
            gradient(
                l,
                "dX",
                "substituting the three nodes' gradients collects the paths into "
                "the form nnmath's backward pass computes:",
            ),  # fmt: skip
        ]

    def bn_gradient(self, l: int, target: str, note: str = "", role: str = "") -> Any:
        """The equation of batch norm's Rule ``role`` (default: ``target``), which defines the
        gradient ``target`` (dgamma, dX, …) of layer l."""
        bind = self.bn_bind(l)
        symbol, wrt = bind[target], bind[target[1:]]
        return self.equation(
            self.bn_rules()[role or target], bind, name=symbol.code, lhs=symbol.tex,
            kind="gradient", width=l, wrt=wrt.code, note=note,
        )  # fmt: skip

    def bn_identity(self, l: int, role: str, note: str) -> Any:
        """An identity of batch norm's backward pass, checked by evaluating its two sides."""
        return self.equation(
            self.bn_rules()[role], self.bn_bind(l), name="", lhs="", kind="identity", width=l,
            note=note,
        )  # fmt: skip

    def batch_jacobian(self, l: int) -> Any:
        """∂vec(U_l)/∂vec(Z_l): batch norm's Jacobian over the whole batch, (S·n_l) × (S·n_l), as an
        array of four indices."""
        bind = self.bn_bind(l)
        J, U, Z = bind["J"], bind["Y"], bind["X"]
        return self.equation(
            self.bn_rules()["jacobian"], bind, name=J.code,
            lhs=rf"{J.tex} = \frac{{\partial \operatorname{{vec}} {U.tex}}}{{\partial \operatorname{{vec}} {Z.tex}}}",
            kind="jacobian", width=l, wrt=Z.code,
            note=f"**The Jacobian over the whole batch.** The same derivative as one matrix: "
            f"every output of a unit depends on every sample's input of that unit, so "
            f"$\\partial {U.tex} / \\partial {Z.tex}$ is not $S$ Jacobians of "
            f"${self.spec.sizes[l]} \\times {self.spec.sizes[l]}$, one per sample, as for an "
            f"activation, but one of $(S \\cdot {self.spec.sizes[l]}) \\times "
            f"(S \\cdot {self.spec.sizes[l]})$, written here as an array with four indices "
            "(zero between different units: batch norm treats each unit alone):",
        )  # fmt: skip
