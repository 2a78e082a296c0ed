"""`resdsl import` for timm's and torchvision's RegNet layouts (`naming regnet`,
`naming torchvision_regnet`): RegNet state dicts to a spec.

The stem is `stem.conv` with `stem.bn` (a bare `stem` convolution in the pre-activation
RegNetV); block j of stage i is `s{i}.b{j}`: `conv1`, the grouped `conv2`, squeeze-excitation
`se.fc1`/`se.fc2` after it, `conv3` (each `.conv` with `.bn`; pre-activation, bare convolutions
after `norm1` .. `norm3`) and the projection `downsample` (`downsample.1` after an average
pool); `final_conv` before the head's `head.fc`. The shapes say each stage's width, depth,
group size and inner width (RegNetZ's inverted bottlenecks), squeeze-excitation's width, which
must be a quarter of the block's input as RegNet's (`of: input`), and whether transition
blocks have shortcuts. What no weights say (the strides, the activation, RegNetZ's missing
activation after the sum) comes from the module tree where the source is `timm:NAME`, else from
timm's RegNet conventions, written into the spec's header as assumed.

torchvision's names (`stem.0`, `trunk_output.block{i}.block{i}-{j}.f.a.0`, `f.se.fc1`,
`proj.0`, `fc`) are read as timm's, as timm's own checkpoint filter reads them, and the spec
is written in torchvision's.

The stages are listed: RegNet's six generator numbers are not recoverable from four widths and
depths (many generators give one network), so the import writes what the tensors hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from resdsl.interop.import_sources import ImportFailed, Shapes, Source, blocks_by_stage, conv_shape

if TYPE_CHECKING:  # the resnet.py importer, which dispatches here, lends its helpers
    from resdsl.interop.importer import Imported

_BLOCK = re.compile(r"^s(\d+)\.b(\d+)\.(.+)$")
# A RegNet block's first convolution: what tells the layout.
_MARK = re.compile(r"^s\d+\.b\d+\.conv1(\.conv)?\.weight$")
# squeeze-excitation's width over the block's input (RegNet's `se_ratio` of 0.25)
SE_REDUCTION = 4


_TORCHVISION_MARK = re.compile(r"^trunk_output\.block\d+\.block\d+-\d+\.f\.a\.0\.weight$")
# torchvision's names for timm's, in a block (timm's `_filter_fn`)
_TORCHVISION_PARTS = (
    ("f.a.0", "conv1.conv"), ("f.a.1", "conv1.bn"), ("f.b.0", "conv2.conv"),
    ("f.b.1", "conv2.bn"), ("f.se", "se"), ("f.c.0", "conv3.conv"), ("f.c.1", "conv3.bn"),
    ("proj.0", "downsample.conv"), ("proj.1", "downsample.bn"),
)  # fmt: skip


def is_regnet(shapes: Shapes) -> bool:
    return any(_MARK.match(key) or _TORCHVISION_MARK.match(key) for key in shapes)


def _as_timm(shapes: Shapes) -> dict[str, tuple]:
    """torchvision's RegNet keys as timm's: `trunk_output.block1.block1-0.f.a.0` is
    `s1.b1.conv1.conv`."""
    out = {}
    for key, shape in shapes.items():
        key = key.replace("stem.0.", "stem.conv.").replace("stem.1.", "stem.bn.")
        key = re.sub(
            r"^trunk_output\.block(\d+)\.block\d+-(\d+)\.",
            lambda m: f"s{m.group(1)}.b{int(m.group(2)) + 1}.",
            key,
        )
        for theirs, timms in _TORCHVISION_PARTS:
            key = key.replace(f".{theirs}.", f".{timms}.")
        out["head.fc." + key[3:] if key.startswith("fc.") else key] = shape
    return out


def _conv(t: Mapping[str, tuple], key: str, where: str) -> tuple:
    return conv_shape(t, key, where, "a RegNet block's")


def _read_block(where: str, t: Mapping[str, tuple], preact: bool, width: int) -> dict:
    """One block's widths, group size, attention width and shortcut."""
    unit = "" if preact else ".conv"
    first = _conv(t, f"conv1{unit}.weight", where)
    spatial = _conv(t, f"conv2{unit}.weight", where)
    last = _conv(t, f"conv3{unit}.weight", where)
    if first[1] != width:
        raise ImportFailed(f"`{where}conv1` {first} reads {first[1]} channels, not {width}")
    if spatial[2:] != (3, 3) or spatial[0] != first[0] or first[0] % spatial[1]:
        raise ImportFailed(f"`{where}conv2` {spatial}: expected a grouped 3x3 of {first[0]}")
    if last[1] != first[0]:
        raise ImportFailed(f"`{where}conv3` {last} reads {last[1]} channels, not {first[0]}")
    shortcut = None
    for key, kind in (("downsample.conv.weight", "B"), ("downsample.weight", "B")):
        if key in t:
            shortcut = kind
    if "downsample.1.weight" in t or "downsample.1.conv.weight" in t:
        shortcut = "D"
    se = t.get("se.fc1.weight")
    return {
        "in": width,
        "mid": first[0],
        "out": last[0],
        "group_size": spatial[1],
        "se": se[0] if se is not None else None,
        "shortcut": shortcut,
        "where": where,
    }


