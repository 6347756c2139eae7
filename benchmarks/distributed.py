"""Distributed benchmark: the data-parallel step on 1 and 2 MPI ranks, and an epoch streamed from disk.

    python benchmarks/distributed.py                # steps, a 1 GB streamed epoch, the cost model
    python benchmarks/distributed.py --smoke        # seconds: checks that every part runs
    python benchmarks/distributed.py --skip-stream  # steps and cost model only

Writes benchmarks/results/distributed.md and distributed.json (or --out DIR). Needs the mpi extra
(``pip install 'nnmath[mpi]'``) and pyarrow.

How it measures:

- **Steps.** One ``mpiexec -n 2`` run times, for the small, medium and large networks of
  benchmarks/speed.py (float32, their global batch B, plain SGD), the training step that
  ``fit(..., comm=)`` takes (``training.make_stepper``): ``FastStep.loss_and_gradients`` on the
  rank's B/N rows, the one Allreduce of the gradient buffer (``distributed.reduced_gradients``),
  and the optimizer's update; on one rank, the fused SGD step that ``fit`` takes there. Three configurations
  are timed round-robin in the same run (the order rotates each round), so that the machine's
  drifting load hits them alike: 2 ranks × 1 BLAS thread; 1 rank × 1 thread (rank 0 alone, no
  MPI call, while rank 1 sleeps); 1 rank × 2 threads. Reported: the median over rounds of the
  time per step, steps/s, samples/s (B per step), and for 2 ranks the time spent inside the
  Allreduce per step (which includes waiting for the slower rank) and its share of the step, plus
  the Allreduce alone on a buffer of the same size after a barrier (the transfer without waiting).
- **Stream.** A Parquet file of ≥ 1 GB (float32 features, int labels from a fixed random linear
  rule) is generated under /tmp and deleted afterwards. ``nnmath train --data FILE --stream``
  trains the small network for one epoch on 1 rank and on 2 ranks; reported: the time of the
  statistics pass and of the epoch, training rows per second, and the peak RSS of each rank.
- **Cost model.** The ring-allreduce model of docs/distributed.md, evaluated with the step times
  measured here on 1 rank × 1 thread (see that page for the formulas and assumptions).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
NETWORKS = ("small", "medium", "large")
CONFIGS = ("2 ranks × 1 thread", "1 rank × 1 thread", "1 rank × 2 threads")
LINKS = {  # name: (bytes per second, latency per message in seconds)
    "10 Gb/s": (10e9 / 8, 20e-6),
    "100 Gb/s": (100e9 / 8, 2e-6),
}
RANKS = (2, 4, 8, 16, 32, 64)
DATA_ROWS = 10**8


def mpi_environment() -> dict[str, str]:
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def mpiexec(n: int) -> list[str]:
    found = Path(sys.executable).with_name("mpiexec")
    command = str(found) if found.exists() else "mpiexec"
    return [command, "--oversubscribe", "-n", str(n)]


# ---- steps: the worker, run on 2 ranks ---------------------------------------------------------


class Timed:
    """A Communicator whose Allreduce time is summed in ``seconds``."""

    def __init__(self, comm: Any) -> None:
        self.inner, self.seconds = comm, 0.0
        self.rank, self.size, self.distributed = comm.rank, comm.size, comm.distributed

    def share(self, n_rows: int) -> slice:
        return self.inner.share(n_rows)

    def allreduce(self, buffer: np.ndarray) -> None:
        began = time.perf_counter()
        self.inner.allreduce(buffer)
        self.seconds += time.perf_counter() - began

    def gather_failures(self, error: Any, what: str) -> None:
        self.inner.gather_failures(error, what)


def make_step(name: str, comm: Any) -> Any:
    """() -> None: one training step of network ``name``, as ``fit(comm=)`` takes it: the
    stepper of ``training.make_stepper`` with the reduction of ``distributed.reduction`` (one
    rank: none, and plain SGD fused into the backward pass, as on one process)."""
    from speed_steps import make_problem

    from nnmath.distributed import reduction
    from nnmath.losses import get_loss
    from nnmath.network import MLP
    from nnmath.optimizers import SGD
    from nnmath.training import make_stepper

    problem = make_problem(name)
    model = MLP.from_weights(problem.spec, problem.copy_weights())
    stepper = make_stepper(
        model, get_loss("cross-entropy"), SGD(problem.learning_rate), gradients=None,
        batch_size=problem.batch, kernel="numpy", penalty=None, clip_norm=None,
        dtype=np.dtype("float32"), task="classification", evaluation_rows=problem.batch,
        keep_score=True, reduce=reduction(comm, None),
    )  # fmt: skip
    X, y = problem.X, problem.y

    def step() -> None:
        stepper.update(X, y)

    return step


def sleep_until_released(world: Any) -> None:
    """Rank 1 while rank 0 times alone: wait for rank 0's barrier, sleeping, not spinning."""
    request = world.Ibarrier()
    while not request.Test():
        time.sleep(0.002)


