"""Phase 2: syntax trees to the typed spec (:class:`resdsl.ir.NetworkSpec`).

Resolves `extends` (a child's settings replace its parent's; stages are matched by name,
replaced in place or appended), then checks every key, preset and argument against the tables
below, filling defaults. Unknown names get "did you mean"; every value keeps its span.
"""

from __future__ import annotations

import difflib
import keyword
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import diagnostics as dx
from .diagnostics import Diagnostics
from .ir import (
    BlockSpec,
    Call,
    Dims,
    HeadSpec,
    InitSpec,
    Name,
    NetworkDecl,
    NetworkSpec,
    NormSpec,
    Number,
    Setting,
    ShortcutSpec,
    Span,
    StageDecl,
    StageSpec,
    StemSpec,
    String,
    Value,
    Waiver,
)

# --------------------------------------------------------------------------- limits
# Generous for any real network, small enough that checking never hangs or exhausts memory.
MAX_BLOCKS = 10_000  # in a whole network
MAX_STAGES = 64
MAX_WIDTH = 16_384
MAX_INPUT_SIZE = 8_192
MAX_INPUT_CHANNELS = 1_024
MAX_CLASSES = 1_000_000
MAX_STRIDE = 8
MAX_KERNEL = 15
MAX_DILATION = 16
MAX_EXPANSION = 64

# Attribute and layer names the backends use for the stem and the head: a stage may not take them.
RESERVED_NAMES = frozenset(
    {
        "conv1", "bn1", "relu", "act1", "maxpool", "avgpool", "pool", "fc", "dropout", "head",
        "post_bn", "post_relu", "avg_pool", "predictions", "pool1", "stem", "stages", "forward",
        "training", "features", "flatten", "norm", "input", "model", "self", "x",
    }
)  # fmt: skip


# --------------------------------------------------------------------------- value readers


class _Bad(Exception):
    """A value that does not fit; carries the diagnostic to emit. Never leaves this module."""

    def __init__(self, code: str, message: str, span: Span, help: str | None = None):
        self.code, self.message, self.span, self.help = code, message, span, help


def _kind(value: Value) -> str:
    return {
        "Call": "a call",
        "Name": "a name",
        "Number": "a number",
        "Dims": "a size",
        "String": "a string",
    }[type(value).__name__]


def _number(value: Value, what: str) -> Number:
    if not isinstance(value, Number):
        raise _Bad(
            dx.E_BAD_VALUE,
            f"{what} takes a number, not {_kind(value)}",
            value.span,
            help="write a number such as `2` or `0.1`",
        )
    if math.isnan(value.value):
        raise _Bad(
            dx.E_BAD_VALUE,
            f"{what} takes a number",
            value.span,
            help="write a number such as `2` or `0.1`",
        )
    return value


def _int(low: int, high: int) -> Callable[[Value, str], int]:
    def read(value: Value, what: str) -> int:
        number = _number(value, what)
        if math.isinf(number.value):
            raise _Bad(
                dx.E_LIMIT if number.value > 0 else dx.E_NOT_POSITIVE,
                f"{what} is beyond every limit; the largest allowed is {high:,}",
                value.span,
                help=f"write a whole number from {low:,} to {high:,}",
            )
        if not number.is_int:
            raise _Bad(
                dx.E_NOT_INTEGER,
                f"{what} must be a whole number, not `{number.text}`",
                value.span,
                help=f"write a whole number from {low:,} to {high:,}",
            )
        n = number.value
        if n < low:
            code = dx.E_NOT_POSITIVE if low >= 1 and n <= 0 else dx.E_RANGE
            raise _Bad(
                code,
                f"{what} must be at least {low}, not `{number.text}`",
                value.span,
                help=f"write a whole number from {low:,} to {high:,}",
            )
        if n > high:
            raise _Bad(
                dx.E_LIMIT,
                f"{what} is `{number.text}`; the limit is {high:,}",
                value.span,
                help="resdsl refuses sizes no real network uses rather than run out of memory",
            )
        return int(n)

    return read


