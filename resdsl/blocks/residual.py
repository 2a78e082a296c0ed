"""The residual blocks of He et al.: basic (two 3x3 convolutions) and bottleneck (1x1, 3x3,
1x1; with `extra_3x3`, a second 3x3 after the first, timm's byobnet `extra_conv`), each
post-activation (the 2015 paper: a norm after each convolution, the activation
after the addition) or pre-activation (the 2016 paper: a norm and activation before each
convolution), named as torchvision and timm (`conv1`, `bn1`, ...; pre-activation blocks put
`bn{k}` before `conv{k}`) and keras.applications (`1_conv`, `1_bn`, `1_relu`; V2's
`preact_bn` before the first convolution, then `{k-1}_bn` before convolution k).

With anti-aliasing, the convolution that would stride runs at stride 1 and the anti-aliasing
layer strides after its activation (timm's `aa_layer`).

The edge block (timm's byobnet EdgeBlock) is the basic block with its second 3x3 a 1x1: a 3x3
to the inner width, which strides and takes the groups, and a 1x1 out.
"""

from __future__ import annotations

from typing import NamedTuple

from resdsl.blocks.recipe import BlockLayers, BlockRecipe, Builder, refuse
from resdsl.diagnostics import core as dx
from resdsl.ir import Conv, ConvLayer
from resdsl.language.schema import MAX_EXPANSION, MAX_WIDTH
from resdsl.language.values import choice, on_off, positive_number, whole_number


class Step(NamedTuple):
    """One convolution of a block, and what it takes of the block."""

    kernel: int
    source: str  # the width it reads: "in", "first", "mid"
    target: str  # the width it writes
    strided: bool  # applies the block's stride (or, with anti-aliasing, is followed by it)
    spatial: bool  # grouped (in a grouped kind) and dilated
    # dilated by the stage's dilation even in a dilated stage's first block (a basic block's
    # second 3x3, as timm's `dilation`; the others take the block's own, `first_dilation`)
    by_stage: bool = False
    # its number in the names, where not its position (the extra 3x3's `2b`: timm's
    # `conv2b_kxk`)
    label: str = ""


def basic_steps(spec) -> list[Step]:
    return [Step(3, "in", "first", True, True), Step(3, "first", "out", False, True, True)]


def bottleneck_steps(spec) -> list[Step]:
    on_1x1 = spec.stride_on == "1x1"  # None: the 3x3 strides (torchvision)
    extra = dict(spec.options).get("extra_3x3", False)
    return [
        Step(1, "in", "first", on_1x1, False),
        Step(3, "first", "mid", not on_1x1, True),
        *([Step(3, "mid", "mid", False, True, True, label="2b")] if extra else []),
        Step(1, "mid", "out", False, False, label="3"),
    ]


def edge_steps(spec) -> list[Step]:
    return [Step(3, "in", "mid", True, True), Step(1, "mid", "out", False, False)]


