"""The derivation of backprop for a network, assembled from the primitives' own formula records.

:func:`derive` walks a network spec and asks each primitive for its Rules in the chosen notation
(``Formula.notations`` of Linear, the activation layers, the loss and the fused output pair, and the
activation table's templates): the forward pass, the loss and the cost, the output layer's gradient
derived step by step (loss gradient, activation Jacobian, their product, the simplification of a
fused pair and what it assumes, then 1/S), and the δ recursion layer by layer. Nothing here is
written for one network: the same code writes the 3-10-6-3 request and a 2-2-2 sigmoid net.

Every equation carries its NumPy code (the Rule's, rendered with the same symbols), so that
``verify`` evaluates exactly the printed formula and ``check`` can show the correct one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnmath.derivation.evaluate import TRUSTED, evaluate
from nnmath.derivation.modifiers import ModifierSteps, modifier_symbols
from nnmath.derivation.notation import Notation, Symbol, get_notation, shapes_and_dims
from nnmath.derivation.shapes import Shape, infer_shape
from nnmath.derivation.syntax import parse
from nnmath.errors import SpecError
from nnmath.layers import LINEAR_TEX, Rule, activation_layer
from nnmath.losses import Loss, fuse, get_loss
from nnmath.pairing import default_loss_name
from nnmath.penalties import Penalty
from nnmath.spec import NetworkSpec, parse_spec


@dataclass
class Check:
    """How one equation fared against an independent computation."""

    passed: bool
    error: float  # norm-wise relative error ‖x − x̂‖ / (‖x‖ + ‖x̂‖)
    max_abs: float
    method: str  # what it was compared with
    kinks: int = 0  # coordinates left out because ±ε crossed a ReLU kink
    element_error: float | None = None  # the element form's relative error, where it has code
    absolute: bool = False  # passed by its absolute error alone: the value is (about) zero


@dataclass
class Equation:
    """One equation of a derivation: LaTeX and NumPy code of the same formula, and its check."""

    name: str  # the code name it defines ("dW3"); empty for an identity
    lhs: str  # LaTeX left-hand side
    tex: str  # LaTeX right-hand side, matrix form
    code: str  # NumPy right-hand side
    kind: str  # forward | cost | gradient | jacobian | identity
    wrt: str = ""  # gradient, jacobian: the variable (code name)
    objective: str = "C"  # gradient: "C" (the cost) or "l" (the summed loss ℓ = Σ ℓ_s)
    element: str = ""  # LaTeX, element form (the whole equation)
    element_code: str = ""  # NumPy of the element form where it differs from ``code``
    lhs_code: str = ""  # identity: NumPy of the left-hand side
    note: str = ""  # Markdown (with $math$) printed before the equation
    result: Check | None = None

    @property
    def assignment(self) -> str:
        """The equation as one line of code: ``dW3 = A2.T @ dZ3`` (``lhs == rhs`` for identities)."""
        return f"{self.name} = {self.code}" if self.name else f"{self.lhs_code}  ==  {self.code}"

    def evaluate(self, values: Mapping[str, Any]) -> np.ndarray:
        """The right-hand side on numbers: ``values`` binds the names it uses (see
        ``Derivation.evaluate`` in :mod:`nnmath.derivation.notebook` for all of them at once)."""
        return evaluate(self.code, values, budget=TRUSTED)

    def _repr_markdown_(self) -> str:
        """The equation as a notebook shows it: matrix form, element form, code, check."""
        lines = [f"$${self.lhs} = {self.tex}$$"]
        if self.element:
            lines.append(f"$${self.element}$$")
        line = f"Code: `{self.assignment}`"
        if self.result is not None:
            mark = "✓" if self.result.passed else "✗ FAILED"
            line += f" — {mark} against {self.result.method}: rel. error {self.result.error:.1e}"
        return "\n\n".join([*lines, line])


@dataclass
class Section:
    """A titled part of the document: its introduction and its equations, in order."""
    title: str
    text: str = ""
    equations: list[Equation] = field(default_factory=list)


@dataclass
class Derivation:
    """The document: sections of equations, and the symbols they use."""

    spec: NetworkSpec
    loss: Loss
    notation: Notation
    symbols: dict[str, Symbol]
    sections: list[Section]
    fused: bool
    verification: dict[str, object] | None = None  # how --verify drew its numbers
    penalty: Penalty | None = None  # a penalty on the weights, a term of the cost
    weighted: bool = False  # the cost is the weighted mean Σ w_s ℓ_s / Σ w_s

    @property
    def K(self) -> int:
        """K, the number of layers."""
        return len(self.spec.layers)

    def pre(self, layer: int) -> str:
        """The name of layer l's activation input: U_l after batch norm, else Z_l."""
        return f"U{layer}" if self.spec.layers[layer - 1].batch_norm else f"Z{layer}"

    def equations(self) -> Iterator[Equation]:
        """Every equation of the document, section by section."""
        for section in self.sections:
            yield from section.equations

    def defining(self, name: str) -> Equation | None:
        """The last equation that defines ``name`` (the final, simplest form of a gradient)."""
        found = None
        for equation in self.equations():
            if equation.name == name:
                found = equation
        return found

    @property
    def names(self) -> list[str]:
        """Every name an equation defines, in the order the document derives them."""
        return list(dict.fromkeys(eq.name for eq in self.equations() if eq.name))

    def __getitem__(self, name: str) -> Equation:
        """``derivation["dW3"]``: the equation that defines dW3 (its final form)."""
        equation = self.defining(name)
        if equation is None:
            raise SpecError(f"no equation defines {name!r}; the names are: {', '.join(self.names)}")
        return equation

    @property
    def passed(self) -> bool | None:
        """True if every equation was checked and passed, None if it was not verified."""
        results = [eq.result for eq in self.equations()]
        if any(r is None for r in results):
            return None
        return all(r.passed for r in results if r is not None)

    def shapes(self, S: object = "S") -> tuple[dict[str, Shape], dict[str, object]]:
        """Every symbol's shape (S symbolic by default) and the size names, for shape inference."""
        return shapes_and_dims(self.symbols, self.spec.sizes, S)


