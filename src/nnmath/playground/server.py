"""The playground's web server: a Starlette app that only calls the library, served by uvicorn.

Routes (every ``/api/sessions/{id}/…`` one acts on one tab's session):

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
``{"error": message}``; the message is the library's own, naming what is wrong. Training runs in
each session's trainer thread, and the heavier answers are computed in the thread pool, so no
request waits for another.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import sys
import tempfile
import threading
import webbrowser
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from nnmath.derivation import derive, example_json, example_markdown, to_latex, to_markdown, verify
from nnmath.errors import NNMathError
from nnmath.modelfile import TrainedModel, save_model
from nnmath.playground import mathpanel
from nnmath.playground.config import Config, SettingError, options, parse_config
from nnmath.playground.data import MAX_UPLOAD_BYTES, read_upload
from nnmath.playground.frames import frame
from nnmath.playground.session import Session, Snapshot
from nnmath.playground.trainer import Trainer

STATIC = Path(__file__).parent / "static"
MAX_SESSIONS = 16
MAX_JSON_BYTES = 16 * 1024
FRAME_RATE = 30
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class TooLargeError(NNMathError, ValueError):
    """A request body over its size limit."""


class EndedError(NNMathError, LookupError):
    """A session id the server does not know (ended, or from before a restart)."""


# ---- the sessions -------------------------------------------------------------------------------


@dataclass
class Entry:
    session: Session
    trainer: Trainer


class Sessions:
    """The live sessions by id; beyond ``limit`` the least recently used one is stopped."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, session: Session) -> str:
        key = secrets.token_urlsafe(12)
        with self._lock:
            self._entries[key] = Entry(session, Trainer(session))
            while len(self._entries) > self.limit:
                _, old = self._entries.popitem(last=False)
                old.trainer.stop()
        return key

    def get(self, key: str) -> Entry:
        with self._lock:
            if key not in self._entries:
                raise EndedError(
                    "this page's session has ended (the server restarted, or many other tabs were "
                    "opened): reload the page"
                )
            self._entries.move_to_end(key)
            return self._entries[key]

    def close(self) -> None:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        for entry in entries:
            entry.trainer.stop()


