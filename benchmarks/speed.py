"""Speed benchmark: one float32 MLP training step, nnmath against PyTorch, JAX and scikit-learn.

    python benchmarks/speed.py              # 1 and 2 threads, four models, memory, predict, digits
    python benchmarks/speed.py --smoke      # a quick check that everything runs (CI)
    python benchmarks/speed.py --threads 2 --models tiny small --rounds 20

Writes benchmarks/results/speed.json and benchmarks/results/speed.md (or --out DIR), atomically;
a smoke run writes to a temporary directory instead, so that it never replaces published results.

How it measures (see docs/speed.md):

- Each thread count runs in its own subprocess, with OMP/OPENBLAS/MKL_NUM_THREADS and XLA_FLAGS set
  before any library is imported, threadpoolctl limits, ``torch.set_num_threads`` and the process
  pinned to that many CPUs.
- A "step" is forward, softmax + cross-entropy, backward and a plain SGD update of every weight and
  bias, from the same float32 weights and batch in every framework (speed_steps.py). Before timing,
  three steps of each are compared with nnmath's: unless the weights agree to 1e-4 of their
  largest magnitude, the benchmark stops (a faster step that computes something else is no win).
- Timing is round-robin: every round times one block of steps of each contestant in turn (the
  order rotates), so that the machine's drifting load hits all of them alike. A block is as many
  steps as fill about ``--block-ms``; a round's time per step is the block's time divided by its
  steps. Reported: the median and quartiles over rounds, and the ratio peer / nnmath of each
  round, summarised by its median and quartiles.
- The GEMM reference times the step's matrix products alone (same shapes and layouts, numpy float32)
  in the same rounds, and a big square GEMM; the step's FLOPs (2·S·in·out per layer forward, per
  layer for dW, and for dX in every layer but the first) over its time, divided by those rates, is
  the fraction of the machine's matmul rate that the step reaches.
- Peak memory: a separate process per framework and model imports only that framework, makes the
  data and runs three warm-up steps of the tiny model; then the peak-RSS mark is reset (Linux
  clear_refs), the model, optimizer and buffers are built and 50 steps run. Reported: the peak
  resident set size, its increase over the RSS before the model was built, and for nnmath
  tracemalloc's peak of the NumPy allocations.
- Prediction throughput: samples per second of the forward pass + softmax on 4096 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEERS = ("nnmath", "nnmath numba", "nnmath engine", "PyTorch", "JAX jit", "scikit-learn")
KERNELS = ("nnmath", "nnmath numba")  # FastStep's NumPy kernel (the default) and numba kernel
OTHERS = ("PyTorch", "JAX jit", "scikit-learn")
TARGETS_2_THREADS = {  # model: (× faster than PyTorch, × faster than JAX) required
    "tiny": (10.0, 1.5),
    "small": (4.0, 1.5),
    "medium": (1.3, 1.0),
}
LARGE_FRACTION_TARGET = 0.9
DIGITS_TARGET = 3.0
SQUARE_GEMM = 2048
AGREEMENT = 1e-4  # largest |Δw| / max |w| allowed between nnmath and a peer after 3 steps


# ---- the environment of a worker ----------------------------------------------------------------


def thread_environment(threads: int, openblas_coretype: str = "inherit") -> dict[str, str]:
    """Environment variables that fix every library's thread count before it is imported.

    ``openblas_coretype``: "inherit" keeps this process's OPENBLAS_CORETYPE (if any), "auto"
    removes it (OpenBLAS picks the kernels for the CPU it finds), anything else sets it.
    """
    env = dict(os.environ)
    if openblas_coretype == "auto":
        env.pop("OPENBLAS_CORETYPE", None)
    elif openblas_coretype != "inherit":
        env["OPENBLAS_CORETYPE"] = openblas_coretype
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    multi = "true" if threads > 1 else "false"
    env["XLA_FLAGS"] = (
        f"--xla_cpu_multi_thread_eigen={multi} intra_op_parallelism_threads={threads}"
    )
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def limit_threads(threads: int) -> dict[str, Any]:
    """Pin this process to ``threads`` CPUs and cap the thread pools already loaded."""
    pinned = None
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, cpus)
        pinned = cpus
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(threads)
    blas = [
        {k: pool.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
        for pool in threadpool_info()
    ]
    return {"cpus": pinned, "pools": blas}


def optional(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# ---- timing ----------------------------------------------------------------------------------------


class Contestant:
    """A callable timed in blocks: ``run()`` does ``per_call`` units of work, ``sync()`` waits."""

    def __init__(
        self, run: Callable[[], object], per_call: int = 1, sync: Callable[[], object] | None = None
    ) -> None:
        self.run = run
        self.per_call = per_call
        self.sync = sync or (lambda: None)
        self.calls = 1

    def block(self) -> float:
        """Seconds per unit of work, over one block of ``self.calls`` calls."""
        began = time.perf_counter()
        for _ in range(self.calls):
            self.run()
        self.sync()
        return (time.perf_counter() - began) / (self.calls * self.per_call)

    def calibrate(self, block_seconds: float, warmup_seconds: float) -> None:
        """Warm up, then choose how many calls fill a block of about ``block_seconds``."""
        began, samples = time.perf_counter(), []
        while len(samples) < 3 or time.perf_counter() - began < warmup_seconds:
            samples.append(self.block() * self.per_call)
            if len(samples) >= 1000:
                break
        per_call = sorted(samples)[len(samples) // 2]
        self.calls = max(1, min(10_000, round(block_seconds / max(per_call, 1e-9))))


def race(
    contestants: dict[str, Contestant],
    rounds: int,
    block_seconds: float,
    warmup_seconds: float,
    gap_seconds: float = 0.0,
) -> dict[str, list[float]]:
    """Round-robin timing: each round times one block of every contestant, in a rotating order.

    ``gap_seconds`` of idle time follow every block: with several threads, BLAS and OpenMP worker
    threads keep spinning for a while after their library's last call (OpenBLAS ~0.1 s), and
    without a pause they would take a core from the next contestant.
    """
    for contestant in contestants.values():
        contestant.calibrate(block_seconds, warmup_seconds)
    names = list(contestants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(contestants[name].block())
            if gap_seconds:
                time.sleep(gap_seconds)
    return times


def summary(values: list[float]) -> dict[str, float]:
    import numpy as np

    v = np.asarray(values, dtype=float)
    return {
        "median": float(np.median(v)),
        "p25": float(np.percentile(v, 25)),
        "p75": float(np.percentile(v, 75)),
        "min": float(v.min()),
        "max": float(v.max()),
        "n": len(v),
    }


def ratio_summary(times: dict[str, list[float]], peer: str, base: str) -> dict[str, float]:
    """The per-round ratio time(peer) / time(base), summarised."""
    return summary([p / b for p, b in zip(times[peer], times[base], strict=True)])


# ---- one thread count ------------------------------------------------------------------------------


def agreement(problem: Any, peers: list[str]) -> dict[str, float]:
    """Max |Δw| / max |w| between nnmath and each other step after three steps from equal weights."""
    import numpy as np
    import speed_steps as st

    reference = st.nnmath_step(problem)
    for _ in range(3):
        reference.step()
    expected = reference.weights()
    scale = max(float(np.max(np.abs(a))) for pair in expected for a in pair)
    result = {}
    for name in peers:
        if name == "nnmath":
            continue
        runner = (
            st.sklearn_step(problem, 1) if name == "scikit-learn" else make_runner(name, problem)
        )
        for _ in range(3):
            runner.step()
        runner.sync()
        result[name] = max(
            float(np.max(np.abs(g - e))) / scale
            for pair_g, pair_e in zip(runner.weights(), expected, strict=True)
            for g, e in zip(pair_g, pair_e, strict=True)
        )
        if not result[name] <= AGREEMENT:
            raise RuntimeError(
                f"{name} and nnmath disagree after 3 steps of the {problem.name} model: "
                f"max |Δw| / max |w| = {result[name]:.2e} > {AGREEMENT:g}; they do not compute "
                "the same training step, so their times cannot be compared"
            )
    return result


def make_runner(name: str, problem: Any) -> Any:
    import speed_steps as st

    return {
        "nnmath": lambda: st.nnmath_step(problem),
        "nnmath numba": lambda: st.nnmath_step(problem, kernel="numba"),
        "nnmath engine": lambda: st.engine_step(problem),
        "PyTorch": lambda: st.torch_step(problem),
        "JAX jit": lambda: st.jax_step(problem),
    }[name]()


def sklearn_contestant(problem: Any, block_seconds: float) -> Contestant:
    """scikit-learn: one call is an epoch of enough batches to last about one block."""
    import speed_steps as st

    probe = st.sklearn_step(problem, 2)
    began = time.perf_counter()
    probe.step()
    per_step = (time.perf_counter() - began) / 2
    batches = int(max(2, min(200, round(block_seconds / max(per_step, 1e-6)))))
    runner = st.sklearn_step(problem, batches)
    return Contestant(runner.step, runner.steps_per_call)


def bench_model(name: str, args: argparse.Namespace, peers: list[str]) -> dict[str, Any]:
    import numpy as np
    import speed_steps as st

    problem = st.make_problem(name)
    flops = st.step_flops(problem.sizes, problem.batch)
    block = args.block_ms / 1000
    contestants: dict[str, Contestant] = {}
    for peer in peers:
        if peer == "scikit-learn":
            contestants[peer] = sklearn_contestant(problem, block)
        else:
            runner = make_runner(peer, problem)
            contestants[peer] = Contestant(runner.step, runner.steps_per_call, runner.sync)
    contestants["GEMMs of the step"] = Contestant(st.gemm_reference(problem))
    square, square_flops = st.square_gemm(args.square)
    square_key = f"GEMM {args.square}²"
    if name == "large" or args.smoke:
        contestants[square_key] = Contestant(square)
    rounds = args.rounds or (3 if args.smoke else 30)
    gap = args.gap_ms / 1000 if args.threads > 1 else 0.0
    times = race(contestants, rounds, block, 0.05 if args.smoke else 0.3, gap)

    result: dict[str, Any] = {
        "square_gemm_size": args.square,
        "sizes": list(problem.sizes),
        "batch": problem.batch,
        "step_flops": flops,
        "agreement_after_3_steps": agreement(problem, peers),
        "seconds_per_step": {k: summary(v) for k, v in times.items()},
        "steps_per_block": {k: c.calls * c.per_call for k, c in contestants.items()},
        "step_gemm_gflops": summary([flops / t / 1e9 for t in times["GEMMs of the step"]]),
    }
    if square_key in times:
        result["square_gemm_gflops"] = summary([square_flops / t / 1e9 for t in times[square_key]])
    for kernel in (k for k in KERNELS if k in times):
        per_kernel: dict[str, Any] = {
            "ratio": {k: ratio_summary(times, k, kernel) for k in OTHERS if k in times},
            "gflops": summary([flops / t / 1e9 for t in times[kernel]]),
            "fraction_of_step_gemm_rate": ratio_summary(times, "GEMMs of the step", kernel),
        }
        if square_key in times:
            per_kernel["fraction_of_square_gemm_rate"] = summary(  # (F / t) / (F² / t²)
                [
                    (flops / t) / (square_flops / t_square)
                    for t, t_square in zip(times[kernel], times[square_key], strict=True)
                ]
            )
        result[kernel] = per_kernel

    rng = np.random.default_rng(3)
    X = rng.standard_normal((512 if args.smoke else 4096, problem.sizes[0])).astype(np.float32)
    makers = {
        "nnmath": st.nnmath_predict,
        "nnmath engine": st.engine_predict,
        "PyTorch": st.torch_predict,
        "JAX jit": st.jax_predict,
        "scikit-learn": st.sklearn_predict,
    }
    predict_times = race(
        {k: Contestant(makers[k](problem, X)) for k in peers if k in makers},
        max(3, rounds // 3),
        block,
        0.05 if args.smoke else 0.2,
        gap,
    )
    result["predict_rows"] = len(X)
    result["predict_samples_per_second"] = {
        k: summary([len(X) / t for t in v]) for k, v in predict_times.items()
    }
    return result


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Everything measured at one thread count (this process's environment fixes it)."""
    import numpy as np
    import sklearn
    import torch

    peers = ["nnmath", "nnmath engine", "PyTorch", "scikit-learn"]
    versions = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
    }
    if optional("jax") and not args.no_jax:
        import jax

        peers.insert(3, "JAX jit")
        versions["jax"] = jax.__version__
    if optional("numba") and optional("scipy") and not args.no_numba:
        import numba

        from nnmath.fast import _numba_kernels

        _numba_kernels()  # loads scipy's BLAS, which the limits below must cover too
        peers.insert(1, "nnmath numba")
        versions["numba"] = numba.__version__
    torch.set_num_threads(args.threads)
    machine = limit_threads(args.threads)  # after every import: every BLAS/OpenMP pool is loaded
    out: dict[str, Any] = {
        "threads": args.threads,
        "machine": machine,
        "versions": versions,
        "peers": peers,
        "load_average_before": os.getloadavg(),
        "models": {},
    }
    for name in args.models:
        out["models"][name] = bench_model(name, args, peers)
        print(f"  [{args.threads} thread(s)] {name} done", file=sys.stderr, flush=True)
    if not args.no_digits:
        import speed_digits

        out["digits"] = speed_digits.run(
            rounds=1 if args.smoke else args.digits_rounds,
            epochs=2 if args.smoke else speed_digits.EPOCHS,
            numba="nnmath numba" in peers,
        )
        print(f"  [{args.threads} thread(s)] digits done", file=sys.stderr, flush=True)
    out["load_average_after"] = os.getloadavg()
    return out


