"""OUT/curves.png: a run's loss and accuracy per epoch, drawn from OUT/metrics.jsonl with
Pillow (no plotting library needed): train and test loss on the left, train and test accuracy
on the right."""

from __future__ import annotations

import io
import os

WIDTH, HEIGHT, PAD = 420, 300, 40
COLORS = {"train": (31, 119, 180), "test": (214, 39, 40)}


def _panel(draw, left: int, title: str, series: dict[str, list[float]], epochs: list[int]):
    top, right, bottom = PAD, left + WIDTH - PAD, HEIGHT - PAD
    draw.rectangle([left + PAD, top, right, bottom], outline=(80, 80, 80))
    draw.text((left + PAD, 12), title, fill=(0, 0, 0))
    values = [v for vs in series.values() for v in vs]
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    first, last = epochs[0], max(epochs[-1], epochs[0] + 1)

    def point(epoch: int, value: float) -> tuple[float, float]:
        x = left + PAD + (epoch - first) / (last - first) * (right - left - PAD)
        y = bottom - (value - low) / (high - low) * (bottom - top)
        return x, y

    for name, ys in series.items():
        points = [point(e, v) for e, v in zip(epochs, ys, strict=True)]
        if len(points) > 1:
            draw.line(points, fill=COLORS[name], width=2)
        for x, y in points:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=COLORS[name])
    draw.text((left + 4, top - 4), f"{high:.3g}", fill=(80, 80, 80))
    draw.text((left + 4, bottom - 8), f"{low:.3g}", fill=(80, 80, 80))
    draw.text((left + PAD, bottom + 6), f"epoch {first}", fill=(80, 80, 80))
    draw.text((right - 40, bottom + 6), f"{epochs[-1]}", fill=(80, 80, 80))
    for number, name in enumerate(series):
        draw.text((right - 60, top + 6 + 12 * number), name, fill=COLORS[name])


def curves_png(records: list[dict]) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (2 * WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    epochs = [int(r["epoch"]) for r in records]
    losses = {
        "train": [r["train_loss"] for r in records],
        "test": [r["test_loss"] for r in records],
    }
    accuracy = {
        "train": [r["train_acc"] for r in records],
        "test": [r["test_acc"] for r in records],
    }
    _panel(draw, 0, "loss", losses, epochs)
    _panel(draw, WIDTH, "accuracy", accuracy, epochs)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_curves(out: str) -> str | None:
    """Draw OUT/metrics.jsonl into OUT/curves.png (atomically); its path, or None without
    metrics or without Pillow."""
    from .checkpoint import read_metrics

    records = [r for r in read_metrics(out) if "test_acc" in r]
    if not records:
        return None
    try:
        data = curves_png(records)
    except ImportError:
        return None
    from resdsl.files import atomic_write

    path = os.path.join(out, "curves.png")
    atomic_write(path, data)
    return path
