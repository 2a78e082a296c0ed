"""`resdsl summary --signal --png FILE`: Brock et al.'s signal-propagation plots (2021), the four
statistics of :mod:`resdsl.tooling.signal` against depth, a panel each, one line per network in
the colours every resdsl chart gives networks."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from resdsl.charts.style import TEST, colour, legend_outside, log_where_spread, new_figure, styled

# The statistics of a BlockSignal, in the paper's order, and each panel's title.
STATISTICS = (
    ("squared_mean", "average channel squared mean"),
    ("variance", "average channel variance"),
    ("branch_variance", "residual branch variance"),
    ("grad_norm", "input-gradient norm"),
)


@styled
def signal_figure(runs: dict) -> Figure:
    """The four statistics of `runs` (network name -> its BlockSignal rows) against the block's
    depth: a log axis where a panel's values span more than a decade, otherwise one a little
    wider than its values (a batch-normed branch's variance of 1 is a flat line, not noise)."""
    figure = new_figure(15.5, 3.6)
    axes = figure.subplots(1, len(STATISTICS))
    handles = []
    for number, (name, rows) in enumerate(runs.items()):
        depth = range(1, len(rows) + 1)
        for axis, (field, _) in zip(axes, STATISTICS, strict=True):
            axis.plot(depth, [getattr(r, field) for r in rows], color=colour(number),
                      linewidth=1.6, label=name)  # fmt: skip
        handles.append(Line2D([], [], color=colour(number), label=name, **TEST))
    for axis, (_, title) in zip(axes, STATISTICS, strict=True):
        axis.set_title(title)
        axis.set_xlabel("block")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        column = [v for line in axis.get_lines() for v in line.get_ydata()]
        if not log_where_spread(axis, column):
            low, high = min(column, default=0.0), max(column, default=1.0)
            pad = max(0.05 * (high - low), 0.05 * abs(high), 1e-3)
            axis.set_ylim(low - pad, high + pad)
    legend_outside(figure, handles)
    return figure
