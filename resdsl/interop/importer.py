"""The reverse phase: a trained network's weights to a spec (`resdsl import`).

A ResNet's state dict names and shapes say most of its architecture: the stem (one convolution
or timm's deep stem, its kernel and widths), every stage's blocks (basic or bottleneck, pre- or
post-activation, widths, groups, the first convolution's reduction; Res2Net's splits; SKNet's
selective kernels, their paths, split and the rule of their attention's width; ResNeSt's split
attention, its paths, groups and attention rule: each block is read by
:mod:`resdsl.interop.import_blocks`), the shortcuts (where they project, with what
kernel, after a pool or not), channel attention (squeeze-excitation and its reduced width, ECA
and its kernel), the norm (batch or group), biases and the classes. What weights cannot say
(strides, dilation, where a bottleneck strides, anti-aliasing and ResNeSt's average pool, which
have no weights, the input size, the activation) comes from a model's module tree where the
source is one (`torchvision:NAME`, `timm:NAME`), else from the convention of the naming scheme
recognised (torchvision and timm: `layer1`..; keras.applications: `conv2`..), or from options;
each such choice is written into the spec's header as assumed.

Only names and shapes are read (:mod:`resdsl.interop.import_sources`): a PyTorch file through
`torch.load(weights_only=True)` (no code runs), a `.safetensors` file through its header, a
Keras `.weights.h5` file through h5py. The spec written is then checked by construction:
compiled, its state-dict layout must equal the source's tensor for tensor, and the first tensor
that differs is named in the error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from resdsl import __version__
from resdsl.diagnostics.core import printable
from resdsl.driver import analyze_text
from resdsl.elaboration.attention import eca_kernel
from resdsl.interop import import_byobnet, import_regnet, import_resnetv2
from resdsl.interop.import_blocks import (
    CONV,
    Block,
    need,
    read_block,
    resnest_args,
    selective_args,
    weight,
)
from resdsl.interop.import_sources import NAMES, ImportFailed, Shapes, Source
from resdsl.interop.weights import fit_problem, state_dict_shapes
from resdsl.ir import BilinearAttentionLayer, make_divisible
from resdsl.ir.naming import NAMINGS
from resdsl.tooling.formatter import format_text

# --------------------------------------------------------------------------- inference

_STAGE = re.compile(r"^([A-Za-z_][A-Za-z_0-9]*)\.(\d+)\.(.+)$")
# Every name below is read from the state-dict layout of what this reads (NAMES).
_STEM_NAMES = {
    NAMES.torch(role).partition(".")[0]
    for role in ("stem.conv", "stem.norm", "stem.pool", "head.classifier", "head.norm")
} | {"head"}  # timm's classifier module in some nets
_CLASSIFIER = weight("head.classifier")
_STEM_CONV = weight("stem.conv")
_DEEP_STEM_CONV = weight("stem.deep", i=0, n=1, part="conv")
# any position of the deep stem's Sequential
_DEEP_STEM = re.compile(re.escape(weight("stem.deep", i="@", n=1, part="")).replace("@", r"\d+"))
_HEAD_NORM = weight("head.norm")
LEGACY_SENET = NAMINGS["senet"].torch("stem.conv") + ".weight"  # `layer0.conv1.weight`


def _stages(shapes: Shapes) -> dict[str, dict[int, dict[str, tuple]]]:
    """Tensors grouped by stage and block, stages in model order."""
    stages: dict[str, dict[int, dict[str, tuple]]] = {}
    for key, shape in shapes.items():
        match = _STAGE.match(key)
        if match is None or match.group(1) in _STEM_NAMES:
            continue
        name, index, rest = match.group(1), int(match.group(2)), match.group(3)
        stages.setdefault(name, {}).setdefault(index, {})[rest] = shape
    return stages


def _preactivated(by_index: dict[int, dict[str, tuple]], default: bool) -> bool:
    """Whether a stage's blocks normalise before each convolution: a block whose first norm has
    its input's channels, where these differ from its first convolution's output, says so;
    failing such a block, `default` (the network's)."""
    for t in by_index.values():
        conv1, bn1 = t.get(CONV[1]), t.get(weight("block.norm", n=1))
        if conv1 is None or bn1 is None or conv1[0] == conv1[1]:
            continue
        return bn1[0] == conv1[1]
    return default


def _block_call(
    blocks: list[Block], where: str, network: list[Block], avd: str | None = None
) -> tuple[str, int]:
    """A stage's `block` value and its width (torchvision's `planes`), from its first block
    (`network`: every block, whose selective kernels and split attention share one attention
    rule where they can; `avd`: where ResNeSt's average pool strides, from a module tree)."""
    b = blocks[0]
    kind = ("preact_" if b.preact else "") + b.layout
    args: list[str] = []
    first, spatial = f"`{where}.{b.first_key}`", f"`{where}.{b.spatial_key}`"
    if b.layout in ("basic", "sk_basic"):
        planes = b.out
        if b.first != planes:
            if planes % b.first:
                raise ImportFailed(f"{first}: {b.first} channels do not divide {planes}")
            args.append(f"reduce_first: {planes // b.first}")
        if b.paths:
            args += selective_args(blocks, network)
        return kind + (f"({', '.join(args)})" if args else ""), planes
    # Bottlenecks: torchvision's expansion of 4 where it divides, else the inner width's.
    planes = b.out // 4 if b.out % 4 == 0 else b.mid
    expansion = b.out / planes
    if expansion != 4:
        args.append(f"expansion: {expansion:g}")
    if b.layout == "res2net":  # each split's width is ResNeXt's inner width
        args.append(f"scale: {b.scale}")
        args += [f"groups: {b.groups}"] * (b.groups > 1)
        group_width = b.mid * 64 / (b.groups * planes)
        if group_width != int(group_width) or int(planes * group_width / 64) * b.groups != b.mid:
            raise ImportFailed(
                f"{spatial}: splits of {b.mid} channels in {b.groups} groups fit "
                f"no group width for a stage of width {planes}"
            )
        args.append(f"group_width: {int(group_width)}")
        return f"{kind}({', '.join(args)})", planes
    # ResNeSt's inner width is always ResNeXt's (its recipe's group width 64 by default).
    if b.groups > 1 or (b.radix and b.mid != planes):
        group_width = b.mid * 64 / (b.groups * planes)
        if group_width != int(group_width) or int(planes * group_width / 64) * b.groups != b.mid:
            raise ImportFailed(
                f"{spatial}: {b.groups} groups of an inner width {b.mid} fit no "
                f"group width for a stage of width {planes}"
            )
        if b.radix:
            args += [f"groups: {b.groups}"] * (b.groups > 1)
            args += [f"group_width: {int(group_width)}"] * (group_width != 64)
        else:
            args += [f"groups: {b.groups}", f"group_width: {int(group_width)}"]
    elif b.mid != planes:
        factor = b.mid / planes
        if int(planes * factor) != b.mid:
            raise ImportFailed(f"{spatial}: inner width {b.mid} is no multiple of {planes}")
        args.append(f"width_factor: {factor:g}")
    if b.first != b.mid:
        if b.mid % b.first:
            raise ImportFailed(f"{first}: {b.first} channels do not divide {b.mid}")
        args.append(f"reduce_first: {b.mid // b.first}")
    if b.paths:
        args += selective_args(blocks, network)
    if b.radix:  # `radix` first, as the library's specs write it
        extra = resnest_args(blocks, network, avd)
        lead = [arg for arg in extra if arg.startswith("radix:")]
        args = lead + args + [arg for arg in extra if arg not in lead]
    return kind + (f"({', '.join(args)})" if args else ""), planes


def bilinear_dropout(attention: str, facts: dict, assumed: list[str]) -> str:
    """`attention bat(...)` with the module tree's channel dropout, or timm's 0.2 assumed."""
    rate = facts.get("dropout2d")
    if rate is None:
        assumed.append("bilinear attention's channel dropout of 0.2 (timm's; it has no weights)")
    elif rate != 0.2:
        return _with_arg(attention, f"dropout: {rate:g}")
    return attention


def attention_setting(blocks: list[Block], inner: bool = False) -> str:
    """The `attention` setting the blocks' tensors give; `inner`: the attention sits after the
    3x3, over the inner width (its width's rule is read from that)."""

    def seen(b: Block) -> int:
        return b.mid if inner else b.out

    found = {b.attention[0] for b in blocks if b.attention}
    if not found:
        return "none"
    if len(found) > 1 or any(b.attention is None for b in blocks):
        raise ImportFailed("channel attention in some blocks and not others, or of two kinds")
    if found == {"eca"}:
        if all(b.attention[1] == eca_kernel(seen(b), 2.0, 1.0) for b in blocks):
            return "eca"
        kernels = {b.attention[1] for b in blocks}
        if len(kernels) == 1:
            return f"eca(kernel: {kernels.pop()})"
        raise ImportFailed("ECA kernels that neither timm's rule nor one size explains")
    if found == {"bat"}:
        shapes = {b.attention[2:] for b in blocks}
        if len(shapes) > 1:
            raise ImportFailed("bilinear attention of several block sizes or groups")
        ((size, groups),) = shapes
        args = [f"block_size: {size}"] + [f"groups: {groups}"] * (groups != 2)
        limit = BilinearAttentionLayer.ROUND_LIMIT
        if not all(b.attention[1] == make_divisible(seen(b) / 4, 8, limit) for b in blocks):
            widths = {b.attention[1] for b in blocks}
            if len(widths) > 1:
                raise ImportFailed("bilinear attention widths that timm's rule does not explain")
            args.insert(0, f"width: {widths.pop()}")
        return f"bat({', '.join(args)})"
    if found == {"gc"}:
        fuses = {b.attention[2] for b in blocks}
        if len(fuses) > 1:
            raise ImportFailed(
                "global context attention that adds in some blocks, scales in others"
            )
        fuse = ", fuse: scale" if fuses == {"scale"} else ""
        if all(b.attention[1] == make_divisible(seen(b) / 8, 1) for b in blocks):
            return f"gc({fuse.removeprefix(', ')})" if fuse else "gc"
        widths = {b.attention[1] for b in blocks}
        if len(widths) == 1:
            return f"gc(width: {widths.pop()}{fuse})"
        raise ImportFailed("global context widths that timm's rule (channels / 8) does not explain")
    for divisor in (8, 1):  # timm's resnet.py rounds to 8; its senet.py floors (divisor 1)
        for reduction in (16, 4, 8, 2, 32):
            if all(b.attention[1] == make_divisible(seen(b) / reduction, divisor) for b in blocks):
                args = [f"reduction: {reduction}"] * (reduction != 16)
                args += [f"divisor: {divisor}"] * (divisor != 8)
                return f"se({', '.join(args)})" if args else "se"
    widths = {b.attention[1] for b in blocks}
    if len(widths) == 1:
        return f"se(width: {widths.pop()})"
    raise ImportFailed("squeeze-excitation widths that no reduction ratio explains")


@dataclass
class Imported:
    """A spec's text and what it assumed (also written into its header)."""

    text: str
    assumed: list[str]


@dataclass(frozen=True)
class Choices:
    """What the user says where weights cannot: per-stage strides and dilations (in stage
    order), where bottlenecks stride."""

    strides: tuple[int, ...] | None = None
    dilations: tuple[int, ...] | None = None
    stride_on: str | None = None  # "1x1" or "3x3"
    # A plain network's weights are those of a residual network without projections (option A,
    # or identity throughout): only the user can say that the blocks add nothing.
    plain: bool = False


def infer(
    source: Source,
    name: str,
    input_shape: tuple[int, int, int] | None = None,
    choices: Choices = Choices(),
    legacy: Source | None = None,
) -> Imported:
    """The spec that reproduces `source`, checked against its tensors. `choices` override the
    conventions for what the weights cannot say. (`legacy`: the legacy SENet whose tensors
    `source` holds under resnet.py's names, :func:`_legacy_senet`.)"""
    shapes = source.shapes
    facts = source.facts
    stages = _stages(shapes)
    if import_byobnet.is_byobnet(shapes):  # timm's byobnet layout: a reader of its own
        return import_byobnet.infer(source, name, input_shape, choices)
    if import_regnet.is_regnet(shapes):  # timm's regnet layout
        return import_regnet.infer(source, name, input_shape, choices)
    if import_resnetv2.is_resnetv2(shapes):  # timm's resnetv2 layout
        return import_resnetv2.infer(source, name, input_shape, choices)
    if LEGACY_SENET in shapes:
        return _legacy_senet(source, name, input_shape, choices)
    if not stages or _CLASSIFIER not in shapes:
        first = next(iter(shapes), None)
        raise ImportFailed(
            f"no residual stages and classifier (`layer1.0.{CONV[1]}` ... `{_CLASSIFIER}`)"
            + (f"; the first tensor is `{first}` {shapes[first]}" if first else "; no tensors")
        )
    assumed: list[str] = []
    # A pre-activation net ends with a norm before the pool; each stage's own blocks decide
    # where their shapes can.
    head_norm = _HEAD_NORM in shapes
    preacts = {stage: _preactivated(by_index, head_norm) for stage, by_index in stages.items()}
    preact = preacts[next(iter(stages))]
    keras = source.scheme == "keras" or all(re.fullmatch(r"conv\d+", s) for s in stages)
    # Each block's input is the previous one's output (the stem's, first), which a selective
    # kernel on a basic block's input needs.
    width, blocks = _stem_width(shapes), {}
    for stage, by_index in stages.items():
        blocks[stage] = []
        for i, t in sorted(by_index.items()):
            read = read_block(f"{stage}.{i}", t, preacts[stage], width, facts.get("split"))
            blocks[stage].append(read)
            width = read.out
    every = [b for bs in blocks.values() for b in bs]

    settings: list[tuple[str, str]] = []
    # ----- stem
    stem, stem_words, cifar = _stem(shapes, facts)
    assumed += stem_words
    # ----- input and classes
    fc = shapes[_CLASSIFIER]
    if input_shape is None:
        input_shape = facts.get("input")
    if input_shape is None:
        channels = need(shapes, _first_conv(shapes), "", "a stem")[1]
        side = 32 if cifar else 224
        input_shape = (channels, side, side)
        assumed.append(
            f"input {channels}x{side}x{side} (the {'CIFAR' if cifar else 'ImageNet'} size)"
        )
    settings += [("input", "x".join(map(str, input_shape))), ("classes", str(fc[0]))]
    settings.append(("stem", stem))
    # ----- blocks, per stage where they differ
    avd = facts.get("avd")
    calls = {stage: _block_call(bs, f"{stage}.0", every, avd) for stage, bs in blocks.items()}
    if avd is None and any(b.radix for b in every):
        assumed.append(
            "`avd: on`, `avd_first: off` in ResNeSt's blocks: where a block strides, an "
            "average pool after split attention strides, not its 3x3 (the pool has no weights)"
        )
    grouped = next((b for b in every if b.paths and b.layout == "sk_bottleneck"), None)
    words = _split_words(grouped) if grouped is not None and "split" not in facts else None
    assumed += [words] if words else []
    network_block = next(iter(calls.values()))[0]
    if choices.stride_on and every[0].layout == "bottleneck":
        network_block = _with_arg(network_block, f"stride_on: {choices.stride_on}")
    elif keras and every[0].layout == "bottleneck":
        network_block = _with_arg(
            network_block, "stride_on: 1x1" if not preact else "stride_on: 3x3"
        )
        if not preact:
            assumed.append("the stride on each bottleneck's first 1x1 (keras.applications' V1)")
    settings.append(("block", network_block))
    # ----- shortcuts
    shortcuts = {stage: _shortcut(bs, keras and preact) for stage, bs in blocks.items()}
    shortcut = next((s for s in shortcuts.values() if s is not None), "B")
    projected = [stage for stage, s in shortcuts.items() if s is not None and s != "A"]
    if choices.plain:
        if projected:
            raise ImportFailed(
                f"--plain: stage `{projected[0]}` has projection shortcuts "
                f"(`{projected[0]}.0.{NAMES.torch('shortcut', i=0).partition('.')[0]}`), "
                "which a plain network lacks"
            )
        shortcuts = dict.fromkeys(shortcuts, "none")
        shortcut = "none"
    elif not projected:
        # No tensor tells a residual block from a plain one.
        assumed.append(
            "residual blocks (weights without projections are also a plain network's: "
            "`import --plain` writes `shortcut none`)"
        )
    if shortcut.startswith("A"):
        assumed.append("option A subsamples before it pads (the paper's choice; no weights say)")
    if shortcut != "B":
        settings.append(("shortcut", shortcut))
    if keras and preact:
        settings.append(("strided_block", "last"))
    attention = attention_setting(every)
    if attention != "none":
        settings.append(("attention", attention))
    if attention.startswith("bat"):
        attention = bilinear_dropout(attention, facts, assumed)
        settings[-1] = ("attention", attention)
    aa = facts.get("aa")
    if aa == "blur":
        size = facts.get("blur_size", 3)
        settings.append(("anti_alias", "blur" if size == 3 else f"blur(size: {size})"))
    elif aa == "avg":
        settings.append(("anti_alias", "avg"))
    elif not facts:
        assumed.append("no anti-aliasing (it has no weights)")
    # ----- conventions
    bias = _conv_bias(shapes)
    if bias != "off":
        settings.append(("conv_bias", bias))
    norm, norm_words = _norm(shapes, facts, keras)
    assumed += norm_words
    if norm:
        settings.append(("norm", norm))
    activation = facts.get("activation")
    if activation:
        settings.append(("activation", activation))
    elif not facts:
        assumed.append("relu activations (they have no weights)")
    if keras:
        settings.append(("init", "glorot"))
    if preact != (_HEAD_NORM in shapes):
        settings.append(("head", f"avgpool(norm: {'on' if not preact else 'off'})"))
    if legacy is not None:
        _legacy_settings(settings, assumed, every, facts)
    # ----- stages
    strides = _strides(list(blocks), facts, keras and preact)
    for what, given, index in (
        ("strides", choices.strides, 0),
        ("dilations", choices.dilations, 1),
    ):
        if given is None:
            continue
        if len(given) != len(blocks):
            raise ImportFailed(f"{len(given)} {what} given for {len(blocks)} stages")
        for stage, value in zip(list(strides), given, strict=True):
            pair = list(strides[stage])
            pair[index] = value
            strides[stage] = (pair[0], pair[1])
    if not facts.get("stages") and choices.strides is None and choices.dilations is not None:
        _dilate_in_place(strides, assumed)
    if not facts.get("stages") and choices.strides is None:
        text = ", ".join(f"{s} /{st}" for s, (st, _) in strides.items())
        scheme = "keras.applications" if keras else "torchvision and timm"
        assumed.append(f"strides {text} (the convention of {scheme}; set them with --strides)")
    stage_lines = []
    for stage, bs in blocks.items():
        call, planes = calls[stage]
        stride, dilation = strides[stage]
        body = []
        if call != next(iter(calls.values()))[0]:
            body.append(f"block {call}")
        if shortcuts[stage] not in (None, shortcut):
            body.append(f"shortcut {shortcuts[stage]}")
        if dilation > 1:
            body.append(f"dilation {dilation}")
        stage_lines.append((stage, len(bs), planes, stride, body))

    return checked(name, legacy or source, settings, stage_lines, assumed)


def _legacy_senet(source: Source, name: str, input_shape, choices: Choices) -> Imported:
    """timm's legacy SENet layout (`naming senet`), read as resnet.py's: its tensors renamed
    where the two naming tables differ (the stem, squeeze-excitation, the classifier), then
    what no weights say of it (:func:`_legacy_settings`); the spec is checked against the
    tensors as they are."""
    legacy, plain = NAMINGS["senet"], NAMINGS["resnet"]
    renames = {
        legacy.torch(role): plain.torch(role)
        for role in ("stem.conv", "stem.norm", "attention.se.reduce", "attention.se.expand")
    }
    renames[legacy.torch("head.classifier")] = plain.torch("head.classifier")
    deep = legacy.torch("stem.deep", unit="conv", n=3) + ".weight" in source.shapes
    if deep:  # three convolutions: timm's deep stem, `conv1.{i}` with its last norm `bn1`
        renames = {k: v for k, v in renames.items() if not k.startswith("layer0")}
        for n in (1, 2, 3):
            parts = (("conv", 3 * (n - 1)), ("bn", 3 * (n - 1) + 1))
            for unit, index in parts:
                renames[legacy.torch("stem.deep", unit=unit, n=n)] = plain.torch(
                    "stem.deep", i=index
                )
        renames[legacy.torch("stem.deep.last_norm", n=3)] = plain.torch("stem.deep.last_norm")

    def renamed(key: str) -> str:
        for old, new in renames.items():
            if key.startswith(old + ".") or f".{old}." in f".{key}":
                return key.replace(old + ".", new + ".", 1)
        return key

    shapes = {renamed(key): shape for key, shape in source.shapes.items()}
    inner = Source(source.description, shapes, source.scheme, source.facts)
    return infer(inner, name, input_shape, choices, legacy=source)


def _legacy_settings(settings: list, assumed: list[str], blocks: list[Block], facts: dict):
    """The legacy SENets' names, Caffe's stem pool, the basic blocks' activation before
    squeeze-excitation and the classifier's dropout, from the module tree where it says."""
    assumed[:] = [x for x in assumed if not x.startswith("a 3x3 max pool")]
    at = next(i for i, (key, _) in enumerate(settings) if key == "classes") + 1
    settings.insert(at, ("naming", "senet"))
    # Where a bottleneck strides: timm's SEResNetBottleneck on its 1x1 (Caffe's), its
    # SEResNeXtBottleneck and SENet-154's on the 3x3.
    bottleneck = all(b.layout == "bottleneck" for b in blocks)
    stride_on = facts.get("stride_on") or ("1x1" if all(b.groups == 1 for b in blocks) else None)
    for i, (key, value) in enumerate(settings):
        if key == "stem":
            settings[i] = (key, _with_arg(value, "pool: max_ceil"))
        if key == "attention" and all(b.layout == "basic" for b in blocks):
            settings[i] = (key, _with_arg(value, "after: activation"))
        if key == "block" and bottleneck and stride_on == "1x1" and "stride_on" not in value:
            settings[i] = (key, _with_arg(value, "stride_on: 1x1"))
    if not facts:
        assumed.append(
            "Caffe's stem pool (`pool: max_ceil`), a dropout of 0.2 before the classifier, an "
            "activation before squeeze-excitation in basic blocks and the stride on the first 1x1 "
            "of ungrouped bottlenecks: timm's legacy SENets' (no weights say)"
        )
    rate = facts.get("drop_rate", 0.2)
    if rate:
        settings.append(("head", f"avgpool(dropout: {rate:g})"))


def checked(
    name: str,
    source: Source,
    settings: list[tuple[str, str]],
    stage_lines: list[tuple],
    assumed: list[str],
) -> Imported:
    """The spec of `settings` and `stage_lines`, with `waive halve_double` in the stages that
    need it, checked and compiled: its tensors must be the source's."""
    text = _render(name, source, settings, stage_lines, assumed, waive=set())
    result = analyze_text(text, f"{name}.res")
    waive = {
        d.message.split("`")[1]
        for d in result.diagnostics
        if d.code == "E201" and d.message.startswith("stage `")
    }
    if waive:
        text = _render(name, source, settings, stage_lines, assumed, waive)
        result = analyze_text(text, f"{name}.res")
    if not result.ok:
        problems = "; ".join(f"{d.code} {d.message}" for d in result.diagnostics[:3])
        raise ImportFailed(f"the inferred spec does not check: {problems}")
    _verify(result.network, source.shapes)
    return Imported(format_text(text, f"{name}.res"), assumed)


def _stem_width(shapes: Shapes) -> int | None:
    """The stem's output width: its (last) convolution's, where it has one."""
    convs = [
        shape
        for key, shape in shapes.items()
        if (key == _STEM_CONV or _DEEP_STEM.fullmatch(key)) and len(shape) == 4
    ]
    return convs[-1][0] if convs else None


def _split_words(b: Block) -> str | None:
    """What a bottleneck's selective kernel assumed, where another has its shapes: paths on
    shares of the input in g groups have the weights of paths on all of it in g x paths."""
    if b.split:
        other = f"split: off, groups: {b.groups * b.paths}"
    elif b.groups % b.paths == 0:
        other = "split: on" + (f", groups: {b.groups // b.paths}" if b.groups > b.paths else "")
    else:
        return None
    said = f"`split: {'on' if b.split else 'off'}`" + (f", `groups: {b.groups}`" * (b.groups > 1))
    return f"selective kernels with {said} (`{other}` has the same weights)"


def _first_conv(shapes: Shapes) -> str:
    return _STEM_CONV if _STEM_CONV in shapes else _DEEP_STEM_CONV


def _with_arg(call: str, arg: str) -> str:
    if call.endswith(")"):
        return f"{call[:-1]}, {arg})"
    return f"{call}({arg})"


def _stem(shapes: Shapes, facts: dict) -> tuple[str, list[str], bool]:
    """The `stem` value, what it assumed, and whether it is the CIFAR nets' stem."""
    assumed: list[str] = []
    # A stem without a norm has no activation either (keras.applications' V2), except in a
    # network without norms, whose stem keeps its activation: no weights say which.
    normed = weight("stem.norm") in shapes or not _has_norms(shapes)
    pool_conv = weight("stem.pool.part", i=0, part="conv")
    conv_pool = pool_conv in shapes and len(shapes[pool_conv]) == 4
    if _DEEP_STEM_CONV in shapes:
        # timm's deep stem: three convolutions in a Sequential (with norms and activations
        # between them unless the stem has none)
        convs = [
            shape for key, shape in shapes.items() if _DEEP_STEM.fullmatch(key) and len(shape) == 4
        ]
        if len(convs) != 3:
            raise ImportFailed(
                f"a deep stem (`{_DEEP_STEM_CONV.removesuffix('.weight')}`) of {len(convs)} "
                "convolutions; expected 3"
            )
        w1, w2, channels = (conv[0] for conv in convs)
        args = [] if w2 == 32 else [f"width: {w2}"]
        if w1 != w2:
            args.insert(0, f"first_width: {w1}")
        if channels != 64:
            args.append(f"channels: {channels}")
        if conv_pool:
            args.append("pool: conv")
        if not normed:
            args.append("norm: off")
        return "deep" + (f"({', '.join(args)})" if args else ""), assumed, False
    conv = need(shapes, _STEM_CONV, "", "the stem's convolution (`conv1` or `conv1.0`)")
    if len(conv) != 4 or conv[2] != conv[3]:
        raise ImportFailed(f"`{_STEM_CONV}` has shape {conv}: expected a square 2-d convolution")
    kernel, channels = conv[2], conv[0]
    cifar = kernel == 3 and not conv_pool
    args = []
    if cifar:
        preset = "cifar"
        assumed.append("the CIFAR stem: stride 1, no pool")
        if channels != 16:
            args.append(f"channels: {channels}")
    else:
        preset = "imagenet"
        if kernel != 7:
            args.append(f"kernel: {kernel}")
        if channels != 64:
            args.append(f"channels: {channels}")
        if not conv_pool and not facts:
            assumed.append("a 3x3 max pool at stride 2 after the stem")
    if conv_pool:
        args.append("pool: conv")
    if not normed:
        args.append("norm: off")
    return preset + (f"({', '.join(args)})" if args else ""), assumed, cifar


def _shortcut(blocks: list[Block], keras_v2: bool) -> str | None:
    """A stage's shortcut policy as its tensors show it; None where they cannot tell (no
    projection and no change of width: any policy but C fits)."""
    projected = [b for b in blocks if b.projection is not None]
    kernel = max((b.kernel for b in projected), default=1)
    if any(b.projection == 1 for b in projected):
        return "D"
    if projected and len(projected) == len(blocks) and len(blocks) > 1:
        return "C" + (f"(kernel: {kernel})" if kernel > 1 else "")
    if projected:
        args = ["stride_only: subsample"] if keras_v2 else []
        if kernel > 1:
            args.append(f"kernel: {kernel}")
        return "B" + (f"({', '.join(args)})" if args else "")
    if any(b.in_channels != b.out for b in blocks):
        return "A"
    return None


def _conv_bias(shapes: Shapes) -> str:
    # Split attention's 1x1s have biases whatever the convolutions do.
    split = tuple(
        f".{NAMES.torch(r, n=2)}.weight" for r in ("block.split_reduce", "block.split_select")
    )
    convs = [
        k
        for k, v in shapes.items()
        if len(v) == 4 and k.endswith(".weight") and ".se." not in k and not k.endswith(split)
    ]
    biased = [k for k in convs if k.removesuffix(".weight") + ".bias" in shapes]
    if not biased:
        return "off"
    if len(biased) == len(convs):
        return "on"
    return "unnormalized"


def _has_norms(shapes: Shapes) -> bool:
    """Whether any tensor is a norm's scale: the only one-dimensional weights."""
    return any(k.endswith(".weight") and len(v) == 1 for k, v in shapes.items())


def _norm(shapes: Shapes, facts: dict, keras: bool) -> tuple[str | None, list[str]]:
    if not _has_norms(shapes):
        return "none", [
            "without norms, activations where a normalised network has them: after the stem's "
            "convolution, and post-activation blocks (no weights say)"
        ]
    if any(k.endswith("running_mean") for k in shapes):
        if keras:
            return "batch(eps: 1.001e-5, momentum: 0.01)", [
                "keras.applications' norm epsilon 1.001e-5 and momentum 0.99"
            ]
        eps = facts.get("norm_eps", 1e-5)
        return (None if eps == 1e-5 else f"batch(eps: {eps:g})"), []
    groups = facts.get("norm_groups")
    if groups is None:
        return "group", ["group norm of 32 groups (the weights do not say how many)"]
    return (f"group(groups: {groups})" if groups != 32 else "group"), []


def _dilate_in_place(strides: dict[str, tuple[int, int]], assumed: list[str]) -> None:
    """Conventional strides under `--dilations`: a stage whose dilation grows dilates in place
    of its stride (torchvision's `replace_stride_with_dilation`, timm's `output_stride`), so it
    does not stride too. `--strides` states both where a network does otherwise."""
    replaced, previous = [], 1
    for stage, (stride, dilation) in strides.items():
        if dilation > previous and stride > 1:
            strides[stage] = (1, dilation)
            replaced.append(stage)
        previous = dilation
    if replaced:
        assumed.append(
            f"{', '.join(replaced)} dilate in place of their strides (as "
            "replace_stride_with_dilation; set both with --strides)"
        )


def _strides(stages: list[str], facts: dict, keras_v2: bool) -> dict[str, tuple[int, int]]:
    """(stride, dilation) of each stage: the module tree's, else the naming scheme's
    convention (keras.applications' V2 strides each stage's end, the last not at all)."""
    known = facts.get("stages") or {}
    if all(s in known for s in stages):
        return {s: known[s] for s in stages}
    if keras_v2:
        return {s: (1 if i == len(stages) - 1 else 2, 1) for i, s in enumerate(stages)}
    return {s: (1 if i == 0 else 2, 1) for i, s in enumerate(stages)}


def _render(
    name: str,
    source: Source,
    settings: list[tuple[str, str]],
    stages: list[tuple],
    assumed: list[str],
    waive: set[str],
) -> str:
    count = len(source.shapes)
    # The source's name is a path or a library name, given by the user: a newline in it would
    # end the comment and put the rest into the spec.
    described = printable(source.description)
    lines = [f"# Imported by resdsl {__version__} from {described} ({count} tensors)."]
    if assumed:
        import textwrap

        said = "Assumed, as the weights do not say: " + "; ".join(assumed) + "."
        lines += ["# " + line for line in textwrap.wrap(said, 96, break_on_hyphens=False)]
    lines.append(f"network {name} {{")
    lines += [f"  {key} {value}" for key, value in settings]
    lines.append("")
    for stage, count, planes, stride, body in stages:
        body = [*body, *(["waive halve_double"] if stage in waive else [])]
        head = f"  stage {stage}: {count} x {planes}" + (f" / {stride}" if stride != 1 else "")
        lines.append(head + (" { " + "  ".join(body) + " }" if body else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _verify(network, shapes: Shapes) -> None:
    """The inferred network's tensors must be the source's, name for name and shape for shape."""
    ours = state_dict_shapes(network)
    ours = {k: v for k, v in ours.items() if not k.endswith("num_batches_tracked")}
    problem = fit_problem(shapes, ours, source="the source", target="the inferred network")
    if problem:
        raise ImportFailed(problem)


def default_name(source: str) -> str:
    """A network name from a source: `timm:resnet50d` -> `resnet50d`, `runs/r50.pt` -> `r50`."""
    base = source.partition(":")[2] if source.startswith(("timm:", "torchvision:")) else source
    base = os.path.basename(base)
    for suffix in (".weights.h5", ".safetensors", ".keras", ".pth", ".pt", ".bin"):
        base = base.removesuffix(suffix)
    name = re.sub(r"[^A-Za-z0-9_]", "_", base).strip("_") or "imported"
    return name if name[0].isalpha() else f"net_{name}"
