"""ResNeSt's bottleneck (Zhang et al., 2020, as timm's ResNestBottleneck): the bottleneck's 3x3
is split attention.

Split attention is one composite layer (:class:`resdsl.ir.BranchLayer`, merge "select") whose
`radix` paths one grouped 3x3 makes at once (its `shared` layers: the convolution, in
`groups * radix` groups, its norm and a ReLU); each path is a slice of its output. The paths'
sum, averaged over the map, goes through a grouped 1x1 with bias to the attention's width (the
paths' channels over `reduction`, a multiple of `divisor`, at least 32: timm's rounding), a norm
and ReLU, and a grouped 1x1 with bias to one weight per path and channel; a softmax across the
paths within each group (with one path, a sigmoid) gives the weights that sum the paths.

Where the block strides, an average pool (3x3, padding 1) applies the stride before split
attention (`avd_first`) or after it (the default), and the 3x3 does not stride (timm's `avd`);
with `avd: off` the 3x3 strides. Named as timm does: `conv2.conv`, `conv2.bn0`, `conv2.fc1`,
`conv2.bn1`, `conv2.fc2`, `avd_last`.
"""

from __future__ import annotations

from resdsl.blocks.recipe import BlockLayers, BlockRecipe, Builder, refuse
from resdsl.blocks.residual import ARGUMENTS, DOCS
from resdsl.blocks.residual import check as bottleneck_check
from resdsl.ir import (
    ActLayer,
    BranchLayer,
    BranchPath,
    Conv,
    ConvLayer,
    Pool,
    PoolLayer,
    SelectAttention,
    make_divisible,
)
from resdsl.language.schema import MAX_WIDTH
from resdsl.language.values import on_off, positive_number, whole_number

MAX_RADIX = 8
ROUND_LIMIT = 0.9  # timm's make_divisible default, which SplitAttn keeps
MINIMUM = 32  # timm's SplitAttn: the attention is at least 32 wide


def _split_attention(build: Builder, stride: int) -> BranchLayer:
    spec, widths = build.spec, build.widths
    radix, groups, mid = spec.option("radix"), spec.groups, widths["mid"]
    dilation = build.dilation
    conv = ConvLayer(
        **build.names("block.split_conv", n=2),
        conv=Conv(
            in_channels=mid,
            out_channels=mid * radix,
            kernel=3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            groups=groups * radix,
            bias=build.bias(True),
        ),
        source="mid",
        target="wide",
        # as an anti-aliased convolution: where an average pool applies the stride, not this
        strided=stride == build.stride,
    )
    reduction, divisor = spec.option("reduction"), spec.option("divisor")
    reduced = make_divisible(mid * radix / reduction, divisor, ROUND_LIMIT, MINIMUM)
    build.widths["reduced"] = reduced
    build.widths["wide"] = mid * radix  # every path's channels, side by side
    shared = (
        conv,
        *build.norm(build.names("block.split_norm", n=2), "wide"),
        ActLayer(**build.names("block.split_act", n=2), kind="relu"),
    )
    attention = SelectAttention(
        reduce=ConvLayer(
            **build.names("block.split_reduce", n=2),
            conv=Conv(in_channels=mid, out_channels=reduced, kernel=1, groups=groups, bias=True),
            source="mid",
            target="reduced",
        ),
        norm=tuple(build.norm(build.names("block.split_attn_norm", n=2), "reduced")),
        select=ConvLayer(
            **build.names("block.split_select", n=2),
            conv=Conv(
                in_channels=reduced, out_channels=mid * radix, kernel=1, groups=groups, bias=True
            ),
            source="reduced",
            target="reduced",
        ),
        gate="softmax" if radix > 1 else "sigmoid",
        groups=groups,
        ratio=radix / reduction,
        divisor=divisor,
        round_limit=ROUND_LIMIT,
        minimum=MINIMUM,
    )
    return BranchLayer(
        **build.names("block.split_attention", n=2),
        channels=mid,
        split=True,
        paths=tuple(BranchPath() for _ in range(radix)),
        shared=shared,
        merge="select",
        attention=attention,
        width="mid",
    )


def _layers(build: Builder) -> BlockLayers:
    spec, widths = build.spec, build.widths
    avd = spec.option("avd") and build.stride > 1
    first = spec.option("avd_first")
    reduce = ConvLayer(
        **build.names("block.conv", n=1),
        conv=Conv(
            in_channels=widths["in"], out_channels=widths["mid"], kernel=1, bias=build.bias(True)
        ),
        source="in",
        target="mid",
    )
    pool = []
    if avd:  # timm's AvgPool2d(3, stride, padding=1), which counts the padding in the average
        window = Pool(kind="avg", kernel=3, stride=build.stride, padding=1)
        role = "block.avd_first" if first else "block.avd_last"
        pool = [PoolLayer(**build.names(role), pool=window, strided=True, before=first)]
    expand = ConvLayer(
        **build.names("block.conv", n=3),
        conv=Conv(
            in_channels=widths["mid"], out_channels=widths["out"], kernel=1, bias=build.bias(True)
        ),
        source="mid",
        target="out",
        zero_init=not build.normalised and build.zero_last,
    )
    branch = [
        reduce,
        *build.norm(build.names("block.norm", n=1), "mid"),
        build.act(build.names("block.act", n=1)),
        *(pool if first else []),
        _split_attention(build, 1 if avd else build.stride),
        *([] if first else pool),
        expand,
        *build.norm(build.names("block.norm", n=3), "out", zero_init=build.zero_last),
    ]
    return BlockLayers(branch=tuple(branch), post=(build.act(build.names("block.out_act")),))


def check(stage, block, mid: int, report) -> None:
    """What a bottleneck checks of its widths and groups, and what split attention cannot do
    (timm's ResNestBottleneck asserts as much): place its stride elsewhere, reduce its first
    convolution, or anti-alias."""
    bottleneck_check(stage, block, mid, report)
    refuse(
        stage,
        block,
        report,
        {
            "stride_on": "the 3x3 or the average pool strides: `avd`",
            "reduce_first": "timm's ResNeSt does not reduce its first 1x1",
            "anti_alias": "`avd` places an average pool where the block strides",
        },
        "bottleneck",
    )


RECIPES = (
    BlockRecipe(
        name="resnest",
        summary="1x1, split attention over `radix` paths of a grouped 3x3, 1x1 (ResNeSt)",
        build=_layers,
        arguments={
            **ARGUMENTS,
            "radix": whole_number(1, MAX_RADIX),
            "avd": on_off,
            "avd_first": on_off,
            "reduction": positive_number(MAX_WIDTH),
            "divisor": whole_number(1, MAX_WIDTH),
        },
        defaults={
            "expansion": 4.0,
            "group_width": 64,
            "radix": 2,
            "avd": True,
            "avd_first": False,
            "reduction": 4.0,
            "divisor": 8,
        },
        layout="bottleneck",
        class_words=("ResNest", "Bottleneck"),
        grouped=True,
        inapplicable=frozenset({"stride_on", "reduce_first"}),
        check=check,
        docs={
            **DOCS,
            "radix": "the paths of split attention, all made by one grouped 3x3 (ResNeSt's 2s)",
            "avd": "where the block strides, an average pool applies the stride, not the 3x3",
            "avd_first": "that pool comes before split attention rather than after it",
            "reduction": "the attention's width is the paths' channels over this (at least 32)",
            "divisor": "the attention's width is a multiple of this",
            "group_width": "each group's width at stage width 64 (ResNeSt's 40d in 2x40d)",
        },
    ),
)
