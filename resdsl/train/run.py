"""A run's start and its record: what is checked before its folder is made (`prepare_run`),
run.json with the options given and the recipe used, config.toml with every option resolved,
and what a resumed run must agree with."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resdsl.train.folder import Claim


from resdsl.train.common import (
    TrainError,
    TrainOptions,
    _rank,
    augment_words,
    check_device,
    compile_spec,
    data_and_recipe,
    initial_state,
    say,
)

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
        return f"the preset's ({augment_words(recipe)})"
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
