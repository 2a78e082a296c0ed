"""`resdsl import` for timm's byobnet layout (`naming byobnet`): its ResNets' state dicts to a
spec.

Every convolution with its norm is one module there, named by its kernel: the stem's
`stem.conv{n}.conv` (`stem.conv{n}` alone for a quad stem's first, plain convolutions), a
block's `stages.{i}.{j}.conv1_1x1`, `conv2_kxk`, `conv2b_kxk` (a second 3x3), `conv3_1x1`
(a bottleneck), `conv1_kxk`, `conv2_1x1` (an edge block) or `conv1_kxk`, `conv2_kxk` (a basic
block), its `shortcut`, attention after the 3x3 (`attn`) or at the branch's end (`attn_last`),
the head's `final_conv` and `head.fc`. The names say the block kinds; the shapes say the
widths, the groups (written as byobnet's group size), the attention and the stem. What no
weights say (the stem's pool, the strides, the activation) comes from the model's module tree
where the source is one (`timm:NAME`), else from byobnet's conventions, and is written into the
spec's header as assumed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from resdsl.elaboration.elaborate import quad_widths
from resdsl.interop.import_blocks import Block, read_attention
from resdsl.interop.import_sources import ImportFailed, Shapes, Source, blocks_by_stage
from resdsl.ir.naming import BYOBNET

if TYPE_CHECKING:  # the resnet.py importer, which dispatches here, lends its helpers
    from resdsl.interop.importer import Imported

_BLOCK = re.compile(r"^stages\.(\d+)\.(\d+)\.(.+)$")
# A byobnet block's first convolution: what tells the layout.
_MARK = re.compile(r"^stages\.\d+\.\d+\.conv1_(1x1|kxk)\.conv\.weight$")


def is_byobnet(shapes: Shapes) -> bool:
    return any(_MARK.match(key) for key in shapes)


def _key(role: str, **fields) -> str:
    """The key of the weight of the layer that plays `role` in byobnet's layout."""
    return BYOBNET.torch(role, **{"unit": "conv", **fields}) + ".weight"


def _conv(t: Mapping[str, tuple], key: str, where: str) -> tuple:
    shape = t[key]
    if len(shape) != 4 or 0 in shape:
        raise ImportFailed(f"`{where}{key}` has shape {shape}: expected a 2-d convolution")
    return shape


def _groups(shape: tuple, channels: int, key: str) -> int:
    """The groups of convolution `key` of `shape` on `channels` inputs."""
    if channels % shape[1]:
        raise ImportFailed(f"`{key}` {shape} does not split the {channels} channels it reads")
    return channels // shape[1]


def _attention(t: Mapping[str, tuple]) -> tuple[tuple | None, str]:
    """A block's attention as the resnet.py reader gives it (("se", width), ("eca", kernel),
    ("gc", width, fuse)) and where it sits: after the 3x3 (`attn`) or last (`attn_last`)."""
    for place, after in (("", "3x3"), ("_last", "last")):
        found = read_attention(t, lambda role, place=place, **f: _key(role, place=place, **f))
        if found is not None:
            return found, after
    return None, "last"


def _conv_key(n, shape: str) -> str:
    return _key("block.conv", n=n, shape=shape)


def read_block(where: str, t: Mapping[str, tuple], width: int) -> tuple[Block, str]:
    """Block `where`'s tensors `t` (keys under its prefix) on an input of `width` channels: the
    block, and where its attention sits."""
    projection, kernel = None, 1
    shortcut = _key("shortcut")
    if shortcut in t:
        projection, kernel = 0, _conv(t, shortcut, where)[2]
        width = t[shortcut][1]
    attention, place = _attention(t)
    extra = _conv_key("2b", "kxk") in t
    keys = [_conv_key(1, "1x1"), _conv_key(2, "kxk"), _conv_key(3, "1x1")]
    if keys[0] in t:  # a bottleneck
        missing = next((k for k in keys if k not in t), None)
        if missing is not None:
            raise ImportFailed(f"`{where}{missing}` is missing: expected a bottleneck's")
        first, spatial, last = (_conv(t, k, where) for k in keys)
        groups = _groups(spatial, first[0], where + keys[1])
        if extra and _conv(t, _conv_key("2b", "kxk"), where)[:2] != spatial[:2]:
            raise ImportFailed(
                f"`{where}{_conv_key('2b', 'kxk')}` {t[_conv_key('2b', 'kxk')]}: expected the "
                f"shape of `{where}{keys[1]}` {spatial}"
            )
        block = Block(
            "bottleneck", False, first[1], first[0], spatial[0], last[0], groups, projection,
            kernel, attention, first_key=keys[0], spatial_key=keys[1], where=where,
            extra_3x3=extra,
        )  # fmt: skip
        return block, place
    if extra:
        raise ImportFailed(f"`{where}{_conv_key('2b', 'kxk')}`: a second 3x3 outside a bottleneck")
    spatial_key = _conv_key(1, "kxk")
    spatial = _conv(t, spatial_key, where)
    groups = _groups(spatial, width, where + spatial_key)
    if _conv_key(2, "1x1") in t:  # an edge block: a 3x3 to the inner width, a 1x1 out
        layout, out = "edge", _conv(t, _conv_key(2, "1x1"), where)
    elif _conv_key(2, "kxk") in t:
        layout, out = "basic", _conv(t, _conv_key(2, "kxk"), where)
        if groups != 1:
            raise ImportFailed(f"`{where}{spatial_key}` {spatial}: a grouped basic block")
    else:
        raise ImportFailed(
            f"`{where}{spatial_key}` is followed by neither `{_conv_key(2, '1x1')}` (an edge "
            f"block) nor `{_conv_key(2, 'kxk')}` (a basic block)"
        )
    block = Block(
        layout, False, width, spatial[0], spatial[0], out[0], groups, projection, kernel,
        attention, first_key=spatial_key, spatial_key=spatial_key, where=where,
    )  # fmt: skip
    return block, place


