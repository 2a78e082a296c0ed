"""What both trainers share: options, the generated module, interrupts, the run folder."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

EXIT_INTERRUPTED = 130
EXIT_DIVERGED = 3  # the loss became non-finite: the recipe, not the input, is at fault


class TrainError(Exception):
    """A problem the user can fix (bad data folder, damaged checkpoint...): the CLI prints
    the message and exits with `status` (2; 1 for a spec with errors), without a traceback."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


@dataclass
class TrainOptions:
    spec: str
    backend: str = "torch"
    data: str = "digits"
    out: str | None = None  # None: a new numbered folder under runs/ (see prepare_run)
    preset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    schedule: str | None = None
    weight_decay: float | None = None
    amp: bool | None = None  # None: on where the device does it well (CUDA)
    channels_last: bool | None = None  # None: on with CUDA
    compile: bool = False
    resume: bool = False
    seed: int = 0
    workers: int | None = None
    strategy: str = "none"  # keras: none | mirrored | multiworker
    init: str | None = None  # weights to start from (fine-tuning), see initial_state
    threads: int | None = None  # CPU threads of the framework (None: its default)
    optimizer: str | None = None  # the recipe's overrides from here on (None: the preset's)
    nesterov: bool | None = None
    label_smoothing: float | None = None
    clip_grad: float | None = None
    warmup_steps: int | None = None
    augment: str | None = None  # imagenet | cifar | none (None: the preset's)
    ema: float | None = None  # decay of the weights' moving average (None: the preset's)
    tensorboard: bool = True  # TensorBoard event files in OUT/tensorboard
    device: str | None = None  # cpu | cuda | cuda:N | mps (None: the best there is)
    config: str | None = None  # the TOML file the options came from (`--config`)
    # The RECIPE_OPTIONS given on the command line (None: every one that is not None): with
    # --resume, the others take the values OUT/run.json records.
    given: frozenset[str] | None = None

    def to_json(self) -> dict:
        return asdict(self)


def compile_spec(spec: str, backend: str, out: str, *, write: bool = True):
    """The elaborated network of `spec`, compiled for `backend` into OUT/model.py (atomically)
    where `write`; nothing is imported, so a spec with errors, or one the backend cannot
    express, fails before any framework starts. Only one process (rank 0) writes; the others
    pass `write=False`."""
    import resdsl
    from resdsl.codegen.backends import available, exists, get_backend
    from resdsl.files import atomic_write

    if not exists(backend):
        raise TrainError(
            f"unknown backend `{backend}`; installed: {', '.join(sorted(available()))}"
        )
    try:
        network = resdsl.load(spec)
    except resdsl.SpecError as error:
        unreadable = any(d.code == "E001" for d in error.diagnostics)
        raise TrainError(str(error), status=2 if unreadable else 1) from None
    target = get_backend(backend)
    problems = target.unsupported(network)
    if problems:
        raise TrainError(f"the {backend} backend cannot express {'; '.join(problems)}", status=1)
    if write:
        path = os.path.join(out, "model.py")
        try:
            os.makedirs(out, exist_ok=True)
            atomic_write(path, target.emit(network))
        except OSError as error:
            raise TrainError(f"cannot write `{path}`: {error.strerror or error}") from None
    return network


def compile_module(spec: str, backend: str, out: str, *, write: bool = True):
    """:func:`compile_spec`, then OUT/model.py imported: (network, module).

    Each file gets a module name of its own (see :func:`resdsl.codegen.generated.import_file`), so
    that two runs in one process do not collide.
    """
    from resdsl.codegen.generated import import_file

    network = compile_spec(spec, backend, out, write=write)
    return network, import_file(os.path.join(out, "model.py"))


# What a run folder records of the run that made it, so that `--resume` can tell whether a
# checkpoint belongs to the spec it is given before anything in the folder changes.
def _rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


