"""Derivations: "write backprop for my neural network", answered for any network nnmath can build.

- :func:`derive` assembles the document (notation, forward pass, loss and cost, the output layer
  derived step by step, the δ recursion layer by layer) from the primitives' formula records;
- :func:`verify` evaluates every equation on numbers and compares it with an independent
  computation (central differences, a numerical Jacobian, the engine's forward pass);
- :func:`to_markdown`, :func:`to_latex` and :func:`to_json` write it out;
- :func:`worked_example` evaluates it on small numbers, with one SGD step;
- :func:`check_formula` checks a user's own formula and names the mistake it recognises.

The formulas are evaluated by :mod:`nnmath.derivation.evaluate`, which runs no Python: it accepts a
whitelist of NumPy syntax and refuses everything else.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from nnmath.derivation.check import Verdict, check_formula
from nnmath.derivation.document import Check, Derivation, Equation, Section, derive
from nnmath.derivation.evaluate import evaluate
from nnmath.derivation.example import (
    WorkedExample,
    example_json,
    example_markdown,
    example_problem,
    worked_example,
)
from nnmath.derivation.notation import COLUMN, NOTATIONS, ROW, Notation, get_notation
from nnmath.derivation.render import to_json, to_latex, to_markdown
from nnmath.derivation.syntax import FormulaSyntaxError, UnknownNameError, parse
from nnmath.derivation.verify import Problem, make_problem, verify

__all__ = [
    "COLUMN",
    "NOTATIONS",
    "ROW",
    "Check",
    "Derivation",
    "Equation",
    "FormulaSyntaxError",
    "Notation",
    "Problem",
    "Section",
    "UnknownNameError",
    "Verdict",
    "WorkedExample",
    "check_formula",
    "derive",
    "evaluate",
    "example_json",
    "example_markdown",
    "example_problem",
    "get_notation",
    "make_problem",
    "parse",
    "to_json",
    "to_latex",
    "to_markdown",
    "verify",
    "worked_example",
    "write_text_atomic",
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
