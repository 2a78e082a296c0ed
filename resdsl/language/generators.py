"""Stage generators: a network's stages written as a rule rather than listed.

`stages regnet(w0, wa, wm, depth, group_size, bottleneck)` is RegNet's (Radosavovic et al.,
"Designing Network Design Spaces", 2020), expanded exactly as pycls, timm and torchvision do:

* block j (from 0) has the continuous width u_j = w0 + wa * j;
* its step s_j = round(log(u_j / w0) / log(wm)) quantizes it to w0 * wm^s_j, rounded to a
  multiple of `quantum` (8);
* the stages are the runs of equal width, each block's stride `stride` in its first;
* each stage's inner width (width * bottleneck) is made a multiple of its group size, the
  group size first capped at the inner width (pycls' compatibility adjustment): to the nearest
  multiple (`rounding: nearest`, pycls and timm), or with make_divisible, never below 90%
  (`rounding: divisible`, torchvision and timm's `_tv` nets). The stage's width follows back.

A generator whose arguments make no network (w0 not a multiple of the quantum, wm not above
1) or whose stages are unusable (one whose width rounds to nothing, a count other than the
four that RegNet has) is a diagnostic at the argument or the generator, saying which stage
and why. The arithmetic is Python's float64, pycls' own; the libraries' float32 gives the same
stages for every network they register (tests/parity/test_regnet.py).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from resdsl.diagnostics import core as dx
from resdsl.diagnostics.core import Diagnostics
from resdsl.ir import Call, Span
from resdsl.language.schema import MAX_WIDTH

# RegNet's stages: its design space has four (the paper's AnyNet: a stem, four stages, a head).
REGNET_STAGES = 4


class GeneratedStage(NamedTuple):
    """One stage a generator writes: its blocks and width, with the group size and inner-width
    factor its blocks take."""

    blocks: int
    width: int
    stride: int
    group_size: int
    bottleneck: float


def make_divisible(value: float, divisor: int, round_limit: float = 0.9) -> int:
    """The multiple of `divisor` nearest `value`, at least `divisor` and, where rounding down
    would lose more than 1 - `round_limit` of it, the next one up (torchvision's
    `_make_divisible`)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


def regnet_block_widths(w0: int, wa: float, wm: float, depth: int, quantum: int) -> list[int]:
    """Every block's width, quantized (see the module's docstring)."""
    widths = []
    for j in range(depth):
        step = round(math.log((w0 + wa * j) / w0) / math.log(wm))
        widths.append(int(round(w0 * wm**step / quantum) * quantum))
    return widths


def regnet_stages(args: dict[str, Any]) -> list[GeneratedStage]:
    """RegNet's stages from its arguments (already checked: see :func:`expand`)."""
    widths = regnet_block_widths(args["w0"], args["wa"], args["wm"], args["depth"], args["quantum"])
    runs: list[list[int]] = []  # [width, blocks]
    for width in widths:
        if runs and runs[-1][0] == width:
            runs[-1][1] += 1
        else:
            runs.append([width, 1])
    ratio = args["bottleneck"]
    stages = []
    for width, blocks in runs:
        inner = int(width * ratio)
        group = min(args["group_size"], inner) if inner else args["group_size"]
        if args["rounding"] == "divisible":
            inner = make_divisible(inner, group)
        else:
            inner = int(round(inner / group) * group)
        stages.append(GeneratedStage(blocks, int(inner / ratio), args["stride"], group, ratio))
    return stages


def expand(call: Call, args: dict[str, Any], diags: Diagnostics) -> list[GeneratedStage] | None:
    """The stages of `stages regnet(...)`, or None with the diagnostics of what stops them."""
    spans: dict[str, Span] = {arg.name.text: arg.value.span for arg in call.args}
    missing = [name for name, value in args.items() if value is None]
    if missing:
        listed = ", ".join(f"`{name}`" for name in missing)
        diags.add(
            dx.E_MISSING,
            f"`regnet` needs {listed}",
            call.span,
            label="its six numbers are w0, wa, wm, depth, group_size (and bottleneck)",
            help="e.g. `stages regnet(w0: 24, wa: 36.44, wm: 2.49, depth: 13, group_size: 8)`",
        )
        return None
    problems = []
    if args["w0"] % args["quantum"]:
        problems.append(
            (
                "w0",
                f"w0 = {args['w0']} is not a multiple of the quantum {args['quantum']}",
                "RegNet's widths are multiples of the quantum, its first one too",
            )
        )
    if args["wm"] <= 1:
        problems.append(
            (
                "wm",
                f"wm = {args['wm']:g} does not grow the width: it must be above 1",
                "RegNet's widths step by wm between stages (2 to 3 in the paper's networks)",
            )
        )
    for name, message, why in problems:
        diags.add(
            dx.E_GENERATOR,
            message,
            spans.get(name, call.span),
            label=f"`{name}`",
            help=why,
        )
    if problems:
        return None
    stages = regnet_stages(args)
    for number, stage in enumerate(stages, start=1):
        if stage.width < 1:
            diags.add(
                dx.E_GENERATOR,
                f"stage {number}'s width rounds to 0 with groups of {stage.group_size}",
                spans.get("group_size", call.span),
                label=f"group size {stage.group_size}",
                help="lower `group_size`, or widen the stages (`w0`, `wa`)",
            )
            return None
        inner = int(stage.width * stage.bottleneck)
        if max(stage.width, inner) > MAX_WIDTH:
            diags.add(
                dx.E_LIMIT,
                f"stage {number}'s width {stage.width} (inner {inner}) is beyond the limit of "
                f"{MAX_WIDTH:,}",
                call.span,
                label=f"stage {number}",
                help="lower `w0`, `wa`, `wm` or `bottleneck`",
            )
            return None
    if len(stages) != REGNET_STAGES:
        widths = ", ".join(f"{s.blocks} x {s.width}" for s in stages)
        diags.add(
            dx.E_GENERATOR,
            f"these numbers make {len(stages)} stage{'s' * (len(stages) != 1)} ({widths}); "
            f"RegNet has {REGNET_STAGES}",
            call.span,
            label=f"{len(stages)} stages",
            help="the width must step up by wm three times over the depth: change `wa`, `wm` "
            "or `depth`",
        )
        return None
    return stages