def _float(low: float, high: float, *, high_open: bool = False) -> Callable[[Value, str], float]:
    def read(value: Value, what: str) -> float:
        n = _number(value, what).value
        too_high = n >= high if high_open else n > high
        if n < low or too_high or math.isinf(n):
            bracket = ")" if high_open else "]"
            raise _Bad(
                dx.E_RANGE,
                f"{what} must lie in [{low:g}, {high:g}{bracket}, not `{value.text}`",
                value.span,
                help=f"write a number from {low:g} up to {high:g}"
                + (" (excluded)" if high_open else ""),
            )
        return n

    return read


def _positive_float(high: float) -> Callable[[Value, str], float]:
    def read(value: Value, what: str) -> float:
        n = _number(value, what).value
        if n <= 0:
            raise _Bad(
                dx.E_NOT_POSITIVE,
                f"{what} must be positive, not `{value.text}`",
                value.span,
                help=f"write a number above 0, at most {high:g}",
            )
        if n > high or math.isinf(n):
            raise _Bad(
                dx.E_LIMIT,
                f"{what} is `{value.text}`; the limit is {high:g}",
                value.span,
                help=f"write a number above 0, at most {high:g}",
            )
        return n

    return read


def _choice(*options: str) -> Callable[[Value, str], str]:
    def read(value: Value, what: str) -> str:
        text = value.text if isinstance(value, Name | Dims) else None
        if text is None:
            raise _Bad(
                dx.E_BAD_VALUE,
                f"{what} takes one of {_list(options)}, not {_kind(value)}",
                value.span,
                help=f"write one of {_list(options)}",
            )
        if text not in options:
            raise _Bad(
                dx.E_BAD_VALUE,
                f"{what} takes one of {_list(options)}, not `{text}`",
                value.span,
                help=_did_you_mean(text, options),
            )
        return text

    return read


def _bool(value: Value, what: str) -> bool:
    text = value.text if isinstance(value, Name) else None
    if text in ("on", "true", "yes"):
        return True
    if text in ("off", "false", "no"):
        return False
    raise _Bad(
        dx.E_BAD_VALUE, f"{what} takes `on` or `off`", value.span, help="write `on` or `off`"
    )


def _list(options) -> str:
    quoted = [f"`{o}`" for o in options]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1] if len(quoted) > 1 else quoted[0]


def _did_you_mean(text: str, options) -> str | None:
    close = difflib.get_close_matches(text, list(options), n=1, cutoff=0.6)
    if not close and text.lower() in {o.lower() for o in options}:
        close = [o for o in options if o.lower() == text.lower()]
    return f"did you mean `{close[0]}`?" if close else None


# --------------------------------------------------------------------------- kinds with arguments


@dataclass(frozen=True)
class Kind:
    """A named kind (a preset, a block type, a policy) with its arguments' readers and defaults."""

    defaults: dict[str, Any]
    readers: dict[str, Callable[[Value, str], Any]]


STEMS = {
    "imagenet": Kind(
        {"channels": 64, "kernel": 7, "stride": 2, "width": 32, "pool": "max", "norm": True},
        {},
    ),
    "cifar": Kind(
        {"channels": 16, "kernel": 3, "stride": 1, "width": 16, "pool": "none", "norm": True},
        {},
    ),
    # ResNet-C: three 3x3 convolutions (`width`, `width`, `channels`), the first strided.
    "deep": Kind(
        {"channels": 64, "kernel": 3, "stride": 2, "width": 32, "pool": "max", "norm": True},
        {},
    ),
}
_STEM_READERS = {
    "channels": _int(1, MAX_WIDTH),
    "kernel": _int(1, MAX_KERNEL),
    "stride": _int(1, MAX_STRIDE),
    "width": _int(1, MAX_WIDTH),
    "pool": _choice("max", "avg", "none"),
    "norm": _bool,
}
for _name, _stem in STEMS.items():
    # Only the deep stem has intermediate convolutions for `width` to size.
    _stem.readers.update(
        {k: v for k, v in _STEM_READERS.items() if k != "width" or _name == "deep"}
    )

_BLOCK_READERS = {
    "expansion": _positive_float(MAX_EXPANSION),
    "groups": _int(1, MAX_WIDTH),
    "group_width": _int(1, MAX_WIDTH),
    "width_factor": _positive_float(64),
    "stride_on": _choice("1x1", "3x3"),
}
_BLOCK_DEFAULTS = {"groups": 1, "group_width": None, "width_factor": 1.0, "stride_on": None}
BLOCKS = {
    "basic": Kind({"expansion": 1.0, **_BLOCK_DEFAULTS}, _BLOCK_READERS),
    "bottleneck": Kind({"expansion": 4.0, **_BLOCK_DEFAULTS}, _BLOCK_READERS),
    "preact_basic": Kind({"expansion": 1.0, **_BLOCK_DEFAULTS}, _BLOCK_READERS),
    "preact_bottleneck": Kind({"expansion": 4.0, **_BLOCK_DEFAULTS}, _BLOCK_READERS),
}