# ---- rendering a Rule with a layer's symbols ---------------------------------------------------


def render_tex(
    template: str,
    symbols: dict[str, Symbol],
    notation: Notation,
    *,
    n: int | None = None,
    objective: str = "C",
    vectors: dict[str, str] | None = None,
) -> str:
    """A Rule's LaTeX with placeholders bound: ``<X>`` → the symbol's matrix, ``<X>_{si}`` → an entry
    (index pairs ``<si>``, ``<tj>`` follow the notation), ``<x>``/``<y>`` → one sample's vectors."""
    text = re.sub(r"<([st][a-z])>", lambda m: notation.index(m.group(1)), template)

    def entry(match: re.Match[str]) -> str:
        symbol = symbols.get(match.group(1))
        return symbol.at(match.group(2)) if symbol else match.group(0)

    text = re.sub(r"<(\w+)>_\{([^{}]*)\}", entry, text)
    for key, vector in (vectors or {}).items():
        text = text.replace(f"<{key}>", vector)
    for key, symbol in symbols.items():
        text = text.replace(f"<{key}>", symbol.tex)
    text = text.replace("<C>", r"\ell" if objective == "l" else objective)
    if n is not None:
        text = text.replace("<n>", str(n))
    return text


def render_code(
    template: str,
    symbols: dict[str, Symbol],
    notation: Notation,
    *,
    n_name: str | None = None,
    vectors: dict[str, str] | None = None,
) -> str:
    """A Rule's code with placeholders bound to code names; ``<x>``/``<y>`` to the batch as rows."""
    text = template
    for key, code in (vectors or {}).items():
        text = text.replace(f"<{key}>", notation.rows(code))
    for key, symbol in symbols.items():
        text = text.replace(f"<{key}>", symbol.code)
    if n_name is not None:
        text = text.replace("<n>", n_name)
    return text


# ---- the derivation ----------------------------------------------------------------------------


