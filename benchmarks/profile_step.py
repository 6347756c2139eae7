"""Where one training step spends its time: a pyinstrument profile of the engine or the fast step.

    python benchmarks/profile_step.py small                 # the engine's clear path
    python benchmarks/profile_step.py small --path fast     # FastStep, NumPy kernel
    python benchmarks/profile_step.py tiny --path fast --threads 1 --seconds 3

Needs ``pip install pyinstrument``. Both paths run the same float32 step as benchmarks/speed.py
(forward, softmax + cross-entropy, backward, SGD update) on the same weights and batch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import speed_steps as st  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", choices=list(st.MODELS))
    parser.add_argument("--path", choices=["engine", "fast", "fast-numba"], default="engine")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=2.0, help="how long to profile")
    args = parser.parse_args(argv)

    from pyinstrument import Profiler
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    problem = st.make_problem(args.model)
    runner = {
        "engine": lambda: st.engine_step(problem),
        "fast": lambda: st.nnmath_step(problem),
        "fast-numba": lambda: st.nnmath_step(problem, kernel="numba"),
    }[args.path]()
    began = time.perf_counter()
    while time.perf_counter() - began < 0.3:  # warm up (and compile, for numba)
        runner.step()
    profiler = Profiler(interval=0.0001)
    steps, began = 0, time.perf_counter()
    profiler.start()
    while time.perf_counter() - began < args.seconds:
        runner.step()
        steps += 1
    profiler.stop()
    seconds = time.perf_counter() - began
    print(f"{args.model} {args.path}: {steps} steps, {seconds / steps * 1e6:.1f} µs per step")
    print(profiler.output_text(unicode=True, color=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
