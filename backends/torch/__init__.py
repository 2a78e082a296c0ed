"""The PyTorch backend: an elaborated network to a standalone module that imports only torch.

The generated module reads like torchvision's resnet.py: one class per distinct block structure,
a shortcut function, `make_stage` (torchvision's `_make_layer`: one call per stage with the real
block count, so ResNet-152's module is as long as ResNet-50's), the model class and
`build_model`.

It is built in two steps. Python reads the network's layer lists (the stem's, every block's, the
head's) and builds a plan: the block classes, the shortcut functions, the stage calls, the
model's lines. The jinja2 templates lay the plan out. Nothing is decided from a block type's name
and no name is derived here: every attribute is a layer's `torch` name from the IR, every value a
layer's.

A plan is checked by construction against the IR it came from. A class, a shortcut function or a
stage call abstracts the values of many blocks (widths, stride, groups, dilation) into its
arguments; the plan substitutes each block's own values back and compares the result with the
block's layers, field by field. What does not come back exactly is reported by `unsupported`
(the CLI's diagnostic) and refused by `emit`, never generated wrong.

* Block classes: blocks whose layer lists agree once widths, the stride, groups, dilation and
  paddings are set aside share one class. A class takes `groups` only where one of its blocks
  groups a convolution, `dilation` only where one dilates, `eca_kernel` only with efficient
  channel attention (its kernel follows from the width by a logarithm, which the stage call
  states), `drop_path` only with stochastic depth. Widths the class can compute it writes:
  `mid_channels // 2` (`reduce_first`), `make_divisible(out_channels / 16, 8)`
  (squeeze-excitation's). An anti-aliasing layer, which only applies the stride, does not
  split a class: the class registers it where the stride is not 1 and `nn.Identity()`
  elsewhere, as timm.
* Stage calls: every block of a stage gets the same options, but the first block of a dilated
  stage keeps the stage before's dilation (`first_dilation`). Where a block needs two
  dilations at once (`Block.two_dilations`: a basic block's two 3x3s, anti-aliasing where
  the dilation changes), the module takes timm's convention: `dilation` is the stage's,
  `first_dilation` the block's own, and the class anti-aliases where `stride != 1 or
  first_dilation != dilation`; elsewhere torchvision's, one `dilation` that make_stage
  replaces.
* Helpers: `BlurPool2d`, `SqueezeExcite`, `EfficientChannelAttention` (timm's attribute names,
  so timm's state dicts load) and `make_divisible` are written only into modules that use
  them; what they compute rather than take (a blur pool's padding, squeeze-excitation's 1x1
  biased convolutions) is checked against the IR too, and so is the network's norm, which the
  module's `norm` helper builds (batch or group norm).
* Shortcuts: which shortcut a block gets is a function of two things the generated code can test,
  whether the width stays and whether the stride is 1. Each (width, stride) case that the
  network's blocks meet maps to the layers those blocks have there; stages whose cases agree
  share one function, written as an `if` chain with the simplest conditions that separate the
  cases. Pre-activation blocks' shortcuts read the pre-activated input or (shortcut `source`
  "input") the block's input; a class meeting both tells them apart by the type of the module,
  `FromInput` for the latter.
* `zero_last_norm`: the layers the IR marks `zero_init` (the last norm of a post-activation
  branch, the last convolution of a pre-activation one, as timm's ResNetV2) start at zero.
"""

from __future__ import annotations

import builtins
import itertools
import keyword
import re
import textwrap
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from resdsl import __version__
from resdsl.ir import (
    ActLayer,
    Block,
    BlurPoolLayer,
    Conv,
    ConvLayer,
    EcaLayer,
    Network,
    NormLayer,
    PadChannelsLayer,
    PoolLayer,
    SqueezeExciteLayer,
)

LINE = 100  # the project's ruff line length
INDENT = "    "

_ACTIVATION = {
    "relu": "nn.ReLU(inplace=True)",
    "silu": "nn.SiLU(inplace=True)",
    "gelu": "nn.GELU()",
}
_GATES = {"sigmoid": "nn.Sigmoid()", "hard_sigmoid": "nn.Hardsigmoid()"}
_INIT_DOC = {
    "kaiming": "torchvision's: He normal (fan out) convolutions, unit norms, default Linear.",
    "glorot": "keras': Glorot uniform convolutions and Linear, zero biases, unit norms.",
}


# --------------------------------------------------------------------------- formatting


@dataclass(frozen=True)
class Call:
    """A call expression, laid out by :func:`_layout` as ruff format would."""

    head: str
    args: tuple[str | Call, ...]


@dataclass(frozen=True)
class Choice:
    """`value if condition else other`: a module that only some blocks of a class have."""

    value: str | Call
    condition: str
    other: str


def _flat(value: str | Call | Choice) -> str:
    if isinstance(value, Call):
        return f"{value.head}({', '.join(_flat(a) for a in value.args)})"
    if isinstance(value, Choice):
        return f"{_flat(value.value)} if {value.condition} else {value.other}"
    return value


def _layout(prefix: str, value: str | Call | Choice, depth: int, suffix: str = "") -> list[str]:
    """`prefix value suffix` at `depth` indents: on one line if it fits, else the arguments on
    one indented line, else one per line with a trailing comma (none after a sole argument),
    each laid out the same way. A conditional expression that does not fit goes inside
    parentheses, split before `if` and `else` where it still does not fit."""
    pad = INDENT * depth
    one = f"{pad}{prefix}{_flat(value)}{suffix}"
    if len(one) <= LINE:
        return [one]
    if isinstance(value, Choice):
        inner = f"{pad}{INDENT}{_flat(value)}"
        if len(inner) <= LINE:
            return [f"{pad}{prefix}(", inner, f"{pad}){suffix}"]
        return [
            f"{pad}{prefix}(",
            *_layout("", value.value, depth + 1),
            f"{pad}{INDENT}if {value.condition}",
            f"{pad}{INDENT}else {value.other}",
            f"{pad}){suffix}",
        ]
    if not isinstance(value, Call) or not value.args:
        return [one]
    head, close = f"{pad}{prefix}{value.head}(", f"{pad}){suffix}"
    inner = f"{pad}{INDENT}{', '.join(_flat(a) for a in value.args)}"
    if len(inner) <= LINE:
        return [head, inner, close]
    lines = [head]
    comma = "," if len(value.args) > 1 else ""
    for arg in value.args:
        lines += _layout("", arg, depth + 1, comma)
    return [*lines, close]


def _docstring(text: str, depth: int) -> list[str]:
    """A docstring at `depth` indents: one line if it fits, else wrapped, quotes on their own."""
    pad = INDENT * depth
    if len(pad) + len(text) + 6 <= LINE:
        return [f'{pad}"""{text}"""']
    lines = textwrap.wrap(text, LINE - len(pad), initial_indent='"""', break_on_hyphens=False)
    return [pad + line for line in lines] + [f'{pad}"""']


def _float(value: float) -> str:
    return repr(float(value))


# How the papers spell the family names that spec names usually start with.
_SPELLINGS = (
    ("seresnext", "SEResNeXt"),
    ("seresnet", "SEResNet"),
    ("senet", "SENet"),
    ("ecaresnext", "ECAResNeXt"),
    ("ecaresnet", "ECAResNet"),
    ("resnext", "ResNeXt"),
    ("resnetblur", "ResNetBlur"),
    ("resnetaa", "ResNetAA"),
    ("resnetrs", "ResNetRS"),
    ("resnet", "ResNet"),
    ("preact", "PreAct"),
)


# Every module-level name the generated module defines or imports, besides its block classes
# and shortcut functions.
_MODULE_NAMES = frozenset(
    {
        "annotations", "Callable", "torch", "F", "nn", "NORM_EPS", "NORM_MOMENTUM",
        "NORM_GROUPS", "DROP_PATH_RATE", "TOTAL_BLOCKS", "norm", "drop_path_rate", "make_stage",
        "build_model", "DropPath", "PadChannels", "FromInput", "BlurPool2d", "make_divisible",
        "SqueezeExcite", "EfficientChannelAttention",
    }
)  # fmt: skip


