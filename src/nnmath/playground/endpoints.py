"""The playground's endpoints: each reads a request, calls the library through the session, and
answers JSON (or a file, or frames over the WebSocket). No mathematics here.

Every ``/api/sessions/{key}/…`` endpoint takes the tab's session from the app's registry
(``request.app.state.sessions``); an unknown key is an ``EndedError`` (404). Work that takes
more than a moment runs in the thread pool, so the event loop keeps answering other requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from nnmath.errors import NNMathError
from nnmath.playground import chainrule, mathpanel
from nnmath.playground.config import Config, SettingError, options, parse_config
from nnmath.playground.data import MAX_UPLOAD_BYTES, read_upload
from nnmath.playground.downloads import DOWNLOADS, documents, model_bytes
from nnmath.playground.frames import frame
from nnmath.playground.session import Session, Snapshot
from nnmath.playground.sessions import EndedError, Entry

STATIC = Path(__file__).parent / "static"
MAX_JSON_BYTES = 16 * 1024
FRAME_RATE = 30


class TooLargeError(NNMathError, ValueError):
    """A request body over its size limit."""


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
    """The request body as a JSON object ({} when empty); SettingError when it is not one."""
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
    """What the page needs of a new or changed session: its id, settings (as a query) and data."""
    return {"id": key, "settings": session.config.to_query(), "data": data_payload(session)}


def frame_text(entry: Entry) -> str:
    """The session's current frame as JSON text (no NaN or Inf)."""
    return json.dumps(frame(entry.session.snapshot(), entry.trainer.playing), allow_nan=False)


Handler = Callable[[Request, Entry], Awaitable[Response]]


def with_entry(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that finds the request's session and passes it to ``handler``."""

    async def endpoint(request: Request) -> Response:
        entry = request.app.state.sessions.get(request.path_params["key"])
        return await handler(request, entry)

    return endpoint


# ---- the page and new sessions --------------------------------------------------------------------


async def index(request: Request) -> Response:
    """GET /: the page."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def get_options(request: Request) -> Response:
    """GET /api/options: the choices the page offers (data sets, activations, …) and the upload
    limit."""
    return JSONResponse({**options(), "max_upload_bytes": MAX_UPLOAD_BYTES})


async def create(request: Request) -> Response:
    """A new session from the page's settings; a bad shared address starts from the defaults."""
    settings = await read_json(request)
    error = None
    try:
        session = await run_in_threadpool(Session, parse_config(settings))
    except NNMathError as refused:
        error = str(refused)
        session = await run_in_threadpool(Session, Config())
    key = request.app.state.sessions.add(session)
    return JSONResponse({**session_payload(key, session), "error": error})


# ---- one session ---------------------------------------------------------------------------------


async def settings(request: Request, entry: Entry) -> Response:
    """POST settings: apply the changed settings to the session; the answer names what changed."""
    query = await read_json(request)
    changed = await run_in_threadpool(entry.session.configure, query)
    payload = session_payload(request.path_params["key"], entry.session)
    return JSONResponse({**payload, "changed": sorted(changed)})


async def upload(request: Request, entry: Entry) -> Response:
    """POST upload: pause, read the uploaded CSV as the session's data set, and answer the new
    session."""
    name = Path(request.query_params.get("name", "upload.csv")).name[:100] or "upload.csv"
    body = await read_body(request, MAX_UPLOAD_BYTES, f"the file {name}")
    entry.trainer.pause()
    dataset = await run_in_threadpool(read_upload, body, name)
    await run_in_threadpool(entry.session.use_upload, dataset)
    return JSONResponse(session_payload(request.path_params["key"], entry.session))


async def control(request: Request, entry: Entry) -> Response:
    """play, pause, step, reset or stage (step-through); the answer is the new frame."""
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
    """GET data: the session's training and test points."""
    return JSONResponse(data_payload(entry.session))


async def math(request: Request, entry: Entry) -> Response:
    """The derivation with the current batch's values; ``checks`` auto, all or none."""
    snapshot = entry.session.snapshot()
    mode = request.query_params.get("checks", "auto")
    if mode not in ("auto", "all", "none"):
        raise SettingError(f"checks must be auto, all or none; got {mode!r}")
    checks = mode == "all" or (mode == "auto" and mathpanel.cheap_to_check(snapshot))
    notation = _notation(request, snapshot)
    document = await run_in_threadpool(mathpanel.document, snapshot, notation, checks=checks)
    return JSONResponse(document)


async def weight(request: Request, entry: Entry) -> Response:
    """GET weight: the chain rule for one weight (``layer``, ``unit``, ``input``) with the current
    numbers."""
    snapshot = entry.session.snapshot()
    layer, unit, source = (_integer(request, name) for name in ("layer", "unit", "input"))
    notation = _notation(request, snapshot)
    answer = await run_in_threadpool(chainrule.weight, snapshot, notation, layer, unit, source)
    return JSONResponse(answer)


async def check(request: Request, entry: Entry) -> Response:
    """POST check: the verdict on the page's own formula (``formula``, ``notation``) against the
    derivation, on the current batch."""
    body = await read_json(request)
    snapshot = entry.session.snapshot()
    notation = parse_config({"notation": body.get("notation", snapshot.config.notation)})
    text = str(body.get("formula", ""))
    verdict = await run_in_threadpool(mathpanel.check, snapshot, notation.notation, text)
    return JSONResponse(verdict)


async def download(request: Request, entry: Entry) -> Response:
    """GET download/{name}: the model file, or the derivation or worked example of the current
    state."""
    name = request.path_params["name"]
    if name not in DOWNLOADS:
        raise SettingError(f"unknown download {name!r}; choose one of {', '.join(DOWNLOADS)}")
    snapshot = entry.session.snapshot()
    notation = _notation(request, snapshot)
    if name == "model.nnm":
        content: bytes | str = await run_in_threadpool(model_bytes, snapshot)
        media = "application/octet-stream"
    else:
        content, media = await run_in_threadpool(documents, snapshot, notation, name)
    filename = f"playground-{snapshot.data.name}-step{snapshot.step}-{name}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(content, media_type=media, headers=headers)


# ---- the live stream ------------------------------------------------------------------------------


async def stream(websocket: WebSocket) -> None:
    """The WebSocket of live frames: closed with 4404 for an ended session, else a frame whenever
    the session changes."""
    await websocket.accept()
    try:
        entry = websocket.app.state.sessions.get(websocket.path_params["key"])
    except EndedError as ended:
        await websocket.close(code=4404, reason=str(ended)[:120])
        return
    await _stream_frames(websocket, entry)


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