# ---- reading requests ---------------------------------------------------------------------------


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused with TooLargeError as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLargeError(f"{what} is {int(declared):,} bytes; the limit is {limit // 1024} KiB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLargeError(f"{what} is over the limit of {limit // 1024} KiB")
    return bytes(body)


async def read_json(request: Request) -> dict[str, Any]:
    body = await read_body(request, MAX_JSON_BYTES, "the request")
    try:
        value = json.loads(body or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SettingError(f"the request body is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise SettingError("the request body must be a JSON object")
    return value


def _integer(request: Request, name: str) -> int:
    text = request.query_params.get(name, "")
    try:
        return int(text)
    except ValueError:
        raise SettingError(f"{name} must be a whole number, got {text!r}") from None


def _notation(request: Request, snapshot: Snapshot) -> str:
    notation = request.query_params.get("notation", snapshot.config.notation)
    return parse_config({"notation": notation}).notation


# ---- answers ------------------------------------------------------------------------------------


def data_payload(session: Session) -> dict[str, Any]:
    """The points (two features only), names, task and extent of the session's data."""
    data = session.data

    def part(dataset: Any) -> dict[str, Any]:
        y = dataset.y if dataset.task == "classification" else dataset.y[:, 0]
        points = dataset.X.tolist() if data.n_features == 2 else None
        return {"X": points, "y": np.asarray(y).tolist(), "count": dataset.n_samples}

    return {
        "name": data.name,
        "task": data.task,
        "features": data.train.feature_names,
        "classes": data.train.class_names,
        "extent": data.extent,
        "train": part(data.train),
        "test": part(data.test),
    }


def session_payload(key: str, session: Session) -> dict[str, Any]:
    return {"id": key, "settings": session.config.to_query(), "data": data_payload(session)}


def frame_text(entry: Entry) -> str:
    return json.dumps(frame(entry.session.snapshot(), entry.trainer.playing), allow_nan=False)


def model_bytes(snapshot: Snapshot) -> bytes:
    """The current network as a .nnm model file (written by ``save_model``, then read back)."""
    data = snapshot.data
    model = TrainedModel(
        network=snapshot.model,
        loss=snapshot.loss,
        task=data.task,
        class_names=data.train.class_names,
        feature_names=data.train.feature_names,
        target_name=data.train.target_name,
        standardizer=data.standardizer,
        target_standardizer=data.target_standardizer,
        metadata={"source": "nnmath playground", "steps": snapshot.step, "data": data.name},
    )
    with tempfile.TemporaryDirectory(prefix="nnmath-playground-") as folder:
        path = save_model(model, Path(folder) / "model.nnm")
        return path.read_bytes()


def documents(snapshot: Snapshot, notation: str, name: str) -> tuple[str, str]:
    """(text, media type) of a download: the derivation (md, tex) or the worked example (md, json)."""
    spec, loss = snapshot.model.spec, snapshot.loss
    command = f"nnmath derive {spec} --loss {loss.name}" + (
        " --notation column" if notation == "column" else ""
    )
    if name.startswith("derivation"):
        derivation = derive(spec, loss, notation)
        verify(derivation, mathpanel.problem_of(snapshot, derivation))
        if name.endswith(".tex"):
            return to_latex(derivation, command), "application/x-tex"
        return to_markdown(derivation, command), "text/markdown"
    _, example = mathpanel.evaluated(snapshot, notation)
    if name.endswith(".json"):
        return example_json(example), "application/json"
    return example_markdown(example, f"{command} --example"), "text/markdown"


DOWNLOADS = ("model.nnm", "derivation.md", "derivation.tex", "example.md", "example.json")


# ---- the app ------------------------------------------------------------------------------------


def create_app(
    *, allowed_hosts: list[str] | None = None, max_sessions: int = MAX_SESSIONS
) -> Starlette:
    """The playground as an ASGI app (``allowed_hosts``: the Host headers it answers; default the
    loopback names)."""
    sessions = Sessions(max_sessions)

    def with_entry(handler: Callable[[Request, Entry], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            entry = sessions.get(request.path_params["key"])
            return await handler(request, entry)

        return endpoint

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def get_options(request: Request) -> Response:
        return JSONResponse({**options(), "max_upload_bytes": MAX_UPLOAD_BYTES})

    async def create(request: Request) -> Response:
        settings = await read_json(request)
        error = None
        try:
            session = await run_in_threadpool(Session, parse_config(settings))
        except NNMathError as refused:  # a bad shared address: start from the defaults, say why
            error = str(refused)
            session = await run_in_threadpool(Session, Config())
        key = sessions.add(session)
        return JSONResponse({**session_payload(key, session), "error": error})

    async def settings(request: Request, entry: Entry) -> Response:
        query = await read_json(request)
        changed = await run_in_threadpool(entry.session.configure, query)
        payload = session_payload(request.path_params["key"], entry.session)
        return JSONResponse({**payload, "changed": sorted(changed)})

    async def upload(request: Request, entry: Entry) -> Response:
        name = Path(request.query_params.get("name", "upload.csv")).name[:100] or "upload.csv"
        body = await read_body(request, MAX_UPLOAD_BYTES, f"the file {name}")
        entry.trainer.pause()
        dataset = await run_in_threadpool(read_upload, body, name)
        await run_in_threadpool(entry.session.use_upload, dataset)
        return JSONResponse(session_payload(request.path_params["key"], entry.session))

    async def control(request: Request, entry: Entry) -> Response:
        action = str((await read_json(request)).get("action", ""))
        session, trainer = entry.session, entry.trainer
        if action == "play":
            trainer.play()
        elif action in ("pause", "step", "reset", "stage"):
            trainer.pause()
            work = {"step": session.step, "reset": session.reset, "stage": session.advance_stage}
            if action in work:
                await run_in_threadpool(work[action])
        else:
            raise SettingError(f"unknown action {action!r}; use play, pause, step, reset or stage")
        return Response(await run_in_threadpool(frame_text, entry), media_type="application/json")

    async def data(request: Request, entry: Entry) -> Response:
        return JSONResponse(data_payload(entry.session))

    async def math(request: Request, entry: Entry) -> Response:
        snapshot = entry.session.snapshot()
        mode = request.query_params.get("checks", "auto")
        if mode not in ("auto", "all", "none"):
            raise SettingError(f"checks must be auto, all or none; got {mode!r}")
        checks = mode == "all" or (mode == "auto" and mathpanel.cheap_to_check(snapshot))
        notation = _notation(request, snapshot)
        document = await run_in_threadpool(mathpanel.document, snapshot, notation, checks=checks)
        return JSONResponse(document)

    async def weight(request: Request, entry: Entry) -> Response:
        snapshot = entry.session.snapshot()
        layer, unit, source = (_integer(request, name) for name in ("layer", "unit", "input"))
        notation = _notation(request, snapshot)
        answer = await run_in_threadpool(mathpanel.weight, snapshot, notation, layer, unit, source)
        return JSONResponse(answer)

    async def check(request: Request, entry: Entry) -> Response:
        body = await read_json(request)
        snapshot = entry.session.snapshot()
        notation = parse_config({"notation": body.get("notation", snapshot.config.notation)})
        text = str(body.get("formula", ""))
        verdict = await run_in_threadpool(mathpanel.check, snapshot, notation.notation, text)
        return JSONResponse(verdict)

    async def download(request: Request, entry: Entry) -> Response:
        name = request.path_params["name"]
        if name not in DOWNLOADS:
            raise SettingError(f"unknown download {name!r}; choose one of {', '.join(DOWNLOADS)}")
        snapshot = entry.session.snapshot()
        notation = _notation(request, snapshot)
        stem = f"playground-{snapshot.data.name}-step{snapshot.step}"
        if name == "model.nnm":
            content: bytes | str = await run_in_threadpool(model_bytes, snapshot)
            media = "application/octet-stream"
        else:
            content, media = await run_in_threadpool(documents, snapshot, notation, name)
        filename = f"{stem}-{name}"
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        return Response(content, media_type=media, headers=headers)

    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            entry = sessions.get(websocket.path_params["key"])
        except EndedError as ended:
            await websocket.close(code=4404, reason=str(ended)[:120])
            return
        await _stream_frames(websocket, entry)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        sessions.close()

    async def refused(request: Request, error: Exception) -> Response:
        status = {TooLargeError: 413, EndedError: 404}.get(type(error), 400)
        return JSONResponse({"error": str(error)}, status_code=status)

    async def failed(request: Request, error: Exception) -> Response:
        return JSONResponse(
            {"error": f"internal error ({type(error).__name__}: {error}); the server goes on"},
            status_code=500,
        )

    api = "/api/sessions/{key}"
    routes = [
        Route("/", index),
        Route("/api/options", get_options),
        Route("/api/sessions", create, methods=["POST"]),
        Route(f"{api}/settings", with_entry(settings), methods=["POST"]),
        Route(f"{api}/upload", with_entry(upload), methods=["POST"]),
        Route(f"{api}/control", with_entry(control), methods=["POST"]),
        Route(f"{api}/data", with_entry(data)),
        Route(f"{api}/math", with_entry(math)),
        Route(f"{api}/weight", with_entry(weight)),
        Route(f"{api}/check", with_entry(check), methods=["POST"]),
        Route(f"{api}/download/{{name}}", with_entry(download)),
        WebSocketRoute(f"{api}/stream", stream),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    hosts = list(LOOPBACK) if allowed_hosts is None else allowed_hosts
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
        exception_handlers={NNMathError: refused, Exception: failed},
        lifespan=lifespan,
    )
    app.state.sessions = sessions
    return app


async def _stream_frames(websocket: WebSocket, entry: Entry) -> None:
    """Send a frame whenever the session changed, on a clock of FRAME_RATE ticks a second (a
    slow frame delays the next tick, never piles them up), until the page goes away; then pause
    its training."""
    loop = asyncio.get_running_loop()
    closed = asyncio.ensure_future(websocket.receive())
    sent, tick = -1, loop.time()
    try:
        while not closed.done():
            version = entry.session.version
            if version != sent:
                sent = version
                await websocket.send_text(await run_in_threadpool(frame_text, entry))
            tick = max(tick + 1 / FRAME_RATE, loop.time())
            await asyncio.wait({closed}, timeout=tick - loop.time())
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        closed.cancel()
        entry.trainer.pause()


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
        print(
            f"nnmath playground: warning: --host {host or '0.0.0.0'} listens on every network "
            "interface: anyone who can reach this machine can open the page and run training "
            "on it. Leave --host out to keep it to this computer (127.0.0.1).",
            file=sys.stderr,
            flush=True,
        )
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    shown = "127.0.0.1" if everywhere else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{bound}/"
    hosts = ["*"] if everywhere else sorted({*LOOPBACK, host})
    config = uvicorn.Config(
        create_app(allowed_hosts=hosts), log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    print(f"nnmath playground: serving at {url}  (Ctrl-C stops it)", flush=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, [url]).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    print("nnmath playground: stopped", flush=True)
    return 0
