"""The PyTorch backend against timm's ResNet family and torchvision's ResNet builders.

Every network of `timm.list_models(module="resnet")` has a spec of its name in specs/timm.
`make test` checks every one's state dict (keys, their order, shapes) and parameter count on the
meta device, and the outputs of one network per feature with timm's weights loaded strictly.
`make conformance` compares the outputs of all of them, their multiply-accumulates against
PyTorch's FlopCounterMode, torchvision's ten builders and torchvision's dilated ResNet-50.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch
from spec_sets import TORCHVISION_BUILDERS
from torch_helpers import SPECS, compiled, generated, randomise_norms

import resdsl

timm = pytest.importorskip("timm")

TIMM = SPECS / "timm"
TORCH_SPECS = Path(__file__).parents[1] / "support" / "torch_specs"
KERAS_SPECS = Path(__file__).parent / "keras_specs"  # specs both backends compare with timm
CONFORMANCE = pytest.mark.conformance
PRUNED = (
    "timm's pruned networks give every convolution a width of its own (a table per network); "
    "resdsl's widths follow from each stage's"
)
# One network per feature the family adds, whose outputs `make test` compares.
REPRESENTATIVE = {
    "resnet50d": "the deep stem, pool-project shortcuts with ResNet-D's identity at stride 1",
    "resnet10t": "the tiered deep stem, basic blocks",
    "seresnet18": "squeeze-excitation",
    "ecaresnet26t": "efficient channel attention, its kernel from each stage's width",
    "resnetblur18": "blur-pool anti-aliasing, in the stem's pool too",
    "resnetaa34d": "average-pool anti-aliasing",
    "resnet50_gn": "group norm",
    "resnetrs50": "the stem's convolution pool, squeeze-excitation by 4",
    "test_resnet": "basic and bottleneck blocks in one network",
}


def _timm_names(marks=()) -> list:
    """Every name of timm's ResNet module, read from timm; the pruned networks skipped."""
    return [
        pytest.param(name, marks=[*marks, pytest.mark.skip(reason=PRUNED)], id=name)
        if name.endswith("_pruned")
        else pytest.param(name, marks=list(marks), id=name)
        for name in timm.list_models(module="resnet")
    ]


@contextlib.contextmanager
def _meta():
    """The meta device, with torch.nn.init's functions skipped: there they compute nothing but
    cost most of building a model (timm's and ours initialise every convolution twice)."""
    init = torch.nn.init
    names = [name for name in vars(init) if name.endswith("_") and not name.startswith("_")]
    saved = {name: getattr(init, name) for name in names}
    try:
        for name in names:
            setattr(init, name, lambda tensor, *args, **kwargs: tensor)
        with torch.device("meta"):
            yield
    finally:
        for name, function in saved.items():
            setattr(init, name, function)


def _shapes(model) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(t.shape)) for name, t in model.state_dict().items()]


def _parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _loaded(module, state: dict):
    """The generated model with `state` loaded strictly, in eval mode. It is built on the meta
    device and takes the tensors of `state` as they are, unless it holds buffers that no state
    dict carries (BlurPool2d's filter), which it must compute."""
    with _meta():
        model = module.build_model()
    model.load_state_dict(state, strict=True, assign=True)
    if any(buffer.is_meta for buffer in model.buffers()):
        model = module.build_model()
        model.load_state_dict(state, strict=True)
    return model.eval()


def _size(network) -> tuple[int, int]:
    """A small input, odd and not square, where the network takes one: timm's average-pool
    anti-aliasing rounds odd sizes down where its shortcut's pool rounds them up, so those
    networks take even sizes."""
    if any(block.anti_alias == "avg" for _, _, _, block in network.blocks()):
        return (64, 96)
    return (67, 51)


def _assert_same_outputs(reference, path: Path) -> None:
    """`reference` (seeded, its norms randomised here) and the model generated from `path` with
    its weights give the same outputs, up to float error."""
    network = resdsl.load(path)
    randomise_norms(reference)
    reference.eval()
    model = _loaded(generated(path), reference.state_dict())
    assert _shapes(model) == _shapes(reference)
    assert _parameters(model) == _parameters(reference) == network.params
    x = torch.randn(2, network.input.channels, *_size(network))
    with torch.no_grad():
        expected, actual = reference(x), model(x)
    assert actual.shape == expected.shape == (2, network.classes)
    scale = expected.abs().max()
    assert (actual - expected).abs().max() <= 1e-5 * scale


# --------------------------------------------------------------------------- make test


@pytest.mark.parametrize("name", _timm_names())
def test_state_dict_and_parameters_match_timm(name):
    path = TIMM / f"{name}.res"
    assert path.exists(), f"no spec for timm's {name}"
    with _meta():
        model = generated(path).build_model()
        reference = timm.create_model(name, pretrained=False)
    assert _shapes(model) == _shapes(reference)
    assert _parameters(model) == _parameters(reference) == resdsl.load(path).params


def test_representatives_are_timm_networks():
    assert set(REPRESENTATIVE) <= set(timm.list_models(module="resnet"))


@pytest.mark.parametrize("name", sorted(REPRESENTATIVE))
def test_outputs_match_timm(name):
    torch.manual_seed(0)
    _assert_same_outputs(timm.create_model(name, pretrained=False), TIMM / f"{name}.res")


