"""SKNet's blocks (Li et al., 2019, as timm's SelectiveKernelBasic and SelectiveKernelBottleneck):
the basic block's first 3x3, or the bottleneck's 3x3, becomes a selective kernel convolution.

The selective kernel is one composite layer (:class:`resdsl.ir.BranchLayer`, merge "select"):
`paths` 3x3 convolutions, path k (from 1) dilated k times the block's dilation (timm's 3x3 and
5x5 kernels kept 3x3 and dilated), each with its norm and activation, on the whole input or,
with `split`, each on its share of the channels; their sum's channel means through a 1x1
reduction, norm and ReLU to a 1x1 selection of one weight per path and channel, a softmax
across the paths, and the paths' outputs summed by those weights. The reduced width is the
output's over `reduction`, rounded to a multiple of `divisor` (timm's `make_divisible` with
its 0.9 round limit).

Every other convolution keeps its norm and activation in one module, as timm's ConvNormAct:
`conv1.conv`, `conv1.bn`; the selective kernel's are `conv2.paths.{i}.conv` and
`conv2.attn.fc_reduce` (see :mod:`resdsl.ir.naming`).
"""

from __future__ import annotations

from resdsl.blocks.recipe import BlockLayers, BlockRecipe, Builder, refuse
from resdsl.blocks.residual import ARGUMENTS, DOCS, Step, basic_steps, bottleneck_steps
from resdsl.blocks.residual import check as residual_check
from resdsl.ir import (
    BranchLayer,
    BranchPath,
    Conv,
    ConvLayer,
    SelectAttention,
    make_divisible,
)
from resdsl.language.schema import MAX_WIDTH
from resdsl.language.values import on_off, positive_number, whole_number

MAX_PATHS = 4
ROUND_LIMIT = 0.9  # timm's make_divisible default, which SelectiveKernel keeps


def _selective(build: Builder, number: int, step: Step) -> BranchLayer:
    """Convolution `number` as a selective kernel from `step.source` to `step.target`."""
    spec, widths = build.spec, build.widths
    count, split = spec.option("paths"), spec.option("split")
    channels, out = widths[step.source], widths[step.target]
    groups = min(out, spec.groups)  # timm's SelectiveKernel caps the groups at the output
    paths = []
    for i in range(count):
        where = {"n": number, "i": i, "k": i + 1}
        dilation = build.dilation * (i + 1)
        conv = ConvLayer(
            **build.names("block.selective_conv", **where),
            conv=Conv(
                in_channels=channels // count if split else channels,
                out_channels=out,
                kernel=3,
                stride=build.stride,
                padding=dilation,
                dilation=dilation,
                groups=groups,
                bias=build.bias(True),
            ),
            source=step.source,
            target=step.target,
            strided=True,
        )
        layers = (
            conv,
            *build.norm(build.names("block.selective_norm", **where), step.target),
            build.act(build.names("block.selective_act", **where)),
        )
        paths.append(BranchPath(layers=layers))
    reduction, divisor = spec.option("reduction"), spec.option("divisor")
    reduced = make_divisible(out / reduction, divisor, ROUND_LIMIT)
    build.widths["reduced"] = reduced
    attention = SelectAttention(
        reduce=ConvLayer(
            **build.names("block.selective_reduce", n=number),
            conv=Conv(in_channels=out, out_channels=reduced, kernel=1),
            source=step.target,
            target="reduced",
        ),
        norm=tuple(build.norm(build.names("block.selective_attn_norm", n=number), "reduced")),
        select=ConvLayer(
            **build.names("block.selective_select", n=number),
            conv=Conv(in_channels=reduced, out_channels=out * count, kernel=1),
            source="reduced",
            target="reduced",
        ),
        ratio=1 / reduction,
        divisor=divisor,
        round_limit=ROUND_LIMIT,
    )
    return BranchLayer(
        **build.names("block.selective", n=number),
        channels=channels,
        split=split,
        paths=tuple(paths),
        merge="select",
        attention=attention,
        width=step.target,
    )


