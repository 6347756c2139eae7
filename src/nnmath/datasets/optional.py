"""Optional packages, imported only by the code that needs them, each named with its extra.

- scikit-learn and mnist1d load the bundled data sets: ``pip install 'nnmath[data]'``;
- pyarrow reads CSV and Parquet files: ``pip install 'nnmath[files]'``.

A missing one raises a DataError that names the package and the extra that provides it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from nnmath.errors import DataError

_DATA_EXTRA = "pip install 'nnmath[data]'"
"""How to install what the bundled data sets need."""

_PACKAGE_OF_MODULE = {"sklearn": "scikit-learn", "mnist1d": "mnist1d", "pyarrow": "pyarrow"}
_EXTRA_OF_PACKAGE = {"scikit-learn": "data", "mnist1d": "data", "pyarrow": "files"}


def _import_optional(module: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise a DataError naming the package and the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package = _PACKAGE_OF_MODULE.get(module.split(".")[0], module)
        extra = _EXTRA_OF_PACKAGE.get(package, "all")
        raise DataError(
            f"{purpose} needs the optional package {package!r}, which is not installed "
            f"({err}); install it with: pip install 'nnmath[{extra}]'"
        ) from err