def time_block(step: Any, steps: int) -> float:
    began = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - began) / steps


def allreduce_alone(world: Any, n_params: int, repeats: int) -> float:
    """Median seconds of an Allreduce of n_params float32 after a barrier (no waiting inside)."""
    from mpi4py import MPI

    buffer, times = np.ones(n_params, np.float32), []
    for _ in range(repeats):
        world.Barrier()
        began = time.perf_counter()
        world.Allreduce(MPI.IN_PLACE, buffer)
        times.append(time.perf_counter() - began)
    return float(np.median(times))


def steps_worker(rounds: int, block_seconds: float) -> dict[str, Any]:
    from threadpoolctl import threadpool_limits

    from nnmath.distributed import Communicator

    world = Communicator.world()
    results: dict[str, Any] = {}
    for name in NETWORKS:
        timed = Timed(world)
        together, alone = make_step(name, timed), make_step(name, Communicator())
        with threadpool_limits(1):
            for _ in range(3):
                together()
        per_step = world.comm.bcast(time_block(together, 3))  # rank 0's: the same on both
        n_steps = max(3, int(block_seconds / max(per_step, 1e-6)))
        samples: dict[str, list[float]] = {config: [] for config in CONFIGS}
        allreduce: list[float] = []
        for round_index in range(rounds):
            order = CONFIGS[round_index % 3 :] + CONFIGS[: round_index % 3]
            for config in order:
                world.comm.Barrier()
                if config.startswith("2 ranks"):
                    with threadpool_limits(1):
                        timed.seconds = 0.0
                        samples[config].append(time_block(together, n_steps))
                        allreduce.append(timed.seconds / n_steps)
                elif world.is_root:
                    with threadpool_limits(int(config.split("×")[1].split()[0])):
                        samples[config].append(time_block(alone, n_steps))
                    world.comm.Ibarrier().Wait()
                else:
                    sleep_until_released(world.comm)
        n_params = sum(p.size for p in make_problem_params(name))
        results[name] = {
            "steps_per_block": n_steps,
            "step_s": {config: _median(values) for config, values in samples.items()},
            "best_step_s": {
                config: min(values, default=np.nan) for config, values in samples.items()
            },
            "allreduce_s": _median(allreduce),
            "best_allreduce_s": min(allreduce),
            "allreduce_alone_s": allreduce_alone(world.comm, n_params + 3, 50),
            "parameters": n_params,
        }
    return results


def _median(values: list[float]) -> float:
    """The median, or NaN for no values (rank 1 times none of the 1-rank configurations)."""
    return float(np.median(values)) if values else float("nan")


def make_problem_params(name: str) -> list[np.ndarray]:
    from speed_steps import make_problem

    return [a for pair in make_problem(name).weights for a in pair]


# ---- the streamed epoch ------------------------------------------------------------------------