# ---- peak memory -----------------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    """A field of /proc/self/status in KiB (VmRSS: resident now, VmHWM: its peak), if readable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_worker(framework: str, model: str, steps: int, threads: int) -> dict[str, Any]:
    """Peak resident memory of building and training one model, in a process of one framework.

    After the imports, the data and three warm-up steps of the tiny model (which load what the
    library initialises lazily), the peak-RSS mark is reset to the current RSS (Linux:
    ``echo 5 > /proc/self/clear_refs``); the model, optimizer and buffers are then built and
    ``steps`` steps run, and the peak is read again. The increase is what training added.
    """
    import resource
    import tracemalloc

    limit_threads(threads)
    import speed_steps as st

    if framework == "PyTorch":
        import torch

        torch.set_num_threads(threads)
    problem = st.make_problem(model)
    make = st.nnmath_step if framework == "nnmath" else st.torch_step
    warm_up = make(st.make_problem("tiny"))  # loads what the library initialises lazily
    for _ in range(3):
        warm_up.step()
    del warm_up
    reset = False
    try:
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        pass
    before = _status_kib("VmRSS") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    runner = make(problem)
    for _ in range(steps):
        runner.step()
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "peak_rss_mib": peak / 1024,
        "rss_before_mib": before / 1024,
        "peak_rss_increase_mib": (peak - before) / 1024,
        "peak_mark_reset": reset,
        "tracemalloc_peak_mib": traced_peak / 2**20 if framework == "nnmath" else None,
        "steps": steps,
    }


