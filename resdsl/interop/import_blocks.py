"""What one block's tensors say, for `resdsl import` (:mod:`resdsl.interop.importer`).

A block is read from its names and shapes alone: a basic block or bottleneck (`conv1` ..
`conv3`), Res2Net's bottleneck (`convs.{i}`: its splits' 3x3s), or SKNet's blocks, whose
convolutions are timm's ConvNormAct (`conv{n}.conv`, `conv{n}.bn`) and whose 3x3 (a basic
block's first, a bottleneck's) is a selective kernel: paths `conv{n}.paths.{i}`, an attention
`conv{n}.attn.fc_reduce` .. `fc_select`; or ResNeSt's bottleneck, whose 3x3 is split attention
(`conv2.conv`, one grouped 3x3 making every path, `conv2.fc1` .. `fc2`). How a stage of them is
written as a spec's `block` value is the importer's, but for the selective kernel's and split
attention's own arguments (:func:`selective_args`, :func:`resnest_args`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from resdsl.blocks import resnest
from resdsl.blocks.sknet import MAX_PATHS, ROUND_LIMIT
from resdsl.blocks.sknet import RECIPES as SK_RECIPES
from resdsl.interop.import_sources import NAMES, ImportFailed
from resdsl.ir import make_divisible


@dataclass
class Block:
    """What one block's tensors say."""

    layout: str
    preact: bool
    in_channels: int
    first: int
    mid: int
    out: int
    groups: int
    projection: int | None  # the shortcut convolution's index in its Sequential
    kernel: int  # the shortcut convolution's kernel
    # ("se", reduced), ("eca", kernel), ("gc", reduced, fuse), ("bat", reduced, size, groups)
    attention: tuple | None
    scale: int = 1  # Res2Net's splits (`mid` is each split's width)
    # SKNet's selective kernel: its paths (0: none), whether they split the input, the
    # attention's width; the keys of the block's first convolution and of its grouped 3x3.
    paths: int = 0
    split: bool = False
    reduced: int = 0
    first_key: str = ""
    spatial_key: str = ""
    where: str = ""  # its stage and index: `layer2.0`
    radix: int = 0  # ResNeSt's split attention: its paths (0: none); `reduced` its width
    extra_3x3: bool = False  # byobnet's second 3x3 (`conv2b_kxk`)

    @property
    def selective_out(self) -> int:
        """The selective kernel's output width: a basic block's first, a bottleneck's inner."""
        return self.first if self.layout == "sk_basic" else self.mid


def weight(role: str, **fields) -> str:
    """The state-dict key of the weight of the layer that plays `role` (`block.conv`, n=1:
    `conv1.weight`)."""
    return f"{NAMES.torch(role, **fields)}.weight"


CONV = {n: weight("block.conv", n=n) for n in (1, 2, 3)}


def need(tensors: Mapping[str, tuple], key: str, where: str, what: str) -> tuple:
    if key not in tensors:
        raise ImportFailed(f"`{where}.{key}` is missing: expected {what}")
    return tensors[key]


def shortcut_and_attention(t: Mapping[str, tuple]) -> tuple[int | None, int, tuple | None]:
    """A block's projection (its index in the shortcut's Sequential, its kernel) and channel
    attention, from its tensors."""
    projection, kernel = None, 1
    for index in (0, 1):
        shape = t.get(weight("shortcut", i=index))
        if shape is not None and len(shape) == 4:
            projection, kernel = index, shape[2]
            break
    return projection, kernel, read_attention(t, weight)


def read_attention(t: Mapping[str, tuple], key) -> tuple | None:
    """A block's channel attention from its tensors, or None: ("se", width), ("eca", kernel),
    ("gc", width, fuse) or ("bat", width, block size, groups). `key(role, **fields)` is a
    role's weight key in the layout read (both importers')."""
    se, eca = key("attention.se.reduce"), key("attention.eca.conv")
    if se in t:
        return ("se", t[se][0])
    if eca in t:
        return ("eca", t[eca][-1])
    for fuse in ("add", "scale"):
        gc = key("attention.gc.fc1", fuse=fuse)
        if gc in t:
            return ("gc", t[gc][0], fuse)
    return bilinear_attention(t, key)


