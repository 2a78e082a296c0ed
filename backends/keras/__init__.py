"""The Keras 3 backend: a :class:`resdsl.ir.Network` to a standalone functional-model module.

The module reads like keras.applications' resnet.py: a function per distinct block structure
(`bottleneck_block`), the shortcut it takes as a function that tests the block's widths and
stride (`shortcut`), a function per stage layout (`stack`), and `build_model`, which lays out
the stem, one `stack` call per stage and the head. Only what the network uses is emitted.

Python builds the plan, the templates lay it out. Every line of layers comes from the IR's layer
lists through one emitter per layer type (:data:`EMITTERS`); names are the IR's (`layer.keras`,
a block's layers under its `{stage}_block{n}` prefix), so :func:`resdsl.interop.weights.layer_pairs`
pairs every layer with weights by construction. Blocks share a function when their emitted code,
with widths (`filters`, `first_filters`, `out_filters`, squeeze-excitation's `se_filters`),
ECA's kernel, stride and, where blocks differ in it, dilation as parameters, is the same; each
block is then checked against what will build it (its layers' numbers against their symbolic
widths and stride, its code against the function's, its shortcut against the branch its widths
and stride choose, its stage against the `stack` call), and a block that does not match is
reported through `unsupported`, never generated wrong. Anti-aliased blocks stride by a pool
after a convolution and blocks at stride 1 have none: one function builds both, the pool under
`if stride > 1`. Where a block needs two dilations at once (`Block.two_dilations`: a basic
block's two 3x3s in a dilated stage's first block, anti-aliasing where the dilation changes),
its function takes timm's pair, `dilation` (the stage's) and `first_dilation` (the block's
own), and anti-aliases under `if stride > 1 or first_dilation != dilation`.

Channel attention is a helper of the module (`squeeze_excite`, `efficient_channel_attention`)
whose layers are named after the IR's (`se_reduce`, `eca_conv`, ...); the blur pool is a small
layer of the module without weights (`BlurPool2D`); a group-norm network's `norm` is Keras'
GroupNormalization. Only what the network uses is emitted.

PyTorch's conventions are reproduced where Keras' defaults differ: convolutions that stride (and
all of a pre-activation block's, as keras' V2 nets) get an explicit symmetric ``ZeroPadding2D``
and a valid convolution (Keras' "same" pads only after at stride 2); norm momentum is converted
(PyTorch 0.1 is Keras 0.9); a stem's max pool after an activation that can be negative pads with
-inf; average pools that round up and ignore padding use Keras' "same" pooling, which does
exactly that for a 2x2 window at stride 2 on Keras' backends, and where a network's pool strides
by more than 2 (where "same" pads before too) a small layer of the module without weights
(`CeilAveragePooling2D`); a convolution that strides and dilates at once (Keras' refuses) runs
at stride 1 and keeps every `stride`-th pixel.

Compiling never imports keras or tensorflow.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import textwrap
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from resdsl.ir import (
    ActLayer,
    Block,
    BlurPoolLayer,
    ConvLayer,
    DropoutLayer,
    EcaLayer,
    GlobalPoolLayer,
    IdentityLayer,
    LinearLayer,
    Network,
    NormLayer,
    PadChannelsLayer,
    PoolLayer,
    Shortcut,
    SqueezeExciteLayer,
    Stage,
    weighted,
)

LINE = 100  # the project's ruff line length
INDENT = "    "
# From this many blocks, the generated module raises Python's recursion limit (Keras walks
# the graph recursively; ResNet-1202 needs it, ResNet-152 does not).
DEEP_GRAPH_BLOCKS = 100


class KerasBackend:
    """Keras 3 functional models, channels-last, on the tensorflow, torch or jax backends."""

    name = "keras"
    suffix = ".py"

    def __init__(self) -> None:
        # The last network planned: `compile` asks for `unsupported`, then `emit`.
        self._last: tuple[Network, object, list[str]] | None = None

    def _plan(self, network: Network):
        if self._last is None or self._last[0] is not network:
            self._last = (network, *plan(network))
        return self._last[1], self._last[2]

    def emit(self, network: Network) -> str:
        """The generated module's text. Raises ValueError where :meth:`unsupported` reports
        problems."""
        module, problems = self._plan(network)
        if problems:
            raise ValueError("the keras backend cannot express " + "; ".join(problems))
        return _template().render(vars(module))

    def unsupported(self, network: Network) -> list[str]:
        """What the plan cannot rebuild exactly from the network's layers."""
        return list(self._plan(network)[1])


class PlanError(ValueError):
    """Something the plan cannot express, reported through `unsupported`."""


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Function:
    """A generated function: its `def` line(s), its docstring (wrapped) and its body's lines."""

    head: str
    doc: str
    body: tuple[str, ...]


@dataclass(frozen=True)
class ConvHelper:
    """`conv`, with the parameters the network uses and nothing else."""

    head: str
    pad_doc: str
    padding: str
    explicit: str
    init: tuple[str, ...]
    options: tuple[str, ...]
    subsample: bool  # some call may stride and dilate at once


@dataclass(frozen=True)
class NormHelper:
    """`norm`: batch norm (with PyTorch's momentum converted) or group norm, the network's."""

    group: bool
    groups: int
    epsilon: str
    momentum: str
    torch_momentum: str
    zero: bool


@dataclass(frozen=True)
class AttentionHelper:
    """`squeeze_excite` or `efficient_channel_attention`: the gate of squeeze-excitation, how
    its 1x1 convolutions ask `conv` for a bias, and ECA's kernel initializer (if any)."""

    gate: str = "sigmoid"
    bias: str = ""
    init: str = ""


@dataclass(frozen=True)
class DropPath:
    rate: str
    blocks: int
    formula: str


@dataclass(frozen=True)
class Module:
    """Everything the template lays out, every string computed here."""

    name: str
    version: str
    source: str
    sha256: str
    input_shape: str
    classes: int
    recursion_limit: bool
    conv: ConvHelper
    norm: NormHelper | None
    squeeze_excite: AttentionHelper | None
    eca: AttentionHelper | None
    channel_pad: bool
    minus_inf_padding: bool
    blur_pool: bool
    ceil_pool: bool
    drop_path: DropPath | None
    functions: tuple[Function, ...]


# --------------------------------------------------------------------------- source text


def _string(text: str) -> str:
    """A Python string literal of `text`."""
    return json.dumps(text, ensure_ascii=False)


def _prefixed(text: str) -> str:
    """An f-string literal of `text` under the enclosing function's `name` argument."""
    return "f" + _string("{name}_" + text.replace("{", "{{").replace("}", "}}"))


def _float(value: float) -> str:
    return repr(float(value))


@dataclass(frozen=True)
class Apply:
    """One layer (or helper) on one input: a Keras layer is `func(*args)(input)`, a helper of
    the module `func(input, *args)`."""

    func: str
    args: tuple[str, ...] = ()
    helper: bool = False
    comment: str = ""
    guard: str = ""  # a condition the statement runs under (`stride > 1`)


def _statement(target: str, apply: Apply, source: str, depth: int = 1) -> list[str]:
    """`target = ...` (or `return ...` when `target` is "return") as ruff formats it: on one
    line when it fits, otherwise one argument per line with a trailing comma; under an `if`
    where the apply has a guard."""
    if apply.guard:
        if target != source:  # skipped, the statement would leave `target` unset
            raise PlanError("a layer that runs only where the block strides, first or last")
        pad = INDENT * depth
        lines = _comment(apply.comment, pad) if apply.comment else []
        inner = Apply(apply.func, apply.args, apply.helper)
        return [*lines, f"{pad}if {apply.guard}:", *_statement(target, inner, source, depth + 1)]
    pad = INDENT * depth
    lead = f"{pad}return " if target == "return" else f"{pad}{target} = "
    args = [source, *apply.args] if apply.helper else list(apply.args)
    tail = ")" if apply.helper else f")({source})"
    lines = _comment(apply.comment, pad) if apply.comment else []
    flat = f"{lead}{apply.func}({', '.join(args)}{tail}"
    if len(flat) <= LINE:
        return [*lines, flat]
    return [*lines, f"{lead}{apply.func}(", *(f"{pad}{INDENT}{a}," for a in args), pad + tail]


