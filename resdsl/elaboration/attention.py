"""Channel attention in a block's branch: where `after: 3x3` puts it, and the layer of each kind
(squeeze-excitation, ECA, global context, bilinear attention) with the layers inside it, named
from the spec's naming scheme. `ctx` is the elaboration's context (resdsl.elaboration.elaborate):
its `names`, `bias` rule and `norm_kind`."""

from __future__ import annotations

import math

from resdsl.ir import (
    AttentionSpec,
    BilinearAttentionLayer,
    ChannelConvLayer,
    Conv,
    ConvLayer,
    EcaLayer,
    GlobalContextLayer,
    LineConvLayer,
    NormLayer,
    SqueezeExciteLayer,
    make_divisible,
)


def after_3x3(branch: list, preact: bool = False) -> int | None:
    """Where attention `after: 3x3` goes in a branch: after its spatial convolution of the
    inner width (the last of them where two follow each other: timm's `conv2b_kxk`) and what
    follows it up to the next convolution (its norm and activation; in a pre-activation
    branch, whose norms come before the next convolution, directly after it: timm's RegNetV);
    None where the branch has no such convolution, or several apart (the attention pass
    reports it)."""
    convs = [i for i, layer in enumerate(branch) if isinstance(layer, ConvLayer)]
    spatial = [
        n for n, i in enumerate(convs) if branch[i].conv.kernel > 1 and branch[i].target == "mid"
    ]
    if not spatial or spatial != list(range(spatial[0], spatial[0] + len(spatial))):
        return None
    end = convs[spatial[-1]] + 1
    while not preact and end < len(branch) and not isinstance(branch[end], ConvLayer):
        end += 1
    return end if end < len(branch) else None


def eca_kernel(channels: int, gamma: float, beta: float) -> int:
    """ECA's kernel for `channels`: |log2(channels) + beta| / gamma, to the odd number at or
    above it, at least 3 (timm's EcaModule)."""
    t = int(abs(math.log(channels, 2) + beta) / gamma)
    return max(t if t % 2 else t + 1, 3)


def attention_layer(spec: AttentionSpec, widths: dict[str, int], width: str, ctx):
    """A block's channel attention (timm's `se` attribute, whatever its kind) over the block's
    `width` (of its `widths`), or None."""
    channels = widths[width]

    def names(role: str, **fields) -> dict[str, str]:
        # byobnet names attention after the 3x3 `attn`, at the branch's end `attn_last`
        return ctx.names(role, place="" if width == "mid" else "_last", **fields)

    if spec.kind == "se":
        # RegNetY's is sized from the block's input, timm's `in_chs * se_ratio`
        basis = "in" if spec.of == "input" else width
        reduced = spec.width or make_divisible(widths[basis] / spec.reduction, spec.divisor)
        if spec.of == "input" and spec.divisor == 1 and not spec.width:
            # timm's and torchvision's int(round(in_chs * se_ratio)): half to even
            reduced = max(1, round(widths[basis] / spec.reduction))
        return SqueezeExciteLayer(
            **names("attention.se"),
            reduce=ConvLayer(
                **names("attention.se.reduce"),
                conv=Conv(in_channels=channels, out_channels=reduced, kernel=1, bias=True),
                source=width,
                target="reduced",
            ),
            expand=ConvLayer(
                **names("attention.se.expand"),
                conv=Conv(in_channels=reduced, out_channels=channels, kernel=1, bias=True),
                source="reduced",
                target=width,
            ),
            gate=spec.gate,
            ratio=None if spec.width else 1 / spec.reduction,
            divisor=spec.divisor,
            width=width,
            basis="in" if spec.of == "input" else None,
            activation=ctx.keras_act if spec.activation == "network" else "relu",
        )
    if spec.kind == "eca":
        adaptive = spec.kernel is None
        kernel = eca_kernel(channels, spec.gamma, spec.beta) if adaptive else spec.kernel
        return EcaLayer(
            **names("attention.eca"),
            channels=channels,
            conv=ChannelConvLayer(**names("attention.eca.conv"), kernel=kernel),
            gamma=spec.gamma if adaptive else None,
            beta=spec.beta if adaptive else None,
            width=width,
        )
    if spec.kind == "gc":
        reduced = spec.width or make_divisible(channels / spec.reduction, spec.divisor)

        def conv(role: str, source: str, target: str, ins: int, outs: int) -> ConvLayer:
            return ConvLayer(
                **names(f"attention.gc.{role}", fuse=spec.fuse),
                conv=Conv(in_channels=ins, out_channels=outs, kernel=1, bias=True),
                source=source,
                target=target,
            )

        return GlobalContextLayer(
            **names("attention.gc"),
            channels=channels,
            # one map over the positions: its width is none of the block's
            attend=conv("attend", width, "reduced", channels, 1),
            fc1=conv("fc1", width, "reduced", channels, reduced),
            norm=NormLayer(
                **names("attention.gc.norm", fuse=spec.fuse),
                channels=reduced,
                width="reduced",
                kind="layer",
            ),
            fc2=conv("fc2", "reduced", width, reduced, channels),
            fuse=spec.fuse,
            ratio=None if spec.width else 1 / spec.reduction,
            divisor=spec.divisor,
            width=width,
        )
    if spec.kind == "bat":
        return _bilinear_attention(spec, channels, width, names, ctx)
    return None


def _bilinear_attention(spec: AttentionSpec, channels: int, width: str, names, ctx):
    """Bilinear attention (timm's BatNonLocalAttn) over `channels`: its 1x1s with the network's
    norm (and bias rule), ReLUs implied, the two strip convolutions with biases."""
    limit = BilinearAttentionLayer.ROUND_LIMIT
    reduced = spec.width or make_divisible(channels / spec.reduction, spec.divisor, limit)
    size, groups = spec.block_size, spec.groups

    def conv(role: str, ins: int, outs: int, source: str, target: str) -> ConvLayer:
        return ConvLayer(
            **names(f"attention.bat.{role}"),
            conv=Conv(in_channels=ins, out_channels=outs, kernel=1, bias=ctx.bias(True)),
            source=source,
            target=target,
        )

    def norm(role: str, count: int, on: str) -> NormLayer:
        return NormLayer(
            **names(f"attention.bat.{role}"), channels=count, width=on, kind=ctx.norm_kind
        )

    def strip(role: str, kernel: tuple[int, int]) -> LineConvLayer:
        return LineConvLayer(
            **names(f"attention.bat.{role}"),
            in_channels=groups,
            out_channels=size * size * groups,
            kernel=kernel,
        )

    return BilinearAttentionLayer(
        **names("attention.bat"),
        channels=channels,
        reduced=reduced,
        block_size=size,
        groups=groups,
        dropout=spec.dropout,
        reduce=conv("reduce", channels, reduced, width, "reduced"),
        reduce_norm=norm("reduce_norm", reduced, "reduced"),
        to_groups=conv("to_groups", reduced, groups, "reduced", "reduced"),
        groups_norm=norm("groups_norm", groups, "reduced"),
        rows=strip("rows", (size, 1)),
        columns=strip("columns", (1, size)),
        mix=conv("mix", reduced, reduced, "reduced", "reduced"),
        mix_norm=norm("mix_norm", reduced, "reduced"),
        expand=conv("expand", reduced, channels, "reduced", width),
        expand_norm=norm("expand_norm", channels, width),
        ratio=None if spec.width else 1 / spec.reduction,
        divisor=spec.divisor,
        width=width,
    )
