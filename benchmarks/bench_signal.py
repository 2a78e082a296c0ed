"""`resdsl summary --signal` against one plain forward-backward pass of the same model and batch.

    python benchmarks/bench_signal.py [--spec specs/resnet50.res] [--batch 8] [--size 224]
                                      [--repeats 5]

The signal pass is one forward pass with hooks on every block (and its branch's last layer)
and one backward pass of a mean-squared loss; the reference is the same model's forward and
backward with the same loss and no hooks. Runs alternate, on one model in training mode, so
that drifting machine load hits both alike; the figure is the ratio of medians (target: at
most 3x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resdsl.driver import analyze_file  # noqa: E402
from resdsl.interop.weights import build_generated  # noqa: E402
from resdsl.tooling.signal import signal_propagation  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="specs/resnet50.res")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    network = analyze_file(str(ROOT / args.spec), input_shape=(3, args.size, args.size)).network
    model = build_generated(network, "torch").build_model().train()
    x = torch.randn(args.batch, 3, args.size, args.size)

    def plain() -> None:
        model.zero_grad(set_to_none=True)
        inputs = x.clone().requires_grad_(True)
        logits = model(inputs)
        torch.nn.functional.mse_loss(logits, torch.randn(logits.shape)).backward()

    def signal() -> None:
        model.zero_grad(set_to_none=True)
        signal_propagation(network, images=x, model=model)

    plain(), signal()  # warm-up
    times: dict[str, list[float]] = {"plain": [], "signal": []}
    for _ in range(args.repeats):
        for name, run in (("plain", plain), ("signal", signal)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    plain_s, signal_s = (statistics.median(times[k]) for k in ("plain", "signal"))
    print(
        f"{network.name} {args.size}x{args.size}, batch {args.batch}, {args.repeats} rounds, "
        f"{torch.get_num_threads()} threads: forward-backward {plain_s:.3f} s, "
        f"--signal {signal_s:.3f} s (medians): {signal_s / plain_s:.2f}x"
    )


if __name__ == "__main__":
    main()
