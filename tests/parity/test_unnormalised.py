"""`norm none` (issue 27): networks without normalisation layers, as the unnormalised ResNets
of signal-propagation studies. torchvision's ResNet-18 built with `norm_layer=nn.Identity` is
the reference; both backends agree on every block layout; `zero_last_norm` zeroes each
branch's last convolution."""

from __future__ import annotations

import os

import numpy as np
import pytest
from torch_helpers import ROOT, SPECS, import_code

import resdsl
from resdsl.interop import weights

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

VARIANTS = {
    "basic": 'network nf extends "specs/cifar/resnet20.res" {\n  norm none\n  conv_bias on\n}\n',
    "preact": 'network nf extends "specs/preact_resnet18.res" {\n  input 3x64x64\n'
    "  norm none\n  conv_bias on\n  init kaiming(zero_last_norm: on)\n}\n",
    "se_d_bottleneck": 'network nf extends "specs/timm/seresnext26d_32x4d.res" {\n'
    "  input 3x64x64\n  norm none\n}\n",
}


def test_resnet18_without_norms_is_torchvisions_with_identity_norms():
    reference = torchvision.models.resnet18(norm_layer=lambda channels: torch.nn.Identity())
    text = 'network r18 extends "specs/resnet18.res" {\n  norm none\n}\n'
    model = import_code(resdsl.compile(text, backend="torch", base=ROOT)).build_model()
    model.load_state_dict(reference.state_dict(), strict=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(2, 3, 96, 80)
    with torch.no_grad():
        expected, actual = reference.eval()(x), model.eval()(x)
    assert torch.allclose(expected, actual, rtol=1e-5, atol=1e-6 * float(expected.abs().max()))
    network = resdsl.load(text, base=ROOT)
    assert network.params == sum(p.numel() for p in reference.parameters())
    assert network.norm_stats == 0


@pytest.mark.parametrize("name", VARIANTS)
def test_both_backends_agree_without_norms(name):
    network = resdsl.load(VARIANTS[name], base=ROOT)
    torch_model = weights.build_generated(network, "torch").build_model().eval()
    assert sum(p.numel() for p in torch_model.parameters()) == network.params
    keras_model = weights.build_generated(network, "keras").build_model()
    weights.state_dict_to_keras(torch_model.state_dict(), keras_model, weights.layer_pairs(network))
    x = torch.randn(2, network.input.channels, network.input.height, network.input.width)
    with torch.no_grad():
        expected = torch_model(x).numpy()
    got = np.asarray(keras_model(weights.to_keras_images(x), training=False))
    assert np.abs(expected - got).max() <= 1e-5 * np.abs(expected).max()


def test_zero_last_norm_zeroes_the_last_convolution_in_both_backends():
    text = VARIANTS["basic"].replace(
        "conv_bias on\n", "conv_bias on\n  init kaiming(zero_last_norm: on)\n"
    )
    network = resdsl.load(text, base=ROOT)
    model = weights.build_generated(network, "torch").build_model()
    for _, stage, position, _ in network.blocks():
        block = model.get_submodule(stage.torch_prefix(position))
        assert not block.conv2.weight.any() and block.conv1.weight.any()
    keras_model = weights.build_generated(network, "keras").build_model()
    kernel = keras_model.get_layer("layer1_block1_2_conv").kernel
    assert not np.asarray(kernel).any()
    assert np.asarray(keras_model.get_layer("layer1_block1_1_conv").kernel).any()


def test_the_library_spec_and_its_words():
    network = resdsl.load(SPECS / "cifar/resnet20_nonorm.res")
    assert network.conventions.norm == "none" and network.norm_stats == 0
    code = resdsl.compile(str(SPECS / "cifar/resnet20_nonorm.res"), backend="torch")
    assert "def norm(" not in code and "BatchNorm" not in code and "a norm after" not in code
    code = resdsl.compile(str(SPECS / "cifar/resnet20_nonorm.res"), backend="keras")
    assert "followed by a norm" not in code and "BatchNormalization" not in code
