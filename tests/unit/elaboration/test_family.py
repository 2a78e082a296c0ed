"""The language and the IR for the rest of the ResNet family: channel attention, anti-aliasing,
group norm, tiered stems and the ResNet-RS stem pool, shortcut kernels, `reduce_first`,
dilated stages. What the generated models compute is checked against timm in
tests/parity/test_timm_torch.py and tests/parity/test_timm_keras.py; here, what the compiler
decides.
"""

from __future__ import annotations

import math

import pytest

from resdsl.driver import analyze_text
from resdsl.elaboration.attention import eca_kernel
from resdsl.ir import BlurPoolLayer, EcaLayer, IdentityLayer, SqueezeExciteLayer, make_divisible

BASE = """network n {{
  input    3x64x64
  classes  10
  block    {block}
{settings}
  stage layer1: 2 x 64
  stage layer2: 2 x 128 / 2
}}
"""


def analyze(settings: str = "", block: str = "bottleneck", text: str | None = None):
    return analyze_text(text or BASE.format(block=block, settings=settings), "n.res")


def codes(result) -> list[str]:
    return [d.code for d in result.diagnostics]


def blocks(network):
    return [run.block for stage in network.stages for run in stage.runs]


# --------------------------------------------------------------------------- attention


def test_squeeze_excitation_widths_follow_timm_rounding():
    network = analyze("  attention se").network
    for block in blocks(network):
        se = block.branch[-1]
        assert isinstance(se, SqueezeExciteLayer)
        assert se.reduce.conv.in_channels == block.out_channels
        assert se.reduce.conv.out_channels == make_divisible(block.out_channels / 16, 8)
        assert (se.reduce.torch, se.expand.torch) == ("se.fc1", "se.fc2")
        assert se.reduce.conv.bias and se.expand.conv.bias


def test_make_divisible_is_timms():
    layers = pytest.importorskip("timm.layers")
    for channels in (8, 24, 64, 100, 256, 1000, 2048):
        for ratio in (1 / 16, 1 / 4, 1 / 3):
            expected = layers.make_divisible(channels * ratio, 8, round_limit=0.0)
            assert make_divisible(channels * ratio, 8) == expected


def test_eca_kernel_is_timms():
    timm_layers = pytest.importorskip("timm.layers")
    for channels in (16, 64, 256, 512, 1000, 2048, 4096):
        module = timm_layers.EcaModule(channels=channels)
        assert eca_kernel(channels, 2.0, 1.0) == module.conv.kernel_size[0]
    network = analyze("  attention eca").network
    for block in blocks(network):
        eca = block.branch[-1]
        assert isinstance(eca, EcaLayer)
        assert eca.conv.kernel == eca_kernel(block.out_channels, 2.0, 1.0)


def test_fixed_attention_widths_and_kernels():
    network = analyze("  attention se(width: 12, gate: hard_sigmoid)").network
    se = blocks(network)[0].branch[-1]
    assert (se.reduce.conv.out_channels, se.gate, se.ratio) == (12, "hard_sigmoid", None)
    network = analyze("  attention eca(kernel: 7)").network
    eca = blocks(network)[0].branch[-1]
    assert (eca.conv.kernel, eca.gamma) == (7, None)


def test_even_eca_kernel_is_refused():
    result = analyze("  attention eca(kernel: 4)")
    assert "E604" in codes(result)
    assert "must be odd" in result.diagnostics[0].message


def test_attention_per_stage():
    text = BASE.format(block="basic", settings="").replace(
        "stage layer2: 2 x 128 / 2", "stage layer2: 2 x 128 / 2 { attention eca }"
    )
    network = analyze(text=text).network
    assert [run.block.attention for run in network.stages[0].runs] == ["none"]
    assert {run.block.attention for run in network.stages[1].runs} == {"eca"}


def test_unknown_attention_argument_gets_a_suggestion():
    result = analyze("  attention se(reduciton: 4)")
    assert "E104" in codes(result) or "E103" in codes(result)
    assert "reduction" in (result.diagnostics[0].help or "")


