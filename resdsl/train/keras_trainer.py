"""The Keras 3 trainer, on whichever backend Keras runs (KERAS_BACKEND; TensorFlow by default).

On TensorFlow a GPU is used when present, and `--strategy mirrored` spreads batches over all
local GPUs (tf.distribute.MirroredStrategy); `--strategy multiworker` runs one process per
machine through tf.distribute.MultiWorkerMirroredStrategy, which reads the cluster from the
TF_CONFIG environment variable, e.g. on the first of two machines:

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}' resdsl train ... --strategy multiworker

(worker 0 writes the checkpoints, metrics and result). On the torch backend Keras uses torch's
CUDA device. `--amp` sets the keras.mixed_precision policy (mixed_bfloat16 where the GPU has
bf16, else mixed_float16 with loss scaling); it is on by default with a GPU.

Setting RESDSL_CPU_REPLICAS=N (TensorFlow, no GPU) splits the CPU into N logical devices for
the mirrored strategy: how the distributed path is tested on machines without GPUs.

The input pipeline is tf.data on TensorFlow (see :mod:`.tf_data`), a keras.utils.PyDataset on
other backends (:mod:`.keras_data`, which needs no TensorFlow): image folders stream from disk
with parallel decoding and prefetch. Each epoch's order comes from a generator seeded by (seed,
epoch) and each image's crop and flip from (seed, epoch, index), so a resumed run sees the same
batches as an unbroken one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time

import numpy as np

from resdsl.interop.weights import KERAS_CHECKPOINT_WEIGHTS, save_keras_weights
from resdsl.tf_startup import import_quietly
from resdsl.train import checkpoint as ckpt
from resdsl.train.common import (
    EXIT_INTERRUPTED,
    Interrupt,
    TrainError,
    TrainOptions,
    best_so_far,
    check_split,
    checkpoint_words,
    compile_spec,
    data_record,
    describe_run,
    diverged,
    final_words,
    result_record,
    say,
    write_result,
)
from resdsl.train.events import EventLog
from resdsl.train.presets import epoch_lr, lr_factor, plan
from resdsl.train.progress import EpochProgress, epoch_line
from resdsl.train.run import Inputs, is_chief, record_recipe


def _strategy(name: str):
    """(strategy or None, description)."""
    if name == "none":
        return None, ""
    tf = import_quietly("tensorflow")
    if name == "mirrored":
        replicas = int(os.environ.get("RESDSL_CPU_REPLICAS", "0") or 0)
        devices = None
        if replicas > 1 and not tf.config.list_physical_devices("GPU"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
            )
            devices = [f"/cpu:{i}" for i in range(replicas)]
        strategy = tf.distribute.MirroredStrategy(devices=devices)
        return strategy, f"MirroredStrategy x{strategy.num_replicas_in_sync}"
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    return strategy, f"MultiWorkerMirroredStrategy x{strategy.num_replicas_in_sync}"


def _pin_device(device: str | None) -> None:
    """`--device` (checked by :func:`.common.check_device`) for Keras: on TensorFlow the GPUs
    it may see (none for `cpu`, GPU N for `cuda:N`); on torch, KERAS_TORCH_DEVICE."""
    if device is None:
        return
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "torch":
        os.environ["KERAS_TORCH_DEVICE"] = device
    elif backend == "tensorflow":
        tf = import_quietly("tensorflow")
        gpus = tf.config.list_physical_devices("GPU")
        chosen = [] if device == "cpu" else [gpus[int(device.partition(":")[2] or 0)]]
        tf.config.set_visible_devices(chosen, "GPU")


def _device(keras) -> tuple[str, bool, bool]:
    """(description, has an accelerator, it does bf16)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            capability = details.get("compute_capability", (0, 0))
            name = details.get("device_name", "GPU")
            return f"tensorflow GPU:0 ({name}) x{len(gpus)}", True, capability >= (8, 0)
        return "tensorflow CPU", False, False
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return (
                f"torch cuda ({torch.cuda.get_device_name()})",
                True,
                (torch.cuda.is_bf16_supported()),
            )
        return "torch cpu", False, False
    return f"{backend} (default device)", False, False


