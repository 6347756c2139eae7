"""Speed benchmark: nnmath's training step and its whole training runs, against the peers.

    python benchmarks/speed.py              # both BLAS setups × 1 and 2 threads (~20 min, quiet)
    python benchmarks/speed.py --smoke      # a quick check that everything runs (CI, < 60 s)
    python benchmarks/speed.py --blas configured --threads 1 --models medium large

Writes benchmarks/results/speed.json and benchmarks/results/speed.md (or --out DIR), atomically;
a smoke run writes to a temporary directory instead, so that it never replaces published results.

What it measures (see docs/speed.md), for each BLAS setup and thread count:

- BLAS setups: "configured" (this environment as it is) and "unset" (OPENBLAS_CORETYPE and
  OPENBLAS_L2_SIZE removed from the benchmark's own subprocesses only, so OpenBLAS picks the
  kernels for the CPU it finds); the kernel name threadpoolctl reports is recorded.
- Each (setup, thread count) runs in its own subprocess, with OMP/OPENBLAS/MKL_NUM_THREADS and
  XLA_FLAGS set before any library is imported, threadpoolctl limits, ``torch.set_num_threads``
  and the process pinned to that many CPUs.
- A "step" is forward, softmax + cross-entropy, backward and a plain SGD update of every weight and
  bias, from the same float32 weights and batch in every framework (speed_steps.py); nnmath's is
  the step ``fit`` runs. Before timing, three steps of each are compared with nnmath's: unless the
  weights agree to 1e-4 of their largest magnitude, the benchmark stops.
- Timing is round-robin: every round times one block of steps of each contestant in turn (the
  order rotates), so that the machine's drifting load hits all of them alike. Reported: the median
  and quartiles over rounds, and the ratio peer / nnmath of each round (median, quartiles).
- GEMM rate: the step's FLOPs (2·S·in·out per layer forward, per layer for dW, and for dX in every
  layer but the first) over its time, against a 2048² float32 GEMM and against the step's own
  products alone, both timed in the same rounds.
- Full training runs (speed_fit.py): ``fit``, the estimators and scikit-learn's MLPClassifier.fit
  on digits and MNIST-1D, same network, optimizer, batch size and epochs; held-out accuracy.
- The estimators as users call them (speed_estimators.py): ``MLPClassifier(random_state=r).fit``
  with every parameter at its default, nnmath's against scikit-learn's, epochs and accuracy.
- Whole processes (speed_process.py): ``nnmath train`` against the equivalent scikit-learn script.
- Peak memory: a separate process per framework and model imports only that framework, makes the
  data and runs three warm-up steps of the tiny model; then the peak-RSS mark is reset (Linux
  clear_refs), the model, optimizer and buffers are built and 50 steps run.
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
GEMM_FRACTION_TARGET = 0.9  # medium and large: of the square GEMM's rate
FIT_TARGET = 3.0  # fit, estimators: × faster than MLPClassifier.fit
PROCESS_TARGET = 2.0  # nnmath train: × faster than the scikit-learn script
ACCURACY_POINTS = 0.5  # the same held-out accuracy: within half a point
SQUARE_GEMM = 2048
BLAS_SETUPS = ("configured", "unset")
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
AGREEMENT = 1e-4  # largest |Δw| / max |w| allowed between nnmath and a peer after 3 steps


# ---- the environment of a worker ----------------------------------------------------------------


def thread_environment(threads: int, blas: str = "configured") -> dict[str, str]:
    """Environment variables that fix every library's thread count before it is imported.

    ``blas``: "configured" keeps this environment's OpenBLAS settings; "unset" removes
    OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (for the benchmark's own subprocesses only), so that
    OpenBLAS picks the kernels for the CPU it finds, as on a user's machine.
    """
    env = dict(os.environ)
    if blas == "unset":
        for name in BLAS_VARIABLES:
            env.pop(name, None)
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
    if name in ("medium", "large") or args.smoke:
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
    if not args.no_fits:
        import speed_fit

        out["fits"] = {}
        for job in args.jobs:
            out["fits"][job] = speed_fit.run(
                job, args.fit_rounds, "nnmath numba" in peers, epochs=1 if args.smoke else None
            )
            print(f"  [{args.threads} thread(s)] {job} fits done", file=sys.stderr, flush=True)
        import speed_estimators

        out["estimator_defaults"] = {}
        for job in args.jobs:
            out["estimator_defaults"][job] = speed_estimators.run(
                job, args.fit_rounds, max_iter=2 if args.smoke else None
            )
            print(f"  [{args.threads} thread(s)] {job} estimators done", file=sys.stderr)
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


def measure_memory(models: list[str], threads: int, steps: int, blas: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for model in models:
        result[model] = {}
        for framework in ("nnmath", "PyTorch"):
            command = [sys.executable, str(Path(__file__).resolve()), "--memory-worker"]
            command += [framework, model, "--steps", str(steps), "--threads", str(threads)]
            done = subprocess.run(
                command,
                env=thread_environment(threads, blas),
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
    """Each target of docs/speed.md measured in one run: required, measured, met."""
    rows = _step_targets(run)
    for job, fit in run.get("fits", {}).items():
        sk_accuracy = fit["test_accuracy"]["scikit-learn"]
        for mine, ratio in fit["ratio_to_sklearn"].items():
            points = 100 * (fit["test_accuracy"][mine] - sk_accuracy)
            cpu = fit.get("cpu_ratio_to_sklearn", {}).get(mine, float("nan"))
            rows.append(
                {
                    "kernel": mine,
                    "target": f"{job}: ≥ {FIT_TARGET:g}× faster than MLPClassifier.fit, held-out "
                    f"accuracy within {ACCURACY_POINTS} points",
                    "measured": f"{ratio:.2f}× (CPU {cpu:.2f}×), {points:+.1f} points",
                    "met": ratio >= FIT_TARGET and abs(points) <= ACCURACY_POINTS,
                }
            )
    rows += _estimator_targets(run)
    for job, process in run.get("processes", {}).items():
        for command, ratio in process["ratio_to_sklearn"].items():
            cpu = process["cpu_ratio_to_sklearn"][command]
            rows.append(
                {
                    "kernel": command,
                    "target": f"{job}: the whole process ≥ {PROCESS_TARGET:g}× faster than the "
                    "scikit-learn script",
                    "measured": f"{ratio:.2f}× (CPU time {cpu:.2f}×)",
                    "met": ratio >= PROCESS_TARGET,
                }
            )
    return rows


def _estimator_targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The estimators with every parameter at its default, against scikit-learn's."""
    rows = []
    for job, result in run.get("estimator_defaults", {}).items():
        sk_accuracy = result["test_accuracy"]["scikit-learn"]
        for mine, ratio in result["ratio_to_sklearn"].items():
            points = 100 * (result["test_accuracy"][mine] - sk_accuracy)
            cpu = result["cpu_ratio_to_sklearn"][mine]
            epochs = result["mean_n_iter"]
            rows.append(
                {
                    "kernel": f"MLPClassifier() ({mine})",
                    "target": f"{job}, both estimators' defaults: ≥ {FIT_TARGET:g}× faster than "
                    f"MLPClassifier().fit, held-out accuracy within {ACCURACY_POINTS} points",
                    "measured": f"{ratio:.2f}× (CPU {cpu:.2f}×), {points:+.1f} points, "
                    f"{epochs[mine]:.0f} epochs against {epochs['scikit-learn']:.0f}",
                    "met": ratio >= FIT_TARGET and abs(points) <= ACCURACY_POINTS,
                }
            )
    return rows


def _step_targets(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The step's targets: the GEMM rate (medium, large), and the earlier ratios to the peers."""
    rows = []
    models = run.get("models", {})
    for kernel in (k for k in KERNELS if k in run.get("peers", KERNELS[:1])):
        for name in ("medium", "large"):
            if name not in models or kernel not in models[name]:
                continue
            n = models[name].get("square_gemm_size", SQUARE_GEMM)
            fraction = models[name][kernel].get("fraction_of_square_gemm_rate")
            if fraction is not None:
                rows.append(
                    {
                        "kernel": kernel,
                        "target": f"{name}: ≥ 90 % of the {n}² float32 GEMM rate",
                        "measured": f"{fraction['median']:.0%}",
                        "met": fraction["median"] >= GEMM_FRACTION_TARGET,
                    }
                )
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
                            "target": f"{name}: ≥ {need:g}× faster than {peer} (step)",
                            "measured": f"{got:.2f}×",
                            "met": got >= need,
                        }
                    )
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Speed: nnmath's training step and whole training runs against the peers",
        "",
        f"Machine: {results['cpu']}, {results['cores']} cores; `{results['command']}` on "
        f"{results['date']}. Load average (1, 5, 15 min) at the start: "
        f"{', '.join(f'{x:.2f}' for x in results['load_average_start'])}; at the end: "
        f"{', '.join(f'{x:.2f}' for x in results['load_average_end'])}. This environment's "
        f"OpenBLAS settings: {results['blas_environment']}.",
        "",
        "Time per step: median (interquartile range) over rounds, µs unless marked. Ratio: the "
        "peer's time / nnmath's time in the same round (median, IQR); above 1 means nnmath is "
        "faster. nnmath is the step `fit` runs (`FastStep.sgd_step` on the flat parameter "
        "vector), with its NumPy kernel or its numba kernel; nnmath engine is the clear "
        "reference path (`MLP.loss_and_gradients` + `SGD`).",
        "",
    ]
    for run in results["runs"]:
        lines += _run_section(run)
    if "memory" in results:
        lines += _memory_section(results)
    for run in results["runs"]:
        lines += [
            f"## Targets ({_run_title(run)})",
            "",
            "| nnmath | target | measured | met |",
            "|---|---|---|---|",
        ]
        for row in targets(run):
            met = "yes" if row["met"] else "no"
            lines.append(f"| {row['kernel']} | {row['target']} | {row['measured']} | {met} |")
        lines.append("")
    return "\n".join(lines)


