"""`resdsl eval` and `resdsl predict`: use trained weights.

Both build the spec's PyTorch model (its classifier sized by the weights), load the weights
strictly (a `resdsl train` checkpoint, or any state dict that fits: torchvision's, timm's; or
Keras weights, `resdsl train --backend keras`'s, ported to the PyTorch model as `port-weights`
does, whose outputs are the Keras model's), and normalise images as training did: with the mean
and standard deviation a `resdsl train` checkpoint records, or those of `--data`'s training
split, which is how training computed them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import numpy as np

TOP_K = 5  # eval's second accuracy, where the data has more classes
WEIGHTS_HELP = (
    "trained weights: a PyTorch checkpoint or state dict (best.pt), or Keras weights "
    "(best.weights.h5, a Keras checkpoint folder)"
)


def _fail(message: str) -> None:
    from resdsl.interop.weight_files import refuse

    refuse(message)


def _require(command: str, data: str | None, drawing: bool = False) -> None:
    """What eval and predict import: PyTorch, NumPy, Pillow (images), scikit-learn for the
    bundled digits; matplotlib where a confusion matrix is `drawing`."""
    from resdsl.cli.extras import require

    digits = ["sklearn"] if data == "digits" else []
    require(command, "train", "torch", "numpy", "PIL", *digits, *(["matplotlib"] * drawing))


def _load(spec: str, weights: str):
    """(network, model in eval mode, the checkpoint's data record or None)."""
    from resdsl.cli._common import load_or_exit
    from resdsl.cli.export import trained_model

    network = load_or_exit(spec)
    model, record = trained_model(network, spec, weights)
    return network, model, record


def _augment(record: dict | None) -> str:
    """The augmentation training used, whose evaluation view eval and predict take: the
    checkpoint says; weights from elsewhere (torchvision's, timm's) are seen as `none` sees
    them, the image resized to the input."""
    return (record or {}).get("augment") or "none"


def _normaliser(record: dict | None, data):
    import torch

    mean = record["mean"] if record else data.mean
    std = record["std"] if record else data.std
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return lambda x: (x.float() / 255.0 - m) / s


@click.command("eval")
@click.argument("spec")
@click.option("--weights", required=True, type=click.Path(), help=WEIGHTS_HELP)
@click.option(
    "--data", required=True, help="digits | cifar10 | cifar100 | a folder: its test split"
)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="processes reading an image folder's files (0: this one)",
)
@click.option(
    "--confusion",
    type=click.Path(dir_okay=False),
    help="draw the confusion matrix to this file (.png, .svg, .pdf)",
)
@click.option(
    "--confusion-normalize",
    is_flag=True,
    help="the confusion matrix's rows as shares of each true class, not counts",
)
@click.option("--json", "as_json", is_flag=True, help="print the metrics as JSON")
def evaluate(
    spec: str,
    weights: str,
    data: str,
    batch_size: int,
    workers: int,
    confusion: str | None,
    confusion_normalize: bool,
    as_json: bool,
) -> None:
    """Evaluate trained weights on a dataset's test split: top-1 and top-5 accuracy (top-5
    only with more than 5 classes, where it says something), loss, and the confusion matrix
    (rows: true classes, columns: predicted). The data's classes must be those the weights
    record."""
    _require("eval", data, drawing=confusion is not None)
    if confusion_normalize and not confusion:
        _fail("--confusion-normalize draws the confusion matrix: give --confusion FILE too")
    if confusion:
        from resdsl.charts.style import format_of

        try:
            format_of(confusion)  # before minutes of evaluation, not after
        except ValueError as error:
            _fail(str(error))
    import numpy as np
    import torch

    from resdsl.train import data as datasets
    from resdsl.train.common import TrainError
    from resdsl.train.torch_batches import SplitImages, TestBatches, loader_of

    network, model, record = _load(spec, weights)
    shape = (network.input.channels, network.input.height, network.input.width)
    augment = _augment(record)
    try:
        loaded = datasets.load(data, shape, augment)
    except TrainError as error:
        _fail(str(error))
    classes = model.fc.out_features if hasattr(model, "fc") else loaded.num_classes
    recorded = (record or {}).get("classes") or None
    problem = class_mismatch(recorded, loaded.class_names, classes, data)
    if problem:
        _fail(problem)
    if loaded.note:
        click.echo(f"note: {loaded.note}", err=True)
    # Top-k of k classes or fewer is 100% whatever the weights: reported only below the count.
    k = TOP_K if classes > TOP_K else 1
    normalise = _normaliser(record, loaded)
    split, split_name = loaded.final()  # the test split (the validation one where none)
    test = SplitImages(split, shape, augment, training=False, seed=0)
    batches = loader_of(torch, test, TestBatches(len(test), batch_size, 1, 0), workers, False)
    matrix = np.zeros((classes, classes), dtype=np.int64)
    loss = top1 = topk = 0.0
    images = 0
    with torch.no_grad():
        try:
            for x, target in batches:
                logits = model(normalise(x))
                loss += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
                best = logits.topk(k, dim=1).indices
                top1 += float((best[:, 0] == target).sum())
                topk += float((best == target[:, None]).any(dim=1).sum())
                np.add.at(matrix, (target.numpy(), best[:, 0].numpy()), 1)
                images += len(target)
        except TrainError as error:  # an image that cannot be read
            _fail(str(error))
    total = max(images, 1)
    metrics = {
        "spec": spec,
        "weights": weights,
        "data": loaded.name,
        "split": split_name,
        "images": images,
        "top1": top1 / total,
        **({f"top{k}": topk / total} if k > 1 else {}),
        "loss": loss / total,
    }
    if confusion:
        from resdsl.charts.confusion import confusion_figure
        from resdsl.charts.style import write

        picture = confusion_figure(
            matrix, loaded.class_names, confusion_normalize, loaded.name, split_name
        )
        try:
            write(picture, confusion)
        except OSError as error:
            _fail(f"cannot write `{confusion}`: {error.strerror or error}")
        metrics["confusion"] = confusion
    if as_json:
        table = {
            "classes": datasets.class_labels(loaded.class_names, classes),
            "matrix": matrix.tolist(),
        }
        click.echo(json.dumps({**metrics, **table}, indent=2))
        return
    top_k = f", top-{k} {metrics[f'top{k}']:.2%}" if k > 1 else ""
    click.echo(
        f"{loaded.name} {split_name} split, {images:,} images: top-1 "
        f"{metrics['top1']:.2%}{top_k}, loss {metrics['loss']:.4f}"
    )
    print_confusion(matrix, datasets.class_labels(loaded.class_names, classes))


