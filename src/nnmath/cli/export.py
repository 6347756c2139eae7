"""``nnmath export MODEL OUT.onnx``: a model file as an ONNX graph that takes raw features."""

from __future__ import annotations

import argparse

from nnmath.errors import NNMathError
from nnmath.interop import ONNX_DEFAULT_OPSET, ONNX_GELU_OPSET, ONNX_MIN_OPSET
from nnmath.modelfile import load_model
from nnmath.outputs import check_output

EPILOG = """\
examples:
  nnmath export runs/iris/model.nnm iris.onnx
  nnmath export runs/iris/model.nnm iris.onnx --opset 20 --float64

The graph's input 'X' takes raw feature rows (N, n_features): the model's standardization is
part of the graph. Its output 'Y' is the class probabilities (N, n_classes) for a classifier, in
the order of the class names stored in the graph's metadata, or the predicted targets in the
data's units for a regressor; a classifier's second output 'label' (N) is the predicted class
name. Run it with onnxruntime:
  session = onnxruntime.InferenceSession("iris.onnx")
  P, labels = session.run(["Y", "label"], {"X": X.astype("float32")})
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nnmath export`` and its options."""
    parser = subparsers.add_parser(
        "export",
        help="write a model file as an ONNX graph (needs the onnx extra)",
        description="Read a model file and write its forward pass, with its preprocessing, as "
        "an ONNX graph checked by onnx.checker. Needs 'pip install nnmath[onnx]'.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help="a .nnm model file")
    parser.add_argument("output", metavar="OUT.onnx", help="the ONNX file to write")
    parser.add_argument(
        "--opset",
        type=int,
        default=ONNX_DEFAULT_OPSET,
        help=f"ONNX opset, {ONNX_MIN_OPSET} or later (default {ONNX_DEFAULT_OPSET}; GELU is one "
        f"operator from {ONNX_GELU_OPSET} on)",
    )
    parser.add_argument(
        "--float64",
        action="store_true",
        help="write a float64 graph (default float32; onnxruntime runs leaky_relu, elu and "
        "softplus in float32 only)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Check the output path, load the model, write its ONNX graph and say what it holds; exit
    status 0."""
    try:
        from nnmath.interop.onnx_export import export_onnx
    except ImportError as error:
        raise NNMathError(str(error)) from None
    check_output(args.output, "the ONNX file", example="model.onnx")
    model = load_model(args.model)
    onnx_model = export_onnx(
        model, args.output, opset=args.opset, dtype="float64" if args.float64 else "float32"
    )
    graph = onnx_model.graph
    ops = ", ".join(dict.fromkeys(node.op_type for node in graph.node))
    label = ", label (N) the predicted class" if len(graph.output) > 1 else ""
    print(
        f"wrote {args.output}: ONNX opset {args.opset}, {len(graph.node)} nodes ({ops}); "
        f"input X (N, {model.network.n_in}) raw features, output Y "
        f"(N, {graph.output[0].type.tensor_type.shape.dim[1].dim_value}){label}"
    )
    return 0