class _Builder(ModifierSteps):
    """Collects the sections of one derivation; one method per part of the document."""

    def __init__(
        self,
        spec: NetworkSpec,
        loss: Loss,
        notation: Notation,
        penalty: Penalty | None = None,
        weighted: bool = False,
    ) -> None:
        self.spec, self.loss, self.notation = spec, loss, notation
        self.penalty, self.weighted = penalty, weighted
        self.K = len(spec.layers)
        self.layers = [activation_layer(layer.activation, layer.parameter) for layer in spec.layers]
        self.fused = fuse(spec.output, loss)
        self.sections: list[Section] = []
        self.table = self.symbols()

    def symbols(self) -> dict[str, Symbol]:
        """The notation's symbols, those of batch norm and dropout, the penalty's α and the sample
        weights w where there are some, then every gradient: dX, dW1, …, and ∂ℓ/∂Ŷ, ∂ℓ/∂Z_K (or
        ∂ℓ/∂U_K) and the Jacobians J_s for the output layer's steps."""
        notation, K, n = self.notation, self.K, self.spec.sizes[-1]
        extra = modifier_symbols(notation, self.spec)
        if self.weighted:
            shape = ("S", 1) if notation.samples_are_rows else (1, "S")
            extra.setdefault("Y", {})["w"] = Symbol(
                "w", "w", "w_{{index}}", "w_s", "the sample weights, one per sample", shape
            )
        if self.penalty is not None:
            extra.setdefault("Y", {})["alpha"] = Symbol(
                "alpha", r"\alpha", "", "", f"the strength of the {self.penalty.name.upper()} "
                "penalty", ()
            )  # fmt: skip
        table: dict[str, Symbol] = {}
        for code, symbol in notation.symbols(self.spec.sizes).items():
            table[code] = symbol
            table.update(extra.get(code, {}))
        if self.weighted:
            table["C"] = Symbol(
                "C", "C", "", "", r"the cost, $C = \sum_s w_s \ell_s / \sum_s w_s$", ()
            )
        for code in [code for code in table if _has_gradient(code)]:
            table[notation.gradient(table[code]).code] = notation.gradient(table[code])
        for code in ("Yhat", self.pre_code(K)):
            symbol = notation.gradient(table[code], "l")
            table[symbol.code] = symbol
        table[f"J{K}"] = Symbol(
            f"J{K}", "J_s", "", "", f"the S Jacobians of layer {K}'s activation", ("S", n, n)
        )
        return table

    def pre_code(self, layer: int) -> str:
        """Layer l's activation input: U_l after batch norm, else Z_l."""
        return f"U{layer}" if self.spec.layers[layer - 1].batch_norm else f"Z{layer}"

    def post(self, layer: int) -> Symbol:
        """Layer l's activation output: H_l before dropout, else A_l (Ŷ for l = K)."""
        dropout = self.spec.layers[layer - 1].dropout is not None
        return self.sym(f"H{layer}") if dropout else self.a(layer)

    # ---- helpers -----------------------------------------------------------------------------

    def sym(self, code: str) -> Symbol:
        return self.table[code]

    def a(self, layer: int) -> Symbol:
        """A_l: X for l = 0, Ŷ for l = K."""
        return self.sym("X" if layer == 0 else "Yhat" if layer == self.K else f"A{layer}")

    def d(self, symbol: Symbol, objective: str = "C") -> Symbol:
        return self.sym(self.notation.gradient(symbol, objective).code)

    def equation(
        self,
        rule: Rule,
        bind: dict[str, Symbol],
        *,
        name: str,
        lhs: str,
        kind: str,
        width: int,
        objective: str = "C",
        vectors: dict[str, Symbol] | None = None,
        **extra: str,
    ) -> Equation:
        """An Equation from a Rule with its placeholders bound to symbols; ``<n>`` is n_width."""
        notation = self.notation
        n, n_name = self.spec.sizes[width], f"n{width}"
        tex_vectors = {k: v.vector for k, v in (vectors or {}).items()}
        code_vectors = {k: v.code for k, v in (vectors or {}).items()}

        def tex(template: str) -> str:
            return render_tex(
                template, bind, notation, n=n, objective=objective, vectors=tex_vectors
            )

        def code(template: str) -> str:
            return render_code(template, bind, notation, n_name=n_name, vectors=code_vectors)

        equation = Equation(
            name=name,
            lhs=tex(rule.lhs) if rule.lhs else lhs,
            tex=tex(rule.tex),
            code=code(rule.code),
            kind=kind,
            objective=objective,
            element=tex(rule.element) if rule.element else "",
            element_code=code(rule.element_code) if rule.element_code else "",
            lhs_code=code(rule.lhs_code) if rule.lhs_code else "",
            **extra,
        )
        self.conform(equation)
        return equation

    def conform(self, equation: Equation) -> None:
        """Every equation's code must conform with S symbolic and give its left-hand side's shape."""
        shapes, dims = shapes_and_dims(self.table, self.spec.sizes)
        shape = infer_shape(parse(equation.code).expression, shapes, dims)
        if equation.element_code:
            element = infer_shape(parse(equation.element_code).expression, shapes, dims)
            assert element == shape, (equation.element_code, element, shape)
        if equation.lhs_code:
            lhs = infer_shape(parse(equation.lhs_code).expression, shapes, dims)
            assert lhs == shape, (equation.lhs_code, lhs, shape)
        elif equation.name:
            assert shapes[equation.name] == shape, (equation.code, shapes[equation.name], shape)

    def rules(self, layer: int) -> dict[str, Rule]:
        """The activation of layer l's Rules in this notation."""
        return dict(self.layers[layer - 1].tex.notations[self.notation.name])

    def linear(self) -> dict[str, Rule]:
        return dict(LINEAR_TEX.notations[self.notation.name])

    # ---- the parts ---------------------------------------------------------------------------

    def notation_section(self) -> None:
        self.sections.append(Section("Notation", self.notation.description))

    def forward(self) -> None:
        section = Section(
            "Forward pass",
            "Each layer is a linear map followed by its activation, applied to the whole batch"
            + (" (batch norm and dropout in training mode)." if self.spec.mode_dependent else "."),
        )
        for layer in range(1, self.K + 1):
            section.equations += self.forward_layer(layer)
        self.sections.append(section)

    def forward_layer(self, layer: int) -> list[Equation]:
        """Z_l, [μ_l, σ²_l, Ẑ_l, U_l], the activation, [dropout]."""
        n_in, n_out = self.spec.sizes[layer - 1], self.spec.sizes[layer]
        Z = self.sym(f"Z{layer}")
        bind = {
            "X": self.a(layer - 1),
            "Y": Z,
            "W": self.sym(f"W{layer}"),
            "b": self.sym(f"b{layer}"),
        }
        steps = [self.layers[layer - 1].describe()]
        modifiers = self.spec.layers[layer - 1]
        if modifiers.batch_norm:
            steps.insert(0, "batch norm")
        if modifiers.dropout is not None:
            steps.append(f"dropout({modifiers.dropout:g})")
        equations = [
            self.equation(
                self.linear()["forward"],
                bind,
                name=Z.code,
                lhs=Z.tex,
                kind="forward",
                width=layer,
                note=f"Layer {layer}: {n_in} inputs to {n_out} units, then {', then '.join(steps)}.",
            )  # fmt: skip
        ]
        if modifiers.batch_norm:
            equations += self.batch_norm_forward(layer)
        pre, post = self.sym(self.pre_code(layer)), self.post(layer)
        equations.append(
            self.equation(
                self.rules(layer)["forward"],
                {"X": pre, "Y": post},
                name=post.code,
                lhs=post.tex,
                kind="forward",
                width=layer,
            )  # fmt: skip
        )
        if modifiers.dropout is not None:
            equations.append(self.dropout_forward(layer))
        return equations

    def cost(self) -> None:
        rules = self.loss.tex.notations[self.notation.name]
        bind = {"A": self.sym("Yhat"), "T": self.sym("Y")}
        n = self.spec.sizes[-1]
        if self.weighted:
            samples = rules["samples"]
            rule = Rule(
                tex=r"\frac{\sum_{s=1}^{S} w_s \ell_s}{\sum_{s=1}^{S} w_s}, \qquad \ell_s = "
                + samples.tex,
                code=f"sum(w * ({samples.code})) / sum(w)",
            )
            mean = (
                "cost $C$ is their mean over the $S$ samples of the batch, weighted by $w_s$ "
                "(class weights give each sample its class's weight). The cost alone owns the "
                "factor $1/\\sum_s w_s$, which takes the place of $1/S$: below, $\\ell = "
                "\\sum_s \\ell_s$ is the summed, unweighted loss."
            )
        else:
            value = rules["value"]
            rule = Rule(
                tex=r"\frac{1}{S} \sum_{s=1}^{S} \ell_s, \qquad \ell_s = " + value.tex,
                code=f"({value.code}) / S",
            )
            mean = (
                "cost $C$ is the mean over the $S$ samples of the batch. The cost alone owns the "
                "factor $1/S$: below, $\\ell = \\sum_s \\ell_s$ is the summed loss, so that "
                "$C = \\ell / S$."
            )
        text = (
            f"The loss ({self.loss.name}) of one sample, $\\ell_s$, sums over its {n} "
            f"output{'s' if n > 1 else ''}; the {mean}"
        )
        if self.penalty is not None:
            rule, text = self.penalized_cost(rule), text + " " + self.penalty_words()
        section = Section("Loss and cost", text)
        section.equations.append(
            self.equation(rule, bind, name="C", lhs="C", kind="cost", width=self.K)
        )
        self.sections.append(section)

    def penalty_scale(self) -> tuple[str, str]:
        """(LaTeX, code) of the penalty's factor k: 1, or 1/Σw (1/S) for a per-sample penalty."""
        assert self.penalty is not None
        if not self.penalty.per_sample:
            return "", ""
        if self.weighted:
            return r"\frac{1}{\sum_s w_s}", " / sum(w)"
        return r"\frac{1}{S}", " / S"

    def penalized_cost(self, rule: Rule) -> Rule:
        """C + k P(W): P = (α/2) Σ_l ‖W_l‖² (L2) or α Σ_l Σ |W_l,ij| (L1), over every layer."""
        assert self.penalty is not None
        k_tex, k_code = self.penalty_scale()
        Ws = [self.sym(f"W{layer}") for layer in range(1, self.K + 1)]
        if self.penalty.name == "l2":
            tex = r"\frac{\alpha}{2} \sum_{l} \lVert W_l \rVert_F^{2}"
            code = "alpha / 2 * (" + " + ".join(f"sum({W.code} ** 2)" for W in Ws) + ")"
        else:
            tex = r"\alpha \sum_{l} \sum_{i,j} \left|W_{l,ij}\right|"
            code = "alpha * (" + " + ".join(f"sum(abs({W.code}))" for W in Ws) + ")"
        head, _, tail = rule.tex.partition(r", \qquad")
        return Rule(
            tex=f"{head} + {_times(k_tex, tex)}, " + r"\qquad" + tail,
            code=f"{rule.code} + {code}{k_code}",
        )

    def penalty_words(self) -> str:
        assert self.penalty is not None
        k_tex, _ = self.penalty_scale()
        what = (
            r"$\frac{\alpha}{2} \sum_l \lVert W_l \rVert_F^2$ (L2, weight decay)"
            if self.penalty.name == "l2"
            else r"$\alpha \sum_l \sum_{i,j} |W_{l,ij}|$ (L1)"
        )
        scale = f", scaled by ${k_tex}$ (scikit-learn's convention)" if k_tex else ""
        return (
            f"The penalty {what}{scale}, with $\\alpha = {self.penalty.alpha:g}$, is a term of "
            "the cost on the weights alone (never the biases): it adds its own gradient to every "
            r"$\partial C / \partial W_l$ and nothing elsewhere."
        )

    def output_layer(self) -> None:
        """The output layer's ∂C/∂Z_K, derived: loss gradient, Jacobian, chain rule, 1/S."""
        K = self.K
        Yhat, Y, Z = self.sym("Yhat"), self.sym("Y"), self.sym(self.pre_code(K))
        dl_dYhat, dl_dZ = self.d(Yhat, "l"), self.d(Z, "l")
        section = Section(
            f"Backward pass, layer {K} (output): ${self.d(Z).tex}$ derived",
            f"The gradient of the cost with respect to the output layer's pre-activations, in "
            f"steps: the loss gradient, the {self.layers[-1].describe()} Jacobian, their product, "
            + ("the simplification of the pair, " if self.fused else "")
            + f"and the factor ${self.factor_tex()}$ of the cost.",
        )
        eqs = section.equations
        eqs += self.loss_gradient(Yhat, Y, dl_dYhat)
        eqs.append(self.output_jacobian(Yhat, Z))
        eqs += self.chain_rule(Yhat, Z, dl_dYhat, dl_dZ)
        final = self.batch_rule(dl_dZ.tex, dl_dZ.code)
        if self.fused is not None:
            final = self.simplification(eqs, Yhat, Y, Z, dl_dYhat, dl_dZ, self.spec.sizes[-1])
        eqs.append(self.batch_step(final, Z))
        self.sections.append(section)

    def per(self) -> str:
        """How one sample sits in a batch matrix: a row or a column."""
        return "row" if self.notation.samples_are_rows else "column"

    def loss_gradient(self, Yhat: Symbol, Y: Symbol, dl_dYhat: Symbol) -> list[Equation]:
        """Step 1: ∂ℓ/∂Ŷ from the loss's record, and the cost's ∂C/∂Ŷ = (1/S) ∂ℓ/∂Ŷ."""
        K, dYhat = self.K, self.d(Yhat)
        step = self.equation(
            self.loss.tex.notations[self.notation.name]["grad"],
            {"A": Yhat, "T": Y},
            name=dl_dYhat.code,
            lhs=dl_dYhat.tex,
            kind="gradient",
            width=K,
            objective="l",
            wrt="Yhat",
            note=f"**Step 1, the loss gradient.** The loss of sample $s$ depends only on its own "
            f"prediction, so {self.per()} $s$ of $\\partial \\ell / \\partial \\hat{{Y}}$ is "
            f"$\\partial \\ell_s / \\partial \\hat{{y}}_s$:",
        )
        cost = self.equation(
            self.batch_rule(dl_dYhat.tex, dl_dYhat.code),
            {},
            name=dYhat.code,
            lhs=dYhat.tex,
            kind="gradient",
            width=K,
            wrt="Yhat",
            note="The cost's gradient with respect to the predictions carries the cost's "
            f"factor ${self.factor_tex()}$ (the steps below keep to $\\ell$ and "
            + ("apply it" if self.weighted else "divide by $S$")
            + " at the end):",
        )
        return [step, cost]

    def output_jacobian(self, Yhat: Symbol, Z: Symbol) -> Equation:
        """Step 2: the output activation's Jacobian J_s for one sample."""
        n = self.spec.sizes[-1]
        return self.equation(
            self.rules(self.K)["jacobian"],
            {"X": Z, "Y": Yhat},
            name=f"J{self.K}",
            lhs=rf"J_s = \frac{{\partial \hat{{y}}_s}}{{\partial {Z.vector}}}",
            kind="jacobian",
            width=self.K,
            wrt=Z.code,
            vectors={"x": Z, "y": Yhat},
            note=f"**Step 2, the activation's Jacobian.** For one sample, in numerator layout "
            f"($J_s$ is ${n} \\times {n}$, entry $(j, k)$ is "
            f"$\\partial \\hat{{y}}_{{s,j}} / \\partial z_{{s,k}}$):",
        )

    def chain_rule(
        self, Yhat: Symbol, Z: Symbol, dl_dYhat: Symbol, dl_dZ: Symbol
    ) -> list[Equation]:
        """Step 3: ∂ℓ/∂Z_K sample by sample (the row times J_s), then for the whole batch."""
        J = f"J{self.K}"
        if self.notation.samples_are_rows:
            vjp = Rule(
                tex=r"\frac{\partial \ell_s}{\partial \hat{y}_s}\, J_s",
                code=f"vjp({dl_dYhat.code}, {J})",
            )
        else:
            vjp = Rule(
                tex=r"J_s^\top\, \frac{\partial \ell_s}{\partial \hat{y}_s}",
                code=f"vjp({dl_dYhat.code}.T, {J}).T",
            )
        common = {"name": dl_dZ.code, "kind": "gradient", "width": self.K, "objective": "l"}
        sample = self.equation(
            vjp,
            {},
            lhs=rf"\frac{{\partial \ell_s}}{{\partial {Z.vector}}}",
            wrt=Z.code,
            note=f"**Step 3, the chain rule.** Sample by sample ({self.per()} $s$ of "
            f"$\\partial \\ell / \\partial {Z.tex}$):",
            **common,
        )
        batch = self.equation(
            self.rules(self.K)["dX"],
            {"dY": dl_dYhat, "X": Z, "Y": Yhat},
            lhs=dl_dZ.tex,
            wrt=Z.code,
            note="The same product for the whole batch (the activation layer's backward "
            "formula with $\\partial \\ell / \\partial \\hat{Y}$ in place of the incoming gradient):",
            **common,
        )
        return [sample, batch]

    def batch_step(self, final: Rule, Z: Symbol) -> Equation:
        """The last step: dZ_K = (1/S) ∂ℓ/∂Z_K, the cost's 1/S (w_s / Σw, weighted)."""
        dZ = self.d(Z)
        share = r"\frac{w_s}{\sum_t w_t}" if self.weighted else r"\frac{1}{S}"
        rule = Rule(
            tex=final.tex,
            code=final.code,
            element=r"\frac{\partial C}{\partial <Z>_{<sj>}} = " + share
            + r" \frac{\partial \ell_s}{\partial <Z>_{<sj>}}",
        )  # fmt: skip
        owns = (
            "The weighted cost $C = \\sum_s w_s \\ell_s / \\sum_s w_s$ gives sample $s$ the "
            "share $w_s / \\sum_t w_t$"
            if self.weighted
            else "The cost $C = \\ell / S$ owns the factor $1/S$"
        )
        return self.equation(
            rule, {"Z": Z}, name=dZ.code, lhs=dZ.tex, kind="gradient", width=self.K,
            wrt=Z.code, note=f"**Step {5 if self.fused else 4}, the batch.** {owns}:",
        )  # fmt: skip

    def factor_tex(self) -> str:
        """The cost's factor: 1/S, or 1/Σ_s w_s for a weighted cost."""
        return r"1/\sum_s w_s" if self.weighted else "1/S"

    def batch_rule(self, tex: str, code: str) -> Rule:
        """(1/S) G, or (w 1ᵀ) ⊙ G / Σ_s w_s for a weighted cost: the cost's factor applied to a
        batch G (S × n_K in the row notation) of per-sample gradients of ℓ."""
        if not self.weighted:
            return Rule(tex=rf"\frac{{1}}{{S}}\, {tex}", code=f"{code} / S")
        n = f"n{self.K}"
        if self.notation.samples_are_rows:
            spread_tex, spread = r"\left(w \mathbf{1}^\top\right)", f"(w @ ones(1, {n}))"
        else:
            spread_tex, spread = r"\left(\mathbf{1} w\right)", f"(ones({n}, 1) @ w)"
        return Rule(
            tex=rf"\frac{{1}}{{\sum_s w_s}}\, {spread_tex} \odot {tex}",
            code=f"{spread} * {code} / sum(w)",
        )

    def simplification(
        self,
        eqs: list[Equation],
        Yhat: Symbol,
        Y: Symbol,
        Z: Symbol,
        dl_dYhat: Symbol,
        dl_dZ: Symbol,
        n: int,
    ) -> Rule:
        """Step 4 of a fused pair: substitute, simplify, state the assumption; returns the result."""
        assert self.fused is not None
        rules = self.fused.tex.notations[self.notation.name]
        bind = {"A": Yhat, "T": Y, "Z": Z, "dA": dl_dYhat}
        notes = _simplification_notes(rules)
        for role, rule in rules.items():
            if role.startswith("substitute") or role == "assumption":
                eqs.append(
                    self.equation(
                        rule, bind, name="", lhs="", kind="identity", width=self.K,
                        note=notes.get(role, ""),
                    )
                )  # fmt: skip
            else:  # general, simplified: ∂ℓ/∂Z_K
                eqs.append(
                    self.equation(
                        rule, bind, name=dl_dZ.code, lhs=dl_dZ.tex, kind="gradient",
                        width=self.K, objective="l", wrt=Z.code, note=notes[role],
                    )
                )  # fmt: skip
        simplified = rules["simplified"]
        tex = render_tex(simplified.tex, bind, self.notation, n=n)
        code = render_code(simplified.code, bind, self.notation, n_name=f"n{self.K}")
        return self.batch_rule(_parenthesized(tex), _grouped(code))

    def hidden_layers(self) -> None:
        for layer in range(self.K, 0, -1):
            section = Section(f"Backward pass, layer {layer}", self.layer_words(layer))
            if layer < self.K:
                section.equations += self.through_activation(layer)
            if self.spec.layers[layer - 1].batch_norm:
                section.equations += self.batch_norm_backward(layer)
            section.equations += self.linear_backward(layer)
            self.sections.append(section)

    def layer_words(self, layer: int) -> str:
        """What a hidden layer's section does, in a sentence."""
        dZ = self.d(self.sym(f"Z{layer}"))
        steps = [f"the {self.layers[layer - 1].describe()} activation"]
        if self.spec.layers[layer - 1].dropout is not None:
            steps.insert(0, "dropout")
        if self.spec.layers[layer - 1].batch_norm:
            steps.append("batch norm")
        if layer == self.K:
            start = f"From ${self.d(self.sym(self.pre_code(layer))).tex}$,"
            start += " through batch norm," if self.spec.layers[layer - 1].batch_norm else ""
        else:
            start = (
                f"The gradient ${self.d(self.a(layer)).tex}$ arrives from layer {layer + 1}; "
                f"through {', then '.join(steps)} it becomes ${dZ.tex}$, and"
            )
        return f"{start} the linear map gives the parameters' gradients and the gradient for the layer below."

    def through_activation(self, layer: int) -> list[Equation]:
        """[Dropout's mask, then] the activation's derivative: from dA_l to the activation's input."""
        equations = []
        if self.spec.layers[layer - 1].dropout is not None:
            equations.append(self.dropout_backward(layer))
        pre, post = self.sym(self.pre_code(layer)), self.post(layer)
        equations.append(
            self.equation(
                self.rules(layer)["dX"],
                {"dY": self.d(post), "X": pre, "Y": post},
                name=self.d(pre).code,
                lhs=self.d(pre).tex,
                kind="gradient",
                width=layer,
                wrt=pre.code,
            )  # fmt: skip
        )
        return equations

    def linear_backward(self, layer: int) -> list[Equation]:
        """dW_l (with the penalty's gradient), db_l and the gradient of the layer's input."""
        linear = self.linear()
        if self.penalty is not None:
            linear["dW"] = self.penalized_gradient(linear["dW"])
        A_in, Z = self.a(layer - 1), self.sym(f"Z{layer}")
        W, b = self.sym(f"W{layer}"), self.sym(f"b{layer}")
        bind = {"X": A_in, "Y": Z, "W": W, "b": b, "dY": self.d(Z)}
        notes = {"dX": "The gradient with respect to the inputs (not needed for training):"}
        if self.spec.layers[layer - 1].batch_norm:
            notes["db"] = (
                "After batch norm the bias is redundant (batch norm subtracts the mean it "
                "shifts): its gradient vanishes."
            )
        if self.penalty is not None:
            notes["dW"] = "The penalty's gradient joins the weights' gradient:"
        return [
            self.equation(
                linear[role],
                bind,
                name=self.d(target).code,
                lhs=self.d(target).tex,
                kind="gradient",
                width=layer,
                wrt=target.code,
                note=notes.get(role, "") if role != "dX" or layer == 1 else "",
            )  # fmt: skip
            for role, target in (("dW", W), ("db", b), ("dX", A_in))
        ]

    def penalized_gradient(self, rule: Rule) -> Rule:
        """The Rule of dW_l plus k ∂P/∂W_l: k α W_l (L2) or k α sign(W_l) (L1, sign(0) = 0)."""
        assert self.penalty is not None
        k_tex, k_code = self.penalty_scale()
        entry = "ki" if self.notation.samples_are_rows else "ik"
        if self.penalty.name == "l2":
            tex, code, element = r"\alpha <W>", "alpha * <W>", rf"\alpha <W>_{{{entry}}}"
        else:
            tex, code = r"\alpha \operatorname{sign}(<W>)", "alpha * sign(<W>)"
            element = rf"\alpha \operatorname{{sign}}(<W>_{{{entry}}})"
        return Rule(
            tex=f"{rule.tex} + {_times(k_tex, tex)}",
            code=f"{rule.code} + {code}{k_code}",
            element=f"{rule.element} + {_times(k_tex, element)}",
            element_code=f"{rule.element_code} + {code}{k_code}" if rule.element_code else "",
        )


