"""Derivations: "write backprop for my neural network", answered for any network nnmath can build.

- :func:`derive` assembles the document (notation, forward pass, loss and cost, the output layer
  derived step by step, the δ recursion layer by layer) from the primitives' formula records, as
  a :class:`Document`: it displays itself in a notebook, is indexed by equation (``d["dW3"]``)
  and evaluates, verifies and checks in place;
- :func:`verify` evaluates every equation on numbers and compares it with an independent
  computation (central differences, a numerical Jacobian, the engine's forward pass);
- :func:`to_markdown`, :func:`to_latex` and :func:`to_json` write it out;
- :func:`worked_example` evaluates it on small numbers (or the user's own, read by
  :func:`read_weights` and :func:`read_rows`), with one SGD step and as many more as asked;
- :func:`check_formula` checks a user's own formula and names the mistake it recognises.

The formulas are evaluated by :mod:`nnmath.derivation.evaluate`, which runs no Python: it accepts a
whitelist of NumPy syntax and refuses everything else, and a user's formula is held to a budget of
work, memory and time (:mod:`nnmath.derivation.budget`).
"""

from __future__ import annotations

import os
from pathlib import Path

from nnmath.derivation.budget import DEFAULT_BUDGET, Budget, FormulaBudgetError
from nnmath.derivation.check import Verdict, check_formula
from nnmath.derivation.document import Check, Derivation, Equation, Section
from nnmath.derivation.evaluate import evaluate
from nnmath.derivation.example import (
    WorkedExample,
    descend,
    example_json,
    example_markdown,
    example_problem,
    frozen_parameters,
    worked_example,
)
from nnmath.derivation.inputs import read_rows, read_weights, weights_from_mapping
from nnmath.derivation.notation import COLUMN, NOTATIONS, ROW, Notation, get_notation
from nnmath.derivation.notebook import Document, derive
from nnmath.derivation.render import to_json, to_latex, to_markdown
from nnmath.derivation.syntax import FormulaSyntaxError, UnknownNameError, parse
from nnmath.derivation.verify import Problem, make_problem, verify

__all__ = [
    "COLUMN",
    "DEFAULT_BUDGET",
    "NOTATIONS",
    "ROW",
    "Budget",
    "Check",
    "Derivation",
    "Document",
    "Equation",
    "FormulaBudgetError",
    "FormulaSyntaxError",
    "Notation",
    "Problem",
    "Section",
    "UnknownNameError",
    "Verdict",
    "WorkedExample",
    "check_formula",
    "derive",
    "descend",
    "evaluate",
    "example_json",
    "example_markdown",
    "example_problem",
    "frozen_parameters",
    "get_notation",
    "make_problem",
    "parse",
    "read_rows",
    "read_weights",
    "to_json",
    "to_latex",
    "to_markdown",
    "verify",
    "weights_from_mapping",
    "worked_example",
    "write_text_atomic",
]


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` as every nnmath file is written
    (``modelfile.atomic_write``: a temporary sibling, fsync, rename; missing folders are made), so
    that a reader never sees half a file and a crash leaves the old one in place."""
    from nnmath.modelfile import atomic_write  # the model file's machinery, loaded when needed

    return atomic_write(path, lambda file: file.write(text.encode("utf-8")))