# --------------------------------------------------------------------------- anti-aliasing


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_blur_takes_the_stride_after_the_activation(block):
    network = analyze("  anti_alias blur", block=block).network
    strided = network.stages[1].runs[0].block
    convs = [x for x in strided.branch if x.op == "conv"]
    assert all(c.conv.stride == 1 for c in convs)
    position = next(i for i, x in enumerate(strided.branch) if isinstance(x, BlurPoolLayer))
    # after the activation that follows the convolution timm strides (3x3 of a bottleneck)
    assert strided.branch[position - 1].op == "act"
    assert strided.branch[position - 3].conv.kernel == 3
    assert (strided.branch[position].stride, strided.branch[position].padding) == (2, (1, 1))
    # the stem: a max pool at stride 1, then the blur pool strides
    pools = [x for x in network.stem.layers if x.op in ("pool", "blur")]
    assert [(x.torch, x.op) for x in pools] == [("maxpool.0", "pool"), ("maxpool.1", "blur")]
    assert network.stem.out_shape.height == 16
    # unstrided blocks have none
    assert not any(x.op == "blur" for x in network.stages[0].runs[0].block.branch)


def test_avg_anti_alias_replaces_the_stem_pool():
    network = analyze("  anti_alias avg").network
    (pool,) = [x for x in network.stem.layers if x.op == "pool"]
    assert (pool.torch, pool.pool.kind, pool.pool.kernel, pool.pool.stride) == (
        "maxpool",
        "avg",
        2,
        2,
    )


def test_conv_stem_pool_is_resnet_rs():
    network = analyze("  stem deep(pool: conv)").network
    names = [x.torch for x in network.stem.layers if x.torch.startswith("maxpool")]
    assert names == ["maxpool.0", "maxpool.1", "maxpool.2"]
    assert network.stem.out_shape.height == 16
    network = analyze("  stem deep(pool: conv)\n  anti_alias blur").network
    ops = [x.op for x in network.stem.layers if x.torch.startswith("maxpool")]
    assert ops == ["conv", "blur", "norm", "act"]


# --------------------------------------------------------------------------- stems, norms


def test_tiered_stem_widths():
    network = analyze("  stem deep(first_width: 24, width: 32, channels: 64)").network
    assert [c.out_channels for c in network.stem.convs] == [24, 32, 64]
    assert network.stem.convs[1].in_channels == 24


def test_group_norm_everywhere_and_no_statistics():
    network = analyze("  norm group(groups: 32)").network
    norms = [x for block in blocks(network) for x in block.layers if x.op == "norm"]
    assert norms and {x.kind for x in norms} == {"group"}
    assert network.norm_stats == 0
    assert network.conventions.norm_groups == 32


def test_group_norm_groups_must_divide():
    result = analyze("  norm group(groups: 24)")
    assert "E407" in codes(result)


# --------------------------------------------------------------------------- shortcuts, widths


def test_shortcut_kernel_where_it_strides_only():
    network = analyze("  shortcut B(kernel: 3)").network
    first, strided = network.stages[0].runs[0].block, network.stages[1].runs[0].block
    assert (first.shortcut.conv.kernel, first.shortcut.conv.padding) == (1, 0)
    assert (strided.shortcut.conv.kernel, strided.shortcut.conv.padding) == (3, 1)


def test_even_shortcut_kernel_is_refused():
    assert "E604" in codes(analyze("  shortcut B(kernel: 2)"))


def test_resnet_d_at_stride_one_keeps_timms_index():
    network = analyze("  shortcut D").network
    first = network.stages[0].runs[0].block.shortcut
    assert isinstance(first.layers[0], IdentityLayer)
    assert [x.torch for x in first.layers] == ["downsample.0", "downsample.1", "downsample.2"]
    strided = network.stages[1].runs[0].block.shortcut
    assert [x.op for x in strided.layers] == ["pool", "conv", "norm"]


def test_reduce_first_narrows_the_first_convolution():
    network = analyze(block="bottleneck(groups: 4, reduce_first: 2)").network
    block = blocks(network)[0]
    conv1, conv2 = block.convs[:2]
    assert conv1.out_channels == block.mid_channels // 2 == block.first_channels
    assert conv2.in_channels == block.first_channels
    assert conv2.out_channels == block.mid_channels


def test_reduce_first_that_leaves_nothing_is_an_error():
    result = analyze(block="bottleneck(reduce_first: 64, width_factor: 0.5)")
    assert "E406" in codes(result)


# --------------------------------------------------------------------------- dilation


DILATED = """network n {
  input    3x64x64
  classes  10
  block    bottleneck
  stage layer1: 2 x 64
  stage layer2: 3 x 128 / 2
  stage layer3: 3 x 256 { dilation 2 }
  stage layer4: 3 x 512 { dilation 4 }
}
"""


def test_a_dilated_stage_starts_with_the_previous_dilation():
    network = analyze(text=DILATED).network
    dilations = {
        stage.name: [block.convs[1].dilation for _, s, _, block in network.blocks() if s is stage]
        for stage in network.stages
    }
    assert dilations["layer3"] == [1, 2, 2]
    assert dilations["layer4"] == [2, 4, 4]
    assert network.stages[-1].out_shape.height == 8