def run(opts: TrainOptions, inputs: Inputs) -> int:
    """Train as `opts` say, from `inputs`: :func:`.run.prepare_run` checked them (spec, data,
    --init weights) before TensorFlow starts, which takes seconds. The exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    chief = is_chief(opts.strategy)
    if chief:
        os.makedirs(opts.out, exist_ok=True)
    network = compile_spec(opts.spec, "keras", opts.out, write=chief)
    data, recipe, init = inputs.data, inputs.recipe, inputs.init

    _pin_device(opts.device)  # before Keras' backend starts
    strategy, strategy_text = _strategy(opts.strategy)  # before TF makes its devices
    keras = import_quietly("keras")
    description, accelerator, bf16 = _device(keras)
    amp = opts.amp if opts.amp is not None else accelerator
    policy = None
    if amp:
        policy = "mixed_bfloat16" if (bf16 or not accelerator) else "mixed_float16"
        keras.mixed_precision.set_global_policy(policy)
    inputs = (network, data, recipe, init)
    try:
        return _train(opts, keras, inputs, strategy, chief, strategy_text, description, policy)
    finally:
        if policy:
            keras.mixed_precision.set_global_policy("float32")


def _train(opts, keras, inputs, strategy, chief, strategy_text, description, policy) -> int:
    from resdsl.codegen.generated import import_file

    network, data, recipe, init = inputs
    module = import_file(os.path.join(opts.out, "model.py"))
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    check_split(recipe, replicas, "replicas")
    steps = -(-len(data.train) // recipe.batch_size)
    run_plan = plan(recipe, steps, opts.epochs)
    if chief:
        record_recipe(opts, recipe, run_plan)

    keras.utils.set_random_seed(opts.seed)
    shape = (network.input.channels, network.input.height, network.input.width)
    if keras.backend.backend() == "tensorflow":
        from resdsl.train.tf_data import Pipelines

        pipelines = Pipelines(data, shape, recipe, opts.seed)
    else:  # no TensorFlow needed; images are read in `--workers` threads (default 2)
        from resdsl.train.keras_data import Pipelines

        pipelines = Pipelines(data, shape, recipe, opts.seed, workers=opts.workers or 2)
    val_batches = pipelines.test(name="val")  # chooses the best epoch; test: once, at the end

    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        input_shape = (network.input.height, network.input.width, network.input.channels)
        model = module.build_model(num_classes=data.num_classes, input_shape=input_shape)
        if init is not None:
            _initialise(model, opts.init, init, network, data.num_classes, chief)
        optimizer = make_optimizer(keras, recipe, recipe.lr * lr_factor(0, recipe, run_plan))
        model.compile(
            optimizer=optimizer,
            loss=make_loss(keras, recipe.label_smoothing, data.num_classes),
            metrics=["accuracy"],
            jit_compile=bool(opts.compile),
        )
        optimizer.build(model.trainable_variables)
        # Build the loss and metrics now, on blank images, one per replica (inference, nothing
        # changes): left to the first `fit`, Keras on the torch backend builds them from the
        # first batch of a PyDataset and then trains from the second, skipping one batch per
        # process.
        blank = np.zeros((replicas, *input_shape), np.float32)
        model.evaluate(blank, np.zeros((replicas,), np.int64), batch_size=replicas, verbose=0)
        average = WeightAverage(keras, model, recipe.ema) if recipe.ema else None
    params = int(sum(np.prod(v.shape) for v in model.trainable_weights))

    start_epoch, start_step, partial = 0, 0, [0.0, 0.0, 0.0]
    kept = None  # where the last checkpoint stands (for a diverged run's message)
    if opts.resume:
        folder = ckpt.latest_folder(opts.out)
        if folder is None:
            if chief:
                say(f"no checkpoint in `{opts.out}`: starting from scratch")
        else:
            state = _load(folder, model, optimizer, scope, opts.out, average)
            start_epoch, start_step = int(state["epoch"]), int(state["step"])
            kept = checkpoint_words(start_epoch, start_step)
            partial = [float(v) for v in state["partial"]]
            ckpt.set_python_rng(state["rng"]["python"])
            ckpt.set_numpy_rng(state["rng"]["numpy"])
            if chief:
                say(f"resuming from epoch {start_epoch + 1}, step {start_step}")
    if chief:
        if start_epoch == 0 and start_step == 0 and not opts.resume:
            ckpt.reset_metrics(opts.out)
        else:
            ckpt.truncate_metrics(opts.out, start_epoch)
        extras = [policy or "float32"]
        if strategy_text:
            extras.append(strategy_text)
        if opts.compile:
            extras.append("XLA")
        say(f"device: {description}; keras {keras.__version__}; {', '.join(extras)}")
        say(describe_run(network, params, data, recipe, run_plan))

    data_kept = data_record(data, recipe)
    events = EventLog(opts.out, opts.tensorboard and chief)

    def save(epoch: int, step: int, sums) -> None:
        nonlocal kept
        if not chief:
            return

        def write(folder: str) -> None:
            save_keras_weights(model, os.path.join(folder, KERAS_CHECKPOINT_WEIGHTS), data_kept)
            arrays = {f"v{i:05d}": np.asarray(v) for i, v in enumerate(optimizer.variables)}
            with open(os.path.join(folder, "optimizer.npz"), "wb") as handle:
                np.savez(handle, **arrays)
            if average is not None:
                with open(os.path.join(folder, AVERAGE_FILE), "wb") as handle:
                    np.savez(handle, **average.arrays())
            state = {
                "format": 1,
                "epoch": epoch,
                "step": step,
                "partial": [float(v) for v in sums],
                "global_step": epoch * run_plan.steps_per_epoch + step,
                "rng": {"python": ckpt.python_rng(), "numpy": ckpt.numpy_rng()},
                "spec": os.path.abspath(opts.spec),
                "batch_size": recipe.batch_size,
                "data": data_kept,
            }
            if average is not None:
                state["ema_updates"] = average.updates
            with open(os.path.join(folder, "trainer.json"), "w", encoding="utf-8") as handle:
                json.dump(state, handle)

        ckpt.save_folder(opts.out, write)
        kept = checkpoint_words(epoch, step)

    # A test aid, as in the PyTorch trainer: slows each step so that a test can stop a run in a
    # chosen epoch.
    step_sleep = float(os.environ.get("RESDSL_TRAIN_STEP_SLEEP", "0") or 0)

    class Tracker(keras.callbacks.Callback):
        def __init__(self, epoch: int, step0: int, bar, interrupt):
            super().__init__()
            self.epoch, self.step, self.bar, self.interrupt = epoch, step0, bar, interrupt
            self.seen = 0
            self.loss = self.accuracy = 0.0

        def on_train_batch_begin(self, batch, logs=None):
            global_step = self.epoch * run_plan.steps_per_epoch + self.step
            optimizer.learning_rate.assign(recipe.lr * lr_factor(global_step, recipe, run_plan))

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            size = min(recipe.batch_size, len(data.train) - self.step * recipe.batch_size)
            if average is not None:
                average.update()
            self.step += 1
            if step_sleep:
                time.sleep(step_sleep)
            self.seen += size
            self.loss = float(logs.get("loss", 0.0))  # the epoch's running mean
            if not math.isfinite(self.loss):
                self.model.stop_training = True  # nothing more to learn from NaN weights
                return
            self.accuracy = float(logs.get("accuracy", logs.get("compile_metrics", 0.0)))
            self.bar.update(size, self.loss, self.accuracy, step=self.step)
            if self.interrupt.requested and self.step < run_plan.steps_per_epoch:
                self.model.stop_training = True

    def evaluate(batches) -> tuple[float, float]:
        with average.swapped() if average is not None else contextlib.nullcontext():
            scores = model.evaluate(batches, verbose=0, return_dict=True)
        accuracy = scores.get("accuracy", scores.get("compile_metrics", 0.0))
        return float(scores["loss"]), float(accuracy)

    record = None
    with Interrupt() as interrupt, contextlib.closing(events):
        for epoch in range(start_epoch, run_plan.epochs):
            step0 = start_step if epoch == start_epoch else 0
            base = partial if epoch == start_epoch else [0.0, 0.0, 0.0]
            order = np.random.default_rng([opts.seed, epoch]).permutation(len(data.train))
            batches = pipelines.train(epoch, order[step0 * recipe.batch_size :], recipe.batch_size)
            bar = EpochProgress(
                epoch + 1,
                run_plan.epochs,
                run_plan.steps_per_epoch,
                enabled=chief,
                start_step=step0,
            )
            tracker = Tracker(epoch, step0, bar, interrupt)
            try:
                model.fit(batches, epochs=1, shuffle=False, verbose=0, callbacks=[tracker])
            except pipelines.errors as error:
                bar.close()
                raise _unreadable(data.train, tracker, save, epoch, error) from None
            bar.close()
            sums = [
                base[0] + tracker.loss * tracker.seen,
                base[1] + tracker.accuracy * tracker.seen,
                base[2] + tracker.seen,
            ]
            if not math.isfinite(tracker.loss):
                raise diverged("training", tracker.loss, epoch + 1, kept)
            if tracker.step < run_plan.steps_per_epoch:
                save(epoch, tracker.step, sums)
                if chief:
                    say(
                        f"interrupted: checkpoint saved at epoch {epoch + 1}, step "
                        f"{tracker.step}; continue with --resume"
                    )
                return EXIT_INTERRUPTED
            try:
                val_loss, val_acc = evaluate(val_batches)
            except pipelines.errors as error:
                save(epoch + 1, 0, [0.0, 0.0, 0.0])
                raise _unreadable(data.val, None, None, epoch, error) from None
            if not math.isfinite(val_loss):
                raise diverged("validation", val_loss, epoch + 1, kept)
            record = {
                "epoch": epoch + 1,
                "epochs": run_plan.epochs,
                "train_loss": sums[0] / max(sums[2], 1),
                "train_acc": sums[1] / max(sums[2], 1),
                "val_loss": val_loss,
                "val_acc": val_acc,
                "lr": epoch_lr(epoch, recipe, run_plan),
                "images_per_s": bar.rate(),
                "time_s": bar.elapsed(),
                "step": (epoch + 1) * run_plan.steps_per_epoch,
            }
            if chief:
                say(epoch_line(record))
                previous = best_so_far(opts.out)
                ckpt.append_metrics(opts.out, record)
                events.add(record)
                save(epoch + 1, 0, [0.0, 0.0, 0.0])
                if previous is None or val_acc > previous[1]:
                    # The best epoch's weights (the averaged ones, with --ema), beside the last
                    # checkpoint.
                    with average.swapped() if average is not None else contextlib.nullcontext():
                        ckpt.save_best_keras(model, opts.out, data_kept)
            if interrupt.requested:
                if chief:
                    say(
                        f"interrupted: checkpoint saved after epoch {epoch + 1}; "
                        "continue with --resume"
                    )
                return EXIT_INTERRUPTED

    # The chosen weights (the best epoch's, averaged with --ema: best.weights.h5 holds them as
    # evaluated), on the test split, once.
    best_file = os.path.join(opts.out, ckpt.BEST_KERAS)
    if os.path.exists(best_file):
        with scope:
            model.load_weights(best_file)
    average = None  # the weights now in the model are the ones to evaluate
    test_loss, test_acc = None, None
    if data.test is not None:
        try:
            test_loss, test_acc = evaluate(pipelines.test())
        except pipelines.errors as error:
            raise _unreadable(data.test, None, None, run_plan.epochs - 1, error) from None
    if chief:
        framework = f"keras {keras.__version__} on {keras.backend.backend()}"
        fields = {"framework": framework, "device": description, "processes": replicas}
        fields |= {"epochs": run_plan.epochs, "params": params}
        fields |= {"test_acc": test_acc, "test_loss": test_loss}
        write_result(opts.out, result_record(opts, network, data, **fields))
        say(final_words(data, test_acc, best_so_far(opts.out)))
    return 0


def _unreadable(split, tracker, save, epoch: int, error) -> TrainError:
    """The error for an image the pipeline could not decode, after saving what was trained.

    An error from the PyDataset input names its file. TensorFlow's does not say which file it
    was; PIL is then asked about each of the split's files in turn, on this error path only, to
    name the first it cannot read."""
    from resdsl.train.transforms import UnreadableImage, read_image

    if tracker is not None and save is not None:
        save(epoch, tracker.step, [0.0, 0.0, 0.0])
        kept = f"checkpoint saved at epoch {epoch + 1}, step {tracker.step}"
    else:
        kept = f"checkpoint saved after epoch {epoch + 1}"
    culprit = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    for path in [] if isinstance(error, UnreadableImage) else split.files or []:
        try:
            read_image(path, 3)
        except UnreadableImage as unreadable:
            culprit = str(unreadable)
            break
    return TrainError(f"{culprit}; {kept}: replace or remove the file, then continue with --resume")


AVERAGE_FILE = "average.npz"


def _copy(variable) -> np.ndarray:
    """A Keras variable's value as a NumPy array of its own. On the torch backend
    `np.asarray(variable)` can be a view of the tensor's memory, which a later `assign` would
    change under it."""
    return np.array(variable, copy=True)


class WeightAverage:
    """An exponential moving average of every weight of a Keras model (norm statistics
    included), updated after each training step as PyTorch's AveragedModel does for the
    PyTorch trainer: `decay` * average + (1 - decay) * weights, the first update a copy.

    Keras optimizers' own `use_ema` is not used: `fit` ends by writing the averages over the
    model's weights, and the trainer calls `fit` once per epoch."""

    def __init__(self, keras, model, decay: float):
        self.keras, self.model, self.decay = keras, model, decay
        self.averages = [keras.Variable(_copy(v), trainable=False) for v in model.weights]
        self.updates = 0

    def update(self) -> None:
        ops = self.keras.ops
        decay = 0.0 if self.updates == 0 else self.decay
        for average, weight in zip(self.averages, self.model.weights, strict=True):
            value = ops.cast(weight.value, average.dtype)
            average.assign(average * decay + value * (1.0 - decay))
        self.updates += 1

    @contextlib.contextmanager
    def swapped(self):
        """The averages in the model's weights for the duration, then the weights back."""
        kept = [_copy(w) for w in self.model.weights]
        for weight, average, value in zip(self.model.weights, self.averages, kept, strict=True):
            weight.assign(_copy(average).astype(value.dtype))
        try:
            yield
        finally:
            for weight, value in zip(self.model.weights, kept, strict=True):
                weight.assign(value)

    def arrays(self) -> dict:
        return {f"a{i:05d}": np.asarray(a) for i, a in enumerate(self.averages)}

    def load(self, arrays, updates: int) -> None:
        values = [arrays[k] for k in sorted(arrays.files)]
        if len(values) != len(self.averages):
            raise ValueError(f"{len(values)} averaged weights saved, {len(self.averages)} expected")
        for average, value in zip(self.averages, values, strict=True):
            if tuple(average.shape) != value.shape:
                raise ValueError(f"averaged weight shape {value.shape} != {average.shape}")
            average.assign(value)
        self.updates = updates


