"""`resdsl import` for timm's resnetv2 layout (`naming resnetv2`): its pre-activation ResNets'
and BiT's state dicts to a spec.

The stem is `stem.conv` (7x7), or a deep stem's `stem.conv1` .. `stem.conv3` with `norm1` and
`norm2` after the first two; block j of stage i is `stages.{i}.blocks.{j}`: `norm1`, `conv1`,
`norm2`, `conv2` (a basic block) and `norm3`, `conv3` (a bottleneck), its projection
`downsample.conv` (registered first); then the final `norm` and the classifier `head.fc`, a
1x1 convolution. The shapes say the widths, the depths, the stem and the norm kind (running
statistics: batch norm; none: group norm). What no weights say (the strides, whether the
projections average first, how the stem's pool pads, weight standardization) comes from the
module tree where the source is `timm:NAME`, else from timm's conventions, and is written into
the spec's header as assumed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import pairwise
from typing import TYPE_CHECKING

from resdsl.interop.import_sources import ImportFailed, Shapes, Source, blocks_by_stage, conv_shape

if TYPE_CHECKING:  # the resnet.py importer, which dispatches here, lends its helpers
    from resdsl.interop.importer import Imported

_BLOCK = re.compile(r"^stages\.(\d+)\.blocks\.(\d+)\.(.+)$")
# A ResNetV2 block's first norm, before its first convolution: what tells the layout.
_MARK = re.compile(r"^stages\.\d+\.blocks\.\d+\.norm1\.weight$")


def is_resnetv2(shapes: Shapes) -> bool:
    return any(_MARK.match(key) for key in shapes)


def _conv(t: Mapping[str, tuple], key: str, where: str) -> tuple:
    return conv_shape(t, key, where, "a pre-activation block's")


def _read_block(where: str, t: Mapping[str, tuple], width: int) -> dict:
    """One block's layout and widths."""
    bottleneck = "conv3.weight" in t
    convs = [_conv(t, f"conv{n}.weight", where) for n in range(1, 4 if bottleneck else 3)]
    if convs[0][1] != width:
        raise ImportFailed(f"`{where}conv1` {convs[0]} reads {convs[0][1]} channels, not {width}")
    for n, (before, after) in enumerate(pairwise(convs), start=2):
        if after[1] != before[0]:
            raise ImportFailed(f"`{where}conv{n}` {after} reads {after[1]}, not {before[0]}")
    spatial = convs[1] if bottleneck else convs[0]
    if spatial[1] != (convs[0][0] if bottleneck else width):
        raise ImportFailed(f"`{where}conv2` {spatial}: a grouped 3x3, which ResNetV2 has not")
    return {
        "bottleneck": bottleneck,
        "in": width,
        "mid": convs[0][0],
        "out": convs[-1][0],
        "projects": "downsample.conv.weight" in t,
        "where": where,
    }