def _run_title(run: dict[str, Any]) -> str:
    t = run["threads"]
    return f"BLAS {run.get('blas', 'configured')}, {t} thread{'s' if t > 1 else ''}"


def _run_section(run: dict[str, Any]) -> list[str]:
    peers = run["peers"]
    kernels = [k for k in KERNELS if k in peers]
    others = [k for k in OTHERS if k in peers]
    versions = ", ".join(f"{k} {v}" for k, v in run["versions"].items())
    pools = "; ".join(
        " ".join(str(p.get(k) or "") for k in ("internal_api", "version", "architecture")).strip()
        for p in run["machine"]["pools"]
    )
    load = f"{run['load_average_before'][0]:.2f} / {run['load_average_after'][0]:.2f}"
    lines = [
        f"## {_run_title(run)}",
        "",
        f"{versions}. BLAS kernels (threadpoolctl): {pools}. Load average (1 min) before / "
        f"after: {load}.",
        "",
    ]
    if run["models"]:
        lines += _step_table(run, peers, kernels, others) + _gemm_table(run, kernels)
        lines += _predict_table(run, peers)
    for job, fit in run.get("fits", {}).items():
        lines += _fit_table(job, fit)
    if run.get("estimator_defaults"):
        import speed_estimators

        for job, result in run["estimator_defaults"].items():
            lines += speed_estimators.table(job, result)
    for job, process in run.get("processes", {}).items():
        lines += _process_table(job, process)
    return lines


