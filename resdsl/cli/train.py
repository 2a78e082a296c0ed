"""`resdsl train`: compile a spec, import the generated module, and train it.

Exit status: 0 when training finished, 1 for a spec with errors, 2 for bad options, data or
checkpoints, or a run folder in use (a message, never a traceback), 3 when the loss became
non-finite (the last checkpoint is kept), 130 after Ctrl-C (a checkpoint was saved first).
"""

from __future__ import annotations

import math
import os
import sys

import click

from resdsl.train.presets import PRESETS


class Finite(click.FloatRange):
    """click's FloatRange, for finite numbers only: it lets NaN through (every comparison with
    NaN is false) and takes infinity as a number, and a learning rate or a weight decay of
    either trains to a NaN loss."""

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


# Integers beyond these fail inside the frameworks with a traceback (NumPy's seeds are 32-bit,
# TensorFlow's batch size a C integer) or start that many threads or loader processes, far more
# than any machine has cores.
MAX_SEED, MAX_BATCH, MAX_THREADS, MAX_WORKERS = 2**32 - 1, 2**31 - 1, 1024, 256


DEFAULTS = (None, click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP)


def _given(names, from_file) -> frozenset[str]:
    """Which of the options `names` the command line or the config file gave (not their
    defaults): `--resume` takes the others from the run it continues."""
    ctx = click.get_current_context()
    given = {n for n in names if ctx.get_parameter_source(n) not in DEFAULTS}
    return frozenset(given | (set(from_file) & set(names)))


