"""ResNeXt's block as its paper first draws it (Xie et al., 2017, Fig. 3a): the aggregated
transformations as `groups` parallel paths, each a 1x1 convolution to the path's width, a 3x3
(which strides) and a 1x1 out, every path on the whole input, their outputs summed (a composite
layer, :class:`resdsl.ir.BranchLayer`, merge "sum"), then one norm, the shortcut added and the
activation.

With that one norm after the sum, it computes what the grouped bottleneck computes (Fig. 3c,
`bottleneck(groups: 32, group_width: 4)`): the paths' first 1x1s are the bottleneck's first 1x1
cut by output channels, their 3x3s its groups, their last 1x1s its last 1x1 cut by input
channels, which the sum adds back up (tests/parity/test_aggregated.py compares the two with
torchvision's ResNeXt-50 weights). The widths follow ResNeXt's: the inner width is the paths'
widths together, `int(width * group_width / 64) * groups`.
"""

from __future__ import annotations

from resdsl.blocks.recipe import BlockLayers, BlockRecipe, Builder, refuse
from resdsl.blocks.residual import ARGUMENTS, DOCS
from resdsl.blocks.residual import check as residual_check
from resdsl.ir import BranchLayer, BranchPath, Conv, ConvLayer


def _path(build: Builder, i: int) -> BranchPath:
    """Path `i` (from 0): a 1x1 to the path's width, a 3x3, a 1x1 out, a norm and the
    activation after the first two."""
    widths = build.widths
    steps = (
        (1, "in", "path", False),
        (3, "path", "path", True),
        (1, "path", "out", False),
    )
    layers: list = []
    for n, (kernel, source, target, strided) in enumerate(steps, start=1):
        where = {"i": i, "k": i + 1, "n": n}
        dilation = build.dilation if kernel > 1 else 1
        layers.append(
            ConvLayer(
                **build.names("block.path_conv", **where),
                conv=Conv(
                    in_channels=widths[source],
                    out_channels=widths[target],
                    kernel=kernel,
                    stride=build.stride if strided else 1,
                    padding=dilation * (kernel // 2),
                    dilation=dilation,
                    bias=build.bias(True),  # the last 1x1's norm follows the sum
                ),
                source=source,
                target=target,
                strided=strided,
            )
        )
        if n < 3:
            layers += build.norm(build.names("block.path_norm", **where), "path")
            layers.append(build.act(build.names("block.path_act", **where)))
    return BranchPath(layers=tuple(layers))


def _build(build: Builder) -> BlockLayers:
    spec, widths = build.spec, build.widths
    paths = spec.groups
    widths["path"] = widths["mid"] // paths
    aggregate = BranchLayer(
        **build.names("block.paths"),
        channels=widths["in"],
        split=False,
        paths=tuple(_path(build, i) for i in range(paths)),
        merge="sum",
        width="out",
    )
    zero = build.zero_last
    norm = build.norm(build.names("block.norm", n=3), "out", zero_init=zero)
    return BlockLayers(branch=(aggregate, *norm), post=(build.act(build.names("block.out_act")),))


def check(stage, block, mid: int, report) -> None:
    """What a bottleneck checks of its widths (the groups, its paths, divide the inner width),
    and what the paths cannot do: place the stride elsewhere, narrow the first 1x1, anti-alias."""
    residual_check(stage, block, mid, report)
    refuse(
        stage,
        block,
        report,
        {
            "stride_on": "each path's 3x3 strides",
            "reduce_first": "each path's 1x1 makes its width",
            "anti_alias": "each path's 3x3 strides",
        },
        "bottleneck",
    )


RECIPES = (
    BlockRecipe(
        name="aggregated",
        summary="ResNeXt's paths, 1x1, 3x3 and 1x1 each, summed (Xie et al.'s Fig. 3a)",
        build=_build,
        arguments=ARGUMENTS,
        defaults={"expansion": 4.0, "groups": 32, "group_width": 4},
        layout="bottleneck",
        class_words=("Aggregated", "Bottleneck"),
        grouped=True,
        check=check,
        docs={**DOCS, "groups": "the paths (ResNeXt's cardinality)"},
    ),
)
