"""Res2Net's bottleneck (Gao et al., 2019; timm's `Bottle2neck`): a 1x1 convolution to `scale`
splits of the inner width, the splits through a hierarchy of 3x3 convolutions, then the 1x1
back out. Split k (k < scale) goes through its own 3x3, norm and activation, after adding the
previous 3x3's output to it; the last split passes through. The first block of a stage (one
that strides or widens, timm's `is_first`) adds nothing up and average-pools the last split
by its stride instead.

The hierarchy is one composite layer (:class:`resdsl.ir.BranchLayer`), named as timm does:
`convs.{i}`, `bns.{i}` and `pool` inside the block; Keras names `2_{n}_conv`, `2_{n}_bn`,
`2_{n}_add`, `2_pool` and `2_concat`. The inner width is ResNeXt's (`group_width` at stage width
64, times `groups`: timm's `base_width` and `cardinality`), and is each split's.
"""

from __future__ import annotations

from resdsl.blocks.recipe import BlockLayers, BlockRecipe, Builder, refuse
from resdsl.blocks.residual import ARGUMENTS, DOCS
from resdsl.blocks.residual import check as bottleneck_check
from resdsl.ir import BranchLayer, BranchPath, Conv, ConvLayer, Pool, PoolLayer
from resdsl.language.values import whole_number

MAX_SCALE = 64


def first_of_stage(build: Builder) -> bool:
    """timm's `is_first`: the block strides or widens (where its shortcut projects)."""
    return build.stride != 1 or build.widths["in"] != build.widths["out"]


def _layers(build: Builder) -> BlockLayers:
    spec, widths = build.spec, build.widths
    scale = spec.option("scale")
    widths["wide"] = scale * widths["mid"]
    first = first_of_stage(build)
    dilation = build.dilation

    reduce = ConvLayer(
        **build.names("block.conv", n=1),
        conv=Conv(
            in_channels=widths["in"], out_channels=widths["wide"], kernel=1, bias=build.bias(True)
        ),
        source="in",
        target="wide",
    )
    paths = []
    for i in range(scale - 1):
        where = {"i": i, "n": i + 1}
        spatial = ConvLayer(
            **build.names("block.scale_conv", **where),
            conv=Conv(
                in_channels=widths["mid"],
                out_channels=widths["mid"],
                kernel=3,
                stride=build.stride,
                padding=dilation,
                dilation=dilation,
                groups=spec.groups,
                bias=build.bias(True),
            ),
            source="mid",
            target="mid",
            strided=True,
        )
        layers = (
            spatial,
            *build.norm(build.names("block.scale_norm", **where), "mid"),
            build.act(build.names("block.scale_act", **where)),
        )
        adds = i > 0 and not first
        add = build.names("block.scale_add", **where)["keras"] if adds else ""
        paths.append(BranchPath(layers=layers, adds_previous=adds, add=add))
    # The last split passes through; a stage's first block pools it by its stride (timm's
    # AvgPool2d(3, stride, padding=1), which counts the padding in the average).
    last = ()
    if first:
        pool = Pool(kind="avg", kernel=3, stride=build.stride, padding=1)
        last = (PoolLayer(**build.names("block.scale_pool"), pool=pool, strided=True),)
    paths.append(BranchPath(layers=last))
    hierarchy = BranchLayer(
        **build.names("block.scales"), channels=widths["wide"], split=True, paths=tuple(paths)
    )
    expand = ConvLayer(
        **build.names("block.conv", n=3),
        conv=Conv(
            in_channels=widths["wide"],
            out_channels=widths["out"],
            kernel=1,
            bias=build.bias(True),
        ),
        source="wide",
        target="out",
        zero_init=not build.normalised and build.zero_last,
    )
    branch = [
        reduce,
        *build.norm(build.names("block.norm", n=1), "wide"),
        build.act(build.names("block.act", n=1)),
        hierarchy,
        expand,
        *build.norm(build.names("block.norm", n=3), "out", zero_init=build.zero_last),
    ]
    return BlockLayers(branch=tuple(branch), post=(build.act(build.names("block.out_act")),))


def check(stage, block, mid: int, report) -> None:
    """What a bottleneck checks of its widths and groups, and what the hierarchy cannot do:
    place its stride on the 1x1, reduce its first convolution, or anti-alias."""
    bottleneck_check(stage, block, mid, report)
    refuse(
        stage,
        block,
        report,
        {
            "stride_on": "every split's 3x3 strides",
            "reduce_first": "the 1x1 makes `scale` splits of the inner width",
            "anti_alias": "timm's Bottle2neck strides each split's 3x3",
        },
        "bottleneck",
    )


RECIPES = (
    BlockRecipe(
        name="res2net",
        summary="1x1, a hierarchy of 3x3s over `scale` splits, 1x1 (Res2Net)",
        build=_layers,
        arguments={**ARGUMENTS, "scale": whole_number(2, MAX_SCALE)},
        defaults={"expansion": 4.0, "group_width": 26, "scale": 4},
        layout="bottleneck",
        class_words=("Bottle2neck",),
        grouped=True,
        inapplicable=frozenset({"stride_on", "reduce_first"}),
        check=check,
        docs={
            **DOCS,
            "scale": "the splits of the inner width, each but the last through its own 3x3",
            "group_width": "each split's width at stage width 64 (Res2Net's base width, 26w)",
        },
    ),
)