def stem(shapes: Shapes) -> tuple[str, int]:
    """The `stem` value but for its pool (tiered: `deep`; `quad`), and its output width."""
    convs, plain = [], 0
    for n in range(1, 9):
        normed, bare = _key("stem.deep", unit="conv", n=n), _key("stem.plain", n=n)
        if normed in shapes:
            convs.append(_conv(shapes, normed, ""))
        elif bare in shapes:
            if len(convs) != plain:
                raise ImportFailed(f"`{bare}`: a convolution without a norm after normed ones")
            convs.append(_conv(shapes, bare, ""))
            plain += 1
    widths = [c[0] for c in convs]
    if len(convs) == 3 and not plain:  # timm's tiered stem
        args = [f"first_width: {widths[0]}"] * (widths[0] != widths[1])
        args += [f"width: {widths[1]}"] * (widths[1] != 32)
        args += [f"channels: {widths[2]}"] * (widths[2] != 64)
        return "deep" + (f"({', '.join(args)})" if args else ""), widths[2]
    if len(convs) == 4:
        channels = widths[-1]
        expected = quad_widths(channels)
        if widths != expected:
            raise ImportFailed(
                f"a stem of four convolutions of {widths} channels; the quad stem's are {expected}"
            )
        return f"quad(channels: {channels}, plain: {plain})", channels
    raise ImportFailed(
        f"a byobnet stem of {len(convs)} convolutions ({plain} without norms): resdsl reads "
        "timm's tiered stem (three) and quad stem (four)"
    )


def _block_call(b: Block) -> tuple[str, int]:
    """A stage's `block` value and its width, from its first block."""
    args: list[str] = []
    if b.layout == "basic":
        planes = b.out
        if b.mid != b.out:
            if b.out % b.mid:
                raise ImportFailed(
                    f"`{b.where}{b.first_key}`: {b.mid} channels do not divide {b.out}"
                )
            args.append(f"reduce_first: {b.out // b.mid}")
        return "basic" + (f"({', '.join(args)})" if args else ""), planes
    planes = b.mid
    if b.first != b.mid:
        raise ImportFailed(
            f"`{b.where}{b.first_key}`: {b.first} channels into a 3x3 of {b.mid}; byobnet's "
            "bottlenecks keep the inner width"
        )
    expansion = b.out / planes
    if expansion != (4 if b.layout == "bottleneck" else 1):
        args.append(f"expansion: {expansion:g}")
    if b.groups > 1:
        args.append(f"group_size: {b.mid // b.groups}")
    if b.extra_3x3:
        args.append("extra_3x3: on")
    return b.layout + (f"({', '.join(args)})" if args else ""), planes


def _bias(shapes: Shapes) -> str:
    """`conv_bias` of the ConvNormAct convolutions (attention's 1x1s have biases anyway)."""
    convs = [k for k in shapes if k.endswith(".conv.weight") and ".attn" not in k]
    biased = [k for k in convs if k.removesuffix(".weight") + ".bias" in shapes]
    if biased and len(biased) != len(convs):
        raise ImportFailed(f"`{biased[0]}`: some convolutions have biases, others not")
    return "on" if biased else "off"


