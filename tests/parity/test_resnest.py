"""The backends against timm's ResNeSt family: bottlenecks whose 3x3 is split attention, a
composite layer (resdsl.ir.BranchLayer) whose `radix` paths one shared grouped convolution makes
and whose merge selects them by attention (a softmax across the paths in each group; for one
path, a sigmoid), with an average pool applying the stride before or after it.

Every network of `timm.list_models(module="resnest")` has a spec of its name in specs/resnest.
`make test` checks every one's state dict (keys in timm's order, shapes), parameter count and
multiply-accumulates, and the outputs of one network per feature with timm's weights loaded
strictly; `make conformance` compares the outputs of all of them. The Keras backend's
comparison with timm is tests/parity/test_timm_keras.py's, which covers the family too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch_helpers import (
    assert_same_layout_as_timm,
    assert_same_outputs,
    assert_same_outputs_as_timm,
    by_cost,
    generated_torch,
)

import resdsl

timm = pytest.importorskip("timm")

SPECS = Path(__file__).resolve().parents[2] / "specs" / "resnest"
# One network per feature, whose outputs `make test` compares.
REPRESENTATIVE = {
    "resnest14d": "two paths, the average pool after split attention",
    "resnest50d_4s2x40d": "four paths in two groups (a softmax per group), the pool before",
}
# resnest50d_1s4x24d's one path (a sigmoid) is compared in `make test` at 14 layers, below.
NAMES = timm.list_models(module="resnest")


def test_every_timm_resnest_has_a_spec():
    assert sorted(p.stem for p in SPECS.glob("*.res")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_parameters_and_macs_match_timm(name, tmp_path):
    """Keys in timm's order (`conv2.conv`, `conv2.bn0`, `conv2.fc1`, ...), shapes, the
    parameter count, and the IR's multiply-accumulates against PyTorch's FLOP counter (half its
    FLOPs) at the spec's input size."""
    assert_same_layout_as_timm(SPECS / f"{name}.res", name, tmp_path)


@pytest.mark.parametrize("name", by_cost(NAMES, REPRESENTATIVE))
def test_outputs_match_timm(name, tmp_path):
    assert_same_outputs_as_timm(SPECS / f"{name}.res", name, tmp_path)


def test_a_dilated_resnest_matches_timms_output_stride(tmp_path):
    """timm's `output_stride=16`: the last stage strides nothing (no average pool) and dilates
    its split attention's 3x3 by 2 (its first block's by 1, the stage before's)."""
    text = 'network resnest14d_os16 extends "resnest14d.res" {\n'
    text += "  stage layer4: 1 x 512 { dilation 2 }\n}\n"
    module, _ = generated_torch(text, tmp_path, "os16", base=SPECS)
    torch.manual_seed(0)
    reference = timm.create_model("resnest14d", pretrained=False, output_stride=16)
    assert_same_outputs(reference, module.build_model())


def test_one_path_weighs_by_a_sigmoid(tmp_path):
    """resnest50d_1s4x24d's blocks (one path, four groups, the pool before split attention) at
    ResNeSt-14-D's depth, against timm's ResNet built with the same arguments."""
    from timm.models.resnest import ResNestBottleneck
    from timm.models.resnet import ResNet

    text = 'network resnest14d_1s4x24d extends "resnest14d.res" {\n'
    text += "  block resnest(radix: 1, groups: 4, group_width: 24, avd_first: on)\n}\n"
    module, _ = generated_torch(text, tmp_path, "one_path", base=SPECS)
    torch.manual_seed(0)
    reference = ResNet(
        block=ResNestBottleneck,
        layers=[1, 1, 1, 1],
        stem_type="deep",
        stem_width=32,
        avg_down=True,
        base_width=24,
        cardinality=4,
        block_args=dict(radix=1, avd=True, avd_first=True),
    )
    assert_same_outputs(reference, module.build_model())


def test_a_stage_shares_one_block_class_and_the_helper_says_what_it_computes():
    code = resdsl.compile(str(SPECS / "resnest50d_4s2x40d.res"), backend="torch")
    assert code.count("class ResNestBottleneck(") == 1
    assert "make_divisible(mid_channels, 8, 0.9, 32)" in code
    assert "class ResNeSt50d_4s2x40d(" in code
    keras = resdsl.compile(str(SPECS / "resnest50d_4s2x40d.res"), backend="keras")
    assert keras.count("def resnest_bottleneck_block(") == 1


@pytest.mark.parametrize(
    "text, code",
    [
        ("block resnest(radix: 9)", "E602"),
        ("block resnest(avd: maybe)", "E104"),
        ("block resnest(stride_on: 1x1)", "E402"),
        ("block resnest(reduce_first: 2)", "E402"),
        ("block resnest(radix: 4, groups: 2, group_width: 32)", None),
        ("block resnest(radix: 3)", "E403"),  # 16 channels in 3 groups
        ("block resnest(radix: 1, avd: off)", None),
        ("block resnest(groups: 3, group_width: 4)", "E403"),  # 3 channels, 3 groups: 1 each
    ],
)
def test_bad_arguments_are_located_diagnostics(text, code):
    head = "network n {\n  input 3x32x32\n  classes 10\n  stem cifar\n"
    spec = f"{head}  {text}\n  stage a: 1 x 16\n  stage b: 1 x 32 / 2\n}}\n"
    result = resdsl.analyze(spec)
    codes = [d.code for d in result.diagnostics if d.severity == "error"]
    assert codes == ([code] if code else []), (text, [str(d) for d in result.diagnostics])
    if code:
        assert all(d.span.line == 5 for d in result.diagnostics if d.severity == "error")


def test_graph_draws_the_paths_and_their_selection():
    from resdsl.cli.graph import to_dot

    dot = to_dot(resdsl.load(SPECS / "resnest14d.res"), blocks=True)
    assert "conv1x1 &gt; conv3x3 into 2 paths &gt; select &gt; conv1x1" in dot
