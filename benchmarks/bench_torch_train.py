"""Train-step speed of generated models against references, in one process, interleaved.

    python benchmarks/bench_torch_train.py [--repeats 7] [--batch 4] [--size 128]
        [--timm res2net50_26w_4s skresnet50 resnest50d]

The references: torchvision's ResNet-50, a hand-written CIFAR ResNet-56, and timm's networks
whose blocks are composite layers (Res2Net, SKNet, ResNeSt; `--timm`), each against the
generated model of its library spec with its weights loaded.

One step = forward, cross-entropy, backward, SGD step. Runs alternate between the two models
so that drifting machine load hits both alike; the figure is the ratio of medians
(generated / reference; target <= 1.02).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import resdsl  # noqa: E402
from resdsl.codegen.generated import import_file  # noqa: E402


def generated(spec: str):
    code = resdsl.compile(str(ROOT / spec), backend="torch")
    path = Path(tempfile.mkdtemp()) / (Path(spec).stem + "_generated.py")
    path.write_text(code)
    return import_file(path)


# A straightforward option-A CIFAR ResNet, written by hand as the paper describes it.
class HandBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.grow = stride, cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.stride != 1 or self.grow:
            shortcut = x[:, :, :: self.stride, :: self.stride]
            shortcut = F.pad(shortcut, (0, 0, 0, 0, self.grow // 2, self.grow - self.grow // 2))
        return F.relu(out + shortcut)


class HandCifarResNet(nn.Module):
    def __init__(self, n: int, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(HandBlock(cin, width, stride if i == 0 else 1))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.blocks(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def step_time(model: nn.Module, optimizer, x, y) -> float:
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    return time.perf_counter() - start


def compare(label: str, ours: nn.Module, reference: nn.Module, x, y, repeats: int) -> float:
    models = {"generated": ours.train(), "reference": reference.train()}
    optimizers = {
        k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in models.items()
    }
    for key, model in models.items():  # warm-up: allocator, kernels
        step_time(model, optimizers[key], x, y)
    times: dict[str, list[float]] = {k: [] for k in models}
    for i in range(repeats):
        order = list(models) if i % 2 == 0 else list(reversed(models))
        for key in order:
            times[key].append(step_time(models[key], optimizers[key], x, y))
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["generated"] / medians["reference"]
    print(
        f"{label}: generated {medians['generated'] * 1e3:.1f} ms, reference "
        f"{medians['reference'] * 1e3:.1f} ms, ratio {ratio:.3f} (median of {repeats})"
    )
    return ratio


# timm's networks whose blocks are composite layers, and their library specs.
TIMM_FAMILY = {
    "res2net50_26w_4s": "specs/res2net/res2net50_26w_4s.res",
    "skresnet50": "specs/sknet/skresnet50.res",
    "resnest50d": "specs/resnest/resnest50d.res",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--cifar-batch", type=int, default=32)
    parser.add_argument("--timm", nargs="*", default=list(TIMM_FAMILY))
    args = parser.parse_args()
    import torchvision

    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    reference = torchvision.models.resnet50()
    ours = generated("specs/resnet50.res").build_model()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 1000, (args.batch,))
    compare(
        f"resnet50 train step, batch {args.batch} at {args.size}x{args.size}",
        ours,
        reference,
        x,
        y,
        args.repeats,
    )

    ours = generated("specs/cifar/resnet56.res").build_model()
    hand = HandCifarResNet(9)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in hand.parameters())
    x = torch.randn(args.cifar_batch, 3, 32, 32)
    y = torch.randint(0, 10, (args.cifar_batch,))
    compare(
        f"cifar resnet56 train step, batch {args.cifar_batch}", ours, hand, x, y, args.repeats * 3
    )

    if args.timm:
        import timm

    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 1000, (args.batch,))
    for name in args.timm:
        reference = timm.create_model(name, pretrained=False)
        ours = generated(TIMM_FAMILY[name]).build_model()
        ours.load_state_dict(reference.state_dict())
        label = f"{name} train step, batch {args.batch} at {args.size}x{args.size}"
        compare(label, ours, reference, x, y, args.repeats)


if __name__ == "__main__":
    main()