def bilinear_attention(t: Mapping[str, tuple], key) -> tuple | None:
    """("bat", width, block size, groups) from bilinear attention's tensors (`key(role)`: a
    role's weight key in the layout read), or None: its first 1x1's width, and its row
    matrices' convolution, (block_size^2 x groups, groups, block_size, 1)."""
    reduce, rows = key("attention.bat.reduce"), key("attention.bat.rows")
    if reduce not in t or rows not in t:
        return None
    shape = t[rows]
    if len(shape) != 4 or shape[3] != 1 or shape[0] != shape[2] ** 2 * shape[1]:
        raise ImportFailed(
            f"`{rows}` {shape}: expected bilinear attention's (block_size^2 x groups, groups, "
            "block_size, 1)"
        )
    return ("bat", t[reduce][0], shape[2], shape[1])


def read_block(
    where: str, t: Mapping[str, tuple], preact: bool, width: int | None, split: bool | None
) -> Block:
    """Block `where`'s tensors `t`; `width`: its input's, where known (the previous block's
    output); `split`: whether selective kernels split their input, where a module tree says."""
    if any(weight("block.selective_conv", n=n, i=0) in t for n in (1, 2)):
        return _selective_block(where, t, width, split)
    if _SPLIT_CONV in t and _SPLIT_REDUCE in t:
        return _resnest_block(where, t)
    conv1 = need(t, CONV[1], where, "a block's first convolution")
    scale = t.get(weight("block.scale_conv", i=0))
    if scale is not None and CONV[2] not in t and len(conv1) == 4:
        return _res2net_block(where, t, conv1, scale)
    conv2 = need(t, CONV[2], where, "a block's second convolution")
    for key, shape in ((CONV[1], conv1), (CONV[2], conv2)):
        if len(shape) != 4:
            raise ImportFailed(f"`{where}.{key}` has shape {shape}: expected a 2-d convolution")
    conv3 = t.get(CONV[3])
    first = conv1[0]
    if conv3 is not None:
        layout, mid, out = "bottleneck", conv2[0], conv3[0]
        if conv2[1] == 0 or first % conv2[1]:
            raise ImportFailed(f"`{where}.{CONV[2]}` {conv2} does not split {first} channels")
        groups = first // conv2[1]
    else:
        layout, mid, out, groups = "basic", conv2[0], conv2[0], 1
    projection, kernel, attention = shortcut_and_attention(t)
    return Block(
        layout, preact, conv1[1], first, mid, out, groups, projection, kernel, attention,
        first_key=CONV[1], spatial_key=CONV[2],
    )  # fmt: skip


def _res2net_block(where: str, t: Mapping[str, tuple], conv1: tuple, split: tuple) -> Block:
    """Res2Net's bottleneck: the 1x1 to `scale` splits, a 3x3 (`convs.{i}`) for each but the
    last, the 1x1 out."""
    conv3 = need(t, CONV[3], where, "Res2Net's last 1x1")
    count = 0
    while weight("block.scale_conv", i=count) in t:
        count += 1
    mid, wide = split[0], conv1[0]
    if len(split) != 4 or mid == 0 or split[1] == 0 or wide != mid * (count + 1):
        key = weight("block.scale_conv", i=0)
        raise ImportFailed(
            f"`{where}.{key}` {split}: {count} split convolutions of {mid} channels do not "
            f"make the {wide} of `{where}.{CONV[1]}` with one split passed through"
        )
    projection, kernel, attention = shortcut_and_attention(t)
    groups = mid // split[1]
    return Block(
        "res2net", False, conv1[1], mid, mid, conv3[0], groups, projection, kernel, attention,
        scale=count + 1, first_key=CONV[1], spatial_key=weight("block.scale_conv", i=0),
    )  # fmt: skip