def test_stride_and_dilation_together_are_named_as_such():
    text = DILATED.replace(
        "stage layer3: 3 x 256 { dilation 2 }", "stage layer3: 3 x 256 / 2 { dilation 2 }"
    )
    result = analyze(text=text)
    (halve,) = [d for d in result.diagnostics if d.code == "E201" and "layer3" in d.message]
    assert "halves the spatial size and doubles the dilation" in halve.message
    assert "4-fold step" in halve.message
    # four times the channels satisfies it
    text = text.replace("3 x 256 / 2 { dilation 2 }", "3 x 512 / 2 { dilation 2 }")
    assert not [d for d in analyze(text=text).diagnostics if "layer3" in d.message]


def test_timm_specs_check_and_name_every_layer_once():
    from spec_sets import TIMM_SPECS

    from resdsl.driver import analyze_file

    assert len(TIMM_SPECS) == 79
    for path in TIMM_SPECS:
        result = analyze_file(path)
        assert result.network is not None and not result.diagnostics, path
        names = [torch for torch, _, _ in result.network.weighted_layers()]
        assert len(names) == len(set(names)), path
        assert result.network.name == path.stem
        assert len(path.read_text().splitlines()) <= 20, path
        assert math.isfinite(result.network.macs)


# --------------------------------------------------------------------------- byobnet's settings


def test_attention_after_the_3x3_sits_before_the_last_convolution_over_the_inner_width():
    network = analyze("  attention se(after: 3x3)").network
    for block in blocks(network):
        ops = [layer.op for layer in block.branch]
        assert ops == ["conv", "norm", "act", "conv", "norm", "act", "se", "conv", "norm"]
        se = block.branch[6]
        assert se.reduce.conv.in_channels == block.mid_channels
        assert se.reduce.conv.out_channels == make_divisible(block.mid_channels / 16, 8)


@pytest.mark.parametrize("block", ["res2net", "sk_basic", "resnest"])
def test_attention_after_a_3x3_a_block_does_not_have_is_refused(block):
    result = analyze("  attention eca(after: 3x3)", block=block)
    assert "E402" in codes(result)
    message = next(d.message for d in result.diagnostics if d.code == "E402")
    assert "after the one 3x3 that makes a block's inner width" in message


def test_group_size_sets_each_stages_groups_from_its_width():
    network = analyze(block="bottleneck(group_size: 16)").network
    assert [(b.mid_channels, b.groups) for b in blocks(network)] == [
        (64, 4), (64, 4), (128, 8), (128, 8)
    ]  # fmt: skip
    spatial = [layer.conv.groups for layer in blocks(network)[0].branch if layer.op == "conv"]
    assert spatial == [1, 4, 1]


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ("bottleneck(group_size: 48)", "groups of 48 channels do not divide stage `layer1`"),
        ("bottleneck(group_size: 16, groups: 2)", "it cannot join `groups` or `group_width`"),
        ("basic(group_size: 16)", "blocks support neither groups nor group width"),
    ],
)
def test_group_size_problems_are_located(block, words):
    result = analyze(block=block)
    assert any(words in d.message for d in result.diagnostics), result.diagnostics


def test_a_head_convolution_and_a_stem_striding_last_are_costed():
    text = BASE.format(
        block="bottleneck",
        settings="  stem deep(pool: none, last_stride: 2)\n  head avgpool(features: 96)",
    )
    network = analyze(text=text).network
    stem = [layer.conv.stride for layer in network.stem.layers if layer.op == "conv"]
    assert stem == [2, 1, 2] and network.stem.out_shape.height == 16
    conv, norm, act = network.head.layers[:3]
    assert (conv.op, norm.op, act.op) == ("conv", "norm", "act")
    assert (conv.conv.in_channels, conv.conv.out_channels, norm.channels) == (512, 96, 96)
    assert network.head.in_features == 96
    assert network.head.params == 512 * 96 + 2 * 96 + 96 * 10 + 10


def test_a_quad_stem_has_four_convolutions_the_first_plain_ones_without_norms():
    settings = "  stem quad(channels: 64, plain: 2, pool: none, last_stride: 2)"
    network = analyze(settings).network
    ops = [layer.op for layer in network.stem.layers]
    assert ops == ["conv", "conv", "conv", "norm", "act", "conv", "norm", "act"]
    widths = [layer.conv.out_channels for layer in network.stem.layers if layer.op == "conv"]
    assert widths == [8, 16, 32, 64]