def make_loss(keras, label_smoothing: float, classes: int):
    """Cross-entropy on logits of integer labels, smoothed as PyTorch's `label_smoothing` (the
    target is 1 - s on the true class plus s / classes everywhere)."""
    if not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def smoothed_cross_entropy(y_true, logits):
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        targets = keras.ops.one_hot(labels, classes)
        return keras.losses.categorical_crossentropy(
            targets, logits, from_logits=True, label_smoothing=label_smoothing
        )

    return smoothed_cross_entropy


def make_optimizer(keras, recipe, learning_rate: float):
    """SGD (momentum, optionally Nesterov) or AdamW, with the recipe's weight decay (left off
    norms and biases unless `decay_all`) and gradient clipping."""
    options = {"learning_rate": learning_rate, "weight_decay": recipe.weight_decay or None}
    if recipe.clip_grad:
        options["global_clipnorm"] = recipe.clip_grad
    if recipe.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(**options)
    else:
        optimizer = keras.optimizers.SGD(
            momentum=recipe.momentum, nesterov=recipe.nesterov, **options
        )
    if recipe.weight_decay and not recipe.decay_all:
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def _initialise(model, path: str, init, network, num_classes: int, chief: bool) -> None:
    """`--init`: PyTorch weights (`init`, from :func:`initial_state`) ported into the Keras
    model, the classifier left fresh where the class count differs."""
    from resdsl.interop.weights import PortError, layer_pairs, state_dict_to_keras

    state, dropped = init
    pairs = [p for p in layer_pairs(network) if f"{p[0]}.weight" not in dropped]
    classifier = {p[1] for p in layer_pairs(network)} - {p[1] for p in pairs}
    try:
        state_dict_to_keras(state, model, pairs, skip=classifier)
    except PortError as error:
        raise TrainError(f"--init `{path}`: {error}") from None
    if chief:
        fresh = f"; the classifier ({num_classes} classes) starts fresh" if dropped else ""
        say(f"starting from `{path}`{fresh}")


