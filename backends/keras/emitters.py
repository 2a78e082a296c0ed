"""One emitter per layer type: the statements that build a layer in Keras, each value as the
plan's field says (a literal, or a parameter of the function); a plugin's layer types through
their registered emitters (:mod:`resdsl.codegen.emitters`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from resdsl.codegen.arguments import Divisible, Sym, layer_fields, optional
from resdsl.codegen.emitters import emitter
from resdsl.ir import (
    ActLayer,
    BilinearAttentionLayer,
    BlurPoolLayer,
    BranchLayer,
    ConvLayer,
    DropoutLayer,
    EcaLayer,
    GlobalContextLayer,
    GlobalPoolLayer,
    IdentityLayer,
    LinearLayer,
    NormLayer,
    PadChannelsLayer,
    PoolLayer,
    SqueezeExciteLayer,
)

from .statements import Apply, PlanError, float_literal, literal, prefixed

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
        return literal(keras) if self.names is None else prefixed(keras)

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
            first._replace(guard=self.guard, comment=first.comment or comment),
            *(apply._replace(guard=self.guard) for apply in rest),
        ]


@dataclass
class Context:
    """What every emitter shares: the network's conventions, and what the emitted code uses
    (`uses`), from which the helpers' parameters follow."""

    activation: str
    kaiming: bool
    normalised: bool
    classes: int
    bias: set[bool]
    uses: set[str] = field(default_factory=set)
    gates: set[str] = field(default_factory=set)  # squeeze-excitation's
    se_activations: set[str] = field(default_factory=set)  # squeeze-excitation's
    fuses: set[str] = field(default_factory=set)  # global context's
    bilinear_bias: set[bool] = field(default_factory=set)  # bilinear attention's 1x1s'
    # Where a shortcut's ceil-mode average pool strides by more than 2, every one is a
    # `CeilAveragePooling2D` (Keras' "same" pooling pads before the input there).
    ceil_pool_layer: bool = False


def _conv(layer: ConvLayer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
    c = layer.conv
    # `conv` pads by the IR's padding: by default PyTorch's "same-size" padding, and where that
    # is not the IR's (an even kernel, padded by half of it on both sides), by `pad_by`. The
    # padding layer is named after the convolution (`2_conv`, `2_pad`).
    # (or, in Keras 2's RegNet names, `conv_3x3`, `conv_3x3_pad`)
    if not layer.keras.endswith("_conv") and "conv_" not in layer.keras:
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
        "standardized": "True" if c.standardized else "False",
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
    return [Apply("layers.Activation", (literal(ctx.activation), name))]


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
    if p.ceil and p.kind == "max":  # Caffe's stem pool (checked in `_unsupported`: unpadded)
        ctx.uses.add("CeilMaxPooling2D")
        return [Apply("CeilMaxPooling2D", (kernel, f"strides={stride}", name))]
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
    ctx.se_activations.add(layer.activation)
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


def _global_context(layer: GlobalContextLayer, f, scope: Scope, ctx: Context, previous):
    # `global_context` names its layers from the stem `name`: `gc_attend`, `gc_fc1` ...
    parts = (layer.attend, layer.fc1, layer.norm, layer.fc2)
    if [x.keras for x in parts] != [f"{layer.keras}_{x}" for x in ("attend", "fc1", "norm", "fc2")]:
        raise PlanError(f"global context's layers not named after `{layer.keras}`")
    ctx.uses.add("global_context")
    ctx.fuses.add(layer.fuse)
    reduced = scope.value(f, "reduced", layer.fc1.conv.out_channels)
    if reduced.startswith("make_divisible("):
        ctx.uses.add("make_divisible")
    return [Apply("global_context", (reduced, scope.name(layer.keras)), helper=True)]


_BILINEAR_PARTS = (
    ("reduce", "reduce_conv"), ("reduce_norm", "reduce_bn"), ("to_groups", "groups_conv"),
    ("groups_norm", "groups_bn"), ("rows", "rows_conv"), ("columns", "columns_conv"),
    ("mix", "mix_conv"), ("mix_norm", "mix_bn"), ("expand", "expand_conv"),
    ("expand_norm", "expand_bn"),
)  # fmt: skip


def _bilinear(layer: BilinearAttentionLayer, f, scope: Scope, ctx: Context, previous):
    # `bilinear_attention` names its layers from the stem `name`: `bat_reduce_conv` ...
    if any(getattr(layer, part).keras != f"{layer.keras}_{name}" for part, name in _BILINEAR_PARTS):
        raise PlanError(f"bilinear attention's layers not named after `{layer.keras}`")
    ctx.uses |= {"bilinear_attention", "norm"}
    ctx.bilinear_bias.add(layer.reduce.conv.bias)
    reduced = scope.value(f, "reduced", layer.reduced)
    if reduced.startswith("make_divisible("):
        ctx.uses |= {"make_divisible", "make_divisible.limits"}  # timm's round limit of 0.9
    args = [reduced, str(layer.block_size), scope.name(layer.keras)]
    args += [f"groups={layer.groups}"] * (layer.groups != 2)
    args += [f"dropout={float_literal(layer.dropout)}"] * (layer.dropout != 0.2)
    return [Apply("bilinear_attention", tuple(args), helper=True)]


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
    return [Apply("layers.Dropout", (float_literal(layer.rate), f"name={scope.name(layer.keras)}"))]


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
    GlobalContextLayer: _global_context,
    BilinearAttentionLayer: _bilinear,
    IdentityLayer: _identity,
    PadChannelsLayer: _pad_channels,
    LinearLayer: _linear,
    DropoutLayer: _dropout,
    GlobalPoolLayer: _global_pool,
}


def layer_applies(
    layers, scope: Scope, ctx: Context, fields: list[dict] | None = None
) -> list[Apply]:
    """The layers' statements; `fields` (a block class's or a shortcut's, aligned with
    `layers`) give the values that the function's arguments set."""
    out: list[Apply] = []
    for number, layer in enumerate(layers):
        previous = layers[number - 1] if number else None
        values = fields[number] if fields is not None else None
        if isinstance(layer, BranchLayer):  # statements of their own (.composites)
            from .composites import composite

            out.append(composite(layer, values, scope, ctx))
            continue
        emit = EMITTERS.get(type(layer))
        out += (emit or plugin_layer)(layer, values, scope, ctx, previous)
    return out


def plugin_layer(layer, f, scope: Scope, ctx: Context, previous) -> list[Apply]:
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
