"""ResNeXt's aggregated transformations as paths (`block aggregated`, a composite layer that
merges by "sum": Xie et al., 2017, Fig. 3a) against torchvision's ResNeXt-50 32x4d, the grouped
form (Fig. 3c) that the paper shows computes the same.

torchvision's weights are cut into the 32 paths: path k's first 1x1 is rows 4k..4k+3 of
`conv1` (and its norm those channels of `bn1`), its 3x3 the k-th group of `conv2`, its last 1x1
columns 4k..4k+3 of `conv3`; the sum of the paths' last 1x1s is `conv3` whole, and `bn3`
follows the sum. Both backends must then give torchvision's outputs.
"""

from __future__ import annotations

import os

import pytest
import torch
from torch_helpers import generated_torch, randomise_norms

import resdsl
from resdsl.interop import weights

SPEC = """# ResNeXt-50 32x4d with its 3x3s as 32 paths (Xie et al.'s Fig. 3a).
network resnext50_paths {
  input   3x224x224
  classes 1000
  block   aggregated(groups: 32, group_width: 4)

  stage layer1: 3 x 64
  stage layer2: 4 x 128 / 2
  stage layer3: 6 x 256 / 2
  stage layer4: 3 x 512 / 2
}
"""


def as_paths(state: dict, paths: int) -> dict:
    """torchvision's ResNeXt state dict with each block's conv1, bn1, conv2, bn2 and conv3 cut
    into `paths` paths (`paths.{k}.conv1` ...); the rest as it is."""
    out = {}
    for key, value in state.items():
        block, _, leaf = key.rpartition(".")
        prefix, _, name = block.rpartition(".")
        if not prefix.startswith("layer") or name not in ("conv1", "bn1", "conv2", "bn2", "conv3"):
            out[key] = value
            continue
        for k in range(paths):
            if leaf == "num_batches_tracked":
                part = value
            elif name == "conv3":
                width = value.shape[1] // paths
                part = value[:, k * width : (k + 1) * width]
            else:
                width = value.shape[0] // paths
                part = value[k * width : (k + 1) * width]
            out[f"{prefix}.paths.{k}.{name}.{leaf}"] = part.clone()
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = torchvision.models.resnext50_32x4d().eval()
    randomise_norms(reference)
    module, _ = generated_torch(SPEC, tmp_path_factory.mktemp("aggregated"), "resnext50_paths")
    model = module.build_model().eval()
    model.load_state_dict(as_paths(reference.state_dict(), 32), strict=True)
    return reference, model


def test_the_paths_have_torchvisions_parameters_and_macs():
    from torch.utils.flop_counter import FlopCounterMode

    torchvision = pytest.importorskip("torchvision")
    network = resdsl.analyze(SPEC).network
    with torch.device("meta"):
        reference = torchvision.models.resnext50_32x4d()
        with FlopCounterMode(display=False) as counter:
            reference(torch.empty(1, 3, 224, 224))
    assert network.params == sum(p.numel() for p in reference.parameters())
    assert network.macs == counter.get_total_flops() // 2


def test_the_paths_compute_torchvisions_resnext50(models):
    reference, model = models
    x = torch.randn(2, 3, 67, 51)
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    assert (actual - expected).abs().max() <= 1e-5 * expected.abs().max()


def test_the_keras_paths_compute_torchvisions_resnext50(models):
    """The PyTorch model's weights ported to the Keras model: torchvision's outputs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    keras = pytest.importorskip("keras")
    reference, model = models
    network = resdsl.analyze(SPEC).network
    keras_model = weights.build_generated(network, "keras").build_model(input_shape=(67, 51, 3))
    weights.state_dict_to_keras(model.state_dict(), keras_model, weights.layer_pairs(network))
    x = torch.randn(2, 3, 67, 51)
    with torch.no_grad():
        expected = reference(x).numpy()
    got = keras.ops.convert_to_numpy(keras_model(weights.to_keras_images(x), training=False))
    assert abs(got - expected).max() <= 1e-4 * abs(expected).max()


def test_the_paths_are_one_helper_module_and_a_norm_after_the_sum(models):
    _, model = models
    block = model.layer2[0]
    assert type(block.paths).__name__ == "AggregatedPaths" and len(block.paths) == 32
    assert [name for name, _ in block.paths[0].named_children()] == [
        "conv1", "bn1", "act1", "conv2", "bn2", "act2", "conv3"
    ]  # fmt: skip
    assert block.paths[0].conv2.stride == (2, 2) and block.bn3.num_features == 512
