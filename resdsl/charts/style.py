"""What every resdsl chart shares, so that its pictures look like one family: the palette (one
colour per network), the ResNet paper's line styles (training dashed and thin, test bold), the
best epoch's marker, a light grid and real ticks, legends outside the data, and saving a figure
to PNG, SVG or PDF by its file's extension.

A chart is built inside :func:`styled` (matplotlib's settings for resdsl, for that call only)
on a figure from :func:`new_figure`: a :class:`~matplotlib.figure.Figure` with the Agg canvas,
never pyplot's, so no window opens and no figure outlives its caller.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

import matplotlib
from cycler import cycler
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

# The file extensions a chart is written as, and matplotlib's format for each.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
DPI = 110  # a 7-inch chart is 770 px wide: sharp on a screen, small on disk

# matplotlib's default cycle (tab10): the colours readers of the field's figures know.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
# The ResNet paper's convention (its Figures 1, 4 and 6): training error thin and dashed, test
# error bold; the colour says which network.
TRAIN = {"linestyle": "--", "linewidth": 1.2}
TEST = {"linestyle": "-", "linewidth": 2.2}
# The best epoch (highest validation accuracy), marked on the validation curves.
BEST = {
    "marker": "*",
    "markersize": 12,
    "markeredgecolor": "black",
    "markeredgewidth": 0.5,
    "linestyle": "none",
}
KEY_COLOUR = "0.35"  # the legend's style key is grey: colour belongs to the networks

SETTINGS = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "axes.prop_cycle": cycler(color=PALETTE),
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "0.85",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "resdsl",  # the SVG's element ids the same from run to run
}
# No date or version in the files: the same chart is the same bytes (PNG keeps matplotlib's
# `Software` key only).
METADATA = {"png": {}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}

Chart = TypeVar("Chart", bound=Callable[..., Figure])


def styled(chart: Chart) -> Chart:
    """`chart`, a function that builds a figure, run with resdsl's matplotlib settings (and
    the caller's restored after it)."""

    @functools.wraps(chart)
    def build(*args, **kwargs):
        with matplotlib.rc_context(SETTINGS):
            return chart(*args, **kwargs)

    return build  # type: ignore[return-value]


def new_figure(width: float, height: float, constrained: bool = True) -> Figure:
    """A figure of `width` x `height` inches on the Agg canvas, laid out by matplotlib's
    constrained layout (which keeps room for a legend outside the axes) unless the caller
    places its axes itself (not `constrained`)."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained" if constrained else None)
    FigureCanvasAgg(figure)
    return figure


def colour(number: int) -> str:
    """The colour of the `number`th network of a chart (the palette repeats after ten)."""
    return PALETTE[number % len(PALETTE)]


def epoch_axis(axis) -> None:
    """An x axis of epochs: whole numbers only, as many as fit."""
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def log_where_spread(axis, values: Sequence[float], ratio: float = 10.0) -> bool:
    """A log scale on `axis`'s y axis where its positive `values` span more than `ratio` (a
    decade: a loss falling from 2.3 to 0.01 reads only so); whether it was set."""
    positive = [v for v in values if v > 0]
    if positive and max(positive) > ratio * min(positive) and len(positive) == len(values):
        axis.set_yscale("log")
        return True
    return False


def style_key(best: bool = True) -> list[Line2D]:
    """The legend's key to the line styles: dashed training, bold validation, and the best
    epoch's star."""
    key = [
        Line2D([], [], color=KEY_COLOUR, label="train", **TRAIN),
        Line2D([], [], color=KEY_COLOUR, label="val", **TEST),
    ]
    if best:
        key.append(Line2D([], [], color="white", label="best epoch", **BEST))
    return key


def legend_outside(figure: Figure, handles: list, title: str | None = None) -> Legend:
    """The figure's one legend, to the right of every axis, where it covers no data."""
    return figure.legend(
        handles=handles, loc="outside right upper", title=title, frameon=False, alignment="left"
    )


def format_of(path: str) -> str:
    """matplotlib's format for `path` by its extension; ValueError naming those there are."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        *others, last = FORMATS
        shown = f"{', '.join(others)} or {last}"
        raise ValueError(f"`{path}` does not end in {shown}: the extension picks the format")
    return FORMATS[extension]


def save(figure: Figure, path: str, fmt: str | None = None) -> None:
    """Write `figure` at `path` in `fmt` (by default the extension's), with resdsl's settings."""
    fmt = fmt or format_of(path)
    with matplotlib.rc_context(SETTINGS):
        # A tight box: a figure whose axes were placed by hand keeps no empty margin.
        figure.savefig(path, format=fmt, dpi=DPI, metadata=METADATA[fmt], bbox_inches="tight")


def write(figure: Figure, path: str) -> None:
    """Save `figure` at `path` atomically: a failure leaves what was there (OSError)."""
    from resdsl.files import atomic_path

    fmt = format_of(path)
    with atomic_path(path) as temporary:
        save(figure, temporary, fmt)
