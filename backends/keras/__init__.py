"""The Keras 3 backend: a :class:`resdsl.ir.Network` to a standalone functional-model module.

The module reads like keras.applications' resnet.py: a function per block class
(`bottleneck_block`), the shortcut functions the blocks call, each testing the block's widths
and stride (`project`), a function per stage layout (`stack`), and `build_model`, which lays
out the stem, one `stack` call per stage and the head.

The structure is the plan's (:mod:`resdsl.codegen.plan`), the same as the PyTorch module's:
which block functions exist and which values are their parameters (groups, dilation, ECA's
kernel, the widths that stages set), which shortcut functions exist with their `if` chains,
what each stage call gives its blocks, and the docstrings. This module renders that plan in
Keras: every line of layers comes from the IR's layer lists through one emitter per layer type
(:data:`EMITTERS`), each value as the plan's field says (a literal, or a parameter of the
function by :meth:`BlockFunction.names`), names the IR's (`layer.keras`, a block's layers under
its `{stage}_block{n}` prefix), so :func:`resdsl.interop.weights.layer_pairs` pairs every layer
with weights by construction. What Keras adds is checked here: the blocks of a function name
their layers alike, the stages name their blocks as keras.applications and stride where their
stack does. Anti-aliased blocks stride by a pool after a convolution and blocks at stride 1
have none: one function builds both, the pool under `if stride > 1` (with timm's two
dilations, `or first_dilation != dilation`). Where stages give one block class different
shortcuts (PyTorch's make_stage takes `shortcut`), the block function takes the shortcut
function as its `shortcut` argument.

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
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from resdsl.codegen.arguments import Divisible, Sym, layer_fields, optional
from resdsl.codegen.emitters import EMITTERS as PLUGIN_EMITTERS
from resdsl.codegen.emitters import emitter
from resdsl.codegen.layout import INDENT, LINE, Call, comment, docstring, flat, layout
from resdsl.codegen.plan import BlockClass, Outcome, Plan, ShortcutFunction, StageCall, align
from resdsl.codegen.words import block_doc
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
    SqueezeExciteLayer,
    weighted,
)

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
    make_divisible: bool
    eca: AttentionHelper | None
    channel_pad: bool
    minus_inf_padding: bool
    blur_pool: bool
    ceil_pool: bool
    drop_path: DropPath | None
    plugin_helpers: tuple[str, ...]
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
    """`target = ...` (or `return ...` when `target` is "return"), laid out as ruff formats it
    (:func:`resdsl.codegen.layout.layout`); under an `if` where the apply has a guard."""
    if apply.guard:
        if target != source:  # skipped, the statement would leave `target` unset
            raise PlanError("a layer that runs only where the block strides, first or last")
        pad = INDENT * depth
        lines = comment(apply.comment, pad) if apply.comment else []
        inner = Apply(apply.func, apply.args, apply.helper)
        return [*lines, f"{pad}if {apply.guard}:", *_statement(target, inner, source, depth + 1)]
    lead = "return " if target == "return" else f"{target} = "
    args = (source, *apply.args) if apply.helper else apply.args
    pad = INDENT * depth
    lines = comment(apply.comment, pad) if apply.comment else []
    call = Call(apply.func, args)
    if apply.helper:
        return [*lines, *layout(lead, call, depth)]
    # a layer applied to its input: where the line is too long but the layer fits on its own,
    # ruff splits the last brackets, the input's, first
    head = f"{pad}{lead}{flat(call)}("
    if len(f"{head}{source})") > LINE and len(head) <= LINE:
        return [*lines, head, f"{pad}{INDENT}{source}", f"{pad})"]
    return [*lines, *layout(lead, call, depth, f"({source})")]


def _chain(applies: list[Apply], source: str, target: str, last: str, depth: int = 1) -> list:
    """Applies in order, the first on `source`, the others on `target`; the last assigns to
    `last` (or returns)."""
    lines: list[str] = []
    for number, apply in enumerate(applies):
        into = last if number == len(applies) - 1 else target
        lines += _statement(into, apply, source if number == 0 else target, depth)
    return lines


def _head(name: str, params: list[str], returns: str = "") -> str:
    """A `def` line (or lines) as ruff formats it."""
    return "\n".join(layout(f"def {name}", Call("", tuple(params)), 0, f"{returns}:"))


def _doc(text: str, depth: int = 1) -> str:
    """A docstring, its first line without its indent (the template indents it)."""
    return "\n".join(docstring(text, depth))[len(INDENT * depth) :]


# --------------------------------------------------------------------------- emitters


@dataclass
class Scope:
    """How a layer's numbers and names read where it is emitted: in the stem and the head as
    literals (`names` None); in a function that builds several blocks, the plan's arguments
    (:class:`resdsl.codegen.plan.Sym`) by the function's parameters (`names` maps
    `mid_channels` to `filters`, ...) and layer names under its `name` argument. An argument
    the function does not take (a stride where none of its blocks strides) reads as the
    layer's own value."""

    names: dict[str, str] | None = None
    pad: bool = False  # pad convolutions explicitly at any stride (keras' V2 blocks)
    # where layers that apply the stride in place of a convolution run: `stride > 1` (and, with
    # two dilations, where the dilation changes, as timm's `use_aa`)
    guard: str = ""

    def name(self, keras: str) -> str:
        return _string(keras) if self.names is None else _prefixed(keras)

    def value(self, fields: dict | None, key: str, literal) -> str:
        """A field of a layer as the emitted code writes it."""
        if fields is None or self.names is None:
            return str(literal)
        value = fields[key]
        if isinstance(value, (Sym, Divisible)):
            if not value.names <= self.names.keys():
                return str(literal)
            return value.render(self.names)
        return str(value)

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


