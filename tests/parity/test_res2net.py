"""The PyTorch backend against timm's Res2Net family: the first blocks whose branch is not a
chain of layers, but a composite layer (resdsl.ir.BranchLayer: the channels split into paths
that cascade, then concatenated).

Every network of `timm.list_models(module="res2net")` has a spec of its name in res2net_specs/.
`make test` checks every one's state dict (keys in timm's order, shapes) and parameter count,
and the outputs of one network per feature with timm's weights loaded strictly; `make
conformance` compares the outputs of all of them. The Keras backend refuses these networks with
a located diagnostic until it writes composite layers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch_helpers import ruff_problems

import resdsl

timm = pytest.importorskip("timm")

SPECS = Path(__file__).parent / "res2net_specs"
# One network per feature, whose outputs `make test` compares.
REPRESENTATIVE = {
    "res2net50_48w_2s": "two splits: one 3x3 path, no cascade",
    "res2next50": "grouped 3x3s in the paths",
    "res2net50d": "the deep stem and average-pool shortcuts around the hierarchy",
}


def _names() -> list:
    return [
        pytest.param(name, id=name)
        if name in REPRESENTATIVE
        else pytest.param(name, marks=pytest.mark.conformance, id=name)
        for name in timm.list_models(module="res2net")
    ]


def _generated(name: str, folder: Path):
    from resdsl.codegen.generated import import_source

    code = resdsl.compile(str(SPECS / f"{name}.res"), backend="torch")
    path = folder / f"{name}.py"
    path.write_text(code)
    return import_source(code, f"res2net_{name}", str(path)), path


def test_every_timm_res2net_has_a_spec():
    assert sorted(p.stem for p in SPECS.glob("*.res")) == sorted(timm.list_models(module="res2net"))


@pytest.mark.parametrize("name", timm.list_models(module="res2net"))
def test_state_dict_and_parameters_match_timm(name, tmp_path):
    """Keys in timm's order (`convs.0` ... `bns.0` ... `pool`), shapes and the count."""
    module, path = _generated(name, tmp_path)
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


@pytest.mark.parametrize("name", _names())
def test_outputs_match_timm(name, tmp_path):
    """timm's model (its norms' statistics randomised) and ours with its weights: the same
    outputs at an odd, not square input, in training mode's batch norm too."""
    from torch_helpers import randomise_norms

    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False)
    randomise_norms(reference)
    module, _ = _generated(name, tmp_path)
    ours = module.build_model()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 67, 51)
    for mode in ("eval", "train"):
        getattr(reference, mode)(), getattr(ours, mode)()
        with torch.no_grad():
            expected, actual = reference(x), ours(x)
        assert (actual - expected).abs().max() <= 1e-5 * expected.abs().max(), mode


def test_a_stage_shares_one_block_class_that_tests_its_first_block():
    """The first block of a stage (it strides or widens) pools its last split and adds no
    paths up; the class tests that rather than splitting into two classes."""
    code = resdsl.compile(str(SPECS / "res2net50_26w_4s.res"), backend="torch")
    assert code.count("class Bottle2neck") == 1
    assert "self.first = stride != 1 or in_channels != out_channels" in code
    assert "self.convs = nn.ModuleList(" in code


def test_keras_refuses_with_a_located_diagnostic():
    with pytest.raises(resdsl.SpecError) as refused:
        resdsl.compile(str(SPECS / "res2net50_26w_4s.res"), backend="keras")
    (error,) = refused.value.diagnostics
    assert error.code == "E701" and "composite layer" in error.message
    assert error.span.line == 3  # the network, as every E701


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