def _with_config(options: dict) -> dict:
    """`options` with those the command line left out taken from `--config FILE` (a one-line
    error and exit 2 for a file it cannot use); which ones the file gave."""
    from resdsl.train.config import ConfigError, read

    if not options["config"]:
        return {}
    ctx = click.get_current_context()
    try:
        from_file = read(options["config"], ctx.command, ctx)
    except ConfigError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    for name, value in from_file.items():
        if ctx.get_parameter_source(name) in DEFAULTS:
            options[name] = value
    return from_file


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    help="take the options from this TOML file (keys as the options are named: "
    'batch-size = 128, spec = "r20.res"); the command line overrides it. Each run saves '
    "its options, resolved, as OUT/config.toml",
)
@click.option(
    "--device",
    help="cpu | cuda | cuda:N | mps (default: CUDA where available, then MPS, then CPU)",
)
@click.option(
    "--backend",
    "-b",
    type=click.Choice(["torch", "keras"]),
    default="torch",
    show_default=True,
    help="framework to generate and train with",
)
@click.option(
    "--data",
    default="digits",
    show_default=True,
    help="digits | cifar10 | cifar100 | a folder (CIFAR pickles or class subfolders)",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    help="recipe to start from (default: cifar-paper for CIFAR, digits for digits)",
)
@click.option("--epochs", type=click.IntRange(min=1), help="epochs (default: the preset's)")
@click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_BATCH),
    help="global batch size, split across processes",
)
@click.option("--lr", type=Finite(min=0, min_open=True), help="base learning rate")
@click.option("--schedule", type=click.Choice(["step", "cosine"]), help="learning-rate schedule")
@click.option("--weight-decay", type=Finite(min=0), help="L2 weight decay")
@click.option("--optimizer", type=click.Choice(["sgd", "adamw"]), help="default: the preset's")
@click.option("--nesterov/--no-nesterov", default=None, help="Nesterov momentum (SGD)")
@click.option("--label-smoothing", type=Finite(0, 1, max_open=True), help="e.g. 0.1")
@click.option("--clip-grad", type=Finite(min=0), help="clip the gradients' global norm to this")
@click.option(
    "--warmup-steps", type=click.IntRange(min=0), help="linear learning-rate warm-up steps"
)
@click.option(
    "--augment",
    type=click.Choice(["imagenet", "cifar", "none"]),
    help="imagenet: random resized crops and flips; cifar: 4-pixel padded crops and flips; "
    "none (default: the preset's)",
)
@click.option(
    "--ema",
    type=Finite(0, 1, max_open=True),
    help="evaluate and keep an exponential moving average of the weights with this decay, "
    "e.g. 0.999",
)
@click.option(
    "--amp/--no-amp",
    default=None,
    help="mixed precision (default: on with CUDA; bf16 where supported, else fp16)",
)
@click.option(
    "--channels-last/--no-channels-last",
    default=None,
    help="channels_last memory format (torch; default: on with CUDA)",
)
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (torch)")
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False),
    help="run folder: model.py, checkpoints, metrics.jsonl, result.json (default: a new "
    "runs/SPEC-N for each run; an earlier run's folder needs --resume)",
)
@click.option(
    "--resume",
    is_flag=True,
    help="continue from the checkpoint in --out, with the recipe its run.json records "
    "(options left out take the recorded values; another value is an error)",
)
@click.option(
    "--tensorboard/--no-tensorboard",
    default=True,
    show_default=True,
    help="write TensorBoard event files to OUT/tensorboard",
)
@click.option(
    "--init",
    type=click.Path(dir_okay=False),
    help="start from these weights (fine-tuning): a checkpoint or a state dict, e.g. "
    "torchvision's or timm's; a classifier of another class count starts fresh",
)
@click.option(
    "--seed", default=0, show_default=True, type=click.IntRange(0, MAX_SEED), help="random seed"
)
@click.option(
    "--threads",
    type=click.IntRange(1, MAX_THREADS),
    help="CPU threads the framework computes with (default: its own choice, often every core)",
)
@click.option(
    "--workers",
    type=click.IntRange(0, MAX_WORKERS),
    help="data-loader workers (torch; default: 0 on CPU, up to 8 with CUDA)",
)
@click.option(
    "--strategy",
    type=click.Choice(["none", "mirrored", "multiworker"]),
    default="none",
    show_default=True,
    help="keras on TensorFlow: tf.distribute strategy (multiworker reads TF_CONFIG)",
)
def train(**options) -> None:
    """Train the network of SPEC on a dataset.

    \b
    Examples:
      resdsl train specs/cifar/resnet20.res --data digits
      resdsl train specs/cifar/resnet56.res --data ~/data/cifar-10-batches-py --out runs/r56
      torchrun --nproc_per_node 8 -m resdsl train specs/resnet50.res --data ~/imagenet \\
          --preset imagenet --workers 8 --out runs/r50
    """
    from resdsl.cli.extras import require_training

    from_file = _with_config(options)
    spec, backend, data, init = (options[k] for k in ("spec", "backend", "data", "init"))
    strategy, threads = options["strategy"], options["threads"]
    if spec is None:
        click.echo("error: give the SPEC to train, or `spec = ...` in a --config file", err=True)
        sys.exit(2)
    if strategy != "none" and backend != "keras":
        raise click.BadParameter(
            "--strategy is for --backend keras; torch uses torchrun", param_hint="--strategy"
        )
    # (With --resume and no --data, the data comes from run.json: digits' scikit-learn is
    # asked for either way, as the `train` extra has it.)
    require_training("train", backend, data, init is not None)
    from resdsl.train.common import TrainError, TrainOptions
    from resdsl.train.run import RECIPE_OPTIONS, prepare_run

    options["compile"] = options.pop("compile_")
    options["ema"] = options["ema"] or None
    opts = TrainOptions(**options, given=_given(RECIPE_OPTIONS, from_file))
    if threads is not None:  # read by PyTorch's and TensorFlow's thread pools when they start
        for variable in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
            os.environ[variable] = str(threads)
    try:
        held, inputs = prepare_run(opts)  # everything checked, then the folder claimed
        with held:  # the run folder is this run's until it ends
            if backend == "torch":
                from resdsl.train.torch_trainer import run
            else:
                from resdsl.train.keras_trainer import run
            status = run(opts, inputs)
    except TrainError as error:
        message = str(error)
        click.echo(
            message if message.startswith((spec, "error")) else f"error: {message}", err=True
        )
        sys.exit(error.status)
    except KeyboardInterrupt:  # a second Ctrl-C while saving, or one before training began
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(status)
