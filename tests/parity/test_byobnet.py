"""The backends against timm's byobnet ResNets: byobnet's state-dict layout (`naming
byobnet`: `stem.conv1.conv`, `stages.0.0.conv1_1x1.conv`, `shortcut.conv`, `final_conv`,
`head.fc`), tiered stems that stride in their last convolution where they have no pool, SiLU,
groups of a fixed size, attention after the 3x3, and a 1x1 convolution before the pool.

Every covered network (tests/support/byobnet_family.py, read from timm) has a spec of its name
in specs/byobnet. `make test` checks every one's state dict (keys in timm's order, shapes),
parameter count and multiply-accumulates, and the outputs of one network per feature with
timm's weights loaded strictly; `make conformance` compares the outputs of all of them. The
Keras backend's comparison with timm is tests/parity/test_timm_keras.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from byobnet_family import covered
from torch_helpers import (
    assert_same_layout_as_timm,
    assert_same_outputs_as_timm,
    by_cost,
    generated_torch,
)

timm = pytest.importorskip("timm")

SPECS = Path(__file__).resolve().parents[2] / "specs" / "byobnet"
# One network per feature, whose outputs `make test` compares.
REPRESENTATIVE = {
    "resnet33ts": "a tiered stem striding in its last convolution, the 1x1 before the pool",
    "seresnext26ts": "groups of 32 channels, squeeze-excitation after the 3x3, the stem's pool",
    "eca_resnet33ts": "efficient channel attention after the 3x3",
    "gcresnet33ts": "global context attention after the 3x3, its term added",
    "resnet51q": "the quad stem's two plain convolutions, depthwise 3x3s at full width",
    "resnet61q": "an edge block, bottlenecks with a second 3x3 (timm's `extra_conv`)",
    "bat_resnext26ts": "bilinear attention after the 3x3, compared at 256x256 (its maps must be "
    "multiples of 8), channel dropout in training",
}
NAMES = covered()


def test_every_byobnet_resnet_of_timm_has_a_spec_and_no_other_has():
    assert sorted(p.stem for p in SPECS.glob("*.res")) == sorted(NAMES)
    assert set(REPRESENTATIVE) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_parameters_and_macs_match_timm(name, tmp_path):
    """Keys in timm's order (a block's `shortcut` first), shapes, the parameter count, and the
    IR's multiply-accumulates against PyTorch's FLOP counter (half its FLOPs) at the spec's
    input size."""
    assert_same_layout_as_timm(SPECS / f"{name}.res", name, tmp_path)


@pytest.mark.parametrize("name", by_cost(NAMES, REPRESENTATIVE))
def test_outputs_match_timm(name, tmp_path):
    assert_same_outputs_as_timm(SPECS / f"{name}.res", name, tmp_path)


def test_the_model_holds_its_stem_stages_and_head_in_containers(tmp_path):
    """timm's byobnet attributes: `stem`, `stages` (one Sequential per stage), `final_conv`,
    `head`; the stage outputs are the feature pyramid."""
    module, _ = generated_torch(str(SPECS / "resnet33ts.res"), tmp_path, "resnet33ts")
    model = module.build_model().eval()
    assert [name for name, _ in model.named_children()] == [
        "stem", "stages", "final_conv", "head"
    ]  # fmt: skip
    assert [name for name, _ in model.stem.named_children()] == ["conv1", "conv2", "conv3"]
    with torch.no_grad():
        features = model.forward_stages(torch.zeros(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in features] == [
        (256, 16, 16), (512, 8, 8), (1536, 4, 4), (1536, 2, 2)
    ]  # fmt: skip


def test_attention_at_the_branch_end_is_timms_attn_last(tmp_path):
    """byobnet's attention after the last 1x1 (`attn_last=True`): `attn_last`, over the
    output's width, against timm's ByobNet built with it."""
    from timm.models.byobnet import ByoBlockCfg, ByobNet, ByoModelCfg
    from torch_helpers import assert_same_outputs

    config = ByoModelCfg(
        blocks=(
            ByoBlockCfg(type="bottle", d=1, c=64, s=1, gs=0, br=0.25),
            ByoBlockCfg(type="bottle", d=2, c=128, s=2, gs=0, br=0.25),
        ),
        stem_chs=32,
        stem_type="tiered",
        stem_pool="maxpool",
        act_layer="silu",
        attn_layer="se",
        block_kwargs={"attn_last": True},
    )
    torch.manual_seed(0)
    reference = ByobNet(config, num_classes=10)
    spec = """network n {
  input      3x64x64
  classes    10
  naming     byobnet
  stem       deep(first_width: 12, width: 16, channels: 32)
  block      bottleneck
  activation silu
  attention  se

  stage stage1: 1 x 16
  stage stage2: 2 x 32 / 2
}
"""
    module, _ = generated_torch(spec, tmp_path, "n")
    model = module.build_model()
    assert "stages.0.0.attn_last.fc1.weight" in model.state_dict()
    assert_same_outputs(reference, model)
