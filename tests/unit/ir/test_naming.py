"""State-dict layouts are data (resdsl.ir.naming): a scheme with other names gives a network
whose every layer, in both generated models, has the scheme's names, and weights still port
between them, so elaboration, the backends and weight porting read the one table."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import torch
from torch_helpers import randomise_norms

from resdsl.driver import analyze_file
from resdsl.elaboration.elaborate import elaborate
from resdsl.interop import weights
from resdsl.ir import naming
from resdsl.ir.naming import NAMINGS, RESNET

# Every PyTorch and Keras name of resnet.py's scheme, renamed.
RENAMED = replace(
    RESNET,
    name="renamed",
    roles={
        **RESNET.roles,
        "block.conv": ("c{n}", "c{n}_conv"),  # Keras convolutions end in `_conv`
        "block.norm": ("n{n}", "{n}_n"),
        "shortcut": ("skip.{i}", "skip_{part}"),
        # (channel attention keeps timm's inner names `fc1`, `fc2`: the generated helper
        # classes name their own children)
        "stem.norm": ("stem_norm", "stem_norm"),
        "head.classifier": ("classifier", "logits"),
        "stem.conv": ("stem_conv", "stem_conv"),
    },
)


@pytest.fixture
def renamed(monkeypatch):
    monkeypatch.setitem(NAMINGS, "renamed", RENAMED)
    return RENAMED


@pytest.mark.parametrize("spec", ["specs/timm/seresnet18.res"])  # stem, blocks, SE, shortcuts, head
def test_another_naming_renames_both_models_and_ports(renamed, spec):
    result = analyze_file(spec)
    assert result.ok, result.diagnostics
    network = elaborate(result.spec.model_copy(update={"naming": "renamed"}), "")
    torch_model = weights.build_generated(network, "torch").build_model().eval()
    keys = set(torch_model.state_dict())
    assert "classifier.weight" in keys and "stem_conv.weight" in keys
    assert "layer1.0.c1.weight" in keys and "layer1.0.n1.running_var" in keys
    assert "layer2.0.skip.0.weight" in keys
    assert not any(k.endswith(("conv1.weight", "bn1.weight", "fc.weight")) for k in keys)
    assert keys == set(weights.state_dict_shapes(network))
    keras_model = weights.build_generated(network, "keras").build_model(input_shape=(64, 64, 3))
    names = {layer.name for layer in keras_model.layers}
    assert {"logits", "stem_conv", "layer1_block1_c1_conv", "layer2_block1_skip_conv"} <= names
    torch.manual_seed(0)
    randomise_norms(torch_model)
    weights.torch_to_keras(torch_model, keras_model, network)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = torch_model(x).numpy()
    got = np.asarray(keras_model(weights.to_keras_images(x), training=False))
    assert np.abs(expected - got).max() <= 1e-4 * max(1.0, np.abs(expected).max())


def test_the_setting_names_the_scheme(tmp_path):
    """`naming` is a setting of its own; a scheme that does not exist is a located error."""
    from resdsl.driver import analyze_text

    text = (tmp_path / "x.res").as_posix()
    ok = analyze_text("network n {\n  input 3x32x32\n  classes 2\n  block basic\n  naming resnet\n"
                      "  stage a: 1 x 16\n}\n", text)  # fmt: skip
    assert ok.ok and ok.network.stages[0].block_names == naming.RESNET.roles["block"]
    bad = analyze_text("network n {\n  input 3x32x32\n  classes 2\n  block basic\n  naming rsnet\n"
                       "  stage a: 1 x 16\n}\n", text)  # fmt: skip
    assert not bad.ok
    (diagnostic,) = bad.diagnostics
    assert "resnet" in (diagnostic.help or "") and diagnostic.span.line == 5
