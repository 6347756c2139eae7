"""nnmath: the mathematics of neural networks as software you can run, read and trust.

The names a user reaches for first, one import away::

    import nnmath as nm

    data = nm.load_dataset("digits")
    model = nm.MLP("64-128relu-10softmax", seed=0)
    history = nm.fit(model, data.X / 16, data.y, epochs=20)
    nm.save(model, "digits.nnm")

Each name lives in its own module (``MLP`` in :mod:`nnmath.network`, ``fit`` in
:mod:`nnmath.training`, …) and is imported the first time it is used, so ``import nnmath`` costs
almost nothing (not even NumPy) and the command line starts fast. The errors are imported at once:
they are small, and ``except nm.NNMathError`` should never import the engine.
"""

from __future__ import annotations

import importlib

from nnmath.errors import (
    DataError,
    DivergenceError,
    ModelFileError,
    NNMathError,
    OutputError,
    ShapeError,
    SpecError,
    WrongTypeError,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing would double this import's time
if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from typing import Any

    from nnmath.datasets import Dataset, list_datasets, load_dataset
    from nnmath.derivation import check_formula, derive, worked_example
    from nnmath.gradcheck import check_gradients
    from nnmath.losses import get_loss
    from nnmath.modelfile import TrainedModel, load, save
    from nnmath.network import MLP
    from nnmath.optimizers import make_optimizer
    from nnmath.spec import parse_spec
    from nnmath.training import EarlyStopping, History, fit

_LAZY = {
    # the network
    "MLP": "nnmath.network",
    "parse_spec": "nnmath.spec",
    # training
    "fit": "nnmath.training",
    "History": "nnmath.training",
    "EarlyStopping": "nnmath.training",
    "get_loss": "nnmath.losses",
    "make_optimizer": "nnmath.optimizers",
    # model files
    "save": "nnmath.modelfile",
    "load": "nnmath.modelfile",
    "TrainedModel": "nnmath.modelfile",
    # data
    "load_dataset": "nnmath.datasets",
    "list_datasets": "nnmath.datasets",
    "Dataset": "nnmath.datasets",
    # the mathematics, explained and checked
    "derive": "nnmath.derivation",
    "worked_example": "nnmath.derivation",
    "check_formula": "nnmath.derivation",
    "check_gradients": "nnmath.gradcheck",
}
"""Front-door name → the module that defines it, imported on first use."""

__all__ = [
    "DataError",
    "Dataset",
    "DivergenceError",
    "EarlyStopping",
    "History",
    "MLP",
    "ModelFileError",
    "NNMathError",
    "OutputError",
    "ShapeError",
    "SpecError",
    "TrainedModel",
    "WrongTypeError",
    "__version__",
    "check_formula",
    "check_gradients",
    "derive",
    "fit",
    "get_loss",
    "list_datasets",
    "load",
    "load_dataset",
    "make_optimizer",
    "parse_spec",
    "save",
    "worked_example",
]


def _installed_version() -> str:
    """The version pip installed (the package's metadata), or "0+unknown" for a bare source tree."""
    from importlib import metadata

    try:
        return metadata.version("nnmath")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str) -> Any:
    """Import a front-door name (or ``__version__``) on first use, then keep it here."""
    if name == "__version__":
        value: Any = _installed_version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'nnmath' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
