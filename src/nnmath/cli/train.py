"""``nnmath train``: train a network on a built-in data set or a file, save it and its plots."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnmath.cli import DATA
from nnmath.cli.options import add_penalty_options
from nnmath.errors import SpecError
from nnmath.outputs import check_output, rescue_message, save_with_fallback

if TYPE_CHECKING:  # the library is imported when the command runs, not when it is parsed
    from nnmath.datasets import Dataset
    from nnmath.modelfile import TrainedModel
    from nnmath.recipe import TrainConfig, TrainingResult

LOSS_NAMES = ("squared-error", "mse", "cross-entropy", "binary-cross-entropy")  # losses.LOSSES
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")  # OPTIMIZERS

EPILOG = """\
examples:
  nnmath train                                   digits, 64-512relu-10softmax, a few seconds
  nnmath train --data iris --epochs 50
  nnmath train --data spirals --spec 64relu-64relu --plots runs/spirals
  nnmath train --data mnist1d --epochs 40 --quiet
  nnmath train --data houses.csv --target price --spec 32relu --patience 10
  nnmath train --data iris --checkpoint iris.ckpt --epochs 20
  nnmath train --data mnist1d --spec '256relu+bn-256relu+bn+dropout(0.1)'
  nnmath train --data loans.csv --target default --class-weight balanced --l2 1e-4
  nnmath train --activation 'swish=z * sigmoid(z)' --spec 128swish
  nnmath train --resume iris.ckpt --epochs 40     continue to epoch 40, bit for bit
  mpiexec -n 4 nnmath train --distributed         data-parallel over 4 MPI ranks
  nnmath train --data big.parquet --stream        data larger than memory, read in pieces

SPEC is a full network (64-128relu-10softmax) or only its hidden layers (128relu,
256relu-256relu): the input width comes from the data, the output layer from the task
(softmax over the classes, or identity for regression). Without --spec, each built-in set
has tuned defaults ('nnmath datasets' lists them). Inputs are standardised with the
training split's statistics; 20% of the rows (or the set's own test split) are held out
and the held-out metrics are printed at the end. The model file keeps the network, the
standardisation and the class names: see 'nnmath info', 'nnmath evaluate', 'nnmath predict'.
"""

# Options that a resumed run may change; every other setting comes from the checkpoint.
RESUMABLE = ("epochs",)
CONFIG_OPTIONS = (
    "data",
    "target",
    "spec",
    "loss",
    "optimizer",
    "learning_rate",
    "epochs",
    "batch_size",
    "seed",
    "test_fraction",
    "validation_fraction",
    "patience",
    "schedule",
    "clip_norm",
    "dtype",
    "kernel",
    "class_weight",
    "weight_column",
    "l2",
    "l1",
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``nnmath train`` and its options."""
    parser = subparsers.add_parser(
        "train",
        help="train a network on a data set and save the model and its plots",
        description="Train an MLP by mini-batch gradient descent, print its held-out accuracy\n"
        "(or R²), and save the model file and PNG plots. With no options: the digits set.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _data_options(parser.add_argument_group("data"))
    _training_options(parser.add_argument_group("network and training"))
    _output_options(parser.add_argument_group("output"))
    return parser


def _data_options(data: argparse._ArgumentGroup) -> None:
    data.add_argument(
        "--data",
        metavar="NAME|PATH",
        help="a built-in set (see 'nnmath datasets'; default digits) or a .csv/.npz/.parquet file",
    )
    data.add_argument(
        "--target", metavar="COLUMN", help="the target column of a file (default: last)"
    )
    data.add_argument(
        "--weight-column",
        metavar="COLUMN",
        help="a column of a CSV/Parquet file holding each row's weight (taken out of the "
        "features): the cost becomes the weighted mean Σ w ℓ / Σ w",
    )
    data.add_argument(
        "--class-weight",
        metavar="balanced|CLASS=W,…",
        help="weigh each row by its class: 'balanced' (S / (C · S_class), scikit-learn's) or "
        "weights by class name, e.g. 'cat=2,dog=1'; multiplies --weight-column's",
    )
    data.add_argument(
        "--test-fraction", type=float, metavar="F", help="held-out fraction (default 0.2)"
    )
    data.add_argument(
        "--validation-fraction",
        type=float,
        metavar="F",
        help="fraction of the training rows used for validation curves and early stopping "
        "(default 0.1, but 0 for mnist1d; 0 for none)",
    )


def _training_options(model: argparse._ArgumentGroup) -> None:
    model.add_argument("--spec", help="network, e.g. 128relu or 64-128relu-10softmax")
    model.add_argument("--loss", choices=LOSS_NAMES, help="default: matches the output layer")
    model.add_argument("--optimizer", choices=OPTIMIZER_NAMES, help="default adam")
    model.add_argument("--learning-rate", "--lr", type=float, metavar="LR")
    model.add_argument("--epochs", type=int)
    model.add_argument("--batch-size", type=int)
    model.add_argument("--seed", type=int, help="seed of the split, weights and shuffling (0)")
    model.add_argument("--patience", type=int, help="stop after this many epochs without progress")
    model.add_argument(
        "--schedule",
        choices=["constant", "cosine", "step", "exponential"],
        help="learning-rate schedule over the epochs (default constant)",
    )
    model.add_argument("--clip-norm", type=float, metavar="C", help="clip gradients to norm C")
    add_penalty_options(model)
    model.add_argument(
        "--activation",
        action="append",
        metavar="NAME=EXPRESSION",
        help="register your own activation for the spec, e.g. --activation 'swish=z * "
        "sigmoid(z)' --spec 64swish (needs nnmath[symbolic]; the model file keeps it)",
    )
    model.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        help="the network's and the training's arithmetic (default float32)",
    )
    model.add_argument(
        "--kernel",
        choices=["numpy", "numba", "auto"],
        help="the training step's kernel (default auto: numpy, or numba when it pays off; "
        "numba needs nnmath[numba])",
    )