# The text confusion matrix's largest size: beyond it, eval lists the most frequent confusions
# (the whole matrix is --confusion FILE's picture, or --json's).
MAX_TEXT_CLASSES = 20
TOP_CONFUSIONS = 10
LABEL_WIDTH = 12


def _short(name: str) -> str:
    from resdsl.interop.weight_files import printable

    name = printable(str(name))
    return name if len(name) <= LABEL_WIDTH else name[: LABEL_WIDTH - 1] + "…"


def confusion_table(matrix: np.ndarray, names: list[str]):
    """The confusion matrix as a rich table (rows: true classes, columns: predicted; the
    diagonal bold) for up to MAX_TEXT_CLASSES classes; beyond, the TOP_CONFUSIONS most frequent
    (true, predicted) pairs of different classes."""
    from rich.table import Table

    if len(names) <= MAX_TEXT_CLASSES:
        table = Table(title="confusion matrix (rows: true class, columns: predicted)")
        table.add_column("true \\ predicted", style="bold")
        for name in names:
            table.add_column(_short(name), justify="right")
        for row, name in enumerate(names):
            cells = [
                f"[bold]{count}[/bold]" if column == row else (str(count) if count else ".")
                for column, count in enumerate(matrix[row].tolist())
            ]
            table.add_row(_short(name), *cells)
        return table
    off = matrix.copy()
    off[range(len(names)), range(len(names))] = 0
    order = sorted(
        ((int(off[t, p]), t, p) for t, p in zip(*off.nonzero(), strict=True)),
        key=lambda e: (-e[0], e[1], e[2]),
    )[:TOP_CONFUSIONS]
    table = Table(
        title=f"the {len(order)} most frequent confusions of {len(names)} classes "
        "(the whole matrix: --json or --confusion FILE)"
    )
    for heading in ("true class", "predicted", "images", "of the class"):
        table.add_column(
            heading, justify="right" if heading in ("images", "of the class") else "left"
        )
    totals = matrix.sum(axis=1)
    for count, true, predicted in order:
        share = f"{count / totals[true]:.1%}" if totals[true] else "-"
        table.add_row(_short(names[true]), _short(names[predicted]), str(count), share)
    return table


