"""Where a training step, or a whole run, spends its time: a pyinstrument profile.

    python benchmarks/profile_step.py small                 # the engine's clear path
    python benchmarks/profile_step.py small --path fast     # the step fit runs, NumPy kernel
    python benchmarks/profile_step.py tiny --path fast --threads 1 --seconds 3
    python benchmarks/profile_step.py digits                # a whole fit (speed_fit.py's job)

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
    parser.add_argument("model", choices=[*st.MODELS, "digits", "mnist1d"])
    parser.add_argument("--path", choices=["engine", "fast", "fast-numba"], default="engine")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=2.0, help="how long to profile")
    args = parser.parse_args(argv)

    from pyinstrument import Profiler
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    if args.model in ("digits", "mnist1d"):
        return profile_fit(args.model, Profiler)
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


def profile_fit(job: str, profiler_class: type) -> int:
    """One whole ``fit`` of speed_fit.py's job (after one run to warm up), profiled."""
    import speed_fit

    X, y, _, _ = speed_fit.load(job)
    speed_fit.nnmath_fit(speed_fit.JOBS[job], X, y)
    profiler = profiler_class(interval=0.0005)
    began = time.perf_counter()
    profiler.start()
    speed_fit.nnmath_fit(speed_fit.JOBS[job], X, y)
    profiler.stop()
    print(f"{job} fit: {time.perf_counter() - began:.3f} s")
    print(profiler.output_text(unicode=True, color=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