def _class_name(name: str) -> str:
    """`wide_resnet50_2` -> `WideResNet50_2`: CamelCase, keeping `_` before a digit, with the
    families spelled as their papers do."""
    out = ""
    for part in (p for p in name.split("_") if p):
        if out and part[0].isdigit():
            out += "_"
        for lower, spelled in _SPELLINGS:
            if part.lower().startswith(lower):
                part = spelled + part[len(lower) :]
                break
        out += part[0].upper() + part[1:]
    out = "".join(c for c in out if c.isalnum() or c == "_") or "Network"
    return out if out[0].isalpha() else "Net" + out


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Sym:
    """A value the generated code takes as an argument (`scale * name`, `name // divisor`)
    rather than writes."""

    name: str
    scale: int = 1
    divisor: int = 1

    @property
    def names(self) -> frozenset[str]:
        return frozenset({self.name})

    def evaluate(self, env: dict) -> int:
        return env[self.name] * self.scale // self.divisor

    def __str__(self) -> str:
        text = self.name if self.scale == 1 else f"{self.scale} * {self.name}"
        return text if self.divisor == 1 else f"{text} // {self.divisor}"


@dataclass(frozen=True)
class Divisible:
    """Squeeze-excitation's inner width as the generated code computes it from the block's:
    `make_divisible(channels / reduction, divisor)` (timm's rounding, see `make_divisible`)."""

    channels: Sym
    ratio: float
    divisor: int

    @property
    def reduction(self) -> int | float:
        """What the channels are divided by, written as an integer where it is one."""
        value = 1 / self.ratio
        return int(value) if value == int(value) else value

    @property
    def names(self) -> frozenset[str]:
        return self.channels.names

    def evaluate(self, env: dict) -> int:
        return _make_divisible(self.channels.evaluate(env) / self.reduction, self.divisor)

    def __str__(self) -> str:
        return f"make_divisible({self.channels} / {self.reduction!r}, {self.divisor})"


def _make_divisible(value: float, divisor: int) -> int:
    """The generated `make_divisible`, run here to check the widths it gives."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


def _blur_padding(layer: BlurPoolLayer) -> tuple[int, int]:
    """The padding the generated `BlurPool2d` computes for a layer, before and after."""
    return ((layer.size - 1) // 2, layer.size // 2)


_EXPRESSIONS = (Sym, Divisible)


def _field_values(node, exclude: frozenset[str] = frozenset()) -> dict:
    """A node's fields as a dict, nested nodes kept as they are. (Not `model_dump`, whose
    serializer pydantic would build at first use: a cost `compile` need not pay.)"""
    return {name: value for name, value in node if name not in exclude}


def _fields(layer) -> dict:
    """The values of a layer that the generated code states (its IR fields but the names).
    A helper class's fixed parts (SqueezeExcite's 1x1 convolutions, BlurPool2d's padding) are
    checked by :func:`_implied` instead."""
    if isinstance(layer, ConvLayer):
        return _field_values(layer.conv)
    if isinstance(layer, PoolLayer):
        return _field_values(layer.pool)
    if isinstance(layer, BlurPoolLayer):
        return {"channels": layer.channels, "size": layer.size, "stride": layer.stride}
    if isinstance(layer, SqueezeExciteLayer):
        conv = layer.reduce.conv
        return {"channels": conv.in_channels, "reduced": conv.out_channels}
    if isinstance(layer, EcaLayer):
        return {"kernel": layer.conv.kernel}
    return _field_values(layer, frozenset({"op", "torch", "keras", "width", "zero_init"}))


def _implied(layer, network: Network) -> str | None:
    """What is wrong with a layer whose values the generated code does not state but computes
    (a helper class's fixed parts, the module's norm), or None."""
    if isinstance(layer, NormLayer) and layer.kind != network.conventions.norm:
        return f"a {layer.kind} norm in a network of {network.conventions.norm} norms"
    if isinstance(layer, BlurPoolLayer) and layer.padding != _blur_padding(layer):
        return "a blur pool padded otherwise than BlurPool2d pads"
    if isinstance(layer, SqueezeExciteLayer):
        wide, narrow = layer.reduce.conv.in_channels, layer.reduce.conv.out_channels
        fc1 = Conv(in_channels=wide, out_channels=narrow, kernel=1, bias=True)
        fc2 = Conv(in_channels=narrow, out_channels=wide, kernel=1, bias=True)
        actual = [(x.torch, x.conv) for x in (layer.reduce, layer.expand)]
        if actual != [(f"{layer.torch}.fc1", fc1), (f"{layer.torch}.fc2", fc2)]:
            return "a squeeze-excitation other than SqueezeExcite builds"
    if isinstance(layer, EcaLayer) and (
        layer.conv.torch != f"{layer.torch}.conv" or layer.conv.kernel % 2 == 0
    ):
        return "a channel attention other than EfficientChannelAttention builds"
    return None


def _instantiate(fields: dict, env: dict) -> dict | None:
    """`fields` with each argument replaced by its value in `env` (None if one is missing)."""
    out = {}
    for name, value in fields.items():
        if isinstance(value, _EXPRESSIONS):
            if not value.names <= env.keys():
                return None
            value = value.evaluate(env)
        out[name] = value
    return out


def _block_env(block: Block, two_dilations: bool = False) -> dict:
    """What a block class knows of a block. With `two_dilations` (timm's convention, see
    `Block.two_dilations`), `dilation` is the stage's and `first_dilation` the block's own; else
    `dilation` is the block's own (torchvision's)."""
    env = {
        "in_channels": block.in_channels,
        "mid_channels": block.mid_channels,
        "out_channels": block.out_channels,
        "stride": block.stride,
        "groups": block.groups,
        "dilation": block.stage_dilation if two_dilations else block.dilation,
    }
    if two_dilations:
        env["first_dilation"] = block.dilation
    # ECA's kernel follows from the block's width by a logarithm: the stage gives it.
    kernels = [x.conv.kernel for x in block.branch if isinstance(x, EcaLayer)]
    if kernels:
        env["eca_kernel"] = kernels[0]
    return env


def _shortcut_env(block: Block) -> dict:
    """What a shortcut function knows of a block; `pad_*` are `PadChannels`' rule."""
    grow = block.out_channels - block.in_channels
    return {
        "in_channels": block.in_channels,
        "out_channels": block.out_channels,
        "stride": block.stride,
        "pad_before": grow // 2,
        "pad_after": grow - grow // 2,
    }


# What a block class may take besides its widths and stride, in the order it takes them, and
# the defaults it gives them.
_OPTION_DEFAULTS = {"groups": 1, "dilation": 1, "first_dilation": None, "eca_kernel": 3}
_OPTIONS = tuple(_OPTION_DEFAULTS)
_BLOCK_SYMBOLS = frozenset(("in_channels", "mid_channels", "out_channels", "stride", *_OPTIONS))


def _registered(env: dict) -> bool:
    """Whether a class registers its `_optional` layers for a block: where it strides, and
    (timm's `use_aa`) where its dilation changes."""
    return env["stride"] != 1 or env.get("first_dilation", env["dilation"]) != env["dilation"]


_SHORTCUT_WIDTHS = {"in": Sym("in_channels"), "out": Sym("out_channels")}


