"""The backends against timm's SKNet family: blocks whose 3x3 is a selective kernel, a
composite layer (resdsl.ir.BranchLayer) whose paths merge by "select": summed, weighted by an
attention over their sum.

Every network of `timm.list_models(module="sknet")` has a spec of its name in specs/sknet.
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

SPECS = Path(__file__).resolve().parents[2] / "specs" / "sknet"
# One network per feature, whose outputs `make test` compares.
REPRESENTATIVE = {
    "skresnet18": "basic blocks: the first 3x3 a selective kernel on split channels",
    "skresnet50d": "bottlenecks, the deep stem and average-pool shortcuts",
    "skresnext50_32x4d": "grouped paths on the whole input, attention widths rounded to 32",
}
NAMES = timm.list_models(module="sknet")


def test_every_timm_sknet_has_a_spec():
    assert sorted(p.stem for p in SPECS.glob("*.res")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_parameters_and_macs_match_timm(name, tmp_path):
    """Keys in timm's order (`conv2.paths.0.conv`, ..., `conv2.attn.fc_select`), shapes, the
    parameter count, and the IR's multiply-accumulates against PyTorch's FLOP counter (half its
    FLOPs) at the spec's input size."""
    assert_same_layout_as_timm(SPECS / f"{name}.res", name, tmp_path)


@pytest.mark.parametrize("name", by_cost(NAMES, REPRESENTATIVE))
def test_outputs_match_timm(name, tmp_path):
    assert_same_outputs_as_timm(SPECS / f"{name}.res", name, tmp_path)


def test_a_dilated_sknet_matches_timms_output_stride(tmp_path):
    """timm's `output_stride=16`: the last stage strides nothing and dilates its selective
    kernels' paths by 2 and 4 (its first block's by 1 and 2, the stage before's)."""
    text = 'network skresnet50_os16 extends "skresnet50.res" {\n'
    text += "  stage layer4: 3 x 512 { dilation 2 }\n}\n"
    module, _ = generated_torch(text, tmp_path, "os16", base=SPECS)
    torch.manual_seed(0)
    reference = timm.create_model("skresnet50", pretrained=False, output_stride=16)
    assert_same_outputs(reference, module.build_model())


def test_a_stage_shares_one_block_class_and_the_helpers_say_what_they_compute():
    code = resdsl.compile(str(SPECS / "skresnext50_32x4d.res"), backend="torch")
    assert code.count("class SelectiveKernelBottleneck(") == 1
    assert "make_divisible(mid_channels / 16, 32, 0.9)" in code
    assert "split=False" in code
    keras = resdsl.compile(str(SPECS / "skresnext50_32x4d.res"), backend="keras")
    assert keras.count("def selective_kernel_bottleneck_block(") == 1


@pytest.mark.parametrize(
    "text, code",
    [
        ("block sk_bottleneck(paths: 5)", "E602"),
        ("block sk_bottleneck(split: maybe)", "E104"),
        ("block sk_bottleneck(paths: 3)", "E403"),  # 16 channels in 3 splits
        ("block sk_bottleneck(paths: 3, split: off)", None),
        ("block sk_bottleneck(stride_on: 1x1)", "E402"),
        ("block sk_basic(groups: 2)", "E401"),
        ("block sk_bottleneck(reduction: 4, divisor: 16, paths: 4)", None),
        ("block sk_bottleneck(groups: 4, group_width: 8)", None),
        ("block sk_bottleneck(groups: 3, group_width: 4)", "E403"),  # 3 channels in 2 splits
        # 4 channels in 2 splits of 2, each grouped by 4: found by drawing specs
        ("block sk_bottleneck(groups: 4, group_width: 4)", "E403"),
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


def test_anti_aliasing_is_refused_where_the_paths_stride():
    head = "network n {\n  input 3x32x32\n  classes 10\n  stem cifar\n  block sk_basic\n"
    spec = f"{head}  anti_alias blur\n  stage a: 1 x 16\n  stage b: 1 x 32 / 2\n}}\n"
    codes = [d.code for d in resdsl.analyze(spec).diagnostics if d.severity == "error"]
    assert codes == ["E402"]


def test_graph_draws_the_paths_and_their_selection():
    from resdsl.cli.graph import to_dot

    dot = to_dot(resdsl.load(SPECS / "skresnet18.res"), blocks=True)
    assert "conv3x3 x2 of splits &gt; select &gt; conv3x3" in dot
    dot = to_dot(resdsl.load(SPECS / "skresnext50_32x4d.res"), blocks=True)
    assert "conv1x1 &gt; conv3x3 x2 &gt; select &gt; conv1x1" in dot
