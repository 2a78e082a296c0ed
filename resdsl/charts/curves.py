"""Training curves: loss, error and learning rate per epoch, for one run or several overlaid.

Every run is drawn as the ResNet paper draws its networks: one colour, training dashed,
validation bold, and here the best epoch (highest validation accuracy, the one `best.pt`
keeps) starred on its validation curves. The panels:

* loss, train and val, on a log axis where it spans more than a decade;
* error (100% - accuracy), train and val, from 0;
* the learning rate of each epoch's last step (what metrics.jsonl records).

`OUT/curves.png` and `OUT/curves.svg` (:func:`write_curves`, at the end of `resdsl train`) are
one run's; `resdsl plot` overlays several runs; `resdsl compare` draws the error panel alone
(`compare.png`, the paper's Figures 1, 4 and 6).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from resdsl.charts.style import (
    BEST,
    TEST,
    TRAIN,
    colour,
    epoch_axis,
    legend_outside,
    log_where_spread,
    new_figure,
    style_key,
    styled,
    write,
)

CURVES = ("curves.png", "curves.svg")  # what write_curves writes in a run's folder
PANELS = ("loss", "error", "lr")
TITLES = {"loss": "loss", "error": "error", "lr": "learning rate"}
Y_LABELS = {"loss": "cross-entropy loss", "error": "error (%)", "lr": "learning rate"}
# What a record of a finished epoch holds (metrics.jsonl has nothing else, but a line written
# by hand or by another tool may lack some).
FIELDS = ("train_loss", "train_acc", "val_loss", "val_acc")


def _validation(record: dict) -> dict:
    """`record` with its validation figures: a run from before the validation split (whose test
    split chose the best epoch) logged them as `test_loss` and `test_acc`."""
    if "val_acc" in record or "test_acc" not in record:
        return record
    return {**record, "val_loss": record.get("test_loss"), "val_acc": record["test_acc"]}


def epoch_records(records: Sequence[dict]) -> list[dict]:
    """One record per finished epoch, in epoch order: those with an epoch and the four
    numbers; where an epoch was logged twice (a resumed run), its later record."""
    by_epoch: dict[int, dict] = {}
    for record in map(_validation, records):
        epoch = record.get("epoch")
        numbers = all(isinstance(record.get(key), (int, float)) for key in FIELDS)
        if isinstance(epoch, int) and not isinstance(epoch, bool) and numbers:
            by_epoch[epoch] = record
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def best_record(records: Sequence[dict]) -> dict:
    """The epoch of highest validation accuracy (the first of equals, as `best.pt` keeps
    it)."""
    return max(records, key=lambda record: record["val_acc"])


def value(panel: str, split: str, record: dict) -> float:
    """What `panel` shows of `split` ("train" or "val") at `record`'s epoch."""
    if panel == "error":
        return 100.0 * (1.0 - record[f"{split}_acc"])
    return record[f"{split}_loss"]


def _has_rates(runs: dict[str, list[dict]]) -> bool:
    return any(isinstance(r.get("lr"), (int, float)) for rs in runs.values() for r in rs)


def _draw_run(axes, panels: Sequence[str], name: str, records: list[dict], hue: str) -> None:
    """One run's lines on each panel's axis, in colour `hue`, and its best epoch's star."""
    epochs = [r["epoch"] for r in records]
    best = best_record(records)
    # One epoch is one point: a line needs a marker to be seen.
    dot = {"marker": "o", "markersize": 4} if len(records) == 1 else {}
    for axis, panel in zip(axes, panels, strict=True):
        if panel == "lr":
            rated = [r for r in records if isinstance(r.get("lr"), (int, float))]
            rates = [r["lr"] for r in rated]
            label = f"{name}: learning rate"
            axis.plot([r["epoch"] for r in rated], rates, color=hue, label=label, **dot)
            continue
        for split, style in (("train", TRAIN), ("val", TEST)):
            values = [value(panel, split, r) for r in records]
            axis.plot(epochs, values, color=hue, label=f"{name}: {split}", **style, **dot)
        star = value(panel, "val", best)
        axis.plot([best["epoch"]], [star], color=hue, label=f"{name}: best epoch", **BEST)


def _finish_panel(axis, panel: str) -> None:
    """A panel's title, labels and scales, once every run is drawn on it."""
    axis.set_title(TITLES[panel])
    axis.set_ylabel(Y_LABELS[panel])
    epoch_axis(axis)
    if panel == "loss":
        log_where_spread(axis, [v for line in axis.get_lines() for v in line.get_ydata()])
    else:
        axis.set_ylim(bottom=0)
    if panel == "lr":
        axis.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))


def best_words(records: list[dict]) -> str:
    """The best validation error of the run of `records` and its epoch, as the legend says
    them: "best val error 0.84% (epoch 11)"."""
    best = best_record(records)
    return f"best val error {value('error', 'val', best):.2f}% (epoch {best['epoch']})"


@styled
def curves_figure(
    runs: dict[str, list[dict]], panels: Sequence[str] = PANELS, title: str | None = None
) -> Figure:
    """The curves of `runs` (name -> :func:`epoch_records`; none empty), a panel each of
    `panels` (the learning rate's only where records have one), side by side, and the legend
    to the right of them: for several runs each run's colour with its best validation error, then
    the key to the line styles."""
    panels = [p for p in panels if p != "lr" or _has_rates(runs)]
    several = len(runs) > 1
    # A panel alone (compare.png) is the paper's figure: larger than one of three.
    width, height = (5.5, 4.0) if len(panels) == 1 else (3.5, 3.2)
    figure = new_figure(width * len(panels) + (2.4 if several else 1.5), height)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for number, (name, records) in enumerate(runs.items()):
        _draw_run(axes, panels, name, records, colour(number))
    for axis, panel in zip(axes, panels, strict=True):
        _finish_panel(axis, panel)
    key = style_key()
    if several:
        names = [
            Line2D([], [], color=colour(n), label=f"{name}: {best_words(records)}", **TEST)
            for n, (name, records) in enumerate(runs.items())
        ]
        legend_outside(figure, [*names, *key])
    else:
        key[-1].set_label(best_words(next(iter(runs.values()))))
        legend_outside(figure, key)
    if title:
        figure.suptitle(title)
    return figure


def run_title(out: str) -> str:
    """A run's title, "resnet20 on digits (torch)": its network, data and backend as
    OUT/result.json records them (OUT/run.json for a run that has not finished), else the
    folder's name."""
    for name in ("result.json", "run.json"):
        try:
            with open(os.path.join(out, name), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        options = record.get("options") if isinstance(record.get("options"), dict) else {}
        spec = os.path.basename(str(record.get("spec") or out))
        network = record.get("network") or os.path.splitext(spec)[0]
        data = record.get("data") or options.get("data")
        backend = record.get("backend")
        return f"{network}" + (f" on {data}" if data else "") + (f" ({backend})" if backend else "")
    return os.path.basename(os.path.normpath(out))


def write_curves(out: str) -> list[str]:
    """OUT/curves.png and OUT/curves.svg drawn from OUT/metrics.jsonl (each atomically); their
    paths, none without a finished epoch."""
    from resdsl.train.checkpoint import read_metrics

    records = epoch_records(read_metrics(out))
    if not records:
        return []
    title = run_title(out)
    figure = curves_figure({title: records}, title=title)
    paths = [os.path.join(out, name) for name in CURVES]
    for path in paths:
        write(figure, path)
    return paths