def write_parquet(path: Path, rows: int, features: int, classes: int) -> int:
    """A Parquet file of float32 features and labels y = argmax(X V): its size in bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    V = rng.normal(size=(features, classes)).astype(np.float32)
    names = [f"x{j}" for j in range(features)]
    schema = pa.schema([*[(n, pa.float32()) for n in names], ("label", pa.int64())])
    block = 65_536
    with pq.ParquetWriter(path, schema, compression="snappy", use_dictionary=False) as writer:
        for start in range(0, rows, block):
            X = rng.standard_normal((min(block, rows - start), features), dtype=np.float32)
            y = np.argmax(X @ V, axis=1)
            arrays = [pa.array(X[:, j]) for j in range(features)] + [pa.array(y)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    return path.stat().st_size


def stream_run(path: Path, ranks: int, batch: int, directory: Path) -> dict[str, Any]:
    """``nnmath train --stream`` for one epoch on ``ranks`` ranks; its JSON report and the time."""
    command = [
        sys.executable, "-m", "nnmath", "train", "--data", str(path), "--stream",
        "--spec", "128relu-64relu", "--epochs", "1", "--batch-size", str(batch),
        "--optimizer", "sgd", "--learning-rate", "0.05", "--dtype", "float32",
        "--validation-fraction", "0", "--test-fraction", "0.01", "--no-plots", "--json",
        "-o", str(directory / f"stream{ranks}.nnm"),
    ]  # fmt: skip
    if ranks > 1:
        command = [*mpiexec(ranks), *command, "--distributed"]
    env = {**mpi_environment(), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    began = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - began
    if run.returncode != 0:
        raise SystemExit(f"stream run failed:\n{run.stdout}\n{run.stderr}")
    report = json.loads(run.stdout)
    return {"ranks": ranks, "wall_s": seconds, "report": report}


# ---- the cost model ----------------------------------------------------------------------------


def ring_allreduce_seconds(parameters: int, ranks: int, link: tuple[float, float]) -> float:
    """2(N−1)/N · 4P bytes over the link, plus 2(N−1) message latencies (the ring's steps)."""
    bandwidth, latency = link
    return 2 * (ranks - 1) / ranks * 4 * parameters / bandwidth + 2 * (ranks - 1) * latency


def cost_model(steps: dict[str, Any]) -> list[dict[str, Any]]:
    """Per network, link and N: Allreduce time, step time, efficiency, and an epoch of 10⁸ rows.

    Weak scaling: each machine keeps the benchmark's batch b, so the global batch is B = N b and
    an epoch takes 10⁸ / (N b) steps of t_b + t_ar. t_b is the fastest round's step on one rank
    and one thread: the step of an undisturbed machine (this one is shared with other jobs).
    """
    from speed_steps import MODELS

    rows = []
    for name in NETWORKS:
        measured = steps[name]
        t_b, P = measured["best_step_s"]["1 rank × 1 thread"], measured["parameters"]
        b = MODELS[name][1]
        one_machine = DATA_ROWS / b * t_b
        for link_name, link in LINKS.items():
            for N in RANKS:
                t_ar = ring_allreduce_seconds(P, N, link)
                epoch = DATA_ROWS / (N * b) * (t_b + t_ar)
                rows.append({
                    "network": name, "link": link_name, "N": N, "batch": N * b,
                    "allreduce_ms": 1e3 * t_ar, "step_ms": 1e3 * (t_b + t_ar),
                    "efficiency": t_b / (t_b + t_ar), "epoch_s": epoch,
                    "speedup": one_machine / epoch,
                })  # fmt: skip
    return rows


# ---- the report --------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Distributed benchmark ({results['date']}, {results['machine']})",
        "",
        f"Load average (1 min) of the machine, other jobs included: {results['load_before']:.1f} "
        f"before the run, {results['load_after']:.1f} after.",
        "",
        *steps_table(results["steps"]),
    ]
    if results.get("stream"):
        lines += ["", *stream_table(results["stream"])]
    lines += [
        "",
        "## Cost model (docs/distributed.md)",
        "",
        "Step compute: the fastest round of 1 rank × 1 thread above; weak scaling (each machine "
        "keeps the batch b, B = N b).",
        "",
        *cost_table(results["cost_model"]),
    ]
    return "\n".join(lines) + "\n"