def print_confusion(matrix: np.ndarray, names: list[str]) -> None:
    """:func:`confusion_table` on stdout, as wide as it needs (no wrapping in a log file)."""
    import shutil
    import sys

    from rich.console import Console

    tty = sys.stdout.isatty()
    width = shutil.get_terminal_size().columns if tty else 10_000
    console = Console(file=sys.stdout, width=width, color_system="auto" if tty else None)
    console.print(confusion_table(matrix, names), crop=False)


def class_mismatch(
    recorded: list[str] | None, names: list[str], outputs: int, data: str
) -> str | None:
    """Why the data's classes are not those of the weights, or None: the class names the
    weights record (another set, another order, another count: both are listed), or without
    names, more classes in the data than the weights have outputs."""

    def listed(values) -> str:
        shown = ", ".join(map(str, values[:20]))
        return shown + (f", ... ({len(values)} in all)" if len(values) > 20 else "")

    if recorded is not None and list(map(str, recorded)) != list(map(str, names)):
        if sorted(map(str, recorded)) == sorted(map(str, names)):
            return (
                f"`{data}` has the classes the weights were trained on, in another order: "
                f"the weights' are {listed(recorded)}; the data's {listed(names)}"
            )
        return (
            f"`{data}` has other classes than the weights were trained on: the weights' "
            f"{len(recorded)} are {listed(recorded)}; the data's {len(names)} are {listed(names)}"
        )
    if recorded is None and len(names) > outputs:
        return (
            f"`{data}` has {len(names)} classes ({listed(names)}); the weights have "
            f"{outputs} outputs and record no class names"
        )
    return None


@click.command("predict")
@click.argument("spec")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--weights", required=True, type=click.Path(), help=WEIGHTS_HELP)
@click.option(
    "--data",
    help="the training data, for class names and normalisation where the checkpoint has none",
)
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print the predictions as JSON")
def predict(
    spec: str, images: tuple[str, ...], weights: str, data: str | None, top: int, as_json: bool
) -> None:
    """The top classes of each image, with their probabilities and the data's class names."""
    _require("predict", data)
    import numpy as np
    import torch

    from resdsl.train import data as datasets
    from resdsl.train.common import TrainError

    network, model, record = _load(spec, weights)
    shape = (network.input.channels, network.input.height, network.input.width)
    loaded = None
    if data is not None:
        try:
            loaded = datasets.load(data, shape, _augment(record))
        except TrainError as error:
            _fail(str(error))
    if record is None and loaded is None:
        _fail(f"`{weights}` records no normalisation or class names: give --data")
    names = record.get("classes") if record else None
    names = names or (loaded.class_names if loaded else [])
    normalise = _normaliser(record, loaded)
    batch = np.stack([_read_image(path, shape, _augment(record)) for path in images])
    with torch.no_grad():
        probabilities = torch.softmax(model(normalise(torch.from_numpy(batch))), dim=1)
    k = min(top, probabilities.shape[1])
    values, indices = probabilities.topk(k, dim=1)
    results = []
    for path, vs, ix in zip(images, values.tolist(), indices.tolist(), strict=True):
        ranked = [
            {"class": names[i] if i < len(names) else str(i), "index": i, "probability": v}
            for v, i in zip(vs, ix, strict=True)
        ]
        results.append({"image": path, "top": ranked})
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    from resdsl.diagnostics.core import printable

    for result in results:  # class names come from the checkpoint: shown, never obeyed
        best = ", ".join(f"{r['class']} {r['probability']:.1%}" for r in result["top"])
        click.echo(printable(f"{result['image']}: {best}"))


def _read_image(path: str, shape, augment: str) -> np.ndarray:
    """An image file as uint8 (C, H, W) at the network's size: any mode (grayscale, RGBA,
    palette, 16-bit) converted to its channels, seen as training's evaluation saw images."""
    from resdsl.train.transforms import UnreadableImage, eval_view, read_image, to_array

    channels, height, width = shape
    try:
        image = read_image(path, channels)
    except UnreadableImage as error:
        _fail(str(error))
    return to_array(eval_view(image, (height, width), augment), channels)