def _selective_block(
    where: str, t: Mapping[str, tuple], width: int | None, split: bool | None
) -> Block:
    """SKNet's blocks: a basic block whose first 3x3 (`conv1.paths.{i}`), or a bottleneck whose
    3x3 (`conv2.paths.{i}`), is a selective kernel; the other convolutions `conv{n}.conv`.

    A path's input channels say whether the paths split the input (its share) or read all of it
    (in groups). Where no module tree says which, a share is a split (`split: on`, ungrouped):
    the same shapes as paths on the whole input in as many groups as there are paths."""
    number = 1 if weight("block.selective_conv", n=1, i=0) in t else 2
    layout = "sk_basic" if number == 1 else "sk_bottleneck"
    key = weight("block.selective_conv", n=number, i=0)
    conv = t[key]
    paths = 0
    while weight("block.selective_conv", n=number, i=paths) in t:
        paths += 1
    if len(conv) != 4 or conv[2:] != (3, 3) or conv[1] == 0:
        raise ImportFailed(
            f"`{where}.{key}` has shape {conv}: expected a 3x3 convolution (the selective "
            "kernel's paths are 3x3s, dilated in place of larger kernels)"
        )
    for i in range(1, paths):
        other = weight("block.selective_conv", n=number, i=i)
        if t[other] != conv:
            raise ImportFailed(
                f"`{where}.{other}` has shape {t[other]}: expected path 0's {conv} (every path "
                "of a selective kernel is a 3x3 of the same widths)"
            )
    if not 2 <= paths <= MAX_PATHS:
        raise ImportFailed(
            f"`{where}.{key}`: a selective kernel of {paths} paths; `paths` takes 2 to {MAX_PATHS}"
        )
    projection, kernel, attention = shortcut_and_attention(t)

    def unit(n: int) -> tuple:
        found = need(t, weight("block.unit_conv", n=n), where, f"{layout}'s convolution {n}")
        if len(found) != 4:
            raise ImportFailed(
                f"`{where}.{weight('block.unit_conv', n=n)}` has shape {found}: expected a "
                "2-d convolution"
            )
        return found

    if layout == "sk_basic":  # the selective kernel reads the block's input
        second = unit(2)
        if projection is not None:
            channels = t[weight("shortcut", i=projection)][1]
        else:
            channels = width or second[0]
        in_channels, first, mid, out = channels, conv[0], second[0], second[0]
        first_key = key
    else:
        conv1, conv3 = unit(1), unit(3)
        in_channels, first, mid, out = conv1[1], conv1[0], conv[0], conv3[0]
        channels, first_key = first, weight("block.unit_conv", n=1)
    share = conv[1]
    if split is None:
        split = share * paths == channels
    groups = 0
    reads = channels // paths if split else channels
    if reads % share == 0 and reads * (paths if split else 1) == channels:
        groups = reads // share
    if groups == 0 or (layout == "sk_basic" and groups != 1):
        raise ImportFailed(
            f"`{where}.{key}` {conv}: paths that read {share} of {channels} channels are "
            f"neither a {paths}-way split of them nor "
            + ("all of them" if layout == "sk_basic" else "all of them in groups")
        )
    reduce_key = weight("block.selective_reduce", n=number)
    reduce = need(t, reduce_key, where, "the selective kernel's attention")
    return Block(
        layout, False, in_channels, first, mid, out, groups, projection, kernel, attention,
        paths=paths, split=split, reduced=reduce[0], first_key=first_key, spatial_key=key,
        where=where,
    )  # fmt: skip


_SPLIT_CONV = weight("block.split_conv", n=2)
_SPLIT_REDUCE = weight("block.split_reduce", n=2)


def _resnest_block(where: str, t: Mapping[str, tuple]) -> Block:
    """ResNeSt's bottleneck: the 1x1 (`conv1`), split attention (`conv2`), the 1x1 out. One
    grouped 3x3 makes the `radix` paths at once, (mid x radix, mid / (groups x radix), 3, 3);
    the attention's first 1x1 (`conv2.fc1`) is in `groups` groups, (attention, mid / groups)."""
    conv1 = need(t, CONV[1], where, "ResNeSt's first 1x1")
    conv3 = need(t, CONV[3], where, "ResNeSt's last 1x1")
    conv, reduce = t[_SPLIT_CONV], t[_SPLIT_REDUCE]
    for key, shape in ((CONV[1], conv1), (CONV[3], conv3), (_SPLIT_REDUCE, reduce)):
        if len(shape) != 4 or shape[1] == 0:
            raise ImportFailed(f"`{where}.{key}` has shape {shape}: expected a 2-d convolution")
    mid = conv1[0]
    if len(conv) != 4 or conv[2:] != (3, 3) or conv[1] == 0:
        raise ImportFailed(
            f"`{where}.{_SPLIT_CONV}` has shape {conv}: expected split attention's 3x3"
        )
    radix = conv[0] // mid if mid else 0
    if radix * mid != conv[0] or not 1 <= radix <= resnest.MAX_RADIX:
        raise ImportFailed(
            f"`{where}.{_SPLIT_CONV}` {conv}: {conv[0]} channels are not 1 to "
            f"{resnest.MAX_RADIX} paths of the {mid} of `{where}.{CONV[1]}`"
        )
    if mid % reduce[1]:
        raise ImportFailed(
            f"`{where}.{_SPLIT_REDUCE}` {reduce} does not split the {mid} channels of split "
            "attention in groups"
        )
    groups = mid // reduce[1]
    if conv[1] * groups * radix != mid:
        raise ImportFailed(
            f"`{where}.{_SPLIT_CONV}` {conv}: {radix} paths in {groups} groups (as "
            f"`{where}.{_SPLIT_REDUCE}` {reduce}) read {mid // (groups * radix)} of its "
            f"{mid} channels per group, not {conv[1]}"
        )
    projection, kernel, attention = shortcut_and_attention(t)
    return Block(
        "resnest", False, conv1[1], mid, mid, conv3[0], groups, projection, kernel, attention,
        reduced=reduce[0], first_key=CONV[1], spatial_key=_SPLIT_CONV, where=where, radix=radix,
    )  # fmt: skip