def _block_widths(block: Block) -> dict[str, Sym]:
    """A block class's widths as its arguments give them: the first convolution's output is
    the inner width over `reduce_first`, which the class writes as a division."""
    reduce_first = max(1, block.mid_channels // block.first_channels)
    return {
        "in": Sym("in_channels"),
        "first": Sym("mid_channels", divisor=reduce_first),
        "mid": Sym("mid_channels"),
        "out": Sym("out_channels"),
    }


def _abstract(layers: list, symbols: frozenset[str], widths: dict[str, Sym]) -> dict:
    """The fields of the layers at one position of several blocks, with what varies from block to
    block (or may, as a width) replaced by the argument that gives it. The caller checks the
    result against every block."""
    first = layers[0]
    fields = _fields(first)
    width = getattr(first, "width", None)
    if width in widths and "channels" in fields:  # norms, blur pools, attention
        fields["channels"] = widths[width]
    if isinstance(first, ConvLayer):
        fields["in_channels"] = widths.get(first.source, fields["in_channels"])
        fields["out_channels"] = widths.get(first.target, fields["out_channels"])
        if first.strided:
            fields["stride"] = Sym("stride")
        if "groups" in symbols and any(layer.conv.groups > 1 for layer in layers):
            fields["groups"] = Sym("groups")
        dilated = [layer.conv for layer in layers if layer.conv.dilation > 1]
        # Under timm's two dilations the block's own is `first_dilation`.
        name = "dilation"
        if "first_dilation" in symbols and not first.stage_dilated:
            name = "first_dilation"
        if name in symbols and dilated:
            fields["dilation"] = Sym(name)
            fields["padding"] = Sym(name, dilated[0].padding // dilated[0].dilation)
    elif isinstance(first, PoolLayer) and first.strided:
        fields["stride"] = Sym("stride")
        if any(layer.pool.kernel == layer.pool.stride > 1 for layer in layers):
            fields["kernel"] = Sym("stride")
    elif isinstance(first, BlurPoolLayer) and first.strided:
        fields["stride"] = Sym("stride")
    elif isinstance(first, SqueezeExciteLayer) and first.ratio is not None and width in widths:
        fields["reduced"] = Divisible(widths[width], first.ratio, first.divisor)
    elif isinstance(first, EcaLayer) and first.gamma is not None and "eca_kernel" in symbols:
        fields["kernel"] = Sym("eca_kernel")
    elif isinstance(first, PadChannelsLayer):
        fields = {"before": Sym("pad_before"), "after": Sym("pad_after")}
    return fields


def _structure(layer) -> tuple:
    """What a block class fixes of a layer: its type, name and flags, and the values that no
    argument gives (a kernel size, a bias, a fixed attention width)."""
    meta = _field_values(layer, frozenset({"keras", "conv", "pool", "reduce", "expand"}))
    fields = _fields(layer)
    varying = {"in_channels", "out_channels", "channels", "groups", "dilation", "padding"}
    if getattr(layer, "strided", False):
        varying |= {"stride", "kernel"} if isinstance(layer, PoolLayer) else {"stride"}
    if isinstance(layer, PadChannelsLayer):
        varying |= {"before", "after"}
    if isinstance(layer, SqueezeExciteLayer) and layer.ratio is not None:
        varying.add("reduced")
    if isinstance(layer, EcaLayer) and layer.gamma is not None:
        varying.add("kernel")
    kept = {k: v for k, v in {**meta, **fields}.items() if k not in varying}
    return tuple(sorted(kept.items()))


def _optional(layer) -> bool:
    """Whether a block's layer only applies its stride (anti-aliasing: a blur or average pool
    after a convolution that no longer strides). Blocks at stride 1 lack it; their class
    registers `nn.Identity()` in its place, as timm."""
    return isinstance(layer, (BlurPoolLayer, PoolLayer)) and layer.strided


def _symbols(fields: list[dict]) -> set[str]:
    """The arguments that `fields` use."""
    return {
        name for f in fields for v in f.values() if isinstance(v, _EXPRESSIONS) for name in v.names
    }


# --------------------------------------------------------------------------- emitters
# One emitter per layer type: the module that a layer's fields describe. Fields may hold `Sym`s.


def _conv(f: dict, activation: str) -> Call:
    args = [str(f["in_channels"]), str(f["out_channels"]), f"kernel_size={f['kernel']}"]
    for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
        if f[name] != default:
            args.append(f"{name}={f[name]}")
    return Call("nn.Conv2d", (*args, f"bias={f['bias']}"))


def _norm(f: dict, activation: str) -> Call:
    return Call("norm", (str(f["channels"]),))


def _act(f: dict, activation: str) -> str:
    return activation


def _pool(f: dict, activation: str) -> Call:
    window = [f"kernel_size={f['kernel']}", f"stride={f['stride']}"]
    if f["kind"] == "max" and f["zero_padded"]:
        # Zeros, not -inf, around the input (keras.applications; see resdsl.ir.Pool).
        pad = f"nn.ZeroPad2d({f['padding']})"
        return Call("nn.Sequential", (pad, Call("nn.MaxPool2d", tuple(window))))
    if f["padding"]:
        window.append(f"padding={f['padding']}")
    if f["kind"] == "max":
        return Call("nn.MaxPool2d", tuple(window))
    if f["ceil"]:
        window += ["ceil_mode=True", "count_include_pad=False"]
    if f["pad_after"]:
        # Zeros after each axis, inside the average (timm's AvgPool2dSame at stride 1).
        after = f["pad_after"]
        pad = f"nn.ZeroPad2d((0, {after}, 0, {after}))"
        return Call("nn.Sequential", (pad, Call("nn.AvgPool2d", tuple(window))))
    return Call("nn.AvgPool2d", tuple(window))


def _pad_channels(f: dict, activation: str) -> Call:
    return Call("PadChannels", ("in_channels", "out_channels"))


def _linear(f: dict, activation: str) -> Call:
    args = (str(f["in_features"]), str(f["out_features"]))
    return Call("nn.Linear", args if f["bias"] else (*args, "bias=False"))


def _dropout(f: dict, activation: str) -> str:
    return f"nn.Dropout(p={_float(f['rate'])})"


def _global_pool(f: dict, activation: str) -> str:
    return "nn.AdaptiveAvgPool2d((1, 1))"


def _identity(f: dict, activation: str) -> str:
    return "nn.Identity()"


def _blur(f: dict, activation: str) -> Call:
    return Call("BlurPool2d", (str(f["channels"]), f"size={f['size']}", f"stride={f['stride']}"))


def _squeeze_excite(f: dict, activation: str) -> Call:
    return Call("SqueezeExcite", (str(f["channels"]), str(f["reduced"])))


def _eca(f: dict, activation: str) -> Call:
    return Call("EfficientChannelAttention", (f"kernel_size={f['kernel']}",))


_EMITTERS = {
    "conv": _conv,
    "norm": _norm,
    "act": _act,
    "pool": _pool,
    "pad_channels": _pad_channels,
    "linear": _linear,
    "dropout": _dropout,
    "global_pool": _global_pool,
    "identity": _identity,
    "blur": _blur,
    "se": _squeeze_excite,
    "eca": _eca,
}


# --------------------------------------------------------------------------- the plan


@dataclass
class _Unit:
    """One attribute of a module: a layer, or the layers of a Sequential (`conv1.0`, ...)."""

    attr: str
    ops: list[str]
    fields: list[dict]
    sequential: bool
    optional: bool = False  # only where the block strides (`_optional`); else nn.Identity()

    @property
    def convolves(self) -> bool:
        return "conv" in self.ops

    @property
    def chains(self) -> bool:
        """Whether it joins a conv -> norm -> act statement (parameter-free reshapes do not)."""
        return all(op in ("conv", "norm", "act") for op in self.ops)


@dataclass
class _BlockClass:
    """One generated block class and the blocks (one per run) it builds."""

    name: str
    blocks: list[Block]
    # pre, branch and post layers of a block of the class with all its layers (a strided one
    # where some are `_optional`), for their names and flags
    layers: list
    pre: list[_Unit]
    branch: list[_Unit]
    post: list[_Unit]
    takes: list[str]  # what it takes besides the widths, the stride and the downsample
    sources: set[str]  # what its shortcuts read: "input", "preactivated"
    adds: bool = True  # adds a shortcut; a plain network's block (`shortcut none`) does not

    @property
    def zero(self) -> list[str]:
        """The layers whose weight starts at zero (`zero_last_norm`)."""
        return [x.torch for x in self.layers if getattr(x, "zero_init", False)]


@dataclass(frozen=True)
class _Outcome:
    """The shortcut of one (width, stride) case: its layers' ops and abstract fields."""

    source: str
    layers: tuple[tuple[str, tuple], ...]  # (op, sorted fields)


_Cell = tuple[bool, bool]  # (the width stays, the stride is 1)


@dataclass(frozen=True)
class _Case:
    """`if condition: return outcome`; the last case of a chain has no condition."""

    cells: frozenset[_Cell] | None
    condition: str | None
    outcome: _Outcome | None


@dataclass
class _Function:
    """A shortcut function: the outcome of each case the blocks of its stages meet."""

    cases: dict[_Cell, _Outcome | None]
    stages: list = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)  # the IR's shortcut kinds, for its name
    name: str = ""
    marks: bool = False  # wraps the shortcuts that read the block's input in `FromInput`
    chain: list[_Case] = field(default_factory=list)


@dataclass
class _StageCall:
    """`self.{attr} = make_stage(...)`."""

    attr: str
    block: _BlockClass
    blocks: int
    in_channels: int
    mid_channels: int
    out_channels: int
    stride: int
    stride_last: bool
    options: dict[str, int]  # groups, dilation, eca_kernel: those the class takes
    # The first block's dilation where it differs from the others' (the stage before's, as
    # torchvision's `previous_dilation`)
    first_dilation: int | None
    passes_first: bool  # the class takes `first_dilation` (timm's), else it replaces `dilation`
    function: _Function | None
    first_index: int  # network-wide index of its first block (stochastic depth)

    def expand(self) -> list[dict]:
        """What make_stage's loop gives each block, as it does it."""
        strided = self.blocks - 1 if self.stride_last else 0
        first, rest = dict(self.options), dict(self.options)
        if self.passes_first:  # the class's `first_dilation or dilation`
            first["first_dilation"] = self.first_dilation or self.options["dilation"]
            rest["first_dilation"] = self.options["dilation"]
        elif self.first_dilation is not None:
            first["dilation"] = self.first_dilation
        return [
            {
                "in_channels": self.in_channels if index == 0 else self.out_channels,
                "mid_channels": self.mid_channels,
                "out_channels": self.out_channels,
                "stride": self.stride if index == strided else 1,
                **(first if index == 0 else rest),
            }
            for index in range(self.blocks)
        ]


_SAME, _KEEP = "in_channels == out_channels", "stride == 1"
_GROW, _STEP = "in_channels != out_channels", "stride != 1"
_ALL: tuple[_Cell, ...] = ((True, True), (True, False), (False, True), (False, False))
# Every set of cases an `if` can select, with its text and cost, the simplest first.
_CONDITIONS = [
    (frozenset(c for c in _ALL if test(*c)), text, cost)
    for test, text, cost in (
        (lambda same, keep: same, _SAME, 1),
        (lambda same, keep: not same, _GROW, 1),
        (lambda same, keep: keep, _KEEP, 1),
        (lambda same, keep: not keep, _STEP, 1),
        (lambda same, keep: same and keep, f"{_SAME} and {_KEEP}", 2),
        (lambda same, keep: same and not keep, f"{_SAME} and {_STEP}", 2),
        (lambda same, keep: not same and keep, f"{_GROW} and {_KEEP}", 2),
        (lambda same, keep: not same and not keep, f"{_GROW} and {_STEP}", 2),
        (lambda same, keep: not same or not keep, f"{_GROW} or {_STEP}", 2),
        (lambda same, keep: not same or keep, f"{_GROW} or {_KEEP}", 2),
        (lambda same, keep: same or not keep, f"{_SAME} or {_STEP}", 2),
        (lambda same, keep: same or keep, f"{_SAME} or {_KEEP}", 2),
        (lambda same, keep: same == keep, f"({_SAME}) == ({_KEEP})", 3),
        (lambda same, keep: same != keep, f"({_SAME}) != ({_KEEP})", 3),
    )
]


def _cell(values) -> _Cell:
    """The case of a block (or of what make_stage gives it)."""
    get = values.get if isinstance(values, dict) else lambda name: getattr(values, name)
    return (get("in_channels") == get("out_channels"), get("stride") == 1)


def _chain(cases: dict[_Cell, _Outcome | None], rank: dict) -> list[_Case]:
    """The `if` chain that returns each case's outcome: the identity first where there is one
    (as torchvision tests it), then with the fewest conditions, then in order of first use.
    Cases no block meets may go to any outcome but the identity: None is returned only where a
    block has it."""
    outcomes = sorted(set(cases.values()), key=lambda o: rank[o])
    free = set(_ALL) - set(cases)
    best = None
    for order in itertools.permutations(outcomes):
        if len(order) > 1 and order[-1] is None:
            continue
        chain, cost, done = [], 0, set()
        for position, outcome in enumerate(order[:-1]):
            own = {c for c, o in cases.items() if o == outcome}
            later = {c for c, o in cases.items() if o in order[position + 1 :]}
            allowed = (set(_ALL) - later - (free if outcome is None else set())) | done
            cells, text, price = next(
                (cells, text, price)
                for cells, text, price in _CONDITIONS
                if own <= cells <= allowed
            )
            chain.append(_Case(cells, text, outcome))
            cost += price
            done |= cells
        chain.append(_Case(None, None, order[-1]))
        key = (order[0] is not None, cost, [rank[o] for o in order])
        if best is None or key < best[0]:
            best = (key, chain)
    return best[1]


def _select(chain: list[_Case], cell: _Cell) -> _Outcome | None:
    """What the generated `if` chain returns for a case."""
    return next(case.outcome for case in chain if case.cells is None or cell in case.cells)


def _compatible(a: dict, b: dict) -> bool:
    return all(a[c] == o for c, o in b.items() if c in a)


class _Plan:
    """What the templates lay out, read from the network and checked against it. Problems (what
    the plan cannot rebuild exactly) are collected, not raised."""

    def __init__(self, network: Network):
        self.network = network
        self.problems: list[str] = []
        self.activation = _ACTIVATION[network.conventions.activation]
        self.drop_path = network.conventions.stochastic_depth > 0
        self.runs = [(stage, run.block) for stage in network.stages for run in stage.runs]
        # timm's convention for dilation (`dilation` the stage's, `first_dilation` the
        # block's), where some block needs it; else torchvision's (`dilation` the block's).
        self.two_dilations = any(block.two_dilations for _, block in self.runs)
        self.gate = self._check_layers()
        self._outcomes: dict[int, _Outcome | None] = {}
        self.rank: dict[_Outcome | None, int] = {}  # order of first use
        self.downsample = self._shortcut_attribute()
        plain = {block.shortcut.kind == "none" for _, block in self.runs}
        if len(plain) > 1:  # make_stage gives every block of a module a downsample, or none
            self.problem("plain and residual blocks in one network")
        self.classes = self._classes()
        self.functions = self._functions() if self.downsample else []
        self.stages = [self._stage(stage) for stage in network.stages]
        self.stem = self._model_units(network.stem.layers)
        self.head = self._model_units(network.head.layers)
        # The model class must not shadow any other name of the module, a keyword (`none`
        # gives `None`) or a builtin: it takes a suffix until it is free.
        taken = (
            _MODULE_NAMES
            | {c.name for c in self.classes}
            | {f.name for f in self.functions}
            | set(keyword.kwlist)
            | set(keyword.softkwlist)
            | set(dir(builtins))
        )
        self.model = _class_name(network.name)
        while self.model in taken:
            self.model += "Net"

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    @property
    def stride_last(self) -> bool:
        return any(s.stride_last for s in self.stages)

    @property
    def options(self) -> bool:
        return any(c.takes for c in self.classes)

    @property
    def pad_channels(self) -> bool:
        return any(
            op == "pad_channels"
            for f in self.functions
            for outcome in f.cases.values()
            for op, _ in (outcome.layers if outcome else ())
        )

    @property
    def from_input(self) -> bool:
        return any(f.marks for f in self.functions)

    @property
    def first_dilation(self) -> bool:
        return any(s.first_dilation is not None for s in self.stages)

    def uses(self, op: str) -> bool:
        """Whether any module of the network is a layer of type `op` (its helper is written)."""
        return any(op in unit.ops for unit in self.all_units())

    @property
    def divisible(self) -> bool:
        """Whether a width is computed by `make_divisible` (squeeze-excitation's)."""
        return any(
            isinstance(value, Divisible)
            for unit in self.all_units()
            for fields in unit.fields
            for value in fields.values()
        )

    def all_units(self):
        """Every unit of the model and its block classes."""
        yield from self.stem
        yield from self.head
        for cls in self.classes:
            yield from cls.pre + cls.branch + cls.post

    def _check_layers(self) -> str:
        """Reports the layers whose values helpers compute rather than state and that would
        not come out as the IR has them (see `_implied`). Returns squeeze-excitation's gate,
        which the SqueezeExcite class fixes for the whole network."""
        network = self.network
        layers = [*network.stem.layers, *network.head.layers]
        for _, block in self.runs:
            layers += block.layers
        for layer in layers:
            if (text := _implied(layer, network)) is not None:
                self.problem(text)
        gates = sorted({x.gate for x in layers if isinstance(x, SqueezeExciteLayer)})
        if len(gates) > 1:
            self.problem(f"squeeze-excitations of several gates ({', '.join(gates)})")
        return gates[0] if gates else "sigmoid"

    # ----------------------------------------------------------------- units

    def units(self, layers, fields: list[dict], block: bool = False) -> list[_Unit]:
        """`layers` as the attributes they occupy, in order: a dotted name `conv1.3` puts a
        layer in Sequential `conv1` at index 3. In a block, a layer that only applies the
        stride (`_optional`) is a unit of its own, registered where the block strides."""
        units: list[_Unit] = []
        for layer, values in zip(layers, fields, strict=True):
            attr, _, index = layer.torch.partition(".")
            optional = block and _optional(layer)
            last = units[-1] if units else None
            if index and last is not None and last.sequential and last.attr == attr:
                if index != str(len(last.ops)) or optional or last.optional:
                    self.problem(f"layer `{layer.torch}` out of its Sequential's order")
                last.ops.append(layer.op)
                last.fields.append(values)
                continue
            if index and index != "0":
                self.problem(f"layer `{layer.torch}` out of its Sequential's order")
            units.append(_Unit(attr, [layer.op], [values], bool(index), optional))
        return units

    def _model_units(self, layers) -> list[_Unit]:
        """The stem's or the head's units; the classifier's width is `num_classes`."""
        fields = []
        for layer in layers:
            values = _fields(layer)
            if isinstance(layer, PadChannelsLayer):
                self.problem("a channel padding outside a shortcut")
            if getattr(layer, "zero_init", False):
                self.problem("a layer outside the blocks that starts at zero")
            classifier = layer is layers[-1] and layer.op == "linear"
            if classifier and values["out_features"] == self.network.classes:
                values["out_features"] = Sym("num_classes")
            fields.append(values)
        return self.units(layers, fields)

    # ----------------------------------------------------------------- block classes

    def _shortcut_attribute(self) -> str | None:
        """The block attribute every shortcut's layers live under (torchvision's `downsample`)."""
        attrs = set()
        for _, block in self.runs:
            for index, layer in enumerate(block.shortcut.layers):
                attr, _, rest = layer.torch.partition(".")
                attrs.add(attr)
                if rest != str(index):
                    self.problem(f"shortcut layer `{layer.torch}` out of its Sequential's order")
        if len(attrs) > 1:
            self.problem(f"shortcut layers under several names ({', '.join(sorted(attrs))})")
        return min(attrs) if attrs else None

    def _classes(self) -> list[_BlockClass]:
        """Blocks grouped by structure, each group's fields abstracted and checked against
        every block of it. A layer that only applies the stride (`_optional`) does not count
        (see `_key`): a stage's strided block and its others share a class, which registers
        that layer only where it strides. Strided blocks whose such layers differ (or that have
        none) get classes of their own, and blocks at stride 1 without any join each of those."""
        by_key: dict[tuple, list[Block]] = {}
        for _, block in self.runs:
            members = by_key.setdefault(_key(block), [])
            if block not in members:
                members.append(block)
        classes = []
        for members in by_key.values():
            # A block at stride 1 has such layers where its dilation changes (timm's `use_aa`).
            variants = list(dict.fromkeys(_variant(b) for b in members if _variant(b)))
            plain = any(b.stride != 1 and not _variant(b) for b in members)
            for variant in variants + [()] * (plain or not variants):
                group = [
                    b
                    for b in members
                    if _variant(b) == variant or (b.stride == 1 and not _variant(b))
                ]
                classes.append(self._class(group))
        _name_classes(classes)
        return classes

    def _class(self, members: list[Block]) -> _BlockClass:
        """The class of blocks of one structure: their layers' fields abstracted, checked by
        rebuilding every block."""
        template = next((b for b in members if _variant(b)), members[0])
        layers = _layers(template)
        # The template's layers first: the abstraction follows the first of each column.
        others = [b for b in members if b is not template]
        aligned = [_align(layers, _layers(b)) for b in [template, *others]]
        fields = [
            _abstract(
                [row[i] for row in aligned if row[i] is not None],
                _BLOCK_SYMBOLS if self.two_dilations else _BLOCK_SYMBOLS - {"first_dilation"},
                _block_widths(template),
            )
            for i in range(len(layers))
        ]
        used = _symbols(fields)
        redilated = "first_dilation" in used or any(b.two_dilations for b in members)
        for block in members:
            env = _block_env(block, self.two_dilations)
            if not redilated:  # a class without `first_dilation` registers by the stride
                env.pop("first_dilation", None)
            rebuilt = [
                (x.torch, x.op, _instantiate(f, env))
                for x, f in zip(layers, fields, strict=True)
                if not (_optional(x) and not _registered(env))
            ]
            if rebuilt != [(x.torch, x.op, _fields(x)) for x in _layers(block)]:
                self.problem(f"a {_describe(block)} block that no class rebuilds")
            if not block.pre and block.shortcut.source == "preactivated":
                self.problem("a shortcut that reads a pre-activation its block lacks")
        cut = [len(template.pre), len(template.pre) + len(template.branch)]
        if redilated:  # `first_dilation` defaults to `dilation`
            used |= {"dilation", "first_dilation"}
        return _BlockClass(
            name="",
            blocks=members,
            layers=layers,
            pre=self.units(template.pre, fields[: cut[0]], block=True),
            branch=self.units(template.branch, fields[cut[0] : cut[1]], block=True),
            post=self.units(template.post, fields[cut[1] :], block=True),
            takes=[name for name in _OPTIONS if name in used],
            sources={b.shortcut.source for b in members if b.shortcut.layers},
            adds=template.shortcut.kind != "none",
        )

    def stage_class(self, stage) -> _BlockClass:
        """The class of a stage's blocks. Blocks at stride 1 may belong to several classes (see
        `_classes`): the stage's holds all its blocks (else, for `_stage` to report, its
        first block's)."""
        blocks = [run.block for run in stage.runs]
        whole = (c for c in self.classes if all(b in c.blocks for b in blocks))
        return next(whole, next(c for c in self.classes if blocks[0] in c.blocks))

    # ----------------------------------------------------------------- shortcuts

    def outcome(self, block: Block) -> _Outcome | None:
        """A block's shortcut as a function writes it (None: the identity), checked."""
        if id(block) in self._outcomes:
            return self._outcomes[id(block)]
        outcome = None
        if block.shortcut.layers:
            env = _shortcut_env(block)
            parts = []
            for layer in block.shortcut.layers:
                fields = _abstract([layer], frozenset(env), _SHORTCUT_WIDTHS)
                if _instantiate(fields, env) != _fields(layer):
                    self.problem(f"a {block.shortcut.kind} shortcut that no function rebuilds")
                parts.append((layer.op, tuple(sorted(fields.items()))))
            outcome = _Outcome(block.shortcut.source, tuple(parts))
        self._outcomes[id(block)] = outcome
        self.rank.setdefault(outcome, len(self.rank))
        return outcome

    def _functions(self) -> list[_Function]:
        """Stages' cases joined into as few functions as agree: a stage joins the function
        that shares the most of its cases and contradicts none, else starts one; then
        functions that do not contradict each other join."""
        functions: list[_Function] = []
        for stage in self.network.stages:
            cases: dict[_Cell, _Outcome | None] = {}
            for run in stage.runs:
                outcome = self.outcome(run.block)
                if cases.setdefault(_cell(run.block), outcome) != outcome:
                    self.problem(f"two shortcuts for one width and stride in stage {stage.name}")
            shared = [
                (sum(c in f.cases for c in cases), -number, f)
                for number, f in enumerate(functions)
                if _compatible(f.cases, cases)
            ]
            best = max(shared, key=lambda t: t[:2], default=(0, 0, None))
            target = best[2] if best[0] else _Function({})
            if target is not best[2]:
                functions.append(target)
            target.cases.update(cases)
            target.stages.append(stage)
            target.kinds |= {r.block.shortcut.kind for r in stage.runs if r.block.shortcut.layers}
        joined = True
        while joined:
            joined = False
            for a, b in itertools.combinations(functions, 2):
                if _compatible(a.cases, b.cases):
                    a.cases.update(b.cases)
                    a.stages += b.stages
                    a.kinds |= b.kinds
                    functions.remove(b)
                    joined = True
                    break
        for function in functions:
            function.chain = _chain(function.cases, self.rank)
            # A class whose shortcuts read both inputs tells them apart by `FromInput`.
            function.marks = any(
                len(self.stage_class(stage).sources) > 1 for stage in function.stages
            )
        _name_functions(functions)
        return functions

    # ----------------------------------------------------------------- stages

    def _stage(self, stage) -> _StageCall:
        """The stage's make_stage call, checked by expanding it as make_stage's loop does and
        comparing each block with the IR's."""
        blocks = [block for _, s, _, block in self.network.blocks() if s is stage]
        first = blocks[0]
        cls = self.stage_class(stage)
        strided = [position for position, b in enumerate(blocks) if b.stride != 1]
        # The options of the blocks after the first; the first may dilate otherwise. A class
        # with timm's two dilations is given `first_dilation`; else it replaces `dilation`.
        passes_first = "first_dilation" in cls.takes
        body = _block_env(blocks[-1], passes_first)
        options = {name: body[name] for name in cls.takes if name != "first_dilation"}
        first_dilation = None
        if "dilation" in options and first.dilation != options["dilation"]:
            first_dilation = first.dilation
            if passes_first != self.two_dilations:
                self.problem(f"stage {stage.name}, whose dilations make_stage cannot pass")
        call = _StageCall(
            attr=stage.torch_prefix(0).rpartition(".")[0],
            block=cls,
            blocks=len(blocks),
            in_channels=first.in_channels,
            mid_channels=first.mid_channels,
            out_channels=first.out_channels,
            stride=blocks[strided[0]].stride if strided else 1,
            stride_last=len(blocks) > 1 and strided == [len(blocks) - 1],
            options=options,
            first_dilation=first_dilation,
            passes_first=passes_first,
            function=next((f for f in self.functions if stage in f.stages), None),
            first_index=stage.runs[0].first_index,
        )
        for given, block in zip(call.expand(), blocks, strict=True):
            env = _block_env(block, passes_first)
            actual = {name: env.get(name) for name in given}
            if block not in cls.blocks or given != actual:
                self.problem(f"stage {stage.name}, which make_stage cannot rebuild")
            shortcut = _select(call.function.chain, _cell(given)) if call.function else None
            if shortcut != self.outcome(block):
                self.problem(f"the shortcuts of stage {stage.name}")
        return call


def _layers(block: Block) -> list:
    return [*block.pre, *block.branch, *block.post]


def _key(block: Block) -> tuple:
    """A block's structure as a class sees it: without the layers that only apply the stride
    (`_optional`), and with the convolution before such a layer counted as the one that
    strides, as it is in the blocks of the stage that stride by 1 and lack the layer."""
    key = []
    for part in _parts(block):
        kept = []
        for layer in part:
            if not _optional(layer):
                kept.append(layer)
                continue
            convs = [i for i, x in enumerate(kept) if isinstance(x, ConvLayer)]
            if convs:
                kept[convs[-1]] = kept[convs[-1]].model_copy(update={"strided": True})
        key.append(tuple(_structure(x) for x in kept))
    # A plain block (`shortcut none`) adds nothing: a class of its own.
    key.append(block.shortcut.kind == "none")
    return tuple(key)


def _variant(block: Block) -> tuple:
    """The layers of a block that only apply its stride (`_optional`), where they are."""
    return tuple((i, _structure(x)) for i, x in enumerate(_layers(block)) if _optional(x))


def _align(template: list, layers: list) -> list:
    """`layers` against the layers of `template`: None where `template` has a layer that only
    applies the stride and `layers` do not (a block at stride 1). Whatever does not align is
    left for the rebuild check to report."""
    out, rest = [], list(layers)
    for layer in template:
        if _optional(layer) and not (rest and _optional(rest[0])):
            out.append(None)
        else:
            out.append(rest.pop(0) if rest else None)
    return out


def _parts(block: Block) -> tuple:
    return (block.pre, block.branch, block.post)


def _describe(block: Block) -> str:
    return f"{block.in_channels}->{block.out_channels} stride-{block.stride}"


def _kernel(layer: ConvLayer) -> str:
    return f"{layer.conv.kernel}x{layer.conv.kernel}"


def _name_classes(classes: list[_BlockClass]) -> None:
    """`BasicBlock`, `Bottleneck`, `PreActBasicBlock`, `PreActBottleneck` from the blocks' layout
    and pre-activation; classes that share one are told apart by the convolution that strides
    (`BottleneckStride1x1`), then numbered."""
    for cls in classes:
        block = cls.blocks[0]
        base = "Bottleneck" if block.layout == "bottleneck" else "BasicBlock"
        cls.name = ("PreAct" if block.preact else "") + ("Plain" if not cls.adds else "") + base
    strides = {id(c): _stride_name(c) for c in classes}
    for name in {c.name for c in classes}:
        same = [c for c in classes if c.name == name]
        if len({strides[id(c)] for c in same}) > 1:
            for cls in same:
                cls.name += strides[id(cls)]
    taken: set[str] = set()
    for cls in classes:
        base, number = cls.name + ("_" if cls.name[-1].isdigit() else ""), 2
        while cls.name in taken:
            cls.name, number = f"{base}{number}", number + 1
        taken.add(cls.name)


def _stride_name(cls: _BlockClass) -> str:
    """What applies the class's stride: `Stride3x3` (its convolution), `BlurPool`, `AvgPool`
    (anti-aliasing)."""
    pools = [x for x in cls.layers if _optional(x)]
    if pools:
        return "".join(
            _POOL_NAMES[x.pool.kind if isinstance(x, PoolLayer) else x.op] for x in pools
        )
    strided = [x for x in cls.layers if isinstance(x, ConvLayer) and x.strided]
    return "Stride" + "_".join(_kernel(x) for x in strided)


_POOL_NAMES = {"blur": "BlurPool", "avg": "AvgPool", "max": "MaxPool"}


# A function is named by the IR's shortcut kinds it returns, in this order; `pool_project`
# includes `project` (a pool-project of stride 1 is a projection), `pad` includes `subsample`.
_KINDS = ("project", "pool_project", "pad", "subsample")
_IMPLIED = {"project": "pool_project", "subsample": "pad"}
_FEATURES = ("avgpool", "maxpool", "normed", "biased")


def _name_functions(functions: list[_Function]) -> None:
    """`project`, `pool_project`, `pad`, `project_or_subsample`, ...; functions of one name are
    told apart by a layer only one of them has (`avgpool_pad`, `normed_project`), then
    numbered."""
    for function in functions:
        kinds = [k for k in _KINDS if k in function.kinds and _IMPLIED.get(k) not in function.kinds]
        function.name = "_or_".join(kinds) or "identity"
    features = {id(f): _features(f) for f in functions}
    for name in sorted({f.name for f in functions}):
        same = [f for f in functions if f.name == name]
        for function in same if len(same) > 1 else ():
            others = set().union(*(features[id(f)] for f in same if f is not function))
            unique = [w for w in _FEATURES if w in features[id(function)] - others]
            if unique:
                function.name = f"{unique[0]}_{function.name}"
    taken: set[str] = set()
    for function in functions:
        base, number = function.name, 2
        while function.name in taken:
            function.name, number = f"{base}_{number}", number + 1
        taken.add(function.name)


def _features(function: _Function) -> set[str]:
    words = set()
    for outcome in function.cases.values():
        for op, values in outcome.layers if outcome else ():
            fields = dict(values)
            if op == "pool":
                words.add("avgpool" if fields["kind"] == "avg" else "maxpool")
            elif op == "norm":
                words.add("normed")
            elif op == "conv" and fields["bias"]:
                words.add("biased")
    return words


# --------------------------------------------------------------------------- rendering


def _register(
    plan: _Plan, units: list[_Unit], seen: dict[str, _Unit], where: str = "stride != 1"
) -> list[str]:
    """`self.attr = module` for each unit not registered yet; a unit met again (the activation
    that a block or the model shares) is the module registered first. `_optional` units are
    registered `where` the class says (see `_registered`)."""
    lines = []
    for unit in units:
        if unit.attr in seen:
            if (seen[unit.attr].ops, seen[unit.attr].fields) != (unit.ops, unit.fields):
                plan.problem(f"two different layers named `{unit.attr}`")
            continue
        seen[unit.attr] = unit
        parts = [
            _EMITTERS[op](values, plan.activation)
            for op, values in zip(unit.ops, unit.fields, strict=True)
        ]
        module = Call("nn.Sequential", tuple(parts)) if unit.sequential else parts[0]
        if unit.optional:  # as timm: an identity where the block does not stride
            module = Choice(module, where, "nn.Identity()")
        lines += _layout(f"self.{unit.attr} = ", module, 2)
    return lines


def _statements(units: list[_Unit], conv_last: bool = False) -> list[list[_Unit]]:
    """Units grouped into chained statements, one convolution each: a norm and an activation
    join the convolution before them, or with `conv_last` (a pre-activation branch, which ends
    with a convolution) the one after them. Parameter-free reshapes stand alone."""
    groups: list[list[_Unit]] = []
    for unit in units:
        last = groups[-1] if groups else None
        if (
            last is None
            or not unit.chains
            or not last[-1].chains
            or (conv_last and last[-1].convolves)
            or (not conv_last and unit.convolves and any(u.convolves for u in last))
        ):
            groups.append([unit])
        else:
            last.append(unit)
    return groups


def _apply(units: list[_Unit], value: str) -> str:
    for unit in units:
        value = f"self.{unit.attr}({value})"
    return value


_STRIDERS = {"blur": "a blur pool", "avg": "an average pool", "max": "a max pool"}
_ATTENTION = {"se": "squeeze-excitation", "eca": "efficient channel attention"}


def _block_doc(cls: _BlockClass) -> str:
    """A sentence from the class's layers: its convolutions, where the norms go, what applies
    the stride where no convolution does, the channel attention."""
    sequence = [x for x in cls.layers if not isinstance(x, ActLayer)]
    convs = [x for x in sequence if isinstance(x, ConvLayer)]
    kernels = ", ".join(_kernel(x) + (" (strided)" if x.strided else "") for x in convs)
    extras = []
    for index, layer in enumerate(sequence):
        if _optional(layer):
            before = [x for x in sequence[:index] if isinstance(x, ConvLayer)]
            after = f" after the {_conv_name(before[-1], convs)}" if before else ""
            strider = _STRIDERS[layer.pool.kind if isinstance(layer, PoolLayer) else layer.op]
            extras.append(f"{strider}{after} applies the stride")
        elif isinstance(layer, EcaLayer) and layer.gamma is not None:
            rule = f"|log2(out_channels) + {_number(layer.beta)}| / {_number(layer.gamma)}"
            extras.append(
                f"efficient channel attention ends the branch (`eca_kernel`: {rule}, up to an"
                " odd number, at least 3)"
            )
        elif layer.op in _ATTENTION:
            extras.append(f"{_ATTENTION[layer.op]} ends the branch")
    tail = "".join(f"; {extra}" for extra in extras)
    if isinstance(sequence[0], NormLayer):
        plain = "" if cls.adds else "; no shortcut (a plain network)"
        return (
            f"Pre-activation: convolutions {kernels}, each after a norm and activation{tail}"
            f"{plain}."
        )
    normed = ", a norm after each" if any(isinstance(x, NormLayer) for x in sequence) else ""
    if not cls.adds:
        tail += ", the activation last" if cls.post else ""
        return f"Convolutions {kernels}{normed}{tail}; no shortcut (a plain network)."
    tail += "; the activation after the sum" if cls.post else ""
    return f"Convolutions {kernels}{normed}{tail}."


def _conv_name(conv: ConvLayer, convs: list) -> str:
    """`3x3`, or `first 3x3` where the class has several."""
    same = [x for x in convs if _kernel(x) == _kernel(conv)]
    if len(same) == 1:
        return _kernel(conv)
    index = same.index(conv)
    ordinal = _ORDINALS[index] if index < len(_ORDINALS) else f"#{index + 1}"
    return f"{ordinal} {_kernel(conv)}"


_ORDINALS = ("first", "second", "third", "fourth")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _render_class(plan: _Plan, cls: _BlockClass) -> str:
    seen: dict[str, _Unit] = {}
    init = []
    where = "stride != 1"
    if "first_dilation" in cls.takes:
        # timm's: the first convolution dilates as the stage unless the stage says otherwise.
        init.append(f"{INDENT * 2}first_dilation = first_dilation or dilation")
        where = "stride != 1 or first_dilation != dilation"
    init += _register(plan, cls.pre + cls.branch, seen, where)
    if plan.downsample:
        init.append(f"{INDENT * 2}self.{plan.downsample} = downsample")
    init += _register(plan, cls.post, seen)
    both = len(cls.sources) > 1
    if both:
        init.append(f"{INDENT * 2}self.reads_input = isinstance(downsample, FromInput)")
    if plan.drop_path:
        init.append(
            f"{INDENT * 2}self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()"
        )

    forward, value, identity = [], "x", "x"
    if cls.pre:
        forward.append(f"out = {_apply(cls.pre, 'x')}")
        value = "out"
    if plan.downsample and cls.adds:
        source = "out" if cls.sources == {"preactivated"} else "x"
        if both:
            source = "x if self.reads_input else out"
        attr = plan.downsample
        forward.append(f"shortcut = x if self.{attr} is None else self.{attr}({source})")
        identity = "shortcut"
    # A pre-activation branch ends with a convolution (before any attention): its norms and
    # activations join the convolution after them.
    chained = [op for unit in cls.branch if unit.chains for op in unit.ops]
    conv_last = bool(chained) and chained[-1] == "conv"
    for group in _statements(cls.branch, conv_last):
        forward.append(f"out = {_apply(group, value)}")
        value = "out"
    residual = "self.drop_path(out)" if plan.drop_path else "out"
    total = f"{residual} + {identity}" if cls.adds else residual
    forward.append(f"return {_apply(cls.post, total)}")

    signature = ["self", "in_channels: int", "mid_channels: int", "out_channels: int"]
    signature.append("stride: int = 1")
    if plan.downsample:
        signature.append("downsample: nn.Module | None = None")
    signature += [
        f"{name}: int = {default}" if default is not None else f"{name}: int | None = None"
        for name, default in ((n, _OPTION_DEFAULTS[n]) for n in cls.takes)
    ]
    if plan.drop_path:
        signature.append("drop_path: float = 0.0")
    return _render(
        "block.py.j2",
        name=cls.name,
        doc=_docstring(_block_doc(cls), 1),
        signature=_layout("def __init__", Call("", tuple(signature)), 1, " -> None:"),
        init=init,
        forward=[f"{INDENT * 2}{line}" for line in forward],
        zero=cls.zero,
    )


def _shortcut_module(plan: _Plan, outcome: _Outcome | None, marks: bool) -> str | Call:
    if outcome is None:
        return "None"
    parts = tuple(_EMITTERS[op](dict(values), plan.activation) for op, values in outcome.layers)
    return Call("FromInput" if marks and outcome.source == "input" else "nn.Sequential", parts)


def _render_function(plan: _Plan, function: _Function) -> str:
    body = []
    for case in function.chain:
        module = _shortcut_module(plan, case.outcome, function.marks)
        if case.condition is None:
            body += _layout("return ", module, 1)
        else:
            body.append(f"{INDENT}if {case.condition}:")
            body += _layout("return ", module, 2)
    outcomes = set(function.cases.values())
    if outcomes == {None}:
        returns, doc = "None", "A block's shortcut: always the identity."
    elif None in outcomes:
        returns = "nn.Module | None"
        doc = "A block's shortcut: None for the identity, else the module its input goes through."
    else:
        returns, doc = "nn.Module", "A block's shortcut: the module its input goes through."
    params = ("in_channels: int", "out_channels: int", "stride: int")
    return _render(
        "shortcut.py.j2",
        signature=_layout(f"def {function.name}", Call("", params), 0, f" -> {returns}:"),
        doc=doc,
        body=body,
    )


def _stage_line(plan: _Plan, call: _StageCall) -> list[str]:
    args = [call.block.name, f"blocks={call.blocks}"]
    args += [f"{k}={getattr(call, k)}" for k in ("in_channels", "mid_channels", "out_channels")]
    if call.stride != 1:
        args.append(f"stride={call.stride}")
    if call.stride_last:
        args.append("stride_last=True")
    args += [
        f"{name}={value}" for name, value in call.options.items() if value != _OPTION_DEFAULTS[name]
    ]
    if call.first_dilation is not None:
        args.append(f"first_dilation={call.first_dilation}")
    if len(plan.functions) > 1:
        args.append(f"shortcut={call.function.name}")
    if plan.drop_path:
        args.append(f"first_index={call.first_index}")
    return _layout(f"self.{call.attr} = ", Call("make_stage", tuple(args)), 2)


def _make_stage(plan: _Plan) -> dict:
    """make_stage's signature, docstring and the lines of its loop that vary."""
    several = len(plan.functions) > 1
    params = ["block: type[nn.Module]", "blocks: int"]
    params += ["in_channels: int", "mid_channels: int", "out_channels: int"]
    if several:
        params.append("shortcut: Callable[[int, int, int], nn.Module | None]")
    if plan.drop_path:
        params.append("first_index: int")
    params.append("stride: int = 1")
    if plan.stride_last:
        params.append("stride_last: bool = False")
    if plan.first_dilation:
        params.append("first_dilation: int | None = None")
    if plan.options:
        params.append("**options: int")
    doc = "A stage, as torchvision's `_make_layer`: its first block takes `in_channels` and "
    doc += "`stride` (its last, with `stride_last`)." if plan.stride_last else "`stride`."
    if several:
        doc += " `shortcut` makes each block's downsample."
    if plan.options:
        names = ["groups", "dilation"]
        names += [
            n
            for n in _OPTIONS
            if n not in (*names, "first_dilation") and any(n in c.takes for c in plan.classes)
        ]
        doc += f" `options` ({', '.join(names)}) go to every block"
        if not plan.first_dilation:
            doc += "."
        elif plan.two_dilations:
            doc += "; the first also takes `first_dilation`, the stage before's."
        else:
            doc += "; `first_dilation` replaces the first one's."
    block_args = ["channels", "mid_channels", "out_channels", "block_stride"]
    downsample = None
    if plan.downsample:
        function = "shortcut" if several else plan.functions[0].name
        downsample = f"downsample = {function}(channels, out_channels, block_stride)"
        block_args.append("downsample")
    if plan.drop_path:
        block_args.append("drop_path=drop_path_rate(first_index + index)")
    if plan.first_dilation:
        block_args.append("**(first_options if index == 0 else options)")
    elif plan.options:
        block_args.append("**options")
    return {
        "make_stage": _layout("def make_stage", Call("", tuple(params)), 0, " -> nn.Sequential:"),
        "make_stage_doc": _docstring(doc, 1),
        "downsample": downsample,
        "add_block": _layout("layers.append", Call("", (Call("block", tuple(block_args)),)), 2),
        "callable": several,
        "first_dilation": plan.first_dilation,
        # timm's convention passes it on, torchvision's replaces the first block's dilation
        "first_key": "first_dilation" if plan.two_dilations else "dilation",
    }


def _title(network: str, source: str) -> str:
    """The docstring's first line, which a long name breaks before `from`."""
    line = f'"""{network}: a residual network generated by resdsl {__version__} from `{source}`.'
    return line[3:] if len(line) <= LINE else line[3:].replace(" from `", "\nfrom `", 1)


def _spec_line(source: str, sha256: str) -> str:
    """The docstring's line naming the spec and its hash, which a long name moves below."""
    line = f"Spec: {source} (sha256 {sha256})"
    return line if len(line) <= LINE else f"Spec: {source}\n(sha256 {sha256})"


def _stage_loop(plan: _Plan) -> list[str]:
    """`for stage in (self.layer1, ...):`, laid out as ruff format would (a one-stage tuple keeps
    its comma)."""
    attrs = tuple(f"self.{call.attr}" for call in plan.stages)
    if len(attrs) == 1:
        return [f"{INDENT * 2}for stage in ({attrs[0]},):"]
    return _layout("for stage in ", Call("", attrs), 2, ":")


def _render_module(plan: _Plan) -> str:
    network = plan.network
    conventions = network.conventions
    seen: dict[str, _Unit] = {}
    stem_init = _register(plan, plan.stem, seen)
    head_init = _register(plan, plan.head, seen)
    # forward_features: the stem, the stages and what the head does before its pool (a
    # pre-activation net's final norm); forward: that, then the pool and the classifier.
    stem = [f"x = {_apply(group, 'x')}" for group in _statements(plan.stem)]
    features = [*stem, *(f"x = self.{call.attr}(x)" for call in plan.stages)]
    head = _statements(plan.head)
    pooled = next(i for i, group in enumerate(head) if group[0].ops == ["global_pool"])
    features += [f"x = {_apply(group, 'x')}" for group in head[:pooled]]
    features[-1] = "return " + features[-1].removeprefix("x = ")
    forward = ["x = self.forward_features(x)"]
    for group in head[pooled:]:
        forward.append(f"x = {_apply(group, 'x')}")
        if group[0].ops == ["global_pool"]:
            forward.append("x = torch.flatten(x, 1)")  # to a vector of features
    forward[-1] = "return " + forward[-1].removeprefix("x = ")

    zero_note = None
    if conventions.zero_last_norm:
        zero_note = (
            "zero_last_norm: each residual branch starts at zero (its last norm's weight in\n"
            "post-activation blocks, its last convolution's weight in pre-activation ones)."
        )
    return _render(
        "module.py.j2",
        network=network.name,
        source=network.source.file,
        title=_title(network.name, network.source.file),
        spec=_spec_line(network.source.file, network.source.sha256),
        input=str(network.input),
        classes=network.classes,
        params=f"{network.params:,}",
        blocks=network.total_blocks,
        init_scheme=conventions.init,
        zero_note=zero_note,
        pad_channels=plan.pad_channels,
        from_input=plan.from_input,
        functional=plan.pad_channels or plan.uses("blur"),
        has_norm=plan.uses("norm"),
        group_norm=conventions.norm == "group",
        norm_class="nn.GroupNorm" if conventions.norm == "group" else "nn.BatchNorm2d",
        norm_groups=conventions.norm_groups,
        eps=_float(conventions.norm_eps),
        momentum=_float(conventions.norm_momentum),
        blur_pool=plan.uses("blur"),
        squeeze_excite=plan.uses("se"),
        make_divisible=plan.divisible,
        gate=_GATES[plan.gate],
        eca=plan.uses("eca"),
        drop_path=plan.drop_path,
        drop_path_rate=_float(conventions.stochastic_depth),
        total_blocks=network.total_blocks,
        block_classes=[_render_class(plan, c) for c in plan.classes],
        functions=[_render_function(plan, f) for f in plan.functions],
        stride_last=plan.stride_last,
        **_make_stage(plan),
        model=plan.model,
        stem_init=stem_init,
        stage_init=[line for call in plan.stages for line in _stage_line(plan, call)],
        head_init=head_init,
        forward=[f"{INDENT * 2}{line}" for line in forward],
        forward_features=[f"{INDENT * 2}{line}" for line in features],
        stem_forward=[f"{INDENT * 2}{line}" for line in stem],
        stage_loop=_stage_loop(plan),
        glorot=conventions.init == "glorot",
        init_doc=_INIT_DOC[conventions.init],
        zero_last=any(c.zero for c in plan.classes),
    )


# --------------------------------------------------------------------------- templates


@lru_cache(maxsize=1)
def _environment():
    from resdsl.codegen.backends import template_environment

    return template_environment(Path(__file__).parent / "templates")


def _render(template: str, **values) -> str:
    return _environment().get_template(template).render(**values)


class TorchBackend:
    """PyTorch: a standalone module with the model class and `build_model`."""

    name = "torch"
    suffix = ".py"

    def __init__(self) -> None:
        # The last network planned, its problems and its text: `compile` asks for
        # `unsupported` and then `emit`, which should not plan and render twice.
        self._last: tuple[Network, list[str], str] | None = None

    def _build(self, network: Network) -> tuple[list[str], str]:
        if self._last is None or self._last[0] is not network:
            plan = _Plan(network)
            # Registering the modules checks shared names agree. Optional sections of the template
            # (a network without norms has no `norm` helper) leave runs of blank lines: two
            # separate top-level definitions, as ruff format writes them.
            text = re.sub(r"\n{4,}", "\n\n\n", _render_module(plan))
            self._last = (network, plan.problems, text)
        return self._last[1], self._last[2]

    def emit(self, network: Network) -> str:
        """The generated module's text: deterministic, formatted as ruff format would. Raises
        ValueError where :meth:`unsupported` reports problems."""
        problems, text = self._build(network)
        if problems:
            raise ValueError("the torch backend cannot express " + "; ".join(problems))
        return text

    def unsupported(self, network: Network) -> list[str]:
        """What the plan cannot rebuild exactly from the network's layers (nothing, for every
        network that elaboration makes today: the check guards the backend's own logic)."""
        return list(self._build(network)[0])


__all__ = ["TorchBackend"]