@pytest.mark.parametrize("channels", [16, 24, 60, 100, 256, 1536])
def test_global_context_widths_are_timms(channels):
    """The MLP's width against timm's GlobalContext built for the same channels."""
    from timm.layers import GlobalContext

    text = BASE.format(block="bottleneck", settings="  attention gc").replace(
        "2 x 64\n", f"2 x {channels // 4}\n"
    )
    block = blocks(analyze(text=text).network)[0]
    gc = block.branch[-1]
    reference = GlobalContext(gc.channels, fuse_add=True, fuse_scale=False)
    assert gc.channels == channels
    assert gc.fc1.conv.out_channels == reference.mlp_add.fc1.out_channels
    assert (gc.attend.torch, gc.fc1.torch, gc.norm.torch) == (
        "se.conv_attn", "se.mlp_add.fc1", "se.mlp_add.norm"
    )  # fmt: skip


def test_a_fixed_global_context_width_and_its_gating_names():
    network = analyze("  attention gc(width: 12, fuse: scale)").network
    gc = blocks(network)[0].branch[-1]
    assert (gc.fc1.conv.out_channels, gc.fuse, gc.ratio) == (12, "scale", None)
    assert gc.fc2.torch == "se.mlp_scale.fc2" and gc.keras == "gc"


def test_global_context_that_fuses_two_ways_is_refused():
    text = BASE.format(block="bottleneck", settings="  attention gc").replace(
        "2 x 128 / 2\n", "2 x 128 / 2 { attention gc(fuse: scale) }\n"
    )
    result = analyze(text=text)
    assert codes(result) == ["E408"]
    assert "global context fuses by scale, stage `layer1`'s fuses by add" in str(
        result.diagnostics[0].message
    )


def test_an_extra_3x3_follows_the_first_and_attention_after_both():
    """timm's `extra_conv`: `conv2b_kxk` after `conv2_kxk`, of the inner width, grouped, not
    strided; attention `after: 3x3` follows it."""
    settings = "  naming byobnet\n  attention se(after: 3x3)"
    network = analyze(settings, block="bottleneck(extra_3x3: on, group_size: 16)").network
    block = next(b for b in blocks(network) if b.stride == 2)
    convs = [x for x in block.branch if x.op == "conv"]
    assert [x.torch for x in convs] == [
        "conv1_1x1.conv", "conv2_kxk.conv", "conv2b_kxk.conv", "conv3_1x1.conv"
    ]  # fmt: skip
    assert [(x.conv.stride, x.conv.groups) for x in convs] == [(1, 1), (2, 8), (1, 8), (1, 1)]
    assert block.branch[block.branch.index(convs[3]) - 1].op == "se"
    assert block.branch[block.branch.index(convs[2]) + 3].op == "se"
    resnet = blocks(analyze(block="bottleneck(extra_3x3: on)").network)[0]
    names = [(x.torch, x.keras) for x in resnet.branch if x.op in ("conv", "norm")]
    assert names[4:6] == [("conv2b", "2b_conv"), ("bn2b", "2b_bn")]


def test_an_edge_block_is_a_3x3_to_the_inner_width_then_a_1x1():
    network = analyze("  naming byobnet", block="edge(group_size: 8)").network
    block = next(b for b in blocks(network) if b.stride == 2)
    convs = [x.conv for x in block.branch if x.op == "conv"]
    assert [(c.kernel, c.stride, c.groups, c.out_channels) for c in convs] == [
        (3, 2, 16, 128), (1, 1, 1, 128)
    ]  # fmt: skip
    assert [x.torch for x in block.branch if x.op == "conv"] == [
        "conv1_kxk.conv", "conv2_1x1.conv"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("block", "settings", "words"),
    [
        ("edge(stride_on: 1x1)", "", "`stride_on` (its one 3x3 strides)"),
        ("edge(reduce_first: 2)", "", "`reduce_first` (its 3x3 makes the inner width)"),
        ("edge", "  anti_alias blur", "`anti_alias` (its one 3x3 strides)"),
        # the grouped 3x3 reads the block's input: groups of one channel at the inner width
        ("edge(group_size: 1)", "", "128 groups do not divide the 64 channels"),
        ("preact_bottleneck(extra_3x3: on)", "", "extra_3x3"),
        ("aggregated(stride_on: 1x1)", "", "`stride_on` (each path's 3x3 strides)"),
        ("aggregated", "  anti_alias avg", "`anti_alias` (each path's 3x3 strides)"),
    ],
)
def test_what_edge_blocks_extra_3x3s_or_summed_paths_cannot_take_is_located(block, settings, words):
    result = analyze(settings, block=block)
    assert not result.ok
    error = next(d for d in result.diagnostics if d.severity == "error")
    assert words in error.message and error.span is not None, error.message


