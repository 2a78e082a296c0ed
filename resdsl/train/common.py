"""What both trainers share: options, the generated module, interrupts, the run folder."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resdsl.train.folder import Claim

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
RUN_FILE = "run.json"
_CHECKPOINTS = {
    "torch": ("checkpoint.pt", "checkpoint.prev.pt"),
    "keras": ("checkpoint", "checkpoint.prev"),
}


# What decides a run's numbers: recorded in OUT/run.json as given (under `options`, those the
# command line gave; `recipe` holds every value the run used), taken from there by `--resume`
# where the command line leaves them out, and an error where it gives another value.
RECIPE_OPTIONS = (
    "data", "preset", "epochs", "batch_size", "lr", "schedule", "weight_decay", "optimizer",
    "nesterov", "label_smoothing", "clip_grad", "warmup_steps", "augment", "ema", "seed",
)  # fmt: skip


def _rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def writes_run_folder(opts: TrainOptions) -> bool:
    """Whether this process writes the run folder: the chief (rank 0 under torchrun; for Keras
    under `--strategy multiworker`, TF_CONFIG's chief)."""
    return _rank() == 0 and (opts.backend != "keras" or is_chief(opts.strategy))


def is_chief(strategy: str) -> bool:
    """Whether this Keras process is the chief: always without a strategy or with the
    mirrored one; under `multiworker`, the chief of TF_CONFIG's cluster (else worker 0)."""
    if strategy != "multiworker":
        return True
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    chief = task.get("type", "worker") in ("chief", "worker") and int(task.get("index", 0)) == 0
    return chief and not (task.get("type") == "worker" and "chief" in config.get("cluster", {}))


@dataclass
class Inputs:
    """What a run is made of, each checked before its folder is made: the network, the data
    shaped for it, the recipe, and `--init`'s weights (state dict, classifier keys left out:
    see :func:`initial_state`) or None."""

    network: object
    data: object
    recipe: object
    init: tuple[dict, list[str]] | None


def prepare_run(opts: TrainOptions) -> tuple[Claim, Inputs]:
    """Check everything a run is made of, then choose and claim its folder: the claim
    (:class:`.folder.Claim`) is to be held until the run ends, and the inputs start it.

    The spec (its errors, what the backend cannot express), the folder named, the data and
    `--init`'s weights are all checked before any folder is made or written to: a failed start
    leaves nothing behind, so rerunning it needs no `--resume`. Without `--out`, each run gets
    a new numbered folder (never an earlier run's), removed again where the run ends without
    a checkpoint. A folder in use by a running run is refused, naming its process; one that
    holds an earlier run (a checkpoint) is refused without `--resume`; with `--resume`, the
    folder must hold a checkpoint of the same spec (by content) and backend, else the error
    names the spec it came from and nothing in the folder changes. The chief process records
    the run in `run.json`."""
    from resdsl.train import folder
    from resdsl.train.data import NAMES

    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if opts.out is None:
        if world > 1:
            raise TrainError(
                "under torchrun every process must write to the same folder: give --out"
            )
        if opts.resume:
            raise TrainError("--resume needs --out: the folder of the run to continue")
    network = compile_spec(opts.spec, opts.backend, "", write=False)  # raises the spec's errors
    check_device(opts.device, opts.backend)
    digest = network.source.sha256
    # Only the process that writes the folder looks at its lock: under torchrun rank 0 may
    # hold it already.
    writer = writes_run_folder(opts)
    if opts.resume:
        if writer:
            folder.refuse_if_running(opts.out)  # named first, whatever else the folder lacks
        _refuse_without_checkpoint(opts)
        _check_resumed(opts, digest)  # which sets the recorded data where none is given
    data_folder = opts.data if opts.data not in NAMES else None
    if opts.out is not None and writer:
        if opts.resume:
            folder.refuse_data_folder(opts.out, data_folder)
        else:
            folder.check_new_run_folder(opts.out, data_folder)
    data, recipe = data_and_recipe(opts, network)
    init = None
    if opts.init and not opts.resume:
        init = initial_state(opts.init, network, data.num_classes)
    inputs = Inputs(network, data, recipe, init)
    if not writer:
        return folder.Claim(), inputs
    if opts.resume:
        return folder.claim(opts.out), inputs
    if opts.out is None:
        opts.out, held = folder.new_run_folder(opts.spec)
    else:
        held = folder.claim_for_new_run(opts.out, data_folder)
    try:
        _write_record(opts, digest)
    except TrainError:
        held.release()
        raise
    return held, inputs


def _refuse_without_checkpoint(opts: TrainOptions) -> None:
    """`--resume` continues a checkpoint of its backend; another backend's is named."""

    def holds(backend: str) -> bool:
        return any(os.path.exists(os.path.join(opts.out, n)) for n in _CHECKPOINTS[backend])

    if holds(opts.backend):
        return
    other = next((b for b in _CHECKPOINTS if b != opts.backend and holds(b)), None)
    if other is not None:
        raise TrainError(
            f"the checkpoint in `{opts.out}` is a {other} one: resume with --backend {other}"
        )
    raise TrainError(
        f"no {opts.backend} checkpoint in `{opts.out}` to resume; run without --resume to "
        "start a new run there"
    )


def _write_record(opts: TrainOptions, digest: str | None) -> None:
    """OUT/run.json: the spec (and its content's digest), the backend, the options the command
    line gave (the trainer adds the recipe they resolve to: :func:`record_recipe`)."""
    record = {
        "spec": os.path.abspath(opts.spec),
        "sha256": digest,
        "backend": opts.backend,
        "options": {
            name: _normal(name, getattr(opts, name))
            for name in RECIPE_OPTIONS
            if getattr(opts, name) is not None
        },
    }
    _write_json(os.path.join(opts.out, RUN_FILE), record)


def record_recipe(opts: TrainOptions, recipe, run_plan) -> None:
    """Add to OUT/run.json the recipe the run uses, every value resolved (the preset's where
    no option was given): what `options` leaves to the preset, `recipe` says."""
    path = os.path.join(opts.out, RUN_FILE)
    record = _read_record(path) or {}
    record["recipe"] = resolved_recipe(opts, recipe, run_plan)
    _write_json(path, record)
    _write_config(opts, record["recipe"])


# What OUT/config.toml holds besides the recipe: the options that say how the run ran.
RUN_OPTIONS = (
    "backend", "device", "amp", "channels_last", "compile", "tensorboard", "init", "threads",
    "workers", "strategy",
)  # fmt: skip


def _write_config(opts: TrainOptions, recipe: dict) -> None:
    """OUT/config.toml: every option of the run, resolved, as `--config` reads it back."""
    from resdsl.files import atomic_write
    from resdsl.train.config import CONFIG_FILE, resolved_text

    values = {"spec": os.path.abspath(opts.spec)}
    values |= {name: recipe[name] for name in RECIPE_OPTIONS}
    values |= {name: getattr(opts, name) for name in RUN_OPTIONS}
    if values["init"] is not None:
        values["init"] = os.path.abspath(values["init"])
    path = os.path.join(opts.out, CONFIG_FILE)
    text = resolved_text({name.replace("_", "-"): value for name, value in values.items()})
    try:
        atomic_write(path, text)
    except OSError as error:
        raise TrainError(f"cannot write `{path}`: {error.strerror or error}") from None


def resolved_recipe(opts: TrainOptions, recipe, run_plan) -> dict:
    """Every value of the run's recipe: the RECIPE_OPTIONS by their names, then what they
    imply (momentum, where weight decay applies, the augmentation's padding and flips, the
    steps)."""
    values = {
        "data": _normal("data", opts.data),
        "preset": recipe.name,
        "epochs": run_plan.epochs,
        "batch_size": recipe.batch_size,
        "lr": recipe.lr,
        "schedule": recipe.schedule,
        "weight_decay": recipe.weight_decay,
        "optimizer": recipe.optimizer,
        "nesterov": recipe.nesterov,
        "label_smoothing": recipe.label_smoothing,
        "clip_grad": recipe.clip_grad,
        "warmup_steps": recipe.warmup_steps,
        "augment": recipe.augment,
        "ema": recipe.ema,
        "seed": opts.seed,
        "momentum": recipe.momentum,
        "decay_all": recipe.decay_all,
        "pad": recipe.pad,
        "flip": recipe.flip,
        "steps_per_epoch": run_plan.steps_per_epoch,
        "total_steps": run_plan.total_steps,
    }
    if recipe.schedule == "step":
        values["milestone_steps"] = list(run_plan.milestone_steps)
    return values


def _write_json(path: str, record: dict) -> None:
    from resdsl.files import atomic_write

    try:
        atomic_write(path, json.dumps(record, indent=2) + "\n")
    except OSError as error:
        raise TrainError(f"cannot write `{path}`: {error.strerror or error}") from None


def _check_resumed(opts: TrainOptions, digest: str | None) -> None:
    """A resumed run is the one its folder records (spec, backend), and takes its recipe."""
    recorded = _read_record(os.path.join(opts.out, RUN_FILE))
    if recorded and digest and recorded.get("sha256") != digest:
        raise TrainError(
            f"the checkpoint in `{opts.out}` was trained from `{recorded.get('spec')}`, a "
            f"different network from `{opts.spec}`: resume with that spec, or start a new "
            "run in another --out"
        )
    if recorded and recorded.get("backend") not in (None, opts.backend):
        raise TrainError(
            f"the checkpoint in `{opts.out}` is a {recorded['backend']} one: resume with "
            f"--backend {recorded['backend']}"
        )
    if recorded and isinstance(recorded.get("options"), dict):
        _resume_recipe(opts, recorded["options"])


def _normal(name: str, value):
    """An option's value as run.json records it: a data folder as an absolute path."""
    from resdsl.train.data import NAMES

    if name == "data" and value is not None and value not in NAMES:
        return os.path.abspath(value)
    return value


def _resume_recipe(opts: TrainOptions, recorded: dict) -> None:
    """Give `opts` the recipe of the run it resumes: each option the command line leaves out
    takes the recorded value; one given with another value than the run's is an error that
    names each such option."""
    given = opts.given
    if given is None:
        given = frozenset(n for n in RECIPE_OPTIONS if getattr(opts, n) is not None)
    taken, differing = [], []
    resolved = None
    for name in RECIPE_OPTIONS:
        was = recorded.get(name)
        if name not in given:
            setattr(opts, name, was)
            if was is not None:
                taken.append(_flag(name, was))
            continue
        value = _normal(name, getattr(opts, name))
        if value == was:
            continue
        if was is None:  # the preset's value then: the same as this one?
            resolved = resolved or _recorded_recipe(recorded)
            was = _preset_value(resolved, name)
            if not _changes(resolved, name, value):
                continue
        differing.append(f"{_flag(name, was)} recorded, {_flag(name, value)} given")
    if differing:
        raise TrainError(
            f"`{opts.out}` was trained with another recipe: {'; '.join(differing)}. help: "
            "leave these options out to continue the recorded recipe, or start a new run with "
            "another --out to change it"
        )
    if taken and _rank() == 0:
        say(f"resuming with the recorded recipe ({', '.join(taken)})")


def _recorded_recipe(recorded: dict):
    from resdsl.train import data as datasets
    from resdsl.train.presets import override, preset_for

    kind, _ = datasets.detect(recorded.get("data") or "digits")
    fields = ("preset", "data", "epochs", "seed")
    changes = {k: v for k, v in recorded.items() if k in RECIPE_OPTIONS and k not in fields}
    return override(preset_for(kind, recorded.get("preset")), **changes)


def _preset_value(recipe, name: str):
    if name == "preset":
        return recipe.name
    if name == "epochs" and recipe.epochs is None:
        return f"the preset's ({recipe.iterations:,} iterations)"
    if name == "augment" and _changes(recipe, name, recipe.augment):  # the preset's variant
        return f"the preset's ({_augment_words(recipe)})"
    return getattr(recipe, name, None)


def _changes(recipe, name: str, value) -> bool:
    """Whether option `name` at `value` makes `recipe` another one."""
    from resdsl.train.presets import override

    if name == "preset":
        return value != recipe.name
    if name == "epochs":
        return value != recipe.epochs
    if name == "ema" and value is None:  # --ema 0: no averaging
        value = 0.0
    return override(recipe, **{name: value}) != recipe


def _flag(name: str, value) -> str:
    """`--lr 0.1`, `--nesterov`, `--no-nesterov`, `--ema 0`."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    if name == "ema" and value is None:
        value = 0
    if isinstance(value, str) and value.startswith("the preset's"):
        return f"{flag} {value}"
    return f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"


def _read_record(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


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
        f"{recipe.schedule}, {_augment_words(recipe)}"
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


def _augment_words(recipe) -> str:
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
