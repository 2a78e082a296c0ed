"""Pictures drawn with Pillow (no plotting library needed). OUT/curves.png: a run's loss and
accuracy per epoch, drawn from OUT/metrics.jsonl: train and test loss on the left, train and
test accuracy on the right. `eval --confusion`'s confusion matrix: :func:`confusion_png`."""

from __future__ import annotations

import io
import os
from typing import NamedTuple

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
    from resdsl.train.checkpoint import read_metrics

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


# --------------------------------------------------------------------------- confusion matrix

COUNTS_UP_TO = 30  # classes up to which each cell shows its count
LONGEST_NAME = 20  # characters of a class name shown; longer ones end in "..."
FONT_SIZE = 13


class ConfusionLayout(NamedTuple):
    """Where :func:`confusion_png` draws: the grid's top-left corner and cell size (px), the
    picture's size, and whether cells show counts and edges class names."""

    cell: int
    left: int
    top: int
    width: int
    height: int
    counts: bool
    names: bool


def class_labels(names, n: int) -> list[str]:
    """The names of `n` classes: the data's, then the indices of those it does not name."""
    return [str(names[i]) if i < len(names) else str(i) for i in range(n)]


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # a bitmap font where FreeType is missing


def _short(name: str) -> str:
    return name if len(name) <= LONGEST_NAME else name[: LONGEST_NAME - 3] + "..."


def confusion_layout(names: list[str]) -> ConfusionLayout:
    """The layout of the matrix of `names`' classes: cells of 28 to 64 px (the grid about
    720 px across; down to 2 px a cell for hundreds of classes), class names as tick labels
    while cells are 10 px or more, "true" on the left and "predicted" under the columns."""
    n = max(len(names), 1)
    counts = n <= COUNTS_UP_TO
    cell = max(28 if counts else 2, min(64, 720 // n))
    font = _font(FONT_SIZE)
    line = font.getbbox("Ag")[3] + 2
    shown = cell >= 10
    name_width = max((int(font.getlength(_short(s))) for s in names), default=0) if shown else 0
    left = PAD // 4 + line + 8 + name_width + 6
    top = PAD // 4
    width = left + n * cell + PAD // 4
    height = top + n * cell + 6 + name_width + 8 + line + PAD // 4
    return ConfusionLayout(cell, left, top, width, height, counts, shown)


def _vertical(image, xy: tuple[int, int], text: str, font, fill) -> None:
    """`text` rotated a quarter turn (read bottom to top), its box's top-left at `xy`."""
    from PIL import Image, ImageDraw

    tile = Image.new("L", (int(font.getlength(text)) + 2, font.getbbox("Ag")[3] + 2), 0)
    ImageDraw.Draw(tile).text((0, 0), text, font=font, fill=255)
    tile = tile.rotate(90, expand=True)
    image.paste(Image.new("RGB", tile.size, fill), xy, tile)


def confusion_png(matrix, names: list[str]) -> bytes:
    """The confusion matrix as a PNG (rows: true classes, columns: predicted): one square a
    pair, darker for more images, each row scaled to its class's count; the count in each cell
    for up to :data:`COUNTS_UP_TO` classes; class names along both edges; sized by the class
    count (see :func:`confusion_layout`)."""
    from PIL import Image, ImageDraw

    n = len(matrix)
    labels = [_short(s) for s in class_labels(names, n)]
    at = confusion_layout(labels)
    image = Image.new("RGB", (at.width, at.height), "white")
    draw = ImageDraw.Draw(image)
    font = _font(FONT_SIZE)
    line = font.getbbox("Ag")[3] + 2
    biggest = max((str(int(v)) for row in matrix for v in row), key=len, default="0")
    size = min(FONT_SIZE, at.cell // 2)
    while size > 6 and _font(size).getlength(biggest) > at.cell - 4:
        size -= 1
    small = _font(size)
    for row in range(n):
        total = max(int(matrix[row].sum()), 1)
        for col in range(n):
            shade = 255 - int(235 * matrix[row][col] / total)
            x, y = at.left + col * at.cell, at.top + row * at.cell
            draw.rectangle([x, y, x + at.cell - 1, y + at.cell - 1], fill=(shade, shade, 255))
            if at.counts:
                draw.text(
                    (x + at.cell / 2, y + at.cell / 2),
                    str(int(matrix[row][col])),
                    font=small,
                    fill="white" if shade < 128 else "black",
                    anchor="mm",
                )
    grid_bottom = at.top + n * at.cell
    draw.rectangle([at.left - 1, at.top - 1, at.left + n * at.cell, grid_bottom], outline="gray")
    if at.names:
        for i, label in enumerate(labels):
            middle = at.top + i * at.cell + at.cell // 2
            draw.text((at.left - 6, middle), label, font=font, fill="black", anchor="rm")
            x = at.left + i * at.cell + (at.cell - line) // 2
            top = grid_bottom + 6 + max(int(font.getlength(s)) for s in labels)
            _vertical(image, (x, top - int(font.getlength(label)) - 2), label, font, "black")
    middle = at.top + n * at.cell // 2
    _vertical(image, (PAD // 4, middle - int(font.getlength("true")) // 2), "true", font, "black")
    draw.text(
        (at.left + n * at.cell // 2, at.height - PAD // 4),
        "predicted",
        font=font,
        fill="black",
        anchor="md",
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
