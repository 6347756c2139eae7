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
import tempfile
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
from nnmath.errors import SpecError

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
    "check_writable",
]


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename, so
    that a reader never sees half a file and a crash leaves the old one in place."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Refuse, before any work, an output path that cannot be written: a folder where a file is
    expected, a missing folder, no permission. Returns the path."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise SpecError(f"{target} is a folder; give a file name in it, e.g. {target / 'out'}")
    if not folder.is_dir():
        raise SpecError(
            f"cannot write {target}: the folder {folder} does not exist; create it first"
        )
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise SpecError(f"cannot write {target}: no permission there; choose another place")
    return target