def steps_table(steps: dict[str, Any]) -> list[str]:
    from speed_steps import MODELS, spec_of

    lines = [
        "## Steps: 1 and 2 ranks on this machine",
        "",
        "Median over rounds of the time per step (float32, plain SGD): fit's step, with the "
        "one Allreduce on 2 ranks; in brackets the fastest round's, the least disturbed by "
        "other jobs.",
        "",
        "| network (params), global batch | configuration | ms / step (fastest) | steps/s "
        "| samples/s | Allreduce / step (share; fastest) | Allreduce alone |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in NETWORKS:
        measured, B = steps[name], MODELS[name][1]
        label = f"{name} {spec_of(MODELS[name][0])} ({measured['parameters']:,}), B = {B}"
        for config in CONFIGS:
            t, ar, alone = measured["step_s"][config], "—", "—"
            best = measured["best_step_s"][config]
            if config.startswith("2 ranks"):
                share = measured["allreduce_s"] / t
                ar = (
                    f"{1e3 * measured['allreduce_s']:.3f} ms ({share:.0%}; "
                    f"{1e3 * measured['best_allreduce_s']:.3f} ms)"
                )
                alone = f"{1e3 * measured['allreduce_alone_s']:.3f} ms"
            lines.append(
                f"| {label} | {config} | {1e3 * t:.3f} ({1e3 * best:.3f}) | {1 / t:,.0f} "
                f"| {B / t:,.0f} | {ar} | {alone} |"
            )
            label = ""
    return lines


def stream_table(stream: dict[str, Any]) -> list[str]:
    lines = [
        f"## One epoch streamed from a {stream['file_gb']:.3g} GB Parquet file",
        "",
        f"{stream['rows']:,} rows × {stream['features']} float32 features, row groups of "
        f"65,536 rows; network {stream['spec']}, SGD, global batch {stream['batch']}, "
        "float32, 1 % of the rows held out.",
        "",
        "| ranks | statistics pass (s) | initial-loss pass (s) | epoch (s) "
        "| training rows/s in the epoch | test pass (s) | peak RSS per rank (MB) "
        "| held-out accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in stream["runs"]:
        report = run["report"]
        phases = report["stream"]["seconds"]
        epoch = phases["epochs"][0]
        rss = ", ".join(f"{mb:.0f}" for mb in report["stream"]["peak_rss_mb"])
        lines.append(
            f"| {run['ranks']} | {phases['statistics']:.1f} | {phases['initial_loss']:.1f} "
            f"| {epoch:.1f} | {report['n_train'] / epoch:,.0f} | {phases['test']:.1f} "
            f"| {rss} | {report['test']['accuracy']:.2%} |"
        )
    return lines


def cost_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| network | link | N | global batch | Allreduce (ms) | step (ms) | efficiency "
        "| epoch of 10⁸ rows | speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['network']} | {row['link']} | {row['N']} | {row['batch']:,} "
            f"| {row['allreduce_ms']:.3f} | {row['step_ms']:.3f} | {row['efficiency']:.0%} "
            f"| {_duration(row['epoch_s'])} | {row['speedup']:.1f}× |"
        )
    return lines


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", choices=["steps"], help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--block-seconds", type=float, default=0.25)
    parser.add_argument(
        "--stream-gb", type=float, default=1.05, help="size of the streamed file (GB)"
    )
    parser.add_argument("--skip-stream", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check that it runs")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--rerender", action="store_true", help="redo the cost model and report from the JSON"
    )
    args = parser.parse_args()
    if args.rerender:
        results = json.loads((args.out / "distributed.json").read_text())
        results["cost_model"] = cost_model(results["steps"])
        write_results(args.out, results)
        return 0
    if args.worker == "steps":
        from nnmath.distributed import Communicator, stop_all_on_error

        world = Communicator.world()
        with stop_all_on_error(world):  # a rank that fails stops both, never a hang
            result = steps_worker(args.rounds, args.block_seconds)
        if world.is_root:
            print(json.dumps(result))
        return 0
    if args.smoke:
        args.rounds, args.block_seconds, args.stream_gb = 2, 0.01, 0.005
        args.out = Path(tempfile.mkdtemp(prefix="nnmath-distributed-"))
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} CPUs, {sys.platform}",
        "load_before": os.getloadavg()[0],
    }
    command = [*mpiexec(2), sys.executable, __file__, "--worker", "steps",
               "--rounds", str(args.rounds), "--block-seconds", str(args.block_seconds)]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, env=mpi_environment())
    if run.returncode != 0:
        raise SystemExit(f"the steps worker failed:\n{run.stdout}\n{run.stderr}")
    results["steps"] = json.loads(run.stdout.strip().splitlines()[-1])
    results["cost_model"] = cost_model(results["steps"])
    if not args.skip_stream:
        results["stream"] = stream_benchmark(args.stream_gb)
    results["load_after"] = os.getloadavg()[0]
    write_results(args.out, results)
    return 0


def write_results(out: Path, results: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "distributed.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "distributed.md").write_text(markdown(results))
    print(markdown(results))
    print(f"wrote {out / 'distributed.md'}")


def stream_benchmark(gigabytes: float) -> dict[str, Any]:
    features, classes, batch = 64, 10, 256
    rows = int(gigabytes * 1e9 / (4 * features + 8))
    with tempfile.TemporaryDirectory(prefix="nnmath-stream-", dir="/tmp") as directory:
        path = Path(directory) / "big.parquet"
        size = write_parquet(path, rows, features, classes)
        runs = [stream_run(path, ranks, batch, Path(directory)) for ranks in (1, 2)]
    return {
        "file_gb": size / 1e9, "rows": rows, "features": features, "batch": batch,
        "spec": f"{features}-128relu-64relu-{classes}softmax", "runs": runs,
    }  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
