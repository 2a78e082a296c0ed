"""The PyTorch trainer: one process, or one process per GPU/CPU under torchrun (DDP).

Device order: CUDA, then Apple MPS, then CPU. On CUDA, by default: mixed precision (bf16
where the GPU has it, else fp16 with a GradScaler), channels_last, cudnn.benchmark, pinned
memory with non_blocking copies and data-loader workers; torch.compile on request.

Every random choice of an epoch (sample order, crop offsets, flips) is drawn from generators
seeded by (seed, epoch, step, rank), so a resumed run sees the same batches as an unbroken
one; the global RNG states (python, numpy, torch, CUDA), which dropout and stochastic depth
use, are saved in the checkpoint too.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time

import numpy as np

from resdsl.train import checkpoint as ckpt
from resdsl.train.common import (
    EXIT_INTERRUPTED,
    Interrupt,
    TrainError,
    TrainOptions,
    best_so_far,
    check_split,
    checkpoint_words,
    compile_module,
    data_record,
    describe_run,
    diverged,
    final_words,
    result_record,
    say,
)
from resdsl.train.events import EventLog
from resdsl.train.presets import epoch_lr, lr_lambda, plan
from resdsl.train.progress import EpochProgress, epoch_line, stats_every
from resdsl.train.run import Inputs, record_recipe
from resdsl.train.torch_batches import (
    EpochBatches,
    SplitImages,
    TestBatches,
    augment,
    loader_of,
    normalise,
)
from resdsl.train.transforms import UnreadableImage


def _seed_for(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


class _Dist:
    """The process group when torchrun started us, else a single process.

    torchrun with one process (`--nproc_per_node 1`, the way to try the distributed path on
    one GPU) also gets a group and DistributedDataParallel: torchrun's own variables say it
    launched us, whatever WORLD_SIZE is."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        launched = "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_WORLD_SIZE" in os.environ
        self.wanted = self.world > 1 or (launched and "MASTER_ADDR" in os.environ)
        self.active = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def start(self, device_type: str) -> None:
        if not self.wanted:
            return
        import torch.distributed as dist

        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        self.active = True

    def agree(self, ok: bool, device) -> bool:
        """True when every rank says ok (an error on one rank stops all of them)."""
        if not self.active:
            return ok
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1 if ok else 0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def any(self, value: bool, device) -> bool:
        if not self.active:
            return value
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1 if value else 0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def sum(self, tensor):
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def stop(self, wait: bool) -> None:
        if self.active:
            import torch.distributed as dist

            self.active = False
            # After a normal run every rank waits for the others before the group goes away
            # (gloo aborts a process whose peer tears the group down under it); after an
            # error nobody waits for a peer that may never come.
            try:
                if wait:
                    dist.barrier()
                dist.destroy_process_group()
            except Exception:
                pass


def pick_device(local_rank: int = 0, wanted: str | None = None):
    """`wanted` (`--device`: cpu, cuda, cuda:N, mps; checked by :func:`.common.check_device`);
    without it, CUDA when available, then Apple MPS, then CPU. Plain `cuda` is each torchrun
    process's own GPU."""
    import torch

    if wanted is not None and wanted != "cuda":
        return torch.device(wanted)
    if wanted == "cuda" or torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _rng_state(device) -> dict:
    import torch

    state = {
        "python": ckpt.python_rng(),
        "numpy": ckpt.numpy_rng(),
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device) -> None:
    import torch

    ckpt.set_python_rng(state["python"])
    ckpt.set_numpy_rng(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def make_optimizer(torch, model, recipe):
    """SGD (momentum, optionally Nesterov) or AdamW at the recipe's rate; weight decay on every
    parameter, or (`decay_all` False) on convolution and linear weights only: norms' scales and
    shifts and all biases are 1-d, and decaying them only hurts (Bag of Tricks)."""
    if recipe.decay_all:
        groups = [{"params": list(model.parameters()), "weight_decay": recipe.weight_decay}]
    else:
        decayed = [p for p in model.parameters() if p.ndim > 1]
        kept = [p for p in model.parameters() if p.ndim <= 1]
        groups = [
            {"params": decayed, "weight_decay": recipe.weight_decay},
            {"params": kept, "weight_decay": 0.0},
        ]
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)