def infer(source: Source, name: str, input_shape, choices) -> Imported:
    """The spec in `naming resnetv2` that reproduces `source`, checked against its tensors."""
    from resdsl.interop.importer import checked

    shapes, facts = source.shapes, source.facts
    fc = shapes.get("head.fc.weight")
    if fc is None or "norm.weight" not in shapes:
        raise ImportFailed("no final norm and classifier (`norm.weight`, `head.fc.weight`)")
    if choices.strides is not None or choices.dilations is not None:
        raise ImportFailed("--strides and --dilations do not apply to ResNetV2's layout yet")
    assumed: list[str] = []
    deep = "stem.conv1.weight" in shapes
    if deep:
        first, second, last = (shapes.get(f"stem.conv{n}.weight") for n in (1, 2, 3))
        if not (first and second and last):
            raise ImportFailed("a deep stem without `stem.conv2` and `stem.conv3`")
        widths = f"width: {second[0]}, channels: {last[0]}"
        if first[0] != second[0]:
            widths = f"first_width: {first[0]}, " + widths
        stem = f"deep({widths}, last_norm: off"
        width = last[0]
    elif "stem.conv.weight" in shapes:
        conv = shapes["stem.conv.weight"]
        stem = "imagenet(" + (f"channels: {conv[0]}, " if conv[0] != 64 else "") + "norm: off"
        width = conv[0]
    else:
        raise ImportFailed("no stem convolution (`stem.conv.weight` or `stem.conv1.weight`)")
    pad = facts.get("stem_pool_pad")
    if pad is None:
        pad = "ignore"
        assumed.append("a stem pool that ignores its padding (timm's ResNetV2 but BiT's)")
    stem += ", pool_pad: ignore)" if pad == "ignore" else ")"

    stages = blocks_by_stage(shapes, _BLOCK)
    blocks: dict[str, list[dict]] = {}
    for stage, by_index in sorted(stages.items()):
        label = f"stage{stage + 1}"
        blocks[label] = []
        for index, t in sorted(by_index.items()):
            block = _read_block(f"stages.{stage}.blocks.{index}.", t, width)
            blocks[label].append(block)
            width = block["out"]
    every = [b for bs in blocks.values() for b in bs]
    if not every:
        raise ImportFailed("no blocks under `stages.0.blocks.0.`")
    if len({b["bottleneck"] for b in every}) > 1:
        raise ImportFailed("basic blocks and bottlenecks in one ResNetV2")
    bottleneck = every[0]["bottleneck"]

    avg_down = facts.get("avg_down")
    if avg_down is None:
        avg_down = deep
        assumed.append(
            "projections that average first (shortcut D) with the deep stem, else not "
            "(timm's `avg_down`; no weights say)"
        )
    standardized = facts.get("standardized")
    norm = _norm(shapes)
    if standardized is None and not facts and norm == "group":
        assumed.append(
            "plain convolutions (BiT's are weight-standardized: `conv standardized(eps: "
            "1e-8)`; no weights say)"
        )
    if input_shape is None:
        input_shape = facts.get("input")
    if input_shape is None:
        channels = next(iter(shapes.values()))[1]
        input_shape = (channels, 224, 224)
        assumed.append(f"input {channels}x224x224 (the size timm trains ResNetV2s at)")
    settings = [
        ("input", "x".join(map(str, input_shape))),
        ("classes", str(fc[0])),
        ("naming", "resnetv2"),
        ("stem", stem),
        ("block", "preact_bottleneck" if bottleneck else "preact_basic"),
        ("shortcut", "D" if avg_down else "B"),
    ]
    if standardized:
        eps = f"{standardized:g}".replace("e-0", "e-")
        settings.append(("conv", f"standardized(eps: {eps})"))
    groups = facts.get("norm_groups")
    if norm in ("group", "evonorm_s0") and groups not in (None, 32):
        norm += f"(groups: {groups})"
    elif norm in ("group", "evonorm_s0") and groups is None and not facts:
        assumed.append(f"{norm} norms of 32 groups (no weights say how many)")
    if norm != "batch":
        settings.append(("norm", norm))
    settings.append(("head", "avgpool(classifier: conv)" if len(fc) == 4 else "avgpool"))

    strides = facts.get("stages") or {}
    if not all(stage in strides for stage in blocks):
        strides = {stage: (1 if i == 0 else 2, 1) for i, stage in enumerate(blocks)}
        assumed.append("strides 1, 2, 2, 2 (timm's ResNetV2s')")
    stage_lines = []
    for stage, bs in blocks.items():
        first = bs[0]
        planes = first["mid"] if bottleneck else first["out"]
        stage_lines.append((stage, len(bs), planes, strides[stage][0], []))
    return checked(name, source, settings, stage_lines, assumed)


def _norm(shapes: Shapes) -> str:
    """The norm kind its tensors say: running statistics, batch norm; a `v`, EvoNorm-S0; a
    `tau`, FRN; none of them, group norm."""
    norms = [k for k in shapes if k.endswith(".weight") and (".norm" in k or k == "norm.weight")]
    for extra, kind in (("running_mean", "batch"), ("v", "evonorm_s0"), ("tau", "frn")):
        if any(k.removesuffix("weight") + extra in shapes for k in norms):
            return kind
    return "group"
