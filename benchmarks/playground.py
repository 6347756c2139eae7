"""The playground's speed as the page sees it: training steps per second in the server while it
streams frames, frames per second delivered, and the latency of a "step" click.

The network is the issue's: 2-8tanh-8tanh-2softmax on 500 training points (spirals, 625 points
with a test fraction of 0.2), batch 10, SGD. The server is ``nnmath playground --port 0`` in its
own process, as a user runs it; this script is the page: it opens the session's WebSocket and
counts the frames it receives while the session plays, and it clicks "step" (POST control) while
paused, timing each answer (which carries the new frame). Rows:

- *in-process, no server*: ``Session.step`` in a loop in this process, the ceiling;
- *streaming*: play with the stream open, as a page with its mathematics panel closed;
- *streaming + mathematics*: the same while fetching the derivation with values every 1.5 s,
  as the page does when its mathematics panel shows (every equation verified each time);
- *step click*: median and 95th percentile of the round trip of one step, paused, stream open.

Targets (issue 11): ≥ 500 steps/s while streaming ≥ 20 frames/s; step latency under 100 ms.

    python benchmarks/playground.py            # 10 s per streaming row, 60 clicks
    python benchmarks/playground.py --smoke    # 2 s per row, 10 clicks

Writes benchmarks/results/playground.md (and prints the table).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from threadpoolctl import threadpool_limits
from websockets.sync.client import connect

from nnmath.playground.config import parse_config
from nnmath.playground.session import Session

SETTINGS = {"data": "spirals", "points": 625, "test": 0.2, "layers": "8tanh-8tanh", "batch": 10}
RESULTS = Path(__file__).parent / "results" / "playground.md"


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as answer:
        return json.loads(answer.read())


def in_process(seconds: float) -> float:
    """Steps per second of Session.step with no server: the ceiling (one BLAS thread, as the
    server runs)."""
    threadpool_limits(limits=1)
    session = Session(parse_config(SETTINGS))
    started, steps = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        steps += session.step(100)
    return steps / (time.perf_counter() - started)


class Stream:
    """The page's WebSocket: records (arrival time, step, bytes) of every frame."""

    def __init__(self, url: str) -> None:
        self.frames: list[tuple[float, int, int]] = []
        self.socket = connect(url, max_size=None)
        self.thread = threading.Thread(target=self._receive, daemon=True)
        self.thread.start()

    def _receive(self) -> None:
        try:
            for message in self.socket:
                self.frames.append((time.perf_counter(), json.loads(message)["step"], len(message)))
        except Exception:  # closed
            pass

    def close(self) -> None:
        self.socket.close()
        self.thread.join(5)


def streaming(base: str, seconds: float, with_math: bool) -> dict[str, float]:
    """Play for ``seconds`` with the stream open (and the mathematics refreshed if asked)."""
    key = post(f"{base}api/sessions", SETTINGS)["id"]
    stream = Stream(f"{base.replace('http', 'ws')}api/sessions/{key}/stream")
    time.sleep(0.5)
    start = len(stream.frames)
    post(f"{base}api/sessions/{key}/control", {"action": "play"})
    started = time.perf_counter()
    documents = 0
    while time.perf_counter() - started < seconds:
        if with_math:
            get(f"{base}api/sessions/{key}/math")
            documents += 1
            time.sleep(1.5)
        else:
            time.sleep(0.1)
    post(f"{base}api/sessions/{key}/control", {"action": "pause"})
    stream.close()
    frames = [f for f in stream.frames[start:] if f[0] <= started + seconds]
    (t0, s0, _), (t1, s1, _) = frames[1], frames[-1]
    return {
        "steps_per_s": (s1 - s0) / (t1 - t0),
        "frames_per_s": (len(frames) - 2) / (t1 - t0),
        "frame_kib": statistics.mean(f[2] for f in frames) / 1024,
        "documents": documents,
    }


def step_latency(base: str, clicks: int) -> dict[str, float]:
    """Round trip of POST control {step} (its answer is the new frame), paused, stream open."""
    key = post(f"{base}api/sessions", SETTINGS)["id"]
    stream = Stream(f"{base.replace('http', 'ws')}api/sessions/{key}/stream")
    times = []
    for _ in range(clicks):
        started = time.perf_counter()
        post(f"{base}api/sessions/{key}/control", {"action": "step"})
        times.append(1000 * (time.perf_counter() - started))
        time.sleep(0.05)
    stream.close()
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))]}


def start_server() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "nnmath", "playground", "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+/", line)
    if not match:
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return process, match.group(0)


def table(rows: dict) -> str:
    ceiling = rows["in_process"]
    plain, math, click = rows["streaming"], rows["streaming_math"], rows["step"]
    lines = [
        "| measurement | value | target |",
        "|---|---|---|",
        f"| steps/s, in-process, no server (ceiling) | {ceiling:,.0f} | |",
        f"| steps/s while streaming | {plain['steps_per_s']:,.0f} "
        f"({plain['steps_per_s'] / ceiling:.0%} of the ceiling) | ≥ 500 |",
        f"| frames/s delivered while streaming | {plain['frames_per_s']:.1f} "
        f"({plain['frame_kib']:.0f} KiB each) | ≥ 20 |",
        f"| steps/s while streaming + mathematics every 1.5 s | {math['steps_per_s']:,.0f} | ≥ 500 |",
        f"| frames/s while streaming + mathematics | {math['frames_per_s']:.1f} | ≥ 20 |",
        f"| step click, median round trip | {click['median_ms']:.1f} ms | < 100 ms |",
        f"| step click, 95th percentile | {click['p95_ms']:.1f} ms | < 100 ms |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="short rows (a check that it runs)")
    args = parser.parse_args()
    seconds, clicks = (2.0, 10) if args.smoke else (10.0, 60)
    rows: dict = {"in_process": in_process(seconds)}
    process, base = start_server()
    try:
        rows["streaming"] = streaming(base, seconds, with_math=False)
        rows["streaming_math"] = streaming(base, seconds, with_math=True)
        rows["step"] = step_latency(base, clicks)
    finally:
        process.terminate()
        process.wait(15)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    header = (
        f"Run of {when}{' (smoke)' if args.smoke else ''}: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"{seconds:g} s per streaming row, {clicks} clicks; 2-8tanh-8tanh-2softmax, 500 training "
        "points, batch 10, SGD."
    )
    text = f"{header}\n\n{table(rows)}\n"
    print(text)
    if not args.smoke:
        RESULTS.write_text(f"# Playground speed\n\n`python benchmarks/playground.py`\n\n{text}")


if __name__ == "__main__":
    main()