def _conv(layer: ConvLayer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
    c = layer.conv
    # `conv` pads by the IR's padding: by default PyTorch's "same-size" padding, and where that
    # is not the IR's (an even kernel, padded by half of it on both sides), by `pad_by`. The
    # padding layer is named after the convolution (`2_conv`, `2_pad`).
    if not layer.keras.endswith("_conv"):
        raise PlanError(f"a convolution named `{layer.keras}`, not `*_conv`")
    args = [scope.value(f, "out_channels", c.out_channels), str(c.kernel), scope.name(layer.keras)]
    options = {
        "stride": scope.value(f, "stride", c.stride),
        "groups": scope.value(f, "groups", c.groups),
        "dilation": scope.value(f, "dilation", c.dilation),
        "pad": "True" if scope.pad and c.padding else "False",
        "pad_by": str(c.padding) if c.padding != c.dilation * (c.kernel - 1) // 2 else "None",
        "bias": "True" if len(ctx.bias) > 1 and c.bias else "False",
        "zero": "True" if layer.zero_init else "False",
    }
    defaults = {"stride": "1", "groups": "1", "dilation": "1", "pad_by": "None"}
    for key, value in options.items():
        if value != defaults.get(key, "False"):
            args.append(f"{key}={value}")
            ctx.uses.add(f"conv.{key}")
    if options["stride"] != "1" and options["dilation"] != "1":
        ctx.uses.add("conv.subsample")  # Keras' Conv2D does not stride and dilate at once
    return [Apply("conv", tuple(args), helper=True)]


def _norm(layer: NormLayer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
    ctx.uses.add("norm")
    args = [scope.name(layer.keras)]
    if layer.zero_init:
        ctx.uses.add("norm.zero")
        args.append("zero=True")
    return [Apply("norm", tuple(args), helper=True)]


def _act(layer: ActLayer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
    name = f"name={scope.name(layer.keras)}"
    return [Apply("layers.Activation", (_string(ctx.activation), name))]


ANTI_ALIAS = (
    "Anti-aliasing: where the block strides, {what} applies the stride after the "
    "activation, in place of the convolution."
)


def _pool(layer: PoolLayer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
    applies = _pool_applies(layer, f, scope, ctx, previous)
    if optional(layer) and scope.guard:  # in a block's branch, only anti-aliasing strides so
        return scope.guarded(applies, ANTI_ALIAS.format(what="an average pool"))
    return applies


def _pool_applies(layer: PoolLayer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
    p = layer.pool
    stride = scope.value(f, "stride", p.stride)
    kernel = scope.value(f, "kernel", p.kernel)
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


def _blur(layer: BlurPoolLayer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
    # `BlurPool2D` pads (size - 1) // 2 before and size // 2 after, as the IR's blur pools.
    if layer.padding != ((layer.size - 1) // 2, layer.size // 2):
        raise PlanError(f"a blur pool (`{layer.keras}`) padded unlike Zhang's")
    ctx.uses.add("BlurPool2D")
    stride = scope.value(f, "stride", layer.stride)
    args = (str(layer.size), f"strides={stride}", f"name={scope.name(layer.keras)}")
    apply = Apply("BlurPool2D", args)
    if optional(layer):
        return scope.guarded([apply], ANTI_ALIAS.format(what="a blur pool"))
    return [apply]


def _squeeze_excite(layer: SqueezeExciteLayer, f, scope: Scope, ctx: Context, previous):
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
    reduced = scope.value(f, "reduced", reduce.out_channels)
    if reduced.startswith("make_divisible("):
        ctx.uses.add("make_divisible")
    return [Apply("squeeze_excite", (reduced, scope.name(layer.keras)), helper=True)]


def _eca(layer: EcaLayer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
    if layer.conv.keras != f"{layer.keras}_conv" or layer.conv.kernel % 2 == 0:
        raise PlanError(f"an efficient channel attention (`{layer.keras}`) unlike Wang et al.'s")
    ctx.uses.add("efficient_channel_attention")
    args = (scope.value(f, "kernel", layer.conv.kernel), scope.name(layer.keras))
    return [Apply("efficient_channel_attention", args, helper=True)]


def _identity(layer: IdentityLayer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
    return []  # a place in PyTorch's Sequential; nothing in Keras


def _pad_channels(layer: PadChannelsLayer, f, scope: Scope, ctx: Context, previous):
    # `ChannelPad` pads to its width as PadChannels does: half before, the rest after.
    if scope.names is None:
        raise PlanError("a channel padding outside a shortcut")
    ctx.uses.add("ChannelPad")
    width = scope.names["out_channels"]
    return [Apply("ChannelPad", (width, f"name={scope.name(layer.keras)}"))]


def _linear(layer: LinearLayer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
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


def _dropout(layer: DropoutLayer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
    return [Apply("layers.Dropout", (_float(layer.rate), f"name={scope.name(layer.keras)}"))]


def _global_pool(layer: GlobalPoolLayer, f, scope: Scope, ctx: Context, previous):
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


def _applies(layers, scope: Scope, ctx: Context, fields: list[dict] | None = None) -> list[Apply]:
    """The layers' statements; `fields` (a block class's or a shortcut's, aligned with
    `layers`) give the values that the function's arguments set."""
    out: list[Apply] = []
    for number, layer in enumerate(layers):
        previous = layers[number - 1] if number else None
        values = fields[number] if fields is not None else None
        emit = EMITTERS.get(type(layer))
        out += (emit or _plugin)(layer, values, scope, ctx, previous)
    return out


def _plugin(layer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
    """A plugin's layer type (:mod:`resdsl.codegen.emitters`): its emitter gets the fields as
    the code writes them and the layer's name, and its helper class is written once."""
    found = emitter("keras", layer.op)
    if found is None:
        raise PlanError(f"a layer of type `{layer.op}`, which no Keras emitter writes")
    literal = layer_fields(layer)
    fields = {key: scope.value(f, key, value) for key, value in literal.items()}
    call = found.emit({**fields, "name": scope.name(layer.keras)})
    ctx.uses.add(f"plugin:{layer.op}")
    return [Apply(call.head, call.args)]


# --------------------------------------------------------------------------- shortcuts

VARIABLES = {"input": "x", "preactivated": "preact"}  # a block's tensors a shortcut reads
# The tests of a shortcut function's conditions (the plan's templates) in Keras' words: the
# block's input against the output's width, `filters`, and the stride.
KERAS_TESTS = {
    "same": "x.shape[-1] == filters",
    "grow": "x.shape[-1] != filters",
    "keep": "stride == 1",
    "step": "stride > 1",
}


@dataclass(frozen=True)
class ShortcutCode:
    """A shortcut function of the plan as Keras code: the block tensors it reads (`sources`,
    "input" or "preactivated"), its other parameters, and its body."""

    name: str
    sources: tuple[str, ...]
    params: tuple[str, ...]
    body: tuple[str, ...]


def _source(outcome: Outcome | None) -> str:
    return "input" if outcome is None else outcome.source  # the identity is the block's input


def _sources(function: ShortcutFunction) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_source(case.outcome) for case in function.chain))


def _shortcut_code(
    plan: Plan, function: ShortcutFunction, ctx: Context, full: tuple[str, ...] = ()
) -> ShortcutCode | None:
    """The plan's shortcut function in Keras; None where every case is the identity. With
    `full` (the tensors it reads), it takes every parameter, as the argument of a block
    function whose stages give different shortcuts must."""
    if all(case.outcome is None for case in function.chain) and not full:
        return None
    sources = full or _sources(function)
    names = {s: VARIABLES[s] if len(sources) > 1 else "x" for s in sources}
    conditions = "".join(case.template or "" for case in function.chain)
    examples = [plan.examples[case.outcome] for case in function.chain if case.outcome]
    layers = [layer for shortcut in examples for layer in shortcut.layers]
    uses_width = (
        "{same}" in conditions
        or "{grow}" in conditions
        or any(isinstance(layer, (ConvLayer, PadChannelsLayer)) for layer in layers)
    )
    uses_stride = (
        "{keep}" in conditions
        or "{step}" in conditions
        or any(getattr(layer, "strided", False) for layer in layers)
    )
    if full:
        uses_width = uses_stride = True
    params = ("filters",) * uses_width + ("stride",) * uses_stride + ("name",) * bool(layers)
    widths = {"out_channels": "filters", "in_channels": "x.shape[-1]", "stride": "stride"}
    scope = Scope(names=widths)

    def case_lines(outcome: Outcome | None, depth: int) -> list[str]:
        source = names[_source(outcome)]
        if outcome is None:
            return [f"{INDENT * depth}return {source}"]
        shortcut = plan.examples[outcome]
        fields = [dict(values) for _, values in outcome.layers]
        applies = _applies(list(shortcut.layers), scope, ctx, fields)
        if not applies:  # an identity that keeps a PyTorch index only
            return [f"{INDENT * depth}return {source}"]
        return _chain(applies, source, "x", "return", depth)

    body: list[str] = []
    for case in function.chain:
        condition = case.condition(KERAS_TESTS)
        if condition is None:
            body += case_lines(case.outcome, 1)
        else:
            body.append(f"{INDENT}if {condition}:")
            body += case_lines(case.outcome, 2)
    return ShortcutCode(function.name, sources, params, tuple(body))


# --------------------------------------------------------------------------- blocks


@dataclass
class BlockFunction:
    """The plan's block class as a Keras function, with the stage calls that use it and the
    shortcut function of each (None: the identity, or no shortcut). Where stages give its
    blocks different shortcuts, as PyTorch's make_stage does, the function takes the shortcut
    function as its `shortcut` argument."""

    cls: BlockClass
    calls: list[StageCall]
    shortcuts: list[ShortcutCode | None]

    @property
    def shortcut(self) -> ShortcutCode | None:
        return self.shortcuts[0]

    @property
    def takes_shortcut(self) -> bool:
        return len(set(self.shortcuts)) > 1

    @property
    def name(self) -> str:
        return self.cls.snake_name

    @property
    def blocks(self) -> list[Block]:
        return self.cls.blocks

    @property
    def out_filters(self) -> bool:
        """Whether some block's output is wider than its inner convolutions."""
        return any(b.mid_channels != b.out_channels for b in self.blocks)

    @property
    def stride(self) -> bool:
        return any(b.stride != 1 for b in self.blocks)

    @property
    def dilation(self) -> bool:
        return "dilation" in self.cls.takes

    @property
    def two_dilations(self) -> bool:
        """timm's pair: `dilation` the stage's, `first_dilation` the block's own."""
        return "first_dilation" in self.cls.takes

    @property
    def first_dilation(self) -> bool:
        """Whether the stack takes `first_dilation`: the first block's dilation, where a
        stage's first block dilates unlike its others (the stage before's)."""
        return self.two_dilations or any(c.first_dilation is not None for c in self.calls)

    def params(self) -> list[str]:
        """The parameters a stage sets per block, after `x`: widths and options."""
        options = [name for name in ("groups", "eca_kernel") if name in self.cls.takes]
        return ["filters", *["out_filters"] * self.out_filters, *options]

    def names(self) -> dict[str, str]:
        """The plan's arguments by this function's parameters."""
        names = {
            "in_channels": "x.shape[-1]",
            "mid_channels": "filters",
            "out_channels": "out_filters" if self.out_filters else "filters",
        }
        names.update({name: name for name in self.cls.takes})
        if self.stride:
            names["stride"] = "stride"
        return names

    def scope(self) -> Scope:
        # keras.applications' V2 (pre-activation) blocks pad explicitly at any stride, its V1
        # blocks by "same": the layer names (`_2_pad`) follow.
        guard = ["stride > 1"] * self.stride + ["first_dilation != dilation"] * self.two_dilations
        return Scope(names=self.names(), pad=self.blocks[0].preact, guard=" or ".join(guard))


def _block_functions(plan: Plan, ctx: Context) -> list[BlockFunction]:
    """The plan's block classes that stages use, each with its shortcut function: Keras calls
    the shortcut inside the block, so a class's stages must agree on one."""
    uses = {id(cls): [call for call in plan.stages if call.block is cls] for cls in plan.classes}
    # The shortcut functions that are a block function's argument, with what they read: all
    # of them the tensors any of them reads.
    full: dict[int, tuple[str, ...]] = {}
    for calls in uses.values():
        given = [call.function for call in calls]
        if len({id(f) for f in given}) > 1 and None not in given:
            sources = tuple(sorted({s for f in given for s in _sources(f)}))
            for f in given:
                full[id(f)] = tuple(sorted({*full.get(id(f), ()), *sources}))
    shortcuts = {
        id(f): _shortcut_code(plan, f, ctx, full=full.get(id(f), ())) for f in plan.functions
    } | {id(None): None}
    functions = []
    for cls in plan.classes:
        calls = uses[id(cls)]
        if not calls:
            continue
        function = BlockFunction(cls, calls, [shortcuts[id(call.function)] for call in calls])
        if function.takes_shortcut and (
            None in function.shortcuts or len({s.sources for s in function.shortcuts}) > 1
        ):
            raise PlanError(f"stages of `{cls.snake_name}` whose shortcuts read different tensors")
        functions.append(function)
    return functions


def _check_names(function: BlockFunction) -> None:
    """Every block of the function names its layers (under its prefix) as the function does:
    the plan checks PyTorch's names, this Keras'."""
    cls = function.cls
    for block in cls.blocks:
        own = [*block.pre, *block.branch, *block.post]
        pairs = zip(cls.layers, align(cls.layers, own), strict=True)
        if block.add != cls.blocks[0].add or any(
            x is not None and x.keras != t.keras for t, x in pairs
        ):
            raise PlanError(f"a block whose layers `{function.name}` would name otherwise")


def _block_body(function: BlockFunction, ctx: Context, residual: tuple | None, drop: bool):
    """A block function's body, read from the class's layers and fields: the pre-activation,
    the shortcut (`residual`: its call and the tensor it reads; None: the input), the branch,
    stochastic depth, the addition and the post-activation."""
    cls, scope = function.cls, function.scope()

    def applies(index: int) -> list[Apply]:
        pairs = cls.part(index)
        return _applies([x for x, _ in pairs], scope, ctx, [f for _, f in pairs])

    lines: list[str] = []
    source = "x"
    if cls.part(0):
        lines += _chain(applies(0), "x", "preact", "preact")
        source = "preact"
    post = applies(2)
    if not cls.adds:  # a plain network's block: the branch alone
        lines += _chain(applies(1), source, "x", "x" if post else "return")
        return lines + _chain(post, "x", "x", "return")
    if residual is None:
        lines.append(f"{INDENT}residual = x")
    else:
        lines += _statement("residual", *residual)
    lines += _chain(applies(1), source, "x", "x")
    if drop:
        dropout = Apply(
            "layers.Dropout",
            ("drop_rate", "noise_shape=(None, 1, 1, 1)", f"name={_prefixed('drop')}"),
        )
        lines.append(f"{INDENT}if drop_rate:  # stochastic depth: drop whole branches in training")
        lines += _statement("x", dropout, "x", 2)
    add = Apply("layers.Add", (f"name={scope.name(cls.blocks[0].add)}",))
    lines += _statement("x" if post else "return", add, "[residual, x]")
    lines += _chain(post, "x", "x", "return")
    return lines


def _block_function(function: BlockFunction, ctx: Context, drop: bool) -> Function:
    """The block function: the plan's class, its layers' values by the function's parameters."""
    _check_names(function)
    cls = function.cls
    if not cls.part(0) and any(b.shortcut.source == "preactivated" for b in cls.blocks):
        raise PlanError("a shortcut that reads a pre-activation its block lacks")
    residual = None
    shortcut = function.shortcut
    if shortcut is not None:
        values = {
            "filters": function.names()["out_channels"],
            "stride": "stride" if function.stride else "1",
            "name": "name",
        }
        args = [VARIABLES[s] for s in shortcut.sources[1:]] + [values[p] for p in shortcut.params]
        called = "shortcut" if function.takes_shortcut else shortcut.name
        residual = (Apply(called, tuple(args), True), VARIABLES[shortcut.sources[0]])
    body = _block_body(function, ctx, residual, drop)
    params = ["x", *function.params(), *["stride"] * function.stride]
    params += ["dilation"] * function.dilation + ["first_dilation"] * function.two_dilations
    params += ["shortcut"] * function.takes_shortcut + ["name", *["drop_rate"] * drop]
    return Function(_head(function.name, params), _doc(block_doc(cls)), tuple(body))


# --------------------------------------------------------------------------- stages


def _stack_function(name: str, function: BlockFunction, pattern: str | None, drop: bool):
    """A stage of `function`'s blocks; `pattern` says which applies the stride ("first",
    "last", or None where none does)."""
    widths = function.params()
    dilations = ["dilation"] * function.dilation + ["first_dilation"] * function.first_dilation
    params = ["x", "blocks", *widths, *["stride"] * function.stride, *dilations]
    params += ["shortcut"] * function.takes_shortcut + ["name"]
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
        if function.takes_shortcut:
            args.append("shortcut=shortcut")
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
    if function.takes_shortcut:
        doc += "; `shortcut` is their shortcut function"
    if drop:
        doc += "; `first_block` is the first's index in the whole network (stochastic depth)"
    return Function(_head(name, params), _doc(doc + "."), tuple(body))


def _stage_call(call: StageCall, function: BlockFunction, name: str, pattern: str | None, drop):
    """`x = stack(x, blocks=..., name=...)` for the plan's stage call, checked against what
    Keras adds: the blocks' names and where the stack strides."""
    stage = call.stage
    strided_at = {"first": 0, "last": stage.blocks - 1, None: None}[pattern]
    position = 0
    for run in stage.runs:
        if run.first_index != call.first_index + position:
            raise PlanError(f"stage `{stage.name}` numbers its blocks out of order")
        for offset in range(run.count) if run.count <= 2 else (0, run.count - 1):
            if position + offset != strided_at and run.block.stride != 1:
                raise PlanError(f"stage `{stage.name}` strides where its stack does not")
        position += run.count
    for number in (0, stage.blocks - 1):
        if stage.keras_prefix(number) != f"{stage.name}_block{number + 1}":
            raise PlanError(f"stage `{stage.name}` names its blocks unlike keras.applications")
    values = {"filters": call.mid_channels, "out_filters": call.out_channels, **call.options}
    args = [f"blocks={call.blocks}", *(f"{p}={values[p]}" for p in function.params())]
    if function.stride:
        args.append(f"stride={call.stride}")
    if function.dilation:
        dilation = call.options["dilation"]
        args.append(f"dilation={dilation}")
        if function.first_dilation:
            args.append(f"first_dilation={call.first_dilation or dilation}")
    if function.takes_shortcut:
        index = next(i for i, c in enumerate(function.calls) if c is call)
        args.append(f"shortcut={function.shortcuts[index].name}")
    args.append(f"name={_string(stage.name)}")
    if drop:
        args.append(f"first_block={call.first_index}")
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

    plan = Plan(network)
    if plan.problems:
        raise PlanError(plan.problems[0])
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
    block_functions = _block_functions(plan, ctx)

    # Stack functions, one per block function and stride pattern; `stack` where only one.
    patterns: dict[tuple, str] = {}
    for function in block_functions:
        for call in function.calls:
            pattern = call.stage.strided_block if function.stride else None
            name = function.name.replace("_block", "_stack", 1)
            if any(k[0] == function.name and k[1] != pattern for k in patterns):
                name += f"_{pattern}"
            patterns.setdefault((function.name, pattern), name)
    if len(patterns) == 1:
        patterns = dict.fromkeys(patterns, "stack")

    functions: list[Function] = []
    written: set[str] = set()
    for function in block_functions:
        for shortcut in function.shortcuts:
            if shortcut is None or shortcut.name in written:
                continue
            written.add(shortcut.name)
            doc = _doc("The path from a block's input to its addition.")
            params = [VARIABLES[s] if len(shortcut.sources) > 1 else "x" for s in shortcut.sources]
            head = _head(shortcut.name, [*params, *shortcut.params])
            functions.append(Function(head, doc, shortcut.body))
        functions.append(_block_function(function, ctx, drop))
        for (owner, pattern), name in patterns.items():
            if owner == function.name:
                functions.append(_stack_function(name, function, pattern, drop))
    stage_calls: list[str] = []
    for call in plan.stages:
        function = next(f for f in block_functions if f.cls is call.block)
        pattern = call.stage.strided_block if function.stride else None
        name = patterns[(function.name, pattern)]
        stage_calls += _stage_call(call, function, name, pattern, drop)
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
        make_divisible="make_divisible" in ctx.uses,
        eca=eca,
        channel_pad="ChannelPad" in ctx.uses,
        minus_inf_padding="MinusInfPadding2D" in ctx.uses,
        blur_pool="BlurPool2D" in ctx.uses,
        ceil_pool="CeilAveragePooling2D" in ctx.uses,
        drop_path=drop_path,
        plugin_helpers=tuple(
            e.helper for op, e in PLUGIN_EMITTERS["keras"].items() if f"plugin:{op}" in ctx.uses
        ),
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
    signature = _head("build_model", list(params), " -> keras.Model")
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
