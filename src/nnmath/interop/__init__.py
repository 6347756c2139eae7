"""Bridges to other frameworks: PyTorch modules (``pytorch``), ONNX graphs (``onnx_export``) and
scikit-learn's MLP estimators (``scikit_learn``).

``from nnmath.interop import to_torch, from_torch, export_onnx, from_sklearn`` imports the
framework a function needs only when that function is first looked up, so ``import nnmath`` never
needs torch, onnx or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import Any

# ONNX opsets the exporter writes: Softmax acts on one axis from 13; 17 is widely supported
# (onnxruntime ≥ 1.11); GELU is one operator from 20. Here so the CLI needs no onnx to show them.
ONNX_MIN_OPSET = 13
ONNX_DEFAULT_OPSET = 17
ONNX_GELU_OPSET = 20

_HOMES = {
    "to_torch": "pytorch",
    "from_torch": "pytorch",
    "export_onnx": "onnx_export",
    "from_sklearn": "scikit_learn",
    "to_sklearn": "scikit_learn",
    "estimator_model": "scikit_learn",
    "save_estimator": "scikit_learn",
}

__all__ = [*sorted(_HOMES), "ONNX_DEFAULT_OPSET", "ONNX_GELU_OPSET", "ONNX_MIN_OPSET"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'nnmath.interop' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nnmath.interop.{_HOMES[name]}"), name)
