"""The PyTorch backend against timm's Res2Net family: the first blocks whose branch is not a
chain of layers, but a composite layer (resdsl.ir.BranchLayer: the channels split into paths
that cascade, then concatenated).

Every network of `timm.list_models(module="res2net")` has a spec of its name in specs/res2net.
`make test` checks every one's state dict (keys in timm's order, shapes) and parameter count,
and the outputs of one network per feature with timm's weights loaded strictly; `make
conformance` compares the outputs of all of them. The Keras backend's comparison with timm is
tests/parity/test_timm_keras.py's, which covers the family too; `resdsl import` is
tests/unit/interop/test_import.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch_helpers import assert_same_outputs_as_timm, by_cost, generated_torch, ruff_problems

import resdsl

timm = pytest.importorskip("timm")

SPECS = Path(__file__).resolve().parents[2] / "specs" / "res2net"
# One network per feature, whose outputs `make test` compares.
REPRESENTATIVE = {
    "res2net50_48w_2s": "two splits: one 3x3 path, no cascade",
    "res2next50": "grouped 3x3s in the paths",
    "res2net50d": "the deep stem and average-pool shortcuts around the hierarchy",
}


def test_every_timm_res2net_has_a_spec():
    assert sorted(p.stem for p in SPECS.glob("*.res")) == sorted(timm.list_models(module="res2net"))


@pytest.mark.parametrize("name", timm.list_models(module="res2net"))
def test_state_dict_and_parameters_match_timm(name, tmp_path):
    """Keys in timm's order (`convs.0` ... `bns.0` ... `pool`), shapes and the count."""
    module, path = generated_torch(str(SPECS / f"{name}.res"), tmp_path, name)
    with torch.device("meta"):
        ours, reference = module.build_model(), timm.create_model(name, pretrained=False)
    shapes = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    assert shapes == [(k, tuple(v.shape)) for k, v in reference.state_dict().items()]
    count = sum(p.numel() for p in reference.parameters())
    assert (
        sum(p.numel() for p in ours.parameters())
        == count
        == resdsl.load(SPECS / f"{name}.res").params
    )
    assert ruff_problems(path) == ""


@pytest.mark.parametrize("name", by_cost(timm.list_models(module="res2net"), REPRESENTATIVE))
def test_outputs_match_timm(name, tmp_path):
    """timm's model (its norms' statistics randomised) and ours with its weights: the same
    outputs at an odd, not square input, in training mode's batch norm too."""
    assert_same_outputs_as_timm(SPECS / f"{name}.res", name, tmp_path)


def test_a_stage_shares_one_block_class_that_tests_its_first_block():
    """The first block of a stage (it strides or widens) pools its last split and adds no
    paths up; the class tests that rather than splitting into two classes."""
    code = resdsl.compile(str(SPECS / "res2net50_26w_4s.res"), backend="torch")
    assert code.count("class Bottle2neck") == 1
    assert "self.first = stride != 1 or in_channels != out_channels" in code
    assert "self.convs = nn.ModuleList(" in code


def test_a_dilated_res2net_matches_timms_output_stride(tmp_path):
    """timm's `output_stride=16`: the last stage dilates its splits' 3x3s by 2 (its first
    block by 1, the stage before's) and strides nothing."""
    from torch_helpers import randomise_norms

    from resdsl.codegen.generated import import_source

    text = (
        'network res2net50_os16 extends "res2net50_26w_4s.res" {\n'
        "  stage layer4: 3 x 512 { dilation 2 }\n}\n"
    )
    code = resdsl.compile(text, backend="torch", base=SPECS)
    ours = import_source(code, "res2net_os16", str(tmp_path / "os16.py")).build_model()
    torch.manual_seed(0)
    reference = timm.create_model("res2net50_26w_4s", pretrained=False, output_stride=16)
    randomise_norms(reference)
    ours.load_state_dict(reference.state_dict(), strict=True)
    ours.eval(), reference.eval()
    x = torch.randn(1, 3, 67, 51)
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    assert (actual - expected).abs().max() <= 1e-5 * expected.abs().max()


@pytest.mark.parametrize(
    "text, code",
    [
        ("block res2net(scale: 1)", "E604"),
        ("block res2net(scale: 4, stride_on: 1x1)", "E402"),
        ("block res2net(scale: 4, reduce_first: 2)", "E402"),
        ("block res2net(scale: 4, groups: 5, group_width: 4)", None),
        ("block res2net(scale: 4, group_width: 1)", "E406"),  # 16 * 1 / 64 rounds to 0
    ],
)
def test_bad_arguments_are_located_diagnostics(text, code):
    head = "network n {\n  input 3x32x32\n  classes 10\n  stem cifar\n"
    spec = f"{head}  {text}\n  stage a: 1 x 16\n}}\n"
    result = resdsl.analyze(spec)
    codes = [d.code for d in result.diagnostics if d.severity == "error"]
    assert codes == ([code] if code else []), (text, [str(d) for d in result.diagnostics])
    if code:
        assert all(d.span.line == 5 for d in result.diagnostics if d.severity == "error")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=() if name == "res2net50_26w_4s" else pytest.mark.conformance)
        for name in timm.list_models(module="res2net")
    ],
)
def test_macs_match_flop_counter(name):
    """The IR's multiply-accumulates (the composite layer's paths included) are what PyTorch
    counts, half its FLOPs, in timm's model at the spec's input size."""
    from torch.utils.flop_counter import FlopCounterMode

    network = resdsl.load(SPECS / f"{name}.res")
    i = network.input
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False).eval()
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, i.channels, i.height, i.width))
    assert counter.get_total_flops() // 2 == network.macs
