"""Phase 4: validation passes over the elaborated network.

Each pass states its rule in its docstring, owns a range of diagnostic codes, and reports every
problem it finds; none stops at the first. The driver runs them in order. A pass reads the
network alone: every stage carries what was declared for it and where (its spans), so nothing
here pairs the network with the spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from resdsl.blocks import RECIPES
from resdsl.diagnostics import core as dx
from resdsl.diagnostics.core import Diagnostics, Label
from resdsl.elaboration.elaborate import inner_width, out_width, walk
from resdsl.ir import (
    BilinearAttentionLayer,
    BlurPoolLayer,
    BranchLayer,
    ConvLayer,
    EcaLayer,
    GlobalContextLayer,
    Network,
    NormLayer,
    Shape,
    Span,
    SqueezeExciteLayer,
    Stage,
    flatten,
)
from resdsl.language.schema import MAX_KERNEL


class Pass(NamedTuple):
    name: str
    codes: str
    run: Callable[[Network, Diagnostics], None]

    @property
    def rule(self) -> str:
        return (self.run.__doc__ or "").strip()


PASSES: list[Pass] = []


def register(name: str, codes: str):
    def wrap(function):
        PASSES.append(Pass(name, codes, function))
        return function

    return wrap


def run_passes(network: Network, diags: Diagnostics) -> None:
    for validation in PASSES:
        validation.run(network, diags)


def _setting_span(stage: Stage, network: Network, key: str) -> Span:
    return stage.spans.get(key) or network.spans.get(key) or stage.span


# --------------------------------------------------------------------------- blocks


@register("blocks", "E401-E406")
def check_blocks(network: Network, diags: Diagnostics) -> None:
    """Each block kind's own checks (its recipe's, :mod:`resdsl.blocks`): for the residual
    blocks, groups divide the inner width, the expansion is at least 1, basic blocks take
    neither groups nor a stride placement. And for every kind, a composite layer's paths
    divide the channels they split."""
    reported: set[tuple[int, str]] = set()
    for stage in network.stages:
        block = stage.block
        where = block.span or stage.span
        recipe = RECIPES[block.name]
        if recipe.check is None:
            continue

        def report(code: str, *args, where=where, **kwargs) -> None:
            if (where.start, code) not in reported:
                reported.add((where.start, code))
                diags.add(code, *args, span=where, **kwargs)

        before = len(reported)
        recipe.check(stage, block, inner_width(block, stage.width), report)
        # Every convolution's groups divide what it reads: inside composite layers, where a
        # split path reads fewer channels than the block's width, and (where the recipe's
        # check, which covers the inner width, found nothing) where a block's grouped 3x3
        # reads its input, as an edge block's does.
        for run in stage.runs:
            for layer in run.block.branch:
                if isinstance(layer, BranchLayer):
                    for inner in (layer, *flatten(layer.parts())):
                        _check_divides(inner, stage, report)
                elif len(reported) == before:
                    _check_divides(layer, stage, report)


def _check_divides(layer, stage: Stage, report) -> None:
    """A composite layer's paths each read an equal share of the channels they split, and each
    convolution's groups divide its channels (inside a composite too, where a split path reads
    fewer channels than the block's width)."""
    if isinstance(layer, BranchLayer) and layer.split and layer.channels % len(layer.paths):
        count = len(layer.paths)
        report(
            dx.E_GROUPS_DIVIDE,
            f"{count} paths do not divide the {layer.channels} channels they split in stage"
            f" `{stage.name}`",
            label=f"{layer.channels} channels in stage `{stage.name}`",
            help="choose paths that divide the width, or do not split the input",
        )
    conv = getattr(layer, "conv", None)
    if isinstance(layer, ConvLayer) and (
        conv.in_channels % conv.groups or conv.out_channels % conv.groups
    ):
        report(
            dx.E_GROUPS_DIVIDE,
            f"{conv.groups} groups do not divide the {conv.in_channels} channels a convolution"
            f" of stage `{stage.name}` reads (`{layer.torch}`)",
            label=f"in stage `{stage.name}`",
            help="choose groups that divide the width, or a wider stage",
        )