def _output_options(output: argparse._ArgumentGroup) -> None:
    output.add_argument(
        "--output", "-o", metavar="PATH", help="model file (default runs/DATA/model.nnm)"
    )
    output.add_argument("--plots", metavar="DIR", help="plot directory (default: the model's)")
    output.add_argument("--no-plots", action="store_true", help="do not draw plots")
    output.add_argument("--checkpoint", metavar="PATH", help="write a checkpoint after each epoch")
    output.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint")
    output.add_argument("--quiet", "-q", action="store_true", help="no progress bar, short output")
    output.add_argument("--json", action="store_true", help="print the result as JSON")
    output.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over the MPI ranks of mpiexec -n N (nnmath[mpi]); rank 0 writes",
    )
    output.add_argument(
        "--check-replicas",
        action="store_true",
        help="with --distributed: compare a hash of the ranks' weights after every epoch",
    )
    output.add_argument(
        "--stream",
        action="store_true",
        help="read a .parquet file or directory, or a .npy array, in pieces (larger than memory)",
    )


def _config(args: argparse.Namespace) -> tuple[TrainConfig, Any]:
    """The run's config (from the options, or from the checkpoint when resuming) and the state."""
    from nnmath.modelfile import load_checkpoint
    from nnmath.recipe import TrainConfig

    given = {
        name: getattr(args, name) for name in CONFIG_OPTIONS if getattr(args, name) is not None
    }
    if args.activation:
        given["activations"] = list(args.activation)
    if args.resume is None:
        return TrainConfig.from_dict(given), None
    checkpoint = load_checkpoint(args.resume)
    if checkpoint.config is None:
        raise SpecError(
            f"{args.resume} was not written by 'nnmath train --checkpoint'; resume it from Python "
            "with fit(..., resume=load_checkpoint(path).state)"
        )
    stored = checkpoint.config
    for name, value in given.items():
        if name not in RESUMABLE and value != stored.get(name):
            raise SpecError(
                f"--{name.replace('_', '-')} {value} differs from the checkpoint's "
                f"{stored.get(name)!r}; a resumed run keeps its settings (only --epochs may "
                "change): drop the option"
            )
    return TrainConfig.from_dict({**stored, **given}), checkpoint.state


def _describe_start(model: TrainedModel, train: Dataset, test: Dataset, config: TrainConfig) -> str:
    outputs = (
        f"{len(model.class_names or [])} classes"
        if model.task == "classification"
        else f"{model.network.n_out} target(s)"
    )
    network = model.network
    return (
        f"data: {train.name} ({train.n_samples} training rows, {test.n_samples} held out; "
        f"{train.n_features} features, {outputs})\n"
        f"network: {network.spec} ({network.dtype}, {network.parameter_count:,} parameters), "
        f"loss {model.loss.name}, {config.optimizer} lr {config.learning_rate:g}, "
        f"{config.epochs} epochs of batch {config.batch_size}"
        + (f", validation {config.validation_fraction:g}" if config.validation_fraction else "")
    )


