"""timm's `output_stride`: every network of timm's ResNet registry at output stride 8 and 16,
written as a spec (tests/support/output_stride.py: the library spec extended, its last stages
dilated in place of their strides), against `timm.create_model(name, output_stride=...)`.

Each must check and compute timm's function in both backends, with timm's state dict loaded
strictly. `make test` runs one network per case; `make conformance` runs the whole registry.
"""

from __future__ import annotations

import contextlib
import os

import pytest
from output_stride import dilated_text
from torch_helpers import SPECS, import_code, trained_norms

# torchvision (through triton) segfaults when imported after TensorFlow in one process.
with contextlib.suppress(ImportError):
    import torchvision  # noqa: F401

import resdsl
from resdsl.interop import weights

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

TIMM = SPECS / "timm"
STRIDES = (8, 16)
# One network per case in `make test`: ResNet-D's shortcut pool where a stage dilates (a 2x2
# average at stride 1, padded after: timm's AvgPool2dSame), with grouped squeeze-excited
# blocks; basic blocks, whose second 3x3 takes the stage's dilation where the first keeps the
# stage before's; a blur at stride 1 where a stage starts to dilate (timm's `use_aa`), in
# basic blocks and in bottlenecks; average-pool anti-aliasing there (a 1x1 average).
REPRESENTATIVE = {
    ("resnet50d", 8),
    ("seresnext26d_32x4d", 16),
    ("resnet18d", 8),
    ("resnetblur18", 16),
    ("resnetblur50", 8),
    ("resnetaa34d", 8),
}


def _cases() -> list:
    names = [n for n in timm.list_models(module="resnet") if not n.endswith("_pruned")]
    return [
        pytest.param(
            name,
            stride,
            id=f"{name}-os{stride}",
            marks=() if (name, stride) in REPRESENTATIVE else pytest.mark.conformance,
        )
        for name in names
        for stride in STRIDES
    ]


def _size(network) -> tuple[int, int]:
    """Odd and not square, except for average-pool anti-aliasing, which timm's own networks
    take only at even sizes (its 2x2 pool rounds down where the shortcut's rounds up)."""
    if any(block.anti_alias == "avg" for *_, block in network.blocks()):
        return (64, 96)
    return (67, 51)


def _reference(name: str, stride: int, size: tuple[int, int]):
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, output_stride=stride)
    trained_norms(model, size)
    return model.eval()


def _error(expected, actual) -> float:
    return float((expected - actual).abs().max() / expected.abs().max())


@pytest.mark.parametrize(("name", "stride"), _cases())
def test_torch_matches_timm_at_output_stride(name, stride):
    text = dilated_text(TIMM / f"{name}.res", stride)
    result = resdsl.analyze(text, base=TIMM)
    assert result.ok, [str(d) for d in result.diagnostics]
    network = result.network
    reference = _reference(name, stride, _size(network))
    module = import_code(resdsl.compile(text, backend="torch", base=TIMM))
    model = module.build_model()
    model.load_state_dict(reference.state_dict(), strict=True)
    model.eval()
    x = torch.randn(2, 3, *_size(network))
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    assert _error(expected, actual) <= 1e-5
    # The IR's output stride is timm's: its feature map is the input over `stride`.
    assert network.stages[-1].out_shape.height == -(-network.input.height // stride)


@pytest.mark.parametrize(("name", "stride"), _cases())
def test_keras_matches_timm_at_output_stride(name, stride):
    import keras
    import numpy as np

    text = dilated_text(TIMM / f"{name}.res", stride)
    network = resdsl.load(text, base=TIMM)
    height, width = _size(network)
    reference = _reference(name, stride, (height, width))
    keras_model = weights.build_generated(network, "keras").build_model(
        input_shape=(height, width, network.input.channels)
    )
    weights.state_dict_to_keras(reference.state_dict(), keras_model, weights.layer_pairs(network))
    x = torch.randn(2, 3, height, width)
    with torch.no_grad():
        expected = reference(x)
    got = keras.ops.convert_to_numpy(keras_model(weights.to_keras_images(x), training=False))
    assert _error(expected, torch.from_numpy(np.asarray(got))) <= 1e-4