_SHORTCUT_DEFAULTS = {"downsample": "subsample", "stride_only": "project"}
SHORTCUTS = {
    "identity": Kind(_SHORTCUT_DEFAULTS, {}),
    "A": Kind(_SHORTCUT_DEFAULTS, {"downsample": _choice("subsample", "avgpool")}),
    "B": Kind(_SHORTCUT_DEFAULTS, {"stride_only": _choice("project", "subsample")}),
    "C": Kind(_SHORTCUT_DEFAULTS, {}),
    "D": Kind(_SHORTCUT_DEFAULTS, {}),
}
NORMS = {
    "batch": Kind(
        {"eps": 1e-5, "momentum": 0.1},
        {"eps": _positive_float(1.0), "momentum": _float(0.0, 1.0)},
    )
}
INITS = {
    name: Kind({"zero_last_norm": False}, {"zero_last_norm": _bool})
    for name in ("kaiming", "glorot")
}
HEADS = {
    "avgpool": Kind(
        {"dropout": 0.0, "norm": None},
        {"dropout": _float(0.0, 1.0, high_open=True), "norm": _bool},
    )
}


def _read_kind(value: Value, what: str, kinds: dict[str, Kind]) -> tuple[str, dict[str, Any]]:
    """`name` or `name(arg: value, ...)` against a table of kinds: the kind and its arguments."""
    if isinstance(value, Call):
        head, args = value.name, value.args
    elif isinstance(value, Name):
        head, args = value, ()
    else:
        raise _Bad(
            dx.E_BAD_VALUE,
            f"{what} takes one of {_list(kinds)}, not {_kind(value)}",
            value.span,
            help=f"write one of {_list(kinds)}, with arguments in parentheses if any",
        )
    if head.text not in kinds:
        raise _Bad(
            dx.E_UNKNOWN_KIND,
            f"unknown {what} `{head.text}`",
            head.span,
            help=_did_you_mean(head.text, kinds) or f"expected one of {_list(kinds)}",
        )
    kind = kinds[head.text]
    values = dict(kind.defaults)
    seen: set[str] = set()
    for arg in args:
        name = arg.name.text
        if name not in kind.readers:
            hint = _did_you_mean(name, kind.readers)
            accepted = (
                f"`{head.text}` takes {_list(sorted(kind.readers))}"
                if kind.readers
                else (f"`{head.text}` takes no arguments")
            )
            raise _Bad(
                dx.E_UNKNOWN_ARG,
                f"unknown argument `{name}` for {what} `{head.text}`",
                arg.name.span,
                help=hint or accepted,
            )
        if name in seen:
            raise _Bad(
                dx.E_DUPLICATE,
                f"argument `{name}` given twice",
                arg.name.span,
                help="remove one of them",
            )
        seen.add(name)
        values[name] = kind.readers[name](arg.value, f"`{name}`")
    return head.text, values


# --------------------------------------------------------------------------- settings table


@dataclass(frozen=True)
class Field:
    reader: Callable[[Value, str], Any]
    stage: bool = False  # may also appear inside a stage's braces
    network: bool = True


def _kind_reader(what: str, kinds: dict[str, Kind]) -> Callable[[Value, str], Any]:
    return lambda value, _what: _read_kind(value, what, kinds)