def _times(factor: str, tex: str) -> str:
    """``factor tex`` in LaTeX, or ``tex`` alone when there is no factor."""
    return f"{factor} {tex}" if factor else tex


def _has_gradient(code: str) -> bool:
    """Quantities a derivation differentiates: not data, constants, sizes, masks or Jacobians."""
    fixed = code in ("S", "Y", "C", "eps", "alpha", "w")
    return not fixed and not any(
        code.startswith(head) and code[len(head) :].isdigit() for head in ("n", "D", "Jbn")
    )


def _simplification_notes(rules: dict[str, Rule]) -> dict[str, str]:
    """The words before each step of a fused pair's simplification, by the Rule's role."""
    first = next(role for role in rules if role.startswith("substitute"))
    return {
        first: "**Step 4, the simplification.** Substitute Step 1 into Step 3:",
        "general": "so that, with no assumption on the targets,",
        "assumption": "This simplifies only where each sample's targets sum to one (one-hot "
        "labels, or any probability distribution); the check below tests it on these targets. "
        "Otherwise the general form above is the gradient.",
        "simplified": "Then"
        if "assumption" in rules
        else r"No assumption on the targets is needed (only 0 < $\hat{Y}$ < 1, which the "
        "activation guarantees):",
    }


def _grouped(code: str) -> str:
    """``code`` in parentheses unless one pair already encloses all of it."""
    depth = 0
    for position, char in enumerate(code):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and position < len(code) - 1:
            return f"({code})"
    return code if code.startswith("(") else f"({code})"