def infer(source: Source, name: str, input_shape, choices) -> Imported:
    """The spec in `naming byobnet` that reproduces `source`, checked against its tensors."""
    from resdsl.interop.importer import (
        _norm,
        _shortcut,
        _with_arg,
        attention_setting,
        bilinear_dropout,
        checked,
    )

    shapes, facts = source.shapes, source.facts
    if "head.fc.weight" not in shapes:
        raise ImportFailed("no classifier (`head.fc.weight`) after byobnet's stages")
    stages = blocks_by_stage(shapes, _BLOCK)
    assumed: list[str] = []
    stem_value, width = stem(shapes)
    pool = facts.get("stem_pool")
    if pool is None:
        assumed.append(
            "a stem without a pool whose last convolution strides (timm's `stem_pool=''`; "
            "the pool has no weights)"
        )
    if not pool:
        stem_value = _with_arg(stem_value, "pool: none, last_stride: 2")
    elif pool != "max":
        raise ImportFailed(f"a stem pooled by a {pool} pool; resdsl reads byobnet's max pool")
    blocks: dict[str, list[Block]] = {}
    places = set()
    for stage, by_index in sorted(stages.items()):
        label = f"stage{stage + 1}"
        blocks[label] = []
        for index, t in sorted(by_index.items()):
            block, place = read_block(f"stages.{stage}.{index}.", t, width)
            blocks[label].append(block)
            places.add(place if block.attention else None)
            width = block.out
    every = [b for bs in blocks.values() for b in bs]
    if not every:
        raise ImportFailed("no blocks under `stages.0.0.`")
    if len(places - {None}) > 1:
        raise ImportFailed("attention after the 3x3 (`attn`) in some blocks, last in others")

    fc = shapes["head.fc.weight"]
    if input_shape is None:
        input_shape = facts.get("input")
    if input_shape is None:
        channels = next(iter(shapes.values()))[1]
        input_shape = (channels, 256, 256)
        assumed.append(f"input {channels}x256x256 (the size timm trains byobnet's ResNets at)")
    calls = {stage: _block_call(bs[0]) for stage, bs in blocks.items()}
    network_block = next(iter(calls.values()))[0]
    settings = [
        ("input", "x".join(map(str, input_shape))),
        ("classes", str(fc[0])),
        ("naming", "byobnet"),
        ("stem", stem_value),
        ("block", network_block),
    ]
    shortcuts = {stage: _shortcut(bs, False) for stage, bs in blocks.items()}
    projected = [stage for stage, s in shortcuts.items() if s is not None]
    if choices.plain and projected:
        raise ImportFailed(
            f"--plain: stage `{projected[0]}` has projection shortcuts (`shortcut.conv`), "
            "which a plain network lacks"
        )
    shortcut = "none" if choices.plain else next((s for s in shortcuts.values() if s), "B")
    if choices.plain:
        shortcuts = dict.fromkeys(shortcuts, "none")
    settings.append(("shortcut", shortcut))
    attention = attention_setting(every, inner="3x3" in places)
    if attention != "none":
        if "3x3" in places:
            attention = _with_arg(attention, "after: 3x3")
        if attention.startswith("bat"):
            attention = bilinear_dropout(attention, facts, assumed)
        settings.append(("attention", attention))
    if _bias(shapes) == "on":
        settings.append(("conv_bias", "on"))
    norm, norm_words = _norm(shapes, facts, False)
    assumed += norm_words
    if norm:
        settings.append(("norm", norm))
    activation = facts.get("activation")
    if activation is None and not facts:
        activation = "silu"
        assumed.append("silu activations (byobnet's ResNets but gcresnet50t; no weights say)")
    if activation:
        settings.append(("activation", activation))
    final = shapes.get("final_conv.conv.weight")
    if final is not None:
        settings.append(("head", f"avgpool(features: {final[0]})"))

    strides = facts.get("stages") or {}
    if not all(stage in strides for stage in blocks):
        strides = {stage: (1 if i == 0 else 2, 1) for i, stage in enumerate(blocks)}
        text = ", ".join(f"{s} /{st}" for s, (st, _) in strides.items())
        assumed.append(f"strides {text} (byobnet's ResNets'; set them with --strides)")
    if choices.strides is not None or choices.dilations is not None:
        raise ImportFailed("--strides and --dilations do not apply to byobnet's layout yet")
    stage_lines = []
    for stage, bs in blocks.items():
        call, planes = calls[stage]
        stride, dilation = strides[stage]
        body = [f"block {call}"] * (call != network_block)
        body += [f"shortcut {shortcuts[stage]}"] * (shortcuts[stage] not in (None, shortcut))
        body += [f"dilation {dilation}"] * (dilation > 1)
        stage_lines.append((stage, len(bs), planes, stride, body))
    return checked(name, source, settings, stage_lines, assumed)
