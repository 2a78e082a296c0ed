"""`eval --confusion` and `--json`'s matrix: the picture is written in the format its extension
names, counts or (`--confusion-normalize`) row shares; the JSON names the matrix's classes. How
the picture is drawn is checked on its figure in tests/unit/charts/test_charts.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from train_helpers import in_process, tiny_spec

Image = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A tiny spec and the state dict of its freshly built PyTorch model."""
    torch = pytest.importorskip("torch")
    import resdsl
    from resdsl.cli.export import build_torch_model

    folder = tmp_path_factory.mktemp("confusion")
    spec = folder / "resnet8.res"
    spec.write_text(tiny_spec("1x16x16", 10))
    weights = folder / "fresh.pt"
    torch.save(build_torch_model(resdsl.load(spec)).state_dict(), weights)
    return spec, weights


def test_eval_json_names_the_classes_and_draws_them(fresh, tmp_path):
    spec, weights = fresh
    picture = tmp_path / "cm.png"
    status, stdout, stderr = in_process(
        "eval", spec, "--weights", weights, "--data", "digits", "--json", "--confusion", picture
    )
    assert status == 0, stderr
    metrics = json.loads(stdout)
    assert metrics["classes"] == [str(i) for i in range(10)]
    assert np.array(metrics["matrix"]).shape == (10, 10)
    with Image.open(picture) as image:
        assert image.format == "PNG" and min(image.size) > 300


def test_a_normalised_matrix_is_drawn_as_svg_and_a_bad_name_refused_first(fresh, tmp_path):
    spec, weights = fresh
    picture = tmp_path / "cm.svg"
    args = ["eval", spec, "--weights", weights, "--data", "digits"]
    status, _, stderr = in_process(*args, "--confusion", picture, "--confusion-normalize")
    assert status == 0, stderr
    assert "rows normalised" in picture.read_text()  # the title, as SVG text
    # Refused before any image is evaluated, in one line, nothing written.
    for wrong, words in (
        (["--confusion", tmp_path / "cm.jpg"], "does not end in .png, .svg or .pdf"),
        (["--confusion-normalize"], "give --confusion FILE too"),
    ):
        status, stdout, stderr = in_process(*args, *wrong)
        assert status == 2 and stdout == "" and stderr.count("\n") == 1, stderr
        assert words in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cm.svg"]