def _chain(applies: list[Apply], source: str, target: str, last: str, depth: int = 1) -> list:
    """Applies in order, the first on `source`, the others on `target`; the last assigns to
    `last` (or returns)."""
    lines: list[str] = []
    for number, apply in enumerate(applies):
        into = last if number == len(applies) - 1 else target
        lines += _statement(into, apply, source if number == 0 else target, depth)
    return lines


def _head(name: str, params: list[str]) -> str:
    flat = f"def {name}({', '.join(params)}):"
    if len(flat) <= LINE:
        return flat
    return "\n".join([f"def {name}(", *(f"{INDENT}{p}," for p in params), "):"])


def _doc(text: str, depth: int = 1) -> str:
    """A docstring with its quotes, wrapped so that its lines fit."""
    pad = INDENT * depth
    lines = textwrap.wrap(
        f'"""{text}"""', LINE - len(pad), break_long_words=False, break_on_hyphens=False
    )
    return f"\n{pad}".join(lines)


def _comment(text: str, pad: str) -> list[str]:
    return [
        f"{pad}# {line}"
        for line in textwrap.wrap(text, LINE - len(pad) - 2, break_on_hyphens=False)
    ]


# --------------------------------------------------------------------------- emitters


@dataclass
class Scope:
    """How a layer's numbers and names read where it is emitted: in the stem and the head as
    literals (`widths` None); in a function that builds several blocks, widths and stride as
    its parameters (`widths` maps the IR's "mid", "out" to them; `stride` is None where the
    function has none) and names under its `name` argument."""

    widths: dict[str, str] | None = None
    stride: str | None = None
    pad: bool = False  # pad convolutions explicitly at any stride (keras' V2 blocks)
    dilation: str | None = None  # the dilation parameter, where the function's blocks differ
    # timm's two dilations (`Block.two_dilations`): the parameter of the convolutions that
    # dilate by the block's own, where `dilation` is the stage's
    first_dilation: str | None = None
    kernel: str | None = None  # ECA's kernel parameter
    # where layers that apply the stride in place of a convolution run: `stride > 1` (and, with
    # two dilations, where the dilation changes, as timm's `use_aa`)
    guard: str = ""

    def name(self, keras: str) -> str:
        return _string(keras) if self.widths is None else _prefixed(keras)

    def width(self, symbol: str, value: int | None) -> str:
        if self.widths is None:
            if value is None:
                raise PlanError(f"a width ({symbol}) outside a block")
            return str(value)
        if symbol not in self.widths:
            raise PlanError(f"a layer of the block's `{symbol}` width")
        return self.widths[symbol]

    def stride_of(self, strided: bool, value: int) -> str | None:
        """A layer's stride argument; None where it is 1."""
        if strided and self.widths is not None:
            return self.stride
        return None if value == 1 else str(value)

    def eca_kernel(self, value: int) -> str:
        if self.widths is None:
            return str(value)
        if self.kernel is None:
            raise PlanError("channel attention's kernel in a function without it")
        return self.kernel

    def guarded(self, applies: list[Apply], comment: str) -> list[Apply]:
        """`applies` (a layer that strides where a convolution no longer does) under
        `if stride > 1`, in a function that builds blocks of any stride."""
        if not self.guard:
            return applies
        first, *rest = applies
        return [
            dataclasses.replace(first, guard=self.guard, comment=first.comment or comment),
            *(dataclasses.replace(apply, guard=self.guard) for apply in rest),
        ]


@dataclass
class Context:
    """What every emitter shares: the network's conventions, and what the emitted code uses
    (`uses`), from which the helpers' parameters follow."""

    activation: str
    kaiming: bool
    classes: int
    bias: set[bool]
    uses: set[str] = field(default_factory=set)
    gates: set[str] = field(default_factory=set)  # squeeze-excitation's
    # Where a shortcut's ceil-mode average pool strides by more than 2, every one is a
    # `CeilAveragePooling2D` (Keras' "same" pooling pads before the input there).
    ceil_pool_layer: bool = False


def _conv(layer: ConvLayer, scope: Scope, ctx: Context, previous) -> list[Apply]:
    c = layer.conv
    # `conv` pads by the IR's padding: by default PyTorch's "same-size" padding, and where that
    # is not the IR's (an even kernel, padded by half of it on both sides), by `pad_by`. The
    # padding layer is named after the convolution (`2_conv`, `2_pad`).
    if not layer.keras.endswith("_conv"):
        raise PlanError(f"a convolution named `{layer.keras}`, not `*_conv`")
    args = [scope.width(layer.target, c.out_channels), str(c.kernel), scope.name(layer.keras)]
    dilation = str(c.dilation) if c.dilation != 1 else None
    if scope.dilation and c.kernel > 1:
        own = scope.first_dilation and not layer.stage_dilated
        dilation = scope.first_dilation if own else scope.dilation
    options = {
        "stride": scope.stride_of(layer.strided, c.stride),
        "groups": str(c.groups) if c.groups != 1 else None,
        "dilation": dilation,
        "pad": "True" if scope.pad and c.padding else None,
        "pad_by": str(c.padding) if c.padding != c.dilation * (c.kernel - 1) // 2 else None,
        "bias": "True" if len(ctx.bias) > 1 and c.bias else None,
        "zero": "True" if layer.zero_init else None,
    }
    for key, value in options.items():
        if value is not None:
            args.append(f"{key}={value}")
            ctx.uses.add(f"conv.{key}")
    if options["stride"] is not None and options["dilation"] is not None:
        ctx.uses.add("conv.subsample")  # Keras' Conv2D does not stride and dilate at once
    return [Apply("conv", tuple(args), helper=True)]


def _norm(layer: NormLayer, scope: Scope, ctx: Context, previous) -> list[Apply]:
    ctx.uses.add("norm")
    args = [scope.name(layer.keras)]
    if layer.zero_init:
        ctx.uses.add("norm.zero")
        args.append("zero=True")
    return [Apply("norm", tuple(args), helper=True)]


def _act(layer: ActLayer, scope: Scope, ctx: Context, previous) -> list[Apply]:
    name = f"name={scope.name(layer.keras)}"
    return [Apply("layers.Activation", (_string(ctx.activation), name))]


ANTI_ALIAS = (
    "Anti-aliasing: where the block strides, {what} applies the stride after the "
    "activation, in place of the convolution."
)


def _pool(layer: PoolLayer, scope: Scope, ctx: Context, previous) -> list[Apply]:
    if layer.strided and scope.guard:  # in a block's branch, only anti-aliasing strides so
        what = ANTI_ALIAS.format(what="an average pool")
        return scope.guarded(_pool_applies(layer, scope, ctx, previous), what)
    return _pool_applies(layer, scope, ctx, previous)


