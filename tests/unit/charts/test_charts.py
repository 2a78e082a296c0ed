"""Issue 33: every chart drawn with matplotlib, in one style. The charts are checked through
their figure objects before anything is saved (titles, axis labels, ticks, scales, the lines and
their styles, the legend outside every axis), then written once each as PNG, SVG and PDF and
opened. No pixel is compared."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

pytest.importorskip("matplotlib")
Image = pytest.importorskip("PIL.Image")

from resdsl.charts import style  # noqa: E402
from resdsl.charts.confusion import (  # noqa: E402
    COUNTS_UP_TO,
    GRID_INCHES,
    NAMES_UP_TO,
    confusion_figure,
    confusion_layout,
    rates,
)
from resdsl.charts.curves import (  # noqa: E402
    CURVES,
    curves_figure,
    epoch_records,
    run_title,
    write_curves,
)
from resdsl.charts.signal import STATISTICS, signal_figure  # noqa: E402


def metrics(epochs: int = 12, first_loss: float = 2.3, last_loss: float = 0.01, best=None):
    """metrics.jsonl's records of a run that learns: the loss falls geometrically from
    `first_loss` to `last_loss`, the accuracy rises to 99% (highest at epoch `best`, when
    given), the learning rate follows a cosine."""
    records = []
    for epoch in range(1, epochs + 1):
        done = (epoch - 1) / max(epochs - 1, 1)
        loss = first_loss * (last_loss / first_loss) ** done
        accuracy = 0.1 + 0.89 * done
        if best is not None:
            accuracy = 0.99 if epoch == best else min(accuracy, 0.95)
        records.append(
            {
                "epoch": epoch,
                "epochs": epochs,
                "train_loss": 0.8 * loss,
                "train_acc": min(1.0, accuracy + 0.005),
                "val_loss": loss,
                "val_acc": accuracy,
                "lr": 0.05 * (1 + math.cos(math.pi * epoch / epochs)),
                "step": 23 * epoch,
            }
        )
    return records


def drawn(figure):
    """`figure` drawn on its canvas (what saving does), and the renderer that drew it."""
    figure.canvas.draw()
    return figure.canvas.get_renderer()


def assert_legend_outside(figure) -> list[str]:
    """The figure's one legend covers none of its axes; the legend's texts."""
    renderer = drawn(figure)
    (legend,) = figure.legends
    box = legend.get_window_extent(renderer)
    figure_box = figure.bbox
    assert box.x0 >= figure_box.x0 - 1 and box.x1 <= figure_box.x1 + 1  # shown, not cut off
    for axis in figure.axes:
        assert not box.overlaps(axis.get_window_extent(renderer)), axis.get_title()
    return [text.get_text() for text in legend.get_texts()]


def visible_ticks(axis, which: str = "x") -> list[float]:
    low, high = sorted(axis.get_xlim() if which == "x" else axis.get_ylim())
    ticks = axis.get_xticks() if which == "x" else axis.get_yticks()
    return [t for t in ticks if low <= t <= high]


# --------------------------------------------------------------------------- training curves


def test_one_runs_curves_have_three_panels_real_ticks_and_the_best_epoch_starred():
    records = metrics(12, best=9)
    figure = curves_figure({"resnet20": records}, title="resnet20 on digits (torch)")
    loss, error, rate = figure.axes
    assert [a.get_title() for a in figure.axes] == ["loss", "error", "learning rate"]
    assert [a.get_ylabel() for a in figure.axes] == [
        "cross-entropy loss",
        "error (%)",
        "learning rate",
    ]
    assert figure.get_suptitle() == "resnet20 on digits (torch)"
    labels = assert_legend_outside(figure)
    assert labels == ["train", "val", "best val error 1.00% (epoch 9)"]
    for axis in figure.axes:
        assert axis.get_xlabel() == "epoch"
        epochs = visible_ticks(axis)
        # Real ticks: more than the ends, every one a whole epoch.
        assert 4 <= len(epochs) <= 13 and all(float(t).is_integer() for t in epochs)
        assert len(visible_ticks(axis, "y")) >= 3
        assert axis.xaxis.get_gridlines()[0].get_visible()  # the light grid
    # The loss falls from 2.3 to 0.01, more than a decade: a log axis; the error is linear.
    assert [a.get_yscale() for a in figure.axes] == ["log", "linear", "linear"]
    assert error.get_ylim()[0] == 0
    for axis in (loss, error):
        train, test, star = axis.get_lines()
        assert (train.get_linestyle(), test.get_linestyle()) == ("--", "-")
        assert test.get_linewidth() > train.get_linewidth()
        assert train.get_color() == test.get_color() == star.get_color()
        assert len(train.get_xdata()) == len(test.get_xdata()) == 12
        assert star.get_marker() == "*" and star.get_linestyle() == "None"
        assert list(star.get_xdata()) == [9]
    assert error.get_lines()[2].get_ydata()[0] == pytest.approx(1.0)  # 100% - 99%
    (lr,) = rate.get_lines()
    assert list(lr.get_ydata()) == [r["lr"] for r in records]


def test_a_loss_within_a_decade_keeps_a_linear_axis_and_one_epoch_is_a_point():
    figure = curves_figure({"run": metrics(6, first_loss=0.9, last_loss=0.2)})
    assert figure.axes[0].get_yscale() == "linear"
    assert figure.get_suptitle() == ""
    single = curves_figure({"run": metrics(1)})
    train, test, _ = single.axes[0].get_lines()
    assert train.get_marker() == test.get_marker() == "o"


def test_several_runs_overlay_as_the_paper_draws_them():
    runs = {"plain20": metrics(8, best=5), "resnet20": metrics(10, best=7)}
    figure = curves_figure(runs)
    labels = assert_legend_outside(figure)
    assert labels == [
        "plain20: best val error 1.00% (epoch 5)",
        "resnet20: best val error 1.00% (epoch 7)",
        "train",
        "val",
        "best epoch",
    ]
    _, error, rate = figure.axes
    lines = error.get_lines()
    assert [line.get_label() for line in lines] == [
        "plain20: train",
        "plain20: val",
        "plain20: best epoch",
        "resnet20: train",
        "resnet20: val",
        "resnet20: best epoch",
    ]
    colours = [line.get_color() for line in lines]
    assert colours[:3] == [style.PALETTE[0]] * 3 and colours[3:] == [style.PALETTE[1]] * 3
    assert [line.get_linestyle() for line in lines[::3]] == ["--", "--"]
    assert len(rate.get_lines()) == 2
    # The legend's key is grey: the colours are the networks'.
    key = figure.legends[0].legend_handles[2:4]
    assert [h.get_color() for h in key] == [style.KEY_COLOUR] * 2


def test_compare_draws_the_error_panel_alone_and_no_rate_means_no_rate_panel():
    runs = {"a": metrics(5), "b": metrics(5)}
    (axis,) = curves_figure(runs, panels=("error",)).axes
    assert axis.get_title() == "error" and len(axis.get_lines()) == 6
    without = {"a": [{k: v for k, v in r.items() if k != "lr"} for r in metrics(5)]}
    assert [a.get_title() for a in curves_figure(without).axes] == ["loss", "error"]


def test_epoch_records_keep_each_finished_epoch_once_in_order():
    first, second, third = metrics(3)
    resumed = {**second, "val_acc": 0.5}
    records = [
        first,
        second,
        {"epoch": 3, "partial": True},  # no test figures: not a finished epoch
        resumed,  # a resumed run logged epoch 2 again: the later record counts
        {"note": "foreign"},
        {**third, "epoch": True},  # a boolean is no epoch
        third,
    ]
    assert epoch_records(records) == [first, resumed, third]
    assert epoch_records([]) == []
    # A run from before the validation split logged its held-out figures as test_*.
    old = {k.replace("val_", "test_"): v for k, v in first.items()}
    assert epoch_records([old]) == [
        {**old, "val_loss": first["val_loss"], "val_acc": first["val_acc"]}
    ]


def test_write_curves_writes_a_png_and_an_svg_titled_by_the_run(tmp_path):
    assert write_curves(str(tmp_path)) == []  # no metrics: nothing drawn
    with open(tmp_path / "metrics.jsonl", "w") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in metrics(4))
    assert run_title(str(tmp_path)) == tmp_path.name
    (tmp_path / "run.json").write_text(json.dumps({"spec": "specs/r.res", "backend": "keras"}))
    assert run_title(str(tmp_path)) == "r (keras)"
    result = {"network": "resnet8", "data": "digits", "backend": "torch"}
    (tmp_path / "result.json").write_text(json.dumps(result))
    assert run_title(str(tmp_path)) == "resnet8 on digits (torch)"
    paths = write_curves(str(tmp_path))
    assert paths == [str(tmp_path / name) for name in CURVES]
    with Image.open(tmp_path / "curves.png") as picture:
        picture.load()
        assert picture.format == "PNG" and picture.size[0] > 2 * picture.size[1]
    root = ElementTree.parse(tmp_path / "curves.svg").getroot()
    assert root.tag.endswith("svg")
    assert "resnet8 on digits (torch)" in (tmp_path / "curves.svg").read_text()


# --------------------------------------------------------------------------- confusion matrix


def test_a_confusion_matrix_has_counts_names_a_colour_bar_and_its_top1():
    matrix = np.array([[50, 3, 0], [2, 40, 8], [0, 1, 77]])
    figure = confusion_figure(matrix, ["cat", "dog", "bird"], data="pets", split="test")
    grid, bar = figure.axes
    assert grid.get_title() == "pets test split: top-1 92.27%"  # 167 of 181 on the diagonal
    assert (grid.get_xlabel(), grid.get_ylabel()) == ("predicted class", "true class")
    drawn(figure)
    for labels in (grid.get_xticklabels(), grid.get_yticklabels()):
        assert [t.get_text() for t in labels] == ["cat", "dog", "bird"]
    assert grid.get_xticklabels()[0].get_rotation() == 0  # short names stay level
    assert bar.get_ylabel() == "images" and bar.get_ylim() == (0, 77)
    numbers = [t.get_text() for t in grid.texts]
    assert numbers == [str(v) for v in matrix.ravel()]
    colours = {t.get_text(): t.get_color() for t in grid.texts}
    assert (colours["77"], colours["0"]) == ("white", "black")  # legible on dark and light


def test_a_normalised_matrix_shows_each_rows_shares():
    matrix = np.array([[8, 2], [0, 0]])  # the second class has no images: a row of zeros
    assert rates(matrix).tolist() == [[0.8, 0.2], [0.0, 0.0]]
    figure = confusion_figure(matrix, ["a"], normalize=True)
    grid, bar = figure.axes
    assert grid.get_title() == "top-1 80.00%, rows normalised"
    assert [t.get_text() for t in grid.texts] == ["0.80", "0.20", "0.00", "0.00"]
    assert bar.get_ylabel() == "share of the true class's images" and bar.get_ylim() == (0, 1)
    drawn(figure)
    assert [t.get_text() for t in grid.get_yticklabels()] == ["a", "1"]  # unnamed: the index


def test_long_names_tilt_and_many_classes_drop_the_cell_numbers():
    names = [f"a rather long class name {i}" for i in range(COUNTS_UP_TO)]
    figure = confusion_figure(np.eye(COUNTS_UP_TO, dtype=int) * 5, names)
    grid = figure.axes[0]
    drawn(figure)
    label = grid.get_xticklabels()[0]
    assert label.get_rotation() == 45 and label.get_text() == "a rather long cla..."
    assert len(grid.texts) == COUNTS_UP_TO**2
    many = COUNTS_UP_TO + 1
    grid = confusion_figure(np.eye(many, dtype=int), [f"class {i}" for i in range(many)]).axes[0]
    assert len(grid.texts) == 0
    assert grid.get_xticklabels()[0].get_rotation() == 90


@pytest.mark.parametrize("classes", [NAMES_UP_TO, 2 * NAMES_UP_TO + 1])
def test_up_to_a_hundred_classes_every_name_is_shown_and_none_overlaps(classes):
    names = [f"n{i:05d} tabby" for i in range(classes)]
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 3, (classes, classes)) + np.diag(rng.integers(10, 50, classes))
    figure = confusion_figure(matrix, names)
    grid = figure.axes[0]
    renderer = drawn(figure)
    shown = [t for t in grid.get_yticklabels() if t.get_text()]
    assert len(shown) == (classes if classes <= NAMES_UP_TO else math.ceil(classes / 3))
    assert min(t.get_fontsize() for t in shown) >= 5
    boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: b.y0)
    assert all(low.y1 <= high.y0 + 0.5 for low, high in itertools.pairwise(boxes))


def test_the_picture_stops_growing_past_a_hundred_classes():
    imagenet = confusion_layout([f"n{i:08d}" for i in range(1000)])
    assert imagenet.grid == GRID_INCHES[1] and imagenet.step == 10 and imagenet.name_size >= 5
    assert confusion_layout(["a", "b"]).grid == GRID_INCHES[0]


# --------------------------------------------------------------------------- signal propagation


def test_the_signal_figure_has_a_panel_a_statistic_and_a_line_a_network():
    from resdsl.tooling.signal import BlockSignal

    def rows(growth: float) -> list[BlockSignal]:
        return [
            BlockSignal(f"layer1.{i}", "16x32x32", 0.1 * i, growth**i, 1.0, 1 / growth**i)
            for i in range(1, 10)
        ]

    figure = signal_figure({"plain20": rows(3.0), "resnet20": rows(1.1)})
    assert [a.get_title() for a in figure.axes] == [title for _, title in STATISTICS]
    assert assert_legend_outside(figure) == ["plain20", "resnet20"]
    _, variance, branch, gradient = figure.axes
    assert (variance.get_yscale(), gradient.get_yscale()) == ("log", "log")  # 3^9 apart
    assert branch.get_yscale() == "linear"
    low, high = branch.get_ylim()
    assert low < 1 < high and high - low < 0.2  # flat at 1, shown as flat
    for axis in figure.axes:
        assert axis.get_xlabel() == "block" and len(axis.get_lines()) == 2
        assert [line.get_color() for line in axis.get_lines()] == list(style.PALETTE[:2])


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("extension", [".png", ".svg", ".pdf", ".PNG"])
def test_every_chart_is_written_in_the_format_its_extension_names(tmp_path, extension):
    path = str(tmp_path / f"chart{extension}")
    style.write(confusion_figure(np.eye(3, dtype=int), ["a", "b", "c"]), path)
    with open(path, "rb") as handle:
        data = handle.read()
    if extension.lower() == ".png":
        with Image.open(path) as picture:
            picture.load()
            assert picture.format == "PNG"
    elif extension == ".svg":
        assert ElementTree.fromstring(data).tag.endswith("svg")
    else:
        assert data.startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir()] == [f"chart{extension}"]  # no temporary left


def test_a_chart_is_the_same_bytes_each_time_and_other_extensions_are_refused(tmp_path):
    for name in ("a.svg", "b.svg", "a.pdf", "b.pdf"):
        style.write(curves_figure({"run": metrics(3)}), str(tmp_path / name))
    figure = curves_figure({"run": metrics(3)})
    assert (tmp_path / "a.svg").read_bytes() == (tmp_path / "b.svg").read_bytes()
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
    with pytest.raises(ValueError, match=r"`x\.jpg` does not end in \.png, \.svg or \.pdf"):
        style.format_of("x.jpg")
    with pytest.raises(ValueError):
        style.write(figure, str(tmp_path / "noextension"))
    assert not (tmp_path / "noextension").exists()


def test_drawing_never_imports_pyplot_nor_opens_a_window(tmp_path):
    """A GUI backend would open windows, and pyplot keeps every figure alive until closed."""
    script = """
import sys
from resdsl.charts.curves import curves_figure
from resdsl.charts.style import save
records = [{"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5, "val_loss": 1.0 / e,
            "val_acc": 0.5, "lr": 0.1} for e in (1, 2, 3)]
figure = curves_figure({"run": records})
save(figure, sys.argv[1])
print(type(figure.canvas).__name__, "matplotlib.pyplot" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "chart.png")],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "TkAgg"},  # a GUI backend asked for, and not used
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["FigureCanvasAgg", "False"]
