"""Plain networks (`shortcut none`): the ResNet paper's baselines, its residual networks' layers
without the shortcuts.

No library ships them, so the reference is torchvision's ResNet-18 and -34 with their
projections removed and each BasicBlock run without its addition (the paper's plain-18/34,
Table 1); the CIFAR plain nets are held to their residual counterparts' layers, and the
Keras model to the PyTorch one.
"""

from __future__ import annotations

import contextlib
import os
import types

import pytest
from torch_helpers import SPECS, generated, randomise_norms

# torchvision (through triton) segfaults when imported after TensorFlow in one process.
with contextlib.suppress(ImportError):
    import torchvision

import resdsl
from resdsl.cli.graph import to_dot
from resdsl.driver import analyze_text
from resdsl.interop import weights

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
torch = pytest.importorskip("torch")

# Each plain net and the residual net whose layers it has: option A, whose shortcuts hold no
# weights, as the paper's comparison (Table 2).
PAIRS = [
    ("cifar/plain20", "cifar/resnet20"),
    ("cifar/plain32", "cifar/resnet32"),
    ("cifar/plain44", "cifar/resnet44"),
    ("cifar/plain56", "cifar/resnet56"),
    ("cifar/plain110", "cifar/resnet110"),
    ("plain18", "resnet18a"),
    ("plain34", "resnet34a"),
]


def _load(name: str):
    return resdsl.load(SPECS / f"{name}.res")


@pytest.mark.parametrize(("plain", "residual"), PAIRS)
def test_a_plain_net_has_its_residual_nets_layers(plain, residual):
    a, b = _load(plain), _load(residual)
    assert (a.params, a.macs, a.total_blocks) == (b.params, b.macs, b.total_blocks)
    assert weights.state_dict_layout(a) == weights.state_dict_layout(b)
    assert {block.shortcut.kind for *_, block in a.blocks()} == {"none"}
    assert {block.shortcut.kind for *_, block in b.blocks()} >= {"pad"}


def _plain_forward(self, x):
    """torchvision's BasicBlock.forward without the addition."""
    out = self.relu(self.bn1(self.conv1(x)))
    return self.relu(self.bn2(self.conv2(out)))


@pytest.mark.parametrize("name", ["resnet18", "resnet34"])
def test_plain_imagenet_nets_match_torchvision_without_shortcuts(name):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)()
    for stage in (reference.layer1, reference.layer2, reference.layer3, reference.layer4):
        for block in stage:
            block.downsample = None
            block.forward = types.MethodType(_plain_forward, block)
    randomise_norms(reference)
    reference.eval()
    plain = name.replace("resnet", "plain")
    model = generated(SPECS / f"{plain}.res").build_model()
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    x = torch.randn(2, 3, 67, 51)
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    assert (actual - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_plain_code_adds_nothing():
    path = SPECS / "cifar/plain20.res"
    torch_code = resdsl.compile(path, backend="torch")
    keras_code = resdsl.compile(path, backend="keras")
    assert "class PlainBasicBlock" in torch_code and "downsample" not in torch_code
    assert " + " not in torch_code.split("class PlainBasicBlock")[1].split("def make_stage")[0]
    assert "def plain_basic_block" in keras_code and "layers.Add" not in keras_code
    # The residual counterpart adds, in both.
    assert "layers.Add" in resdsl.compile(SPECS / "cifar/resnet20.res", backend="keras")
    # No shortcut edge and no addition node in the graph.
    dot = to_dot(_load("cifar/plain20"), blocks=True)
    assert ".add" not in dot and 'style="dashed"' not in dot
    assert 'style="dashed"' in to_dot(_load("cifar/resnet20"), blocks=True)


def test_plain_torch_and_keras_agree():
    import keras
    import numpy as np

    network = _load("cifar/plain20")
    torch.manual_seed(0)
    torch_model = weights.build_generated(network, "torch").build_model().eval()
    randomise_norms(torch_model)
    keras_model = weights.build_generated(network, "keras").build_model()
    weights.torch_to_keras(torch_model, keras_model, network)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = torch_model(x).numpy()
    got = keras.ops.convert_to_numpy(keras_model(weights.to_keras_images(x), training=False))
    assert np.abs(expected - got).max() <= 1e-4 * np.abs(expected).max()


PLAIN = """network p {
  input 3x32x32
  classes 10
  stem cifar
  block basic
  shortcut none
  stage a: 2 x 16
  stage b: 2 x 32 / 2
}
"""


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (("  stage a", "  stochastic_depth 0.1\n  stage a"), "E304"),
        (("  stage a", "  init kaiming(zero_last_norm: on)\n  stage a"), "E305"),
        (("32 / 2\n", "32 / 2 { shortcut B }\n"), "E306"),
        (("shortcut none", "shortcut B"), None),
    ],
)
def test_what_a_plain_network_refuses(change, code):
    result = analyze_text(PLAIN.replace(*change), "p.res")
    codes = {d.code for d in result.diagnostics}
    assert codes == ({code} if code else set())


def test_a_plain_network_is_valid_where_shapes_change():
    """With nothing to match, a plain block may change width and size anywhere (an identity
    shortcut there is E301)."""
    text = PLAIN.replace("2 x 32 / 2", "2 x 24 / 2 { waive halve_double }")
    assert analyze_text(text, "p.res").ok
    identity = text.replace("shortcut none", "shortcut identity")
    assert "E301" in {d.code for d in analyze_text(identity, "p.res").diagnostics}
