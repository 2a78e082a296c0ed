"""`eval --confusion` and `--json`'s matrix: a picture sized by the class count with counts,
axis titles and class names; the JSON names the matrix's classes."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from train_helpers import in_process, tiny_spec

from resdsl.train.curves import COUNTS_UP_TO, class_labels, confusion_layout, confusion_png

Image = pytest.importorskip("PIL.Image")


def _picture(matrix, names):
    return Image.open(io.BytesIO(confusion_png(np.array(matrix), names))).convert("RGB")


def test_the_picture_has_counts_names_and_a_size_by_the_class_count():
    names = ["cat", "dog", "bird"]
    image = _picture([[50, 3, 0], [2, 40, 8], [0, 1, 77]], names)
    at = confusion_layout(names)
    assert image.size == (at.width, at.height)
    # The old picture of 3 classes was 96 px square, its 24 px cells too small for a count.
    assert at.cell == 64 and min(image.size) >= 3 * 64 + 60
    assert at.counts and at.names
    pixels = np.asarray(image)
    for row in range(3):
        for col in range(3):  # a count written in every cell: two colours in its middle
            x, y = at.left + col * at.cell, at.top + row * at.cell
            middle = pixels[y + 20 : y + at.cell - 20, x + 16 : x + at.cell - 16]
            assert len(np.unique(middle.reshape(-1, 3), axis=0)) > 2, (row, col)
    left_of_grid = pixels[at.top : at.top + 3 * at.cell, : at.left - 2]
    below_grid = pixels[at.top + 3 * at.cell + 2 :, at.left : at.left + 3 * at.cell]
    assert (left_of_grid < 128).any() and (below_grid < 128).any()  # names and titles
    # Larger for more classes, no counts past COUNTS_UP_TO, no names once cells are tiny.
    ten = confusion_layout([f"class {i}" for i in range(10)])
    assert ten.width > at.width and ten.cell == 64
    many = confusion_layout([str(i) for i in range(COUNTS_UP_TO + 1)])
    assert not many.counts and many.names
    assert not confusion_layout([str(i) for i in range(1000)]).names
    assert class_labels(["a", "b"], 3) == ["a", "b", "2"]


def test_eval_json_names_the_classes_and_draws_them(tmp_path):
    torch = pytest.importorskip("torch")
    import resdsl
    from resdsl.cli.export import build_torch_model

    spec = tmp_path / "resnet8.res"
    spec.write_text(tiny_spec("1x16x16", 10))
    weights = tmp_path / "fresh.pt"
    torch.save(build_torch_model(resdsl.load(spec)).state_dict(), weights)
    picture = tmp_path / "cm.png"
    status, stdout, stderr = in_process(
        "eval", spec, "--weights", weights, "--data", "digits", "--json", "--confusion", picture
    )
    assert status == 0, stderr
    metrics = json.loads(stdout)
    assert metrics["classes"] == [str(i) for i in range(10)]
    assert np.array(metrics["matrix"]).shape == (10, 10)
    at = confusion_layout(metrics["classes"])
    assert Image.open(picture).size == (at.width, at.height)