def test_senet_features_match_timm():
    """SENet-154's features (squeeze-excitation, `reduce_first`, grouped convolutions, 3x3
    projections, the wide deep stem) and timm's output stride 16 at a small size: timm's ResNet
    built with the arguments of tests/support/torch_specs/senet_small.res."""
    from timm.models.resnet import Bottleneck, ResNet

    torch.manual_seed(0)
    reference = ResNet(
        block=Bottleneck,
        layers=(1, 2, 1, 2),
        channels=(16, 32, 64, 128),
        num_classes=10,
        cardinality=4,
        base_width=8,
        stem_type="deep",
        stem_width=16,
        down_kernel_size=3,
        block_reduce_first=2,
        output_stride=16,
        block_args={"attn_layer": "se"},
    )
    _assert_same_outputs(reference, TORCH_SPECS / "senet_small.res")


@pytest.mark.parametrize("fuse", ["scale", "add"])
def test_global_context_at_the_end_of_the_branch_matches_timm(fuse, tmp_path):
    """Global context attention under resnet.py's names (`se.conv_attn`, `se.mlp_scale.fc1`):
    gating the channels (timm's `gc`) or adding its term (`gca`), at the end of the branch."""
    from timm.models.resnet import Bottleneck, ResNet

    torch.manual_seed(0)
    reference = ResNet(
        block=Bottleneck,
        layers=(1, 1, 1, 1),
        channels=(16, 32, 64, 128),
        num_classes=10,
        block_args={"attn_layer": "gc" if fuse == "scale" else "gca"},
    )
    spec = (KERAS_SPECS / "gc_small.res").read_text()
    spec = spec.replace("gc(fuse: scale)", f"gc(fuse: {fuse})")
    assert f"fuse: {fuse}" in spec
    path = tmp_path / "gc_small.res"
    path.write_text(spec)
    _assert_same_outputs(reference, path)


@pytest.mark.parametrize(
    ("shallow", "deep"),
    [
        ("seresnet50", "seresnet152"),
        ("ecaresnet50d", "ecaresnet269d"),
        ("resnetrs50", "resnetrs420"),
        ("resnetblur50d", "resnetblur101d"),
        ("seresnextaa101d_32x8d", "seresnextaa201d_32x8d"),
    ],
)
def test_module_length_does_not_grow_with_depth(shallow, deep):
    lines = [compiled(str(TIMM / f"{name}.res")).count("\n") for name in (shallow, deep)]
    assert lines[0] == lines[1]


def test_anti_aliased_blocks_share_one_class():
    """A stage's strided block and its others are one class, which blurs where it strides and
    registers an identity elsewhere, as timm."""
    module = generated(TIMM / "resnetblur18.res")
    model = module.build_model()
    assert [c for c in vars(module) if c.endswith("Block")] == ["BasicBlock"]
    assert isinstance(model.layer2[0].aa, module.BlurPool2d)
    assert isinstance(model.layer2[1].aa, torch.nn.Identity)
    assert isinstance(model.layer1[0].aa, torch.nn.Identity)
    assert "filt" not in model.state_dict() and not any("aa" in k for k in model.state_dict())


# --------------------------------------------------------------------------- conformance


@pytest.mark.parametrize("name", _timm_names([CONFORMANCE]))
def test_every_timm_network_matches(name):
    torch.manual_seed(0)
    _assert_same_outputs(timm.create_model(name, pretrained=False), TIMM / f"{name}.res")


@pytest.mark.parametrize("name", TORCHVISION_BUILDERS)
@CONFORMANCE
def test_every_torchvision_builder_matches(name):
    import torchvision

    torch.manual_seed(0)
    _assert_same_outputs(getattr(torchvision.models, name)(), SPECS / f"{name}.res")


@CONFORMANCE
def test_dilated_resnet50_matches_torchvision():
    """`replace_stride_with_dilation`: each dilated stage's first block keeps the stage before's
    dilation."""
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
    _assert_same_outputs(reference, TORCH_SPECS / "resnet50_dilated.res")


def _mac_paths() -> list:
    timm_paths = [
        pytest.param(TIMM / f"{name}.res", id=f"timm/{name}")
        for name in timm.list_models(module="resnet")
        if not name.endswith("_pruned")
    ]
    others = [SPECS / f"{name}.res" for name in TORCHVISION_BUILDERS]
    others += [TORCH_SPECS / "resnet50_dilated.res", TORCH_SPECS / "senet_small.res"]
    return timm_paths + [pytest.param(path, id=path.stem) for path in others]


@pytest.mark.parametrize("path", _mac_paths())
@CONFORMANCE
def test_macs_match_flop_counter(path):
    """The IR's multiply-accumulates are what PyTorch counts (half its FLOPs) in the generated
    model at the spec's input size; timm's model counts the same."""
    from torch.utils.flop_counter import FlopCounterMode

    network = resdsl.load(path)
    i = network.input
    models = [generated(path).build_model]
    if path.parent == TIMM:
        models.append(lambda: timm.create_model(path.stem, pretrained=False))
    for build in models:
        with _meta():
            model = build().eval()
            x = torch.empty(1, i.channels, i.height, i.width)
            with FlopCounterMode(display=False) as counter:
                model(x)
        assert counter.get_total_flops() // 2 == network.macs, build
