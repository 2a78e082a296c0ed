"""RegNet by its generator against timm's `regnet` module (`naming regnet`).

Every network of timm's regnet module (read from timm) has a spec of its name in specs/regnet,
written with `stages regnet(...)`, never with stage lists. `make test` checks: the generator's
stages against timm's own expansion of each network's configuration; every network's state
dict (keys in timm's order, shapes), parameter count and multiply-accumulates; the outputs of
one network per feature; and that `resdsl import timm:NAME` gives the library spec's network
back for one network per layout feature. `make conformance` compares every one's outputs and
imports. The Keras backend's comparison with timm is tests/parity/test_timm_keras.py's.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from torch_helpers import (
    assert_imports_to_spec,
    assert_same_layout_as_timm,
    assert_same_outputs_as_timm,
    by_cost,
)

import resdsl
from resdsl.language.generators import regnet_block_widths, regnet_stages

timm = pytest.importorskip("timm")
regnet = pytest.importorskip("timm.models.regnet")

SPECS = Path(__file__).resolve().parents[2] / "specs" / "regnet"
NAMES = timm.list_models(module="regnet")
# One network per feature, whose outputs `make test` compares.
REPRESENTATIVE = {
    "regnetx_002": "X blocks: grouped bottlenecks of the stage's width, no pool in the stem",
    "regnety_002": "squeeze-excitation after the 3x3, a quarter of the block's input",
    "regnetx_004_tv": "torchvision's rounding of the inner widths (`rounding: divisible`)",
    "regnety_040_sgn": "group norms of 16 channels a group, SiLU inside squeeze-excitation",
    "regnetv_040": "pre-activation, the identity adding the first norm's output",
    "regnetz_005": "inverted bottlenecks, no shortcut in transition blocks, a final 1x1",
}
# One network per layout feature, imported from timm in `make test`.
IMPORTED = ("regnety_002", "regnety_040_sgn", "regnetv_064", "regnetz_040")


def test_every_regnet_of_timm_has_a_spec_and_no_other_has():
    assert sorted(p.stem for p in SPECS.glob("*.res")) == sorted(NAMES)
    assert set(REPRESENTATIVE) <= set(NAMES)
    for path in SPECS.glob("*.res"):
        text = path.read_text()
        assert "stages" in text and "  stage " not in text, f"{path.name} lists its stages"


def _timm_stages(name: str) -> list[tuple[int, int, int]]:
    """timm's (blocks, width, group size) per stage of `name`, from its own expansion."""
    cfg = regnet.model_cfgs[name]
    per_stage, _ = regnet.RegNet._get_stage_args(None, cfg)
    return [(s["depth"], s["out_chs"], s["group_size"]) for s in per_stage]


@pytest.mark.parametrize("name", NAMES)
def test_the_generator_expands_as_timm(name):
    network = resdsl.load(SPECS / f"{name}.res")
    ours = [(s.blocks, s.width, s.block.group_size) for s in network.stages]
    assert ours == _timm_stages(name)
    assert all(s.generated for s in network.stages)


def test_the_block_widths_agree_with_timm_on_random_generators():
    """pycls' float64 arithmetic against timm's float32 on generators no library registers:
    they agree but for widths that fall within float32's rounding of a multiple of the
    quantum's half (4 in 20,000 when this was written)."""
    import math

    rng = random.Random(0)
    differ = 0
    for _ in range(2000):
        w0, depth = 8 * rng.randint(1, 40), rng.randint(1, 40)
        wa, wm = round(rng.uniform(0, 200), 2), round(rng.uniform(1.05, 3.5), 3)
        theirs = regnet.generate_regnet(wa, w0, wm, depth, 8)[0]
        ours = regnet_block_widths(w0, wa, wm, depth, 8)
        if theirs != ours:
            # a float32 tie: the quantized width lies within float32's error of a half step
            j = next(i for i, (a, b) in enumerate(zip(theirs, ours, strict=True)) if a != b)
            step = round(math.log((w0 + wa * j) / w0) / math.log(wm))
            exact = w0 * wm**step / 8
            assert abs(exact - round(exact) - 0.5) < 1e-4 or abs(exact % 1 - 0.5) < 1e-4, (
                w0, wa, wm, depth,
            )  # fmt: skip
            differ += 1
    assert differ <= 5


