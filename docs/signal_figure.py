"""Draw docs/signal-plain56-resnet56.png, the README's signal-propagation figure: the paper's
plain-56 against ResNet-56 at initialisation (`resdsl summary --signal`, batch 8, seed 0).

    python docs/signal_figure.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import resdsl  # noqa: E402
from resdsl.signal import signal_plot, signal_propagation  # noqa: E402

runs = {
    name: signal_propagation(resdsl.load(ROOT / f"specs/cifar/{name}.res"), batch=8)
    for name in ("plain56", "resnet56")
}
signal_plot(runs, str(ROOT / "docs/signal-plain56-resnet56.png"))
for name, rows in runs.items():
    first, last = rows[0], rows[-1]
    print(
        f"{name}: variance {first.variance:.3g} -> {last.variance:.3g}, "
        f"input-gradient norm {first.grad_norm:.3g} -> {last.grad_norm:.3g} "
        f"({first.grad_norm / last.grad_norm:.3g}x)"
    )
