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
from nnmath.derivation.notation import Notation, Symbol, get_notation, shapes_and_dims
from nnmath.derivation.shapes import Shape, infer_shape
from nnmath.derivation.syntax import parse
from nnmath.errors import SpecError
from nnmath.layers import LINEAR_TEX, Rule, activation_layer
from nnmath.losses import Loss, fuse, get_loss
from nnmath.pairing import default_loss_name
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

    @property
    def K(self) -> int:
        return len(self.spec.layers)

    def equations(self) -> Iterator[Equation]:
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
            raise SpecError(
                f"no equation defines {name!r}; the names are: {', '.join(self.names)}"
            )
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
    (index pairs ``<si>`` follow the notation), ``<x>``/``<y>`` → one sample's vectors."""
    text = re.sub(r"<(s[a-z])>", lambda m: notation.index(m.group(1)), template)

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


class _Builder:
    """Collects the sections of one derivation; one method per part of the document."""

    def __init__(self, spec: NetworkSpec, loss: Loss, notation: Notation) -> None:
        self.spec, self.loss, self.notation = spec, loss, notation
        self.K = len(spec.layers)
        self.table = notation.symbols(spec.sizes)
        self.layers = [activation_layer(layer.activation, layer.parameter) for layer in spec.layers]
        self.fused = fuse(spec.output, loss)
        self.sections: list[Section] = []
        # gradient symbols: dX, dW1, …, and ∂ℓ/∂Ŷ, ∂ℓ/∂Z_K for the output layer's steps
        for code in list(self.table):
            if code in ("S", "Y", "C") or (code.startswith("n") and code[1:].isdigit()):
                continue
            self.table[notation.gradient(self.table[code]).code] = notation.gradient(
                self.table[code]
            )
        for code in ("Yhat", f"Z{self.K}"):
            symbol = notation.gradient(self.table[code], "l")
            self.table[symbol.code] = symbol
        n = spec.sizes[-1]
        self.table[f"J{self.K}"] = Symbol(
            f"J{self.K}",
            "J_s",
            "",
            "",
            f"the S Jacobians of layer {self.K}'s activation",
            ("S", n, n),
        )

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
            "Each layer is a linear map followed by its activation, applied to the whole batch.",
        )
        for layer in range(1, self.K + 1):
            n_in, n_out = self.spec.sizes[layer - 1], self.spec.sizes[layer]
            Z, A = self.sym(f"Z{layer}"), self.a(layer)
            bind = {
                "X": self.a(layer - 1),
                "Y": Z,
                "W": self.sym(f"W{layer}"),
                "b": self.sym(f"b{layer}"),
            }
            section.equations.append(
                self.equation(
                    self.linear()["forward"],
                    bind,
                    name=Z.code,
                    lhs=Z.tex,
                    kind="forward",
                    width=layer,
                    note=f"Layer {layer}: {n_in} inputs to {n_out} units, then "
                    f"{self.layers[layer - 1].describe()}.",
                )
            )
            section.equations.append(
                self.equation(
                    self.rules(layer)["forward"],
                    {"X": Z, "Y": A},
                    name=A.code,
                    lhs=A.tex,
                    kind="forward",
                    width=layer,
                )
            )
        self.sections.append(section)

    def cost(self) -> None:
        value = self.loss.tex.notations[self.notation.name]["value"]
        bind = {"A": self.sym("Yhat"), "T": self.sym("Y")}
        n = self.spec.sizes[-1]
        rule = Rule(
            tex=r"\frac{1}{S} \sum_{s=1}^{S} \ell_s, \qquad \ell_s = " + value.tex,
            code=f"({value.code}) / S",
        )
        text = (
            f"The loss ({self.loss.name}) of one sample, $\\ell_s$, sums over its {n} "
            f"output{'s' if n > 1 else ''}; the "
            "cost $C$ is the mean over the $S$ samples of the batch. The cost alone owns the factor "
            "$1/S$: below, $\\ell = \\sum_s \\ell_s$ is the summed loss, so that $C = \\ell / S$."
        )
        section = Section("Loss and cost", text)
        section.equations.append(
            self.equation(rule, bind, name="C", lhs="C", kind="cost", width=self.K)
        )
        self.sections.append(section)

    def output_layer(self) -> None:
        """The output layer's ∂C/∂Z_K, derived: loss gradient, Jacobian, chain rule, 1/S."""
        K = self.K
        Yhat, Y, Z = self.sym("Yhat"), self.sym("Y"), self.sym(f"Z{K}")
        dl_dYhat, dl_dZ = self.d(Yhat, "l"), self.d(Z, "l")
        section = Section(
            f"Backward pass, layer {K} (output): ${self.d(Z).tex}$ derived",
            f"The gradient of the cost with respect to the output layer's pre-activations, in "
            f"steps: the loss gradient, the {self.layers[-1].describe()} Jacobian, their product, "
            + ("the simplification of the pair, " if self.fused else "")
            + "and the factor $1/S$ of the cost.",
        )
        eqs = section.equations
        eqs += self.loss_gradient(Yhat, Y, dl_dYhat)
        eqs.append(self.output_jacobian(Yhat, Z))
        eqs += self.chain_rule(Yhat, Z, dl_dYhat, dl_dZ)
        final = Rule(tex=rf"\frac{{1}}{{S}}\, {dl_dZ.tex}", code=f"{dl_dZ.code} / S")
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
            Rule(tex=rf"\frac{{1}}{{S}}\, {dl_dYhat.tex}", code=f"{dl_dYhat.code} / S"),
            {},
            name=dYhat.code,
            lhs=dYhat.tex,
            kind="gradient",
            width=K,
            wrt="Yhat",
            note="The cost's gradient with respect to the predictions carries the cost's "
            "factor $1/S$ (the steps below keep to $\\ell$ and divide by $S$ at the end):",
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
        """The last step: dZ_K = (1/S) ∂ℓ/∂Z_K, the cost's 1/S."""
        dZ = self.d(Z)
        rule = Rule(
            tex=final.tex,
            code=final.code,
            element=r"\frac{\partial C}{\partial <Z>_{<sj>}} = \frac{1}{S}"
            r" \frac{\partial \ell_s}{\partial <Z>_{<sj>}}",
        )
        return self.equation(
            rule,
            {"Z": Z},
            name=dZ.code,
            lhs=dZ.tex,
            kind="gradient",
            width=self.K,
            wrt=Z.code,
            note=f"**Step {5 if self.fused else 4}, the batch.** The cost $C = \\ell / S$ owns the "
            "factor $1/S$:",
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
        return Rule(tex=rf"\frac{{1}}{{S}}\, {_parenthesized(tex)}", code=f"{_grouped(code)} / S")

    def hidden_layers(self) -> None:
        linear = self.linear()
        for layer in range(self.K, 0, -1):
            A_in, Z = self.a(layer - 1), self.sym(f"Z{layer}")
            W, b, dZ = self.sym(f"W{layer}"), self.sym(f"b{layer}"), self.d(Z)
            title = f"Backward pass, layer {layer}"
            section = Section(title)
            if layer < self.K:
                A = self.a(layer)
                section.text = (
                    f"The gradient ${self.d(A).tex}$ arrives from layer {layer + 1}; through the "
                    f"{self.layers[layer - 1].describe()} activation it becomes ${dZ.tex}$, "
                    "and the linear map gives the parameters' gradients and the gradient for the "
                    "layer below."
                )
                section.equations.append(
                    self.equation(
                        self.rules(layer)["dX"],
                        {"dY": self.d(A), "X": Z, "Y": A},
                        name=dZ.code,
                        lhs=dZ.tex,
                        kind="gradient",
                        width=layer,
                        wrt=Z.code,
                    )
                )
            else:
                section.text = (
                    f"From ${dZ.tex}$, the linear map gives the parameters' gradients and the "
                    "gradient for the layer below."
                )
            bind = {"X": A_in, "Y": Z, "W": W, "b": b, "dY": dZ}
            for role, target in (("dW", W), ("db", b), ("dX", A_in)):
                grad = self.d(target)
                note = ""
                if role == "dX" and layer == 1:
                    note = "The gradient with respect to the inputs (not needed for training):"
                section.equations.append(
                    self.equation(
                        linear[role],
                        bind,
                        name=grad.code,
                        lhs=grad.tex,
                        kind="gradient",
                        width=layer,
                        wrt=target.code,
                        note=note,
                    )
                )
            self.sections.append(section)


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
    spec: NetworkSpec | str, loss: Loss | str | None = None, notation: Notation | str = "row"
) -> Derivation:
    """The backprop derivation of the network ``spec`` with ``loss`` (a Loss, a loss name, or
    None for the loss that matches the output activation), in the given notation."""
    spec = spec if isinstance(spec, NetworkSpec) else parse_spec(spec)
    if spec.mode_dependent:
        raise SpecError(
            f"derivations of batch norm and dropout are not written yet ({spec}); "
            "'nnmath gradcheck' checks that network's gradients"
        )
    notation = get_notation(notation) if isinstance(notation, str) else notation
    if loss is None or isinstance(loss, str):
        loss = get_loss(loss or default_loss_name(spec.output))
    if not hasattr(loss.tex, "notations") or notation.name not in loss.tex.notations:
        raise SpecError(f"loss {loss.name!r} has no formulas for the {notation.name} notation")
    builder = _Builder(spec, loss, notation)
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
    )