# The attention rules tried, after the recipe's defaults: timm's ratios and divisors.
_REDUCTIONS = (16, 8, 4, 32, 2)
_DIVISORS = (8, 16, 32, 4, 1)


def _fits(b: Block, rule: tuple[float, int]) -> bool:
    """Whether `rule` (reduction, divisor) gives block `b`'s attention width: a selective
    kernel's from its output, split attention's from its paths' channels (at least 32)."""
    if b.radix:
        wide = b.mid * b.radix / rule[0]
        return b.reduced == make_divisible(wide, rule[1], resnest.ROUND_LIMIT, resnest.MINIMUM)
    return b.reduced == make_divisible(b.selective_out / rule[0], rule[1], ROUND_LIMIT)


def _attention_rule(blocks: list[Block], default: tuple[float, int]) -> tuple[float, int] | None:
    """The `reduction` and `divisor` (the default first) that give every block's attention
    width, or None."""
    candidates = [default] + [(r, d) for r in _REDUCTIONS for d in _DIVISORS]
    return next((rule for rule in candidates if all(_fits(b, rule) for b in blocks)), None)


def selective_args(stage: list[Block], network: list[Block]) -> list[str]:
    """The selective kernel's arguments of a stage's `block` value (those that differ from its
    recipe's defaults): one attention rule for the whole network where one fits, else the
    stage's own."""
    b = stage[0]
    defaults = next(r.defaults for r in SK_RECIPES if r.name == b.layout)
    default = (defaults["reduction"], defaults["divisor"])
    selective = [blk for blk in network if blk.paths]
    rule = _attention_rule(selective, default) or _attention_rule(stage, default)
    if rule is None:  # named: the stage's first block that the recipe's default does not fit
        odd = next((blk for blk in stage if not _fits(blk, default)), b)
        key = weight("block.selective_reduce", n=1 if b.layout == "sk_basic" else 2)
        widths = ", ".join(f"{blk.reduced} of {blk.selective_out}" for blk in stage)
        raise ImportFailed(
            f"`{odd.where}.{key}`: selective kernel attention widths in its stage ({widths}) "
            "that no reduction and divisor explain (the output's width over `reduction`, "
            "rounded to a multiple of `divisor`)"
        )
    args = []
    if b.paths != defaults["paths"]:
        args.append(f"paths: {b.paths}")
    if b.split != defaults["split"]:
        args.append(f"split: {'on' if b.split else 'off'}")
    if rule[0] != default[0]:
        args.append(f"reduction: {rule[0]:g}")
    if rule[1] != default[1]:
        args.append(f"divisor: {rule[1]}")
    return args


def resnest_args(stage: list[Block], network: list[Block], avd: str | None) -> list[str]:
    """Split attention's arguments of a stage's `block` value (those that differ from the
    recipe's defaults): `radix`, one attention rule for the network where one fits (else the
    stage's own), and where the average pool strides (`avd`: "first", "last" or "off", from a
    module tree; None: the recipe's default, which no weights say)."""
    b = stage[0]
    defaults = next(r.defaults for r in resnest.RECIPES)
    default = (defaults["reduction"], defaults["divisor"])
    split = [blk for blk in network if blk.radix]
    rule = _attention_rule(split, default) or _attention_rule(stage, default)
    if rule is None:
        odd = next((blk for blk in stage if not _fits(blk, default)), b)
        widths = ", ".join(f"{blk.reduced} of {blk.mid * blk.radix}" for blk in stage)
        raise ImportFailed(
            f"`{odd.where}.{_SPLIT_REDUCE}`: split attention widths in its stage ({widths}) "
            "that no reduction and divisor explain (the paths' channels over `reduction`, "
            "rounded to a multiple of `divisor`, at least 32)"
        )
    args = [f"radix: {b.radix}"] * (b.radix != defaults["radix"])
    if rule[0] != default[0]:
        args.append(f"reduction: {rule[0]:g}")
    if rule[1] != default[1]:
        args.append(f"divisor: {rule[1]}")
    if avd == "off":
        args.append("avd: off")
    elif avd == "first":
        args.append("avd_first: on")
    return args
