"""Training throughput of generated networks against torchvision, on one GPU.

1. images/s of the generated ResNet-50 (specs/resnet50.res) and torchvision's resnet50:
   one SGD training step per iteration, batch 256, bf16 autocast, channels_last, with and
   without torch.compile. All four variants live in the same process and are timed in
   interleaved rounds; the report gives medians and the generated/torchvision ratios.
2. 200 training steps of the generated ResNet-56 (specs/cifar/resnet56.res) on synthetic
   CIFAR-shaped data (batch 128): images/s and wall time.

    python benchmarks/bench_gpu.py            # on a GPU, under 5 minutes
    python benchmarks/bench_gpu.py --smoke    # tiny settings; runs on CPU (compile: eager)

The script prints a table and, with --json PATH, writes the figures as JSON. For the full
evidence of issue 17 (fp32 too, timm's ResNets, `resdsl train`, DDP, peak memory), see
benchmarks/gpu_evidence.py, which builds on the pieces here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _generated(spec: str, folder: str):
    from resdsl.train.common import compile_module

    _, module = compile_module(str(ROOT / spec), "torch", folder)
    return module


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Variant:
    """A model, its optimizer and a (possibly compiled) training step."""

    def __init__(
        self,
        name,
        model,
        device,
        *,
        compiled: bool,
        compile_backend: str,
        amp: bool,
        channels_last: bool = True,
    ):
        import torch

        self.name = name
        model = model.to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.forward = torch.compile(model, backend=compile_backend) if compiled else model
        self.device, self.amp = device, amp
        self.samples: list[float] = []

    def step(self, x, y) -> None:
        import torch

        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            loss = torch.nn.functional.cross_entropy(self.forward(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def timed(self, x, y, steps: int) -> float:
        _sync(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step(x, y)
        _sync(self.device)
        rate = steps * x.shape[0] / (time.perf_counter() - start)
        self.samples.append(rate)
        return rate


def synthetic_batch(device, batch: int, size: int, classes: int, *, channels_last: bool = True):
    """Random images (batch x 3 x size x size) and labels on `device`."""
    import torch

    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, torch.randint(0, classes, (batch,), device=device)


def warm_up(variant: Variant, x, y, steps: int) -> float:
    """Seconds of `steps` untimed steps: cudnn autotuning, compilation."""
    start = time.perf_counter()
    for _ in range(steps):
        variant.step(x, y)
    _sync(variant.device)
    return time.perf_counter() - start


def interleaved(variants, x, y, rounds: int, steps: int, until: float | None = None) -> int:
    """Time every variant once a round, the order reversed every other round; stops after
    `rounds`, or early (after two) once the wall clock passes `until`. Returns rounds done."""
    done = 0
    for r in range(rounds):
        if until is not None and done >= 2 and time.time() > until:
            break
        for variant in variants if r % 2 == 0 else variants[::-1]:
            variant.timed(x, y, steps)
        done += 1
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny settings that run on CPU")
    parser.add_argument("--batch", type=int, default=None, help="ResNet-50 batch (256)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (7)")
    parser.add_argument("--steps", type=int, default=None, help="steps per round (10)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile variants")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)

    import torch
    import torchvision

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    smoke = args.smoke
    if device.type != "cuda" and not smoke:
        print("no CUDA device: run with --smoke for a functional check on CPU", file=sys.stderr)
        return 2
    batch = args.batch or (2 if smoke else 256)
    rounds = args.rounds or (2 if smoke else 7)
    steps = args.steps or (1 if smoke else 10)
    size = 64 if smoke else 224
    cifar_steps, cifar_batch = (3, 8) if smoke else (200, 128)
    # On CPU the smoke run checks that the compiled path traces, without inductor's C++ build.
    compile_backend = "eager" if smoke and device.type != "cuda" else "inductor"
    amp = device.type == "cuda" or smoke
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = "cpu"
    print(
        f"device: {device} ({name}); torch {torch.__version__}; batch {batch}, "
        f"{rounds} rounds x {steps} steps, bf16 autocast, channels_last"
    )

    report: dict = {"device": name, "torch": torch.__version__, "batch": batch}
    with tempfile.TemporaryDirectory() as folder:
        resnet50 = _generated("specs/resnet50.res", os.path.join(folder, "r50"))
        resnet56 = _generated("specs/cifar/resnet56.res", os.path.join(folder, "r56"))

        variants = []
        for compiled in [False] if args.no_compile else [False, True]:
            suffix = " +compile" if compiled else ""
            torch.manual_seed(0)
            variants.append(
                Variant(
                    "generated" + suffix,
                    resnet50.build_model(),
                    device,
                    compiled=compiled,
                    compile_backend=compile_backend,
                    amp=amp,
                )
            )
            torch.manual_seed(0)
            variants.append(
                Variant(
                    "torchvision" + suffix,
                    torchvision.models.resnet50(),
                    device,
                    compiled=compiled,
                    compile_backend=compile_backend,
                    amp=amp,
                )
            )
        x, y = synthetic_batch(device, batch, size, 1000)
        for variant in variants:
            print(f"  warm-up {variant.name}: {warm_up(variant, x, y, 2 if smoke else 3):.1f}s")
        interleaved(variants, x, y, rounds, steps)

        print(f"\nResNet-50 training step, images/s (median of {rounds})")
        medians = {v.name: statistics.median(v.samples) for v in variants}
        for variant in variants:
            print(
                f"  {variant.name:24s} {medians[variant.name]:10,.1f}   "
                f"(min {min(variant.samples):,.1f}, max {max(variant.samples):,.1f})"
            )
        report["resnet50"] = medians
        for suffix in ["", " +compile"]:
            if "generated" + suffix in medians:
                ratio = medians["generated" + suffix] / medians["torchvision" + suffix]
                report[f"ratio{suffix.strip() and '_compile'}"] = ratio
                print(f"  ratio generated/torchvision{suffix}: {ratio:.3f}")
        del variants

        torch.manual_seed(0)
        cifar = Variant(
            "resnet56",
            resnet56.build_model(),
            device,
            compiled=False,
            compile_backend=compile_backend,
            amp=amp,
        )
        cx, cy = synthetic_batch(device, cifar_batch, 32, 10)
        warm_up(cifar, cx, cy, 1)
        start = time.perf_counter()
        for _ in range(cifar_steps):
            cifar.step(cx, cy)
        _sync(device)
        elapsed = time.perf_counter() - start
        rate = cifar_steps * cifar_batch / elapsed
        print(
            f"\nResNet-56, {cifar_steps} steps of batch {cifar_batch} (synthetic CIFAR): "
            f"{elapsed:.2f}s, {rate:,.0f} images/s"
        )
        report["resnet56"] = {
            "steps": cifar_steps,
            "batch": cifar_batch,
            "seconds": elapsed,
            "images_per_s": rate,
        }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