class Interrupt:
    """Turns the first SIGINT into a flag the training loop checks between steps, so that the
    checkpoint it then writes holds a consistent state; a second SIGINT stops at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            self._previous = None
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def initial_state(path: str, network, num_classes: int) -> tuple[dict, list[str]]:
    """The PyTorch state dict to start a run from (`--init`): a `resdsl train` checkpoint, or
    any state dict that fits the spec (torchvision's, timm's, read with weights_only=True).
    Where the classifier's class count differs from the data's, the classifier is left out (it
    starts fresh: fine-tuning) and named in the second value. Anything else that does not fit
    is an error naming the first tensor."""
    from resdsl.interop.weights import (
        classifier,
        load_torch_checkpoint,
        state_dict_shapes,
        state_problem,
    )

    try:
        state = load_torch_checkpoint(path)
    except (OSError, ValueError) as error:
        reason = "no such file" if isinstance(error, FileNotFoundError) else str(error)
        raise TrainError(f"--init `{path}`: {reason}") from None
    head = classifier(network)
    dropped = [
        key
        for key in ((f"{head[0]}.weight", f"{head[0]}.bias") if head else ())
        if key in state and tuple(state[key].shape)[:1] != (num_classes,)
    ]
    expected = {
        k: shape for k, shape in state_dict_shapes(network, num_classes).items() if k not in dropped
    }
    state = {k: v for k, v in state.items() if k not in dropped}
    problem = state_problem(state, expected, "this spec")
    if problem:
        raise TrainError(f"--init `{path}` does not fit {network.source.file}: {problem}")
    return state, dropped


def best_so_far(out: str) -> tuple[int, float] | None:
    """(epoch, validation accuracy) of the best epoch logged in OUT/metrics.jsonl, or None:
    the epoch `best.pt` keeps. The test split never chooses it."""
    from resdsl.train.checkpoint import read_metrics

    scored = [r for r in read_metrics(out) if isinstance(r.get("val_acc"), (int, float))]
    if not scored:
        return None
    best = max(scored, key=lambda r: r["val_acc"])  # the first of equals
    return int(best["epoch"]), float(best["val_acc"])


def result_record(opts: TrainOptions, network, data, **fields) -> dict:
    """OUT/result.json, with the same keys from both backends: the run (spec, network,
    backend, framework, data, device, processes, epochs, params); the best epoch, chosen on the
    validation split (`best.pt` / `best.weights.h5` hold its weights), and its validation
    accuracy; the test split's accuracy and loss for those weights, measured once (None where
    the data has no test split: a folder of train/ and val/ alone)."""
    best = best_so_far(opts.out)
    keys = ("framework", "device", "processes", "epochs", "params", "test_acc", "test_loss")
    record = {
        "spec": opts.spec,
        "network": network.name,
        "backend": opts.backend,
        "data": data.name,
        **{key: fields[key] for key in keys},
        "test_split": data.test_name if data.test is not None else None,
        "val_split": data.val_name,
        "best_epoch": best[0] if best else None,
        "best_val_acc": best[1] if best else None,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return record


def final_words(data, test_acc, best) -> str:
    """The run's last line: the chosen weights' test accuracy, the epoch and its validation
    accuracy (the validation accuracy alone without a test split)."""
    chosen = f"epoch {best[0]}, validation {best[1]:.2%}" if best else "no epoch finished"
    if data.test is None:
        return f"validation accuracy: {best[1]:.2%} (epoch {best[0]}; no test split)"
    return f"test accuracy: {test_acc:.2%} (the best weights: {chosen})"


DEVICE_FORMS = "cpu, cuda, cuda:N or mps"


def check_device(name: str | None, backend: str) -> None:
    """`--device` names a device this machine has, for `backend`: else a one-line error."""
    import re

    if name is None:
        return
    match = re.fullmatch(r"cpu|mps|cuda(?::(\d+))?", name)
    if match is None:
        raise TrainError(f"--device {name}: not a device; expected {DEVICE_FORMS}")
    if name == "cpu":
        return
    if backend == "keras":
        if name == "mps":
            raise TrainError("--device mps is for --backend torch; Keras picks its own devices")
        return _check_keras_gpu(name, match)
    import torch

    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise TrainError("--device mps: Apple's MPS is not available on this machine")
        return
    if not torch.cuda.is_available():
        raise TrainError(
            f"--device {name}: CUDA is not available (torch {torch.__version__} sees no GPU); "
            "use --device cpu"
        )
    count = torch.cuda.device_count()
    if match.group(1) is not None and int(match.group(1)) >= count:
        raise TrainError(
            f"--device {name}: this machine has {count} CUDA device{'s' * (count != 1)} "
            f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})"
        )


def _check_keras_gpu(name: str, match) -> None:
    """Keras: `cuda` (or `cuda:N`) needs a GPU its backend sees (TensorFlow's or torch's)."""
    import importlib.util

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    count = 0
    if backend == "torch":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    elif backend == "tensorflow" and importlib.util.find_spec("tensorflow"):
        from resdsl.tf_startup import import_quietly

        count = len(import_quietly("tensorflow").config.list_physical_devices("GPU"))
    index = int(match.group(1) or 0)
    if index >= count:
        seen = f"{count} GPU{'s' * (count != 1)}" if count else "no GPU"
        raise TrainError(f"--device {name}: Keras on {backend} sees {seen}; use --device cpu")


def write_result(out: str, result: dict) -> None:
    """OUT/result.json, and OUT/curves.png and curves.svg drawn from the metrics."""
    from resdsl.files import atomic_write

    atomic_write(os.path.join(out, "result.json"), json.dumps(result, indent=2) + "\n")
    try:  # `resdsl train` asks for matplotlib first; a trainer called from Python may lack it
        from resdsl.charts.curves import write_curves
    except ImportError:
        say("note: no curves.png: matplotlib is not installed (pip install 'resdsl[train]')")
        return
    write_curves(out)


def data_and_recipe(opts: TrainOptions, network):
    """The dataset shaped for `network`, and the recipe: the dataset's preset with the
    command line's overrides."""
    from resdsl.train import data as datasets
    from resdsl.train.presets import override, preset_for

    kind, _ = datasets.detect(opts.data)
    recipe = override(
        preset_for(kind, opts.preset),
        batch_size=opts.batch_size,
        lr=opts.lr,
        schedule=opts.schedule,
        weight_decay=opts.weight_decay,
        optimizer=opts.optimizer,
        nesterov=opts.nesterov,
        label_smoothing=opts.label_smoothing,
        clip_grad=opts.clip_grad,
        warmup_steps=opts.warmup_steps,
        ema=opts.ema,
        augment=opts.augment,
    )
    shape = (network.input.channels, network.input.height, network.input.width)
    data = datasets.load(opts.data, shape, recipe.augment)
    if data.val is None:
        raise TrainError(
            f"--data {opts.data}: too few training images to hold out a validation split, "
            "which chooses the best epoch (a class needs two images or more): add images, or "
            "a val/ folder beside train/"
        )
    if data.note and _rank() == 0:
        say(f"note: {data.note}")
    if data.num_classes != network.classes and _rank() == 0:
        say(
            f"note: the data has {data.num_classes} classes and the spec {network.classes}: "
            f"the model is built with {data.num_classes} outputs"
        )
    return data, recipe


