"""Draw the docs' signal-propagation figures (`resdsl summary --signal`, batch 8, seed 0):
docs/signal-plain56-resnet56.png, the paper's plain-56 against ResNet-56 at initialisation, and
docs/signal-norms.png, ResNet-56 with batch norms against ResNet-56 without (`norm none`).

    python docs/signal_figure.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import resdsl  # noqa: E402
from resdsl.charts.signal import signal_figure  # noqa: E402
from resdsl.charts.style import write  # noqa: E402
from resdsl.tooling.signal import signal_propagation  # noqa: E402

UNNORMALISED = 'network resnet56_nonorm extends "cifar/resnet56.res" {\n  norm none\n}\n'
figures = {
    "signal-plain56-resnet56.png": {
        name: resdsl.load(ROOT / f"specs/cifar/{name}.res") for name in ("plain56", "resnet56")
    },
    "signal-norms.png": {
        "resnet56": resdsl.load(ROOT / "specs/cifar/resnet56.res"),
        "resnet56, norm none": resdsl.load(UNNORMALISED, base=ROOT / "specs"),
    },
}
for file, networks in figures.items():
    runs = {name: signal_propagation(network, batch=8) for name, network in networks.items()}
    write(signal_figure(runs), str(ROOT / "docs" / file))
    for name, rows in runs.items():
        first, last = rows[0], rows[-1]
        print(
            f"{file}: {name}: variance {first.variance:.3g} -> {last.variance:.3g}, "
            f"input-gradient norm {first.grad_norm:.3g} -> {last.grad_norm:.3g} "
            f"({first.grad_norm / last.grad_norm:.3g}x)"
        )
