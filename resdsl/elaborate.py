"""Phase 3: the typed spec to the elaborated network (:class:`resdsl.ir.Network`).

Pure arithmetic and naming: every layer of the stem, the blocks and the head, typed, with its
PyTorch and Keras names (chosen here, once, for every consumer), and the channels, strides,
shortcut kinds, shapes, parameters and multiply-accumulates of every block. It never rejects
anything; the validation passes read its result and report.
Sizes that would vanish are kept at zero so that a broken spec still elaborates.

A stage is elaborated as at most three runs of identical blocks, so the cost does not grow
with depth.
"""

from __future__ import annotations

import hashlib
import os
import re

from .ir import (
    ActLayer,
    Block,
    BlockRun,
    BlockSpec,
    Conv,
    Conventions,
    ConvLayer,
    DropoutLayer,
    GlobalPoolLayer,
    Head,
    LinearLayer,
    Network,
    NetworkSpec,
    NormLayer,
    PadChannelsLayer,
    Pool,
    PoolLayer,
    Shape,
    Shortcut,
    ShortcutSpec,
    Source,
    Stage,
    StageSpec,
    Stem,
)


def elaborate(spec: NetworkSpec, source_text: str) -> Network:
    ctx = _Context(spec)
    c, h, w = spec.input
    stem = _stem(spec, Shape(channels=c, height=h, width=w), ctx.bias, ctx.torch_act)
    shape = stem.out_shape
    stages = []
    index = 0
    for number, stage_spec in enumerate(spec.stages):
        stage = _stage(stage_spec, number, index, shape, ctx)
        stages.append(stage)
        shape = stage.out_shape
        index += stage.blocks
    head = _head(spec, shape, stages, ctx)
    parts = [stem, *stages, head]
    return Network(
        name=spec.name,
        source=Source(
            file=_safe_file_name(spec.file),
            sha256=hashlib.sha256(source_text.encode("utf-8")).hexdigest(),
        ),
        input=Shape(channels=c, height=h, width=w),
        classes=spec.classes,
        conventions=Conventions(
            conv_bias=spec.conv_bias,
            norm_eps=spec.norm.eps,
            norm_momentum=spec.norm.momentum,
            activation=spec.activation,
            init=spec.init.scheme,
            zero_last_norm=spec.init.zero_last_norm,
            stochastic_depth=spec.stochastic_depth,
        ),
        stem=stem,
        stages=tuple(stages),
        head=head,
        total_blocks=index,
        params=sum(p.params for p in parts),
        norm_stats=sum(p.norm_stats for p in parts),
        macs=sum(p.macs for p in parts),
        output_shape=(spec.classes,),
        span=spec.span,
        spans=spec.spans,
    )