# --------------------------------------------------------------------------- design rule


@register("design rule", "E201-W202")
def check_halve_double(network: Network, diags: Diagnostics) -> None:
    """When the spatial size halves, the width doubles; when it stays, the width stays.

    Checked at each stage boundary: the size change there is the stride of the last block of
    the stage before (when that stage strides its last block, as keras' V2 nets do) times the
    stride of the first block of the stage after (when it strides its first), times the growth
    in dilation (a dilated stage stands in for a strided one). A stage can waive the rule with
    `waive halve_double`; a waiver that is not needed is a warning.
    """
    stages = network.stages
    for i, stage in enumerate(stages):
        if stage.generated:
            continue  # its width follows its generator's rule (RegNet's), not this one
        violated = False
        message = label = help_text = ""
        notes: tuple[Label, ...] = ()
        if i > 0:
            prev = stages[i - 1]
            factor = (prev.stride if prev.strided_block == "last" else 1) * (
                stage.stride if stage.strided_block == "first" else 1
            )
            dilates = stage.dilation / prev.dilation
            factor_f = factor * dilates
            prev_out = out_width(prev.block, prev.width)
            cur_out = out_width(stage.block, stage.width)
            if cur_out != prev_out * factor_f:
                violated = True
                expected_out = prev_out * factor_f
                expected = expected_out / stage.block.expansion
                expected_text = f"{expected:g}" if expected == int(expected) else None
                change = _size_change(factor, dilates)
                widths = (
                    f"keeps {cur_out} channels"
                    if cur_out == prev_out
                    else f"goes from {prev_out} to {cur_out} channels"
                )
                message = f"stage `{stage.name}` {change} but {widths}"
                # In channels throughout: the width written (`x 32`) is named only where the
                # block's expansion makes it differ from the channels it gives.
                if expected_text and stage.block.expansion != 1:
                    label = f"expected `x {expected_text}`, {expected_out:g} channels"
                else:
                    label = f"expected {expected_out:g} channels"
                label += " (halve spatial, double channels)" if factor_f == 2 else ""
                notes = (Label(prev.spans["width"], f"previous stage has {prev_out} channels"),)
                fix = f"use `x {expected_text}`" if expected_text else "change the width"
                help_text = f"{fix}, change the stride, or add `{{ waive halve_double }}`"
        if i == len(stages) - 1 and stage.strided_block == "last" and stage.stride > 1:
            violated = True
            message = f"last stage `{stage.name}` halves the size with no stage after to double"
            label = "strides its last block"
            help_text = "use `/ 1` on the last stage, as keras' V2 nets do"
            notes = ()
        waivers = [w for w in stage.waivers if w.rule == "halve_double"]
        if violated and not waivers:
            span = (
                stage.spans["width"] if i > 0 and notes else stage.spans.get("stride", stage.span)
            )
            diags.add(dx.E_HALVE_DOUBLE, message, span, label=label, help=help_text, notes=notes)
        elif waivers and not violated:
            diags.add(
                dx.W_UNUSED_WAIVER,
                f"stage `{stage.name}` follows the halve/double rule; the waiver is not needed",
                waivers[0].span,
                help="remove `waive halve_double`",
            )


def _size_change(stride: int, dilates: float) -> str:
    """What a stage boundary does, in words: the stride it applies and the growth in
    dilation, which the rule counts as a stride (a dilated stage stands in for a strided one)."""
    moves = []
    if stride != 1:
        moves.append(
            "halves the spatial size" if stride == 2 else f"shrinks the spatial size {stride}-fold"
        )
    if dilates != 1:
        moves.append(
            "doubles the dilation" if dilates == 2 else f"multiplies the dilation by {dilates:g}"
        )
    if not moves:
        return "keeps the spatial size"
    if len(moves) == 2:
        return f"{moves[0]} and {moves[1]} (together a {stride * dilates:g}-fold step)"
    return moves[0]