def _input(value: Value, what: str) -> tuple[int, int, int]:
    if not isinstance(value, Dims) or len(value.parts) != 3:
        raise _Bad(
            dx.E_BAD_VALUE,
            f"input takes CHANNELSxHEIGHTxWIDTH such as `3x224x224`, not {_kind(value)}"
            if not isinstance(value, Dims)
            else f"input takes three sizes, CHANNELSxHEIGHTxWIDTH, not `{value.text}`",
            value.span,
            help="write e.g. `input 3x224x224` (channels x height x width)",
        )
    c, h, w = value.parts
    if min(c, h, w) < 1:
        raise _Bad(
            dx.E_NOT_POSITIVE,
            f"input sizes must be positive, not `{value.text}`",
            value.span,
            help="write e.g. `input 3x224x224` (channels x height x width)",
        )
    if c > MAX_INPUT_CHANNELS or max(h, w) > MAX_INPUT_SIZE:
        raise _Bad(
            dx.E_LIMIT,
            f"input `{value.text}` is beyond the limits "
            f"({MAX_INPUT_CHANNELS} channels, {MAX_INPUT_SIZE} pixels a side)",
            value.span,
            help="resdsl refuses sizes no real network uses rather than run out of memory",
        )
    return c, h, w


def _waiver(value: Value, what: str) -> str:
    return _choice("halve_double")(value, what)


FIELDS: dict[str, Field] = {
    "input": Field(_input),
    "classes": Field(_int(1, MAX_CLASSES)),
    "stem": Field(_kind_reader("stem preset", STEMS)),
    "block": Field(_kind_reader("block type", BLOCKS), stage=True),
    "shortcut": Field(_kind_reader("shortcut policy", SHORTCUTS), stage=True),
    "strided_block": Field(_choice("first", "last"), stage=True),
    "conv_bias": Field(_choice("off", "on", "unnormalized")),
    "norm": Field(_kind_reader("norm", NORMS)),
    "activation": Field(_choice("relu", "silu", "gelu")),
    "init": Field(_kind_reader("init scheme", INITS)),
    "stochastic_depth": Field(_float(0.0, 1.0, high_open=True)),
    "head": Field(_kind_reader("head", HEADS)),
    "dilation": Field(_int(1, MAX_DILATION), stage=True, network=False),
    "waive": Field(_waiver, stage=True, network=False),
}
REQUIRED = ("input", "classes", "block")
# Settings that decide shapes: when one is wrong, elaborating with its default would only
# produce misleading follow-on errors.
SHAPING = ("stem", "strided_block")


# --------------------------------------------------------------------------- resolving


@dataclass
class Merged:
    """A network after `extends`: the last word on each setting and each stage, in order."""

    decl: NetworkDecl
    settings: dict[str, Setting]
    stages: dict[str, StageDecl]


def merge(child: NetworkDecl, parent: Merged | None, diags: Diagnostics) -> Merged:
    """Overlay a network's own settings and stages on its parent's."""
    settings = _overlay(
        child.settings,
        lambda s: s.key,
        parent.settings if parent else {},
        diags,
        message="`{}` is set twice",
        verbs=("set again here", "first set here"),
        help="remove one of them",
    )
    stages = _overlay(
        child.stages,
        lambda s: s.name,
        parent.stages if parent else {},
        diags,
        message="stage `{}` is declared twice",
        verbs=("declared again here", "first declared here"),
        help="give each stage its own name",
    )
    return Merged(child, settings, stages)


def _overlay(items, name_of, inherited: dict, diags: Diagnostics, *, message, verbs, help) -> dict:
    """`inherited` with each of `items` replacing the entry of its name in place (dict order is
    kept) or appended; a name given twice among `items` is an error at the second."""
    merged = dict(inherited)
    own: dict[str, Name] = {}
    for item in items:
        name = name_of(item)
        if name.text in own:
            diags.add(
                dx.E_DUPLICATE,
                message.format(name.text),
                name.span,
                label=verbs[0],
                notes=(dx.Label(own[name.text].span, verbs[1]),),
                help=help,
            )
            continue
        own[name.text] = name
        merged[name.text] = item
    return merged