def _parenthesized(tex: str) -> str:
    """LaTeX in parentheses when it is a sum or difference not already enclosed."""
    if tex.startswith(("(", r"\left(", r"\frac")) or not re.search(r" [-+] ", tex):
        return tex
    return rf"\left({tex}\right)"


def derive(
    spec: NetworkSpec | str,
    loss: Loss | str | None = None,
    notation: Notation | str = "row",
    *,
    penalty: Penalty | None = None,
    weighted: bool = False,
) -> Derivation:
    """The backprop derivation of the network ``spec`` with ``loss`` (a Loss, a loss name, or
    None for the loss that matches the output activation), in the given notation; ``penalty``
    (``nnmath.penalties.L2``/``L1``) adds its term to the cost and to every ∂C/∂W, and
    ``weighted`` makes the cost the weighted mean Σ_s w_s ℓ_s / Σ_s w_s (sample or class weights).
    Batch norm and dropout are derived in training mode (the batch's statistics, a fixed mask)."""
    spec = spec if isinstance(spec, NetworkSpec) else parse_spec(spec)
    notation = get_notation(notation) if isinstance(notation, str) else notation
    if loss is None or isinstance(loss, str):
        loss = get_loss(loss or default_loss_name(spec.output))
    if not hasattr(loss.tex, "notations") or notation.name not in loss.tex.notations:
        raise SpecError(f"loss {loss.name!r} has no formulas for the {notation.name} notation")
    builder = _Builder(spec, loss, notation, penalty, bool(weighted))
    builder.notation_section()
    builder.forward()
    builder.cost()
    builder.output_layer()
    builder.hidden_layers()
    return Derivation(
        spec=spec,
        loss=loss,
        notation=notation,
        symbols=builder.table,
        sections=builder.sections,
        fused=builder.fused is not None,
        penalty=penalty,
        weighted=bool(weighted),
    )