# --------------------------------------------------------------------------- norms


@register("attention", "E402, E408, E602")
def check_attention(network: Network, diags: Diagnostics) -> None:
    """Squeeze-excitation has one gate, and global context one fusion, in the whole network:
    the backends write one module (or function) of each per network. A kernel ECA derives from
    `gamma` and `beta` stays within the limit a stated `kernel` has (reported once per
    setting)."""
    reported: set[Span] = set()
    for stage in network.stages:
        eca = next(
            (
                layer
                for run in stage.runs
                for layer in run.block.branch
                if isinstance(layer, EcaLayer)
                and layer.gamma is not None
                and layer.conv.kernel > MAX_KERNEL
            ),
            None,
        )
        where = _setting_span(stage, network, "attention")
        if eca is not None and where not in reported:
            reported.add(where)
            sign = "-" if eca.beta < 0 else "+"
            diags.add(
                dx.E_LIMIT,
                f"ECA's kernel for the {eca.channels} channels of stage `{stage.name}` comes to "
                f"{eca.conv.kernel} (|log2({eca.channels}) {sign} {abs(eca.beta):g}| / "
                f"{eca.gamma:g}), beyond the limit of {MAX_KERNEL}",
                where,
                label="kernel derived from gamma and beta",
                help="give ECA a larger `gamma`, a `beta` nearer -log2 of the channels, or a "
                "`kernel` of its own",
            )
    # Where `after:` puts the attention must exist: one 3x3 of the inner width (`3x3`), a
    # branch that ends with a norm (`activation`: pre-activation branches end with a
    # convolution).
    for stage in network.stages:
        for run in stage.runs:
            block = run.block
            inner_missing = block.attention_after == "3x3" and any(
                getattr(x, "width", "") == "out"
                for x in block.branch
                if x.op in ("se", "eca", "gc", "bat")
            )
            if inner_missing:
                what = (
                    "`after: 3x3` puts attention after the one 3x3 that makes a block's inner "
                    f"width; stage `{stage.name}`'s `{block.kind}` blocks have none",
                    "attention after the 3x3",
                    "use `bottleneck` (or `basic`) blocks",
                )
            elif block.attention_after == "activation" and block.preact:
                what = (
                    "`after: activation` puts attention after the branch's last norm and an "
                    f"activation; stage `{stage.name}`'s `{block.kind}` blocks end with a "
                    "convolution",
                    "attention after an activation",
                    "use post-activation blocks",
                )
            else:
                continue
            message, label, fix = what
            diags.add(
                dx.E_NOT_FOR_KIND,
                message,
                _setting_span(stage, network, "attention"),
                label=label,
                help=f"{fix}, or leave the attention `after: last`",
            )
            break
    # What one helper fixes for the whole network: squeeze-excitation's gate, global context's
    # fusion.
    fixed = (
        (SqueezeExciteLayer, "gate", "squeeze-excitation", "gates with {}"),
        (GlobalContextLayer, "fuse", "global context", "fuses by {}"),
    )
    for kind, setting, what, verb in fixed:
        first = None
        for stage in network.stages:
            values = {
                getattr(layer, setting)
                for run in stage.runs
                for layer in run.block.branch
                if isinstance(layer, kind)
            }
            for value in sorted(values):
                if first is None:
                    first = (value, stage)
                elif value != first[0]:
                    diags.add(
                        dx.E_MIXED_GATES,
                        f"stage `{stage.name}`'s {what} {verb.format(value)}, stage "
                        f"`{first[1].name}`'s {verb.format(first[0])}",
                        _setting_span(stage, network, "attention"),
                        notes=(Label(_setting_span(first[1], network, "attention"), first[0]),),
                        help=f"give every stage's {what} the same `{setting}`",
                    )
                    break