def build_spec(merged: Merged, diags: Diagnostics) -> NetworkSpec | None:
    """Typed spec from merged declarations.

    A wrong setting that cannot change shapes (norm, init, activation, ...) falls back to its
    default so that the later passes still run and every error of the file is reported at
    once; None when something that shapes the network is wrong.
    """
    decl = merged.decl
    values: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    for key, setting in merged.settings.items():
        result = _read_setting(setting, diags, in_stage=False)
        if result is not _MISSING:
            values[key] = result
            spans[key] = setting.span
    for key in REQUIRED:
        if key not in merged.settings:
            diags.add(
                dx.E_MISSING,
                f"network `{decl.name.text}` has no `{key}`",
                decl.name.span,
                label=f"`{key}` is required",
                help=_REQUIRED_HELP[key],
            )
    if not merged.stages:
        diags.add(
            dx.E_MISSING,
            f"network `{decl.name.text}` has no stages",
            decl.name.span,
            label="at least one stage is required",
            help="add a stage, e.g. `stage layer1: 2 x 64`",
        )
    _check_identifier(decl.name, "network", diags, reserved=False)

    block = _block_spec(values.get("block"), spans.get("block"))
    shortcut = _shortcut_spec(values.get("shortcut", ("B", {})), spans.get("shortcut"))
    strided_block = values.get("strided_block", "first")
    stages = []
    total_blocks = 0
    for stage in merged.stages.values():
        spec = _stage_spec(stage, block, shortcut, strided_block, diags)
        if spec is not None:
            total_blocks += spec.blocks
            stages.append(spec)
    if len(merged.stages) > MAX_STAGES:
        diags.add(
            dx.E_LIMIT,
            f"{len(merged.stages)} stages; the limit is {MAX_STAGES}",
            decl.name.span,
            help="real residual networks have four or five stages",
        )
    if total_blocks > MAX_BLOCKS:
        diags.add(
            dx.E_LIMIT,
            f"the network has {total_blocks:,} blocks; the limit is {MAX_BLOCKS:,}",
            decl.name.span,
            help="ResNet-1202, the deepest in the paper, has 600",
        )
    # A required setting that is missing is as fatal as one that is wrong (found by fuzzing).
    shaping_ok = all(key in values for key in REQUIRED) and all(
        key in values for key in SHAPING if key in merged.settings
    )
    limits_ok = len(merged.stages) <= MAX_STAGES and total_blocks <= MAX_BLOCKS
    if not (shaping_ok and limits_ok and block is not None and stages):
        return None
    if len(stages) != len(merged.stages):
        return None

    stem_name, stem_args = values.get("stem", ("imagenet", STEMS["imagenet"].defaults))
    norm_args = values.get("norm", ("batch", NORMS["batch"].defaults))[1]
    init_name, init_args = values.get("init", ("kaiming", INITS["kaiming"].defaults))
    head_args = values.get("head", ("avgpool", HEADS["avgpool"].defaults))[1]
    return NetworkSpec(
        name=decl.name.text,
        file=decl.span.file,
        input=values["input"],
        classes=values["classes"],
        stem=StemSpec(preset=stem_name, span=spans.get("stem"), **stem_args),
        conv_bias=values.get("conv_bias", "off"),
        norm=NormSpec(kind="batch", span=spans.get("norm"), **norm_args),
        activation=values.get("activation", "relu"),
        init=InitSpec(scheme=init_name, span=spans.get("init"), **init_args),
        stochastic_depth=values.get("stochastic_depth", 0.0),
        head=HeadSpec(span=spans.get("head"), **head_args),
        stages=tuple(stages),
        span=decl.span,
        spans=spans,
    )


_REQUIRED_HELP = {
    "input": "add e.g. `input 3x224x224` (channels x height x width)",
    "classes": "add e.g. `classes 1000`",
    "block": "add e.g. `block basic` or `block bottleneck`",
}

_MISSING = object()


def _read_setting(setting: Setting, diags: Diagnostics, *, in_stage: bool) -> Any:
    key = setting.key.text
    field = FIELDS.get(key)
    allowed = [k for k, f in FIELDS.items() if (f.stage if in_stage else f.network)]
    if field is None:
        diags.add(
            dx.E_UNKNOWN_SETTING,
            f"unknown setting `{key}`" + (" in a stage" if in_stage else ""),
            setting.key.span,
            help=_did_you_mean(key, allowed) or f"settings here: {_list(allowed)}",
        )
        return _MISSING
    if (in_stage and not field.stage) or (not in_stage and not field.network):
        where = "inside a stage's braces" if in_stage else "at network level"
        diags.add(
            dx.E_NOT_HERE,
            f"`{key}` cannot be set {where}",
            setting.key.span,
            help=(
                f"a stage's braces take {_list([k for k, f in FIELDS.items() if f.stage])}"
                if in_stage
                else f"`{key}` belongs inside a stage's braces: `stage NAME: N x W {{ {key} ... }}`"
            ),
        )
        return _MISSING
    try:
        return field.reader(setting.value, f"`{key}`")
    except _Bad as bad:
        diags.add(bad.code, bad.message, bad.span, help=bad.help)
        return _MISSING