def test_torchvisions_rounding_is_timms_tv_rounding():
    args = {
        "w0": 24, "wa": 24.48, "wm": 2.54, "depth": 22, "group_size": 16, "bottleneck": 1.0,
        "quantum": 8, "stride": 2,
    }  # fmt: skip
    nearest = regnet_stages({**args, "rounding": "nearest"})
    divisible = regnet_stages({**args, "rounding": "divisible"})
    assert [(s.blocks, s.width) for s in divisible] == [
        (d, w) for d, w, _ in _timm_stages("regnetx_004_tv")
    ]
    assert [(s.blocks, s.width) for s in nearest] == [
        (d, w) for d, w, _ in _timm_stages("regnetx_004")
    ]


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_parameters_and_macs_match_timm(name, tmp_path):
    assert_same_layout_as_timm(SPECS / f"{name}.res", name, tmp_path)


@pytest.mark.parametrize("name", by_cost(NAMES, REPRESENTATIVE, SPECS))
def test_outputs_match_timm(name, tmp_path):
    assert_same_outputs_as_timm(SPECS / f"{name}.res", name, tmp_path)


@pytest.mark.parametrize("name", by_cost(NAMES, IMPORTED, SPECS))
def test_timm_models_import_to_the_library_specs(name):
    """From `timm:NAME`: the strides, the activation and RegNetZ's missing activation after
    the sum come from the module tree, and nothing is assumed."""
    assert_imports_to_spec(f"timm:{name}", SPECS / f"{name}.res")


# --------------------------------------------------------------------------- torchvision

TORCHVISION_SPECS = SPECS.parent / "torchvision_regnet"


def _torchvision_names() -> list[str]:
    torchvision = pytest.importorskip("torchvision")
    return [name for name in torchvision.models.list_models() if name.startswith("regnet_")]


TORCHVISION_NAMES = _torchvision_names()
TORCHVISION_REPRESENTATIVE = {"regnet_x_400mf", "regnet_y_400mf"}


def _meta_torchvision(name: str):
    """torchvision's RegNet `name` on the meta device. Its builders compute the widths with
    tensors, which the meta device cannot read back: the widths are computed on the CPU (the
    builder, its model construction `_regnet` intercepted), the model built on the meta device
    from them."""
    from unittest import mock

    import torch
    from torchvision.models import regnet as tv_regnet

    with mock.patch.object(tv_regnet, "_regnet", lambda params, *args, **kwargs: params):
        params = getattr(tv_regnet, name)()
    with torch.device("meta"):
        return tv_regnet._regnet(params, None, False)


def test_every_regnet_of_torchvision_has_a_spec_and_no_other_has():
    assert sorted(p.stem for p in TORCHVISION_SPECS.glob("*.res")) == sorted(TORCHVISION_NAMES)
    for path in TORCHVISION_SPECS.glob("*.res"):
        assert "stages" in path.read_text() and "  stage " not in path.read_text()


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_state_dict_parameters_and_macs_match_torchvision(name, tmp_path):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from torch_helpers import generated_torch, ruff_problems

    path = TORCHVISION_SPECS / f"{name}.res"
    module, code = generated_torch(str(path), tmp_path, name)
    network = resdsl.load(path)
    reference = _meta_torchvision(name)
    with torch.device("meta"):
        ours = module.build_model()
        with FlopCounterMode(display=False) as counter:
            reference.eval()(torch.empty(1, 3, network.input.height, network.input.width))
    shapes = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    assert shapes == [(k, tuple(v.shape)) for k, v in reference.state_dict().items()]
    count = sum(p.numel() for p in reference.parameters())
    assert sum(p.numel() for p in ours.parameters()) == count == network.params
    assert counter.get_total_flops() // 2 == network.macs
    assert ruff_problems(code) == ""


@pytest.mark.parametrize(
    "name", by_cost(TORCHVISION_NAMES, TORCHVISION_REPRESENTATIVE, TORCHVISION_SPECS)
)
def test_outputs_match_torchvision(name, tmp_path):
    import torch
    import torchvision
    from torch_helpers import assert_same_outputs, generated_torch

    module, _ = generated_torch(str(TORCHVISION_SPECS / f"{name}.res"), tmp_path, name)
    torch.manual_seed(0)
    assert_same_outputs(torchvision.models.get_model(name), module.build_model())


@pytest.mark.parametrize("name", by_cost(TORCHVISION_NAMES, {"regnet_y_400mf"}, TORCHVISION_SPECS))
def test_torchvision_models_import_to_the_library_specs(name):
    """From `torchvision:NAME`, read as timm's names and written in torchvision's: only the
    input size, which torchvision's builders do not record, is assumed."""
    spec = TORCHVISION_SPECS / f"{name}.res"
    assert_imports_to_spec(f"torchvision:{name}", spec, ("input 3x224x224",))