@register("norms", "E407")
def check_norms(network: Network, diags: Diagnostics) -> None:
    """Group norm's groups divide the channels of every norm of the network."""
    conventions = network.conventions
    if conventions.norm not in ("group", "evonorm_s0"):  # EvoNorm-S0's groups too
        return
    # groups of a fixed count, or of a fixed size (timm's `group_size`): either divides
    size = conventions.norm_group_size
    divisor = size or conventions.norm_groups
    what = f"groups of {size} channels" if size else f"{divisor} groups"
    widths = sorted(
        {
            layer.channels
            for layer in _every_layer(network)
            if isinstance(layer, NormLayer) and layer.channels % divisor
        }
    )
    if widths:
        listed = ", ".join(map(str, widths[:5])) + (" ..." if len(widths) > 5 else "")
        diags.add(
            dx.E_NORM_GROUPS,
            f"{what} do not divide the channels of every norm ({listed})",
            network.spans.get("norm") or network.span,
            label=what,
            help="choose a group size that divides every width"
            if size
            else "choose groups that divide every width (32 divides the usual 64 to 2048)",
        )


def _every_layer(network: Network):
    yield from network.stem.layers
    for stage in network.stages:
        for run in stage.runs:
            yield from run.block.layers
    yield from network.head.layers


# --------------------------------------------------------------------------- shortcuts


@register("shortcuts", "E301-E303")
def check_shortcuts(network: Network, diags: Diagnostics) -> None:
    """Every block has a shortcut that fits: `identity` only where the input and output shapes
    match; zero-padding (`A`) only where the channels grow by an even number."""
    for stage in network.stages:
        where = _setting_span(stage, network, "shortcut")
        for run in stage.runs:
            block = run.block
            position = run.first_index - stage.runs[0].first_index + 1
            which = f"block {position} of stage `{stage.name}`"
            if block.shortcut.kind == "identity" and block.in_shape != block.out_shape:
                diags.add(
                    dx.E_IDENTITY_MISMATCH,
                    f"{which} maps {block.in_shape} to {block.out_shape}; an identity shortcut "
                    "cannot add them",
                    where,
                    label="identity shortcut",
                    notes=(Label(stage.span, "in this stage"),),
                    help="use `shortcut B` (project where the shape changes) or `A` (zero-pad)",
                )
                break
            if block.shortcut.kind == "pad":
                grow = block.out_channels - block.in_channels
                if grow < 0:
                    diags.add(
                        dx.E_PAD_SHRINKS,
                        f"{which} goes from {block.in_channels} to {block.out_channels} channels; "
                        "zero-padding cannot remove channels",
                        where,
                        label="zero-padding shortcut",
                        notes=(Label(stage.span, "in this stage"),),
                        help="use `shortcut B` here",
                    )
                    break
                if grow % 2:
                    diags.add(
                        dx.E_PAD_ODD,
                        f"{which} grows from {block.in_channels} to {block.out_channels} "
                        f"channels; {grow} cannot be padded evenly on both sides",
                        where,
                        label="zero-padding shortcut",
                        notes=(Label(stage.span, "in this stage"),),
                        help="choose widths whose difference is even, or `shortcut B`",
                    )
                    break


