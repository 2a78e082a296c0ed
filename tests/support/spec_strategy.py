"""A hypothesis strategy over valid specs, rendered to `.res` text.

It draws the language's features (every block kind, shortcut policy, stem, stride placement,
groups, dilation, channel attention, anti-aliasing, conventions) at sizes small enough that each
network runs in milliseconds, on even and odd inputs. The few draws the compiler rightly refuses
(a blur wider than a late, small map) are rejected with `assume`, so every text is valid.
"""

from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

import resdsl


@st.composite
def spec_texts(draw) -> str:
    kinds = ["basic", "bottleneck", "preact_basic", "preact_bottleneck", "res2net"]
    kinds += ["sk_basic", "sk_bottleneck", "resnest", "edge", "aggregated"]
    kind = draw(st.sampled_from(kinds))
    edge = kind == "edge"  # a 3x3 and a 1x1: groups, no stride_on or anti-aliasing (E402)
    res2net = kind == "res2net"  # a bottleneck whose 3x3 is a composite layer
    selective = kind.startswith("sk_")  # a 3x3 as a selective kernel (a composite layer)
    resnest = kind == "resnest"  # a 3x3 as split attention (a composite layer)
    aggregated = kind == "aggregated"  # ResNeXt's paths, summed (a composite layer)
    composite = res2net or selective or resnest or aggregated  # no stride_on, anti-aliasing
    bottleneck = kind.endswith("bottleneck") or res2net or resnest or aggregated
    basic_like = not bottleneck
    stem = draw(st.sampled_from(["cifar", "imagenet", "deep", "quad"]))
    # timm's byobnet layout for the chain-of-convolutions kinds with a projecting shortcut
    byobnet = kind in ("basic", "bottleneck", "edge") and draw(st.booleans())
    stem_channels = draw(st.sampled_from([4, 8]))
    size = (
        draw(st.sampled_from([16, 17, 24, 32, 33]))
        if stem == "cifar"
        else draw(st.sampled_from([32, 48, 49, 64]))
    )
    channels = draw(st.sampled_from([1, 3]))
    n_stages = draw(st.integers(1, 3))
    base = draw(st.sampled_from([4, 8]))
    strided_block = draw(st.sampled_from(["first", "last"]))

    block_args = []
    groups = 1
    if res2net:
        block_args.append(f"scale: {draw(st.sampled_from([2, 3, 4]))}")
    if selective:  # one choice beyond the defaults, so that the spec's line stays short
        # Three paths split only widths they divide (the drawn widths are powers of two).
        choices = ["", "split: off", "paths: 3, split: off", "reduction: 2"]
        block_args += [c for c in [draw(st.sampled_from(choices))] if c]
    if resnest:
        radix = draw(st.sampled_from([1, 2, 4]))
        block_args += [f"radix: {radix}"] * (radix != 2)
        block_args += [c for c in [draw(st.sampled_from(["", "avd: off", "avd_first: on"]))] if c]
    if bottleneck:
        expansion = draw(st.sampled_from([1, 2, 4]))
        if expansion != 4:
            block_args.append(f"expansion: {expansion}")
        groups = draw(st.sampled_from([1, 2, 4]))
        if aggregated:  # its defaults (32 paths of 4 channels at width 64) are ResNeXt-50's
            block_args += [f"groups: {groups}", f"group_width: {draw(st.sampled_from([16, 32]))}"]
        elif groups > 1 and not composite and draw(st.booleans()):
            # groups of a fixed size (byobnet's), which divides every drawn inner width
            block_args.append(f"group_size: {draw(st.sampled_from([1, 2, 4]))}")
        elif groups > 1:
            block_args.append(f"groups: {groups}")
            block_args.append(f"group_width: {draw(st.sampled_from([16, 32]))}")
        elif draw(st.booleans()):
            block_args.append("width_factor: 2")
        if kind == "bottleneck" and draw(st.booleans()):  # a second 3x3 (byobnet's)
            block_args.append("extra_3x3: on")  # in place of stride_on: the line stays short
        elif not composite:  # every path's 3x3 strides (E402)
            block_args.append(f"stride_on: {draw(st.sampled_from(['1x1', '3x3']))}")
    elif edge:
        expansion = draw(st.sampled_from([1, 2]))
        block_args += [f"expansion: {expansion}"] * (expansion != 1)
        block_args += [f"group_size: {draw(st.sampled_from([1, 2, 4]))}"] * draw(st.booleans())
    else:
        expansion = 1

    # Zero-padding needs every channel increase to be even and non-negative; basic blocks
    # with doubling widths give that when the stem is no wider than the first stage.
    policies = ["B", "C"] if byobnet else ["B", "C", "D"]
    stem_out = stem_channels * 2 if stem in ("deep", "quad") else stem_channels
    if basic_like and stem_out <= base and not byobnet:
        policies.append("A")
    policy = draw(st.sampled_from(policies))
    shortcut = policy
    if policy == "A":
        shortcut = f"A(downsample: {draw(st.sampled_from(['subsample', 'avgpool']))})"
    elif policy == "B" and not byobnet and draw(st.booleans()):  # byobnet's projects
        shortcut = "B(stride_only: subsample)"

    lines = [
        "network drawn {",
        f"  input {channels}x{size}x{size}",
        f"  classes {draw(st.integers(2, 12))}",
    ]
    if byobnet:
        lines.append("  naming byobnet")
    # Without a pool, a deep or quad stem may stride in its last convolution (byobnet's).
    last = draw(st.sampled_from(["", ", pool: none, last_stride: 2"]))
    if stem == "deep":
        lines.append(f"  stem deep(width: {stem_channels}, channels: {stem_channels * 2}{last})")
    elif stem == "quad":
        plain = draw(st.sampled_from([0, 1, 2]))
        lines.append(f"  stem quad(channels: {stem_channels * 2}, plain: {plain}{last})")
    else:
        pools = ["max", "none"] if byobnet else ["max", "max_ceil", "avg", "conv", "none"]
        pool = draw(st.sampled_from(pools))
        norm = "on" if byobnet else draw(st.sampled_from(["on", "off"]))  # ConvNormAct's norm
        lines.append(f"  stem {stem}(channels: {stem_channels}, pool: {pool}, norm: {norm})")
    lines.append(f"  block {kind}({', '.join(block_args)})" if block_args else f"  block {kind}")
    lines.append(f"  shortcut {shortcut}")
    lines.append(f"  strided_block {strided_block}")
    lines.append(f"  conv_bias {draw(st.sampled_from(['off', 'on', 'unnormalized']))}")
    eps = draw(st.sampled_from(["1e-5", "1.001e-5", "1e-3"]))
    lines.append(f"  norm batch(eps: {eps}, momentum: {draw(st.sampled_from(['0.1', '0.01']))})")
    lines.append(f"  activation {draw(st.sampled_from(['relu', 'silu', 'gelu']))}")
    attention = draw(
        st.sampled_from(
            [
                *("none", "none", "se", "se(reduction: 8)", "eca", "gc", "gc(fuse: scale)"),
                *("bat(block_size: 2)", "bat(block_size: 1, groups: 1)"),
            ]
        )
    )
    # after the 3x3, or (post-activation blocks) after an activation of its own
    where = draw(st.sampled_from(["", "3x3", "activation"]))
    if (where == "3x3" and composite) or (where == "activation" and kind.startswith("preact")):
        where = ""
    if attention != "none" and where:
        kind_name, _, args = attention.removesuffix(")").partition("(")
        attention = f"{kind_name}({args + ', ' if args else ''}after: {where})"
    if attention != "none":
        lines.append(f"  attention {attention}")
    anti_alias = draw(
        st.sampled_from(["none", "none", "avg", "blur", "blur(size: 2)", "blur(size: 4)"])
    )
    caffe = "pool: max_ceil" in "\n".join(lines)  # Caffe's stem pool is not anti-aliased
    if anti_alias != "none" and not (composite or edge or byobnet or caffe):  # (E402)
        lines.append(f"  anti_alias {anti_alias}")
    zero = draw(st.sampled_from(["on", "off"]))
    lines.append(f"  init {draw(st.sampled_from(['kaiming', 'glorot']))}(zero_last_norm: {zero})")
    if draw(st.booleans()):
        lines.append(f"  stochastic_depth {draw(st.sampled_from(['0.1', '0.2']))}")
    head = draw(st.sampled_from(["", "dropout: 0.1", "dropout: 0.5", "features: 12"]))
    if head:
        lines.append(f"  head avgpool({head})")

    # A dilated last stage in place of the last stride, as in segmentation backbones: the
    # stride of its first block, or with `strided_block last` of the stage before's last (its
    # first block then dilates as the stage before, unlike its others).
    dilated = n_stages > 1 and draw(st.booleans())
    for i in range(n_stages):
        blocks = draw(st.integers(1, 3))
        width = base * 2**i
        last = i == n_stages - 1
        # Every boundary halves: at the end of all but the last stage, or the start of all but
        # the first.
        strided = not last if strided_block == "last" else i > 0
        if dilated and i == n_stages - (2 if strided_block == "last" else 1):
            strided = False
        stride = 2 if strided else 1
        body = ["dilation 2"] if dilated and last else []
        suffix = f" / {stride}" if stride > 1 else ""
        braces = f" {{ {' '.join(body)} }}" if body else ""
        lines.append(f"  stage s{i + 1}: {blocks} x {width}{suffix}{braces}")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assume(resdsl.analyze(text).ok)
    return text