def make_ema(torch, model, decay: float):
    """An exponential moving average of `model`'s weights and buffers (norm statistics
    included), updated after every optimizer step: `decay` * average + (1 - decay) * weights;
    the first update copies the weights."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def run(opts: TrainOptions, inputs: Inputs) -> int:
    """Train as `opts` say, from `inputs` (:func:`.run.prepare_run` checked them): the exit
    status."""
    import torch
    import torch.nn as nn

    dist = _Dist()
    device = pick_device(dist.local_rank, opts.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.start(device.type)
    try:
        status = _train(opts, inputs, dist, device, torch, nn)
    except BaseException:
        dist.stop(wait=False)
        raise
    dist.stop(wait=True)
    return status


def _train(opts, inputs, dist, device, torch, nn) -> int:
    main = dist.main
    cuda = device.type == "cuda"
    amp = opts.amp if opts.amp is not None else cuda
    channels_last = opts.channels_last if opts.channels_last is not None else cuda
    amp_dtype, scaler = None, None
    if amp:
        if cuda:
            amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            amp_dtype = torch.float16 if device.type == "mps" else torch.bfloat16
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # The generated module: rank 0 writes OUT/model.py, the others import it after a barrier.
    error = None
    if main:
        try:
            os.makedirs(opts.out, exist_ok=True)
            network, module = compile_module(opts.spec, "torch", opts.out)
        except TrainError as e:
            error = e
    if not dist.agree(error is None, device):
        raise error or TrainError("another process failed to compile the spec")
    if not main:
        network, module = compile_module(opts.spec, "torch", opts.out, write=False)

    data, recipe = inputs.data, inputs.recipe
    check_split(recipe, dist.world, "processes")
    per_rank = recipe.batch_size // dist.world

    if opts.threads is not None:
        torch.set_num_threads(opts.threads)
    random.seed(opts.seed)
    np.random.seed(opts.seed)
    torch.manual_seed(opts.seed)  # the same initial weights on every rank
    model = module.build_model(num_classes=data.num_classes)
    if inputs.init is not None:
        state, dropped = inputs.init
        model.load_state_dict(state, strict=not dropped)
        if main:
            fresh = f"; the classifier ({data.num_classes} classes) starts fresh" if dropped else ""
            say(f"starting from `{opts.init}`{fresh}")
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    raw = model
    params = sum(p.numel() for p in raw.parameters() if p.requires_grad)
    if dist.active:
        import warnings

        from torch.nn.parallel import DistributedDataParallel

        # A conv with one input channel has a weight whose gradient strides are ambiguous;
        # DDP warns about it although nothing is wrong.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")

        model = DistributedDataParallel(
            model, device_ids=[device.index] if cuda else None, gradient_as_bucket_view=True
        )
    if opts.compile:
        model = torch.compile(model)
    torch.manual_seed(opts.seed + 1_000_003 * dist.rank)  # dropout differs per rank

    optimizer = make_optimizer(torch, raw, recipe)
    ema = make_ema(torch, raw, recipe.ema) if recipe.ema else None
    if amp_dtype == torch.float16 and cuda:
        scaler = torch.amp.GradScaler("cuda")
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)

    shape = (network.input.channels, network.input.height, network.input.width)
    batches = EpochBatches(len(data.train), per_rank, dist.world, dist.rank, opts.seed)
    run_plan = plan(recipe, batches.total(), opts.epochs)
    if main:
        record_recipe(opts, recipe, run_plan)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(recipe, run_plan))
    workers = opts.workers
    if workers is None:
        workers = min(8, max(1, (os.cpu_count() or 2) // max(1, dist.world))) if cuda else 0
    train_set = SplitImages(data.train, shape, recipe.augment, training=True, seed=opts.seed)
    loader = loader_of(torch, train_set, batches, workers, cuda)

    def split_loader(split):
        images = SplitImages(split, shape, recipe.augment, training=False, seed=opts.seed)
        keys = TestBatches(len(split), 256, dist.world, dist.rank)
        return loader_of(torch, images, keys, workers, cuda)

    # The validation split chooses the best epoch; the final split (the test split, where the
    # data has one) is evaluated once, at the end, for the chosen weights.
    val_loader = split_loader(data.val)

    # Resume.
    start_epoch, start_step, partial = 0, 0, [0.0, 0.0, 0.0]
    kept = None  # where the last checkpoint stands (for a diverged run's message)
    if opts.resume:
        state = ckpt.load_torch(opts.out)
        if state is None:
            if main:
                say(f"no checkpoint in `{opts.out}`: starting from scratch")
        else:
            try:
                raw.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
                if scaler is not None and "scaler" in state:
                    scaler.load_state_dict(state["scaler"])
                if ema is not None:
                    if "ema" not in state:
                        raise KeyError("no `ema` weights, and this run averages its weights")
                    ema.load_state_dict(state["ema"])
            except (RuntimeError, KeyError, ValueError) as e:
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise TrainError(
                    f"checkpoint in `{opts.out}` does not fit this model/run ({reason})"
                ) from None
            start_epoch, start_step = int(state["epoch"]), int(state["step"])
            kept = checkpoint_words(start_epoch, start_step)
            partial = [float(v) for v in state["partial"]]
            if main:
                _set_rng_state(state["rng"], device)
            if start_step >= run_plan.steps_per_epoch:
                start_epoch, start_step, partial = start_epoch + 1, 0, [0.0, 0.0, 0.0]
            if main:
                say(f"resuming from epoch {start_epoch + 1}, step {start_step}")
    if main:
        if start_epoch == 0 and start_step == 0 and not opts.resume:
            ckpt.reset_metrics(opts.out)
        else:
            ckpt.truncate_metrics(opts.out, start_epoch)
        dtype = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]
        name = torch.cuda.get_device_name(device) if cuda else device.type
        extras = [f"{dtype}" + (" autocast" if amp else "")]
        if channels_last:
            extras.append("channels_last")
        if cuda:
            extras.append("cudnn.benchmark")
        if opts.compile:
            extras.append("torch.compile")
        if device.type == "cpu":
            threads = torch.get_num_threads()
            extras.append(f"{threads} CPU thread{'s' * (threads != 1)}")
        if dist.active:
            extras.append(f"DDP x{dist.world} ({'nccl' if cuda else 'gloo'})")
        say(f"device: {device} ({name}); {', '.join(extras)}")
        say(describe_run(network, params, data, recipe, run_plan))

    record_of_data = data_record(data, recipe)
    events = EventLog(opts.out, opts.tensorboard and main)

    def save(epoch: int, step: int, sums) -> None:
        nonlocal kept
        if not main:
            return
        state = {
            "format": 1,
            "epoch": epoch,
            "step": step,
            "partial": [float(v) for v in sums],
            "model": raw.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(device),
            "spec": os.path.abspath(opts.spec),
            "world": dist.world,
            "batch_size": recipe.batch_size,
            # What `resdsl eval` and `predict` need to see images as training did.
            "data": record_of_data,
        }
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        if ema is not None:
            state["ema"] = ema.state_dict()
        ckpt.save_torch(opts.out, state)
        kept = checkpoint_words(epoch, step)

    # With weight averaging, the averaged weights are the ones evaluated, kept as the best and
    # exported; the raw weights only train.
    evaluated = ema.module if ema is not None else raw

    def evaluate(loader):
        evaluated.eval()
        sums = torch.zeros(3, dtype=torch.float64, device=device)
        with torch.no_grad():
            for x, y in loader:
                x = x.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                x = normalise(x, data.mean, data.std, channels_last)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                    logits = evaluated(x)
                loss = nn.functional.cross_entropy(logits.float(), y, reduction="sum")
                sums += torch.stack(
                    [
                        loss.double(),
                        (logits.argmax(1) == y).sum().double(),
                        torch.tensor(len(y), dtype=torch.float64, device=device),
                    ]
                )
        dist.sum(sums)
        loss_sum, correct, total = sums.tolist()
        return loss_sum / max(total, 1), correct / max(total, 1)

    # A test aid: slows each step so that a test can kill a run in a chosen epoch.
    step_sleep = float(os.environ.get("RESDSL_TRAIN_STEP_SLEEP", "0") or 0)
    every = stats_every(run_plan.steps_per_epoch)
    record = None
    with Interrupt() as interrupt, contextlib.closing(events):
        for epoch in range(start_epoch, run_plan.epochs):
            step0 = start_step if epoch == start_epoch else 0
            sums = torch.tensor(
                partial if epoch == start_epoch else [0.0, 0.0, 0.0],
                dtype=torch.float64,
                device=device,
            )
            batches.set_epoch(epoch, step0)
            model.train()
            bar = EpochProgress(
                epoch + 1, run_plan.epochs, run_plan.steps_per_epoch, enabled=main, start_step=step0
            )
            step, stopped = step0, False
            batches_read = iter(loader)
            while True:
                try:
                    x, y = next(batches_read)
                except StopIteration:
                    break
                except UnreadableImage as error:
                    # Everything up to the last step is consistent: keep it, then stop.
                    bar.close()
                    save(epoch, step, sums.tolist())
                    raise TrainError(
                        f"{error}; checkpoint saved at epoch {epoch + 1}, step {step}: replace "
                        "or remove the file, then continue with --resume"
                    ) from None
                x = x.to(device, non_blocking=True)
                y = y.to(device, non_blocking=True)
                x = augment(
                    x,
                    pad=recipe.device_pad,
                    flip=recipe.device_flip,
                    seed=_seed_for(opts.seed, epoch, step, dist.rank),
                    mean=data.mean,
                    std=data.std,
                    channels_last=channels_last,
                )
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                    logits = model(x)
                    loss = criterion(logits, y)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    if recipe.clip_grad:
                        scaler.unscale_(optimizer)  # clip the true gradients
                        torch.nn.utils.clip_grad_norm_(raw.parameters(), recipe.clip_grad)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    if recipe.clip_grad:
                        torch.nn.utils.clip_grad_norm_(raw.parameters(), recipe.clip_grad)
                    optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(raw)
                with torch.no_grad():
                    sums += torch.stack(
                        [
                            loss.detach().double() * len(y),
                            (logits.argmax(1) == y).sum().double(),
                            torch.tensor(len(y), dtype=torch.float64, device=device),
                        ]
                    )
                step += 1
                if step_sleep:
                    time.sleep(step_sleep)
                if step % every == 0 or step == run_plan.steps_per_epoch:
                    s = sums.tolist()  # waits for the device: every few steps only
                    loss_now, acc_now = s[0] / max(s[2], 1), s[1] / max(s[2], 1)
                    if dist.any(not math.isfinite(loss_now), device):
                        bar.close()
                        raise diverged("training", loss_now, epoch + 1, kept)
                    bar.update(len(y) * dist.world, loss_now, acc_now, step=step)
                elif main:
                    bar.update(len(y) * dist.world, step=step)
                else:
                    bar.images += len(y) * dist.world
                if dist.any(interrupt.requested, device) and step < run_plan.steps_per_epoch:
                    stopped = True
                    break
            bar.close()
            if stopped:
                save(epoch, step, sums.tolist())
                if main:
                    say(
                        f"interrupted: checkpoint saved at epoch {epoch + 1}, step {step}; "
                        "continue with --resume"
                    )
                return EXIT_INTERRUPTED
            train = dist.sum(sums.clone()).tolist()
            try:
                val_loss, val_acc = evaluate(val_loader)
            except UnreadableImage as error:
                save(epoch + 1, 0, [0.0, 0.0, 0.0])  # the epoch's training is kept
                raise TrainError(
                    f"{error}; checkpoint saved after epoch {epoch + 1}: replace or remove the "
                    "file, then continue with --resume"
                ) from None
            if not math.isfinite(val_loss):
                raise diverged("validation", val_loss, epoch + 1, kept)
            record = {
                "epoch": epoch + 1,
                "epochs": run_plan.epochs,
                "train_loss": train[0] / max(train[2], 1),
                "train_acc": train[1] / max(train[2], 1),
                "val_loss": val_loss,
                "val_acc": val_acc,
                "lr": epoch_lr(epoch, recipe, run_plan),
                "images_per_s": bar.rate(),
                "time_s": bar.elapsed(),
                "step": (epoch + 1) * run_plan.steps_per_epoch,
            }
            if main:
                say(epoch_line(record))
                previous = best_so_far(opts.out)
                ckpt.append_metrics(opts.out, record)  # before the checkpoint: see truncate
                events.add(record)
                save(epoch + 1, 0, [0.0, 0.0, 0.0])
                if previous is None or val_acc > previous[1]:
                    # The best epoch's weights, beside the last checkpoint: what `eval`,
                    # `predict`, `export` and `--init` take.
                    ckpt.save_best_torch(
                        opts.out, {"model": evaluated.state_dict(), "data": record_of_data}
                    )
            if interrupt.requested:
                if main:
                    say(
                        f"interrupted: checkpoint saved after epoch {epoch + 1}; "
                        "continue with --resume"
                    )
                return EXIT_INTERRUPTED

    # The chosen weights (best.pt, which rank 0 wrote: every rank waits for it), on the test
    # split, once.
    dist.agree(True, device)
    best = ckpt.load_best_torch(opts.out)
    if best is not None:
        evaluated.load_state_dict(best["model"])
    test_loss, test_acc = None, None
    if data.test is not None:
        try:
            test_loss, test_acc = evaluate(split_loader(data.test))
        except UnreadableImage as error:
            raise TrainError(f"{error}; the run is finished: replace or remove the file") from None
    if main:
        from resdsl.train.common import write_result

        framework = f"torch {torch.__version__}"
        fields = {"framework": framework, "device": str(device), "processes": dist.world}
        fields |= {"epochs": run_plan.epochs, "params": params}
        fields |= {"test_acc": test_acc, "test_loss": test_loss}
        write_result(opts.out, result_record(opts, network, data, **fields))
        say(final_words(data, test_acc, best_so_far(opts.out)))
    return 0