def _blocks(steps):
    """The layers of a selective kernel block whose convolutions are `steps` (the strided 3x3
    is the selective kernel)."""

    def build(build: Builder) -> BlockLayers:
        spec, widths = build.spec, build.widths
        chosen = steps(spec)
        if spec.reduce_first == 1:  # as residual.convolutions: no width of its own
            chosen = [
                s._replace(**{k: "mid" for k in ("source", "target") if getattr(s, k) == "first"})
                for s in chosen
            ]
        branch: list = []
        last = len(chosen)
        for number, step in enumerate(chosen, start=1):
            if step.strided:
                branch.append(_selective(build, number, step))
                continue
            dilation = build.stage_dilation if step.by_stage else build.dilation
            dilation = dilation if step.spatial else 1
            branch.append(
                ConvLayer(
                    **build.names("block.unit_conv", n=number),
                    conv=Conv(
                        in_channels=widths[step.source],
                        out_channels=widths[step.target],
                        kernel=step.kernel,
                        padding=dilation * (step.kernel // 2),
                        dilation=dilation,
                        bias=build.bias(True),
                    ),
                    source=step.source,
                    target=step.target,
                    zero_init=not build.normalised and number == last and build.zero_last,
                    stage_dilated=step.by_stage,
                )
            )
            zero = number == last and build.zero_last
            names = build.names("block.unit_norm", n=number)
            branch += build.norm(names, step.target, zero_init=zero)
            if number < last:
                branch.append(build.act(build.names("block.unit_act", n=number)))
        return BlockLayers(branch=tuple(branch), post=(build.act(build.names("block.out_act")),))

    return build


def check(stage, block, mid: int, report) -> None:
    """What a basic block or bottleneck checks, and what the selective kernel cannot do: place
    its stride elsewhere, or anti-alias (split paths that do not divide their input are the
    validation passes' E403)."""
    residual_check(stage, block, mid, report)
    refuse(
        stage,
        block,
        report,
        {
            "stride_on": "the selective kernel strides",
            "anti_alias": "each path of the selective kernel strides",
        },
        block.layout,
    )


ARGS = {
    **ARGUMENTS,
    "paths": whole_number(2, MAX_PATHS),
    "split": on_off,
    "reduction": positive_number(MAX_WIDTH),
    "divisor": whole_number(1, MAX_WIDTH),
}
SK_DOCS = {
    **DOCS,
    "paths": "the selective kernel's 3x3s, path k dilated k times (timm's 3x3 and 5x5: 2)",
    "split": "each path reads its share of the input's channels, not all of them",
    "reduction": "the attention's width is the output's over this, rounded to `divisor`",
    "divisor": "the attention's width is a multiple of this",
}

RECIPES = (
    BlockRecipe(
        name="sk_basic",
        summary="a selective kernel 3x3 then a 3x3 (SKNet's SelectiveKernelBasic)",
        build=_blocks(basic_steps),
        arguments=ARGS,
        defaults={"paths": 2, "split": True, "reduction": 8.0, "divisor": 16},
        layout="basic",
        class_words=("Selective", "Kernel", "Basic"),
        inapplicable=frozenset({"groups", "group_width", "stride_on"}),
        check=check,
        docs=SK_DOCS,
    ),
    BlockRecipe(
        name="sk_bottleneck",
        summary="1x1, a selective kernel 3x3, 1x1 (SKNet's SelectiveKernelBottleneck)",
        build=_blocks(bottleneck_steps),
        arguments=ARGS,
        defaults={
            "expansion": 4.0,
            "paths": 2,
            "split": True,
            "reduction": 16.0,
            "divisor": 8,
        },
        layout="bottleneck",
        class_words=("Selective", "Kernel", "Bottleneck"),
        grouped=True,
        inapplicable=frozenset({"stride_on"}),
        check=check,
        docs=SK_DOCS,
    ),
)