def _safe_file_name(path: str) -> str:
    """The spec's file name as it may appear in generated code: without its folder (output must
    not change with the directory it was compiled from) and with anything outside a plain
    file-name alphabet replaced, so no quote, backslash or newline can reach a docstring."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", os.path.basename(path))[:128] or "spec.res"


def _bias_rule(conv_bias: str):
    """Whether a convolution has a bias, given whether a norm follows it."""
    if conv_bias == "on":
        return lambda normed: True
    if conv_bias == "off":
        return lambda normed: False
    return lambda normed: not normed  # "unnormalized": keras' V2 nets


def _apply(conv: Conv, shape: Shape) -> tuple[Shape, int]:
    """Output shape of `conv` on `shape`, and its multiply-accumulates."""
    out = Shape(
        channels=conv.out_channels,
        height=max(0, conv.out_size(shape.height)),
        width=max(0, conv.out_size(shape.width)),
    )
    per_pixel = (conv.in_channels // conv.groups) * conv.kernel * conv.kernel
    return out, conv.out_channels * out.height * out.width * per_pixel


def _stem(spec: NetworkSpec, shape: Shape, bias, act: str) -> Stem:
    """The stem's layers. One convolution is torchvision's `conv1`, `bn1`; several are timm's
    deep stem, a `conv1` Sequential (conv, norm, act, ...) ending with the last convolution,
    whose norm is `bn1`. Keras names follow keras.applications: `conv1_conv`, `conv1_bn`, or
    `conv1_1_conv` ... `conv1_3_bn` for the deep stem; the pool is `pool1_pool`."""
    s = spec.stem
    if s.preset == "deep":
        widths = [
            (shape.channels, s.width, s.stride),
            (s.width, s.width, 1),
            (s.width, s.channels, 1),
        ]
        convs = [
            Conv(in_channels=i, out_channels=o, kernel=3, stride=st, padding=1, bias=bias(s.norm))
            for i, o, st in widths
        ]
    else:
        convs = [
            Conv(
                in_channels=shape.channels,
                out_channels=s.channels,
                kernel=s.kernel,
                stride=s.stride,
                padding=s.kernel // 2,
                bias=bias(s.norm),
            )
        ]
    layers: list = []
    deep = len(convs) > 1
    for number, conv in enumerate(convs, start=1):
        last = number == len(convs)
        keras = f"conv1_{number}" if deep else "conv1"
        index = len(layers)  # position in the deep stem's Sequential
        layers.append(
            ConvLayer(torch=f"conv1.{index}" if deep else "conv1", keras=f"{keras}_conv", conv=conv)
        )
        if s.norm:
            norm_name = "bn1" if last else f"conv1.{index + 1}"
            act_name = act if last else f"conv1.{index + 2}"
            layers.append(
                NormLayer(torch=norm_name, keras=f"{keras}_bn", channels=conv.out_channels)
            )
            layers.append(ActLayer(torch=act_name, keras=f"{keras}_{spec.activation}"))
    macs = params = norm_stats = 0
    for conv in convs:
        shape, conv_macs = _apply(conv, shape)
        macs += conv_macs
        params += conv.params
        if s.norm:
            params += 2 * conv.out_channels
            norm_stats += 2 * conv.out_channels
    if s.pool != "none":
        pool = Pool(
            kind=s.pool, kernel=3, stride=2, padding=1, zero_padded=s.pool == "max" and not s.norm
        )
        layers.append(
            PoolLayer(torch="maxpool" if s.pool == "max" else "pool", keras="pool1_pool", pool=pool)
        )
        shape = _pooled(shape, pool)
    return Stem(
        preset=s.preset,
        layers=tuple(layers),
        norm=s.norm,
        out_shape=shape,
        params=params,
        norm_stats=norm_stats,
        macs=macs,
    )


def inner_width(block: BlockSpec, width: int) -> int:
    """The width of a block's inner convolutions.

    With a `group_width` (ResNeXt's "d" in 32x4d) it is torchvision's
    int(width * group_width / 64) * groups; otherwise int(width * width_factor) (Wide ResNet),
    which `groups` then splits and must divide. Zero when the arithmetic rounds away (reported
    by the blocks pass; elaboration carries on with one channel).
    """
    if block.group_width is not None:
        return int(width * block.group_width / 64) * block.groups
    return int(width * block.width_factor)


def out_width(block: BlockSpec, width: int) -> int:
    return max(1, int(width * block.expansion))


def _stage(spec: StageSpec, number: int, first_index: int, shape: Shape, ctx: _Context) -> Stage:
    n = spec.blocks
    strided = 0 if spec.strided_block == "first" else n - 1
    # Segments of positions sharing one configuration: the first block, the body, a strided last.
    segments = [(0, 1)]
    if spec.strided_block == "first" or n == 1:
        segments.append((1, n - 1))
    else:
        segments += [(1, n - 2), (n - 1, 1)]
    runs: list[BlockRun] = []
    for start, count in segments:
        if count <= 0:
            continue
        stride = spec.stride if start == strided else 1
        block = _block(spec, shape, stride, ctx)
        shape = block.out_shape
        if runs and runs[-1].block == block:
            last = runs[-1]
            runs[-1] = last.model_copy(update={"count": last.count + count})
        else:
            runs.append(BlockRun(first_index=first_index + start, count=count, block=block))
    return Stage(
        name=spec.name,
        index=number,
        blocks=n,
        width=spec.width,
        stride=spec.stride,
        strided_block=spec.strided_block,
        dilation=spec.dilation,
        block=spec.block,
        runs=tuple(runs),
        in_shape=runs[0].block.in_shape,
        out_shape=shape,
        params=sum(r.count * r.block.params for r in runs),
        norm_stats=sum(r.count * r.block.norm_stats for r in runs),
        macs=sum(r.count * r.block.macs for r in runs),
        waivers=spec.waivers,
        span=spec.span,
        spans=spec.spans,
    )


class _Context:
    """What every block of a network shares: the bias rule, the activation's names, the init."""

    def __init__(self, spec: NetworkSpec):
        self.bias = _bias_rule(spec.conv_bias)
        # PyTorch: one activation module per owner, torchvision's `relu` (timm's `act` for the
        # others); Keras: the activation's name in each layer name, keras.applications' way.
        self.torch_act = "relu" if spec.activation == "relu" else "act"
        self.keras_act = spec.activation
        self.zero_last = spec.init.zero_last_norm


def _block(spec: StageSpec, shape: Shape, stride: int, ctx: _Context) -> Block:
    """A block's layers, named as torchvision (`conv1`, `bn1`, ...; pre-activation blocks put
    `bn{k}` before `conv{k}`) and keras.applications (`1_conv`, `1_bn`, `1_relu`; V2's
    `preact_bn` before the first convolution, then `{k-1}_bn` before conv k)."""
    b = spec.block
    preact = b.preact
    mid = max(1, inner_width(b, spec.width))
    out = out_width(b, spec.width)
    d = spec.dilation
    # (kernel, source width, target width, strided, grouped and dilated)
    if b.layout == "bottleneck":
        stride_on = b.stride_on or "3x3"
        plan = [
            (1, "in", "mid", stride_on == "1x1", False),
            (3, "mid", "mid", stride_on == "3x3", True),
            (1, "mid", "out", False, False),
        ]
    else:
        plan = [(3, "in", "mid", True, True), (3, "mid", "out", False, True)]
    widths = {"in": shape.channels, "mid": mid, "out": out}
    pre: list = []
    branch: list = []
    last = len(plan)
    for number, (kernel, source, target, strided, spatial) in enumerate(plan, start=1):
        # A post-activation block normalises after each convolution; a pre-activation block
        # before each, so its last convolution feeds the addition directly.
        normed = not preact or number < last
        conv = Conv(
            in_channels=widths[source],
            out_channels=widths[target],
            kernel=kernel,
            stride=stride if strided else 1,
            padding=d * (kernel // 2) if spatial else kernel // 2,
            dilation=d if spatial else 1,
            groups=b.groups if spatial and b.layout == "bottleneck" else 1,
            bias=ctx.bias(normed),
        )
        conv_layer = ConvLayer(
            torch=f"conv{number}",
            keras=f"{number}_conv",
            conv=conv,
            source=source,
            target=target,
            strided=strided,
            zero_init=preact and number == last and ctx.zero_last,
        )
        if preact:
            norm = NormLayer(
                torch=f"bn{number}",
                keras="preact_bn" if number == 1 else f"{number - 1}_bn",
                channels=widths[source],
                width=source,
            )
            act = ActLayer(
                torch=ctx.torch_act,
                keras=f"preact_{ctx.keras_act}" if number == 1 else f"{number - 1}_{ctx.keras_act}",
            )
            (pre if number == 1 else branch).extend([norm, act])
            branch.append(conv_layer)
        else:
            branch.append(conv_layer)
            branch.append(
                NormLayer(
                    torch=f"bn{number}",
                    keras=f"{number}_bn",
                    channels=widths[target],
                    width=target,
                    zero_init=number == last and ctx.zero_last,
                )
            )
            if number < last:
                branch.append(ActLayer(torch=ctx.torch_act, keras=f"{number}_{ctx.keras_act}"))
    params = macs = norm_stats = 0
    branch_shape = shape
    for layer in (*pre, *branch):
        if isinstance(layer, ConvLayer):
            branch_shape, conv_macs = _apply(layer.conv, branch_shape)
            macs += conv_macs
            params += layer.conv.params
        elif isinstance(layer, NormLayer):
            norm_stats += 2 * layer.channels
    params += norm_stats
    shortcut = _shortcut(spec.shortcut, shape, branch_shape, stride, preact, ctx)
    if shortcut.conv is not None:
        pool = shortcut.pool
        _, conv_macs = _apply(shortcut.conv, _pooled(shape, pool) if pool else shape)
        macs += conv_macs
        params += shortcut.conv.params
    for layer in shortcut.layers:
        if isinstance(layer, NormLayer):
            params += 2 * layer.channels
            norm_stats += 2 * layer.channels
    post = () if preact else (ActLayer(torch=ctx.torch_act, keras="out"),)
    return Block(
        layout=b.layout,
        preact=preact,
        in_channels=shape.channels,
        mid_channels=mid,
        out_channels=out,
        stride=stride,
        groups=b.groups if b.layout == "bottleneck" else 1,
        dilation=d,
        pre=tuple(pre),
        branch=tuple(branch),
        shortcut=shortcut,
        add="out" if preact else "add",
        post=post,
        in_shape=shape,
        out_shape=branch_shape,
        params=params,
        norm_stats=norm_stats,
        macs=macs,
    )


def _pooled(shape: Shape, pool: Pool) -> Shape:
    return shape.model_copy(
        update={
            "height": max(0, pool.out_size(shape.height)),
            "width": max(0, pool.out_size(shape.width)),
        }
    )


def _shortcut(
    policy: ShortcutSpec, shape: Shape, out: Shape, stride: int, preact: bool, ctx: _Context
) -> Shortcut:
    """The shortcut the policy gives this block, with its layers under torchvision's
    `downsample.{i}` and keras.applications' `0_conv`, `0_bn` (`0_pool`, `0_pad` for the
    parameter-free and pooling ones)."""
    same_width = shape.channels == out.channels
    if policy.policy == "identity" or (same_width and stride == 1 and policy.policy != "C"):
        return Shortcut(kind="identity", stride=1)
    layers: list = []
    if policy.policy == "A" or (
        policy.policy == "B" and same_width and policy.stride_only == "subsample"
    ):
        averaged = policy.policy == "A" and policy.downsample == "avgpool" and not same_width
        if stride > 1:
            layers.append(_shortcut_pool(stride, averaged))
        if same_width:
            return Shortcut(kind="subsample", stride=stride, layers=tuple(layers))
        grow = out.channels - shape.channels
        layers.append(
            PadChannelsLayer(
                torch=f"downsample.{len(layers)}",
                keras="0_pad",
                before=max(0, grow // 2),
                after=max(0, grow - grow // 2),
            )
        )
        return Shortcut(kind="pad", stride=stride, layers=tuple(layers))
    # A projection: normalised afterwards unless the block is pre-activation (its input is).
    pooled = policy.policy == "D" and stride > 1
    if pooled:
        layers.append(_shortcut_pool(stride, averaged=True))
    conv = Conv(
        in_channels=shape.channels,
        out_channels=out.channels,
        kernel=1,
        stride=1 if pooled else stride,
        bias=ctx.bias(not preact),
    )
    layers.append(
        ConvLayer(
            torch=f"downsample.{len(layers)}",
            keras="0_conv",
            conv=conv,
            strided=not pooled,
        )
    )
    if not preact:
        layers.append(
            NormLayer(torch=f"downsample.{len(layers)}", keras="0_bn", channels=out.channels)
        )
    return Shortcut(
        kind="pool_project" if pooled else "project",
        stride=stride,
        layers=tuple(layers),
        source="preactivated" if preact else "input",
    )


def _shortcut_pool(stride: int, averaged: bool) -> PoolLayer:
    """A shortcut's downsampling: every `stride`-th pixel (a 1x1 max pool), or the average of
    each `stride`x`stride` window, rounding up and ignoring padding (timm's ResNet-D)."""
    if averaged:
        pool = Pool(kind="avg", kernel=stride, stride=stride, padding=0, ceil=True)
    else:
        pool = Pool(kind="max", kernel=1, stride=stride, padding=0)
    return PoolLayer(torch="downsample.0", keras="0_pool", pool=pool, strided=True)


def _head(spec: NetworkSpec, shape: Shape, stages: list[Stage], ctx: _Context) -> Head:
    """A pre-activation net's final norm (timm's `norm`, keras' `post_bn`), the pool, dropout
    and the classifier (`fc`, `predictions`)."""
    last_preact = stages[-1].runs[-1].block.preact if stages else False
    norm = spec.head.norm if spec.head.norm is not None else last_preact
    features = shape.channels
    layers: list = []
    if norm:
        layers.append(NormLayer(torch="norm", keras="post_bn", channels=features))
        layers.append(ActLayer(torch=ctx.torch_act, keras=f"post_{ctx.keras_act}"))
    layers.append(GlobalPoolLayer(torch="avgpool", keras="avg_pool"))
    if spec.head.dropout > 0:
        layers.append(DropoutLayer(torch="dropout", keras="top_dropout", rate=spec.head.dropout))
    layers.append(
        LinearLayer(
            torch="fc", keras="predictions", in_features=features, out_features=spec.classes
        )
    )
    fc = features * spec.classes
    norm_stats = 2 * features if norm else 0
    return Head(
        layers=tuple(layers),
        norm=norm,
        dropout=spec.head.dropout,
        in_features=features,
        classes=spec.classes,
        params=fc + spec.classes + norm_stats,
        norm_stats=norm_stats,
        macs=fc,
    )