def check_split(recipe, workers: int, unit: str) -> None:
    """The global batch must split evenly over `workers` `unit` (processes, replicas)."""
    if recipe.batch_size % workers:
        raise TrainError(
            f"--batch-size {recipe.batch_size} (the global batch) is not divisible by the "
            f"{workers} {unit}"
        )


def data_record(data, recipe) -> dict:
    """What a checkpoint keeps of the data, so that `resdsl eval` and `predict` see images as
    training evaluated them: the name, the normalisation, the class names, the augmentation
    (whose evaluation view they use)."""
    return {
        "name": data.name,
        "mean": list(data.mean),
        "std": list(data.std),
        "classes": list(data.class_names),
        "augment": recipe.augment,
    }


def describe_run(network, params: int, data, recipe, run_plan) -> str:
    """The start-of-run line both trainers print: model, data and recipe."""
    return (
        f"model: {network.name}, {params:,} parameters, {data.num_classes} classes; "
        f"data: {data.name}, {len(data.train)} train / {len(data.val)} {_val_words(data)}"
        + (f" / {len(data.test)} test" if data.test is not None else "")
        + (" (read from disk as needed)" if data.streamed else "")
        + f"; recipe: {recipe.name}, {_count(run_plan.epochs, 'epoch')} x "
        f"{_count(run_plan.steps_per_epoch, 'step')}, batch {recipe.batch_size}, "
        f"{_optimizer_words(recipe)}, lr {recipe.lr}, "
        f"{recipe.schedule}, {augment_words(recipe)}"
        + (f", label smoothing {recipe.label_smoothing:g}" if recipe.label_smoothing else "")
        + (f", gradients clipped at {recipe.clip_grad:g}" if recipe.clip_grad else "")
        + (f", weights averaged (EMA {recipe.ema:g})" if recipe.ema else "")
    )


def _val_words(data) -> str:
    """`val` (the folder's) or `held-out val` (of the training images)."""
    return "val" if data.val_name == "val" else "held-out val"


def _count(number: int, noun: str) -> str:
    """`1 epoch`, `2 epochs`."""
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def augment_words(recipe) -> str:
    if recipe.augment == "imagenet":
        return "random resized crops and flips"
    if recipe.augment == "cifar" and (recipe.pad or recipe.flip):
        words = [f"{recipe.pad}-pixel padded crops"] if recipe.pad else []
        return " and ".join([*words, "flips"] if recipe.flip else words)
    return "no augmentation"


def _optimizer_words(recipe) -> str:
    name = "AdamW" if recipe.optimizer == "adamw" else "SGD" + " Nesterov" * recipe.nesterov
    decay = "" if recipe.decay_all else " (not on norms and biases)"
    return f"{name}, weight decay {recipe.weight_decay:g}{decay}"


def checkpoint_words(epoch: int, step: int) -> str:
    """Where a checkpoint saved as (epoch, step) stands: `epoch 3` (after it), or `epoch 4,
    step 10` (within it)."""
    return f"epoch {epoch}" if step == 0 else f"epoch {epoch + 1}, step {step}"


def diverged(loss: str, value: float, epoch: int, kept: str | None) -> TrainError:
    """The error for a `loss` ("training", "test") that became non-finite in `epoch`
    (1-based). The weights are not finite by then either, so nothing is saved: the last
    checkpoint (`kept`, see :func:`checkpoint_words`) and the metrics logged so far stay as
    they were."""
    kept_words = f"the checkpoint of {kept} is kept" if kept else "no checkpoint was saved"
    return TrainError(
        f"the {loss} loss became non-finite ({value}) in epoch {epoch}: training diverged and "
        f"stopped without saving; {kept_words}. help: start a new run (another --out) with a "
        "lower --lr, or with --clip-grad or --warmup-steps",
        status=EXIT_DIVERGED,
    )


def say(message: str) -> None:
    print(message, flush=True)
