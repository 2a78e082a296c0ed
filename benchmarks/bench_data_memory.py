"""Peak memory of reading an image folder for one training epoch, against the folder's size.

`resdsl train --data FOLDER` streams: only the file list is held, and the loaders read, decode
and augment each image when a batch needs it. This benchmark shows it: it writes two folders
of small PNGs (2,000 and 20,000 images by default, 64x64, ten classes), and for each one runs,
in a fresh process, one training epoch of

* `torch`: the PyTorch trainer's loader (SplitImages in a DataLoader with 2 workers),
* `keras`: the Keras trainer's tf.data pipeline (parallel map, prefetch),
* `in-memory`: every image decoded into one uint8 array first, which is what the trainer did
  before streaming (the reference: memory that grows with the folder),

and reports each process's peak resident memory (its own plus its largest worker's) above what
the same process held after its imports, and the ratio of that growth between the two folders.

    .venv/bin/python benchmarks/bench_data_memory.py [--sizes 2000 20000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHAPE = (3, 64, 64)
CLASSES = 10
BATCH = 128


def write_folder(folder: Path, count: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(count)
    for index in range(count):
        label = folder / f"class{index % CLASSES}"
        label.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (SHAPE[1], SHAPE[2], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(label / f"{index}.png", compress_level=1)


def _peak_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + workers) / 1024  # Linux reports KiB


def child(loader: str, folder: str) -> dict:
    """One epoch of `loader` over `folder`; memory figures in MiB."""
    import numpy as np

    from resdsl.train import data
    from resdsl.train.presets import PRESETS

    recipe = PRESETS["default"]
    if loader == "torch":
        import torch

        from resdsl.train.torch_batches import SplitImages, TestBatches, loader_of
    elif loader == "keras":
        import tensorflow as tf  # noqa: F401

        from resdsl.train.tf_data import Pipelines
    else:
        from resdsl.train.transforms import eval_view, read_image, to_array
    base = _peak_mib()
    start = time.perf_counter()
    loaded = data.load(folder, SHAPE, recipe.augment)
    seen = 0
    if loader == "torch":
        images = SplitImages(loaded.train, SHAPE, recipe.augment, training=True, seed=0)
        batches = loader_of(torch, images, TestBatches(len(images), BATCH, 1, 0), 2, False)
        for x, _ in batches:
            seen += len(x)
    elif loader == "keras":
        pipelines = Pipelines(loaded, SHAPE, recipe, seed=0)
        order = np.random.default_rng(0).permutation(len(loaded.train))
        for x, _ in pipelines.train(0, order, BATCH):
            seen += int(x.shape[0])
    else:
        array = np.stack(
            [
                to_array(eval_view(read_image(f, 3), SHAPE[1:], "none"), 3)
                for f in loaded.train.files
            ]
        )
        seen = len(array)
    return {
        "images": seen,
        "after_imports_mib": base,
        "peak_mib": _peak_mib(),
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[2_000, 20_000])
    parser.add_argument("--json", help="write the figures here as JSON")
    parser.add_argument("--child", nargs=2, metavar=("LOADER", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    figures: dict[str, dict[int, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="resdsl-bench-images-") as tmp:
        for size in args.sizes:
            folder = Path(tmp) / str(size)
            write_folder(folder, size)
            for loader in ("in-memory", "torch", "keras"):
                run = subprocess.run(
                    [sys.executable, __file__, "--child", loader, str(folder)],
                    capture_output=True, text=True, check=True, env=env, cwd=ROOT,
                )  # fmt: skip
                figures.setdefault(loader, {})[size] = json.loads(run.stdout.splitlines()[-1])
    small, large = args.sizes
    print(f"one epoch over folders of {small:,} and {large:,} {SHAPE[1]}x{SHAPE[2]} PNGs")
    print(f"{'loader':<10} {'images':>8} {'growth MiB':>11} {'peak MiB':>9} {'s':>6}")
    summary = {}
    for loader, runs in figures.items():
        for size in (small, large):
            r = runs[size]
            r["growth_mib"] = r["peak_mib"] - r["after_imports_mib"]
            print(
                f"{loader:<10} {r['images']:>8,} {r['growth_mib']:>11.0f} {r['peak_mib']:>9.0f} "
                f"{r['seconds']:>6.1f}"
            )
        ratio = runs[large]["growth_mib"] / max(runs[small]["growth_mib"], 1.0)
        summary[loader] = ratio
        print(f"{loader:<10} growth {large:,} / {small:,} images: {ratio:.2f}x")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"sizes": args.sizes, "figures": figures, "growth_ratio": summary}, indent=2)
            + "\n"
        )


if __name__ == "__main__":
    main()
