"""Train-step time of the generated Keras ResNet-50 (specs/keras/resnet50.res) against
keras.applications.ResNet50, on Keras' tensorflow backend, in one process, interleaved.

    .venv/bin/python benchmarks/bench_keras_train.py [--batch 4] [--steps 15]

Prints each model's median step time and their ratio (target: at most 1.02).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["KERAS_BACKEND"] = "tensorflow"

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    import keras
    import numpy as np

    import resdsl
    from resdsl.interop.weights import build_generated

    network = resdsl.load(str(ROOT / "specs" / "keras" / "resnet50.res"))
    shape = (args.size, args.size, 3)
    models = {
        "resdsl": build_generated(network, "keras").build_model(input_shape=shape),
        "keras.applications": keras.applications.ResNet50(
            weights=None, input_shape=shape, classifier_activation=None
        ),
    }
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, *shape)).astype("float32")
    y = rng.integers(0, 1000, args.batch)
    for model in models.values():
        model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=False,
        )
        for _ in range(args.warmup):
            model.train_on_batch(x, y)
    times: dict[str, list[float]] = {name: [] for name in models}
    for step in range(args.steps):
        # Alternate which model goes first so neither always runs on a warmer machine.
        order = list(models) if step % 2 == 0 else list(reversed(models))
        for name in order:
            start = time.perf_counter()
            models[name].train_on_batch(x, y)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"train step, batch {args.batch} at {args.size}x{args.size}, "
        f"{args.steps} steps each, tensorflow backend ({keras.__version__})"
    )
    for name, median in medians.items():
        print(f"  {name:<20} median {median * 1000:8.1f} ms")
    ratio = medians["resdsl"] / medians["keras.applications"]
    print(f"  ratio resdsl / keras.applications: {ratio:.3f}")


if __name__ == "__main__":
    main()