def _format_metrics(metrics: dict[str, float]) -> str:
    return ", ".join(
        f"{key} {value:.4f}" if key != "epoch" else f"epoch {int(value)}"
        for key, value in metrics.items()
        if key != "learning_rate"
    )


def _headline(result: TrainingResult) -> str:
    test = result.test_metrics
    n = result.test.n_samples
    if "accuracy" in test:
        right = round(test["accuracy"] * n)
        return f"held-out accuracy: {test['accuracy']:.2%} ({right}/{n})"
    return (
        f"held-out R²: {test['r2']:.4f}  (MSE {test['mse']:.4g}, MAE {test['mae']:.4g}, {n} rows)"
    )


def run(args: argparse.Namespace) -> int:
    """Train as the options say, in this process or (``--distributed``) on every MPI rank; rank 0
    saves the model and plots and reports. Returns the exit status."""
    if not args.distributed:
        return _run(args, None)
    from nnmath.distributed import Communicator, run_on_ranks

    comm = Communicator.world(check_replicas=args.check_replicas)
    return run_on_ranks(comm, lambda: _run(args, comm))


def _run(args: argparse.Namespace, comm: Any) -> int:
    """Train on every rank of ``comm`` (None: this process); rank 0 saves, plots and reports."""
    from nnmath.callbacks import stream_is_terminal
    from nnmath.distributed import Communicator, SetupAgreement
    from nnmath.recipe import check_config, train_dataset
    from nnmath.streaming import train_streamed

    _refuse_what_does_not_apply(args)
    config, state = _config(args)
    check_config(config)
    comm = comm or Communicator()
    talk = not args.quiet and not args.json and comm.is_root
    output = Path(args.output) if args.output else Path("runs") / _run_name(config) / "model.nnm"
    checkpoint = args.checkpoint or args.resume
    _check_outputs(args, output, checkpoint)  # before the data is read or a step taken
    agreement = SetupAgreement(comm)

    def on_start(model: TrainedModel, train: Dataset, test: Dataset, resolved: TrainConfig) -> None:
        agreement.reached()  # every rank has its data and network (or all stop, with the cause)
        if talk:
            print(_describe_start(model, train, test, resolved), flush=True)
            if state is not None:
                print(f"resuming from {args.resume} after epoch {state.epoch}", flush=True)

    progress = False if args.quiet else stream_is_terminal(sys.stderr)
    train = train_streamed if args.stream else train_dataset
    try:
        result = train(
            config, progress=progress, checkpoint=checkpoint, resume=state, on_start=on_start,
            comm=comm if comm.distributed else None,
        )  # fmt: skip
    except Exception as error:
        agreement.failed(error)
        raise
    saved = comm.collect(lambda: _save(args, result, output) if comm.is_root else None, "saving")
    if not comm.is_root:
        return 0
    plots, plot_note, where, save_error = saved[0]
    status = 0 if save_error is None else DATA

    if args.json:
        print(json.dumps(_report(result, where, plots, checkpoint), indent=2))
        _say_rescued(output, where, save_error)
        return status
    if talk:
        print(_format_metrics(result.history.last()))
        if result.history.best_epoch is not None:
            print(f"restored the weights of epoch {result.history.best_epoch} (best val. score)")
    if result.history.no_progress:
        print(_no_progress(result), file=sys.stderr)
    print(f"{_headline(result)}  [{result.seconds:.1f} s]")
    print(f"saved model: {where}")
    if plots and talk:
        print(f"saved plots: {', '.join(plots)}")
    if plot_note:
        print(plot_note, file=sys.stderr)
    if talk:
        print(f"next: nnmath info {where}  |  nnmath evaluate {where}")
    _say_rescued(output, where, save_error)
    return status


def _refuse_what_does_not_apply(args: argparse.Namespace) -> None:
    """Options that would be ignored are refused, naming the one they conflict with or need."""
    if args.plots and args.no_plots:
        raise SpecError("--plots says where the plots go and --no-plots draws none; give one")
    if args.plots and args.stream:
        raise SpecError("a streamed run keeps no rows in memory to plot; drop --plots")
    if args.check_replicas and not args.distributed:
        raise SpecError("--check-replicas compares the ranks of --distributed; add it or drop this")