def measure_memory(
    models: list[str], threads: int, steps: int, openblas_coretype: str
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for model in models:
        result[model] = {}
        for framework in ("nnmath", "PyTorch"):
            command = [sys.executable, str(Path(__file__).resolve()), "--memory-worker"]
            command += [framework, model, "--steps", str(steps), "--threads", str(threads)]
            done = subprocess.run(
                command,
                env=thread_environment(threads, openblas_coretype),
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(f"memory run {framework} {model} failed:\n{done.stderr}")
            result[model][framework] = json.loads(done.stdout)
    return result


# ---- the report ------------------------------------------------------------------------------------


def micro(seconds: float) -> str:
    """µs below a millisecond, else ms (marked)."""
    return f"{seconds * 1e6:.1f}" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def cell(s: dict[str, float]) -> str:
    return f"{micro(s['median'])} ({micro(s['p25'])}–{micro(s['p75'])})"


def ratio_cell(s: dict[str, float] | None) -> str:
    if s is None:
        return "–"
    return f"**{s['median']:.2f}×** ({s['p25']:.2f}–{s['p75']:.2f})"


def targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of docs/speed.md, for each of nnmath's kernels: required, measured, met."""
    rows = []
    models = run.get("models", {})
    for kernel in (k for k in KERNELS if k in run.get("peers", KERNELS[:1])):
        for name, (torch_x, jax_x) in TARGETS_2_THREADS.items():
            if name not in models or kernel not in models[name]:
                continue
            ratios = models[name][kernel]["ratio"]
            for peer, need in (("PyTorch", torch_x), ("JAX jit", jax_x)):
                if peer in ratios:
                    got = ratios[peer]["median"]
                    rows.append(
                        {
                            "kernel": kernel,
                            "target": f"{name}: ≥ {need:g}× faster than {peer}",
                            "measured": f"{got:.2f}×",
                            "met": got >= need,
                        }
                    )
        if "large" in models and kernel in models["large"]:
            large = models["large"][kernel]
            n = models["large"].get("square_gemm_size", SQUARE_GEMM)
            for key, what in (
                ("fraction_of_step_gemm_rate", "the float32 GEMM rate at the step's shapes"),
                ("fraction_of_square_gemm_rate", f"the {n}² float32 GEMM rate"),
            ):
                if key in large:
                    got = large[key]["median"]
                    rows.append(
                        {
                            "kernel": kernel,
                            "target": f"large: ≥ 90 % of {what}",
                            "measured": f"{got:.0%}",
                            "met": got >= LARGE_FRACTION_TARGET,
                        }
                    )
    if "digits" in run:
        seconds = run["digits"]["median_seconds"]
        for mine in (k for k in seconds if k.startswith("nnmath") and "engine" not in k):
            got = seconds["scikit-learn"] / seconds[mine]
            rows.append(
                {
                    "kernel": mine,
                    "target": "digits: a full training run ≥ 3× faster than scikit-learn",
                    "measured": f"{got:.2f}×",
                    "met": got >= DIGITS_TARGET,
                }
            )
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Speed: one float32 training step (forward, cross-entropy, backward, SGD update)",
        "",
        f"Machine: {results['cpu']}, {results['cores']} cores, OPENBLAS_CORETYPE="
        f"{results['openblas_coretype']}; `{results['command']}` on {results['date']}.",
        "",
        "Time per step: median (interquartile range) over rounds, µs unless marked. Ratio: the "
        "peer's time / nnmath's time in the same round (median, IQR); above 1 means nnmath is "
        "faster. nnmath is `FastStep.sgd_step` with its NumPy kernel (the default) or its numba "
        "kernel; nnmath engine is the clear reference path (`MLP.loss_and_gradients` + `SGD`).",
        "",
    ]
    for run in results["runs"]:
        t, peers = run["threads"], run["peers"]
        kernels = [k for k in KERNELS if k in peers]
        others = [k for k in OTHERS if k in peers]
        n = next(iter(run["models"].values()), {}).get("square_gemm_size", SQUARE_GEMM)
        versions = ", ".join(f"{k} {v}" for k, v in run["versions"].items())
        pools = "; ".join(
            " ".join(
                str(p.get(k) or "") for k in ("internal_api", "version", "architecture")
            ).strip()
            for p in run["machine"]["pools"]
        )
        load = f"{run['load_average_before'][0]:.2f} / {run['load_average_after'][0]:.2f}"
        lines += [
            f"## {t} thread{'s' if t > 1 else ''}",
            "",
            f"{versions}. Thread pools: {pools}. Load average (1 min) before / after: {load}.",
            "",
            "| model | batch | "
            + " | ".join(peers)
            + " | "
            + " | ".join(f"{o} / {k}" for k in kernels for o in others)
            + " |",
            "|---|---|" + "---|" * (len(peers) + len(kernels) * len(others)),
        ]
        for name, m in run["models"].items():
            sp = m["seconds_per_step"]
            spec = "-".join(map(str, m["sizes"]))
            ratios = [ratio_cell(m[k]["ratio"].get(o)) for k in kernels for o in others]
            lines.append(
                f"| {name} {spec} | {m['batch']} | "
                + " | ".join(cell(sp[p]) for p in peers)
                + " | "
                + " | ".join(ratios)
                + " |"
            )
        lines += [
            "",
            "GEMM rate: the step's FLOPs per second against the numpy float32 GEMMs of the step "
            "alone (same shapes and layouts, timed in the same rounds) and a "
            f"{n}² GEMM (large model only):",
            "",
            "| model | step GFLOP | GEMMs of the step, GFLOP/s | "
            + " | ".join(f"{k} GFLOP/s | fraction" for k in kernels)
            + f" | {n}² GEMM GFLOP/s | "
            + " | ".join(f"{k} fraction" for k in kernels)
            + " |",
            "|---|---|---|" + "---|---|" * len(kernels) + "---|" + "---|" * len(kernels),
        ]
        for name, m in run["models"].items():
            row = [f"{m['step_flops'] / 1e9:.4f}", f"{m['step_gemm_gflops']['median']:.1f}"]
            for k in kernels:
                row += [
                    f"{m[k]['gflops']['median']:.1f}",
                    f"{m[k]['fraction_of_step_gemm_rate']['median']:.0%}",
                ]
            square = m.get("square_gemm_gflops")
            row.append(f"{square['median']:.1f}" if square else "–")
            for k in kernels:
                fraction = m[k].get("fraction_of_square_gemm_rate")
                row.append(f"{fraction['median']:.0%}" if fraction else "–")
            lines.append(f"| {name} | " + " | ".join(row) + " |")
        predictors = [p for p in peers if p != "nnmath numba"]
        lines += [
            "",
            "Prediction throughput (forward + softmax), samples/s, median over rounds:",
            "",
            "| model | rows | " + " | ".join(predictors) + " |",
            "|---|---|" + "---|" * len(predictors),
        ]
        for name, m in run["models"].items():
            ps = m["predict_samples_per_second"]
            lines.append(
                f"| {name} | {m['predict_rows']} | "
                + " | ".join(f"{ps[p]['median']:,.0f}" for p in predictors)
                + " |"
            )
        agree = {n: max(m["agreement_after_3_steps"].values()) for n, m in run["models"].items()}
        lines += [
            "",
            "Agreement: after 3 steps from the same weights, the largest |Δw| / max |w| between "
            "nnmath and any other step: "
            + ", ".join(f"{n} {v:.1e}" for n, v in agree.items())
            + ".",
        ]
        if "digits" in run:
            d = run["digits"]
            runs = len(next(iter(d["seconds"].values())))
            lines += [
                "",
                f"Digits, a full training run: {d['network']}, {d['epochs']} epochs, batch "
                f"{d['batch_size']}, {d['optimizer']} at η = {d['learning_rate']}, "
                f"{d['n_train']} training / {d['n_test']} held-out images; median of {runs} runs:",
                "",
                "| | seconds | held-out accuracy | scikit-learn / this |",
                "|---|---|---|---|",
            ]
            sk = d["median_seconds"]["scikit-learn"]
            for k, sec in d["median_seconds"].items():
                lines.append(f"| {k} | {sec:.3f} | {d['test_accuracy'][k]:.4f} | {sk / sec:.2f}× |")
        lines.append("")
    if "memory" in results:
        lines += [
            f"## Peak memory ({results['memory_threads']} threads, {results['memory_steps']} "
            "training steps, one process per cell)",
            "",
            "| model | nnmath peak RSS | nnmath increase | nnmath NumPy peak (tracemalloc) "
            "| PyTorch peak RSS | PyTorch increase |",
            "|---|---|---|---|---|---|",
        ]
        for name, m in results["memory"].items():
            n, t = m["nnmath"], m["PyTorch"]
            lines.append(
                f"| {name} | {n['peak_rss_mib']:.1f} MiB | {n['peak_rss_increase_mib']:.1f} MiB | "
                f"{n['tracemalloc_peak_mib']:.2f} MiB | {t['peak_rss_mib']:.1f} MiB | "
                f"{t['peak_rss_increase_mib']:.1f} MiB |"
            )
        lines.append("")
    for run in results["runs"]:
        lines += [
            f"## Targets ({run['threads']} thread{'s' if run['threads'] > 1 else ''})",
            "",
            "| nnmath | target | measured | met |",
            "|---|---|---|---|",
        ]
        for row in targets(run):
            met = "yes" if row["met"] else "no"
            lines.append(f"| {row['kernel']} | {row['target']} | {row['measured']} | {met} |")
        lines.append("")
    return "\n".join(lines)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        f.write(text)
        temporary = Path(f.name)
    os.replace(temporary, path)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---- command line ----------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    import speed_steps as st

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny repetitions: check that it runs")
    parser.add_argument("--threads", type=int, nargs="+", default=None, help="default: 1 2")
    parser.add_argument("--models", nargs="+", choices=list(st.MODELS), default=list(st.MODELS))
    parser.add_argument("--rounds", type=int, default=0, help="timing rounds (default 30; smoke 3)")
    parser.add_argument("--block-ms", type=float, default=None, help="ms per block (default 20)")
    parser.add_argument("--square", type=int, default=SQUARE_GEMM, help="square GEMM size")
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=None,
        help="idle ms after each block (default 200; smoke 20)",
    )
    parser.add_argument("--digits-rounds", type=int, default=5)
    parser.add_argument("--no-digits", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-jax", action="store_true", help="leave JAX out even if installed")
    parser.add_argument("--no-numba", action="store_true", help="leave out nnmath's numba kernel")
    parser.add_argument(
        "--openblas-coretype",
        default="inherit",
        help="OpenBLAS kernels for the workers: inherit (default: this environment's "
        "OPENBLAS_CORETYPE), auto (unset it: detect the CPU), or a core name such as SkylakeX",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where speed.json and speed.md go (default benchmarks/results; smoke: a temp dir)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--memory-worker", nargs=2, metavar=("FRAMEWORK", "MODEL"), help=argparse.SUPPRESS
    )
    parser.add_argument("--steps", type=int, default=50, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.block_ms is None:
        args.block_ms = 2.0 if args.smoke else 20.0
    if args.gap_ms is None:
        args.gap_ms = 20.0 if args.smoke else 200.0
    if args.smoke:
        args.square = min(args.square, 256)
    if args.threads is None:
        args.threads = [1] if args.smoke else [1, 2]
    if args.out is None:  # a smoke run never overwrites the published results
        smoke_dir = Path(tempfile.gettempdir()) / "nnmath-speed-smoke"
        args.out = smoke_dir if args.smoke else HERE / "results"
    return args


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(HERE))
    args = parse(argv)
    if args.memory_worker:
        framework, model = args.memory_worker
        print(json.dumps(memory_worker(framework, model, args.steps, args.threads[0])))
        return 0
    if args.worker:
        args.threads = args.threads[0]
        result = worker(args)
        write_atomically(args.result_file, json.dumps(result))
        return 0

    command = "python benchmarks/speed.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    results: dict[str, Any] = {
        "command": command.strip(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "openblas_coretype": thread_environment(1, args.openblas_coretype).get(
            "OPENBLAS_CORETYPE", "(unset: detected)"
        ),
        "runs": [],
    }
    for threads in args.threads:
        print(f"speed: {threads} thread(s) …", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            result_file = Path(tmp) / "result.json"
            command_line = [sys.executable, str(Path(__file__).resolve()), "--worker"]
            command_line += ["--threads", str(threads), "--result-file", str(result_file)]
            command_line += _forwarded(args)
            env = thread_environment(threads, args.openblas_coretype)
            done = subprocess.run(command_line, env=env)
            if done.returncode != 0:
                print(f"speed: the {threads}-thread worker failed", file=sys.stderr)
                return done.returncode
            results["runs"].append(json.loads(result_file.read_text()))
    if not args.no_memory:
        steps = 5 if args.smoke else 50
        memory_threads = max(args.threads)
        models = args.models[:1] if args.smoke else args.models
        results["memory"] = measure_memory(models, memory_threads, steps, args.openblas_coretype)
        results["memory_threads"], results["memory_steps"] = memory_threads, steps
    results["targets"] = {str(r["threads"]): targets(r) for r in results["runs"]}
    write_atomically(args.out / "speed.json", json.dumps(results, indent=1) + "\n")
    report = markdown(results)
    write_atomically(args.out / "speed.md", report)
    print(report)
    print(f"speed: wrote {args.out / 'speed.json'} and {args.out / 'speed.md'}", file=sys.stderr)
    return 0


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The options a worker needs, as command-line words."""
    words = [
        "--models",
        *args.models,
        "--block-ms",
        str(args.block_ms),
        "--gap-ms",
        str(args.gap_ms),
    ]
    words += ["--square", str(args.square), "--digits-rounds", str(args.digits_rounds)]
    if args.rounds:
        words += ["--rounds", str(args.rounds)]
    for flag in ("smoke", "no_digits", "no_jax", "no_numba"):
        if getattr(args, flag):
            words.append("--" + flag.replace("_", "-"))
    return words


if __name__ == "__main__":
    sys.exit(main())
