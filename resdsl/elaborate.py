"""Phase 3: the typed spec to the elaborated network (:class:`resdsl.ir.Network`).

Pure arithmetic: channels, strides, shortcut kinds, shapes, parameters and multiply-accumulates
of every block. It never rejects anything; the validation passes read its result and report.
Sizes that would vanish are kept at zero so that a broken spec still elaborates.

A stage is elaborated as at most three runs of identical blocks, so the cost does not grow
with depth.
"""

from __future__ import annotations

import hashlib
import os
import re

from .ir import (
    Block,
    BlockRun,
    BlockSpec,
    Conv,
    Conventions,
    Head,
    Network,
    NetworkSpec,
    Pool,
    Shape,
    Shortcut,
    ShortcutSpec,
    Source,
    Stage,
    StageSpec,
    Stem,
)


def elaborate(spec: NetworkSpec, source_text: str) -> Network:
    bias = _bias_rule(spec.conv_bias)
    c, h, w = spec.input
    stem = _stem(spec, Shape(channels=c, height=h, width=w), bias)
    shape = stem.out_shape
    stages = []
    index = 0
    for number, stage_spec in enumerate(spec.stages):
        stage = _stage(stage_spec, number, index, shape, bias)
        stages.append(stage)
        shape = stage.out_shape
        index += stage.blocks
    head = _head(spec, shape, stages)
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