def _pool_applies(layer: PoolLayer, scope: Scope, ctx: Context, previous) -> list[Apply]:
    p = layer.pool
    stride = scope.stride_of(layer.strided, p.stride) or "1"
    kernel = stride if layer.strided and p.kernel == p.stride else str(p.kernel)
    name = f"name={scope.name(layer.keras)}"
    if p.ceil:
        # Checked in `_unsupported`: a `stride`x`stride` window, unpadded.
        if ctx.ceil_pool_layer:
            ctx.uses.add("CeilAveragePooling2D")
            return [Apply("CeilAveragePooling2D", (stride, name))]
        comment = (
            'At stride 2, "same" pads only after and leaves the padding out of the mean: '
            "PyTorch's ceil_mode=True, count_include_pad=False."
        )
        args = (kernel, f"strides={stride}", 'padding="same"', name)
        return [Apply("layers.AveragePooling2D", args, comment=comment)]
    applies = []
    pad_name = f"name={scope.name(layer.keras.removesuffix('_pool') + '_pad')}"
    if p.pad_after:
        # Zeros after each axis that the average counts (timm's AvgPool2dSame at stride 1).
        after = f"(0, {p.pad_after})"
        comment = "Zeros after each axis, which the average counts (timm's AvgPool2dSame)."
        applies.append(
            Apply("layers.ZeroPadding2D", (f"({after}, {after})", pad_name), comment=comment)
        )
    if p.padding:
        # Zeros pad a max pool as well as PyTorch's -inf where no value can be negative: after
        # a ReLU, and (keras.applications' choice, `zero_padded`) in stems without a norm.
        after_relu = isinstance(previous, ActLayer) and ctx.activation == "relu"
        if p.kind == "max" and not (p.zero_padded or after_relu):
            ctx.uses.add("MinusInfPadding2D")
            comment = f"{ctx.activation} can output negative values, where zeros would win the max."
            applies.append(Apply("MinusInfPadding2D", (str(p.padding), pad_name), comment=comment))
        else:
            applies.append(Apply("layers.ZeroPadding2D", (str(p.padding), pad_name)))
    cls = "layers.MaxPooling2D" if p.kind == "max" else "layers.AveragePooling2D"
    applies.append(Apply(cls, (kernel, f"strides={stride}", name)))
    return applies