def _load(folder: str, model, optimizer, scope, out: str, average) -> dict:
    prev = os.path.join(out, ckpt.KERAS_PREV)
    try:
        with open(os.path.join(folder, "trainer.json"), encoding="utf-8") as handle:
            state = json.load(handle)
        ckpt.check_fields(state, ckpt.KERAS_FIELDS)
        with scope:
            model.load_weights(os.path.join(folder, "model.weights.h5"))
            with np.load(os.path.join(folder, "optimizer.npz"), allow_pickle=False) as arrays:
                values = [arrays[k] for k in sorted(arrays.files)]
            if len(values) != len(optimizer.variables):
                raise ValueError(
                    f"{len(values)} optimizer variables saved, {len(optimizer.variables)} expected"
                )
            for variable, value in zip(optimizer.variables, values, strict=True):
                if tuple(variable.shape) != value.shape:
                    raise ValueError(f"optimizer variable shape {value.shape} != {variable.shape}")
                variable.assign(value)
            if average is not None:
                path = os.path.join(folder, AVERAGE_FILE)
                if not os.path.exists(path):
                    raise ValueError("no averaged weights, and this run averages its weights")
                with np.load(path, allow_pickle=False) as arrays:
                    average.load(arrays, int(state.get("ema_updates", 1)))
    except Exception as error:
        raise ckpt.damaged(folder, error, prev) from None
    return state
