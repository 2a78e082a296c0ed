"""`resdsl eval --confusion FILE`: the confusion matrix as a picture.

Rows are the true classes and columns the predicted ones, as scikit-learn draws them: a cell's
shade is its count (or, with `--confusion-normalize`, its share of the true class's images),
with a colour bar to read it by, the class names along both axes (tilted where they are wider
than a column), and a title naming the split and its top-1 accuracy. Each cell shows its number
up to :data:`COUNTS_UP_TO` classes; beyond that the cells are too small to hold one. The
picture grows with the class count so that every name stays legible up to :data:`NAMES_UP_TO`
classes; beyond, it stops growing and names every k-th class (ImageNet's 1,000: every 10th).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from matplotlib.figure import Figure

from resdsl.charts.style import new_figure, styled
from resdsl.train.data import class_labels

COUNTS_UP_TO = 30  # classes up to which each cell shows its number
NAMES_UP_TO = 100  # classes up to which every class is named; beyond, every k-th
LONGEST_NAME = 20  # characters of a class name shown; longer ones end in "..."
CELL_INCHES = (0.16, 0.6)  # a cell's side, smallest and largest
GRID_INCHES = (3.0, 16.0)  # the grid's side: a few classes still readable, 1,000 still small


class Layout(NamedTuple):
    """How :func:`confusion_figure` lays out the matrix of some classes: the grid's side
    (inches), every how many classes a name is shown, the names' size (points) and tilt
    (degrees: 0, 45, or 90 for many narrow columns), and the room the longest takes (inches)."""

    grid: float
    step: int
    name_size: float
    tilt: int
    name_inches: float


def confusion_layout(labels: Sequence[str]) -> Layout:
    """The layout of the matrix of `labels`' classes: cells of 0.16 to 0.6 inches (10 inches
    across from 17 to 62 classes), the grid no larger than 16 inches (every k-th class named
    beyond 100, so that names keep 0.16 inches each), names from 5 to 9 points as the rows
    allow, tilted where they are wider than a column."""
    n = max(len(labels), 1)
    cell = max(CELL_INCHES[0], min(CELL_INCHES[1], 10 / n))
    grid = max(GRID_INCHES[0], min(GRID_INCHES[1], cell * n))
    step = math.ceil(n / NAMES_UP_TO)
    spacing = grid / n * step * 72  # points between two names shown
    name_size = max(5.0, min(9.0, 0.7 * spacing))
    name_points = max((len(s) for s in labels), default=1) * 0.6 * name_size  # average glyphs
    tilt = 0 if name_points <= 0.9 * spacing else 90 if n > COUNTS_UP_TO else 45
    return Layout(grid, step, name_size, tilt, name_points / 72)


def short(name: str) -> str:
    """`name`, cut to :data:`LONGEST_NAME` characters."""
    return name if len(name) <= LONGEST_NAME else name[: LONGEST_NAME - 3] + "..."


def rates(matrix):
    """Each row of `matrix` divided by its sum: the share of a true class's images given each
    prediction (a class with no images is a row of zeros)."""
    import numpy as np

    counts = np.asarray(matrix, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def top1(matrix) -> float:
    """The share of images on the diagonal: the top-1 accuracy the matrix was counted from."""
    import numpy as np

    counts = np.asarray(matrix)
    return float(np.trace(counts) / max(int(counts.sum()), 1))


@styled
def confusion_figure(
    matrix,
    names: Sequence,
    normalize: bool = False,
    data: str | None = None,
    split: str | None = None,
) -> Figure:
    """The picture of `matrix` (n x n counts, rows true, columns predicted) with the classes
    `names` (see :func:`class_labels`); `normalize`: each row as shares of its class; `data`
    and `split` name what was evaluated, in the title."""
    import numpy as np

    counts = np.asarray(matrix)
    n = max(len(counts), 1)
    labels = [short(s) for s in class_labels(names, n)]
    shown = rates(counts) if normalize else counts
    at = confusion_layout(labels)
    # The grid and its colour bar placed by hand, in inches: room for the names left of and
    # below the grid (tilted by 45 degrees they take 0.72 of their length in height), for the
    # axis titles, the title above and the bar to the right; saving trims what is left over.
    below = at.name_inches * {0: 0.0, 45: 0.72, 90: 1.0}[at.tilt] + 0.75
    left, right, top = at.name_inches + 0.6, 1.3, 0.5
    width, height = left + at.grid + right, below + at.grid + top
    figure = new_figure(width, height, constrained=False)
    axis = figure.add_axes((left / width, below / height, at.grid / width, at.grid / height))
    ceiling = 1.0 if normalize else max(1, int(counts.max(initial=0)))
    image = axis.imshow(shown, cmap="Blues", vmin=0, vmax=ceiling, interpolation="nearest")
    bar = figure.add_axes(
        ((left + at.grid + 0.2) / width, below / height, 0.18 / width, at.grid / height)
    )
    label = "share of the true class's images" if normalize else "images"
    figure.colorbar(image, cax=bar, label=label)
    ticks = list(range(0, n, at.step))
    shown_names = [labels[i] for i in ticks]
    if at.tilt == 45:
        axis.set_xticks(ticks, shown_names, rotation=45, ha="right", rotation_mode="anchor")
    else:
        axis.set_xticks(ticks, shown_names, rotation=at.tilt)
    axis.set_yticks(ticks, shown_names)
    axis.tick_params(labelsize=at.name_size, length=2)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    axis.grid(False)
    for spine in axis.spines.values():
        spine.set_visible(True)
    if n <= COUNTS_UP_TO:
        _cell_numbers(axis, shown, normalize, at.grid / n * 72, ceiling)
    what = " ".join(str(w) for w in (data, f"{split} split" if split else None) if w)
    title = f"{what}: top-1 {top1(counts):.2%}" if what else f"top-1 {top1(counts):.2%}"
    axis.set_title(title + (", rows normalised" if normalize else ""))
    return figure


def _cell_numbers(axis, shown, normalize: bool, cell_points: float, ceiling: float) -> None:
    """Each cell's count (or share, to two decimals), sized to fit its cell, white on the
    darker half of the colour scale."""
    texts = [[f"{v:.2f}" if normalize else str(int(v)) for v in row] for row in shown]
    widest = max(len(t) for row in texts for t in row)
    size = max(4.0, min(9.0, cell_points / (0.62 * widest + 0.8)))
    for row, line in enumerate(texts):
        for col, text in enumerate(line):
            dark = shown[row][col] > ceiling / 2
            axis.text(col, row, text, ha="center", va="center", fontsize=size,
                      color="white" if dark else "black")  # fmt: skip
