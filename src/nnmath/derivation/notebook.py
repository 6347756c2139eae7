"""The derivation as a notebook uses it: one object to display, index, evaluate, verify and check.

``derive("3-10relu-6relu-3softmax")`` returns a :class:`Document`, a
:class:`~nnmath.derivation.document.Derivation` with the front door's conveniences::

    d = derive("3-10relu-6relu-3softmax")   # the loss matches the output: cross-entropy
    d                                        # Jupyter shows the whole derivation, MathJax-typeset
    d["dW3"]                                 # one equation: matrix and element form, its code
    values = d.evaluate()                    # every quantity on numbers (random, seed 0)
    d["dW3"].evaluate(values)                # one equation on those numbers
    d.verify()                               # every equation against an independent computation
    d.example(steps=3)                       # the worked example, numbers substituted
    d.check("dZ3 = (Y - Yhat) / S")          # a formula of your own, its mistake named

Each result displays itself in a notebook (``_repr_markdown_``), and the math is written in the
``$…$`` and ``$$…$$`` that the notebook's own MathJax renders. This module only calls the others;
they do not import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

import numpy as np

from nnmath.derivation.check import Verdict, check_formula
from nnmath.derivation.document import Derivation
from nnmath.derivation.document import derive as assemble
from nnmath.derivation.example import WorkedExample, example_problem, worked_example
from nnmath.derivation.notation import Notation
from nnmath.derivation.render import to_markdown
from nnmath.derivation.verify import Problem, environment, make_problem, verify
from nnmath.losses import Loss
from nnmath.network import MLP
from nnmath.pairing import check_pair
from nnmath.penalties import Penalty
from nnmath.spec import NetworkSpec


class Document(Derivation):
    """A derivation that displays itself, and can be evaluated, verified and checked in place."""

    def __repr__(self) -> str:
        count = sum(1 for _ in self.equations())
        checked = "" if self.passed is None else f", verified: {self.passed}"
        return (
            f"<derivation of {self.spec} with {self.loss.name}, {self.notation.title}, "
            f"{count} equations{checked}>"
        )

    def _repr_markdown_(self) -> str:
        return to_markdown(self)

    def problem(
        self, model: MLP | None = None, X: Any = None, T: Any = None, *, samples: int = 4,
        seed: int = 0,
    ) -> Problem:  # fmt: skip
        """Numbers to evaluate on: the model's weights (or random ones), X and T (or random)."""
        return make_problem(self, samples=samples, seed=seed, model=model, X=X, T=T)

    def evaluate(
        self, model: MLP | None = None, X: Any = None, T: Any = None, *, samples: int = 4,
        seed: int = 0,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        """Every quantity of the derivation on numbers, in its notation: the inputs, the
        parameters, then each equation's value in the order the document derives them."""
        values = environment(self, self.problem(model, X, T, samples=samples, seed=seed))
        for equation in self.equations():
            if equation.name and equation.kind != "forward":
                values[equation.name] = equation.evaluate(values)
        return values

    def verify(
        self, model: MLP | None = None, X: Any = None, T: Any = None, *, samples: int = 4,
        seed: int = 0,
    ) -> Document:  # fmt: skip
        """Check every equation against an independent computation; the document, now showing
        each check, is returned (``.passed`` says whether all held)."""
        verify(self, self.problem(model, X, T, samples=samples, seed=seed))
        return self

    def example(
        self,
        model: MLP | None = None,
        X: Any = None,
        T: Any = None,
        *,
        learning_rate: float = 0.5,
        freeze: Iterable[str] = (),
        steps: int = 1,
        samples: int = 2,
        seed: int = 0,
    ) -> WorkedExample:
        """The worked example: every equation with its numbers, one step of gradient descent and
        ``steps`` in all (see :func:`~nnmath.derivation.example.worked_example`)."""
        problem = example_problem(self, samples=samples, seed=seed, model=model, X=X, T=T)
        return worked_example(self, problem, learning_rate, freeze=freeze, steps=steps)

    def check(self, formula: str, *, samples: int = 4, seed: int = 0) -> Verdict:
        """Check a formula of your own, ``NAME = EXPRESSION``; the verdict names the mistake."""
        return check_formula(self, make_problem(self, samples=samples, seed=seed), formula)


def derive(
    spec: NetworkSpec | str,
    loss: Loss | str | None = None,
    notation: Notation | str = "row",
    *,
    penalty: Penalty | None = None,
    weighted: bool = False,
) -> Document:
    """The backprop derivation of ``spec`` with ``loss`` (default: the one that matches the
    output) in the row or column notation, as a :class:`Document`; ``penalty`` (an
    ``nnmath.penalties.L2``/``L1``) joins the cost and every ∂C/∂W, ``weighted=True`` makes the
    cost the weighted mean Σ_s w_s ℓ_s / Σ_s w_s. A loss that does not fit the output layer is
    refused, an unusual one warned about (``nnmath.pairing``)."""
    derivation = assemble(spec, loss, notation, penalty=penalty, weighted=weighted)
    check_pair(derivation.spec.output, derivation.spec.n_out, derivation.loss)
    return Document(**{f.name: getattr(derivation, f.name) for f in fields(derivation)})