@pytest.mark.parametrize("channels", [16, 40, 64, 100, 512])
def test_bilinear_attention_widths_and_strips_are_timms(channels):
    """Bilinear attention's reduced width and its row and column convolutions against timm's
    BatNonLocalAttn built for the same channels."""
    from timm.layers.non_local_attn import BatNonLocalAttn

    text = BASE.format(block="bottleneck", settings="  attention bat(block_size: 8)")
    text = text.replace("2 x 64\n", f"2 x {channels // 4}\n")
    bat = blocks(analyze(text=text).network)[0].branch[-1]
    reference = BatNonLocalAttn(bat.channels, block_size=8)
    assert bat.channels == channels
    assert bat.reduced == reference.conv1.conv.out_channels
    assert bat.rows.tensors()["weight"] == tuple(reference.ba.conv_p.weight.shape)
    assert bat.columns.tensors()["weight"] == tuple(reference.ba.conv_q.weight.shape)
    assert (bat.reduce.torch, bat.rows.torch, bat.expand_norm.torch) == (
        "se.conv1.conv", "se.ba.conv_p", "se.conv2.bn"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "code", "words"),
    [
        ("  input 3x40x40\n  attention bat(block_size: 8)", "E504", "mixes a 20x20 map in"),
        ("  attention bat(groups: 3)", "E403", "3 groups do not divide its width 64"),
        ("  norm none\n  attention bat", "E402", "a network of `norm none` has no norm"),
    ],
)
def test_what_bilinear_attention_cannot_build_is_located(settings, code, words):
    text = BASE.format(block="bottleneck", settings=settings).replace(
        "network n {", "network n {\n  stem cifar"
    )
    if "input" in settings:
        text = text.replace("  input    3x64x64\n", "")
    result = analyze(text=text)
    error = next(d for d in result.diagnostics if d.code == code)
    assert words in error.message and error.span is not None, error.message


def test_aggregated_paths_are_resnexts_widths_summed_then_one_norm():
    """`block aggregated`'s defaults are ResNeXt-50 32x4d's: 32 paths of 4 channels at width
    64, each 1x1, 3x3 (strided), 1x1 on the whole input; their sum, then `bn3`."""
    network = analyze(block="aggregated").network
    block = next(b for b in blocks(network) if b.stride == 2)
    paths, norm = block.branch
    assert (paths.merge, paths.split, len(paths.paths), norm.torch) == ("sum", False, 32, "bn3")
    convs = [x for x in paths.paths[5].layers if x.op == "conv"]
    assert [(x.torch, x.conv.in_channels, x.conv.out_channels, x.conv.stride) for x in convs] == [
        ("paths.5.conv1", 256, 8, 1), ("paths.5.conv2", 8, 8, 2), ("paths.5.conv3", 8, 512, 1)
    ]  # fmt: skip


def test_caffes_stem_pool_rounds_up_and_is_not_padded():
    """`pool: max_ceil` (timm's legacy SENets' `pool0`): 3x3 at stride 2, no padding, ceil mode;
    a 35x35 map becomes 17x17 (timm's padded pool would give 18x18)."""
    text = BASE.format(block="basic", settings="  stem imagenet(pool: max_ceil)")
    network = analyze(text=text.replace("3x64x64", "3x70x70")).network
    (pool,) = [x for x in network.stem.layers if x.op == "pool"]
    assert (pool.pool.padding, pool.pool.ceil, pool.pool.kernel) == (0, True, 3)
    assert (network.stem.out_shape.height, network.stem.out_shape.width) == (17, 17)


def test_attention_after_an_activation_follows_the_last_norm_and_its_activation():
    network = analyze("  attention se(after: activation)", block="basic").network
    ops = [x.op for x in blocks(network)[0].branch]
    assert ops == ["conv", "norm", "act", "conv", "norm", "act", "se"]


@pytest.mark.parametrize(
    ("block", "settings", "words"),
    [
        ("preact_basic", "  attention se(after: activation)", "blocks end with a convolution"),
        ("basic", "  stem imagenet(pool: max_ceil)\n  anti_alias avg", "cannot be anti-aliased"),
    ],
)
def test_what_the_legacy_settings_cannot_do_is_located(block, settings, words):
    result = analyze(settings, block=block)
    error = next(d for d in result.diagnostics if d.code == "E402")
    assert words in error.message and error.span is not None, error.message