def _blur(layer: BlurPoolLayer, scope: Scope, ctx: Context, previous) -> list[Apply]:
    # `BlurPool2D` pads (size - 1) // 2 before and size // 2 after, as the IR's blur pools.
    if layer.padding != ((layer.size - 1) // 2, layer.size // 2):
        raise PlanError(f"a blur pool (`{layer.keras}`) padded unlike Zhang's")
    ctx.uses.add("BlurPool2D")
    stride = scope.stride_of(layer.strided, layer.stride) or "1"
    args = (str(layer.size), f"strides={stride}", f"name={scope.name(layer.keras)}")
    apply = Apply("BlurPool2D", args)
    if layer.strided:
        return scope.guarded([apply], ANTI_ALIAS.format(what="a blur pool"))
    return [apply]


def _squeeze_excite(layer: SqueezeExciteLayer, scope: Scope, ctx: Context, previous):
    # `squeeze_excite` names its layers from the stem `name`: `se_reduce`, `se_expand` ...
    reduce, expand = layer.reduce.conv, layer.expand.conv
    if (layer.reduce.keras, layer.expand.keras) != (
        f"{layer.keras}_reduce",
        f"{layer.keras}_expand",
    ):
        raise PlanError(f"squeeze-excitation's convolutions not named after `{layer.keras}`")
    if (
        (reduce.kernel, expand.kernel, reduce.stride, expand.stride) != (1, 1, 1, 1)
        or (reduce.groups, expand.groups, reduce.dilation, expand.dilation) != (1, 1, 1, 1)
        or not (reduce.bias and expand.bias)
        or reduce.out_channels != expand.in_channels
        or reduce.in_channels != expand.out_channels
    ):
        raise PlanError(f"a squeeze-excitation (`{layer.keras}`) unlike Hu et al.'s")
    ctx.uses.add("squeeze_excite")
    ctx.gates.add(layer.gate)
    args = (scope.width(layer.reduce.target, reduce.out_channels), scope.name(layer.keras))
    return [Apply("squeeze_excite", args, helper=True)]


def _eca(layer: EcaLayer, scope: Scope, ctx: Context, previous) -> list[Apply]:
    if layer.conv.keras != f"{layer.keras}_conv" or layer.conv.kernel % 2 == 0:
        raise PlanError(f"an efficient channel attention (`{layer.keras}`) unlike Wang et al.'s")
    ctx.uses.add("efficient_channel_attention")
    args = (scope.eca_kernel(layer.conv.kernel), scope.name(layer.keras))
    return [Apply("efficient_channel_attention", args, helper=True)]


def _identity(layer: IdentityLayer, scope: Scope, ctx: Context, previous) -> list[Apply]:
    return []  # a place in PyTorch's Sequential; nothing in Keras


def _pad_channels(layer: PadChannelsLayer, scope: Scope, ctx: Context, previous) -> list[Apply]:
    ctx.uses.add("ChannelPad")
    return [Apply("ChannelPad", (scope.width("out", None), f"name={scope.name(layer.keras)}"))]


def _linear(layer: LinearLayer, scope: Scope, ctx: Context, previous) -> list[Apply]:
    classifier = layer.out_features == ctx.classes
    args = ["num_classes or NUM_CLASSES" if classifier else str(layer.out_features)]
    comment = ""
    if ctx.kaiming:
        comment = "PyTorch's default kernel for linear layers: uniform in +-1/sqrt(fan_in)."
        args.append(
            'kernel_initializer=keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")'
        )
    if not layer.bias:
        args.append("use_bias=False")
    if classifier:
        args.append("activation=classifier_activation")
    args.append(f"name={scope.name(layer.keras)}")
    return [Apply("layers.Dense", tuple(args), comment=comment)]


def _dropout(layer: DropoutLayer, scope: Scope, ctx: Context, previous) -> list[Apply]:
    return [Apply("layers.Dropout", (_float(layer.rate), f"name={scope.name(layer.keras)}"))]


def _global_pool(layer: GlobalPoolLayer, scope: Scope, ctx: Context, previous) -> list[Apply]:
    return [Apply("layers.GlobalAveragePooling2D", (f"name={scope.name(layer.keras)}",))]


EMITTERS = {
    ConvLayer: _conv,
    NormLayer: _norm,
    ActLayer: _act,
    PoolLayer: _pool,
    BlurPoolLayer: _blur,
    SqueezeExciteLayer: _squeeze_excite,
    EcaLayer: _eca,
    IdentityLayer: _identity,
    PadChannelsLayer: _pad_channels,
    LinearLayer: _linear,
    DropoutLayer: _dropout,
    GlobalPoolLayer: _global_pool,
}


def _applies(layers, scope: Scope, ctx: Context) -> list[Apply]:
    out: list[Apply] = []
    for number, layer in enumerate(layers):
        previous = layers[number - 1] if number else None
        out += EMITTERS[type(layer)](layer, scope, ctx, previous)
    return out


def _reproduces(layer, block: Block) -> bool:
    """Whether `layer`'s numbers are what its symbolic widths and stride give in `block`: the
    emitters write the symbols, so every block a function builds must agree with them."""
    widths = _widths(block)
    if isinstance(layer, ConvLayer):
        c = layer.conv
        return (
            c.in_channels == widths[layer.source]
            and c.out_channels == widths[layer.target]
            and (not layer.strided or c.stride == block.stride)
        )
    if isinstance(layer, NormLayer):
        return layer.channels == widths[layer.width]
    if isinstance(layer, PoolLayer):
        return not layer.strided or layer.pool.stride == block.stride
    if isinstance(layer, BlurPoolLayer):
        return not layer.strided or layer.stride == block.stride
    if isinstance(layer, SqueezeExciteLayer):
        return all(_reproduces(conv, block) for conv in (layer.reduce, layer.expand)) and (
            layer.reduce.conv.in_channels == widths[layer.width]
        )
    if isinstance(layer, EcaLayer):
        return layer.channels == widths[layer.width]
    if isinstance(layer, PadChannelsLayer):
        grow = block.out_channels - block.in_channels
        return (layer.before, layer.after) == (grow // 2, grow - grow // 2)
    return True


def _widths(block: Block) -> dict[str, int]:
    """A block's widths by the IR's symbols ("reduced": its squeeze-excitation's, if any)."""
    widths = {
        "in": block.in_channels,
        "first": block.first_channels,
        "mid": block.mid_channels,
        "out": block.out_channels,
    }
    for layer in block.branch:
        if isinstance(layer, SqueezeExciteLayer):
            widths["reduced"] = layer.reduce.conv.out_channels
    return widths


# --------------------------------------------------------------------------- shortcuts

VARIABLES = {"input": "x", "preactivated": "preact"}  # a block's tensors a shortcut reads

# The conditions a shortcut function tests: of the block's widths (`same`: its input has the
# output's channels) and of its stride. A case is one (same width, strided) pair.
LITERALS = {
    "strided": ("stride > 1", lambda same, strided: strided),
    "unstrided": ("stride == 1", lambda same, strided: not strided),
    "same": ("x.shape[-1] == filters", lambda same, strided: same),
    "wider": ("x.shape[-1] != filters", lambda same, strided: not same),
}
PREDICATES = [
    ("same",),
    ("wider",),
    ("strided",),
    ("unstrided",),
    ("unstrided", "same"),
    ("strided", "same"),
    ("unstrided", "wider"),
    ("strided", "wider"),
]


def _case(block: Block) -> tuple[bool, bool]:
    return block.in_channels == block.out_channels, block.stride > 1


def _holds(predicate: tuple[str, ...], case: tuple[bool, bool]) -> bool:
    return all(LITERALS[literal][1](*case) for literal in predicate)


def _route(case, chain, default):
    return next((key for predicate, key in chain if _holds(predicate, case)), default)


def _solve(cases: dict, sizes: dict, strided: bool):
    """The shortest if-chain that sends every case seen to its shortcut: [(predicate, key)]
    tried in order, and the default key. Ties go to the default with the most layers (early
    returns for the short ones), then to the order of first appearance."""
    keys = list(dict.fromkeys(cases.values()))
    if len(keys) == 1:
        return [], keys[0]
    predicates = [p for p in PREDICATES if strided or not ({"strided", "unstrided"} & set(p))]
    defaults = sorted(keys, key=lambda k: (-sizes[k], keys.index(k)))
    best = None
    for rank, default in enumerate(defaults):
        others = [k for k in keys if k != default]
        for order in itertools.permutations(others):
            for choice in itertools.product(predicates, repeat=len(order)):
                chain = list(zip(choice, order, strict=True))
                if all(_route(case, chain, default) == k for case, k in cases.items()):
                    cost = (sum(len(p) for p in choice), rank)
                    if best is None or cost < best[0]:
                        best = (cost, chain, default)
    if best is None:
        raise PlanError("a mix of shortcuts that widths and stride do not tell apart")
    return best[1], best[2]


def _shortcut_key(shortcut: Shortcut, ctx: Context) -> tuple:
    """A shortcut as its emitted code, widths and stride as parameters: equal keys, equal code."""
    scope = Scope(widths={"out": "filters"}, stride="stride")
    return (shortcut.source, tuple(_applies(shortcut.layers, scope, ctx)))


# --------------------------------------------------------------------------- blocks

# A block function's parameters for the IR's symbolic widths, in the order they are declared.
WIDTH_PARAMS = {"mid": "filters", "first": "first_filters", "out": "out_filters"}
SE_PARAM = "se_filters"  # squeeze-excitation's reduced width ("reduced")
ECA_PARAM = "eca_kernel"  # efficient channel attention's kernel
# Every parameter, for the code that tells block structures apart.
CANONICAL = ("filters", "first_filters", "out_filters", SE_PARAM, ECA_PARAM)


@dataclass
class BlockFunction:
    """One function for every block of one structure. `cases` maps each (same width, strided)
    case of its blocks to their shortcut's key, `shortcuts` each key to a shortcut with it.
    `forms` are its blocks as it builds them, in order: a block at stride 1 in a function
    with anti-aliasing has the anti-aliasing layer that it skips (see :func:`_aliased`)."""

    name: str
    key: tuple
    stages: list[Stage]
    cases: dict
    shortcuts: dict
    forms: list[Block]
    out_filters: bool = False  # some block's output is wider than its inner convolutions
    stride: bool = False  # some block strides
    first: bool = False  # the first convolution has a width of its own (`reduce_first`)
    reduced: bool = False  # squeeze-excitation: its reduced width
    kernel: bool = False  # efficient channel attention: its kernel
    dilation: bool = False  # blocks differ in dilation
    first_dilation: bool = False  # some stage's first block dilates unlike its others
    two_dilations: bool = False  # blocks take the stage's and their own (`Block.two_dilations`)

    @property
    def blocks(self) -> list[Block]:
        return [run.block for stage in self.stages for run in stage.runs]

    def params(self) -> list[str]:
        """The parameters a stage sets per block, after `x`: widths and ECA's kernel."""
        flags = {
            "filters": True,
            "first_filters": self.first,
            "out_filters": self.out_filters,
            SE_PARAM: self.reduced,
            ECA_PARAM: self.kernel,
        }
        return [name for name in CANONICAL if flags[name]]

    def scope(self) -> Scope:
        return _block_scope(
            self.forms[0].preact, self.params(), self.stride, self.dilation, self.two_dilations
        )


@dataclass(frozen=True)
class ShortcutFunction:
    """A shortcut function: the block tensors it reads (`sources`, "input" or "preactivated"),
    its other parameters, and its body."""

    name: str
    sources: tuple[str, ...]
    params: tuple[str, ...]
    body: tuple[str, ...]


def _block_scope(
    preact: bool, params, stride: bool, dilation: bool, two_dilations: bool = False
) -> Scope:
    widths = {symbol: name for symbol, name in WIDTH_PARAMS.items() if name in params}
    widths.setdefault("out", "filters")
    if SE_PARAM in params:
        widths["reduced"] = SE_PARAM
    # keras.applications' V2 (pre-activation) blocks pad explicitly at any stride, its V1
    # blocks by "same": the layer names (`_2_pad`) follow.
    return Scope(
        widths=widths,
        stride="stride" if stride else None,
        pad=preact,
        dilation="dilation" if dilation or two_dilations else None,
        first_dilation="first_dilation" if two_dilations else None,
        kernel=ECA_PARAM if ECA_PARAM in params else None,
        guard=" or ".join(["stride > 1"] * stride + ["first_dilation != dilation"] * two_dilations),
    )


def _block_body(block: Block, scope: Scope, ctx: Context, residual: tuple | None, drop: bool):
    """A block function's body, read from the block's layer lists: the pre-activation, the
    shortcut (`residual`: its call and the tensor it reads; None: the input), the branch,
    stochastic depth, the addition and the post-activation."""
    lines: list[str] = []
    source = "x"
    if block.pre:
        lines += _chain(_applies(block.pre, scope, ctx), "x", "preact", "preact")
        source = "preact"
    plain = block.shortcut.kind == "none"  # a plain network's block: the branch alone
    if plain:
        post = _applies(block.post, scope, ctx)
        lines += _chain(_applies(block.branch, scope, ctx), source, "x", "x" if post else "return")
        return lines + _chain(post, "x", "x", "return")
    if residual is None:
        lines.append(f"{INDENT}residual = x")
    else:
        lines += _statement("residual", *residual)
    lines += _chain(_applies(block.branch, scope, ctx), source, "x", "x")
    if drop:
        dropout = Apply(
            "layers.Dropout",
            ("drop_rate", "noise_shape=(None, 1, 1, 1)", f"name={_prefixed('drop')}"),
        )
        lines.append(f"{INDENT}if drop_rate:  # stochastic depth: drop whole branches in training")
        lines += _statement("x", dropout, "x", 2)
    add = Apply("layers.Add", (f"name={scope.name(block.add)}",))
    post = _applies(block.post, scope, ctx)
    lines += _statement("x" if post else "return", add, "[residual, x]")
    lines += _chain(post, "x", "x", "return")
    return lines


def _block_doc(block: Block, function: BlockFunction) -> str:
    convs = [layer for layer in block.branch if isinstance(layer, ConvLayer)]
    kernels = [f"{layer.conv.kernel}x{layer.conv.kernel}" for layer in convs]
    counts = {1: "One", 2: "Two", 3: "Three"}
    if len(set(kernels)) == 1 and len(kernels) in counts:
        what = f"{counts[len(kernels)]} {kernels[0]} convolution" + "s" * (len(kernels) > 1)
    else:
        what = ", ".join(kernels[:-1]) + f" and {kernels[-1]} convolutions"
    normed = any(isinstance(layer, NormLayer) for layer in (*block.pre, *block.branch))
    if block.preact:
        what += ", each after a norm and activation" if normed else ", each after the activation"
    elif normed:
        what += ", each followed by a norm"
    if block.shortcut.kind == "none":
        what += ", and no shortcut (a plain network)"
    ordinals = ["first", "second", "third"]
    labels = []
    for number, label in enumerate(kernels):
        if kernels.count(label) > 1 and number < len(ordinals):
            label = f"{ordinals[number]} {label}"
        labels.append(label)
    notes = []
    for number, layer in enumerate(convs):
        c = layer.conv
        facts = [f"has {c.groups} groups"] * (c.groups > 1)
        if function.dilation and c.kernel > 1:
            facts.append("is dilated by `dilation`")
        else:
            facts += [f"is dilated by {c.dilation}"] * (c.dilation > 1)
        facts += ["applies the stride"] * (layer.strided and function.stride)
        if facts:
            notes.append(f"the {labels[number]} " + " and ".join(facts))
    aa = _anti_alias(block)
    if aa is not None and function.stride:
        layer, offset = aa
        index = block.branch.index(layer) - offset
        pool = "a blur pool" if isinstance(layer, BlurPoolLayer) else "an average pool"
        after = labels[convs.index(block.branch[index])]
        notes.append(f"{pool} after the {after} applies the stride (anti-aliasing)")
    attention = {
        SqueezeExciteLayer: "squeeze-excitation",
        EcaLayer: "efficient channel attention",
    }
    ends = [attention[type(la)] for la in block.branch if type(la) in attention]
    if ends:
        notes.append(f"then {ends[0]}")
    return "; ".join([what, *notes]) + "."


def _anti_alias(block: Block) -> tuple | None:
    """An anti-aliased block's pool that strides after a convolution, and how many layers
    after that convolution it comes; None for other blocks."""
    if block.anti_alias == "none":
        return None
    for index, layer in enumerate(block.branch):
        if isinstance(layer, (BlurPoolLayer, PoolLayer)) and layer.strided:
            convs = [i for i, la in enumerate(block.branch[:index]) if isinstance(la, ConvLayer)]
            if convs:
                return layer, index - convs[-1]
    raise PlanError("an anti-aliased block without a pool after a convolution")


def _aliased(block: Block, variant: tuple | None) -> Block | None:
    """`block` as a function for anti-aliased blocks builds it: where `block` is at stride 1,
    the convolution that would take the stride does not, and the anti-aliasing pool `variant`
    follows it, as in the function (where it runs only at stride > 1). None where `block`
    cannot be seen so."""
    if variant is None or block.anti_alias != "none":
        return block
    layer, offset = variant
    strided = [i for i, la in enumerate(block.branch) if isinstance(la, ConvLayer) and la.strided]
    if block.stride != 1 or len(strided) != 1 or strided[0] + offset > len(block.branch):
        return None
    branch = list(block.branch)
    branch[strided[0]] = branch[strided[0]].model_copy(update={"strided": False})
    branch.insert(strided[0] + offset, layer)
    return block.model_copy(update={"branch": tuple(branch)})


def _symbols(block: Block) -> set[str]:
    """The symbolic widths of a block's pre-activation and branch."""
    symbols = set()
    for layer in (*block.pre, *block.branch):
        if isinstance(layer, ConvLayer):
            symbols |= {layer.source, layer.target}
        elif isinstance(layer, NormLayer):
            symbols.add(layer.width)
    return symbols


def _dilations(block: Block, with_kind: bool = False) -> tuple:
    """The dilations of a block's spatial convolutions (its shortcut's are literals); with
    `with_kind`, each with whether it is the stage's (`stage_dilated`)."""
    layers = (*block.pre, *block.branch)
    return tuple(
        (la.conv.dilation, la.stage_dilated) if with_kind else la.conv.dilation
        for la in layers
        if isinstance(la, ConvLayer) and la.conv.kernel > 1
    )


def _own_dilation(block: Block, two_dilations: bool, by_stage: bool) -> int:
    """What a block function dilates a convolution by: the block's dilation, or with two
    dilations the stage's for the convolutions that take it."""
    return block.stage_dilation if two_dilations and by_stage else block.dilation


def _stage_dilations(stage: Stage) -> tuple[int, int]:
    """A stage's first block's dilation and its other blocks' (the first's where it is alone)."""
    first = stage.runs[0].block.dilation
    others = {
        run.block.dilation for number, run in enumerate(stage.runs) if number or run.count > 1
    }
    if len(others) > 1:
        raise PlanError(f"stage `{stage.name}` changes dilation after its first block")
    return first, others.pop() if others else first


def _block_functions(network: Network, ctx: Context) -> list[BlockFunction]:
    """Stages grouped by block structure: a stage joins the first function of its structure
    whose shortcut cases agree with its own, or starts a new one.

    Anti-aliased blocks stride by a pool after a convolution, blocks at stride 1 have no such
    pool: one function builds both, with the pool under `if stride > 1`. A stage with
    anti-aliased blocks has its blocks at stride 1 seen with their pool (:func:`_aliased`); a
    stage with no strided blocks at all joins an anti-aliased structure where it can."""
    # Keys from a scratch context: every parameter in, nothing recorded as used.
    scratch = dataclasses.replace(ctx, uses=set(), gates=set())
    canonical = {True: _block_scope(True, CANONICAL, True, True)}
    canonical[False] = _block_scope(False, CANONICAL, True, True)
    residual = (Apply("shortcut", helper=True), "x")

    def key_of(block: Block) -> tuple:
        return tuple(_block_body(block, canonical[block.preact], scratch, residual, drop=False))

    variants: dict[tuple, tuple] = {}  # each distinct anti-aliasing, by its code and place
    for stage in network.stages:
        for run in stage.runs:
            aa = _anti_alias(run.block)
            if aa is not None:
                code = tuple(_applies([aa[0]], canonical[run.block.preact], scratch))
                variants.setdefault((code, aa[1]), aa)

    options: list[list[tuple]] = []  # per stage, the (key, forms) it may take, best first
    anchored = set()  # the keys of stages with strided blocks, which have one option
    for stage in network.stages:
        blocks = [run.block for run in stage.runs]
        own = next((aa for aa in map(_anti_alias, blocks) if aa is not None), None)
        strided = any(block.stride != 1 for block in blocks)
        candidates = [own] if own or strided else [*variants.values(), None]
        found = []
        for variant in candidates:
            forms = [_aliased(block, variant) for block in blocks]
            keys = {key_of(form) for form in forms if form is not None}
            if None not in forms and len(keys) == 1:
                found.append((keys.pop(), forms))
        if not found:
            raise PlanError(f"stage `{stage.name}` mixes block structures")
        if strided:
            anchored.add(found[0][0])
        options.append(found)

    functions: list[BlockFunction] = []
    for stage, found in zip(network.stages, options, strict=True):
        key, forms = next((option for option in found if option[0] in anchored), found[-1])
        cases: dict = {}
        shortcuts: dict = {}
        for run in stage.runs:
            block = run.block
            shortcut_key = _shortcut_key(block.shortcut, ctx)
            if cases.setdefault(_case(block), shortcut_key) != shortcut_key:
                raise PlanError(f"stage `{stage.name}` gives one case two shortcuts")
            shortcuts.setdefault(shortcut_key, block.shortcut)
        for function in functions:
            if function.key == key and all(function.cases.get(c, k) == k for c, k in cases.items()):
                function.stages.append(stage)
                function.forms += forms
                function.cases.update(cases)
                for k, shortcut in shortcuts.items():
                    function.shortcuts.setdefault(k, shortcut)
                break
        else:
            functions.append(BlockFunction("", key, [stage], cases, shortcuts, list(forms)))
    seen: dict[str, int] = {}
    for function in functions:
        blocks = function.blocks
        base = ("preact_" if blocks[0].preact else "") + blocks[0].layout
        if blocks[0].shortcut.kind == "none":
            base = f"plain_{base}"
        seen[base] = seen.get(base, 0) + 1
        function.name = f"{base}_block" + (str(seen[base]) if seen[base] > 1 else "")
        function.out_filters = any(b.mid_channels != b.out_channels for b in blocks)
        function.stride = any(b.stride != 1 for b in blocks)
        function.two_dilations = any(b.two_dilations for b in blocks)
        if not function.stride and not function.two_dilations:  # no anti-aliasing to skip
            function.forms = blocks
        branches = [layer for form in function.forms for layer in form.branch]
        function.first = any("first" in _symbols(form) for form in function.forms)
        function.reduced = any(isinstance(layer, SqueezeExciteLayer) for layer in branches)
        function.kernel = any(isinstance(layer, EcaLayer) for layer in branches)
        function.dilation = len({_dilations(form) for form in function.forms}) > 1
        function.first_dilation = function.dilation and any(
            first != others for first, others in map(_stage_dilations, function.stages)
        )
        if function.two_dilations:
            function.dilation = function.first_dilation = True
    return functions


def _shortcut_function(function: BlockFunction, ctx: Context) -> ShortcutFunction | None:
    """The shortcut function of `function`'s blocks, None where every one is the identity;
    checked against each block."""
    sizes = {  # the layers each emits (an identity keeps a PyTorch index only)
        k: sum(not isinstance(layer, IdentityLayer) for layer in s.layers)
        for k, s in function.shortcuts.items()
    }
    chain, default = _solve(function.cases, sizes, function.stride)
    for block in function.blocks:
        if _route(_case(block), chain, default) != _shortcut_key(block.shortcut, ctx):
            raise PlanError("a shortcut that its block's widths and stride do not choose")
    if not chain and not function.shortcuts[default].layers:
        return None
    routed = [function.shortcuts[key] for _, key in chain] + [function.shortcuts[default]]
    sources = tuple(dict.fromkeys(s.source for s in routed))
    names = {s: VARIABLES[s] if len(sources) > 1 else "x" for s in sources}
    literals = {literal for predicate, _ in chain for literal in predicate}
    layers = [layer for s in routed for layer in s.layers]
    uses_width = bool(literals & {"same", "wider"}) or any(
        isinstance(layer, (ConvLayer, PadChannelsLayer)) for layer in layers
    )
    uses_stride = function.stride and (
        bool(literals & {"strided", "unstrided"})
        or any(getattr(layer, "strided", False) for layer in layers)
    )
    params = ("filters",) * uses_width + ("stride",) * uses_stride + ("name",) * bool(layers)
    scope = Scope(widths={"out": "filters"}, stride="stride" if function.stride else None)

    def case(shortcut: Shortcut, depth: int) -> list[str]:
        source = names[shortcut.source]
        if not shortcut.layers:
            return [f"{INDENT * depth}return {source}"]
        return _chain(_applies(shortcut.layers, scope, ctx), source, "x", "return", depth)

    body: list[str] = []
    for predicate, key in chain:
        condition = " and ".join(LITERALS[literal][0] for literal in predicate)
        body.append(f"{INDENT}if {condition}:")
        body += case(function.shortcuts[key], 2)
    body += case(function.shortcuts[default], 1)
    return ShortcutFunction("", sources, params, tuple(body))


def _block_function(
    function: BlockFunction, shortcut: ShortcutFunction | None, ctx: Context, drop: bool
) -> Function:
    """The block function, checked against each of its blocks: their layers against the
    symbols that build them, and the code of each against the function's."""
    scope = function.scope()
    for block in function.blocks:
        wrong = next((la for la in block.layers if not _reproduces(la, block)), None)
        if wrong is not None:
            raise PlanError(f"a layer (`{wrong.keras}`) whose widths or stride are not its block's")
        if not function.out_filters and block.mid_channels != block.out_channels:
            raise PlanError("a block with two widths in a function with one")
        if function.dilation and any(
            d != _own_dilation(block, function.two_dilations, by_stage)
            for d, by_stage in _dilations(block, with_kind=True)
        ):
            raise PlanError("a block whose convolutions dilate unlike the block")
    residual = None
    if shortcut is not None:
        values = {"filters": scope.width("out", None), "stride": "stride", "name": "name"}
        args = [VARIABLES[s] for s in shortcut.sources[1:]] + [values[p] for p in shortcut.params]
        residual = (Apply(shortcut.name, tuple(args), True), VARIABLES[shortcut.sources[0]])
    bodies = {}
    for form in function.forms:
        bodies.setdefault(tuple(_block_body(form, scope, ctx, residual, drop)), form)
    if len(bodies) != 1:
        raise PlanError(f"blocks that `{function.name}` would build unlike the network")
    ((body, form),) = bodies.items()
    params = ["x", *function.params(), *["stride"] * function.stride]
    params += ["dilation"] * function.dilation + ["first_dilation"] * function.two_dilations
    params += ["name", *["drop_rate"] * drop]
    # The docstring of a block with everything the function builds (anti-aliasing).
    form = next((f for f in function.forms if _anti_alias(f) is not None), form)
    return Function(_head(function.name, params), _doc(_block_doc(form, function)), body)


# --------------------------------------------------------------------------- stages


def _stack_function(name: str, function: BlockFunction, pattern: str | None, drop: bool):
    """A stage of `function`'s blocks; `pattern` says which applies the stride ("first",
    "last", or None where none does)."""
    widths = function.params()
    dilations = ["dilation"] * function.dilation + ["first_dilation"] * function.first_dilation
    params = ["x", "blocks", *widths, *["stride"] * function.stride, *dilations, "name"]
    params += ["first_block"] * drop
    rest = "dilation" if function.dilation else None
    first = "first_dilation" if function.first_dilation else rest

    def call(target: str, stride: str | None, dilation, number: str, depth: int) -> list[str]:
        """A block's call; `dilation` is its own (with two dilations, its `first_dilation`
        beside the stage's `dilation`)."""
        args = [*widths, *([f"stride={stride}"] if stride else [])]
        if function.two_dilations:
            args += ["dilation=dilation", f"first_dilation={dilation}"]
        elif dilation:
            args.append(f"dilation={dilation}")
        args.append(f'name=f"{{name}}_block{number}"')
        if drop:
            index = "first_block" if number == "1" else f"first_block + {number[1:-1]} - 1"
            args.append(f"drop_rate=drop_path_rate({index})")
        return _statement(target, Apply(function.name, tuple(args), helper=True), "x", depth)

    if pattern == "first" or (pattern is None and first != rest):
        body = call("x", "stride" if pattern else None, first, "1", 1)
        body += [f"{INDENT}for i in range(2, blocks + 1):"]
        body += call("x", "1" if pattern else None, rest, "{i}", 2)
        body.append(f"{INDENT}return x")
    elif pattern == "last":
        # The first block dilates as the stage before, the last strides: a one-block stage's
        # only block does both.
        loop, last = rest, rest
        if first != rest:
            loop = f"{first} if i == 1 else {rest}"
            last = f"{rest} if blocks > 1 else {first}"
        body = [f"{INDENT}for i in range(1, blocks):", *call("x", "1", loop, "{i}", 2)]
        body += call("return", "stride", last, "{blocks}", 1)
    else:
        body = [f"{INDENT}for i in range(1, blocks + 1):", *call("x", None, rest, "{i}", 2)]
        body.append(f"{INDENT}return x")
    doc = (
        f"A stage: `blocks` blocks by `{function.name}`, named `{{name}}_block1` to "
        "`{name}_block{blocks}`"
    )
    if pattern:
        doc += f"; the {pattern} applies the stride"
    if function.two_dilations:
        doc += "; the first block's first convolution dilates by `first_dilation` (the stage "
        doc += "before's), the rest by `dilation`"
    elif function.first_dilation:
        doc += "; the first dilates by `first_dilation` (the stage before's), the others by "
        doc += "`dilation`"
    if drop:
        doc += "; `first_block` is the first's index in the whole network (stochastic depth)"
    return Function(_head(name, params), _doc(doc + "."), tuple(body))


def _block_values(block: Block) -> dict[str, int | None]:
    """What a stage call sets for `block`, by parameter."""
    kernels = [la.conv.kernel for la in block.branch if isinstance(la, EcaLayer)]
    return {
        "filters": block.mid_channels,
        "first_filters": block.first_channels,
        "out_filters": block.out_channels,
        SE_PARAM: _widths(block).get("reduced"),
        ECA_PARAM: kernels[0] if kernels else None,
    }


def _stage_call(stage: Stage, function: BlockFunction, name: str, pattern: str | None, drop):
    """`x = stack(x, blocks=..., name=...)` for `stage`, checked against its blocks."""
    strided_at = {"first": 0, "last": stage.blocks - 1, None: None}[pattern]
    first = stage.runs[0].first_index
    stride = 1
    position = 0
    for run in stage.runs:
        if run.first_index != first + position:
            raise PlanError(f"stage `{stage.name}` numbers its blocks out of order")
        for offset in range(run.count) if run.count <= 2 else (0, run.count - 1):
            if position + offset == strided_at:
                stride = run.block.stride
            elif run.block.stride != 1:
                raise PlanError(f"stage `{stage.name}` strides where its stack does not")
        position += run.count
    values: dict[str, set] = {}
    for run in stage.runs:
        for param, value in _block_values(run.block).items():
            values.setdefault(param, set()).add(value)
    params = function.params()
    if position != stage.blocks or any(
        len(values[p]) != 1 for p in {"filters", "out_filters", *params}
    ):
        raise PlanError(f"stage `{stage.name}` changes width inside")
    for number in (0, stage.blocks - 1):
        if stage.keras_prefix(number) != f"{stage.name}_block{number + 1}":
            raise PlanError(f"stage `{stage.name}` names its blocks unlike keras.applications")
    args = [f"blocks={stage.blocks}", *(f"{p}={values[p].pop()}" for p in params)]
    if function.stride:
        args.append(f"stride={stride}")
    if function.dilation:
        first_dilation, dilation = _stage_dilations(stage)
        if function.two_dilations:  # `dilation` is the stage's, even in a one-block stage
            dilation = stage.dilation
        args.append(f"dilation={dilation}")
        if function.first_dilation:
            args.append(f"first_dilation={first_dilation}")
        elif first_dilation != dilation:
            raise PlanError(f"stage `{stage.name}` dilates its first block unlike its stack")
    args.append(f"name={_string(stage.name)}")
    if drop:
        args.append(f"first_block={first}")
    return _statement("x", Apply(name, tuple(args), helper=True), "x")


# --------------------------------------------------------------------------- the module


def plan(network: Network) -> tuple[Module | None, list[str]]:
    """The module's plan, or what the network uses that the plan cannot express."""
    problems = _unsupported(network)
    if problems:
        return None, problems
    try:
        return _module(network), []
    except PlanError as error:
        return None, [str(error)]


def _unsupported(network: Network) -> list[str]:
    # Elaboration makes every ceil-mode pool a block's `stride`x`stride` average, unpadded: a
    # shortcut's (ResNet-D) or its branch's anti-aliasing (`anti_alias avg`).
    for stage in network.stages:
        for run in stage.runs:
            pools = [la.pool for la in run.block.layers if isinstance(la, PoolLayer)]
            if any(p.ceil and (p.kernel, p.padding) != (p.stride, 0) for p in pools):
                return [f"a ceil-mode pool in `{stage.name}` other than a stride-sized window"]
    for layer in (*network.stem.layers, *network.head.layers):
        if isinstance(layer, PoolLayer) and layer.pool.ceil:
            return ["a pool that rounds up outside a block"]
    return []


def _ceil_pool_strides(network: Network) -> set[int]:
    """The strides of the network's ceil-mode average pools (in blocks only)."""
    return {
        layer.pool.stride
        for stage in network.stages
        for run in stage.runs
        for layer in run.block.layers
        if isinstance(layer, PoolLayer) and layer.pool.ceil
    }


def _module(network: Network) -> Module:
    from resdsl import __version__

    conventions = network.conventions
    # Every layer with weights: convolutions (squeeze-excitation's included) and norms.
    layers = [*weighted(network.stem.layers), *weighted(network.head.layers)]
    for stage in network.stages:
        for run in stage.runs:
            layers += weighted(run.block.layers)
    convs = [layer.conv for layer in layers if isinstance(layer, ConvLayer)]
    if any(isinstance(la, NormLayer) and la.kind != conventions.norm for la in layers):
        raise PlanError("norms of another kind than the network's")
    ctx = Context(
        activation=conventions.activation,
        kaiming=conventions.init == "kaiming",
        classes=network.classes,
        bias={c.bias for c in convs},
        ceil_pool_layer=bool(_ceil_pool_strides(network) - {2}),
    )
    drop = conventions.stochastic_depth > 0
    block_functions = _block_functions(network, ctx)

    # Shortcut functions, one per distinct code; `shortcut` where there is only one.
    shortcuts: dict[str, ShortcutFunction | None] = {}
    distinct: dict[tuple, str] = {}
    for function in block_functions:
        shortcut = _shortcut_function(function, ctx)
        if shortcut is not None:
            code = (shortcut.sources, shortcut.params, shortcut.body)
            name = distinct.setdefault(code, function.name.replace("_block", "_shortcut", 1))
            shortcut = ShortcutFunction(name, *code)
        shortcuts[function.name] = shortcut
    if len(distinct) == 1:
        shortcuts = {
            k: ShortcutFunction("shortcut", s.sources, s.params, s.body) if s else None
            for k, s in shortcuts.items()
        }

    # Stack functions, one per block function and stride pattern; `stack` where only one.
    patterns: dict[tuple, str] = {}
    for function in block_functions:
        for stage in function.stages:
            pattern = stage.strided_block if function.stride else None
            name = function.name.replace("_block", "_stack", 1)
            if any(k[0] == function.name and k[1] != pattern for k in patterns):
                name += f"_{pattern}"
            patterns.setdefault((function.name, pattern), name)
    if len(patterns) == 1:
        patterns = dict.fromkeys(patterns, "stack")

    functions: list[Function] = []
    written: set[str] = set()
    for function in block_functions:
        shortcut = shortcuts[function.name]
        if shortcut is not None and shortcut.name not in written:
            written.add(shortcut.name)
            doc = _doc("The path from a block's input to its addition.")
            params = [VARIABLES[s] if len(shortcut.sources) > 1 else "x" for s in shortcut.sources]
            head = _head(shortcut.name, [*params, *shortcut.params])
            functions.append(Function(head, doc, shortcut.body))
        functions.append(_block_function(function, shortcut, ctx, drop))
        for (owner, pattern), name in patterns.items():
            if owner == function.name:
                functions.append(_stack_function(name, function, pattern, drop))
    stage_calls: list[str] = []
    for stage in network.stages:
        function = next(f for f in block_functions if any(s is stage for s in f.stages))
        pattern = stage.strided_block if function.stride else None
        name = patterns[(function.name, pattern)]
        stage_calls += _stage_call(stage, function, name, pattern, drop)
    functions.append(_build_model(network, ctx, stage_calls))

    norm = None
    if "norm" in ctx.uses:
        norm = NormHelper(
            group=conventions.norm == "group",
            groups=conventions.norm_groups,
            epsilon=_float(conventions.norm_eps),
            momentum=_float(round(1.0 - conventions.norm_momentum, 12)),
            torch_momentum=_float(conventions.norm_momentum),
            zero="norm.zero" in ctx.uses,
        )
    squeeze_excite = None
    if "squeeze_excite" in ctx.uses:
        if len(ctx.gates) != 1:
            raise PlanError("squeeze-excitation with several gates")
        (gate,) = ctx.gates
        if len(ctx.bias) > 1:
            ctx.uses.add("conv.bias")
        squeeze_excite = AttentionHelper(gate=gate, bias=", bias=True" * (len(ctx.bias) > 1))
    eca = None
    if "efficient_channel_attention" in ctx.uses:
        init = ""
        if ctx.kaiming:
            init = 'keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")'
        eca = AttentionHelper(init=init)
    drop_path = None
    if drop:
        formula = "DROP_PATH_RATE * index / (TOTAL_BLOCKS - 1)"
        drop_path = DropPath(
            rate=_float(conventions.stochastic_depth),
            blocks=network.total_blocks,
            formula=formula if network.total_blocks > 1 else "DROP_PATH_RATE",
        )
    shape = network.input
    return Module(
        name=network.name,
        version=__version__,
        source=network.source.file,
        sha256=network.source.sha256,
        input_shape=f"({shape.height}, {shape.width}, {shape.channels})",
        classes=network.classes,
        recursion_limit=network.total_blocks >= DEEP_GRAPH_BLOCKS,
        conv=_conv_helper(ctx),
        norm=norm,
        squeeze_excite=squeeze_excite,
        eca=eca,
        channel_pad="ChannelPad" in ctx.uses,
        minus_inf_padding="MinusInfPadding2D" in ctx.uses,
        blur_pool="BlurPool2D" in ctx.uses,
        ceil_pool="CeilAveragePooling2D" in ctx.uses,
        drop_path=drop_path,
        functions=tuple(functions),
    )


def _conv_helper(ctx: Context) -> ConvHelper:
    """`conv` with the parameters the emitted calls use."""

    def used(option: str) -> bool:
        return f"conv.{option}" in ctx.uses

    defaults = {
        "groups": "1",
        "dilation": "1",
        "pad": "False",
        "pad_by": "None",
        "bias": "False",
        "zero": "False",
    }
    params = ["x", "filters", "kernel", "name", "stride=1"]
    params += [f"{option}={value}" for option, value in defaults.items() if used(option)]
    options = ["dilation_rate=dilation"] * used("dilation") + ["groups=groups"] * used("groups")
    options.append("use_bias=bias" if len(ctx.bias) > 1 else f"use_bias={min(ctx.bias)}")
    init: tuple[str, ...] = ()
    if ctx.kaiming:
        init = (
            "# He et al.'s normal initialization, scaled by the fan-out (torchvision's).",
            'init = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")',
        )
        zero = '"zeros" if zero else init' if used("zero") else "init"
        options.append(f"kernel_initializer={zero}")
    elif used("zero"):
        options.append('kernel_initializer="zeros" if zero else "glorot_uniform"')
    same = "dilation * (kernel - 1) // 2" if used("dilation") else "(kernel - 1) // 2"
    explicit = ["stride > 1", "pad"] if used("pad") else ["stride > 1"]
    if used("pad_by"):  # an even kernel: PyTorch pads by half of it on both sides
        explicit.append("pad_by is not None")
    asks = " or ".join(f"`{name}`" for name in ("pad", "pad_by") if used(name))  # at most 2
    return ConvHelper(
        head=_head("conv", params),
        pad_doc=f" or {asks} asks" if asks else "",
        padding=f"{same} if pad_by is None else pad_by" if used("pad_by") else same,
        explicit=f"({' or '.join(explicit)})" if len(explicit) > 1 else explicit[0],
        init=init,
        options=tuple(options),
        subsample=used("subsample"),
    )


def _build_model(network: Network, ctx: Context, stage_calls: list[str]) -> Function:
    """`build_model`: the stem, the stages and the head, the stem and head read from the IR's
    layer lists with their numbers and names as literals."""
    scope = Scope()
    body: list[str] = []
    if network.total_blocks >= DEEP_GRAPH_BLOCKS:
        limit = 10 * network.total_blocks + 1000
        body += [
            f"{INDENT}# Keras walks the layer graph recursively: this deep a net needs more than "
            "Python's default.",
            f"{INDENT}sys.setrecursionlimit(max(sys.getrecursionlimit(), {limit}))",
        ]
    body.append(f"{INDENT}inputs = keras.Input(shape=input_shape or INPUT_SHAPE)")
    body += _chain(_applies(network.stem.layers, scope, ctx), "inputs", "x", "x")
    body += stage_calls
    # keras.applications' options: the head's layers before its pool (a pre-activation net's
    # final norm) belong to the features; without the top, an optional global pool ends it.
    head = list(network.head.layers)
    pooled = next(i for i, layer in enumerate(head) if isinstance(layer, GlobalPoolLayer))
    body += _chain(_applies(head[:pooled], scope, ctx), "x", "x", "x")
    name = _string(network.name)
    body += [
        f"{INDENT}if not include_top:",
        f'{INDENT * 2}if pooling == "avg":',
        f'{INDENT * 3}x = layers.GlobalAveragePooling2D(name="avg_pool")(x)',
        f'{INDENT * 2}elif pooling == "max":',
        f'{INDENT * 3}x = layers.GlobalMaxPooling2D(name="max_pool")(x)',
        f"{INDENT * 2}return keras.Model(inputs, x, name={name})",
    ]
    body += _chain(_applies(head[pooled:], scope, ctx), "x", "x", "outputs")
    body.append(f"{INDENT}return keras.Model(inputs, outputs, name={name})")
    params = (
        "num_classes: int | None = None",
        "input_shape: tuple | None = None",
        "include_top: bool = True",
        "pooling: str | None = None",
        "classifier_activation: str | None = None",
    )
    signature = _head("build_model", list(params)).removesuffix(":") + " -> keras.Model:"
    doc = (
        f"The `{network.name}` network for channels-last images of `input_shape`, with a linear "
        'classifier of `num_classes` outputs (logits; `classifier_activation`, e.g. "softmax", '
        "applies one); defaults from the spec. As keras.applications: without `include_top`, "
        'the last feature map, pooled by `pooling` ("avg" or "max") where given.'
    )
    return Function(signature, _doc(doc), tuple(body))


@lru_cache(maxsize=1)
def _template():
    from resdsl.codegen.backends import template_environment

    return template_environment(Path(__file__).parent / "templates").get_template("model.py.j2")


__all__ = ["KerasBackend", "plan"]