def _stem(spec: NetworkSpec, shape: Shape, bias) -> Stem:
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
    macs = params = norm_stats = 0
    for conv in convs:
        shape, conv_macs = _apply(conv, shape)
        macs += conv_macs
        params += conv.params
        if s.norm:
            params += 2 * conv.out_channels
            norm_stats += 2 * conv.out_channels
    pool = None
    if s.pool != "none":
        pool = Pool(
            kind=s.pool, kernel=3, stride=2, padding=1, zero_padded=s.pool == "max" and not s.norm
        )
        shape = shape.model_copy(
            update={
                "height": max(0, pool.out_size(shape.height)),
                "width": max(0, pool.out_size(shape.width)),
            }
        )
    return Stem(
        preset=s.preset,
        convs=tuple(convs),
        norm=s.norm,
        pool=pool,
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


def _stage(spec: StageSpec, number: int, first_index: int, shape: Shape, bias) -> Stage:
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
        block = _block(spec, shape, stride, bias)
        shape = block.out_shape
        if runs and runs[-1].block == block:
            last = runs[-1]
            runs[-1] = last.model_copy(update={"count": last.count + count})
        else:
            runs.append(BlockRun(first_index=first_index + start, count=count, block=block))
    params = sum(r.count * r.block.params for r in runs)
    return Stage(
        name=spec.name,
        index=number,
        blocks=n,
        runs=tuple(runs),
        in_shape=runs[0].block.in_shape,
        out_shape=shape,
        params=params,
        norm_stats=sum(r.count * r.block.norm_stats for r in runs),
        macs=sum(r.count * r.block.macs for r in runs),
        waivers=spec.waivers,
        span=spec.span,
    )


def _block(spec: StageSpec, shape: Shape, stride: int, bias) -> Block:
    b = spec.block
    preact = b.kind.startswith("preact_")
    bottleneck = b.kind.endswith("bottleneck")
    mid = max(1, inner_width(b, spec.width))
    out = out_width(b, spec.width)
    stride_on = b.stride_on or "3x3"
    d = spec.dilation
    # In a post-activation block every convolution is followed by a norm; in a pre-activation
    # block the last one feeds the addition directly.
    normed = [True, True, True] if not preact else [True, True, False]
    if bottleneck:
        convs = [
            Conv(
                in_channels=shape.channels,
                out_channels=mid,
                kernel=1,
                stride=stride if stride_on == "1x1" else 1,
                bias=bias(normed[0]),
            ),
            Conv(
                in_channels=mid,
                out_channels=mid,
                kernel=3,
                stride=stride if stride_on == "3x3" else 1,
                padding=d,
                dilation=d,
                groups=b.groups,
                bias=bias(normed[1]),
            ),
            Conv(in_channels=mid, out_channels=out, kernel=1, bias=bias(normed[2])),
        ]
    else:
        normed = [True, not preact]
        convs = [
            Conv(
                in_channels=shape.channels,
                out_channels=mid,
                kernel=3,
                stride=stride,
                padding=d,
                dilation=d,
                bias=bias(normed[0]),
            ),
            Conv(
                in_channels=mid,
                out_channels=out,
                kernel=3,
                padding=d,
                dilation=d,
                bias=bias(normed[1]),
            ),
        ]
    params = macs = norm_stats = 0
    branch = shape
    for conv in convs:
        branch, conv_macs = _apply(conv, branch)
        macs += conv_macs
        params += conv.params
    # Norm widths: after each conv (post-activation) or before each conv (pre-activation).
    norm_widths = [c.in_channels for c in convs] if preact else [c.out_channels for c in convs]
    norm_stats = 2 * sum(norm_widths)
    params += norm_stats
    shortcut = _shortcut(spec.shortcut, shape, branch, stride, preact, bias)
    if shortcut.conv is not None:
        _, conv_macs = _apply(shortcut.conv, _pooled(shape, shortcut))
        macs += conv_macs
        params += shortcut.conv.params
        if shortcut.norm:
            params += 2 * shortcut.conv.out_channels
            norm_stats += 2 * shortcut.conv.out_channels
    return Block(
        kind=b.kind,
        in_channels=shape.channels,
        mid_channels=mid,
        out_channels=out,
        stride=stride,
        stride_on=stride_on,
        groups=b.groups,
        dilation=d,
        convs=tuple(convs),
        shortcut=shortcut,
        in_shape=shape,
        out_shape=branch,
        params=params,
        norm_stats=norm_stats,
        macs=macs,
    )


def _pooled(shape: Shape, shortcut: Shortcut) -> Shape:
    """The input of a pool-then-project shortcut's convolution (pooling rounds up, as timm's)."""
    if shortcut.kind != "pool_project" or shortcut.stride == 1:
        return shape
    s = shortcut.stride
    return shape.model_copy(update={"height": -(-shape.height // s), "width": -(-shape.width // s)})


def _shortcut(
    policy: ShortcutSpec, shape: Shape, out: Shape, stride: int, preact: bool, bias
) -> Shortcut:
    same_width = shape.channels == out.channels
    if policy.policy == "identity" or (same_width and stride == 1 and policy.policy != "C"):
        return Shortcut(kind="identity", stride=1)
    if policy.policy == "A" or (
        policy.policy == "B" and same_width and policy.stride_only == "subsample"
    ):
        if same_width:
            return Shortcut(kind="subsample", stride=stride)
        grow = out.channels - shape.channels
        return Shortcut(
            kind="pad",
            stride=stride,
            downsample=policy.downsample if stride > 1 else None,
            pad_before=max(0, grow // 2),
            pad_after=max(0, grow - grow // 2),
        )
    # A projection: normalised afterwards unless the block is pre-activation (its input is).
    pooled = policy.policy == "D" and stride > 1
    conv = Conv(
        in_channels=shape.channels,
        out_channels=out.channels,
        kernel=1,
        stride=1 if pooled else stride,
        bias=bias(not preact),
    )
    return Shortcut(
        kind="pool_project" if pooled else "project",
        stride=stride,
        conv=conv,
        norm=not preact,
        from_preact=preact,
    )


def _head(spec: NetworkSpec, shape: Shape, stages: list[Stage]) -> Head:
    last_kind = stages[-1].runs[-1].block.kind if stages else "basic"
    norm = spec.head.norm if spec.head.norm is not None else last_kind.startswith("preact_")
    features = shape.channels
    fc = features * spec.classes
    norm_stats = 2 * features if norm else 0
    return Head(
        norm=norm,
        dropout=spec.head.dropout,
        in_features=features,
        classes=spec.classes,
        params=fc + spec.classes + norm_stats,
        norm_stats=norm_stats,
        macs=fc,
    )