def _step_table(run: dict, peers: list, kernels: list, others: list) -> list[str]:
    lines = [
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
    agree = {n: max(m["agreement_after_3_steps"].values()) for n, m in run["models"].items()}
    lines += [
        "",
        "Agreement: after 3 steps from the same weights, the largest |Δw| / max |w| between "
        "nnmath and any other step: " + ", ".join(f"{n} {v:.1e}" for n, v in agree.items()) + ".",
        "",
    ]
    return lines


def _gemm_table(run: dict, kernels: list) -> list[str]:
    n = next(iter(run["models"].values())).get("square_gemm_size", SQUARE_GEMM)
    lines = [
        "GEMM rate: the step's FLOPs per second, against a "
        f"{n}² float32 GEMM and against the step's own matrix products alone (same shapes "
        "and layouts), both timed in the same rounds:",
        "",
        f"| model | step GFLOP | {n}² GEMM GFLOP/s | the step's GEMMs GFLOP/s | "
        + " | ".join(f"{k} GFLOP/s | of {n}² | of the step's GEMMs" for k in kernels)
        + " |",
        "|---|---|---|---|" + "---|---|---|" * len(kernels),
    ]
    for name, m in run["models"].items():
        square = m.get("square_gemm_gflops")
        row = [
            f"{m['step_flops'] / 1e9:.4f}",
            f"{square['median']:.1f}" if square else "–",
            f"{m['step_gemm_gflops']['median']:.1f}",
        ]
        for k in kernels:
            fraction = m[k].get("fraction_of_square_gemm_rate")
            row += [
                f"{m[k]['gflops']['median']:.1f}",
                f"{fraction['median']:.0%}" if fraction else "–",
                f"{m[k]['fraction_of_step_gemm_rate']['median']:.0%}",
            ]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return [*lines, ""]


def _predict_table(run: dict, peers: list) -> list[str]:
    predictors = [p for p in peers if p != "nnmath numba"]
    lines = [
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
    return [*lines, ""]


def _fit_table(job: str, fit: dict) -> list[str]:
    runs = len(next(iter(fit["seconds"].values())))
    lines = [
        f"{job}, a full training run: {fit['network']}, {fit['optimizer']}, batch "
        f"{fit['batch_size']}, {fit['epochs']} epochs, {fit['n_train']} training / "
        f"{fit['n_test']} held-out rows; medians of {runs} runs (alternating; run r with seed r), "
        "wall and CPU seconds, the held-out accuracy's mean (min–max) over the runs:",
        "",
        "| | wall s | CPU s | held-out accuracy | scikit-learn / this (wall) | (CPU) |",
        "|---|---|---|---|---|---|",
    ]
    for key, seconds in fit["median_seconds"].items():
        ratio = fit["ratio_to_sklearn"].get(key)
        cpu_ratio = fit.get("cpu_ratio_to_sklearn", {}).get(key)
        accuracies = fit.get("test_accuracies", {}).get(key, [fit["test_accuracy"][key]])
        cpu = fit.get("median_cpu_seconds", {}).get(key)
        lines.append(
            f"| {key} | {seconds:.3f} | {'–' if cpu is None else f'{cpu:.3f}'} | "
            f"{fit['test_accuracy'][key]:.4f} ({min(accuracies):.4f}–{max(accuracies):.4f}) | "
            + (f"**{ratio:.2f}×** | {cpu_ratio:.2f}×" if ratio else "– | –")
            + " |"
        )
    return [*lines, ""]


def _process_table(job: str, process: dict) -> list[str]:
    runs = len(next(iter(process["wall_seconds"].values())))
    lines = [
        f"{job}, whole processes (median of {runs} runs, alternating): wall time, CPU time "
        "(user + system), held-out accuracy, and scikit-learn's time / this:",
        "",
        "| command | wall s | CPU s | accuracy | wall ratio | CPU ratio |",
        "|---|---|---|---|---|---|",
    ]
    for key, wall in process["median_wall_seconds"].items():
        ratio = process["ratio_to_sklearn"].get(key)
        cpu_ratio = process["cpu_ratio_to_sklearn"].get(key)
        lines.append(
            f"| {key} | {wall:.2f} | {process['median_cpu_seconds'][key]:.2f} | "
            f"{process['test_accuracy'][key]:.4f} | "
            + (f"**{ratio:.2f}×** | {cpu_ratio:.2f}×" if ratio else "– | –")
            + " |"
        )
    return [*lines, ""]


def _memory_section(results: dict) -> list[str]:
    lines = [
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
    return [*lines, ""]


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
    parser.add_argument(
        "--blas",
        choices=["both", *BLAS_SETUPS],
        default=None,
        help="configured: this environment's OpenBLAS settings; unset: OPENBLAS_CORETYPE and "
        "OPENBLAS_L2_SIZE removed in the benchmark's subprocesses; both (default; smoke: "
        "configured)",
    )
    parser.add_argument("--jobs", nargs="+", choices=["digits", "mnist1d"], default=None,
                        help="full training runs (default both; smoke: digits)")  # fmt: skip
    parser.add_argument("--fit-rounds", type=int, default=None, help="default 3; smoke 1")
    parser.add_argument("--process-rounds", type=int, default=None, help="default 3; smoke 1")
    parser.add_argument("--no-fits", action="store_true", help="no full training runs")
    parser.add_argument("--no-processes", action="store_true", help="no whole-process runs")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-jax", action="store_true", help="leave JAX out even if installed")
    parser.add_argument("--no-numba", action="store_true", help="leave out nnmath's numba kernel")
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
    if args.blas is None:
        args.blas = "configured" if args.smoke else "both"
    if args.jobs is None:
        args.jobs = ["digits"] if args.smoke else ["digits", "mnist1d"]
    if args.fit_rounds is None:
        args.fit_rounds = 1 if args.smoke else 3
    if args.process_rounds is None:
        args.process_rounds = 1 if args.smoke else 3
    if args.smoke:
        args.models = [m for m in args.models if m == "tiny"] or args.models[:1]
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
        "blas_environment": ", ".join(
            f"{name}={os.environ.get(name, '(unset)')}" for name in BLAS_VARIABLES
        ),
        "load_average_start": os.getloadavg(),
        "runs": [],
    }
    setups = BLAS_SETUPS if args.blas == "both" else (args.blas,)
    for blas in setups:
        for threads in args.threads:
            run = run_setup(args, blas, threads)
            if run is None:
                return 1
            results["runs"].append(run)
    if not args.no_memory:
        steps = 5 if args.smoke else 50
        memory_threads = max(args.threads)
        results["memory"] = measure_memory(args.models, memory_threads, steps, setups[0])
        results["memory_threads"], results["memory_steps"] = memory_threads, steps
    results["load_average_end"] = os.getloadavg()
    results["targets"] = {_run_title(r): targets(r) for r in results["runs"]}
    write_atomically(args.out / "speed.json", json.dumps(results, indent=1) + "\n")
    report = markdown(results)
    write_atomically(args.out / "speed.md", report)
    print(report)
    print(f"speed: wrote {args.out / 'speed.json'} and {args.out / 'speed.md'}", file=sys.stderr)
    return 0


def run_setup(args: argparse.Namespace, blas: str, threads: int) -> dict[str, Any] | None:
    """One BLAS setup and thread count: the worker process, then the whole-process runs."""
    print(f"speed: BLAS {blas}, {threads} thread(s) …", file=sys.stderr, flush=True)
    env = thread_environment(threads, blas)
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        command_line = [sys.executable, str(Path(__file__).resolve()), "--worker"]
        command_line += ["--threads", str(threads), "--result-file", str(result_file)]
        command_line += _forwarded(args)
        done = subprocess.run(command_line, env=env)
        if done.returncode != 0:
            print(f"speed: the worker for BLAS {blas}, {threads} thread(s) failed", file=sys.stderr)
            return None
        run = json.loads(result_file.read_text())
    run["blas"] = blas
    if not args.no_processes:
        import speed_process

        run["processes"] = {}
        for job in args.jobs:
            epochs = 1 if args.smoke else None
            run["processes"][job] = speed_process.run(job, args.process_rounds, env, epochs)
            print(f"  [{blas}, {threads} thread(s)] {job} processes done", file=sys.stderr)
    return run


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
    words += ["--square", str(args.square), "--fit-rounds", str(args.fit_rounds)]
    words += ["--jobs", *args.jobs]
    if args.rounds:
        words += ["--rounds", str(args.rounds)]
    for flag in ("smoke", "no_fits", "no_jax", "no_numba"):
        if getattr(args, flag):
            words.append("--" + flag.replace("_", "-"))
    return words


if __name__ == "__main__":
    sys.exit(main())