def _check_outputs(args: argparse.Namespace, output: Path, checkpoint: str | None) -> None:
    """Every path the run will write, checked before any work (``nnmath.outputs``)."""
    check_output(output, "-o", example="model.nnm")
    if checkpoint is not None:
        option = "--checkpoint" if args.checkpoint else "--resume"
        check_output(checkpoint, option, example="run.ckpt")
    if args.plots:
        check_output(args.plots, "--plots", kind="folder")


def _say_rescued(output: Path, where: Path, error: OSError | None) -> None:
    """The one line that says the model could not go where asked, and where it went instead."""
    if error is not None:
        message = rescue_message("trained model", output, where, error)
        print(f"nnmath train: error: {message}", file=sys.stderr)


def _no_progress(result: TrainingResult) -> str:
    """The summary's warning for a run whose training loss never improved."""
    history, config = result.history, result.config
    return (
        f"warning: the training loss never improved on its starting value "
        f"{history.initial_loss:.4g} (best {min(history['loss']):.4g}): the model has not "
        f"learned. Try a larger learning rate (it is {config.learning_rate:g}), more epochs, "
        "or another network"
    )


def _save(
    args: argparse.Namespace, result: TrainingResult, output: Path
) -> tuple[list[str], str | None, Path, OSError | None]:
    """The model file, then the plots: (the PNG files written, a note saying why none were, where
    the model went, the error that moved it elsewhere). A model that cannot be written to
    ``output`` (a full disk, a folder removed meanwhile) is written to a fallback place: the
    training is never lost (``outputs.save_with_fallback``)."""
    where, error = save_with_fallback(result.model.save, output, "trained model")
    try:
        plots, note = _plots(args, result, output)
    except OSError as failure:  # the plots are not worth the run
        plots, note = [], f"plots skipped: could not write them ({failure.strerror or failure})"
    return plots, note, where, error


def _plots(
    args: argparse.Namespace, result: TrainingResult, output: Path
) -> tuple[list[str], str | None]:
    """(the PNG files written, or a note saying why none were)."""
    from nnmath import plotting

    plots: list[str] = []
    plot_note = None
    if args.stream and not args.no_plots:
        plot_note = "plots skipped: a streamed run keeps no rows in memory to plot"
    elif not args.no_plots:
        if plotting.available():
            directory = Path(args.plots) if args.plots else output.parent
            paths = plotting.save_training_plots(
                directory,
                result.model,
                result.history,
                result.test.X,
                result.test.y,
                X_train=result.train.X,
                y_train=result.train.y,
                name=result.train.name,
            )
            plots = [str(path) for path in paths]
        else:
            plot_note = f"plots skipped: matplotlib is not installed ({plotting.PLOT_EXTRA})"
    return plots, plot_note


def _report(
    result: TrainingResult, output: Path, plots: list[str], checkpoint: str | None
) -> dict[str, Any]:
    """What ``--json`` prints."""
    return {
        "data": result.train.name,
        "task": result.model.task,
        "spec": str(result.model.network.spec),
        "config": result.config.to_dict(),
        "epochs_run": result.history.epochs,
        "best_epoch": result.history.best_epoch,
        "stopped_early": result.history.stopped_early,
        "no_progress": result.history.no_progress,
        "initial_loss": result.history.initial_loss,
        "final": result.history.last(),
        "test": result.test_metrics,
        "n_train": result.train.n_samples,
        "n_test": result.test.n_samples,
        "seconds": round(result.seconds, 3),
        "model": str(output),
        "plots": plots,
        "checkpoint": checkpoint,
        **({"stream": _stream_report(result)} if hasattr(result, "peak_rss_mb") else {}),
    }


def _stream_report(result: Any) -> dict[str, Any]:
    """A streamed run's sizes, ranks and peak memory per rank, for --json."""
    return {
        "rows": result.rows,
        "ranks": len(result.peak_rss_mb),
        "peak_rss_mb": [round(mb, 1) for mb in result.peak_rss_mb],
        "seconds": result.phases,
    }


def _run_name(config: TrainConfig) -> str:
    """runs/NAME/: the built-in set's name, or a data file's stem."""
    return Path(config.data).stem if config.data else "digits"