def infer(source: Source, name: str, input_shape, choices) -> Imported:
    """The spec in `naming regnet` (or `torchvision_regnet`) that reproduces `source`, checked
    against its tensors."""
    from resdsl.interop.importer import _norm, checked

    facts = source.facts
    torchvision = any(_TORCHVISION_MARK.match(key) for key in source.shapes)
    shapes = _as_timm(source.shapes) if torchvision else source.shapes
    if "head.fc.weight" not in shapes:
        raise ImportFailed("no classifier (`head.fc.weight`) after RegNet's stages")
    preact = "stem.weight" in shapes
    stem = shapes.get("stem.weight" if preact else "stem.conv.weight")
    if stem is None or len(stem) != 4:
        raise ImportFailed("no stem convolution (`stem.conv.weight` or `stem.weight`)")
    assumed: list[str] = []
    width = stem[0]
    blocks: dict[str, list[dict]] = {}
    for stage, by_index in sorted(blocks_by_stage(shapes, _BLOCK).items()):
        label = f"block{stage}" if torchvision else f"s{stage}"
        blocks[label] = []
        for index, t in sorted(by_index.items()):
            block = _read_block(f"{label}.b{index}.", t, preact, width)
            blocks[label].append(block)
            width = block["out"]
    every = [b for bs in blocks.values() for b in bs]
    if not every:
        raise ImportFailed("no blocks under `s1.b1.`")
    if choices.plain:
        raise ImportFailed("--plain: RegNets have shortcuts")
    if choices.strides is not None or choices.dilations is not None:
        raise ImportFailed("--strides and --dilations do not apply to RegNet's layout yet")
    transitions = [b for b in every if b["in"] != b["out"] or b is _first(blocks, b)]
    dropped = [b for b in transitions if b["shortcut"] is None]
    if dropped and len(dropped) != len(transitions):
        raise ImportFailed(
            f"`{dropped[0]['where']}` has no shortcut where other transition blocks do"
        )
    kinds = {b["shortcut"] for b in every} - {None}
    if len(kinds) > 1:
        raise ImportFailed("projection shortcuts with and without an average pool")
    for b in every:
        if b["se"] is not None and b["se"] != max(1, round(b["in"] / SE_REDUCTION)):
            raise ImportFailed(
                f"`{b['where']}se.fc1` is {b['se']} wide: RegNet's squeeze-excitation is a "
                f"quarter of the block's input, {round(b['in'] / SE_REDUCTION)}"
            )
    if len({b["se"] is None for b in every}) > 1:
        raise ImportFailed("squeeze-excitation in some blocks, not in others")

    activation = facts.get("activation")
    if activation is None and not facts:
        activation = "silu" if preact or dropped else None
        assumed.append(
            "SiLU activations (timm's RegNetV and RegNetZ; no weights say)"
            if activation
            else "ReLU activations (RegNetX and RegNetY; no weights say)"
        )
    fc = shapes["head.fc.weight"]
    if input_shape is None:
        input_shape = facts.get("input")
    if input_shape is None:
        input_shape = (stem[1], 224, 224)
        assumed.append(f"input {stem[1]}x224x224 (the size RegNets are trained at)")
    stem_value = f"imagenet(kernel: {stem[2]}, channels: {stem[0]}, pool: none"
    stem_value += ", norm: off)" if preact else ")"
    block_name = "preact_bottleneck" if preact else "bottleneck"
    block_args = ["expansion: 1"]
    linear_out = facts.get("linear_out")
    if linear_out is None and dropped and not preact:
        linear_out = True
        assumed.append(
            "no activation after the sum (timm's `linear_out`, with RegNetZ's transition blocks "
            "without shortcuts; no weights say)"
        )
    if linear_out and not preact:
        block_args.append("out_activation: off")
    network_block = f"{block_name}({', '.join(block_args)})"
    settings = [
        ("input", "x".join(map(str, input_shape))),
        ("classes", str(fc[0])),
        ("naming", "torchvision_regnet" if torchvision else "regnet"),
        ("stem", stem_value),
        ("block", network_block),
    ]
    kind = kinds.pop() if kinds else None
    if dropped:
        shortcut = "identity(transition: none)"
    else:
        shortcut = f"{kind or 'B'}(identity: preactivated)" if preact else kind or "B"
    settings.append(("shortcut", shortcut))
    if every[0]["se"] is not None:
        se = f"se(reduction: {SE_REDUCTION}, of: input, divisor: 1, after: 3x3"
        settings.append(("attention", se + (", activation: network)" if activation else ")")))
    norm, norm_words = _norm(shapes, facts, False)
    if norm and norm.startswith("group"):
        norm, norm_words = _group_norm(facts)
    assumed += norm_words
    if norm:
        settings.append(("norm", norm))
    if activation:
        settings.append(("activation", activation))
    final = shapes.get("final_conv.conv.weight")
    if final is not None:
        settings.append(("head", f"avgpool(features: {final[0]})"))
    elif preact:
        settings.append(("head", "avgpool(norm: off, act: on)"))
    elif linear_out:
        settings.append(("head", "avgpool(act: on)"))

    strides = facts.get("stages") or {}
    if not all(stage in strides for stage in blocks):
        strides = {stage: (2, 1) for stage in blocks}
        assumed.append("a stem and stages that stride by 2 (RegNet's)")
    stage_lines = []
    for stage, bs in blocks.items():
        first = bs[0]
        args = [*block_args, f"group_size: {first['group_size']}"]
        if first["mid"] != first["out"]:
            ratio = first["mid"] / first["out"]
            args.append(f"width_factor: {ratio:g}")
        for b in bs:
            if (b["mid"], b["group_size"]) != (first["mid"], first["group_size"]):
                raise ImportFailed(f"`{b['where']}` differs from its stage's first block")
        body = [f"block {block_name}({', '.join(args)})"]
        stage_lines.append((stage, len(bs), first["out"], strides[stage][0], body))
    return checked(name, source, settings, stage_lines, assumed)


def _first(blocks: dict[str, list[dict]], block: dict) -> dict | None:
    """The first block of `block`'s stage."""
    return next((bs[0] for bs in blocks.values() if block in bs), None)


def _group_norm(facts: dict) -> tuple[str, list[str]]:
    """Group norm by its group size (RegNet's `group_size`) where the module tree says one size
    for all; else by its groups, where it says those; else timm's 16."""
    size = facts.get("norm_group_size")
    if size:
        return f"group(size: {size})", []
    if facts.get("norm_groups"):
        return f"group(groups: {facts['norm_groups']})", []
    return "group(size: 16)", ["group norms of 16 channels a group (no weights say)"]