def _block_spec(value, span: Span | None) -> BlockSpec | None:
    if value is None:
        return None
    kind, args = value
    return BlockSpec(kind=kind, span=span, **args)


def _shortcut_spec(value, span: Span | None) -> ShortcutSpec:
    policy, args = value
    return ShortcutSpec(policy=policy, span=span, **{**_SHORTCUT_DEFAULTS, **args})


def _stage_spec(
    stage: StageDecl,
    block: BlockSpec | None,
    shortcut: ShortcutSpec,
    strided_block: str,
    diags: Diagnostics,
) -> StageSpec | None:
    ok = _check_identifier(stage.name, "stage", diags, reserved=True)
    spans = {"blocks": stage.blocks.span, "width": stage.width.span, "stage": stage.span}
    numbers = {}
    for what, number, reader in (
        ("blocks", stage.blocks, _int(1, MAX_BLOCKS)),
        ("width", stage.width, _int(1, MAX_WIDTH)),
        ("stride", stage.stride, _int(1, MAX_STRIDE)),
    ):
        if number is None:
            continue
        try:
            numbers[what] = reader(number, f"the {what} of stage `{stage.name.text}`")
        except _Bad as bad:
            diags.add(bad.code, bad.message, bad.span, help=bad.help)
            ok = False
    if stage.stride is not None:
        spans["stride"] = stage.stride.span
    overrides: dict[str, Any] = {}
    waivers = []
    seen: dict[str, Setting] = {}
    for setting in stage.settings:
        key = setting.key.text
        if key in seen and key != "waive":
            diags.add(
                dx.E_DUPLICATE,
                f"`{key}` is set twice in stage `{stage.name.text}`",
                setting.key.span,
                notes=(dx.Label(seen[key].key.span, "first set here"),),
                help="remove one of them",
            )
            ok = False
            continue
        seen[key] = setting
        result = _read_setting(setting, diags, in_stage=True)
        if result is _MISSING:
            ok = False
            continue
        spans[key] = setting.span
        if key == "waive":
            waivers.append(Waiver(rule=result, span=setting.span))
        else:
            overrides[key] = result
    stage_block = _block_spec(overrides["block"], spans["block"]) if "block" in overrides else block
    if not ok or stage_block is None:
        return None
    stage_shortcut = (
        _shortcut_spec(overrides["shortcut"], spans["shortcut"])
        if "shortcut" in overrides
        else shortcut
    )
    return StageSpec(
        name=stage.name.text,
        blocks=numbers["blocks"],
        width=numbers["width"],
        stride=numbers.get("stride", 1),
        dilation=overrides.get("dilation", 1),
        block=stage_block,
        shortcut=stage_shortcut,
        strided_block=overrides.get("strided_block", strided_block),
        waivers=tuple(waivers),
        span=stage.span,
        spans=spans,
    )


def _check_identifier(name: Name, what: str, diags: Diagnostics, *, reserved: bool) -> bool:
    """Names reach generated Python as attributes and layer names: they must be safe there."""
    text = name.text
    problem = None
    if keyword.iskeyword(text) or keyword.issoftkeyword(text):
        problem = "is a Python keyword"
    elif text.startswith("__"):
        problem = "starts with a double underscore"
    elif reserved and text in RESERVED_NAMES:
        problem = "is used by the generated stem or head"
    elif len(text) > 64:
        problem = "is longer than 64 characters"
    if problem is None:
        return True
    diags.add(
        dx.E_BAD_NAME,
        f"{what} name `{text[:64]}` {problem}",
        name.span,
        help=f"rename the {what}, e.g. `{what}{'_' if not text.endswith('_') else ''}"
        f"{text[:20].strip('_') or 'x'}`"
        if what == "network"
        else "rename the stage, e.g. `layer1` or `conv2`",
    )
    return False


def parent_path(child_file: str, extends: String) -> str:
    """A parent named relative to the child's folder, kept relative so output never holds an
    absolute path."""
    import os.path

    folder = os.path.dirname(child_file)
    return (
        os.path.normpath(os.path.join(folder, extends.text))
        if folder
        else os.path.normpath(extends.text)
    )
