"""``nnmath playground``: a local web page where a network trains and its equations show live numbers."""

from __future__ import annotations

import argparse
import textwrap

from nnmath.errors import SpecError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nnmath playground`` and its options."""
    parser = subparsers.add_parser(
        "playground",
        help="open a web page where a network trains and its equations show live numbers",
        description=textwrap.fill(
            "Start a local web server and open its page: choose a 2-D data set (or upload a small "
            "CSV file) and a network, press play, and watch the decision boundary, the neurons and "
            "the derivation of backprop with the current batch's numbers, every equation checked. "
            "Works offline. Needs the playground extra: pip install 'nnmath[playground]'.",
            width=78,
        ),
        epilog="examples: nnmath playground\n          nnmath playground --port 8080 --no-browser",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this computer only; 0.0.0.0 warns)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    parser.add_argument(
        "--no-browser", action="store_true", help="print the address, do not open a browser"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve the playground page on ``--host``:``--port`` until interrupted (needs
    nnmath[playground])."""
    try:
        from nnmath.playground.server import serve
    except ImportError as error:
        raise SpecError(
            f"nnmath playground needs the playground extra ({error.name} is missing): "
            "pip install 'nnmath[playground]'"
        ) from None
    return serve(args.host, args.port, open_browser=not args.no_browser)
