"""The playground's web server: the Starlette app (routes, errors, host check) and ``serve``.

Routes (every ``/api/sessions/{key}/…`` one acts on one tab's session; the handlers are in
:mod:`nnmath.playground.endpoints`):

- ``GET /`` the page, ``GET /static/…`` its scripts and styles (all shipped in the package);
- ``GET /api/options`` what may be chosen and the bounds;
- ``POST /api/sessions`` a new session from the page's settings (address keys);
- ``POST …/settings`` change settings; ``POST …/upload`` a CSV file (raw body, size-limited);
- ``POST …/control`` play, pause, step, reset, stage (step-through); answers with a frame;
- ``GET …/data`` the points; ``GET …/math`` the derivation with values (``checks``: ``auto``
  verifies every equation when the network is small, ``all`` always); ``GET …/weight`` one
  weight's chain rule; ``POST …/check`` "check my formula"; ``GET …/download/NAME`` files;
- ``WS …/stream`` frames, at most ``FRAME_RATE`` a second, whenever the session changed.

A bad request gets status 400 (413 for a body over its limit, 404 for an ended session) with
``{"error": message}``; the message is the library's own, naming what is wrong. An unexpected
error is a 500 with its message, and the server goes on. Training runs in each session's trainer
thread, and the heavier answers in the thread pool, so no request waits for another.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import webbrowser
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from nnmath.errors import NNMathError
from nnmath.playground import endpoints as e
from nnmath.playground.config import SettingError
from nnmath.playground.sessions import MAX_SESSIONS, EndedError, Sessions

LOOPBACK = ("127.0.0.1", "localhost", "::1")
API = "/api/sessions/{key}"


async def refused(request: Request, error: Exception) -> Response:
    """A refused request as {"error": …}: 413 too large, 404 an ended session, else 400."""
    status = {e.TooLargeError: 413, EndedError: 404}.get(type(error), 400)
    return JSONResponse({"error": str(error)}, status_code=status)


async def failed(request: Request, error: Exception) -> Response:
    """An unexpected error as {"error": …} with status 500; the server goes on."""
    return JSONResponse(
        {"error": f"internal error ({type(error).__name__}: {error}); the server goes on"},
        status_code=500,
    )


ROUTES = [
    Route("/", e.index),
    Route("/api/options", e.get_options),
    Route("/api/sessions", e.create, methods=["POST"]),
    Route(f"{API}/settings", e.with_entry(e.settings), methods=["POST"]),
    Route(f"{API}/upload", e.with_entry(e.upload), methods=["POST"]),
    Route(f"{API}/control", e.with_entry(e.control), methods=["POST"]),
    Route(f"{API}/data", e.with_entry(e.data)),
    Route(f"{API}/math", e.with_entry(e.math)),
    Route(f"{API}/weight", e.with_entry(e.weight)),
    Route(f"{API}/check", e.with_entry(e.check), methods=["POST"]),
    Route(f"{API}/download/{{name}}", e.with_entry(e.download)),
    WebSocketRoute(f"{API}/stream", e.stream),
    Mount("/static", StaticFiles(directory=e.STATIC), name="static"),
]


def create_app(
    *, allowed_hosts: list[str] | None = None, max_sessions: int = MAX_SESSIONS
) -> Starlette:
    """The playground as an ASGI app; it answers only the Host names ``allowed_hosts`` (default
    the loopback names), which keeps other web sites from reaching it through DNS rebinding."""
    sessions = Sessions(max_sessions)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        sessions.close()

    hosts = list(LOOPBACK) if allowed_hosts is None else allowed_hosts
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
        exception_handlers={NNMathError: refused, Exception: failed},
        lifespan=lifespan,
    )
    app.state.sessions = sessions
    return app


# ---- serving ------------------------------------------------------------------------------------


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free port), or a SettingError saying why not."""
    if not 0 <= port <= 65535:
        raise SettingError(f"--port must be from 0 to 65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        raise SettingError(
            f"cannot listen on {host}:{port} ({error.strerror or error}); choose another --port "
            "(0 picks a free one) or --host"
        ) from None
    return sock


def _warn_everywhere(host: str) -> None:
    print(
        f"nnmath playground: warning: --host {host or '0.0.0.0'} listens on every network "
        "interface: anyone who can reach this machine can open the page and run training on it. "
        "Leave --host out to keep it to this computer (127.0.0.1).",
        file=sys.stderr,
        flush=True,
    )


def serve(host: str = "127.0.0.1", port: int = 8000, *, open_browser: bool = True) -> int:
    """Serve the playground until Ctrl-C; prints the address, opens it in a browser if asked.

    BLAS runs one thread: the playground's matrices are small, and its own threads (training,
    frames, the mathematics) already share the cores; a second BLAS thread per product made a
    frame's forward pass 10-30× slower on a busy two-core machine (benchmarks/playground.py).
    """
    import uvicorn
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    everywhere = host in ("0.0.0.0", "::", "")
    if everywhere:
        _warn_everywhere(host)
    sock = listen(host, port)
    shown = "127.0.0.1" if everywhere else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{sock.getsockname()[1]}/"
    app = create_app(allowed_hosts=["*"] if everywhere else sorted({*LOOPBACK, host}))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    print(f"nnmath playground: serving at {url}  (Ctrl-C stops it)", flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, [url]).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn has shut down; it re-raises the Ctrl-C it caught
        pass
    finally:
        sock.close()
    print("nnmath playground: stopped", flush=True)
    return 0