@register("plain networks", "E304-E306")
def check_plain(network: Network, diags: Diagnostics) -> None:
    """`shortcut none` (a plain network) holds for every stage; nothing may drop or zero a
    branch, which is then the only path through its block."""
    # a stage whose transition block alone has none (RegNetZ's) is residual
    plain = [
        stage
        for stage in network.stages
        if all(run.block.shortcut.kind == "none" for run in stage.runs)
        and not any(run.block.shortcut.transition for run in stage.runs)
    ]
    if not plain:
        return
    residual = [stage for stage in network.stages if stage not in plain]
    if residual:
        # The stage that sets a shortcut of its own is the odd one out.
        network_span = network.spans.get("shortcut")
        odd = next(
            (s for s in network.stages if s.spans.get("shortcut") not in (None, network_span)),
            plain[0],
        )
        diags.add(
            dx.E_PLAIN_MIXED,
            f"stage `{odd.name}` {'has no shortcuts' if odd in plain else 'has shortcuts'} "
            f"where stage `{(residual if odd in plain else plain)[0].name}` "
            f"{'has them' if odd in plain else 'has none'}; a network is plain or residual "
            "throughout",
            _setting_span(odd, network, "shortcut"),
            label="shortcut",
            help="set `shortcut none` on the network, for every stage"
            if odd in plain
            else f"remove stage `{odd.name}`'s `shortcut`",
        )
    conventions = network.conventions
    # A plain network's branch is its only path: what drops or zeroes it cuts the network.
    cuts = [
        (
            conventions.stochastic_depth > 0,
            dx.E_PLAIN_DROP_PATH,
            "stochastic depth drops whole residual branches, and a plain network's branch is "
            "its only path: a dropped block would cut the network",
            "stochastic_depth",
            "stochastic depth",
            "remove `stochastic_depth`, or give the network shortcuts",
        ),
        (
            conventions.zero_last_norm,
            dx.E_PLAIN_ZERO_INIT,
            "`zero_last_norm` starts each branch at zero, and a plain network's branch is its "
            "only path: every block would output zeros",
            "init",
            "zero_last_norm",
            "use `init kaiming` without `zero_last_norm`, or give the network shortcuts",
        ),
    ]
    for applies, code, message, setting, label, fix in cuts:
        if applies:
            diags.add(
                code, message, network.spans.get(setting, network.span), label=label, help=fix
            )


# --------------------------------------------------------------------------- spatial


@register("spatial", "E501-W502")
def check_spatial(network: Network, diags: Diagnostics) -> None:
    """The feature map stays at least 1x1 until the head: a stride never meets a map smaller
    than itself (padded convolutions would silently keep a 1x1 map at 1x1). An odd size met by
    a stride is rounded, which is worth a warning."""
    h, w = network.input.height, network.input.width
    stem_span = network.spans.get("stem") or network.spans.get("input") or network.span
    stem = network.stem
    total = 1
    for s in stem.strides:
        total *= s
    if min(h, w) < total:
        diags.add(
            dx.E_VANISHES,
            f"the stem shrinks the {h}x{w} input below 1x1",
            stem_span,
            help=f"use an input of at least {total}x{total}, or "
            + (
                f"stem strides that multiply to at most {min(h, w)}"
                if network.stem.preset == "cifar"
                else "the `cifar` stem"
            ),
        )
        return
    if any(h % s or w % s for s in stem.strides if s > 1):
        diags.add(
            dx.W_ODD_SIZE,
            f"the stem's strides do not divide the {h}x{w} input; sizes are rounded",
            network.spans.get("input", stem_span),
            help="inputs that are multiples of the stem's total stride avoid rounding",
        )
    for stage in network.stages:
        out = stage.out_shape
        where = stage.spans.get("stride", stage.span)
        s = stage.stride
        last_in = stage.runs[-1].block.in_shape
        size = stage.in_shape if stage.strided_block == "first" else last_in
        if min(out.height, out.width) < 1 or (s > 1 and min(size.height, size.width) < s):
            framework = (
                "PyTorch and Keras would fail at run time (an output size below 1)"
                if min(out.height, out.width) < 1
                else "PyTorch and Keras would run, with padding keeping a map made mostly of "
                "zeros at 1x1"
            )
            input_span = network.spans.get("input")
            notes = (Label(input_span, f"input {network.input}"),) if input_span else ()
            diags.add(
                dx.E_VANISHES,
                f"stage `{stage.name}` shrinks the {stage.in_shape.height}x"
                f"{stage.in_shape.width} feature map below 1x1",
                where,
                label=f"stride {stage.stride}",
                notes=notes,
                help=f"use a larger input, fewer strided stages, or `/ 1`; {framework}",
            )
            return
        if s > 1 and (size.height % s or size.width % s):
            diags.add(
                dx.W_ODD_SIZE,
                f"stage `{stage.name}` strides a {size.height}x{size.width} map by {s}; "
                f"the size is rounded to {out.height}x{out.width}",
                where,
                label=f"stride {s} on {size.height}x{size.width}",
                help="an input size divisible by the network's total stride avoids rounding",
            )