def convolutions(build: Builder, steps: list[Step], grouped: bool, preact: bool) -> BlockLayers:
    """A block of `steps` convolutions: post-activation, a norm after each and the
    activation between them; pre-activation, a norm and activation before each (the first
    pair before the branch splits off)."""
    spec, widths = build.spec, build.widths
    aa = build.anti_alias
    # The first convolution's output is a width of its own only where `reduce_first` makes it
    # so; elsewhere it is the inner width, and the generated class says so.
    if spec.reduce_first == 1:
        steps = [
            step._replace(**{k: "mid" for k in ("source", "target") if getattr(step, k) == "first"})
            for step in steps
        ]
    pre: list = []
    branch: list = []
    last = len(steps)
    words = _keras2_words(steps)
    for position, step in enumerate(steps, start=1):
        number = step.label or position
        word = words[position - 1]
        last_one = position == last
        # A post-activation block normalises after each convolution; a pre-activation block
        # before each, so its last convolution feeds the addition directly.
        normed = not preact or not last_one
        dilation = build.stage_dilation if step.by_stage else build.dilation
        dilation = dilation if step.spatial else 1
        strides_here = step.strided and aa is None
        conv = Conv(
            in_channels=widths[step.source],
            out_channels=widths[step.target],
            kernel=step.kernel,
            stride=build.stride if strides_here else 1,
            padding=dilation * (step.kernel // 2),
            dilation=dilation,
            groups=spec.groups if step.spatial and grouped else 1,
            bias=build.bias(normed),
        )
        # byobnet's names say the kernel: `conv1_1x1`, `conv2_kxk`
        shape = "1x1" if step.kernel == 1 else "kxk"
        role = "block.preact_conv" if preact else "block.conv"
        step_letter = "abcdefgh"[position - 1]  # torchvision's BottleneckTransform: `a`, `b`
        conv_layer = ConvLayer(
            **build.names(role, n=number, shape=shape, conv=word, step=step_letter),
            conv=conv,
            source=step.source,
            target=step.target,
            strided=strides_here,
            # Where no norm follows it, the last convolution starts the branch at zero.
            zero_init=(preact or not build.normalised) and last_one and build.zero_last,
            stage_dilated=step.by_stage,
        )
        blur = (
            [build.anti_aliasing(build.names("block.anti_alias"), step.target)]
            if step.strided and aa is not None
            else []
        )
        if preact:
            first = ".first" if position == 1 else ""
            where = {"n": position, "m": position - 1, "conv": word}
            norm = build.norm(build.names(f"block.preact_norm{first}", **where), step.source)
            act = build.act(build.names(f"block.preact_act{first}", **where))
            (pre if position == 1 else branch).extend([*norm, act])
            branch += [conv_layer, *blur]
        else:
            branch.append(conv_layer)
            zero = last_one and build.zero_last
            names = build.names("block.norm", n=number, shape=shape, conv=word, step=step_letter)
            branch += build.norm(names, step.target, zero_init=zero)
            if not last_one:
                act = build.names("block.act", n=number, shape=shape, conv=word, step=step_letter)
                branch.append(build.act(act))
            branch += blur
    # timm's `linear_out` (RegNetZ): no activation after the addition
    out_act = dict(spec.options).get("out_activation", True)
    post = () if preact or not out_act else (build.act(build.names("block.out_act")),)
    return BlockLayers(pre=tuple(pre), branch=tuple(branch), post=post)


def _keras2_words(steps: list[Step]) -> list[str]:
    """Each convolution in Keras 2's RegNet words: `conv_3x3`, or `conv_1x1_1` and `conv_1x1_2`
    where a kernel occurs twice."""
    kernels = [step.kernel for step in steps]
    seen: dict[int, int] = {}
    words = []
    for kernel in kernels:
        seen[kernel] = seen.get(kernel, 0) + 1
        word = f"conv_{kernel}x{kernel}"
        words.append(f"{word}_{seen[kernel]}" if kernels.count(kernel) > 1 else word)
    return words


def check(stage, block, mid: int, report) -> None:
    """Groups divide the inner width, the first convolution keeps a channel, the expansion is
    at least 1; a basic block takes neither groups nor a stride placement."""
    basic = block.layout == "basic"
    grouped = block.groups != 1 or block.group_width is not None
    if basic and (grouped or block.group_size is not None):
        report(
            dx.E_BASIC_GROUPS,
            f"`{block.name}` blocks support neither groups nor group width",
            help="use `bottleneck(groups: 32, group_width: 4)` for ResNeXt",
        )
    if basic and block.stride_on is not None:
        report(
            dx.E_STRIDE_ON_BASIC,
            f"`stride_on` places the stride inside a bottleneck; `{block.name}` has none",
            help="remove `stride_on`",
        )
    if mid < 1:
        report(
            dx.E_NO_WIDTH,
            f"stage `{stage.name}`'s inner width rounds to 0 "
            f"(width {stage.width} with this block's group width or width factor)",
            label=f"in stage `{stage.name}`",
            help="widen the stage, or raise `group_width` / `width_factor`",
        )
    elif block.group_size is not None and grouped:
        report(
            dx.E_GROUPS_DIVIDE,
            "`group_size` sets the groups from each stage's width; it cannot join `groups` "
            "or `group_width`",
            help="remove `groups` and `group_width`, or `group_size`",
        )
    elif block.group_size is not None and mid % block.group_size:
        report(
            dx.E_GROUPS_DIVIDE,
            f"groups of {block.group_size} channels do not divide stage `{stage.name}`'s "
            f"inner width {mid}",
            label=f"inner width {mid} in stage `{stage.name}`",
            help="choose a group size that divides every stage's inner width",
        )
    elif not basic and mid % block.groups:
        report(
            dx.E_GROUPS_DIVIDE,
            f"{block.groups} groups do not divide stage `{stage.name}`'s inner width {mid}",
            label=f"inner width {mid} in stage `{stage.name}`",
            help="choose groups that divide the width, or a `group_width`",
        )
    elif mid // block.reduce_first < 1:
        report(
            dx.E_NO_WIDTH,
            f"stage `{stage.name}`'s first convolution has no channels: inner width {mid} "
            f"over `reduce_first: {block.reduce_first}`",
            label=f"in stage `{stage.name}`",
            help="lower `reduce_first` or widen the stage",
        )
    if block.expansion < 1:
        report(
            dx.E_EXPANSION,
            f"expansion {block.expansion:g} is below 1: blocks would narrow their output",
            help="use an expansion of 1 (basic) or more (4 for bottlenecks)",
        )


# Every residual block's arguments. Basic blocks read the bottleneck's too, so that their check
# can say why they do not apply (E401, E405) rather than "unknown argument".
ARGUMENTS = {
    "expansion": positive_number(MAX_EXPANSION),
    "groups": whole_number(1, MAX_WIDTH),
    "group_width": whole_number(1, MAX_WIDTH),
    "width_factor": positive_number(64),
    "stride_on": choice("1x1", "3x3"),
    "reduce_first": whole_number(1, MAX_EXPANSION),
}
DOCS = {
    "expansion": "the output width over the stage's width",
    "groups": "groups of the 3x3 convolution (ResNeXt's cardinality)",
    "group_width": "each group's width at stage width 64 (ResNeXt's d in 32x4d)",
    "group_size": "each group's channels in every stage: groups are the inner width over it",
    "width_factor": "the inner width over the stage's width (Wide ResNet)",
    "stride_on": "the convolution that strides: `3x3` (torchvision) or `1x1` (Caffe, v1)",
    "reduce_first": "the first convolution's output is the inner width over this",
    "extra_3x3": "a second 3x3 after the first, of the inner width (timm's `extra_conv`)",
    "out_activation": "the activation after the addition; `off`: none (timm's `linear_out`)",
}
BOTTLENECK_ONLY = frozenset({"groups", "group_width", "group_size", "stride_on"})
# The residual blocks' own: groups of a fixed size (byobnet's and RegNet's `group_size`).
RESIDUAL_ARGUMENTS = {**ARGUMENTS, "group_size": whole_number(1, MAX_WIDTH)}


def _recipe(name: str, summary: str, bottleneck: bool, preact: bool) -> BlockRecipe:
    steps = bottleneck_steps if bottleneck else basic_steps
    extra = bottleneck and not preact  # a second 3x3 (`extra_3x3`), post-activation only

    def build(builder: Builder) -> BlockLayers:
        return convolutions(builder, steps(builder.spec), bottleneck, preact)

    post = {} if preact else {"out_activation": on_off}  # a pre-activation block has none
    return BlockRecipe(
        name=name,
        summary=summary,
        build=build,
        arguments={**RESIDUAL_ARGUMENTS, **({"extra_3x3": on_off} if extra else {}), **post},
        defaults={
            "expansion": 4.0 if bottleneck else 1.0,
            **({"extra_3x3": False} if extra else {}),
            **({"out_activation": True} if not preact else {}),
        },
        layout="bottleneck" if bottleneck else "basic",
        class_words=("Bottleneck",) if bottleneck else ("Basic", "Block"),
        preact=preact,
        grouped=bottleneck,
        inapplicable=frozenset() if bottleneck else BOTTLENECK_ONLY,
        check=check,
        docs=DOCS,
    )


def _edge(builder: Builder) -> BlockLayers:
    return convolutions(builder, edge_steps(builder.spec), True, False)


def edge_check(stage, block, mid: int, report) -> None:
    """What a bottleneck checks of its widths and groups; the edge block's one 3x3 strides and
    makes the inner width, so neither `stride_on` nor `reduce_first` applies."""
    check(stage, block, mid, report)
    refuse(
        stage,
        block,
        report,
        {
            "stride_on": "its one 3x3 strides",
            "reduce_first": "its 3x3 makes the inner width",
            "anti_alias": "its one 3x3 strides",
        },
        "bottleneck",
    )


RECIPES = (
    _recipe("basic", "two 3x3 convolutions (ResNet-18/34)", False, False),
    _recipe("bottleneck", "1x1, 3x3 and 1x1 convolutions (ResNet-50 and deeper)", True, False),
    _recipe("preact_basic", "two 3x3 convolutions, each after a norm and activation", False, True),
    _recipe(
        "preact_bottleneck",
        "1x1, 3x3 and 1x1 convolutions, each after a norm and activation",
        True,
        True,
    ),
    BlockRecipe(
        name="edge",
        summary="a 3x3 to the inner width, then a 1x1 (timm's byobnet EdgeBlock)",
        build=_edge,
        arguments=RESIDUAL_ARGUMENTS,
        defaults={"expansion": 1.0},
        layout="edge",
        class_words=("Edge", "Block"),
        grouped=True,
        check=edge_check,
        docs=DOCS,
    ),
)