def _blurred_maps(layers, shape: Shape):
    """Each blur pool of `layers` with the map it receives."""
    for number, layer in enumerate(layers):
        if isinstance(layer, BlurPoolLayer):
            yield layer, walk(layers[:number], shape)[0]


@register("bilinear attention", "E402, E403, E504")
def check_bilinear_attention(network: Network, diags: Diagnostics) -> None:
    """Bilinear attention's 1x1s each have a norm (timm's ConvNormAct), its groups divide its
    width, and every map it mixes is a whole number of its blocks on each side (timm asserts
    it; the Kronecker-widened matrices need it). Reported once per stage."""
    for stage in network.stages:
        where = _setting_span(stage, network, "attention")
        for run in stage.runs:
            block = run.block
            found = [
                (i, x) for i, x in enumerate(block.branch) if isinstance(x, BilinearAttentionLayer)
            ]
            if not found:
                continue
            index, bat = found[0]
            seen = walk((*block.pre, *block.branch[:index]), block.in_shape)[0]
            size = bat.block_size
            if network.conventions.norm == "none":
                diags.add(
                    dx.E_NOT_FOR_KIND,
                    "bilinear attention normalises after each of its 1x1 convolutions; a "
                    "network of `norm none` has no norm to give them",
                    where,
                    label="bilinear attention",
                    help="use another attention, or a norm",
                )
            elif bat.reduced % bat.groups:
                diags.add(
                    dx.E_GROUPS_DIVIDE,
                    f"bilinear attention's {bat.groups} groups do not divide its width "
                    f"{bat.reduced} in stage `{stage.name}`",
                    where,
                    label=f"width {bat.reduced} in stage `{stage.name}`",
                    help="choose `groups` that divide the width, or a `width` they divide",
                )
            elif seen.height % size or seen.width % size:
                diags.add(
                    dx.E_BLOCK_SIZE,
                    f"stage `{stage.name}`'s bilinear attention mixes a {seen.height}x"
                    f"{seen.width} map in blocks of {size}x{size}: its sides must be "
                    f"multiples of {size}",
                    where,
                    label=f"block size {size}",
                    help=f"use an input whose maps stay multiples of {size} at every stage, or "
                    "a `block_size` that divides them",
                )
            else:
                continue
            break


@register("blur maps", "E503")
def check_blur_maps(network: Network, diags: Diagnostics) -> None:
    """A blur pool reflects its map at the edges, by size // 2 pixels, which PyTorch and
    TensorFlow allow only on a map wider than that. (A map smaller than the stride is E501's.)"""
    places = [("the stem", network.stem.layers, network.input, network.spans.get("anti_alias"))]
    for stage in network.stages:
        block = next((run.block for run in stage.runs if run.block.anti_alias == "blur"), None)
        if block is not None:
            where = _setting_span(stage, network, "anti_alias")
            places.append((f"stage `{stage.name}`", block.layers, block.in_shape, where))
    for what, layers, shape, where in places:
        for blur, seen in _blurred_maps(layers, shape):
            reach = blur.size // 2
            if blur.stride <= min(seen.height, seen.width) <= reach:
                diags.add(
                    dx.E_BLUR_MAP,
                    f"{what} blurs a {seen.height}x{seen.width} map with a filter of size "
                    f"{blur.size}, whose reflection padding of {reach} pixels needs a map of "
                    f"at least {reach + 1}x{reach + 1}",
                    where or network.span,
                    label=f"blur of size {blur.size}",
                    help="use a smaller `size` (3 pads 1 pixel), `anti_alias avg`, or a larger "
                    "input",
                )
                break
